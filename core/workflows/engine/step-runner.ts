import type { Logger } from 'pino';
import type { Executor } from '../../db/database.ts';
import { KubikiError, isKubikiError } from '../../errors.ts';
import { SYSTEM, type Principal } from '../../auth/principal.ts';
import { PermissionSet } from '../../auth/permissions.ts';
import type { EntityRepository } from '../../entities/entity-repository.ts';
import type { ApiRecord } from '../../entities/record-codec.ts';
import type { ParallelStep, Step, WorkflowDefinition } from '../workflow-definition.ts';
import type { ApprovalTasks } from './approval-tasks.ts';
import { workflowHttpRequest } from './http-request.ts';
import { LeaseLost, type InstanceQueue, type InstanceRow, type NewStep, type StepHold, type StepRow, type StepStatus } from './instance-queue.ts';
import { planStep, type StepPlan, type StepScope } from './step-plan.ts';
import { recordFields } from './record-fields.ts';
import { errorText, retryDelay } from './step-retries.ts';
import type { StartRequest, WorkflowEngineDeps } from './workflow-engine.ts';

/** The step being worked on: claimed by this worker, or handed on to it by the step before. */
interface Current {
  id: number;
  key: string;
  scope: string;
  was: StepStatus;
  attempts: number;
  input: unknown;
}

/** One instance as a worker sees it while it runs a chain of its steps. */
interface Run {
  instance: InstanceRow;
  def: WorkflowDefinition;
  lease: string;
  record: unknown;
  /**
   * A pure step (condition, set, switch) already run whose completion waits to be written with
   * the record step after it, in that step's one statement. The step after it has no row yet
   * (its Current has id 0) until `flush` writes the pure step's completion.
   */
  pending?: { current: Current; change: { output?: unknown; vars?: Record<string, unknown>; input: unknown } };
}

const RECORD_STEPS = new Set(['createRecord', 'updateRecord']);

/** Steps one worker runs back to back for an instance before it puts the rest back in the queue. */
const MAX_CHAIN = 200;

const isTransaction = (exec: Executor): boolean => (exec as { isTransaction?: boolean }).isTransaction === true;

/** Who a workflow acts as: itself (audited as `workflow:<id>`), with the system's permissions. */
export function workflowActor(workflowId: string): Principal {
  return { userId: null, username: `workflow:${workflowId}`, displayName: `Workflow ${workflowId}`, roles: [], permissions: new PermissionSet(['*']) };
}

/** Scope strings stack the enclosing parallel steps: `<row id>:<parallel step id>/…`. */
function innermost(scope: string): { rowId: number; key: string; parent: string } {
  const cut = scope.lastIndexOf('/');
  const last = scope.slice(cut + 1);
  const colon = last.indexOf(':');
  return { rowId: Number(last.slice(0, colon)), key: last.slice(colon + 1), parent: cut < 0 ? '' : scope.slice(0, cut) };
}


/**
 * Carries out a worker's claimed steps: plans each step, performs its effect, completes it (lease
 * checked) and goes on with the next step of the same instance while it can — through joins,
 * sub-workflows, waits, approvals, retries and failures. WorkflowEngine owns the claiming.
 */
export class StepRunner {
  tasks!: ApprovalTasks;
  private readonly log: Logger;

  constructor(
    private readonly deps: WorkflowEngineDeps,
    private readonly queue: InstanceQueue,
    private readonly kick: () => void,
    private readonly startMany: (requests: StartRequest[], trx?: Executor) => Promise<string[]>,
  ) {
    this.log = deps.logger;
  }

  private async loadRecord(instance: InstanceRow): Promise<unknown> {
    const { entity, recordId } = instance;
    if (!entity || !recordId || !this.deps.hasEntity(entity)) return null;
    try {
      return await this.deps.repository(entity).get(recordId, { actor: SYSTEM });
    } catch (error) {
      if (!isKubikiError(error) || error.code !== 'not-found') throw error;
      // A deleted record: what it was, from the event that triggered the instance.
      const changes = (instance.trigger.changes ?? {}) as Record<string, { before?: unknown }>;
      const before = Object.fromEntries(Object.entries(changes).map(([k, v]) => [k, v?.before]).filter(([, v]) => v !== null && v !== undefined));
      return Object.keys(before).length ? { id: recordId, ...before } : null;
    }
  }

