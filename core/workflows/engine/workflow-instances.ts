import type { Database } from '../../db/database.ts';
import { KubikiError, fieldError } from '../../errors.ts';
import type { Principal } from '../../auth/principal.ts';
import { writeAudit } from '../../audit/audit-trail.ts';
import { isUuid } from '../../entities/list-query.ts';
import type { Clock } from './clock.ts';
import { toInstanceRow, type InstanceStatus } from './instance-queue.ts';
import type { WorkflowEngine } from './workflow-engine.ts';

type Row = Record<string, unknown>;

export interface InstanceSummary {
  id: string;
  workflowId: string;
  version: number;
  kind: string;
  status: InstanceStatus;
  entity: string | null;
  recordId: string | null;
  parentId: string | null;
  error: string | null;
  failedStep: string | null;
  startedBy: string;
  createdAt: string;
  updatedAt: string;
  finishedAt: string | null;
}

export interface StepHistory {
  id: number;
  step: string;
  type: string;
  status: string;
  attempts: number;
  input: unknown;
  output: unknown;
  error: string | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  durationMs: number | null;
  dueAt: string | null;
}

const STATUSES: InstanceStatus[] = ['running', 'waiting', 'completed', 'failed', 'cancelled'];
const LIST_KEYS = new Set(['status', 'workflow', 'entity', 'recordId', 'limit', 'cursor']);

function summary(r: Row): InstanceSummary {
  return {
    id: String(r.id), workflowId: String(r.workflow_id), version: Number(r.version), kind: String(r.kind), status: r.status as InstanceStatus,
    entity: (r.entity as string | null) ?? null, recordId: (r.record_id as string | null) ?? null, parentId: (r.parent_id as string | null) ?? null,
    error: (r.error as string | null) ?? null, failedStep: (r.failed_step as string | null) ?? null, startedBy: String(r.started_by_name),
    createdAt: String(r.created_at), updatedAt: String(r.updated_at), finishedAt: (r.finished_at as string | null) ?? null,
  };
}

function history(r: Row): StepHistory {
  const started = r.started_at ? Date.parse(String(r.started_at)) : NaN;
  const finished = r.finished_at ? Date.parse(String(r.finished_at)) : NaN;
  return {
    id: Number(r.id), step: String(r.step_key), type: String(r.step_type), status: String(r.status), attempts: Number(r.attempts),
    input: r.input ?? null, output: r.output ?? null, error: (r.error as string | null) ?? null, createdAt: String(r.created_at),
    startedAt: (r.started_at as string | null) ?? null, finishedAt: (r.finished_at as string | null) ?? null,
    durationMs: Number.isFinite(started) && Number.isFinite(finished) ? finished - started : null,
    dueAt: (r.due_at as string | null) ?? null,
  };
}

const single = (query: Record<string, string | string[] | undefined>, key: string): string | undefined => {
  const v = query[key];
  if (Array.isArray(v)) throw fieldError('bad-query', key, 'single', `${key} may be given once`);
  return v;
};

/** Instances as admins and analysts see them: list, history, retry, cancel, and pruning of old history. */
export class WorkflowInstances {
  constructor(private readonly db: Database, private readonly engine: WorkflowEngine, private readonly clock: Clock) {}

  async list(query: Record<string, string | string[] | undefined>): Promise<{ data: InstanceSummary[]; next: string | null }> {
    for (const key of Object.keys(query)) if (!LIST_KEYS.has(key)) throw fieldError('bad-query', key, 'unknown-parameter', `unknown parameter ${key} (status, workflow, entity, recordId, limit, cursor)`);
    const q = this.db.table('kubiki_wf_instances');
    const status = single(query, 'status');
    if (status !== undefined) {
      const wanted = status.split(',');
      const bad = wanted.find((s) => !STATUSES.includes(s as InstanceStatus));
      if (bad !== undefined) throw fieldError('bad-query', 'status', 'enum', `status "${bad}" is not one of ${STATUSES.join(', ')}`);
      q.whereIn('status', wanted);
    }
    for (const [param, column] of [['workflow', 'workflow_id'], ['entity', 'entity'], ['recordId', 'record_id']] as const) {
      const v = single(query, param);
      if (v !== undefined) q.where(column, v);
    }
    const rawLimit = single(query, 'limit') ?? '50';
    if (!/^\d{1,3}$/.test(rawLimit) || Number(rawLimit) < 1 || Number(rawLimit) > 200) throw fieldError('bad-query', 'limit', 'range', 'limit must be 1–200');
    const limit = Number(rawLimit);
    const cursor = single(query, 'cursor');
    if (cursor !== undefined) {
      if (!isUuid(cursor)) throw fieldError('bad-query', 'cursor', 'format', 'cursor must be the next value of the previous page');
      q.where('id', '<', cursor);
    }
    // Ids are UUIDv7: newest first by id is newest first by creation.
    const rows: Row[] = await q.orderBy('id', 'desc').limit(limit + 1);
    const more = rows.length > limit;
    if (more) rows.pop();
    return { data: rows.map(summary), next: more ? String(rows[rows.length - 1].id) : null };
  }

