import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { RouterContext } from '@koa/router';
import type { Executor } from '../db/database.ts';
import type { ComputeRequest, EntityRepository } from '../entities/entity-repository.ts';
import type { DocumentLine, DocumentTotals, VatRounding } from '../money/document-totals.ts';
import type { EventHandler } from '../events/event-dispatcher.ts';
import type { Principal } from '../auth/principal.ts';
import type { RouteSpec } from '../http/route-contract.ts';
import type { JournalRows } from '../audit/journal-rows.ts';
import type { FieldIssue, KubikiError } from '../errors.ts';
import type { PluginManifest } from './plugin-manifest.ts';
import type { DocumentTotalsProvider } from '../templates/document-data.ts';
import type { StoredDocument } from '../templates/document-service.ts';
import type { Notification, NotificationMessage } from '../notifications/notification-service.ts';

import type { WorkflowAction } from '../workflows/engine/workflow-actions.ts';
import type { TakeOptions, TransitionResult } from '../workflows/engine/lifecycle-transitions.ts';

export type { KubikiEvent } from '../events/outbox.ts';
export type { WorkflowAction, WorkflowActionContext } from '../workflows/engine/workflow-actions.ts';
export type { TakeOptions, TransitionResult } from '../workflows/engine/lifecycle-transitions.ts';
export type { ApiRecord } from '../entities/record-codec.ts';
export type { ComputeRequest } from '../entities/entity-repository.ts';
export type { JournalRows, JournalRowsOptions } from '../audit/journal-rows.ts';
export type { DocumentLine, DocumentTotals, LineTotals, VatGroup, VatRounding } from '../money/document-totals.ts';
export type { Principal } from '../auth/principal.ts';
export type { DocumentTotalsProvider } from '../templates/document-data.ts';
export type { StoredDocument } from '../templates/document-service.ts';
export type { Notification, NotificationMessage } from '../notifications/notification-service.ts';

/**
 * A route a plugin adds under /api/<plugin>/…: declared with its schemas (see core/http/route-contract.ts).
 * The permission is checked and params, query and body validated before the handler runs.
 */
export type PluginRoute = RouteSpec<unknown, unknown, unknown>;

/** The former, undeclared shape: still mounted while plugins move to declared routes; not in OpenAPI. */
export interface LegacyPluginRoute {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  path: string;
  permission: string;
  handler: (ctx: RouterContext, principal: Principal) => Promise<void> | void;
}

/**
 * What the core hands a plugin: everything it may touch, nothing global. Plugins never import each
 * other; they reach other plugins' data through `repository('other.entities')`, events and
 * extension points.
 */
