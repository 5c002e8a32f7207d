import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import type { Database, Executor } from '../../db/database.ts';
import { KubikiError } from '../../errors.ts';
import { SYSTEM, type Principal } from '../../auth/principal.ts';
import type { EntityRepository } from '../../entities/entity-repository.ts';
import type { NotificationService } from '../../notifications/notification-service.ts';
import type { DocumentService } from '../../templates/document-service.ts';
import type { WorkflowDefinition } from '../workflow-definition.ts';
import { InstanceQueue, type InstanceRow, type NewInstance } from './instance-queue.ts';
import type { PublishedWorkflows } from './published-workflows.ts';
import type { WorkflowActions } from './workflow-actions.ts';
import type { ApprovalTasks } from './approval-tasks.ts';
import { every, type Clock, type ClockTimer } from './clock.ts';
import { StepRunner } from './step-runner.ts';

export interface WorkflowEngineDeps {
  db: Database;
  logger: Logger;
  published: PublishedWorkflows;
  actions: WorkflowActions;
  repository(qualifiedName: string): EntityRepository;
  hasEntity(qualifiedName: string): boolean;
  notifications: NotificationService;
  documents: DocumentService;
  /** Entity writes made inside a step's transaction queue events: ask for their delivery after commit. */
  kickEvents(): void;
  concurrency: number;
  pollMs: number;
  leaseSeconds: number;
  httpAllow: string[];
  clock: Clock;
}

export interface StartRequest {
  workflowId: string;
  version: number;
  definition: WorkflowDefinition;
  kind: NewInstance['kind'];
  trigger: Record<string, unknown>;
  entity?: string | null;
  recordId?: string | null;
  input?: unknown;
  dedupeKey?: string | null;
  actor: Principal;
  /** Where to begin; automations default to their `start`. */
  startStep?: string;
  parent?: { instanceId: string; stepId: number };
}

const isTransaction = (exec: Executor): boolean => (exec as { isTransaction?: boolean }).isTransaction === true;

/**
 * Durable execution: instances and their steps are rows; workers (any process, any number) claim
 * due steps with FOR UPDATE SKIP LOCKED under a lease and hand them to the StepRunner, which goes
 * on with the next steps of the same instance at once (no round trip through the queue) until the
 * instance has to wait or ends. This class owns the claiming loop and starting instances.
 */
export class WorkflowEngine {
  readonly queue: InstanceQueue;
  private readonly runner: StepRunner;
  private timer?: ClockTimer;
  private inFlight = 0;
  private claiming = false;
  /** A pump asked for while a claim was under way: that claim may have missed what it was for. */
  private pumpAgain = false;
  private stopped = true;
  private idleWaiters: (() => void)[] = [];
  private readonly log: Logger;

  constructor(private readonly deps: WorkflowEngineDeps) {
    this.queue = new InstanceQueue(deps.db, deps.leaseSeconds, deps.clock);
    this.log = deps.logger;
    this.runner = new StepRunner(deps, this.queue, () => this.kick(), (requests, trx) => this.startMany(requests, trx));
  }

  /** Approval tasks open and resume through the runner (set once, by the runtime). */
  set tasks(tasks: ApprovalTasks) {
    this.runner.tasks = tasks;
  }

  start(): void {
    this.stopped = false;
    this.timer = every(this.deps.clock, this.deps.pollMs, () => this.pump());
    this.pump();
  }

  /** Stops claiming and waits for the steps in hand to finish. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.timer?.cancel();
    // Woken by the last step or claim to finish, not by polling: no timer, so a manual clock cannot stall it.
    if (this.inFlight > 0 || this.claiming) await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  private checkIdle(): void {
    if (this.inFlight > 0 || this.claiming) return;
    for (const resolve of this.idleWaiters.splice(0)) resolve();
  }

  /** Asks for a claiming round soon (new instances, released joins, resumed approvals). */
  kick(): void {
    if (!this.stopped) setImmediate(() => this.pump());
  }

  private pump(): void {
    if (this.stopped) return;
    if (this.claiming) {
      // The claim in flight read the clock before it waited for a connection: a step made due
      // since (a kick) is after its "now", so it would wait for the next poll.
      this.pumpAgain = true;
      return;
    }
    const room = this.deps.concurrency - this.inFlight;
    // Claims come in batches: one claim (and one load of instances, outputs and records) for a
    // quarter of the slots, not for each instance that finishes.
    if (room <= 0 || (this.inFlight > 0 && room < Math.max(1, Math.floor(this.deps.concurrency / 4)))) return;
    this.claiming = true;
    this.pumpAgain = false;
    this.claimAndRun(room)
      .then((claimed) => {
        this.claiming = false;
        this.checkIdle();
        if (claimed === room || this.pumpAgain) this.pump();
      })
      .catch((error) => {
        this.claiming = false;
        this.checkIdle();
        this.log.error({ err: error }, 'workflow claim failed');
      });
  }

