import { v7 as uuidv7 } from 'uuid';
import type { Database, Executor, Knex } from '../db/database.ts';
import { KubikiError } from '../errors.ts';
import type { WebhookTarget } from './webhook-store.ts';

// The SQL of webhook delivery. A delivery row is the queue and the log at once: `queued` (behind an
// earlier open delivery of the same subscription and record), `pending` (due at due_at), `sending`
// (claimed under a lease until due_at; a lapsed lease is claimed again, so a crashed process's
// deliveries go out after it), then `delivered` or `failed` (every attempt the schedule allows
// failed). Attempts are rows of their own. Every change of a claimed row checks its lease token:
// a worker that lost its lease records nothing.
//
// Order per record: the deliveries of one subscription and record form a chain ordered by outbox
// event id; only its head (the first open one) is sent. A delivery is claimed only when no open
// delivery of its chain comes before it, and no earlier event of that record the subscription
// wants is still in the outbox without its delivery (another process may be fanning it out right
// now). Rows after the head wait as `queued`, out of the due index, so a backlog costs the claim
// nothing; finishing the head promotes the next, and a sweep promotes heads a race left queued.

export type DeliveryStatus = 'queued' | 'pending' | 'sending' | 'delivered' | 'failed';
export const DELIVERY_STATUSES: DeliveryStatus[] = ['queued', 'pending', 'sending', 'delivered', 'failed'];
const OPEN = "('queued', 'pending', 'sending')";

/** A chain row of `alias` before `d` (same subscription and record, earlier event), still open. */
const earlierOpen = (alias: string, d: string): string =>
  `${alias}.webhook_id = ${d}.webhook_id and ${alias}.record_id = ${d}.record_id and ${alias}.entity = ${d}.entity and ${alias}.status in ${OPEN}
   and (${alias}.event_id < ${d}.event_id or (${alias}.event_id = ${d}.event_id and ${alias}.id < ${d}.id))`;

export interface NewDelivery {
  webhookId: string;
  eventId: number;
  eventType: string;
  entity: string;
  recordId: string;
  payload: string;
}

export interface ClaimedDelivery {
  id: string;
  messageId: string;
  eventId: number;
  eventType: string;
  payload: string;
  attempts: number;
  leaseToken: string;
  target: WebhookTarget;
}

export interface DeliveryView {
  id: string;
  webhookId: string;
  messageId: string;
  eventId: number;
  eventType: string;
  entity: string;
  recordId: string;
  status: DeliveryStatus;
  attempts: number;
  nextAttemptAt: string | null;
  lastStatus: number | null;
  lastError: string | null;
  replayOf: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export interface AttemptView {
  attempt: number;
  at: string;
  status: number | null;
  durationMs: number;
  error: string | null;
  response: string | null;
}

/** How an attempt ended. `retryAt` null: give up (failed). */
export type Outcome =
  | { kind: 'delivered'; status: number; durationMs: number; response: string | null }
  | { kind: 'retry'; retryAt: Date | null; status: number | null; error: string; durationMs: number; response: string | null }
  | { kind: 'gone'; status: number; error: string; durationMs: number; response: string | null };

type Row = Record<string, unknown>;

const toDelivery = (r: Row): DeliveryView => ({
  id: String(r.id),
  webhookId: String(r.webhook_id),
  messageId: String(r.message_id),
  eventId: Number(r.event_id),
  eventType: String(r.event_type),
  entity: String(r.entity),
  recordId: String(r.record_id),
  status: r.status as DeliveryStatus,
  attempts: Number(r.attempts),
  nextAttemptAt: r.status === 'pending' ? ((r.due_at as string | null) ?? null) : null,
  lastStatus: r.last_status == null ? null : Number(r.last_status),
  lastError: (r.last_error as string | null) ?? null,
  replayOf: (r.replay_of as string | null) ?? null,
  createdAt: String(r.created_at),
  deliveredAt: (r.delivered_at as string | null) ?? null,
});

/** `msg_` + the delivery's time-ordered id: unique, and the same for every attempt and replay. */
const messageIdOf = (id: string): string => `msg_${id.replaceAll('-', '')}`;

const iso = (ms: number): string => new Date(ms).toISOString();

export class DeliveryQueue {
  constructor(private readonly db: Database) {}

