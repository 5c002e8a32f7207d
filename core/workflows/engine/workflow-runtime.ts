import type { Logger } from 'pino';
import type { Database } from '../../db/database.ts';
import type { KubikiConfig } from '../../config.ts';
import { createAjv } from '../../entities/ajv.ts';
import type { EntityRegistry } from '../../entities/entity-registry.ts';
import type { EntityRepository } from '../../entities/entity-repository.ts';
import type { EventDispatcher } from '../../events/event-dispatcher.ts';
import type { NotificationService } from '../../notifications/notification-service.ts';
import type { DocumentService } from '../../templates/document-service.ts';
import { ApprovalTasks } from './approval-tasks.ts';
import { DatabaseClock, every, type Clock, type ClockTimer } from './clock.ts';
import { LifecycleTransitions } from './lifecycle-transitions.ts';
import { PublishedWorkflows } from './published-workflows.ts';
import { WorkflowActions } from './workflow-actions.ts';
import { WorkflowEngine } from './workflow-engine.ts';
import { WorkflowInstances } from './workflow-instances.ts';
import { WorkflowTriggers } from './workflow-triggers.ts';

export interface WorkflowRuntimeDeps {
  db: Database;
  logger: Logger;
  config: KubikiConfig;
  env: NodeJS.ProcessEnv;
  registry: EntityRegistry;
  repository(qualifiedName: string): EntityRepository;
  dispatcher: EventDispatcher;
  notifications: NotificationService;
  documents: DocumentService;
  isEnabled(plugin: string): boolean;
  /** Defaults to the real clock (the database's time); tests pass a manual one. */
  clock?: Clock;
}

const PRUNE_EVERY_MS = 3_600_000;
const SWEEP_EVERY_MS = 60_000;

/** The workflow engine's parts, wired together: what the kernel, the routes and the CLI use. */
export class WorkflowRuntime {
  readonly published: PublishedWorkflows;
  readonly actions: WorkflowActions;
  readonly engine: WorkflowEngine;
  readonly triggers: WorkflowTriggers;
  readonly lifecycles: LifecycleTransitions;
  readonly tasks: ApprovalTasks;
  readonly instances: WorkflowInstances;
  readonly clock: Clock;
  private pruneTimer?: ClockTimer;
  private started = false;
  private sweepTimer?: ClockTimer;

  constructor(private readonly deps: WorkflowRuntimeDeps) {
    const { db, config, dispatcher } = deps;
    const logger = deps.logger.child({ component: 'workflows' });
    const ajv = createAjv();
    const kickEvents = () => dispatcher.kick();
    const clock = this.clock = deps.clock ?? new DatabaseClock(db);
    this.published = new PublishedWorkflows(db);
    this.actions = new WorkflowActions(deps.isEnabled);
    this.engine = new WorkflowEngine({
      db, logger, published: this.published, actions: this.actions, repository: deps.repository, hasEntity: (q) => deps.registry.has(q),
      notifications: deps.notifications, documents: deps.documents, kickEvents,
      concurrency: config.workflowConcurrency, pollMs: config.workflowPollMs, leaseSeconds: config.workflowLeaseSeconds, httpAllow: config.workflowHttpAllow,
      clock,
    });
    this.tasks = new ApprovalTasks(db, clock, (trx, instance, stepId, nextKey, output) => this.engine.resume(trx, instance, stepId, nextKey, output), () => this.engine.kick());
    this.engine.tasks = this.tasks;
    this.triggers = new WorkflowTriggers({
      db, logger, engine: this.engine, published: this.published, registry: deps.registry, repository: deps.repository, ajv, env: deps.env, scanMs: config.workflowScanMs,
      isEnabled: deps.isEnabled, clock,
    });
    this.lifecycles = new LifecycleTransitions({ db, published: this.published, engine: this.engine, actions: this.actions, repository: deps.repository, ajv, kickEvents });
    this.instances = new WorkflowInstances(db, this.engine, clock);
    dispatcher.subscribeBatch({ matches: (type) => this.triggers.listensTo(type), handle: (events) => this.triggers.onEvents(events) });
    this.published.onChange((added) => {
      this.triggers.planSchedules();
      if (this.started) void this.triggers.catchUp(added).catch((error) => logger.error({ err: error }, 'catching up on events for a new workflow version failed'));
    });
  }

  /** Reads the published definitions (at start, after a publish, and on each refresh tick). */
  async reload(): Promise<void> {
    // Every process refreshes, workers or not (HTTP-only ones start instances, due now): the
    // clock's offset to the database is measured again with it.
    await this.clock.sync?.();
    await this.published.reload();
  }

  /** Background work of a worker process: claiming steps, cron schedules, date scans, pruning. */
  start(): void {
    this.started = true;
    this.engine.start();
    this.triggers.start();
    const prune = () => void this.instances.prune(this.deps.config.workflowRetentionDays)
      .then((n) => n && this.deps.logger.info({ pruned: n }, 'pruned finished workflow instances'))
      .catch((error) => this.deps.logger.error({ err: error }, 'pruning workflow history failed'));
    this.pruneTimer = every(this.clock, PRUNE_EVERY_MS, prune);
    const sweep = () => void this.deps.notifications.failStale().catch((error) => this.deps.logger.error({ err: error }, 'sweeping notifications failed'));
    this.sweepTimer = every(this.clock, SWEEP_EVERY_MS, sweep);
  }

  async stop(): Promise<void> {
    this.pruneTimer?.cancel();
    this.sweepTimer?.cancel();
    await this.triggers.stop();
    await this.engine.stop();
  }

  /**
   * Delivers pending events and runs every due step until nothing is left: what tests and the
   * CLI use instead of the background timers.
   */
  async settle(maxRounds = 100): Promise<void> {
    for (let round = 0; round < maxRounds; round++) {
      await this.deps.dispatcher.drainAll();
      const ran = await this.engine.runUntilIdle();
      // The outbox is the event dispatcher's, which schedules its retries on the database's time.
      const pending = await this.deps.db.table('kubiki_outbox').whereNull('dispatched_at').where('next_attempt_at', '<=', this.deps.db.knex.fn.now()).first('id');
      if (ran === 0 && !pending) return;
    }
  }
}
