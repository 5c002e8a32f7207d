import { KubikiError, SYSTEM, defineRoute, entityRecord, type ApiRecord, type PluginContext } from 'kubiki/plugin';
import { decodeCursor, encodeCursor, listRecords, normalizePhone } from '../util.ts';
import { count, cursor, keysetPage, limit, nullable, recordParams, timestamp, uuid, type JsonSchema } from './schemas.ts';

/** `{{name}}`-style placeholders, nothing else: no code, no HTML escaping questions (plain text). */
export function substitute(text: string, values: Record<string, string>): string {
  return text.replace(/\{\{\s*([a-zA-Z]+)\s*\}\}/g, (whole, key: string) => (key in values ? values[key] : whole));
}

/** Customers a segment selects: every condition it names must hold. */
async function segmentCustomers(ctx: PluginContext, segment: ApiRecord): Promise<ApiRecord[]> {
  const q = ctx.table('crm_customers').select('id').orderBy('id');
  if (typeof segment.segment === 'string') q.where('segment', segment.segment);
  if (typeof segment.owner === 'string') q.where('owner', segment.owner);
  if (typeof segment.source === 'string') q.where('source', segment.source);
  if (Array.isArray(segment.tags) && segment.tags.length) q.whereRaw('"tags" @> ?::jsonb', [JSON.stringify(segment.tags)]);
  const ids = (await q).map((r: { id: string }) => String(r.id));
  const out: ApiRecord[] = [];
  for (let i = 0; i < ids.length; i += 500) out.push(...await listRecords(ctx, 'crm.customers', SYSTEM, [{ field: 'id', op: 'in', value: ids.slice(i, i + 500) }], { limit: 500 }));
  return out;
}

type RecipientCursor = { id: string };
const isCursor = (v: unknown): v is RecipientCursor => typeof v === 'object' && v !== null && typeof (v as RecipientCursor).id === 'string' && /^[0-9a-f-]{36}$/.test((v as RecipientCursor).id);

const STATUSES = ['sent', 'held', 'queued', 'failed', 'skipped'] as const;
type RecipientStatus = (typeof STATUSES)[number];

const recipient: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['customer', 'organization', 'name', 'address', 'status', 'reason', 'notification', 'updatedAt'],
  properties: {
    customer: uuid('The crm.customers record'), organization: uuid('Its organization (base.organizations)'),
    name: { type: ['string', 'null'], description: 'The name put into {{name}}' },
    address: { type: ['string', 'null'], description: 'The e-mail address or E.164 phone number; null when the customer has none' },
    status: { enum: [...STATUSES], description: 'The notification\'s status (sent, held, queued, failed), or skipped' },
    reason: { type: ['string', 'null'], description: 'Why skipped (unsubscribed, no e-mail address, no phone number) or why sending failed' },
    notification: { ...nullable(uuid()), description: 'The notification (GET /api/notifications/{id}); null when skipped or failed before the outbox' },
    updatedAt: timestamp,
  },
};

