import type { Ajv2020 } from 'ajv/dist/2020.js';
import type { JsonSchema } from '../../entities/entity-definition.ts';
import { createAjv, toFieldIssues } from '../../entities/ajv.ts';
import { KubikiError, fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { APPROVAL_DECISIONS, dryRun, type DryRunRequest } from '../../workflows/engine/dry-run.ts';
import type { WorkflowDefinition } from '../../workflows/workflow-definition.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { uuid } from '../schemas/common.ts';
import { optionalBody, versionNumber } from './versioned-routes.ts';
import { workflowParams } from './workflow-routes.ts';

const MAX_SOURCE = 512 * 1024;
let inputAjv: Ajv2020 | undefined;

interface DryRunBody extends DryRunRequest {
  version?: number;
  source?: string;
}

const object = (description: string): JsonSchema => ({ type: 'object', description });
const str: JsonSchema = { type: 'string' };
const placeholder = { type: 'string', description: 'A placeholder id: nothing was created' };

/** What a real run would have written or sent at a step (DryRunEffect). */
const effect: JsonSchema = {
  description: 'What a real run would have written or sent: `would` says what',
  anyOf: [
    { type: 'object', additionalProperties: false, required: ['would', 'entity', 'fields', 'id', 'note'], properties: { would: { const: 'create' }, entity: str, fields: { type: 'object' }, id: placeholder, note: str } },
    {
      type: 'object', additionalProperties: false, required: ['would', 'entity', 'id', 'changes'],
      properties: {
        would: { const: 'update' }, entity: str, id: str,
        changes: { type: 'object', additionalProperties: { type: 'object', required: ['before', 'after'], properties: { before: {}, after: {} } } },
        unchanged: { type: 'array', items: str, description: 'Fields set to the value they have' },
      },
    },
    { type: 'object', additionalProperties: false, required: ['would', 'action', 'input'], properties: { would: { const: 'call' }, action: str, input: { type: 'object' } } },
    {
      type: 'object', additionalProperties: false, required: ['would', 'channel', 'to', 'body', 'id', 'note'],
      properties: { would: { const: 'send' }, channel: { enum: ['email', 'sms'] }, to: str, subject: str, body: str, attachDocument: str, id: placeholder, note: str },
    },
    {
      type: 'object', additionalProperties: false, required: ['would', 'method', 'url', 'headers'],
      properties: { would: { const: 'request' }, method: str, url: str, headers: { type: 'object', additionalProperties: str }, body: {}, allowed: { type: 'boolean', description: 'Whether the host is on the allow-list' } },
    },
    { type: 'object', additionalProperties: false, required: ['would', 'template', 'recordId', 'format', 'id', 'note'], properties: { would: { const: 'render' }, template: str, recordId: str, format: { enum: ['html', 'pdf'] }, id: placeholder, note: str } },
    { type: 'object', additionalProperties: false, required: ['would', 'until'], properties: { would: { const: 'wait' }, until: str } },
    {
      type: 'object', additionalProperties: false, required: ['would', 'users', 'mode', 'subject'],
      properties: { would: { const: 'ask' }, role: str, users: { type: 'array', items: str }, mode: {}, subject: str, deadlineAt: str },
    },
  ],
};

const issue: JsonSchema = { type: 'object', required: ['field', 'rule', 'message'], properties: { field: str, rule: str, message: str } };

/** A dry run's answer (DryRunResult); a sub-workflow's trace is the same shape, under `child`. */
const resultSchema = (child: JsonSchema): JsonSchema => ({
  type: 'object', additionalProperties: false, required: ['workflow', 'outcome', 'path', 'steps', 'vars'],
  properties: {
    workflow: str, version: { ...versionNumber, description: 'The saved version tried (absent for unsaved source)' },
    outcome: { enum: ['completed', 'cancelled', 'failed', 'refused'] },
    reason: { type: 'string', description: 'Why a transition was refused' },
    transition: {
      type: 'object', additionalProperties: false, required: ['name', 'from', 'to', 'rolesRequired', 'callerHasRole'],
      properties: {
        name: str, from: str, to: str, rolesRequired: { type: 'array', items: str }, callerHasRole: { type: 'boolean' },
        condition: { type: 'object', required: ['expression', 'result'], properties: { expression: str, result: {} } }, effect,
      },
    },
    path: { type: 'array', items: str, description: 'Step ids in the order visited' },
    steps: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['step', 'type', 'plan'],
        properties: {
          step: str, type: str, title: str,
          plan: { type: 'object', required: ['kind'], properties: { kind: str }, description: 'The planner\'s answer: evaluated inputs and where the step goes' },
          effect, output: { description: 'What later steps see as steps.<id>' },
          decision: { enum: [...APPROVAL_DECISIONS], description: 'The approval decision assumed' }, child,
        },
      },
    },
    vars: { type: 'object' },
    error: { type: 'object', additionalProperties: false, required: ['message'], properties: { step: str, message: str, field: str, issues: { type: 'array', items: issue } } },
  },
});


