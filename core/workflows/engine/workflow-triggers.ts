import { createHmac, timingSafeEqual } from 'node:crypto';
import cron, { type ScheduledTask } from 'node-cron';
import type { Logger } from 'pino';
import type { Ajv } from 'ajv';
import type { Database } from '../../db/database.ts';
import { KubikiError, fieldError } from '../../errors.ts';
import { SYSTEM, type Principal } from '../../auth/principal.ts';
import { toFieldIssues } from '../../entities/ajv.ts';
import type { EntityRegistry } from '../../entities/entity-registry.ts';
import type { EntityRepository } from '../../entities/entity-repository.ts';
import { rowToRecord } from '../../entities/record-codec.ts';
import { rowToEvent, type KubikiEvent } from '../../events/outbox.ts';
import type { DateRelativeTrigger, EventTrigger, ManualTrigger, WebhookTrigger } from '../workflow-definition.ts';
import { every, type Clock, type ClockTimer } from './clock.ts';
import { parseDuration } from './durations.ts';
import type { PublishedWorkflow, PublishedWorkflows } from './published-workflows.ts';
import { evaluate } from './step-plan.ts';
import type { StartRequest, WorkflowEngine } from './workflow-engine.ts';

export interface TriggerDeps {
  db: Database;
  logger: Logger;
  engine: WorkflowEngine;
  published: PublishedWorkflows;
  registry: EntityRegistry;
  repository(qualifiedName: string): EntityRepository;
  ajv: Ajv;
  env: NodeJS.ProcessEnv;
  scanMs: number;
  isEnabled(plugin: string): boolean;
  clock: Clock;
}

const triggerActor = (name: string, userId: string | null = null): Principal => ({ ...SYSTEM, userId, username: name, displayName: name });

/** How far back a newly published event automation looks for events it missed, at most. */
const CATCH_UP_MINUTES = 5;
const CATCH_UP_LIMIT = 10_000;

/** How far back a date-relative trigger looks for moments it has not fired for yet. */
const DATE_LOOKBACK_HOURS = 24;

/** How far back a late schedule tick (a blocked event loop, a suspended host) still fires the slots it missed. */
const MISSED_SLOTS_SECONDS = 60;

/**
 * What starts automations: entity events from the outbox (deduplicated on the event id, so
 * redelivery starts nothing twice), cron schedules (one instance per schedule and slot across every
 * process: the slot is the instance's dedupe key), date-relative moments (one per record and date),
 * manual runs and signed webhooks.
 */
export class WorkflowTriggers {
  private readonly schedules = new Map<string, { signature: string; task: ScheduledTask }>();
  private scanTimer?: ClockTimer;
  private tickTimer?: ClockTimer;
  /** The last whole second (since the epoch) whose schedule slots were fired. */
  private lastSecond = 0;
  private running = false;

  constructor(private readonly deps: TriggerDeps) {}

  // ---- entity events ------------------------------------------------------------------------

  /** Whether triggers may start a published automation now: its plugin and every one it requires are enabled. */
  private runnable(w: PublishedWorkflow): boolean {
    // A plugin's own workflows (`crm.task-reminder`) run only while it is enabled; cross-module
    // ones (`workflows.*`) name what they need in `requires`.
    const owner = w.id.slice(0, w.id.indexOf('.'));
    return (owner === 'workflows' || this.deps.isEnabled(owner)) && (w.definition.requires ?? []).every((p) => this.deps.isEnabled(p))
      && !(w.definition.unless ?? []).some((p) => this.deps.isEnabled(p));
  }

  private automations(): PublishedWorkflow[] {
    return this.deps.published.automations().filter((w) => this.runnable(w));
  }

  /** Whether some published automation listens to this event type (`base.organizations.created`). */
  listensTo(eventType: string): boolean {
    return this.deps.published.listening(eventType).some((w) => this.runnable(w));
  }