export function mailingRoutes(ctx: PluginContext): void {
  // Sends the mailing to every customer its segment selects now. Each recipient's message has the
  // idempotency key crm-mailing:<mailing>:<customer>, so sending again reaches only customers
  // not reached before (e.g. newly added to the segment) and never duplicates a message.
  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/mailings/:id/send', operationId: 'sendMailing', permission: 'crm.mailings.send',
    summary: 'Send a mailing to every customer its segment selects now',
    description: 'Messages go through the notifications outbox as the system (held there while the channel has no transport). '
      + 'Each has the idempotency key crm-mailing:<mailing>:<customer>, so sending again reaches only customers not reached before. '
      + 'Unsubscribed customers and those without an address are recorded as skipped. An e-mail mailing needs a subject (400 naming subject). Takes no body.',
    errors: ['not-found'],
    schemas: {
      params: recordParams('crm.mailings'),
      responses: {
        200: {
          type: 'object', additionalProperties: false, required: ['mailing', 'total', 'sent', 'held', 'queued', 'failed', 'skipped'],
          properties: {
            mailing: { ...entityRecord('crm.mailings'), description: 'The mailing, now status sent with sentAt' },
            total: { ...count, description: 'Customers the segment selects' },
            sent: count, held: count, queued: count, failed: count,
            skipped: { ...count, description: 'Unsubscribed or without an address' },
          },
        },
      },
    },
    async handler({ params, principal }, http) {
      const mailing = await ctx.repository('crm.mailings').get(params.id, { actor: principal });
      const id = mailing.id;
      const segment = await ctx.repository('crm.segments').get(String(mailing.segment), { actor: SYSTEM });
      const channel = mailing.channel === 'sms' ? 'sms' : 'email';
      if (channel === 'email' && (typeof mailing.subject !== 'string' || mailing.subject.trim() === '')) {
        throw new KubikiError('validation-failed', 'an e-mail mailing needs a subject: set it first', { issues: [{ field: 'subject', rule: 'required', message: 'e-mail mailings need a subject' }] });
      }
      const customers = await segmentCustomers(ctx, segment);
      const orgIds = [...new Set(customers.map((c) => String(c.organization)))];
      const orgs = new Map<string, ApiRecord>();
      for (let i = 0; i < orgIds.length; i += 500) {
        for (const o of await listRecords(ctx, 'base.organizations', SYSTEM, [{ field: 'id', op: 'in', value: orgIds.slice(i, i + 500) }], { limit: 500 })) orgs.set(o.id, o);
      }
      const summary: Record<string, number> = { total: customers.length, sent: 0, held: 0, queued: 0, failed: 0, skipped: 0 };
      for (const c of customers) {
        const org = orgs.get(String(c.organization));
        const name = String(c.name ?? org?.name ?? '');
        let address: string | undefined;
        if (channel === 'email') address = String(c.email ?? org?.email ?? '') || undefined;
        else {
          const digits = normalizePhone(c.phone ?? org?.phone);
          address = digits && /^[1-9]\d{7,14}$/.test(digits) ? `+${digits}` : undefined;
        }
        const row = { mailing_id: id, customer_id: c.id, organization_id: String(c.organization), name, address: address ?? null, updated_at: new Date() };
        const skip = c.unsubscribed === true ? 'unsubscribed' : !address ? (channel === 'email' ? 'no e-mail address' : 'no phone number') : undefined;
        if (skip) {
          // A recipient reached before keeps that status: a later unsubscribe does not unsend.
          await ctx.table('crm_mailing_recipients').insert({ ...row, status: 'skipped', reason: skip, notification_id: null })
            .onConflict(['mailing_id', 'customer_id']).merge(['status', 'reason', 'name', 'address', 'updated_at']).where('crm_mailing_recipients.notification_id', null);
          summary.skipped++;
          continue;
        }
        const values = { name, organization: String(org?.name ?? ''), legalName: String(org?.legalName ?? org?.name ?? ''), inn: String(org?.inn ?? '') };
        let status: string; let reason: string | null = null; let notificationId: string | null = null;
        try {
          const n = await ctx.notify({
            channel, to: address!, ...(channel === 'email' ? { subject: substitute(String(mailing.subject), values) } : {}),
            body: substitute(String(mailing.body), values), idempotencyKey: `crm-mailing:${id}:${c.id}`,
          }, SYSTEM);
          status = n.status; reason = n.lastError; notificationId = n.id;
        } catch (error) {
          status = 'failed'; reason = (error as Error).message;
        }
        summary[status] = (summary[status] ?? 0) + 1;
        await ctx.table('crm_mailing_recipients').insert({ ...row, status, reason, notification_id: notificationId })
          .onConflict(['mailing_id', 'customer_id']).merge(['status', 'reason', 'notification_id', 'name', 'address', 'updated_at']);
      }
      const updated = await ctx.repository('crm.mailings').update(id, { status: 'sent', sentAt: new Date().toISOString() }, { actor: SYSTEM });
      http.body = { mailing: updated, ...summary };
    },
  }));

  ctx.route(defineRoute<{ id: string }, { status?: RecipientStatus; limit: number; cursor?: string }>({
    method: 'get', path: '/mailings/:id/recipients', operationId: 'listMailingRecipients', permission: 'crm.mailings.read',
    summary: 'Delivery status per recipient of a mailing, by customer id, keyset-paged',
    errors: ['not-found'],
    schemas: {
      params: recordParams('crm.mailings'),
      query: { type: 'object', properties: { status: { enum: [...STATUSES], description: 'Only recipients in this status' }, limit: limit(500, 100), cursor } },
      responses: { 200: keysetPage(recipient) },
    },
    async handler({ params, query, principal }, http) {
      const { status, limit: size } = query;
      const after = decodeCursor(query.cursor, isCursor);
      const id = (await ctx.repository('crm.mailings').get(params.id, { actor: principal })).id;
      const q = ctx.table('crm_mailing_recipients').where({ mailing_id: id }).orderBy('customer_id').limit(size + 1);
      if (status) q.where({ status });
      if (after) q.where('customer_id', '>', after.id);
      const rows: Record<string, unknown>[] = await q;
      const more = rows.length > size;
      if (more) rows.pop();
      http.body = {
        data: rows.map((r) => ({
          customer: r.customer_id, organization: r.organization_id, name: r.name, address: r.address, status: r.status, reason: r.reason,
          notification: r.notification_id, updatedAt: r.updated_at instanceof Date ? r.updated_at.toISOString() : r.updated_at,
        })),
        next: more ? encodeCursor({ id: String(rows[rows.length - 1].customer_id) }) : null,
      };
    },
  }));
}
