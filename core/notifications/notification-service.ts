import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { Database, Executor } from '../db/database.ts';
import { KubikiError, isKubikiError, fieldError } from '../errors.ts';
import { requireGrant, type Principal } from '../auth/principal.ts';
import { writeAudit, type FieldChanges } from '../audit/audit-trail.ts';
import { isUuid } from '../entities/list-query.ts';
import type { EmailAttachment, EmailTransport } from './email-transport.ts';
import type { SmsProvider } from './sms-provider.ts';

export type NotificationChannel = 'email' | 'sms';
export type NotificationStatus = 'queued' | 'sent' | 'failed' | 'held';

/** What `send` (and a plugin's `ctx.notify`) takes. */
export interface NotificationMessage {
  channel: NotificationChannel;
  to: string;
  subject?: string;
  body: string;
  /** Stored documents (kubiki_documents) attached to an email. */
  attachments?: { documentId: string }[];
  /** Sending again with the same key returns the first notification and sends nothing. */
  idempotencyKey: string;
}

export interface Notification {
  id: string;
  channel: NotificationChannel;
  to: string;
  subject: string | null;
  /** Present when one notification is read; lists leave it out. */
  body?: string;
  attachments: { documentId: string }[];
  idempotencyKey: string;
  status: NotificationStatus;
  attempts: number;
  lastError: string | null;
  providerMessageId: string | null;
  createdBy: string;
  createdAt: string;
  sentAt: string | null;
}

type Row = Record<string, unknown>;

export const MAX_BODY_BYTES = 100 * 1024;
const E164 = /^\+[1-9]\d{6,14}$/;
// One plain address: no display name, no list, nothing a header could be split on.
const EMAIL = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:".]+(\.[^\s@<>()[\]\\,;:".]+)+$/;
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,200}$/;
const STATUSES: NotificationStatus[] = ['queued', 'sent', 'failed', 'held'];
const CHANNELS: NotificationChannel[] = ['email', 'sms'];
const LIST_COLUMNS = ['id', 'channel', 'recipient', 'subject', 'attachments', 'idempotency_key', 'status', 'attempts', 'last_error', 'provider_message_id', 'created_by_name', 'created_at', 'sent_at'];