  /** Claims up to `limit` due steps and starts them; resolves once they are claimed (not done). */
  private async claimAndRun(limit: number, wait?: Promise<void>[]): Promise<number> {
    const lease = randomUUID();
    const rows = await this.queue.claim(limit, lease, this.deps.leaseSeconds);
    if (rows.length === 0) return 0;
    const instances = await this.queue.loadInstances([...new Set(rows.map((r) => r.instanceId))]);
    const records = await this.loadRecords([...instances.values()]);
    for (const row of rows) {
      this.inFlight++;
      const instance = instances.get(row.instanceId);
      const done = this.runner.runClaimed(row, instance, lease, instance ? records.get(`${instance.entity}/${instance.recordId}`) : undefined)
        .catch((error) => this.log.error({ err: error, step: row.id }, 'workflow step crashed'))
        .finally(() => {
          this.inFlight--;
          this.checkIdle();
          this.pump();
        });
      wait?.push(done);
    }
    return rows.length;
  }

  /**
   * Runs everything due now in this process and resolves when nothing is left (tests, the CLI):
   * the same claim path as the background workers, so it is safe next to them.
   */
  async runUntilIdle(maxRounds = 10_000): Promise<number> {
    let total = 0;
    for (let round = 0; round < maxRounds; round++) {
      const wait: Promise<void>[] = [];
      const claimed = await this.claimAndRun(Math.max(this.deps.concurrency, 1), wait);
      await Promise.all(wait);
      if (claimed === 0) return total;
      total += claimed;
    }
    return total;
  }

  // ---- starting instances -------------------------------------------------------------------

  newInstance(request: StartRequest): NewInstance {
    const first = request.startStep ?? request.definition.start;
    const step = first === undefined ? undefined : request.definition.steps?.[first];
    if (!first || !step) throw new KubikiError('validation-failed', `workflow ${request.workflowId} has no step "${first ?? ''}" to start from`);
    return {
      id: uuidv7(), workflowId: request.workflowId, version: request.version, kind: request.kind, trigger: request.trigger,
      entity: request.entity ?? null, recordId: request.recordId ?? null, input: request.input, dedupeKey: request.dedupeKey ?? null,
      parentId: request.parent?.instanceId ?? null, parentStepId: request.parent?.stepId ?? null,
      startedBy: request.actor.userId, startedByName: request.actor.username, first: { key: first, type: step.type },
    };
  }

  /** Starts instances (inside `trx` when given); a repeated dedupe key starts nothing. Returns the ids created. */
  async startMany(requests: StartRequest[], trx?: Executor): Promise<string[]> {
    if (requests.length === 0) return [];
    const instances = requests.map((r) => this.newInstance(r));
    const created = trx && isTransaction(trx)
      ? await this.queue.insert(trx, instances)
      : await this.deps.db.knex.transaction((t) => this.queue.insert(t, instances));
    if (created.length && !trx) this.kick();
    return created;
  }

  async startInstance(request: StartRequest, trx?: Executor): Promise<{ id: string; created: boolean }> {
    const [id] = await this.startMany([request], trx);
    if (id) return { id, created: true };
    const existing: { id: string } | undefined = request.dedupeKey
      ? await this.deps.db.table('kubiki_wf_instances', trx).where({ dedupe_key: request.dedupeKey }).first('id')
      : undefined;
    if (!existing) throw new Error('instance insert returned nothing');
    return { id: existing.id, created: false };
  }

  // ---- running steps ------------------------------------------------------------------------

  /** The records of a batch of instances, one query per entity. */
  private async loadRecords(instances: InstanceRow[]): Promise<Map<string, unknown>> {
    const byEntity = new Map<string, string[]>();
    for (const i of instances) {
      if (i.entity && i.recordId && this.deps.hasEntity(i.entity)) byEntity.set(i.entity, [...(byEntity.get(i.entity) ?? []), i.recordId]);
    }
    const out = new Map<string, unknown>();
    for (const [entity, ids] of byEntity) {
      for (const [id, record] of await this.deps.repository(entity).getMany(ids, { actor: SYSTEM })) out.set(`${entity}/${id}`, record);
    }
    return out;
  }

  /** Resumes a waiting step from outside a worker (an approval decided): completes it and queues what follows. */
  resume(trx: Executor, instance: InstanceRow, stepId: number, nextKey: string | undefined, output: unknown): Promise<void> {
    return this.runner.resume(trx, instance, stepId, nextKey, output);
  }

  /** Admin: a failed instance's failed steps run again (attempts start over). */
  retryInstance(trx: Executor, instance: InstanceRow): Promise<void> {
    return this.runner.retryInstance(trx, instance);
  }

  /** Admin: stops an instance and its sub-workflows; a parent waiting on it fails. */
  cancelInstance(trx: Executor, instance: InstanceRow): Promise<void> {
    return this.runner.cancelInstance(trx, instance);
  }
}
