import { randomUUID } from 'node:crypto';
import type { Database, Executor } from '../../db/database.ts';
import { KubikiError, fieldError } from '../../errors.ts';
import type { Principal } from '../../auth/principal.ts';
import { writeAudit } from '../../audit/audit-trail.ts';
import { isUuid } from '../../entities/list-query.ts';
import type { ApprovalMode } from '../workflow-definition.ts';
import type { Clock } from './clock.ts';
import { LeaseLost, toInstanceRow, type InstanceRow } from './instance-queue.ts';
import type { StepPlan } from './step-plan.ts';

type ApprovalPlan = Extract<StepPlan, { kind: 'approval' }>;
type Row = Record<string, unknown>;

export interface TaskDecision {
  userId: string;
  username: string;
  decision: 'approved' | 'rejected';
  comment: string;
  at: string;
}

export interface ApprovalTask {
  id: string;
  instanceId: string;
  workflowId: string;
  step: string;
  subject: string;
  mode: ApprovalMode;
  required: number;
  eligible: number;
  status: 'open' | 'approved' | 'rejected' | 'expired' | 'cancelled';
  entity: string | null;
  recordId: string | null;
  deadlineAt: string | null;
  createdAt: string;
  decidedAt: string | null;
  decisions: TaskDecision[];
}

/** The resumption the engine does when a task is decided (kept as a callback: no import cycle). */
export type ResumeStep = (trx: Executor, instance: InstanceRow, stepId: number, nextKey: string, output: unknown) => Promise<void>;

const modeText = (mode: ApprovalMode): string => (typeof mode === 'string' ? mode : `atLeast:${mode.atLeast}`);
const modeOf = (text: string): ApprovalMode => (text.startsWith('atLeast:') ? { atLeast: Number(text.slice(8)) } : (text as 'any' | 'all'));

/**
 * Human tasks of approval steps. Who may decide is fixed when the task opens (the users named, and
 * the active holders of the role then), so "all" and "N of M" have a definite M. The decision that
 * settles a task resumes its workflow in the same transaction.
 */
export class ApprovalTasks {
  constructor(private readonly db: Database, private readonly clock: Clock, private readonly resume: ResumeStep, private readonly kick: () => void) {}

  async open(trx: Executor, instance: InstanceRow, stepId: number, stepKey: string, plan: ApprovalPlan): Promise<string> {
    const users = this.db.table('kubiki_users', trx).where({ active: true });
    users.where((q) => {
      if (plan.users.length) q.whereIn('username', plan.users).orWhereRaw('id::text = any(?)', [plan.users]);
      if (plan.role) q.orWhereRaw('roles @> ?::jsonb', [JSON.stringify([plan.role])]);
    });
    const eligible: string[] = (await users.orderBy('id').pluck('id')).map(String);
    if (eligible.length === 0) {
      throw new KubikiError('validation-failed', `approval step "${stepKey}" has nobody to decide: no active user ${[plan.role && `holds the role ${plan.role}`, plan.users.length && `is named ${plan.users.join(', ')}`].filter(Boolean).join(' or ')}`);
    }
    const required = plan.mode === 'any' ? 1 : plan.mode === 'all' ? eligible.length : plan.mode.atLeast;
    if (required > eligible.length) {
      throw new KubikiError('validation-failed', `approval step "${stepKey}" needs ${required} approvals but only ${eligible.length} user${eligible.length === 1 ? '' : 's'} may decide`);
    }
    const id = randomUUID();
    await this.db.table('kubiki_wf_tasks', trx).insert({
      id, instance_id: instance.id, step_id: stepId, workflow_id: instance.workflowId, step_key: stepKey, subject: plan.subject.slice(0, 1000),
      mode: modeText(plan.mode), required, eligible: JSON.stringify(eligible), status: 'open', deadline_at: plan.deadlineAt ?? null,
    });
    return id;
  }

  /** The deadline passed: open tasks of the step close as expired. */
  async expire(trx: Executor, stepId: number): Promise<void> {
    await this.db.table('kubiki_wf_tasks', trx).where({ step_id: stepId, status: 'open' }).update({ status: 'expired', decided_at: this.clock.now().toISOString() });
  }

  private async decisions(taskIds: string[], trx?: Executor): Promise<Map<string, TaskDecision[]>> {
    const rows: Row[] = taskIds.length ? await this.db.table('kubiki_wf_decisions', trx).whereIn('task_id', taskIds).orderBy('at') : [];
    const out = new Map<string, TaskDecision[]>();
    for (const r of rows) {
      const list = out.get(String(r.task_id)) ?? [];
      list.push({ userId: String(r.user_id), username: String(r.username), decision: r.decision as TaskDecision['decision'], comment: String(r.comment), at: String(r.at) });
      out.set(String(r.task_id), list);
    }
    return out;
  }

  private toTask(r: Row, decisions: TaskDecision[]): ApprovalTask {
    return {
      id: String(r.id), instanceId: String(r.instance_id), workflowId: String(r.workflow_id), step: String(r.step_key), subject: String(r.subject),
      mode: modeOf(String(r.mode)), required: Number(r.required), eligible: (r.eligible as string[]).length, status: r.status as ApprovalTask['status'],
      entity: (r.entity as string | null) ?? null, recordId: (r.record_id as string | null) ?? null,
      deadlineAt: (r.deadline_at as string | null) ?? null, createdAt: String(r.created_at), decidedAt: (r.decided_at as string | null) ?? null, decisions,
    };
  }

