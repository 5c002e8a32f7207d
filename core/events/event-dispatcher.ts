import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import { rowToEvent, type KubikiEvent } from './outbox.ts';

export type EventHandler = (event: KubikiEvent) => void | Promise<void>;
/** A core subscriber that takes a whole batch at once (the workflow engine starts instances in bulk). */
export interface BatchSubscription {
  matches(eventType: string): boolean;
  handle(events: KubikiEvent[]): Promise<void>;
}

interface Subscription {
  plugin: string;
  pattern: RegExp;
  handler: EventHandler;
}

const LEASE_SECONDS = 30;
const BATCH = 50;
const MAX_BACKOFF_SECONDS = 3600;

/** `base.organizations.*` / `*.created` → a matcher for event types; `*` matches one segment. */
function compilePattern(pattern: string): RegExp {
  const escaped = pattern.split('.').map((p) => (p === '*' ? '[^.]+' : p.replace(/[^A-Za-z0-9]/g, '\\$&'))).join('\\.');
  return new RegExp(`^${escaped}$`);
}

/**
 * Delivers outbox events to subscribers, at least once. Any instance may deliver any event: a batch
 * is leased with FOR UPDATE SKIP LOCKED (the lease commits at once, so handlers never hold a
 * transaction), handled, then marked done; a crash lets the lease lapse and another instance retry.
 * A failing handler puts the event back with exponential back-off, so handlers must be idempotent.
 */
export class EventDispatcher {
  private readonly subscriptions: Subscription[] = [];
  private readonly batchSubscriptions: BatchSubscription[] = [];
  private timer?: NodeJS.Timeout;
  private draining?: Promise<void>;
  private again = false;
  private stopped = true;

  constructor(
    private readonly db: Database,
    private readonly logger: Logger,
    private readonly isEnabled: (plugin: string) => boolean,
    private readonly pollMs = 1000,
  ) {}

  subscribe(plugin: string, pattern: string, handler: EventHandler): void {
    this.subscriptions.push({ plugin, pattern: compilePattern(pattern), handler });
  }

  subscribeBatch(subscription: BatchSubscription): void {
    this.batchSubscriptions.push(subscription);
  }

  /** Whether delivering `eventType` would reach anyone right now. */
  isHeard(eventType: string): boolean {
    return this.subscriptions.some((s) => s.pattern.test(eventType) && this.isEnabled(s.plugin)) || this.batchSubscriptions.some((s) => s.matches(eventType));
  }

  start(): void {
    this.stopped = false;
    this.timer = setInterval(() => this.kick(), this.pollMs);
    this.timer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.timer);
    await this.draining;
  }

  /** Asks for a delivery round soon; rounds never overlap within an instance. */
  kick(): void {
    if (this.stopped) return;
    if (this.draining) {
      this.again = true;
      return;
    }
    this.draining = this.drainAll()
      .catch((error) => this.logger.error({ err: error }, 'event delivery round failed'))
      .finally(() => {
        this.draining = undefined;
        if (this.again && !this.stopped) {
          this.again = false;
          this.kick();
        }
      });
  }

  /** Delivers everything due now; resolves when the outbox holds nothing due. Tests call it directly. */
  async drainAll(): Promise<void> {
    for (;;) {
      const handled = await this.deliverBatch();
      if (handled < BATCH) return;
    }
  }

  private async deliverBatch(): Promise<number> {
    const outbox = this.db.ref('kubiki_outbox');
    const { rows } = await this.db.knex.raw(
      `update ? set next_attempt_at = now() + make_interval(secs => ?), attempts = attempts + 1
         where id in (select id from ? where dispatched_at is null and next_attempt_at <= now()
                      order by id limit ? for update skip locked)
       returning *`,
      [outbox, LEASE_SECONDS, outbox, BATCH],
    ) as { rows: Record<string, unknown>[] };
    const events = rows.map((r) => ({ event: rowToEvent(r), attempts: Number(r.attempts) })).sort((a, b) => a.event.id - b.event.id);
    const delivered: number[] = [];
    const failedInBatch = new Map<number, unknown>();
    for (const subscription of this.batchSubscriptions) {
      const mine = events.filter(({ event }) => subscription.matches(event.type)).map(({ event }) => event);
      if (mine.length === 0) continue;
      try {
        await subscription.handle(mine);
      } catch (error) {
        for (const event of mine) failedInBatch.set(event.id, error);
      }
    }
    for (const { event, attempts } of events) {
      try {
        if (failedInBatch.has(event.id)) throw failedInBatch.get(event.id);
        for (const s of this.subscriptions) {
          if (s.pattern.test(event.type) && this.isEnabled(s.plugin)) await s.handler(event);
        }
        delivered.push(event.id);
      } catch (error) {
        const delay = Math.min(MAX_BACKOFF_SECONDS, 2 ** Math.min(attempts, 12));
        this.logger.warn({ err: error, event: event.type, eventId: event.id, attempts }, 'event handler failed; will retry');
        await this.db.table('kubiki_outbox').where({ id: event.id }).update({
          next_attempt_at: this.db.knex.raw('now() + make_interval(secs => ?)', [delay]),
          last_error: String((error as Error)?.stack ?? error).slice(0, 4000),
        });
      }
    }
    // One statement marks the whole batch, so delivery costs two queries per batch, not one per event.
    if (delivered.length) {
      await this.db.table('kubiki_outbox').whereIn('id', delivered).update({ dispatched_at: this.db.knex.fn.now(), last_error: null });
    }
    return rows.length;
  }
}