  private async row(id: string): Promise<Row> {
    const row: Row | undefined = isUuid(id) ? await this.db.table('kubiki_wf_instances').where({ id }).first() : undefined;
    if (!row) throw new KubikiError('not-found', `no workflow instance ${id}`);
    return row;
  }

  /** One instance with its variables, step outputs and the full step history. */
  async get(id: string): Promise<InstanceSummary & { trigger: unknown; input: unknown; vars: unknown; outputs: unknown; steps: StepHistory[]; children: string[] }> {
    const row = await this.row(id);
    const steps: Row[] = await this.db.table('kubiki_wf_steps').where({ instance_id: id }).orderBy('id');
    const children: string[] = (await this.db.table('kubiki_wf_instances').where({ parent_id: id }).orderBy('id').pluck('id')).map(String);
    const outputs: Record<string, unknown> = {};
    for (const step of steps) if (step.status === 'done' && step.output != null) outputs[String(step.step_key)] = step.output;
    return { ...summary(row), trigger: row.trigger, input: row.input ?? null, vars: row.vars, outputs, steps: steps.map(history), children };
  }

  async retry(id: string, actor: Principal, requestId?: string): Promise<InstanceSummary> {
    await this.db.knex.transaction(async (trx) => {
      const row: Row | undefined = isUuid(id) ? await this.db.table('kubiki_wf_instances', trx).where({ id }).forUpdate().first() : undefined;
      if (!row) throw new KubikiError('not-found', `no workflow instance ${id}`);
      if (row.status !== 'failed') throw new KubikiError('conflict', `instance ${id} is ${String(row.status)}; only failed instances are retried`, { extra: { status: row.status } });
      await this.engine.retryInstance(trx, toInstanceRow(row));
      await writeAudit(this.db, trx, { actor, action: 'retried', plugin: 'core', entity: 'workflow-instances', recordId: id, requestId, changes: { status: { before: 'failed', after: 'running' } } });
    });
    this.engine.kick();
    return summary(await this.row(id));
  }

  async cancel(id: string, actor: Principal, requestId?: string): Promise<InstanceSummary> {
    await this.db.knex.transaction(async (trx) => {
      const row: Row | undefined = isUuid(id) ? await this.db.table('kubiki_wf_instances', trx).where({ id }).forUpdate().first() : undefined;
      if (!row) throw new KubikiError('not-found', `no workflow instance ${id}`);
      if (!['running', 'waiting', 'failed'].includes(String(row.status))) throw new KubikiError('conflict', `instance ${id} is ${String(row.status)}; it cannot be cancelled`, { extra: { status: row.status } });
      await this.engine.cancelInstance(trx, toInstanceRow(row));
      await writeAudit(this.db, trx, { actor, action: 'cancelled', plugin: 'core', entity: 'workflow-instances', recordId: id, requestId, changes: { status: { before: row.status, after: 'cancelled' } } });
    });
    return summary(await this.row(id));
  }

  /** Deletes completed and cancelled top-level instances (with their steps, tasks and sub-workflows) older than `days`; failed ones stay until an admin acts. */
  async prune(days: number): Promise<number> {
    if (days <= 0) return 0;
    const deleted: unknown[] = await this.db.table('kubiki_wf_instances')
      .whereIn('status', ['completed', 'cancelled'])
      .whereNull('parent_id')
      .where('finished_at', '<', new Date(this.clock.now().getTime() - days * 86_400_000).toISOString())
      .delete()
      .returning('id');
    return deleted.length;
  }
}