  private query(trx?: Executor) {
    return this.db.table('kubiki_wf_tasks as t', trx)
      .join('kubiki_wf_instances as i', 'i.id', 't.instance_id')
      .select('t.*', 'i.entity', 'i.record_id');
  }

  /** The caller's open tasks: those they may decide and have not decided yet. */
  async openFor(principal: Principal): Promise<ApprovalTask[]> {
    if (!principal.userId) return [];
    const rows: Row[] = await this.query()
      .where('t.status', 'open')
      .whereRaw('t.eligible @> ?::jsonb', [JSON.stringify([principal.userId])])
      .whereNotExists((q) => q.select(this.db.knex.raw('1')).from(`${this.db.schema}.kubiki_wf_decisions as d`).whereRaw('d.task_id = t.id').where('d.user_id', principal.userId))
      .orderBy('t.created_at').limit(500);
    const decisions = await this.decisions(rows.map((r) => String(r.id)));
    return rows.map((r) => this.toTask(r, decisions.get(String(r.id)) ?? []));
  }

  /** One task: to those who may decide it, and to workflow readers. */
  async get(id: string, principal: Principal): Promise<ApprovalTask> {
    const row: Row | undefined = isUuid(id) ? await this.query().where('t.id', id).first() : undefined;
    const mayRead = row && ((row.eligible as string[]).includes(principal.userId ?? '') || principal.permissions.grant('core.workflows.read') === 'all');
    if (!row || !mayRead) throw new KubikiError('not-found', `no task ${id}`);
    return this.toTask(row, (await this.decisions([id])).get(id) ?? []);
  }

  async decide(id: string, principal: Principal, decision: 'approved' | 'rejected', body: unknown, requestId?: string): Promise<ApprovalTask> {
    let comment = '';
    if (body !== undefined) {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object: {"comment": "…"}');
      for (const key of Object.keys(body)) if (key !== 'comment') throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (only comment)`);
      const c = (body as { comment?: unknown }).comment;
      if (c !== undefined && (typeof c !== 'string' || c.length > 2000)) throw fieldError('validation-failed', 'comment', 'type', 'comment must be text of at most 2,000 characters');
      comment = (c as string | undefined) ?? '';
    }
    if (decision === 'rejected' && comment.trim() === '') throw fieldError('validation-failed', 'comment', 'required', 'say why in a comment when you reject');
    if (!principal.userId) throw new KubikiError('forbidden', 'only a user can decide a task');
    const userId = principal.userId;
    await this.db.knex.transaction(async (trx) => {
      const task: Row | undefined = isUuid(id) ? await this.db.table('kubiki_wf_tasks', trx).where({ id }).forUpdate().first() : undefined;
      const eligible = (task?.eligible as string[] | undefined) ?? [];
      if (!task || (!eligible.includes(userId) && principal.permissions.grant('core.workflows.read') !== 'all')) throw new KubikiError('not-found', `no task ${id}`);
      if (!eligible.includes(userId)) throw new KubikiError('forbidden', `${principal.username} is not one of the people who decide this task`);
      if (task.status !== 'open') throw new KubikiError('task-closed', `the task is ${String(task.status)}; it cannot be decided any more`, { extra: { status: task.status } });
      const inserted = await this.db.table('kubiki_wf_decisions', trx).insert({ task_id: id, user_id: userId, username: principal.username, decision, comment })
        .onConflict(['task_id', 'user_id']).ignore().returning('user_id');
      if (inserted.length === 0) throw new KubikiError('task-closed', `${principal.username} has already decided this task`);
      await writeAudit(this.db, trx, { actor: principal, action: decision === 'approved' ? 'approved' : 'rejected', plugin: 'core', entity: 'tasks', recordId: id, requestId, changes: { decision: { before: null, after: decision }, comment: { before: null, after: comment } } });
      const counts: Row[] = await this.db.table('kubiki_wf_decisions', trx).where({ task_id: id }).groupBy('decision').select('decision').count({ n: '*' });
      const count = (d: string) => Number(counts.find((c) => c.decision === d)?.n ?? 0);
      const required = Number(task.required);
      const mode = modeOf(String(task.mode));
      const outcome = count('approved') >= required ? 'approved'
        : mode === 'any' || count('rejected') > eligible.length - required ? 'rejected' : undefined;
      if (!outcome) return;
      await this.db.table('kubiki_wf_tasks', trx).where({ id }).update({ status: outcome, decided_at: this.clock.now().toISOString() });
      const [instanceRow]: Row[] = await this.db.table('kubiki_wf_instances', trx).where({ id: task.instance_id });
      const instance = toInstanceRow(instanceRow);
      const plan = (await this.db.table('kubiki_wf_steps', trx).where({ id: task.step_id }).first('input'))?.input as ApprovalPlan | undefined;
      if (!plan) throw new KubikiError('conflict', 'the approval step of this task is gone');
      const decided = (await this.decisions([id], trx)).get(id) ?? [];
      try {
        await this.resume(trx, instance, Number(task.step_id), outcome === 'approved' ? plan.approved : plan.rejected, { outcome, decisions: decided.map(({ username, decision: d, comment: c }) => ({ username, decision: d, comment: c })) });
      } catch (error) {
        // The deadline came due and a worker took the step a moment ago.
        if (error instanceof LeaseLost) throw new KubikiError('task-closed', 'the task\'s deadline has just passed; it cannot be decided any more');
        throw error;
      }
    });
    this.kick();
    return this.get(id, principal);
  }
}