  async runClaimed(row: StepRow, instance: InstanceRow | undefined, lease: string, record?: unknown): Promise<void> {
    if (!instance) return;
    let def: WorkflowDefinition;
    let run: Run;
    try {
      def = await this.deps.published.definition(instance.workflowId, instance.version);
      run = { instance, def, lease, record: record ?? await this.loadRecord(instance) };
    } catch (error) {
      await this.failed({ instance, def: { id: instance.workflowId } as WorkflowDefinition, lease, record: null }, toCurrent(row), undefined, error);
      return;
    }
    let next: Current | undefined = toCurrent(row);
    for (let hops = 0; next; hops++) {
      const current: Current = next;
      if (hops === MAX_CHAIN) {
        // Long loops share the workers: the rest goes back to the queue, due now.
        const row = run.pending ? await this.flush(run, current) : current;
        await this.queue.retryLater({ id: row.id, lease }, 'continued later (long chain)', 0);
        this.kick();
        return;
      }
      const step: Step | undefined = def.steps?.[current.key];
      try {
        next = await this.runStep(run, current, step);
      } catch (error) {
        if (error instanceof LeaseLost) {
          this.log.warn({ step: current.id, instance: instance.id }, error.message);
          return;
        }
        try {
          // The pure step before it did run: record it, so the failure is the failing step's.
          const failing = run.pending ? await this.flush(run, current) : current;
          await this.failed(run, failing, step, error);
        } catch (inner) {
          if (!(inner instanceof LeaseLost)) throw inner;
        }
        return;
      }
    }
  }

  private scopeOf(run: Run): StepScope {
    const { instance } = run;
    return { trigger: instance.trigger, record: run.record, vars: instance.vars, steps: instance.outputs, input: instance.input ?? undefined, now: this.deps.clock.now() };
  }

