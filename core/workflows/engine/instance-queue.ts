// The SQL of durable execution. Step rows are both the work queue and the history: a row is
// `pending` (due at due_at), `running` (claimed under a lease until due_at), `waiting` (a timer,
// an approval or a sub-workflow; due_at is its deadline, if any), then `done`, `failed` or
// `cancelled`. Every state change of a claimed row checks its lease token, so a worker that lost
// its lease (it stalled, another took over) cannot complete the step a second time: its
// transaction finds no row to update and rolls back together with the step's database effect.

import type { Database, Executor, Knex } from '../../db/database.ts';
import type { Clock } from './clock.ts';

export type StepStatus = 'pending' | 'running' | 'waiting' | 'done' | 'failed' | 'cancelled';
export type InstanceStatus = 'running' | 'waiting' | 'completed' | 'failed' | 'cancelled';

export interface StepRow {
  id: number;
  instanceId: string;
  key: string;
  type: string;
  scope: string;
  joinOf: number | null;
  status: StepStatus;
  /** The status before this claim: `waiting` means a timer or deadline came due. */
  was: StepStatus;
  attempts: number;
  input: unknown;
  leaseToken: string | null;
}

export interface InstanceRow {
  id: string;
  workflowId: string;
  version: number;
  kind: string;
  status: InstanceStatus;
  trigger: Record<string, unknown>;
  entity: string | null;
  recordId: string | null;
  input: unknown;
  vars: Record<string, unknown>;
  /** The latest output of each step done so far (from the step rows; see loadOutputs). */
  outputs: Record<string, unknown>;
  parentId: string | null;
  parentStepId: number | null;
  startedBy: string | null;
  startedByName: string;
}

export interface NewStep {
  key: string;
  type: string;
  scope: string;
  status: 'pending' | 'running' | 'waiting';
  /** ISO instant, 'now' (the clock's), or null (never due: waits for someone to resume it). */
  due: string | null;
  lease?: string;
  input?: unknown;
}

export interface NewInstance {
  id: string;
  workflowId: string;
  version: number;
  kind: 'automation' | 'transition' | 'subworkflow';
  trigger: Record<string, unknown>;
  entity?: string | null;
  recordId?: string | null;
  input?: unknown;
  vars?: Record<string, unknown>;
  dedupeKey?: string | null;
  parentId?: string | null;
  parentStepId?: number | null;
  startedBy: string | null;
  startedByName: string;
  first: { key: string; type: string };
}

/** What completing a step changes. */
export interface Completion {
  status?: 'done' | 'waiting';
  output?: unknown;
  input?: unknown;
  /** For `waiting`: when the step comes due again (deadline, timer); null = only when resumed. */
  waitUntil?: string | null;
  vars?: Record<string, unknown>;
  outputKey?: string;
  next: NewStep[];
  instance?: { status: InstanceStatus; error?: string | null; failedStep?: string | null };
}

/** A completion riding along in an entity write's statement (see completionSql). */
export interface JoinedWrite {
  /** The CTE that must have written a row for the step to complete. */
  gate: string;
  /** SQL giving the written record (the record step's output). */
  outputSql: string;
  /** The record step, when the claimed row is a pure step that ran just before it. */
  done?: { key: string; type: string; input: unknown };
}

export interface CreatedStep {
  id: number;
  key: string;
  scope: string;
}

/** The step was taken over by another worker (or cancelled) while this one worked on it. */
export class LeaseLost extends Error {
  constructor(stepId: number) {
    super(`step ${stepId} is no longer this worker's (lease lapsed, or the instance was cancelled)`);
  }
}

type Row = Record<string, unknown>;

export function toStepRow(r: Row): StepRow {
  return {
    id: Number(r.id), instanceId: String(r.instance_id), key: String(r.step_key), type: String(r.step_type), scope: String(r.scope ?? ''),
    joinOf: r.join_of == null ? null : Number(r.join_of), status: r.status as StepStatus, was: (r.was ?? r.status) as StepStatus,
    attempts: Number(r.attempts), input: r.input ?? null, leaseToken: (r.lease_token as string | null) ?? null,
  };
}

export function toInstanceRow(r: Row): InstanceRow {
  return {
    id: String(r.id), workflowId: String(r.workflow_id), version: Number(r.version), kind: String(r.kind), status: r.status as InstanceStatus,
    trigger: (r.trigger ?? {}) as Record<string, unknown>, entity: (r.entity as string | null) ?? null, recordId: (r.record_id as string | null) ?? null,
    input: r.input ?? null, vars: (r.vars ?? {}) as Record<string, unknown>, outputs: {},
    parentId: (r.parent_id as string | null) ?? null, parentStepId: r.parent_step_id == null ? null : Number(r.parent_step_id),
    startedBy: (r.started_by as string | null) ?? null, startedByName: String(r.started_by_name),
  };
}