  /** Outbox delivery (or a catch-up for one workflow, `only`): starts an instance per matching automation and event, in one transaction per batch. */
  async onEvents(events: KubikiEvent[], only?: string): Promise<void> {
    const requests: StartRequest[] = [];
    const records = new Map<string, unknown>();
    for (const event of events) {
      const cut = event.type.lastIndexOf('.');
      const entity = event.type.slice(0, cut);
      const action = event.type.slice(cut + 1) as 'created' | 'updated' | 'deleted';
      for (const wf of this.deps.published.listening(event.type)) {
        if ((only !== undefined && wf.id !== only) || !this.runnable(wf)) continue;
        const trigger = wf.definition.trigger as EventTrigger;
        // A workflow's own writes never trigger it again: an "updated" automation that updates its
        // record would otherwise loop forever.
        if (event.payload.by === `workflow:${wf.id}`) continue;
        const changes = ((event.payload.changes ?? {}) as Record<string, { before: unknown; after: unknown }>);
        const data = { type: 'event', eventId: event.id, event: event.type, action, entity, recordId: event.recordId, changes, actorId: event.actorId, by: event.payload.by ?? null, at: event.createdAt };
        try {
          if (trigger.changed) {
            const change = changes[trigger.changed.field];
            if (!change) continue;
            if (trigger.changed.to !== undefined) {
              const wanted = evaluate(trigger.changed.to, { trigger: data, vars: {}, steps: {}, now: this.deps.clock.now() }, 'trigger.changed.to');
              if (JSON.stringify(wanted) !== JSON.stringify(change.after)) continue;
            }
          }
          if (trigger.condition) {
            const key = `${entity}/${event.recordId}`;
            if (!records.has(key)) records.set(key, action === 'deleted' ? null : await this.deps.repository(entity).get(event.recordId, { actor: SYSTEM }).catch(() => null));
            const record = records.get(key) ?? Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v.before]));
            if (evaluate(trigger.condition, { trigger: data, record, vars: {}, steps: {}, now: this.deps.clock.now() }, 'trigger.condition') !== true) continue;
          }
        } catch (error) {
          // A trigger expression that fails on this event's data must not hold up the outbox.
          this.deps.logger.warn({ err: error, workflow: wf.id, event: event.id }, 'workflow trigger expression failed; no instance started');
          continue;
        }
        requests.push({
          workflowId: wf.id, version: wf.version, definition: wf.definition, kind: 'automation', trigger: data, entity, recordId: event.recordId,
          dedupeKey: `event:${wf.id}:${event.id}`, actor: triggerActor(`event:${event.type}`, event.actorId),
        });
      }
    }
    await this.deps.engine.startMany(requests);
  }

  /**
   * Events written between a publish and the moment every process knew of it (other processes
   * reload every KUBIKI_REFRESH_MS) were journaled as unheard there. When a version of an event
   * automation appears, the events of its entity since it was published (at most the last few
   * minutes) are offered to it again; the event-id dedupe makes this safe to run in every process.
   */
  async catchUp(added: PublishedWorkflow[], now = this.deps.clock.now()): Promise<number> {
    let offered = 0;
    for (const wf of added) {
      const trigger = wf.definition.trigger;
      if (wf.definition.kind !== 'automation' || trigger?.type !== 'event') continue;
      const since = Math.max(Date.parse(wf.publishedAt), now.getTime() - CATCH_UP_MINUTES * 60_000);
      const types = (trigger.on ?? ['created', 'updated']).map((action) => `${trigger.entity}.${action}`);
      const rows: Record<string, unknown>[] = await this.deps.db.table('kubiki_outbox')
        .whereIn('event', types).where('created_at', '>=', new Date(since).toISOString())
        .orderBy('id').limit(CATCH_UP_LIMIT);
      if (rows.length) await this.onEvents(rows.map(rowToEvent), wf.id);
      offered += rows.length;
    }
    return offered;
  }

  // ---- schedules ----------------------------------------------------------------------------

  /** Re-plans cron tasks after the published set changed (call once at start, then on change). */
  planSchedules(): void {
    if (!this.running) return;
    const wanted = new Map<string, PublishedWorkflow>();
    for (const wf of this.deps.published.automations()) if (wf.definition.trigger?.type === 'schedule') wanted.set(wf.id, wf);
    // (Schedules of workflows whose required plugins are off stay planned; fireSchedule skips them.)
    for (const [id, s] of this.schedules) {
      const wf = wanted.get(id);
      if (!wf || this.signature(wf) !== s.signature) {
        void s.task.destroy();
        this.schedules.delete(id);
      }
    }
    for (const [id, wf] of wanted) {
      if (this.schedules.has(id)) continue;
      const trigger = wf.definition.trigger as { cron: string; timezone?: string };
      // A task never started: node-cron only tells whether an instant matches the expression in
      // its time zone; the ticking is the clock's (see tick), so a manual clock drives schedules too.
      const task = cron.createTask(trigger.cron, () => undefined, { timezone: trigger.timezone, name: `workflow ${id}` });
      this.schedules.set(id, { signature: this.signature(wf), task });
    }
    if (this.schedules.size > 0 && !this.tickTimer) {
      // From now on: slots before the schedules were planned are not "missed".
      this.lastSecond = Math.floor(this.deps.clock.now().getTime() / 1000);
      this.armTick();
    }
  }

  /** Wakes at the next whole second of the clock. */
  private armTick(): void {
    const now = this.deps.clock.now().getTime();
    this.tickTimer = this.deps.clock.setTimer((Math.floor(now / 1000) + 1) * 1000 - now, () => this.tick());
  }

  /** Fires every schedule matching a second since the last tick (the one that just began, or a few missed ones). */
  private async tick(): Promise<void> {
    this.tickTimer = undefined;
    if (!this.running || this.schedules.size === 0) return;
    const second = Math.floor(this.deps.clock.now().getTime() / 1000);
    const from = Math.max(this.lastSecond + 1, second - MISSED_SLOTS_SECONDS);
    this.lastSecond = Math.max(this.lastSecond, second);
    this.armTick();
    const fired: Promise<void>[] = [];
    for (let s = from; s <= second; s++) {
      const at = new Date(s * 1000);
      for (const [id, { task }] of this.schedules) if (task.match(at)) fired.push(this.fireSchedule(id, at));
    }
    await Promise.all(fired);
  }

  private signature(wf: PublishedWorkflow): string {
    const t = wf.definition.trigger as { cron: string; timezone?: string };
    return `${wf.version}|${t.cron}|${t.timezone ?? ''}`;
  }

  /** Every process fires every slot; the slot as dedupe key lets exactly one of them start the instance. */
  async fireSchedule(id: string, at: Date): Promise<void> {
    const wf = this.automations().find((w) => w.id === id);
    if (!wf || wf.definition.trigger?.type !== 'schedule') return;
    const slot = new Date(Math.floor(at.getTime() / 1000) * 1000).toISOString();
    try {
      await this.deps.engine.startInstance({
        workflowId: wf.id, version: wf.version, definition: wf.definition, kind: 'automation',
        trigger: { type: 'schedule', slot, cron: wf.definition.trigger.cron, timezone: wf.definition.trigger.timezone ?? 'UTC' },
        dedupeKey: `schedule:${wf.id}:${slot}`, actor: triggerActor('schedule'),
      });
    } catch (error) {
      this.deps.logger.error({ err: error, workflow: id, slot }, 'scheduled workflow could not start');
    }
  }

  // ---- date-relative ------------------------------------------------------------------------

  /**
   * Starts instances for records whose `field + offset` moment has come (within the last day and
   * not before the version was published), one per record and date value: moving the date makes
   * the trigger fire again for the new date.
   */
  async scanDates(now = this.deps.clock.now()): Promise<number> {
    let started = 0;
    for (const wf of this.automations()) {
      if (wf.definition.trigger?.type !== 'dateRelative') continue;
      const trigger = wf.definition.trigger as DateRelativeTrigger;
      if (!this.deps.registry.has(trigger.entity)) continue;
      const entity = this.deps.registry.get(trigger.entity);
      const field = entity.fields.get(trigger.field);
      if (!field || (field.kind !== 'date' && field.kind !== 'datetime')) continue;
      // PostgreSQL reads ISO 8601 durations but not a leading minus (-P3D): the parts are passed signed.
      const d = parseDuration(trigger.offset);
      const offset = [d.sign * d.years, d.sign * d.months, d.sign * d.days, d.sign * d.seconds];
      const knex = this.deps.db.knex;
      const interval = 'make_interval(years => ?, months => ?, days => ?, secs => ?)';
      const moment = field.kind === 'date'
        ? knex.raw(`((??)::timestamp at time zone 'UTC' + ${interval})`, [trigger.field, ...offset])
        : knex.raw(`(?? + ${interval})`, [trigger.field, ...offset]);
      const since = new Date(Math.max(new Date(wf.publishedAt).getTime(), now.getTime() - DATE_LOOKBACK_HOURS * 3600_000));
      const query = this.deps.db.table(entity.table)
        .select('*', knex.raw('??::text as kubiki_date_key', [trigger.field]))
        .whereNotNull(trigger.field)
        .where(knex.raw('? <= ?', [moment, now.toISOString()]))
        .where(knex.raw('? > ?', [moment, since.toISOString()]))
        .whereNotExists((q) => q.select(knex.raw('1')).from(`${this.deps.db.schema}.kubiki_wf_instances as wi`)
          .whereRaw('wi.dedupe_key = ? || ??::text || \':\' || ??::text', [`date:${wf.id}:`, `${entity.table}.id`, `${entity.table}.${trigger.field}`]))
        .orderBy(trigger.field).limit(500);
      const rows: Record<string, unknown>[] = await query;
      const requests: StartRequest[] = [];
      for (const row of rows) {
        const record = rowToRecord(entity, row);
        const value = String(row.kubiki_date_key);
        const data = { type: 'dateRelative', entity: trigger.entity, field: trigger.field, offset: trigger.offset, value: record[trigger.field] ?? null, recordId: record.id };
        if (trigger.condition) {
          try {
            if (evaluate(trigger.condition, { trigger: data, record, vars: {}, steps: {}, now }, 'trigger.condition') !== true) continue;
          } catch (error) {
            this.deps.logger.warn({ err: error, workflow: wf.id, record: record.id }, 'date-relative trigger condition failed');
            continue;
          }
        }
        requests.push({
          workflowId: wf.id, version: wf.version, definition: wf.definition, kind: 'automation', trigger: data, entity: trigger.entity, recordId: String(record.id),
          dedupeKey: `date:${wf.id}:${String(record.id)}:${value}`, actor: triggerActor('schedule'),
        });
      }
      started += (await this.deps.engine.startMany(requests)).length;
    }
    return started;
  }

  // ---- manual and webhook -------------------------------------------------------------------

  private validateInput(schema: Record<string, unknown> | undefined, input: unknown, field: string): void {
    if (!schema) return;
    const validate = this.deps.ajv.compile(schema);
    if (!validate(input ?? {})) {
      const issues = toFieldIssues(validate.errors).map((i) => ({ ...i, field: i.field ? `${field}.${i.field}` : field }));
      throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues });
    }
  }

  private startable(id: string, type: 'manual' | 'webhook'): PublishedWorkflow {
    const wf = this.deps.published.get(id);
    if (!wf) throw new KubikiError('not-found', `no published workflow ${id}`);
    if (wf.definition.trigger?.type !== type) throw new KubikiError('conflict', `workflow ${id} is not started by a ${type === 'manual' ? 'manual action' : 'webhook'} (its trigger is ${wf.definition.trigger?.type ?? 'a lifecycle'})`);
    const off = (wf.definition.requires ?? []).filter((p) => !this.deps.isEnabled(p));
    if (off.length) throw new KubikiError('plugin-disabled', `workflow ${id} needs the plugin${off.length > 1 ? 's' : ''} ${off.join(', ')}, which ${off.length > 1 ? 'are' : 'is'} not enabled`);
    const on = (wf.definition.unless ?? []).filter((p) => this.deps.isEnabled(p));
    if (on.length) throw new KubikiError('plugin-disabled', `workflow ${id} does not run while ${on.join(', ')} ${on.length > 1 ? 'are' : 'is'} enabled (its \`unless\`)`);
    return wf;
  }

  /** `POST /api/workflows/{id}/run`: `{ recordId?, input? }`, for the trigger's roles. */
  async runManual(id: string, body: unknown, actor: Principal): Promise<{ id: string }> {
    const wf = this.startable(id, 'manual');
    const trigger = wf.definition.trigger as ManualTrigger;
    if (trigger.roles?.length && !trigger.roles.some((r) => actor.roles.includes(r))) {
      throw new KubikiError('forbidden', `${actor.username} may not run ${id}: it needs one of the roles ${trigger.roles.join(', ')}`);
    }
    const b = (body ?? {}) as Record<string, unknown>;
    if (typeof b !== 'object' || Array.isArray(b)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object: {"recordId": …, "input": {…}}');
    for (const key of Object.keys(b)) if (key !== 'recordId' && key !== 'input') throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (recordId, input)`);
    let recordId: string | null = null;
    if (trigger.entity) {
      if (typeof b.recordId !== 'string') throw fieldError('validation-failed', 'recordId', 'required', `${id} runs on a ${trigger.entity} record: give its recordId`);
      recordId = String((await this.deps.repository(trigger.entity).get(b.recordId, { actor })).id);
    } else if (b.recordId !== undefined) {
      throw fieldError('validation-failed', 'recordId', 'unknown-field', `${id} does not run on a record`);
    }
    this.validateInput(trigger.input, b.input, 'input');
    const { id: instanceId } = await this.deps.engine.startInstance({
      workflowId: wf.id, version: wf.version, definition: wf.definition, kind: 'automation', trigger: { type: 'manual', by: actor.username },
      entity: trigger.entity ?? null, recordId, input: b.input ?? {}, actor,
    });
    return { id: instanceId };
  }

  /**
   * `POST /api/workflows/{id}/webhook`: the raw body signed with the secret from the trigger's
   * environment variable (`X-Kubiki-Signature: sha256=<hex HMAC>`); `X-Kubiki-Delivery` makes a
   * redelivery start nothing new.
   */
  async receiveWebhook(id: string, rawBody: string, body: unknown, headers: { signature?: string; delivery?: string }): Promise<{ id: string; created: boolean }> {
    const wf = this.startable(id, 'webhook');
    const trigger = wf.definition.trigger as WebhookTrigger;
    const secret = this.deps.env[trigger.secretEnv];
    if (!secret) throw new KubikiError('invalid-signature', `webhooks of ${id} are refused: the server has no secret in ${trigger.secretEnv}`);
    const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(rawBody, 'utf8').digest('hex')}`);
    const given = Buffer.from(headers.signature ?? '');
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new KubikiError('invalid-signature', 'X-Kubiki-Signature must be sha256=<hex HMAC-SHA256 of the body with the shared secret>');
    if (headers.delivery !== undefined && !/^[\w.:-]{1,200}$/.test(headers.delivery)) throw fieldError('validation-failed', 'X-Kubiki-Delivery', 'pattern', 'X-Kubiki-Delivery must be 1–200 letters, digits, dots, colons, dashes or underscores');
    this.validateInput(trigger.input, body, 'body');
    return this.deps.engine.startInstance({
      workflowId: wf.id, version: wf.version, definition: wf.definition, kind: 'automation', trigger: { type: 'webhook', delivery: headers.delivery ?? null },
      input: body ?? {}, dedupeKey: headers.delivery ? `webhook:${wf.id}:${headers.delivery}` : null, actor: triggerActor('webhook'),
    });
  }

  // ---- background ---------------------------------------------------------------------------

  start(): void {
    this.running = true;
    this.planSchedules();
    this.scanTimer = every(this.deps.clock, this.deps.scanMs, () => this.scanDates().catch((error) => this.deps.logger.error({ err: error }, 'date-relative scan failed')));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.scanTimer?.cancel();
    this.tickTimer?.cancel();
    this.tickTimer = undefined;
    for (const s of this.schedules.values()) await s.task.destroy();
    this.schedules.clear();
  }
}