  private async runStep(run: Run, current: Current, step: Step | undefined): Promise<Current | undefined> {
    if (!step) throw new KubikiError('validation-failed', `step "${current.key}" is not in version ${run.instance.version} of ${run.instance.workflowId}`);
    if (current.was === 'waiting') return this.wake(run, current, step, { id: current.id, lease: run.lease });
    const plan = planStep(current.key, step, this.scopeOf(run));
    // Only a record step's fast path can take a pending pure step along; anything else needs its row.
    if (run.pending && !RECORD_STEPS.has(plan.kind)) current = await this.flush(run, current);
    const hold: StepHold = { id: current.id, lease: run.lease };
    const actor = workflowActor(run.instance.workflowId);
    const key = `wf-${current.id}`;
    const inTransaction = async (work: (trx: Executor) => Promise<unknown>): Promise<Current | undefined> => {
      const result = await this.deps.db.knex.transaction(async (trx) => {
        const output = await work(trx);
        return this.advance(trx, run, current, hold, 'next' in plan ? plan.next : undefined, { output, input: plan });
      });
      this.deps.kickEvents();
      return result;
    };
    switch (plan.kind) {
      case 'go': {
        if (plan.vars) Object.assign(run.instance.vars, plan.vars);
        const following = plan.next === undefined ? undefined : run.def.steps?.[plan.next];
        if (!current.scope && following && RECORD_STEPS.has(following.type)) {
          // Written together with the record step that follows (one statement for both).
          if (plan.output !== undefined) run.instance.outputs[current.key] = plan.output;
          run.pending = { current, change: { output: plan.output, vars: plan.vars, input: plan } };
          return { id: 0, key: plan.next!, scope: '', was: 'pending', attempts: 1, input: null };
        }
        return this.advance(this.deps.db.knex, run, current, hold, plan.next, { output: plan.output, vars: plan.vars, input: plan });
      }
      case 'createRecord':
      case 'updateRecord': {
        const joined = await this.writeInOneStatement(run, current, plan);
        if (joined) return joined.next;
        if (run.pending) return this.runStep(run, await this.flush(run, current), step);
        return inTransaction(async (trx) => {
          const repo = this.deps.repository(plan.entity);
          const fields = recordFields(repo.entity, plan.fields);
          const record = plan.kind === 'createRecord' ? await repo.create(fields, { actor, trx }) : await repo.update(plan.id, fields, { actor, trx });
          if (plan.kind === 'updateRecord' && plan.entity === run.instance.entity && plan.id === run.instance.recordId) run.record = record;
          return record;
        });
      }
      case 'queryRecords': {
        const query: Record<string, string> = { limit: String(plan.limit) };
        for (const [field, value] of Object.entries(plan.where)) query[field] = typeof value === 'string' ? value : JSON.stringify(value);
        if (plan.sort) query.sort = plan.sort;
        const { data } = await this.deps.repository(plan.entity).listFromQuery(query, { actor });
        return this.advance(this.deps.db.knex, run, current, hold, plan.next, { output: { records: data, count: data.length }, input: plan });
      }
      case 'callAction': {
        const action = this.deps.actions.get(plan.action);
        return inTransaction(async (trx) => (await action.handler(plan.input, { trx, actor, instanceId: run.instance.id, idempotencyKey: key })) ?? null);
      }
      case 'renderDocument': {
        const rendered = await this.deps.documents.produce(plan.template, plan.recordId, plan.format, actor);
        return inTransaction((trx) => rendered.store(trx));
      }
      case 'notify':
        return this.advance(this.deps.db.knex, run, current, hold, plan.next, { output: await this.notify(run, plan, key, actor), input: plan });
      case 'http':
        return this.advance(this.deps.db.knex, run, current, hold, plan.next, { output: await workflowHttpRequest(plan, this.deps.httpAllow, key), input: plan });
      case 'wait':
        if (new Date(plan.until).getTime() <= this.deps.clock.now().getTime()) return this.advance(this.deps.db.knex, run, current, hold, plan.next, { output: { until: plan.until }, input: plan });
        await this.queue.complete(this.deps.db.knex, hold, { status: 'waiting', waitUntil: plan.until, input: plan, next: [], instance: { status: 'waiting' } });
        return undefined;
      case 'approval':
        await this.deps.db.knex.transaction(async (trx) => {
          await this.tasks.open(trx, run.instance, current.id, current.key, plan);
          await this.queue.complete(trx, hold, { status: 'waiting', waitUntil: plan.deadlineAt ?? null, input: plan, next: [], instance: { status: 'waiting' } });
        });
        return undefined;
      case 'parallel':
        return this.fork(run, current, hold, plan);
      case 'subWorkflow':
        await this.deps.db.knex.transaction(async (trx) => {
          const child = this.deps.published.get(plan.workflow);
          if (!child) throw new KubikiError('validation-failed', `sub-workflow ${plan.workflow} is not published`);
          await this.startMany([{
            workflowId: child.id, version: child.version, definition: child.definition, kind: 'subworkflow', input: plan.input,
            trigger: { type: 'subWorkflow', parentInstanceId: run.instance.id, parentStep: current.key },
            entity: run.instance.entity, recordId: run.instance.recordId, actor, parent: { instanceId: run.instance.id, stepId: current.id },
          }], trx);
          await this.queue.complete(trx, hold, { status: 'waiting', waitUntil: null, input: plan, next: [], instance: { status: 'waiting' } });
        });
        this.kick();
        return undefined;
      case 'end':
        await this.deps.db.knex.transaction(async (trx) => {
          await this.queue.complete(trx, hold, { output: { status: plan.status }, input: plan, next: [], instance: { status: plan.status } });
          await this.queue.cancelOpenSteps(trx, run.instance.id, current.id);
          await this.finished(trx, run.instance, plan.status);
        });
        return undefined;
    }
  }