  private get deliveries() { return this.db.ref('kubiki_webhook_deliveries'); }

  /**
   * Inserts deliveries: the first of a chain in this batch is pending when its chain has nothing
   * open, every other one queued. An event seen again (outbox redelivery) inserts nothing.
   */
  private async insert(exec: Executor, rows: (NewDelivery & { messageId?: string; replayOf?: string })[], now: Date): Promise<Row[]> {
    const firsts = new Set<string>();
    const values = rows.map((d) => {
      const id = uuidv7();
      const chain = `${d.webhookId}|${d.entity}|${d.recordId}`;
      const first = !firsts.has(chain);
      firsts.add(chain);
      return {
        id, webhook_id: d.webhookId, message_id: d.messageId ?? messageIdOf(id), event_id: d.eventId, event_type: d.eventType, entity: d.entity, record_id: d.recordId,
        payload: d.payload, replay_of: d.replayOf ?? null, first,
      };
    });
    const d = this.deliveries;
    const { rows: made } = await exec.raw(
      `insert into ? (id, webhook_id, message_id, event_id, event_type, entity, record_id, payload, replay_of, status, due_at)
       select x.id, x.webhook_id, x.message_id, x.event_id, x.event_type, x.entity, x.record_id, x.payload, x.replay_of, s.status,
              case when s.status = 'pending' then ?::timestamptz end
       from jsonb_to_recordset(?::jsonb) as x(id uuid, webhook_id uuid, message_id text, event_id bigint, event_type text, entity text, record_id text, payload text, replay_of uuid, first boolean)
       cross join lateral (select case when x.first and not exists (
           select 1 from ? e where e.webhook_id = x.webhook_id and e.record_id = x.record_id and e.entity = x.entity and e.status in ${OPEN})
         then 'pending' else 'queued' end as status) s
       where exists (select 1 from ? w where w.id = x.webhook_id)
       on conflict (webhook_id, event_id) where replay_of is null do nothing
       returning *`,
      [d, now.toISOString(), JSON.stringify(values), d, this.db.ref('kubiki_webhooks')],
    ) as { rows: Row[] };
    return made;
  }

  /** One row per (subscription, event); an event seen again (outbox redelivery) inserts nothing. Returns how many were made. */
  async fanOut(deliveries: NewDelivery[], now: Date, trx?: Executor): Promise<number> {
    if (deliveries.length === 0) return 0;
    return (await this.insert(trx ?? this.db.knex, deliveries, now)).length;
  }

  /** Queued chain heads made pending (a race between fan-out and a finishing head can leave one). */
  async promoteHeads(now: Date): Promise<number> {
    const d = this.deliveries;
    const { rows } = await this.db.prepared(this.db.knex,
      `update ? q set status = 'pending', due_at = ?::timestamptz
       where q.status = 'queued' and not exists (select 1 from ? e where ${earlierOpen('e', 'q')})
       returning q.id`,
      [d, now.toISOString(), d],
    ) as { rows: Row[] };
    return rows.length;
  }