export interface PluginContext {
  readonly name: string;
  readonly manifest: PluginManifest;
  readonly logger: Logger;
  /** Settings from the environment: KUBIKI_<PLUGIN>_<KEY> → config.<KEY lower-cased>. */
  readonly config: Readonly<Record<string, string>>;
  /** The repository of any entity, by `plugin.plural`; writes are validated, audited and evented. */
  repository(qualifiedName: string): EntityRepository;
  /** Runs `work` in one transaction; pass `trx` to repository calls to join it. */
  transaction<T>(work: (trx: Knex.Transaction) => Promise<T>): Promise<T>;
  /** Query builder on one of this plugin's own tables (for reports and hand-written queries). */
  table(name: string, trx?: Executor): Knex.QueryBuilder;
  /**
   * Audited inserts into one of this plugin's own tables (ledger lines, allocations): every row gets
   * its audit row (entity `entity`, e.g. `entryLines`) in the same statement.
   */
  journalRows(table: string, entity: string): JournalRows;
  /** Subscribes to outbox events (`base.organizations.created`, `crm.*.updated`): at least once, while enabled. */
  on(pattern: string, handler: EventHandler): void;
  /**
   * Adds to another plugin's extension point (`finance.postingRules`): checked against the point's
   * schema and refused unless this plugin dependsOn or enhances the owner. Resolves once the
   * owner's watchers have heard it.
   */
  contribute(point: string, value: unknown): Promise<void>;
  /**
   * Hears every contribution to one of this plugin's points: those made so far at once, each later
   * one when it is made (a contributor enabled later). The way to react to contributions — no polling.
   */
  onContribution<T>(point: string, watcher: (value: T, contributor: string) => void | Promise<void>): Promise<void>;
  /** Contributions to one of this plugin's extension points from enabled plugins. */
  contributions<T>(point: string): T[];
  /** Adds an HTTP route under /api/<plugin>/ that exists only while the plugin is enabled. */
  route(route: LegacyPluginRoute): void;
  route<P, Q, B>(route: RouteSpec<P, Q, B>): void;
  isEnabled(plugin: string): boolean;
  /** Adds computed values (totals, VAT lines…) to the documents printed for one of this plugin's entities. */
  documentTotals(entity: string, provide: DocumentTotalsProvider): void;
  /** Renders a template's published version for a record and stores the document (the "render document" action). */
  renderDocument(templateId: string, recordId: string, options: { actor: Principal; format?: 'html' | 'pdf' }): Promise<StoredDocument>;
  /**
   * Sends an email or SMS (needs core.notifications.send; pass SYSTEM for the plugin itself). Held in the
   * outbox when the channel has no transport; the same idempotencyKey again returns the first notification.
   */
  notify(message: NotificationMessage, actor: Principal): Promise<Notification>;
  /**
   * Offers an action to workflows' callAction steps as `<plugin>.<name>`. The handler runs in the
   * step's transaction (`ctx.trx`): database work done with it commits exactly once with the step.
   */
  workflowAction(name: string, action: WorkflowAction): void;
  /**
   * Takes a transition of the entity's published lifecycle for `actor`, exactly as
   * `POST /api/<plugin>/<entity>/{id}/transitions/{name}` does (roles, permission, condition, input,
   * the transition's action and steps): a plugin's own document routes (`…/invoices/{id}/post`) use it.
   */
  transition(entity: string, id: string, name: string, options: TakeOptions): Promise<TransitionResult>;
  /**
   * Guards writes to one of this plugin's entities wherever they come from (REST, workflow steps,
   * other plugins): throw a KubikiError to refuse. `trusted` writes (`viaTransition: true`, the
   * plugin's own state-machine code) pass through here too, so the guard decides.
   */
  guardWrites(entity: string, guard: WriteGuard): void;
  /**
   * Computes the `readOnly` fields of one of this plugin's entities (totals, derived amounts) in
   * every write, wherever it comes from: return their values (null clears one). Runs inside the
   * write, after validation of what was given; the result is validated again. One per entity.
   */
  computeFields(entity: string, compute: FieldComputer): void;
  /** Document totals under the company's VAT rounding policy (KUBIKI_VAT_ROUNDING): the one money computation. */
  readonly money: Money;
  /**
   * An error this plugin declares in its manifest (`errors`), answered as problem+json with the code
   * `<plugin>.<code>` and the declared status, e.g. `ctx.error('period-closed', 'period 2026-03 is closed', { issues })`.
   */
  error(code: string, detail: string, options?: { issues?: FieldIssue[]; extra?: Record<string, unknown> }): KubikiError;
  /** An active user's name and e-mail (to address a record's owner); undefined for unknown or inactive users. */
  userContact(id: string): Promise<{ id: string; username: string; displayName: string; email: string | null } | undefined>;
}

/** A write a plugin's guard looks at: `fields` are the new values (on update, only those that change). */
export interface GuardedWrite {
  action: 'create' | 'update' | 'delete';
  /** The new values (none on delete). */
  fields: Readonly<Record<string, unknown>>;
  /** The record's fields before an update or delete. */
  current?: Readonly<Record<string, unknown>>;
  actor: Principal;
  /** Written with `viaTransition: true`: the entity's own state machine. */
  trusted: boolean;
}
export type WriteGuard = (write: GuardedWrite) => void;

export type FieldComputer = (write: ComputeRequest) => Record<string, unknown> | Promise<Record<string, unknown>>;

export interface Money {
  readonly vatRounding: VatRounding;
  totals(lines: readonly DocumentLine[], options?: { pricesIncludeVat?: boolean }): DocumentTotals;
}

/** What a plugin's code module exports as default. */
export interface PluginModule {
  /** Runs once per process when the plugin is enabled (at start, or later when an admin enables it). */
  setup?(ctx: PluginContext): void | Promise<void>;
}

export const definePlugin = (module: PluginModule): PluginModule => module;

/** What a hand-written migration (`plugins/<name>/migrations/NNN-name.ts`) receives. */
export interface MigrationContext {
  trx: Knex.Transaction;
  schema: string;
  table(name: string): Knex.QueryBuilder;
  schemaBuilder(): Knex.SchemaBuilder;
}

export interface MigrationModule {
  up(ctx: MigrationContext): Promise<void>;
}