  /**
   * The fast path of record steps: the entity write, its audit row and event, and the step's
   * completion (lease checked, next step inserted) in ONE statement — no transaction round trips.
   * Undefined when the step needs more than that (a parallel join, a parent to resume, an update
   * that changed nothing): the caller then takes the transactional path.
   */
  private async writeInOneStatement(run: Run, current: Current, plan: Extract<StepPlan, { kind: 'createRecord' | 'updateRecord' }>): Promise<{ next: Current | undefined } | undefined> {
    if (current.scope || (plan.next === undefined && run.instance.parentId)) return undefined;
    const step = plan.next === undefined ? undefined : run.def.steps?.[plan.next];
    if (plan.next !== undefined && !step) return undefined;
    const pending = run.pending;
    const hold = { id: pending ? pending.current.id : current.id, lease: run.lease };
    const next: NewStep[] = step ? [{ key: plan.next!, type: step.type, scope: '', status: 'running', due: null, lease: run.lease }] : [];
    const instance = step ? this.running(run) : { status: 'completed' as const };
    const written = { gate: 'written', outputSql: '(select record from written_record)' };
    const sql = pending
      ? this.queue.completionSql(hold, { ...pending.change, outputKey: pending.current.key, next, instance }, { ...written, done: { key: current.key, type: plan.kind, input: plan } })
      : this.queue.completionSql(hold, { input: plan, outputKey: current.key, next, instance }, written);
    let created: ReturnType<InstanceQueue['completed']> | undefined;
    const companion = {
      ...sql,
      // Fails the whole statement (nothing written) when the lease was lost meanwhile.
      guard: '1 / (select count(*) from wf_s)',
      receive: (row: Record<string, unknown> | undefined) => { created = row ? this.queue.completed(hold, row) : undefined; },
    };
    const repo = this.deps.repository(plan.entity);
    let record: Record<string, unknown>;
    try {
      record = plan.kind === 'createRecord'
        ? await repo.create(recordFields(repo.entity, plan.fields), { actor: workflowActor(run.instance.workflowId), companion })
        : await repo.update(plan.id, recordFields(repo.entity, plan.fields), {
          actor: workflowActor(run.instance.workflowId), companion,
          // The instance's own record was read with the claim: no second read (a stale one loses and retries).
          current: plan.entity === run.instance.entity && plan.id === run.instance.recordId && typeof (run.record as ApiRecord | null)?.version === 'number' ? run.record as ApiRecord : undefined,
        });
    } catch (error) {
      if ((error as { code?: string }).code === '22012') throw new LeaseLost(current.id);
      throw error;
    }
    if (!created) return undefined;
    run.pending = undefined;
    this.deps.kickEvents();
    run.instance.outputs[current.key] = record;
    if (plan.kind === 'updateRecord' && plan.entity === run.instance.entity && plan.id === run.instance.recordId) run.record = record;
    return { next: step ? { id: created[0].id, key: plan.next!, scope: '', was: 'pending', attempts: 1, input: null } : undefined };
  }

  /** The instance change of a step that leads on: none while it is running already (no row rewrite). */
  private running(run: Run): { status: 'running' } | undefined {
    if (run.instance.status === 'running') return undefined;
    run.instance.status = 'running';
    return { status: 'running' };
  }

  /** Writes a pending pure step's completion, giving the step after it (`current`) its row. */
  private async flush(run: Run, current: Current): Promise<Current> {
    const pending = run.pending!;
    run.pending = undefined;
    const type = run.def.steps![current.key].type;
    const [created] = await this.queue.complete(this.deps.db.knex, { id: pending.current.id, lease: run.lease }, {
      ...pending.change, outputKey: pending.current.key, next: [{ key: current.key, type, scope: '', status: 'running', due: null, lease: run.lease }], instance: this.running(run),
    });
    return { ...current, id: created.id };
  }

  /** A waiting step came due: a timer ran out, or an approval's deadline passed. */
  private async wake(run: Run, current: Current, step: Step, hold: StepHold): Promise<Current | undefined> {
    if (step.type === 'wait') {
      return this.advance(this.deps.db.knex, run, current, hold, step.next, { output: { until: (current.input as { until?: string } | null)?.until ?? null } });
    }
    if (step.type === 'approval') {
      return this.deps.db.knex.transaction(async (trx) => {
        await this.tasks.expire(trx, current.id);
        return this.advance(trx, run, current, hold, step.onDeadline ?? step.rejected, { output: { outcome: 'deadline' } });
      });
    }
    throw new KubikiError('validation-failed', `a ${step.type} step cannot come due while waiting`);
  }

  private async notify(run: Run, plan: Extract<StepPlan, { kind: 'notify' }>, key: string, actor: Principal): Promise<unknown> {
    const attachments: { documentId: string }[] = [];
    if (plan.attachDocument) {
      const doc = run.instance.outputs[plan.attachDocument] as { id?: string } | undefined;
      if (doc?.id) attachments.push({ documentId: doc.id });
    }
    const { notification, created } = await this.deps.notifications.send({
      channel: plan.channel, to: plan.to, subject: plan.subject, body: plan.body, idempotencyKey: key, ...(attachments.length ? { attachments } : {}),
    }, actor);
    let result = notification;
    // A retry of this step finds the first attempt's row: send that one again instead of a new one.
    if (!created && result.status === 'failed') result = await this.deps.notifications.retry(result.id, actor);
    // Still queued: an earlier attempt is sending it, or stopped mid-send (then it turns failed and the next try resends).
    if (!created && result.status === 'queued') throw new Error(`the ${plan.channel} to ${plan.to} is still being sent by an earlier attempt`);
    if (result.status === 'failed') throw new Error(`the ${plan.channel} to ${plan.to} could not be sent: ${result.lastError ?? 'unknown error'}`);
    return { notificationId: result.id, status: result.status };
  }

