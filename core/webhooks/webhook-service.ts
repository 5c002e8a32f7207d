import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import type { EventDispatcher } from '../events/event-dispatcher.ts';
import type { KubikiEvent } from '../events/outbox.ts';
import { retryAfterMs, retryDelay } from './retry-schedule.ts';
import { DeliveryQueue, type ClaimedDelivery, type NewDelivery, type Outcome } from './delivery-queue.ts';
import { sendWebhook } from './webhook-sender.ts';
import { SecretBox } from './signing.ts';
import { WebhookStore } from './webhook-store.ts';

/** Where due-ness, back-off and leases take the time from; tests swap in one they move by hand. */
export interface WebhookClock {
  now(): Date;
}

export interface WebhookSettings {
  /** Delays after the 1st, 2nd, … failed attempt (ms); when they run out the delivery has failed. */
  webhookRetrySchedule: number[];
  webhookTimeoutMs: number;
  /** Deliveries one process sends at a time. */
  webhookConcurrency: number;
  webhookPollMs: number;
  webhookLeaseSeconds: number;
  /** Finished deliveries older than this are pruned with their attempts (0: kept). */
  webhookRetentionDays: number;
  /** KUBIKI_SECRET_KEY: encrypts the stored webhook secrets. */
  secretKey?: string;
  /** The workflow HTTP step's allow-list, shared by webhooks. */
  workflowHttpAllow: string[];
}

const PRUNE_EVERY_MS = 3600 * 1000;
/** How often queued chain heads a race left behind are promoted (see DeliveryQueue.promoteHeads). */
const SWEEP_EVERY_MS = 2000;

/**
 * Outgoing webhooks. Fan-out rides on the transactional outbox: a batch subscription of the event
 * dispatcher turns each event a subscription wants into a delivery row (in the database, so
 * deliveries survive restarts; unique per subscription and event, so an outbox redelivery makes
 * none twice). Workers in every process claim due deliveries under a lease, sign and send them,
 * and record each attempt: 2xx delivered; 410 switches the subscription off (the delivery waits
 * for it to be switched on again); 429/503 retry after the receiver's Retry-After; anything else
 * retries on the schedule (±20% jitter) until it runs out (failed). At least once, in order per
 * record and subscription.
 */
export class WebhookService {
  clock: WebhookClock = { now: () => new Date() };
  readonly store: WebhookStore;
  readonly queue: DeliveryQueue;
  private matcher?: RegExp;
  private readonly compiled = new Map<string, RegExp>();
  private timer?: NodeJS.Timeout;
  private pruneTimer?: NodeJS.Timeout;
  private sweepTimer?: NodeJS.Timeout;
  private readonly wakeups = new Set<NodeJS.Timeout>();
  private stopped = true;
  private pumping?: Promise<void>;
  private again = false;
  private readonly inflight = new Set<Promise<void>>();

  constructor(readonly db: Database, private readonly logger: Logger, private readonly settings: WebhookSettings, dispatcher: EventDispatcher) {
    this.store = new WebhookStore(db, new SecretBox(db, settings.secretKey), () => settings.workflowHttpAllow, () => this.clock.now());
    this.queue = new DeliveryQueue(db);
    dispatcher.subscribeBatch({ matches: (type) => this.matcher?.test(type) ?? false, handle: (events) => this.fanOut(events) });
  }

  private regex(source: string): RegExp {
    let re = this.compiled.get(source);
    if (!re) {
      re = new RegExp(source);
      this.compiled.set(source, re);
    }
    return re;
  }

  private remember(active: { eventRegex: string }[]): void {
    const sources = [...new Set(active.map((a) => a.eventRegex))];
    this.matcher = sources.length ? new RegExp(sources.map((s) => `(?:${s})`).join('|')) : undefined;
  }

  /**
   * Re-reads which events the active subscriptions want: at start, after changes made here, and on
   * every refresh (changes made by other processes are heard within KUBIKI_REFRESH_MS).
   */
  async reload(): Promise<void> {
    this.remember(await this.store.active());
  }