  /** Claims up to `limit` due deliveries that are first in line for their record, under a new lease. */
  async claim(limit: number, leaseToken: string, now: Date, leaseMs: number): Promise<ClaimedDelivery[]> {
    const d = this.deliveries;
    // The checks are scalar subqueries, run per row as the due index is walked: the walk stops at
    // `limit` heads found, instead of joining every due row first.
    const { rows } = await this.db.prepared(this.db.knex,
      `with c as (
         select d.id from ? d
         join ? w on w.id = d.webhook_id and w.active
         where d.status in ('pending', 'sending') and d.due_at <= ?::timestamptz
           and not coalesce((select true from ? e where ${earlierOpen('e', 'd')} limit 1), false)
           and not coalesce((
             select true from ? o
             where o.dispatched_at is null and o.record_id = d.record_id and o.id < d.event_id
               and o.plugin || '.' || o.entity = d.entity and o.event ~ w.event_regex
               and not exists (select 1 from ? x where x.webhook_id = d.webhook_id and x.event_id = o.id)
             limit 1), false)
         order by d.due_at
         limit ?
         for update of d skip locked)
       update ? d set status = 'sending', lease_token = ?, due_at = ?::timestamptz, attempts = d.attempts + 1
       from c, ? w
       where d.id = c.id and w.id = d.webhook_id
       returning d.id, d.message_id, d.event_id, d.event_type, d.payload, d.attempts, w.id as webhook_id, w.url, w.secret, w.previous_secret, w.previous_secret_expires_at`,
      [d, this.db.ref('kubiki_webhooks'), now.toISOString(), d, this.db.ref('kubiki_outbox'), d, limit, d, leaseToken, iso(now.getTime() + leaseMs), this.db.ref('kubiki_webhooks')],
    ) as { rows: Row[] };
    return rows.map((r) => ({
      id: String(r.id), messageId: String(r.message_id), eventId: Number(r.event_id), eventType: String(r.event_type), payload: String(r.payload),
      attempts: Number(r.attempts), leaseToken,
      target: {
        id: String(r.webhook_id), url: String(r.url), secret: String(r.secret), previousSecret: (r.previous_secret as string | null) ?? null,
        previousSecretExpiresAt: r.previous_secret_expires_at ? Date.parse(String(r.previous_secret_expires_at)) : null,
      },
    }));
  }

  /**
   * Records an attempt and moves the delivery on, in one statement checked against the lease; a
   * delivery that is done (delivered, failed) makes the next of its chain pending. Returns whether
   * the lease held (false: another worker took the delivery over) and whether a next one is due.
   */
  async finish(exec: Executor, delivery: ClaimedDelivery, outcome: Outcome, now: Date): Promise<{ recorded: boolean; promoted: boolean }> {
    const at = now.toISOString();
    const status = outcome.kind === 'delivered' ? 'delivered' : outcome.kind === 'retry' && outcome.retryAt === null ? 'failed' : 'pending';
    // Gone: stays pending, due at once, for when someone switches the subscription on again.
    const due = outcome.kind === 'retry' && outcome.retryAt ? outcome.retryAt.toISOString() : outcome.kind === 'gone' ? at : null;
    const error = outcome.kind === 'delivered' ? null : outcome.error.slice(0, 2000);
    const d = this.deliveries;
    const { rows } = await this.db.prepared(exec,
      `with f as (
         update ? set status = ?, due_at = ?::timestamptz, lease_token = null, last_status = ?, last_error = ?,
                delivered_at = case when ? = 'delivered' then ?::timestamptz else delivered_at end
         where id = ? and lease_token = ? and status = 'sending'
         returning id, attempts, webhook_id, record_id, entity, status),
       a as (
         insert into ? (delivery_id, attempt, at, status, duration_ms, error, response)
         select id, attempts, ?::timestamptz, ?, ?, ?, ? from f
         returning delivery_id),
       p as (
         update ? q set status = 'pending', due_at = ?::timestamptz
         where q.status = 'queued' and q.id = (
           select n.id from ? n, f
           where f.status in ('delivered', 'failed') and n.webhook_id = f.webhook_id and n.record_id = f.record_id and n.entity = f.entity
             and n.status in ${OPEN} and n.id <> f.id
           order by n.event_id, n.id limit 1)
         returning q.id)
       select (select count(*) from a)::int as recorded, (select count(*) from p)::int as promoted`,
      [d, status, due, outcome.status, error, status, at, delivery.id, delivery.leaseToken,
        this.db.ref('kubiki_webhook_attempts'), at, outcome.status, Math.round(outcome.durationMs), error, outcome.response,
        d, at, d],
    ) as { rows: Row[] };
    return { recorded: Number(rows[0]?.recorded ?? 0) > 0, promoted: Number(rows[0]?.promoted ?? 0) > 0 };
  }