const toNotification = (r: Row): Notification => ({
  id: String(r.id),
  channel: r.channel as NotificationChannel,
  to: String(r.recipient),
  subject: (r.subject as string | null) ?? null,
  ...(r.body !== undefined ? { body: String(r.body) } : {}),
  attachments: (r.attachments as { documentId: string }[] | null) ?? [],
  idempotencyKey: String(r.idempotency_key),
  status: r.status as NotificationStatus,
  attempts: Number(r.attempts),
  lastError: (r.last_error as string | null) ?? null,
  providerMessageId: (r.provider_message_id as string | null) ?? null,
  createdBy: String(r.created_by_name),
  createdAt: String(r.created_at),
  sentAt: (r.sent_at as string | null) ?? null,
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks a message as a client sent it; every failure is a 400 naming the field. */
export function parseMessage(input: unknown): NotificationMessage {
  if (!isObject(input)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
  for (const key of Object.keys(input)) {
    if (!['channel', 'to', 'subject', 'body', 'attachments', 'idempotencyKey'].includes(key)) {
      throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (channel, to, subject, body, attachments, idempotencyKey)`);
    }
  }
  const { channel, to, subject, body, attachments, idempotencyKey } = input;
  if (channel !== 'email' && channel !== 'sms') throw fieldError('validation-failed', 'channel', 'enum', 'channel must be email or sms');
  if (typeof to !== 'string' || to === '') throw fieldError('validation-failed', 'to', 'required', 'to is required');
  if (channel === 'email' && (to.length > 254 || !EMAIL.test(to))) throw fieldError('validation-failed', 'to', 'format', 'to must be one email address (name@example.com)');
  if (channel === 'sms' && !E164.test(to)) throw fieldError('validation-failed', 'to', 'format', 'to must be a phone number in E.164 format (+79991234567)');
  if (subject !== undefined && subject !== null) {
    if (channel === 'sms') throw fieldError('validation-failed', 'subject', 'channel', 'an SMS has no subject');
    if (typeof subject !== 'string' || subject.length > 998 || /[\r\n\0]/.test(subject)) {
      throw fieldError('validation-failed', 'subject', 'format', 'subject must be one line of at most 998 characters');
    }
  }
  if (typeof body !== 'string' || body.trim() === '') throw fieldError('validation-failed', 'body', 'required', 'body must be a non-empty string');
  if (Buffer.byteLength(body, 'utf8') > MAX_BODY_BYTES) throw fieldError('validation-failed', 'body', 'maxLength', `body must be at most ${MAX_BODY_BYTES} bytes`);
  if (typeof idempotencyKey !== 'string' || !IDEMPOTENCY_KEY.test(idempotencyKey)) {
    throw fieldError('validation-failed', 'idempotencyKey', 'format', 'idempotencyKey is required: 1–200 printable ASCII characters without spaces');
  }
  let list: { documentId: string }[] | undefined;
  if (attachments !== undefined && attachments !== null) {
    if (channel === 'sms') throw fieldError('validation-failed', 'attachments', 'channel', 'an SMS has no attachments');
    if (!Array.isArray(attachments) || attachments.length > 20) throw fieldError('validation-failed', 'attachments', 'type', 'attachments must be a list of at most 20 { documentId }');
    list = attachments.map((a: unknown, i) => {
      if (!isObject(a) || Object.keys(a).some((k) => k !== 'documentId') || typeof a.documentId !== 'string' || !isUuid(a.documentId)) {
        throw fieldError('validation-failed', `attachments.${i}.documentId`, 'format', 'each attachment is { documentId: <stored document id> }');
      }
      return { documentId: a.documentId };
    });
  }
  return {
    channel, to, body, idempotencyKey,
    ...(typeof subject === 'string' ? { subject } : {}),
    ...(list ? { attachments: list } : {}),
  };
}

export interface NotificationServiceDeps {
  db: Database;
  logger: Logger;
  email?: EmailTransport;
  sms?: SmsProvider;
  /** Throws unless `actor` may read the stored document (attaching is reading). */
  readDocument(id: string, actor: Principal): Promise<unknown>;
}

/**
 * Email and SMS notifications. Each is a row in kubiki_notifications before anything is sent; a
 * channel without a configured transport holds its messages in that outbox (status `held`), so
 * nothing is dropped. The idempotency key is unique: a retried request returns the first row.
 */
export class NotificationService {
  private email?: EmailTransport;
  private sms?: SmsProvider;

  constructor(private readonly deps: NotificationServiceDeps) {
    this.email = deps.email;
    this.sms = deps.sms;
  }

  /** Sets the SMS provider (none ships with the core); held SMS can then be sent with `retry`. */
  useSmsProvider(provider: SmsProvider | undefined): void {
    this.sms = provider;
  }

  configured(channel: NotificationChannel): boolean {
    return channel === 'email' ? this.email !== undefined : this.sms !== undefined;
  }

  /** Records the notification and sends it now when its channel is configured. `created` is false for a repeated key. */
  async send(input: unknown, actor: Principal, requestId?: string): Promise<{ notification: Notification; created: boolean }> {
    requireGrant(actor, 'core.notifications.send');
    const message = parseMessage(input);
    for (const [i, a] of (message.attachments ?? []).entries()) {
      try {
        await this.deps.readDocument(a.documentId, actor);
      } catch (error) {
        if (isKubikiError(error) && error.code === 'not-found') {
          throw fieldError('reference-not-found', `attachments.${i}.documentId`, 'exists', `no stored document ${a.documentId}`);
        }
        throw error;
      }
    }
    const { db } = this.deps;
    const id = randomUUID();
    const inserted = await db.knex.transaction(async (trx) => {
      const rows: Row[] = await db.table('kubiki_notifications', trx).insert({
        id, channel: message.channel, recipient: message.to, subject: message.subject ?? null, body: message.body,
        attachments: JSON.stringify(message.attachments ?? []), idempotency_key: message.idempotencyKey,
        status: 'queued', attempts: 0, created_by: actor.userId, created_by_name: actor.username,
      }).onConflict('idempotency_key').ignore().returning('*');
      if (rows.length === 0) return undefined;
      await this.audit(trx, actor, 'queued', id, {
        channel: { before: null, after: message.channel },
        to: { before: null, after: message.to },
        subject: { before: null, after: message.subject ?? null },
        attachments: { before: null, after: (message.attachments ?? []).map((a) => a.documentId) },
        idempotencyKey: { before: null, after: message.idempotencyKey },
        status: { before: null, after: 'queued' },
      }, requestId);
      return rows[0];
    });
    if (!inserted) {
      const existing: Row = await db.table('kubiki_notifications').where({ idempotency_key: message.idempotencyKey }).first();
      return { notification: toNotification(existing), created: false };
    }
    if (!this.configured(message.channel)) {
      this.deps.logger.warn({ notification: id, channel: message.channel }, `no ${message.channel} transport configured: the notification is held in the outbox`);
      return { notification: await this.setStatus(id, 'queued', { status: 'held' }, actor, requestId), created: true };
    }
    return { notification: await this.deliver(inserted, actor, requestId), created: true };
  }

  /** Sends a failed (or held, once its channel is configured) notification again. */
  async retry(id: string, actor: Principal, requestId?: string): Promise<Notification> {
    requireGrant(actor, 'core.notifications.send');
    const row = await this.row(id);
    const status = row.status as NotificationStatus;
    if (status !== 'failed' && status !== 'held') throw new KubikiError('conflict', `notification ${id} is ${status}; only failed or held notifications are retried`);
    if (!this.configured(row.channel as NotificationChannel)) throw new KubikiError('conflict', `no ${String(row.channel)} transport is configured; the notification stays held`);
    // Claiming the row by its status means two concurrent retries send once.
    const claimed: Row[] = await this.deps.db.table('kubiki_notifications').where({ id, status }).update({ status: 'queued', queued_at: this.deps.db.knex.fn.now() }).returning('*');
    if (claimed.length === 0) throw new KubikiError('conflict', `notification ${id} changed meanwhile; read it again`);
    await this.audit(this.deps.db.knex, actor, 'retried', id, { status: { before: status, after: 'queued' } }, requestId);
    return this.deliver(claimed[0], actor, requestId);
  }

  /**
   * Rows still `queued` long after a send must have finished (connection and socket timeouts are
   * under a minute) were left by a process that stopped mid-send: they become `failed`, so a retry
   * (an admin's, or the workflow step's) sends them. Not resent automatically: the first attempt
   * may have reached the server.
   */
  async failStale(olderThanSeconds = 120): Promise<number> {
    const rows: unknown[] = await this.deps.db.table('kubiki_notifications')
      .where({ status: 'queued' })
      .where('queued_at', '<', this.deps.db.knex.raw('now() - make_interval(secs => ?)', [olderThanSeconds]))
      .update({ status: 'failed', last_error: 'the process sending it stopped before it finished; retry to send it' })
      .returning('id');
    if (rows.length) this.deps.logger.warn({ count: rows.length }, 'notifications left queued by a stopped process are marked failed');
    return rows.length;
  }

  async get(id: string, actor: Principal): Promise<Notification> {
    requireGrant(actor, 'core.notifications.read');
    return toNotification(await this.row(id));
  }

  async list(query: { status?: NotificationStatus; channel?: NotificationChannel; limit: number }, actor: Principal): Promise<Notification[]> {
    requireGrant(actor, 'core.notifications.read');
    const qb = this.deps.db.table('kubiki_notifications').orderBy([{ column: 'created_at', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(query.limit).select(LIST_COLUMNS);
    if (query.status) qb.where({ status: query.status });
    if (query.channel) qb.where({ channel: query.channel });
    return (await qb).map(toNotification);
  }

  static parseStatus(value: unknown): NotificationStatus | undefined {
    if (value === undefined) return undefined;
    if (!STATUSES.includes(value as NotificationStatus)) throw fieldError('bad-query', 'status', 'enum', `status must be one of ${STATUSES.join(', ')}`);
    return value as NotificationStatus;
  }

  static parseChannel(value: unknown): NotificationChannel | undefined {
    if (value === undefined) return undefined;
    if (!CHANNELS.includes(value as NotificationChannel)) throw fieldError('bad-query', 'channel', 'enum', `channel must be one of ${CHANNELS.join(', ')}`);
    return value as NotificationChannel;
  }

  private async row(id: string): Promise<Row> {
    const row: Row | undefined = isUuid(id) ? await this.deps.db.table('kubiki_notifications').where({ id }).first() : undefined;
    if (!row) throw new KubikiError('not-found', `no notification ${id}`);
    return row;
  }

  /** Sends a queued row through its channel and records the outcome; a failure is kept, not thrown. */
  private async deliver(row: Row, actor: Principal, requestId?: string): Promise<Notification> {
    const id = String(row.id);
    const attempts = Number(row.attempts) + 1;
    try {
      let messageId: string;
      if (row.channel === 'email') {
        const email = this.email;
        if (!email) throw new Error('no email transport configured');
        messageId = (await email.send({
          to: String(row.recipient), subject: (row.subject as string | null) ?? '', text: String(row.body),
          attachments: await this.attachments((row.attachments as { documentId: string }[] | null) ?? []),
          idempotencyKey: String(row.idempotency_key),
        })).messageId;
      } else {
        const sms = this.sms;
        if (!sms) throw new Error('no SMS provider configured');
        messageId = (await sms.send(String(row.recipient), String(row.body), String(row.idempotency_key))).messageId;
      }
      return await this.setStatus(id, 'queued', { status: 'sent', attempts, last_error: null, provider_message_id: messageId, sent_at: this.deps.db.knex.fn.now() }, actor, requestId);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      this.deps.logger.warn({ notification: id, channel: row.channel, err: message }, 'notification failed');
      return this.setStatus(id, 'queued', { status: 'failed', attempts, last_error: message.slice(0, 2000) }, actor, requestId);
    }
  }

  private async attachments(list: { documentId: string }[]): Promise<EmailAttachment[]> {
    const out: EmailAttachment[] = [];
    for (const { documentId } of list) {
      const doc: Row | undefined = await this.deps.db.table('kubiki_documents').where({ id: documentId }).first(['template_id', 'format', 'content_type', 'content']);
      if (!doc) throw new Error(`attached document ${documentId} no longer exists`);
      out.push({
        filename: `${String(doc.template_id)}-${documentId}.${String(doc.format)}`,
        contentType: String(doc.content_type),
        content: Buffer.from(doc.content as Uint8Array),
      });
    }
    return out;
  }

  /** Moves a row from `from` to a new status and audits the change, in one transaction. */
  private async setStatus(id: string, from: NotificationStatus, update: Row, actor: Principal, requestId?: string): Promise<Notification> {
    const { db } = this.deps;
    return db.knex.transaction(async (trx) => {
      const [row]: Row[] = await db.table('kubiki_notifications', trx).where({ id, status: from }).update(update).returning('*');
      if (!row) throw new KubikiError('conflict', `notification ${id} is no longer ${from}`);
      const changes: FieldChanges = { status: { before: from, after: row.status } };
      if (row.last_error) changes.lastError = { before: null, after: row.last_error };
      if (row.provider_message_id) changes.providerMessageId = { before: null, after: row.provider_message_id };
      await this.audit(trx, actor, String(row.status), id, changes, requestId);
      return toNotification(row);
    });
  }

  private audit(trx: Executor, actor: Principal, action: string, id: string, changes: FieldChanges, requestId?: string): Promise<void> {
    return writeAudit(this.deps.db, trx, { actor, action, plugin: 'core', entity: 'notifications', recordId: id, changes, requestId });
  }
}