  private fork(run: Run, current: Current, hold: StepHold, plan: Extract<StepPlan, { kind: 'parallel' }>): Promise<Current | undefined> {
    const scope = `${current.scope ? `${current.scope}/` : ''}${current.id}:${current.key}`;
    const next: NewStep[] = plan.branches.map((key, i) => ({
      key, type: run.def.steps![key].type, scope, status: i === 0 ? 'running' : 'pending', due: i === 0 ? null : 'now', lease: i === 0 ? run.lease : undefined,
    }));
    return this.queue.complete(this.deps.db.knex, hold, { output: null, input: plan, next }).then((created) => {
      if (created.length > 1) this.kick();
      return { id: created[0].id, key: created[0].key, scope, was: 'pending', attempts: 1, input: null };
    });
  }

  /**
   * Completes the current step and moves on: to the next step (kept by this worker when it holds
   * a lease), to a parallel join (the last branch to arrive goes on), or to the end of the instance.
   */
  private async advance(exec: Executor, run: Run, current: Current, hold: StepHold, nextKey: string | undefined,
    change: { output?: unknown; vars?: Record<string, unknown>; input?: unknown }): Promise<Current | undefined> {
    const def = run.def;
    const continuing = 'lease' in hold;
    const base = { output: change.output ?? null, vars: change.vars, outputKey: current.key, input: change.input };
    if (change.output !== undefined) run.instance.outputs[current.key] = change.output;
    let join: { rowId: number; key: string; parent: string; branches: number } | undefined;
    if (current.scope) {
      const inner = innermost(current.scope);
      const parallel = def.steps?.[inner.key] as ParallelStep | undefined;
      if (parallel && (nextKey === undefined || nextKey === parallel.join)) join = { rowId: inner.rowId, key: parallel.join, parent: inner.parent, branches: parallel.branches.length };
    }
    if (!join && nextKey !== undefined) {
      const step = def.steps?.[nextKey];
      if (!step) throw new KubikiError('validation-failed', `step "${current.key}" leads to "${nextKey}", which is not a step`);
      const status = continuing ? 'running' : 'pending';
      const created = await this.queue.complete(exec, hold, {
        ...base, next: [{ key: nextKey, type: step.type, scope: current.scope, status, due: continuing ? null : 'now', lease: continuing ? hold.lease : undefined }], instance: this.running(run),
      });
      if (!continuing) {
        this.kick();
        return undefined;
      }
      return { id: created[0].id, key: nextKey, scope: current.scope, was: 'pending', attempts: 1, input: null };
    }
    if (!isTransaction(exec)) return this.deps.db.knex.transaction((trx) => this.advance(trx, run, current, hold, nextKey, change));
    if (!join) {
      await this.queue.complete(exec, hold, { ...base, next: [], instance: { status: 'completed' } });
      await this.finished(exec, run.instance, 'completed');
      return undefined;
    }
    await this.queue.complete(exec, hold, { ...base, next: [] });
    const arrival = await this.queue.arriveAtJoin(exec, run.instance.id, join.rowId, join.key, join.parent);
    if (arrival.arrived < join.branches) return undefined;
    await this.queue.release(exec, arrival.id, continuing ? hold.lease : undefined);
    if (!continuing) {
      this.kick();
      return undefined;
    }
    return { id: arrival.id, key: join.key, scope: join.parent, was: 'pending', attempts: 1, input: null };
  }

