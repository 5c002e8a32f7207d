import { v7 as uuidv7 } from 'uuid';
import type { Database, Executor } from '../db/database.ts';
import { KubikiError, fieldError } from '../errors.ts';
import { SYSTEM, type Principal } from '../auth/principal.ts';
import { writeAudit, type FieldChanges } from '../audit/audit-trail.ts';
import { hostAllowed } from '../workflows/engine/http-request.ts';
import { isEventPattern, patternsRegex } from './event-patterns.ts';
import { newSecret, secretKey, type SecretBox } from './signing.ts';

/** A subscription as the API shows it: never its secret. */
export interface WebhookView {
  id: string;
  url: string;
  eventTypes: string[];
  description: string;
  active: boolean;
  /** Why it was switched off by Kubiki (the endpoint answered 410 Gone), or null. */
  disabledReason: string | null;
  disabledAt: string | null;
  /** While a rotation overlaps: until when the previous secret signs too. */
  previousSecretExpiresAt: string | null;
  secretRotatedAt: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface WebhookInput {
  url: string;
  eventTypes: string[];
  description?: string | null;
  active?: boolean;
  /** A `whsec_…` secret of the caller's own; generated when left out. */
  secret?: string | null;
}

export type WebhookPatch = Partial<Omit<WebhookInput, 'secret'>>;

type Row = Record<string, unknown>;

const toView = (r: Row): WebhookView => ({
  id: String(r.id),
  url: String(r.url),
  eventTypes: r.event_types as string[],
  description: String(r.description),
  active: Boolean(r.active),
  disabledReason: (r.disabled_reason as string | null) ?? null,
  disabledAt: (r.disabled_at as string | null) ?? null,
  previousSecretExpiresAt: (r.previous_secret_expires_at as string | null) ?? null,
  secretRotatedAt: (r.secret_rotated_at as string | null) ?? null,
  createdAt: String(r.created_at),
  updatedAt: String(r.updated_at),
});

/** The subscription row with what the sender needs (the secrets stay sealed until used). */
export interface WebhookTarget {
  id: string;
  url: string;
  secret: string;
  previousSecret: string | null;
  previousSecretExpiresAt: number | null;
}

/**
 * Webhook subscriptions: CRUD, secret rotation, audit rows for every change. The URL must be http(s)
 * without credentials, to a host on the workflow HTTP step's allow-list (KUBIKI_WORKFLOW_HTTP_ALLOW).
 */
export class WebhookStore {
  constructor(
    private readonly db: Database,
    private readonly box: SecretBox,
    private readonly allowHosts: () => string[],
    private readonly now: () => Date,
  ) {}