const json = (value: unknown): string => JSON.stringify(value ?? null);

/** Which claim a completion belongs to: a worker's lease, or a waiting step being resumed (approval, sub-workflow). */
export type StepHold = { id: number; lease: string } | { id: number; resumed: true };

const iso = (ms: number): string => new Date(ms).toISOString();

export class InstanceQueue {
  constructor(private readonly db: Database, private readonly leaseSeconds: number, private readonly clock: Clock) {}

  /** The clock's time, bound into SQL: due-ness is the engine's clock's, never the database's now(). */
  private now(): string {
    return this.clock.now().toISOString();
  }

  private get steps() { return this.db.ref('kubiki_wf_steps'); }
  private get instances() { return this.db.ref('kubiki_wf_instances'); }

  /**
   * Inserts instances with their first step, due now. A dedupe key already used inserts nothing
   * (the trigger was seen before); returns the ids actually created.
   */
  async insert(trx: Executor, instances: NewInstance[]): Promise<string[]> {
    if (instances.length === 0) return [];
    const rows = instances.map((i) => ({
      id: i.id, workflow_id: i.workflowId, version: i.version, kind: i.kind, status: 'running', dedupe_key: i.dedupeKey ?? null,
      trigger: json(i.trigger), entity: i.entity ?? null, record_id: i.recordId ?? null, input: i.input === undefined ? null : json(i.input),
      vars: json(i.vars ?? {}), parent_id: i.parentId ?? null, parent_step_id: i.parentStepId ?? null,
      started_by: i.startedBy, started_by_name: i.startedByName,
    }));
    const created: string[] = await this.db.table('kubiki_wf_instances', trx).insert(rows).onConflict('dedupe_key').ignore().returning('id').then((r: Row[]) => r.map((x) => String(x.id)));
    if (created.length === 0) return [];
    const firstOf = new Map(instances.map((i) => [i.id, i.first]));
    await this.db.table('kubiki_wf_steps', trx).insert(created.map((id) => ({
      instance_id: id, step_key: firstOf.get(id)!.key, step_type: firstOf.get(id)!.type, status: 'pending', due_at: this.now(),
    })));
    return created;
  }

  /** Claims up to `limit` due steps under a new lease: pending ones, lapsed leases, timers that came due. */
  async claim(limit: number, leaseToken: string, leaseSeconds: number): Promise<StepRow[]> {
    const now = this.clock.now().getTime();
    const { rows } = await this.db.prepared(this.db.knex,
      `with c as (
         select id, status as was from ? where due_at <= ?::timestamptz and status in ('pending', 'running', 'waiting')
         order by due_at limit ? for update skip locked)
       update ? s set status = 'running', lease_token = ?, due_at = ?::timestamptz,
              attempts = s.attempts + case when c.was = 'waiting' then 0 else 1 end, started_at = coalesce(s.started_at, ?::timestamptz)
       from c where s.id = c.id
       returning s.*, c.was`,
      [this.steps, iso(now), limit, this.steps, leaseToken, iso(now + leaseSeconds * 1000), iso(now)],
    ) as { rows: Row[] };
    return rows.map(toStepRow);
  }

  async loadInstances(ids: string[], trx?: Executor): Promise<Map<string, InstanceRow>> {
    if (ids.length === 0) return new Map();
    const rows: Row[] = await this.db.table('kubiki_wf_instances', trx).whereIn('id', ids);
    const instances = new Map(rows.map((r) => [String(r.id), toInstanceRow(r)]));
    for (const [id, outputs] of await this.loadOutputs(ids, trx)) {
      const instance = instances.get(id);
      if (instance) instance.outputs = outputs;
    }
    return instances;
  }

  /** The latest output of every step done, per instance: what `steps.<id>` shows expressions. */
  async loadOutputs(ids: string[], trx?: Executor): Promise<Map<string, Record<string, unknown>>> {
    const rows: Row[] = await this.db.table('kubiki_wf_steps', trx)
      .distinctOn('instance_id', 'step_key')
      .whereIn('instance_id', ids).where('status', 'done').whereNotNull('output')
      .orderBy([{ column: 'instance_id' }, { column: 'step_key' }, { column: 'id', order: 'desc' }])
      .select('instance_id', 'step_key', 'output');
    const out = new Map<string, Record<string, unknown>>();
    for (const r of rows) {
      const outputs = out.get(String(r.instance_id)) ?? {};
      outputs[String(r.step_key)] = r.output;
      out.set(String(r.instance_id), outputs);
    }
    return out;
  }