  async list(webhookId: string, filter: { status?: DeliveryStatus; eventType?: string; recordId?: string; before?: string; limit: number }): Promise<{ data: DeliveryView[]; next: string | null }> {
    const q = this.db.table('kubiki_webhook_deliveries').where({ webhook_id: webhookId }).orderBy('id', 'desc').limit(filter.limit + 1);
    if (filter.status) q.where({ status: filter.status });
    if (filter.eventType) q.where({ event_type: filter.eventType });
    if (filter.recordId) q.where({ record_id: filter.recordId });
    if (filter.before) q.where('id', '<', filter.before);
    const rows: Row[] = await q.select('id', 'webhook_id', 'message_id', 'event_id', 'event_type', 'entity', 'record_id', 'status', 'attempts', 'due_at', 'last_status', 'last_error', 'replay_of', 'created_at', 'delivered_at');
    const more = rows.length > filter.limit;
    if (more) rows.pop();
    return { data: rows.map(toDelivery), next: more ? String(rows[rows.length - 1].id) : null };
  }

  async get(webhookId: string, id: string): Promise<DeliveryView & { payload: unknown; attempts_: AttemptView[] }> {
    const row: Row | undefined = await this.db.table('kubiki_webhook_deliveries').where({ webhook_id: webhookId, id }).first();
    if (!row) throw new KubikiError('not-found', `webhook subscription ${webhookId} has no delivery ${id}`, { extra: { id } });
    const attempts: Row[] = await this.db.table('kubiki_webhook_attempts').where({ delivery_id: id }).orderBy('id');
    return {
      ...toDelivery(row),
      payload: JSON.parse(String(row.payload)) as unknown,
      attempts_: attempts.map((a) => ({
        attempt: Number(a.attempt), at: String(a.at), status: a.status == null ? null : Number(a.status), durationMs: Number(a.duration_ms),
        error: (a.error as string | null) ?? null, response: (a.response as string | null) ?? null,
      })),
    };
  }

  /**
   * Sends deliveries again: a new row each (pending, due now) with the same message id and body,
   * so receivers that deduplicate by webhook-id still can. Only finished ones (delivered, failed):
   * an open delivery is going out anyway. Returns the new rows.
   */
  async replay(trx: Knex.Transaction, webhookId: string, select: { ids?: string[]; status?: DeliveryStatus; since?: string; until?: string; limit: number }, now: Date): Promise<DeliveryView[]> {
    const q = this.db.table('kubiki_webhook_deliveries', trx).where({ webhook_id: webhookId }).whereIn('status', ['delivered', 'failed']).orderBy([{ column: 'event_id' }, { column: 'id' }]).limit(select.limit);
    if (select.ids) q.whereIn('id', select.ids);
    if (select.status) q.where({ status: select.status });
    if (select.since) q.where('created_at', '>=', select.since);
    if (select.until) q.where('created_at', '<', select.until);
    const originals: Row[] = await q.select('id', 'message_id', 'event_id', 'event_type', 'entity', 'record_id', 'payload');
    if (originals.length === 0) return [];
    const made = await this.insert(trx, originals.map((o) => ({
      webhookId, eventId: Number(o.event_id), eventType: String(o.event_type), entity: String(o.entity), recordId: String(o.record_id),
      payload: String(o.payload), messageId: String(o.message_id), replayOf: String(o.id),
    })), now);
    return made.map(toDelivery).sort((a, b) => (a.id < b.id ? -1 : 1));
  }

  async status(webhookId: string, id: string, trx?: Executor): Promise<DeliveryStatus | undefined> {
    const row: Row | undefined = await this.db.table('kubiki_webhook_deliveries', trx).where({ webhook_id: webhookId, id }).first('status');
    return row?.status as DeliveryStatus | undefined;
  }

  /** Deletes finished deliveries created before `before` (their attempts go with them). */
  async prune(before: Date): Promise<number> {
    return this.db.table('kubiki_webhook_deliveries').whereIn('status', ['delivered', 'failed']).where('created_at', '<', before.toISOString()).delete();
  }
}