  checkUrl(raw: string, field = 'url'): void {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw fieldError('validation-failed', field, 'format', `${field} must be an absolute http(s) URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw fieldError('validation-failed', field, 'protocol', `${field} must be http or https, not ${url.protocol}`);
    if (url.username || url.password) throw fieldError('validation-failed', field, 'credentials', `${field} must not carry credentials; the signature authenticates the sender`);
    const allow = this.allowHosts();
    if (!hostAllowed(url.hostname, allow)) {
      throw new KubikiError('http-not-allowed', `${url.hostname} is not on the HTTP allow-list webhooks share with the workflow HTTP step (KUBIKI_WORKFLOW_HTTP_ALLOW${allow.length ? `: ${allow.join(', ')}` : ' is empty'})`, {
        issues: [{ field, rule: 'allow-list', message: `${url.hostname} is not an allowed host` }], extra: { host: url.hostname },
      });
    }
  }

  private static checkPatterns(eventTypes: string[]): string[] {
    eventTypes.forEach((p, i) => {
      if (!isEventPattern(p)) throw fieldError('validation-failed', `eventTypes.${i}`, 'pattern', `"${p}" is not an event type or pattern: use <plugin>.<entity>.<created|updated|deleted>, "*" for one segment, a trailing "*" for the rest (finance.*)`);
    });
    return [...new Set(eventTypes)];
  }

  async list(): Promise<WebhookView[]> {
    return (await this.db.table('kubiki_webhooks').orderBy('id')).map(toView);
  }

  private async row(id: string, trx?: Executor, lock = false): Promise<Row> {
    const q = this.db.table('kubiki_webhooks', trx).where({ id });
    if (lock) q.forUpdate();
    const row: Row | undefined = await q.first();
    if (!row) throw new KubikiError('not-found', `no webhook subscription ${id}`, { extra: { id } });
    return row;
  }

  async get(id: string): Promise<WebhookView> {
    return toView(await this.row(id));
  }

  /** The active subscriptions' ids and event regexes (fan-out). */
  async active(trx?: Executor): Promise<{ id: string; eventRegex: string }[]> {
    const rows: Row[] = await this.db.table('kubiki_webhooks', trx).where({ active: true }).select('id', 'event_regex');
    return rows.map((r) => ({ id: String(r.id), eventRegex: String(r.event_regex) }));
  }

  async create(actor: Principal, input: WebhookInput, requestId?: string): Promise<{ webhook: WebhookView; secret: string }> {
    this.checkUrl(input.url);
    const eventTypes = WebhookStore.checkPatterns(input.eventTypes);
    const secret = input.secret ?? newSecret();
    secretKey(secret);
    const id = uuidv7();
    const sealed = await this.box.seal(secret);
    return this.db.knex.transaction(async (trx) => {
      const [row] = await this.db.table('kubiki_webhooks', trx).insert({
        id, url: input.url, event_types: JSON.stringify(eventTypes), event_regex: patternsRegex(eventTypes), description: input.description ?? '',
        active: input.active ?? true, secret: sealed, created_by: actor.userId,
      }).returning('*');
      await writeAudit(this.db, trx, {
        actor, action: 'created', plugin: 'core', entity: 'webhooks', recordId: id, requestId,
        changes: { url: { before: null, after: input.url }, eventTypes: { before: null, after: eventTypes }, active: { before: null, after: input.active ?? true }, secret: { before: null, after: '(set)' } },
      });
      return { webhook: toView(row), secret };
    });
  }

  async update(actor: Principal, id: string, patch: WebhookPatch, requestId?: string): Promise<WebhookView> {
    if (patch.url !== undefined) this.checkUrl(patch.url);
    const eventTypes = patch.eventTypes === undefined ? undefined : WebhookStore.checkPatterns(patch.eventTypes);
    return this.db.knex.transaction(async (trx) => {
      const before = toView(await this.row(id, trx, true));
      const set: Row = {};
      const changes: FieldChanges = {};
      if (patch.url !== undefined && patch.url !== before.url) { set.url = patch.url; changes.url = { before: before.url, after: patch.url }; }
      if (eventTypes && JSON.stringify(eventTypes) !== JSON.stringify(before.eventTypes)) {
        set.event_types = JSON.stringify(eventTypes);
        set.event_regex = patternsRegex(eventTypes);
        changes.eventTypes = { before: before.eventTypes, after: eventTypes };
      }
      const description = patch.description === null ? '' : patch.description;
      if (description !== undefined && description !== before.description) { set.description = description; changes.description = { before: before.description, after: description }; }
      if (patch.active !== undefined && patch.active !== before.active) {
        set.active = patch.active;
        changes.active = { before: before.active, after: patch.active };
        // Switched on again by someone: whatever switched it off is history.
        if (patch.active) { set.disabled_reason = null; set.disabled_at = null; }
      }
      if (Object.keys(set).length === 0) return before;
      const [row] = await this.db.table('kubiki_webhooks', trx).where({ id }).update({ ...set, updated_at: this.now().toISOString() }).returning('*');
      await writeAudit(this.db, trx, { actor, action: 'updated', plugin: 'core', entity: 'webhooks', recordId: id, changes, requestId });
      return toView(row);
    });
  }

  async remove(actor: Principal, id: string, requestId?: string): Promise<void> {
    await this.db.knex.transaction(async (trx) => {
      const before = toView(await this.row(id, trx, true));
      // The deliveries (and their attempts) go with it.
      await this.db.table('kubiki_webhooks', trx).where({ id }).delete();
      await writeAudit(this.db, trx, { actor, action: 'deleted', plugin: 'core', entity: 'webhooks', recordId: id, changes: { url: { before: before.url, after: null }, eventTypes: { before: before.eventTypes, after: null } }, requestId });
    });
  }

  /**
   * A new secret (generated, or the caller's); the previous one keeps signing beside it for
   * `overlapSeconds` (0: it stops at once), so receivers can switch without missing a message.
   */
  async rotate(actor: Principal, id: string, options: { overlapSeconds: number; secret?: string | null }, requestId?: string): Promise<{ webhook: WebhookView; secret: string }> {
    const secret = options.secret ?? newSecret();
    secretKey(secret);
    const sealed = await this.box.seal(secret);
    return this.db.knex.transaction(async (trx) => {
      const before = await this.row(id, trx, true);
      const now = this.now();
      const expires = options.overlapSeconds > 0 ? new Date(now.getTime() + options.overlapSeconds * 1000).toISOString() : null;
      const [row] = await this.db.table('kubiki_webhooks', trx).where({ id }).update({
        secret: sealed, previous_secret: expires ? before.secret : null, previous_secret_expires_at: expires, secret_rotated_at: now.toISOString(), updated_at: now.toISOString(),
      }).returning('*');
      await writeAudit(this.db, trx, { actor, action: 'updated', plugin: 'core', entity: 'webhooks', recordId: id, changes: { secret: { before: '(hidden)', after: '(rotated)' }, previousSecretExpiresAt: { before: null, after: expires } }, requestId });
      return { webhook: toView(row), secret };
    });
  }

  /** Switched off because the endpoint answered 410 Gone (audited as the system's doing). */
  async disable(trx: Executor, id: string, reason: string): Promise<boolean> {
    const now = this.now().toISOString();
    const n = await this.db.table('kubiki_webhooks', trx).where({ id, active: true }).update({ active: false, disabled_reason: reason, disabled_at: now, updated_at: now });
    if (n > 0) await writeAudit(this.db, trx, { actor: SYSTEM, action: 'disabled', plugin: 'core', entity: 'webhooks', recordId: id, changes: { active: { before: true, after: false }, disabledReason: { before: null, after: reason } } });
    return n > 0;
  }

  /** The secrets that sign now: the current one, and the previous while its overlap lasts. */
  async signingSecrets(target: WebhookTarget, now: number): Promise<string[]> {
    const secrets = [await this.open(target.secret)];
    if (target.previousSecret && target.previousSecretExpiresAt !== null && target.previousSecretExpiresAt > now) secrets.push(await this.open(target.previousSecret));
    return secrets;
  }

  private readonly opened = new Map<string, string>();

  private async open(sealed: string): Promise<string> {
    let plain = this.opened.get(sealed);
    if (plain === undefined) {
      plain = await this.box.open(sealed);
      if (this.opened.size > 1000) this.opened.clear();
      this.opened.set(sealed, plain);
    }
    return plain;
  }
}