  /**
   * Completes a claimed step in one statement: the step row (checked against the lease), the
   * instance's variables/outputs/status, and the next step rows. Throws LeaseLost when the step is
   * not this worker's any more — inside a transaction, that rolls the step's effect back too.
   */
  async complete(trx: Executor, step: StepHold, change: Completion): Promise<CreatedStep[]> {
    const sql = this.completionSql(step, change);
    const { rows } = await this.db.prepared(trx, `with ${sql.ctes} select ${sql.select}`, sql.bindings) as { rows: Record<string, unknown>[] };
    return this.completed(step, rows[0]);
  }

  /** Reads what the completion's `select` returned (also from an entity write it was joined to). */
  completed(step: StepHold, row: Record<string, unknown> | undefined): CreatedStep[] {
    if (!row || Number(row.wf_owned) === 0) throw new LeaseLost(step.id);
    return (row.wf_created as { id: number | string; key: string; scope: string }[]).map((c) => ({ id: Number(c.id), key: c.key, scope: c.scope }));
  }

  /**
   * The completion as CTEs (`wf_s`, `wf_i`, `wf_n`) and the columns reporting it (`wf_owned`,
   * `wf_created`), so it can also ride along in an entity write's own statement. `gate` names a
   * CTE that must have produced a row for the step to complete (the entity write).
   */
  completionSql(step: StepHold, change: Completion, joined?: JoinedWrite): { ctes: string; select: string; bindings: Knex.Value[] } {
    const status = change.status ?? 'done';
    const finished = change.instance && ['completed', 'failed', 'cancelled'].includes(change.instance.status);
    // The claimed step's output is bound, or (a record step joined to its entity write) the written
    // record built in SQL. With `done`, the claimed step was a pure step run just before the record
    // step, which gets a row of its own (done, the written record as output) in the same statement.
    const ownOutputSql = joined && !joined.done ? joined.outputSql : '?::jsonb';
    const ownOutputBinding: Knex.Value[] = joined && !joined.done ? [] : [json(change.output)];
    // Outputs live in the step rows only; the instance row changes only for variables and status.
    const touchInstance = Object.keys(change.vars ?? {}).length > 0 || change.instance !== undefined;
    const doneRow = joined?.done
      ? `select 0 as ord, ?::text as key, ?::text as type, ''::text as scope, 'done'::text as status, null::timestamptz as due, null::uuid as lease,
                (select now from wf_t) as started, (select now from wf_t) as finished, ?::jsonb as input, ${joined.outputSql} as output, 1 as attempts
         union all `
      : '';
    const doneBindings: Knex.Value[] = joined?.done ? [joined.done.key, joined.done.type, json(joined.done.input)] : [];
    const now = this.clock.now();
    return {
      // wf_t: the clock's time, once for the whole statement
      ctes: `wf_t as (select ?::timestamptz as now, ?::timestamptz as lease_until),
       wf_s as (
         update ? set status = ?, output = ${ownOutputSql}, input = coalesce(?::jsonb, input), error = null,
                finished_at = case when ? = 'done' then (select now from wf_t) else null end,
                due_at = case when ? = 'done' then null else ?::timestamptz end, lease_token = null
         where id = ? and (case when ? then status = 'waiting' else lease_token = ? and status = 'running' end)${joined ? ` and exists (select 1 from ${joined.gate})` : ''}
         returning instance_id),
${touchInstance ? `
       wf_i as (
         update ? set vars = vars || ?::jsonb, updated_at = (select now from wf_t),
                status = coalesce(?, status), error = coalesce(?, error), failed_step = coalesce(?, failed_step),
                finished_at = case when ? then (select now from wf_t) else finished_at end
         where id = (select instance_id from wf_s) returning id),` : ''}
       -- a next row inserted as running is this worker's to go on with at once: due when its lease
       -- would lapse; rows are inserted in order (ord), so ids follow the order the steps ran in
       wf_n as (
         insert into ? (instance_id, step_key, step_type, scope, status, due_at, lease_token, started_at, finished_at, input, output, attempts)
         select (select instance_id from wf_s), r.key, r.type, r.scope, r.status, r.due, r.lease, r.started, r.finished, r.input, r.output, r.attempts
         from (${doneRow}select 1 as ord, x.key, x.type, x.scope, x.status,
                case when x.status = 'running' then (select lease_until from wf_t) else x.due::timestamptz end as due, x.lease,
                case when x.status = 'running' then (select now from wf_t) end as started, null::timestamptz as finished, x.input, null::jsonb as output,
                case when x.status = 'running' then 1 else 0 end as attempts
              from jsonb_to_recordset(?::jsonb) as x(key text, type text, scope text, status text, due text, lease uuid, input jsonb)) r
         where exists (select 1 from wf_s)
         order by r.ord
         returning id, step_key, scope, status)`,
      select: `(select count(*) from wf_s)::int as wf_owned,
              coalesce((select json_agg(json_build_object('id', wf_n.id, 'key', wf_n.step_key, 'scope', wf_n.scope) order by wf_n.id) from wf_n where wf_n.status <> 'done'), '[]') as wf_created`,
      bindings: [
        now.toISOString(), iso(now.getTime() + this.leaseSeconds * 1000),
        this.steps, status, ...ownOutputBinding, change.input === undefined ? null : json(change.input),
        status, status, change.waitUntil ?? null, step.id, 'resumed' in step, 'lease' in step ? step.lease : null,
        ...(touchInstance ? [this.instances, json(change.vars ?? {}), change.instance?.status ?? null, change.instance?.error ?? null, change.instance?.failedStep ?? null, Boolean(finished)] : []),
        this.steps, ...doneBindings, json(change.next.map((n) => ({ key: n.key, type: n.type, scope: n.scope, status: n.status, due: n.due === 'now' ? now.toISOString() : n.due, lease: n.lease ?? null, input: n.input ?? null }))),
      ],
    };
  }