  /** Events → delivery rows, one per subscription that wants each (read fresh, not from the cache). */
  private async fanOut(events: KubikiEvent[]): Promise<void> {
    const active = await this.store.active();
    this.remember(active);
    const rows: NewDelivery[] = [];
    for (const event of events) {
      const wanting = active.filter((a) => this.regex(a.eventRegex).test(event.type));
      if (wanting.length === 0) continue;
      const entity = `${event.plugin}.${event.entity}`;
      const payload = JSON.stringify({
        type: event.type,
        timestamp: event.createdAt,
        data: { entity, id: event.recordId, eventId: event.id, changes: (event.payload.changes ?? {}) as unknown, by: (event.payload.by ?? null) as unknown },
      });
      for (const a of wanting) rows.push({ webhookId: a.id, eventId: event.id, eventType: event.type, entity, recordId: event.recordId, payload });
    }
    if (rows.length === 0) return;
    const made = await this.queue.fanOut(rows, this.clock.now());
    if (made > 0) this.kick();
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.settings.webhookPollMs);
    this.timer.unref();
    this.sweepTimer = setInterval(() => void this.queue.promoteHeads(this.clock.now()).then((n) => { if (n > 0) this.kick(); })
      .catch((error) => this.logger.error({ err: error }, 'promoting queued webhook deliveries failed')), SWEEP_EVERY_MS);
    this.sweepTimer.unref();
    if (this.settings.webhookRetentionDays > 0) {
      this.pruneTimer = setInterval(() => void this.prune().catch((error) => this.logger.error({ err: error }, 'pruning webhook deliveries failed')), PRUNE_EVERY_MS);
      this.pruneTimer.unref();
    }
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    clearInterval(this.pruneTimer);
    clearInterval(this.sweepTimer);
    for (const t of this.wakeups) clearTimeout(t);
    this.wakeups.clear();
    await this.pumping;
    await Promise.all([...this.inflight]);
  }

  async prune(): Promise<number> {
    return this.queue.prune(new Date(this.clock.now().getTime() - this.settings.webhookRetentionDays * 86_400_000));
  }

  /** Asks for a claim round soon; rounds never overlap within a process. */
  kick(): void {
    if (this.stopped) return;
    if (this.pumping) {
      this.again = true;
      return;
    }
    this.pumping = this.pump()
      .catch((error) => this.logger.error({ err: error }, 'webhook delivery round failed'))
      .finally(() => {
        this.pumping = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Fills free sending slots with due deliveries; each finished send frees its slot. */
  private async pump(): Promise<void> {
    const concurrency = Math.max(1, this.settings.webhookConcurrency);
    while (!this.stopped) {
      const free = concurrency - this.inflight.size;
      if (free <= 0) return;
      const claimed = await this.queue.claim(free, randomUUID(), this.clock.now(), this.settings.webhookLeaseSeconds * 1000);
      for (const delivery of claimed) {
        const sending: Promise<void> = this.deliver(delivery)
          .catch((error) => this.logger.error({ err: error, delivery: delivery.id }, 'webhook delivery failed unexpectedly'))
          .finally(() => {
            this.inflight.delete(sending);
            // A free slot, and maybe the next delivery of the record just made due: claim again.
            this.kick();
          });
        this.inflight.add(sending);
      }
      if (claimed.length < free) return;
    }
  }

  /**
   * Sends everything due now, round after round, until nothing is due (tests call it; the clock
   * decides what is due). Returns the number of attempts made.
   */
  async deliverDue(): Promise<number> {
    let attempts = 0;
    await this.queue.promoteHeads(this.clock.now());
    for (;;) {
      const claimed = await this.queue.claim(Math.max(1, this.settings.webhookConcurrency), randomUUID(), this.clock.now(), this.settings.webhookLeaseSeconds * 1000);
      if (claimed.length === 0) return attempts;
      attempts += claimed.length;
      await Promise.all(claimed.map((d) => this.deliver(d)));
    }
  }

  /** One attempt of one claimed delivery, recorded with its outcome. */
  async deliver(delivery: ClaimedDelivery): Promise<void> {
    let outcome: Outcome;
    let secrets: string[] | undefined;
    try {
      secrets = await this.store.signingSecrets(delivery.target, this.clock.now().getTime());
    } catch (error) {
      outcome = this.retry(delivery, null, `cannot sign: ${(error as Error).message}`, 0, null, undefined);
    }
    if (secrets) {
      const result = await sendWebhook({
        url: delivery.target.url, messageId: delivery.messageId, payload: delivery.payload, secrets,
        timeoutMs: this.settings.webhookTimeoutMs, allow: this.settings.workflowHttpAllow,
      });
      if (result.status !== null && result.status >= 200 && result.status < 300) {
        outcome = { kind: 'delivered', status: result.status, durationMs: result.durationMs, response: result.response };
      } else if (result.status === 410) {
        outcome = { kind: 'gone', status: 410, error: result.error ?? 'answered 410 Gone', durationMs: result.durationMs, response: result.response };
      } else {
        const honoured = result.status === 429 || result.status === 503 ? retryAfterMs(result.retryAfter, this.clock.now().getTime()) : undefined;
        outcome = this.retry(delivery, result.status, result.error ?? 'failed', result.durationMs, result.response, honoured);
      }
    }
    const now = this.clock.now();
    const final = outcome!;
    if (final.kind === 'gone') {
      const disabled = await this.db.knex.transaction(async (trx) => {
        if (!(await this.queue.finish(trx, delivery, final, now)).recorded) return false;
        return this.store.disable(trx, delivery.target.id, `the endpoint answered 410 Gone at ${now.toISOString()}`);
      });
      if (disabled) {
        this.logger.warn({ webhook: delivery.target.id, url: delivery.target.url }, 'webhook endpoint answered 410 Gone; subscription disabled');
        await this.reload();
      }
      return;
    }
    const { recorded, promoted } = await this.queue.finish(this.db.knex, delivery, final, now);
    if (!recorded) this.logger.warn({ delivery: delivery.id }, 'webhook delivery lease lost while sending; another worker has it');
    if (promoted) this.kick();
    // A retry due before the next poll: wake up for it instead of waiting for the poll.
    if (final.kind === 'retry' && final.retryAt) this.wakeAt(final.retryAt.getTime() - now.getTime());
  }

  private wakeAt(ms: number): void {
    if (this.stopped || ms >= this.settings.webhookPollMs) return;
    const timer = setTimeout(() => { this.wakeups.delete(timer); this.kick(); }, Math.max(0, ms));
    timer.unref();
    this.wakeups.add(timer);
  }

  private retry(delivery: ClaimedDelivery, status: number | null, error: string, durationMs: number, response: string | null, retryAfter: number | undefined): Outcome {
    const schedule = this.settings.webhookRetrySchedule;
    const exhausted = delivery.attempts > schedule.length;
    const delay = exhausted ? undefined : retryAfter ?? retryDelay(schedule, delivery.attempts);
    const retryAt = delay === undefined ? null : new Date(this.clock.now().getTime() + delay);
    return { kind: 'retry', retryAt, status, error: retryAt ? error : `${error}; gave up after ${delivery.attempts} attempts`, durationMs, response };
  }
}