const dryRunBody: JsonSchema = {
  type: 'object',
  properties: {
    version: { ...versionNumber, description: 'A saved version; the latest (drafts included) by default' },
    source: { type: 'string', maxLength: MAX_SOURCE, description: 'Unsaved YAML or JSON text to try instead (not with version)' },
    recordId: { ...uuid, description: 'Loads the record (with your read permission)' },
    record: object('Or the record itself (nothing is loaded; not with recordId)'),
    trigger: object('Trigger data; by default what the trigger type would produce'),
    input: object('What a caller sends with a manual action or a transition'),
    transition: { type: 'string', pattern: '^[a-z][a-zA-Z0-9_-]{0,60}$', description: 'transition name (of a lifecycle) to take' },
    decisions: { type: 'object', additionalProperties: { enum: [...APPROVAL_DECISIONS] }, description: 'Approval step id → the outcome to assume (default approved)' },
  },
};

/**
 * POST /api/workflows/:id/dry-run: a definition run against a record or payload with no side
 * effects — a saved version (the latest by default, so drafts can be tried before publishing) or
 * unsaved `source` text.
 */
export function workflowDryRunRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  return [defineRoute<{ id: string }, unknown, DryRunBody | undefined>({
    method: 'post', path: '/api/workflows/:id/dry-run', operationId: 'dryRunWorkflow', permission: 'core.workflows.read',
    summary: 'Run a definition against a record or payload with no side effects',
    description: 'Tries the latest saved version (drafts included), `version`, or unsaved `source` text; `recordId` loads the record (with your read permissions) or `record` gives one; `trigger`, `input`, a lifecycle\'s `transition` and approval `decisions` are optional. Record queries run for real; creates, updates, notifications, HTTP calls, documents and approvals are only reported (`effect.would`, with placeholder ids); sub-workflows are dry-run in turn, their trace under `child`. Outcome: completed, cancelled, failed (with the step and message) or refused.',
    errors: ['not-found', 'forbidden'],
    schemas: {
      params: workflowParams,
      body: optionalBody(dryRunBody),
      responses: { 200: resultSchema(resultSchema({ type: 'object', description: 'A sub-workflow\'s own dry run (the same shape)' })) },
    },
    async handler({ params: { id }, body: given, principal: actor }, http) {
      const body = given ?? {};
      // Which of two alternatives: a schema could say "not both", but not name the field.
      if (body.version !== undefined && body.source !== undefined) throw fieldError('validation-failed', 'source', 'oneOf', 'give either version (a saved version) or source (an unsaved definition), not both');
      if (body.recordId !== undefined && body.record !== undefined) throw fieldError('validation-failed', 'record', 'oneOf', 'give either recordId (to load the record) or record (the record itself), not both');
      let definition: WorkflowDefinition;
      let version: number | undefined;
      if (body.source !== undefined) {
        const checked = await k.workflows.validate(body.source);
        if (!checked.ok || !checked.definition) {
          const issues = checked.errors.map((e) => ({ field: e.path, rule: e.rule, message: e.message }));
          throw new KubikiError('validation-failed', `the workflow definition has ${issues.length} error${issues.length === 1 ? '' : 's'}: ${issues[0]?.message ?? ''}`, { issues });
        }
        definition = checked.definition;
        if (definition.id !== id) throw fieldError('validation-failed', 'id', 'const', `the definition's id is ${definition.id}, but it is tried as ${id}`);
      } else {
        version = body.version ?? (await k.workflows.summary(id)).latestVersion;
        definition = (await k.workflows.version(id, version)).metadata;
      }
      const { version: _version, source: _source, ...request } = body;
      const { workflow, ...result } = await dryRun(definition, request, {
        actor,
        repository: (q) => k.repository(q),
        publishedDefinition: async (child) => (await k.workflows.published(child)).metadata,
        httpAllow: k.config.workflowHttpAllow,
        hasAction: (action) => k.workflowRuntime.actions.names().has(action),
        validateInput: (schema, input) => {
          const ajv = (inputAjv ??= createAjv());
          try {
            const validate = ajv.compile(schema);
            return validate(input) ? [] : toFieldIssues(validate.errors);
          } catch (error) {
            throw fieldError('validation-failed', 'transition', 'input-schema', `the transition's input schema cannot be used: ${(error as Error).message}`);
          } finally {
            ajv.removeSchema(schema); // definitions are new objects each time: do not let ajv's cache grow
          }
        },
        validateRecord: (q, fields) => {
          const validate = k.registry.validator(k.registry.get(q));
          return validate(fields) ? [] : toFieldIssues(validate.errors);
        },
      });
      http.body = { workflow, ...(version !== undefined ? { version } : {}), ...result };
    },
  })];
}