  /** A step that failed but may be tried again: back to pending, due after the back-off. */
  async retryLater(step: { id: number; lease: string }, error: string, delayMs: number): Promise<boolean> {
    const n = await this.db.table('kubiki_wf_steps').where({ id: step.id, lease_token: step.lease, status: 'running' })
      .update({ status: 'pending', error, lease_token: null, due_at: iso(this.clock.now().getTime() + delayMs) });
    return n > 0;
  }

  /** Marks a step failed and the instance with it (the admin retries or cancels it). */
  async fail(trx: Executor, step: { id: number; lease?: string }, instanceId: string, stepKey: string, error: string): Promise<boolean> {
    const q = this.db.table('kubiki_wf_steps', trx).where({ id: step.id });
    if (step.lease) q.where({ lease_token: step.lease, status: 'running' });
    const now = this.now();
    const n = await q.update({ status: 'failed', error, lease_token: null, due_at: null, finished_at: now });
    if (n === 0) return false;
    await this.db.table('kubiki_wf_instances', trx).where({ id: instanceId }).whereIn('status', ['running', 'waiting'])
      .update({ status: 'failed', error, failed_step: stepKey, updated_at: now, finished_at: now });
    return true;
  }

  /**
   * A parallel branch arriving at its join: the join row counts arrivals; returns the count so the
   * last branch to arrive goes on from the join.
   */
  async arriveAtJoin(trx: Executor, instanceId: string, joinOf: number, key: string, scope: string): Promise<{ id: number; arrived: number }> {
    const { rows } = await trx.raw(
      `insert into ? as j (instance_id, step_key, step_type, scope, join_of, arrived, status)
       values (?, ?, 'join', ?, ?, 1, 'waiting')
       on conflict (instance_id, join_of) where join_of is not null do update set arrived = j.arrived + 1
       returning id, arrived`,
      [this.steps, instanceId, key, scope, joinOf],
    ) as { rows: { id: number | string; arrived: number }[] };
    return { id: Number(rows[0].id), arrived: Number(rows[0].arrived) };
  }

  /** Makes a waiting row runnable now (a join whose branches all arrived, a resumed step). */
  async release(trx: Executor, stepId: number, lease?: string): Promise<void> {
    const now = this.clock.now().getTime();
    await this.db.table('kubiki_wf_steps', trx).where({ id: stepId })
      .update(lease
        ? { status: 'running', lease_token: lease, due_at: iso(now + this.leaseSeconds * 1000), started_at: iso(now), attempts: 1 }
        : { status: 'pending', due_at: iso(now) });
  }

  /** Cancels every unfinished step of an instance but `except`, and its open approval tasks. */
  async cancelOpenSteps(trx: Executor, instanceId: string, except?: number): Promise<void> {
    const q = this.db.table('kubiki_wf_steps', trx).where({ instance_id: instanceId }).whereIn('status', ['pending', 'running', 'waiting']);
    if (except !== undefined) q.whereNot({ id: except });
    const now = this.now();
    await q.update({ status: 'cancelled', lease_token: null, due_at: null, finished_at: now });
    await this.db.table('kubiki_wf_tasks', trx).where({ instance_id: instanceId, status: 'open' }).update({ status: 'cancelled', decided_at: now });
  }
}
