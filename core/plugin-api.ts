// The public surface for plugin code: `import { definePlugin } from 'kubiki/plugin'`.
export { definePlugin } from './plugins/plugin-context.ts';
export type { PluginContext, PluginModule, PluginRoute, LegacyPluginRoute, MigrationContext, MigrationModule, KubikiEvent, ApiRecord, Principal, Notification, NotificationMessage, WorkflowAction, WorkflowActionContext, TakeOptions, TransitionResult, GuardedWrite, WriteGuard, FieldComputer, ComputeRequest, Money, DocumentLine, DocumentTotals, LineTotals, VatGroup, VatRounding } from './plugins/plugin-context.ts';
export type { EntityRepository, ListResult, ReadOptions, WriteOptions } from './entities/entity-repository.ts';
export { SYSTEM } from './auth/principal.ts';
export { KubikiError, fieldError, isKubikiError } from './errors.ts';
export { toCsv, type CsvTable, type CsvOptions } from './csv/csv-writer.ts';
export { sendCsv, csvOptionsFrom } from './csv/csv-response.ts';
export { defineRoute, entityInput, entityPage, entityRecord, idParams } from './http/route-contract.ts';
export type { RouteInput, RouteSpec, RouteSchemas, ResponseSpec } from './http/route-contract.ts';
export { optionalBody } from './http/routes/versioned-routes.ts';
export { compileExpression, type Expression, type ExpressionContext } from './workflows/expressions.ts';
export { lazyValidator, toFieldIssues } from './entities/ajv.ts';
export type { ImportTargetContribution, ImportRow, ImportWriteContext } from './import/import-targets.ts';
