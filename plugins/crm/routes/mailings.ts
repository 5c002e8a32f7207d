import { KubikiError, SYSTEM, type ApiRecord, type PluginContext } from 'kubiki/plugin';
import { bodyObject, decodeCursor, encodeCursor, limitParam, listRecords, normalizePhone, onlyParams, stringQuery, uuidParam } from '../util.ts';

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

export function mailingRoutes(ctx: PluginContext): void {
  // Sends the mailing to every customer its segment selects now. Each recipient's message has the
  // idempotency key crm-mailing:<mailing>:<customer>, so sending again reaches only customers
  // not reached before (e.g. newly added to the segment) and never duplicates a message.
  ctx.route({
    method: 'post', path: '/mailings/:id/send', permission: 'crm.mailings.send',
    async handler(http, principal) {
      const id = uuidParam(http.params.id, 'id');
      bodyObject((http.state as { body?: unknown }).body, []);
      const mailing = await ctx.repository('crm.mailings').get(id, { actor: principal });
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
  });

  ctx.route({
    method: 'get', path: '/mailings/:id/recipients', permission: 'crm.mailings.read',
    async handler(http, principal) {
      const id = uuidParam(http.params.id, 'id');
      const query = http.query as Record<string, string | string[] | undefined>;
      onlyParams(query, ['status', 'limit', 'cursor']);
      const status = stringQuery(query, 'status', ['sent', 'held', 'queued', 'failed', 'skipped']);
      const limit = limitParam(query, 100, 500);
      const cursor = decodeCursor(query, isCursor);
      await ctx.repository('crm.mailings').get(id, { actor: principal });
      const q = ctx.table('crm_mailing_recipients').where({ mailing_id: id }).orderBy('customer_id').limit(limit + 1);
      if (status) q.where({ status });
      if (cursor) q.where('customer_id', '>', cursor.id);
      const rows: Record<string, unknown>[] = await q;
      const more = rows.length > limit;
      if (more) rows.pop();
      http.body = {
        data: rows.map((r) => ({
          customer: r.customer_id, organization: r.organization_id, name: r.name, address: r.address, status: r.status, reason: r.reason,
          notification: r.notification_id, updatedAt: r.updated_at instanceof Date ? r.updated_at.toISOString() : r.updated_at,
        })),
        next: more ? encodeCursor({ id: String(rows[rows.length - 1].customer_id) }) : null,
      };
    },
  });
}