  /** An instance finished: a parent waiting on it as a sub-workflow goes on (or fails with it). */
  private async finished(trx: Executor, instance: InstanceRow, status: 'completed' | 'cancelled' | 'failed', error?: string): Promise<void> {
    if (!instance.parentId || instance.parentStepId === null) return;
    const [parent] = [...(await this.queue.loadInstances([instance.parentId], trx)).values()];
    if (!parent || !['running', 'waiting'].includes(parent.status)) return;
    const stepRow: Record<string, unknown> | undefined = await this.deps.db.table('kubiki_wf_steps', trx).where({ id: instance.parentStepId, status: 'waiting' }).forUpdate().first();
    if (!stepRow) return;
    const def = await this.deps.published.definition(parent.workflowId, parent.version, trx);
    const key = String(stepRow.step_key);
    if (status !== 'completed') {
      const message = `sub-workflow ${instance.workflowId} (instance ${instance.id}) ${status === 'failed' ? `failed: ${error ?? ''}` : 'was cancelled'}`;
      await this.queue.fail(trx, { id: instance.parentStepId }, parent.id, key, message);
      await this.finished(trx, parent, 'failed', message);
      return;
    }
    const vars: { vars: Record<string, unknown> } | undefined = await this.deps.db.table('kubiki_wf_instances', trx).where({ id: instance.id }).first('vars');
    const run: Run = { instance: parent, def, lease: '', record: null };
    const step = def.steps?.[key];
    await this.advance(trx, run, { id: instance.parentStepId, key, scope: String(stepRow.scope ?? ''), was: 'waiting', attempts: 0, input: null },
      { id: instance.parentStepId, resumed: true }, step && 'next' in step ? step.next : undefined,
      { output: { instanceId: instance.id, status, vars: vars?.vars ?? {} } });
  }

  /** Resumes a waiting step from outside a worker (an approval decided): completes it and queues what follows. */
  async resume(trx: Executor, instance: InstanceRow, stepId: number, nextKey: string | undefined, output: unknown): Promise<void> {
    const def = await this.deps.published.definition(instance.workflowId, instance.version, trx);
    const row: Record<string, unknown> = await this.deps.db.table('kubiki_wf_steps', trx).where({ id: stepId }).first();
    const run: Run = { instance, def, lease: '', record: null };
    await this.advance(trx, run, { id: stepId, key: String(row.step_key), scope: String(row.scope ?? ''), was: 'waiting', attempts: 0, input: null },
      { id: stepId, resumed: true }, nextKey, { output });
  }

  private async failed(run: Run, current: Current, step: Step | undefined, error: unknown): Promise<void> {
    const message = errorText(error);
    const delay = retryDelay(step, current.attempts, error, this.deps.clock.now());
    if (delay !== undefined) {
      this.log.warn({ instance: run.instance.id, step: current.key, attempts: current.attempts, err: error }, `workflow step failed; retrying in ${Math.round(delay / 1000)} s`);
      await this.queue.retryLater({ id: current.id, lease: run.lease }, message, delay);
      return;
    }
    this.log.warn({ instance: run.instance.id, step: current.key, attempts: current.attempts, err: error }, 'workflow step failed; the instance is failed');
    await this.deps.db.knex.transaction(async (trx) => {
      if (await this.queue.fail(trx, { id: current.id, lease: run.lease }, run.instance.id, current.key, message)) {
        await this.finished(trx, run.instance, 'failed', message);
      }
    });
  }

  /** Admin: a failed instance's failed steps run again (attempts start over). */
  async retryInstance(trx: Executor, instance: InstanceRow): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    await this.deps.db.table('kubiki_wf_steps', trx).where({ instance_id: instance.id, status: 'failed' })
      .update({ status: 'pending', attempts: 0, error: null, due_at: now, finished_at: null });
    await this.deps.db.table('kubiki_wf_instances', trx).where({ id: instance.id })
      .update({ status: 'running', error: null, failed_step: null, finished_at: null, updated_at: now });
  }

  /** Admin: stops an instance and its sub-workflows; a parent waiting on it fails. */
  async cancelInstance(trx: Executor, instance: InstanceRow): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    const children: { id: string }[] = await this.deps.db.table('kubiki_wf_instances', trx).where({ parent_id: instance.id }).whereIn('status', ['running', 'waiting']).select('id');
    for (const child of (await this.queue.loadInstances(children.map((c) => c.id), trx)).values()) {
      await this.deps.db.table('kubiki_wf_instances', trx).where({ id: child.id }).update({ status: 'cancelled', updated_at: now, finished_at: now });
      await this.queue.cancelOpenSteps(trx, child.id);
    }
    await this.queue.cancelOpenSteps(trx, instance.id);
    await this.deps.db.table('kubiki_wf_instances', trx).where({ id: instance.id }).update({ status: 'cancelled', updated_at: now, finished_at: now });
    await this.finished(trx, instance, 'cancelled');
  }
}

function toCurrent(row: StepRow): Current {
  return { id: row.id, key: row.key, scope: row.scope, was: row.was, attempts: row.attempts, input: row.input };
}
