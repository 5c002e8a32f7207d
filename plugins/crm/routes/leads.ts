import { KubikiError, isKubikiError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import type { Knex } from 'knex';
import { bad, bodyObject, listRecords, normalizeEmail, normalizePhone, onlyParams, uuidParam, UUID } from '../util.ts';

type Match = { record: ApiRecord; matchedOn: string[] };

/** Records of `entity` whose e-mail, phone or INN (when the entity has one) equal the lead's, normalised. */
async function matches(ctx: PluginContext, entity: string, actor: Principal, key: { email?: string; phone?: string; inn?: string }, options: { hasInn: boolean; trx?: Knex.Transaction; exclude?: string }): Promise<Match[]> {
  const found = new Map<string, Match>();
  const add = (records: ApiRecord[], on: string, test: (r: ApiRecord) => boolean) => {
    for (const r of records) {
      if (r.id === options.exclude || !test(r)) continue;
      const m = found.get(r.id) ?? { record: r, matchedOn: [] };
      if (!m.matchedOn.includes(on)) m.matchedOn.push(on);
      found.set(r.id, m);
    }
  };
  if (key.inn && options.hasInn) {
    add(await listRecords(ctx, entity, actor, [{ field: 'inn', op: 'eq', value: key.inn }], { limit: 50, trx: options.trx }), 'inn', () => true);
  }
  if (key.email) {
    // [contains] is case-insensitive; the exact comparison is on the trimmed, lower-cased address.
    add(await listRecords(ctx, entity, actor, [{ field: 'email', op: 'contains', value: key.email }], { limit: 200, trx: options.trx }), 'email', (r) => normalizeEmail(r.email) === key.email);
  }
  if (key.phone) {
    // Stored numbers are formatted any way ("+7 (916) 123-45-67", "8 916 1234567"): narrow by the
    // last two digits in SQL, then compare the normalised digits.
    add(await listRecords(ctx, entity, actor, [{ field: 'phone', op: 'contains', value: key.phone.slice(-2) }], { limit: 500, trx: options.trx }), 'phone', (r) => normalizePhone(r.phone) === key.phone);
  }
  return [...found.values()];
}

const keyOf = (lead: ApiRecord) => ({ email: normalizeEmail(lead.email), phone: normalizePhone(lead.phone), inn: typeof lead.inn === 'string' ? lead.inn : undefined });
const brief = (m: Match, fields: string[]) => ({ id: m.record.id, ...Object.fromEntries(fields.filter((f) => m.record[f] !== undefined).map((f) => [f, m.record[f]])), matchedOn: m.matchedOn });

export function leadRoutes(ctx: PluginContext): void {
  ctx.route({
    method: 'get', path: '/leads/:id/duplicates', permission: 'crm.leads.read',
    async handler(http, principal) {
      const id = uuidParam(http.params.id, 'id');
      onlyParams(http.query as Record<string, string>, []);
      const lead = await ctx.repository('crm.leads').get(id, { actor: principal });
      const key = keyOf(lead);
      const [leads, organizations, people] = await Promise.all([
        matches(ctx, 'crm.leads', principal, key, { hasInn: true, exclude: lead.id }),
        matches(ctx, 'base.organizations', principal, key, { hasInn: true }),
        matches(ctx, 'base.people', principal, key, { hasInn: false }),
      ]);
      http.body = {
        normalized: key,
        leads: leads.map((m) => brief(m, ['name', 'company', 'email', 'phone', 'inn', 'status'])),
        organizations: organizations.map((m) => brief(m, ['name', 'inn', 'email', 'phone'])),
        people: people.map((m) => brief(m, ['firstName', 'lastName', 'organization', 'email', 'phone'])),
      };
    },
  });

  ctx.route({
    method: 'post', path: '/leads/:id/qualify', permission: 'crm.leads.qualify',
    async handler(http, principal) {
      const id = uuidParam(http.params.id, 'id');
      const body = bodyObject((http.state as { body?: unknown }).body, ['dealTitle', 'amount', 'currency', 'organization', 'expectedCloseDate']);
      if (body.dealTitle !== undefined && (typeof body.dealTitle !== 'string' || body.dealTitle.trim() === '' || body.dealTitle.length > 300)) throw bad('dealTitle', 'type', 'dealTitle must be a non-empty string of at most 300 characters');
      if (body.organization !== undefined && (typeof body.organization !== 'string' || !UUID.test(body.organization))) throw bad('organization', 'format', 'organization must be the id of an existing organization to attach the lead to');
      // amount, currency and expectedCloseDate are checked by the deal's schema (and named there).
      const result = await ctx.transaction(async (trx) => {
        const leads = ctx.repository('crm.leads');
        const lead = await leads.get(id, { actor: principal, trx });
        if (lead.status !== 'new') throw new KubikiError('conflict', `lead ${id} is ${String(lead.status)}; only new leads are qualified`, { issues: [{ field: 'status', rule: 'state', message: `the lead is ${String(lead.status)}` }] });
        const key = keyOf(lead);
        const reused = { organization: false, person: false, customer: false };

        // The organization: the one named, else the one with the lead's INN, else a new one.
        let organization: ApiRecord | undefined;
        if (typeof body.organization === 'string') {
          try {
            organization = await ctx.repository('base.organizations').get(body.organization, { actor: principal, trx });
          } catch (error) {
            if (isKubikiError(error) && error.code === 'not-found') throw bad('organization', 'exists', `organization ${body.organization} does not exist`);
            throw error;
          }
          reused.organization = true;
        } else if (key.inn) {
          organization = (await listRecords(ctx, 'base.organizations', principal, [{ field: 'inn', op: 'eq', value: key.inn }], { limit: 1, trx }))[0];
          reused.organization = Boolean(organization);
        }
        organization ??= await ctx.repository('base.organizations').create({
          name: (typeof lead.company === 'string' && lead.company.trim()) || String(lead.name), roles: ['customer'],
          ...(key.inn ? { inn: key.inn } : {}), ...(typeof lead.email === 'string' && lead.company ? { email: lead.email } : {}), ...(typeof lead.phone === 'string' && lead.company ? { phone: lead.phone } : {}),
        }, { actor: principal, trx, requestId: http.state.requestId });

        // The contact person: one at that organization with the same e-mail or phone, else new.
        const candidates = (await matches(ctx, 'base.people', principal, key, { hasInn: false, trx })).filter((m) => m.record.organization === organization.id);
        let person = candidates[0]?.record;
        reused.person = Boolean(person);
        person ??= await ctx.repository('base.people').create({
          firstName: String(lead.name), organization: organization.id,
          ...(typeof lead.email === 'string' ? { email: lead.email } : {}), ...(typeof lead.phone === 'string' ? { phone: lead.phone } : {}),
        }, { actor: principal, trx, requestId: http.state.requestId });

        const owner = typeof lead.owner === 'string' ? lead.owner : principal.userId;
        let customer = (await listRecords(ctx, 'crm.customers', principal, [{ field: 'organization', op: 'eq', value: organization.id }], { limit: 1, trx }))[0];
        reused.customer = Boolean(customer);
        customer ??= await ctx.repository('crm.customers').create({
          organization: organization.id, name: organization.name, ...(owner ? { owner } : {}), ...(typeof lead.source === 'string' ? { source: lead.source } : {}),
        }, { actor: principal, trx, requestId: http.state.requestId });

        const deal = await ctx.repository('crm.deals').create({
          title: typeof body.dealTitle === 'string' ? body.dealTitle.trim() : `${String(organization.name)}${lead.source ? ` (${String(lead.source)})` : ''}`,
          organization: organization.id, contact: person.id, ...(owner ? { owner } : {}),
          ...(body.amount !== undefined ? { amount: body.amount } : {}), ...(body.currency !== undefined ? { currency: body.currency } : {}),
          ...(body.expectedCloseDate !== undefined ? { expectedCloseDate: body.expectedCloseDate } : {}),
          ...(typeof lead.source === 'string' ? { source: lead.source } : {}),
        }, { actor: principal, trx, requestId: http.state.requestId });

        const qualified = await leads.update(id, { status: 'qualified', organization: organization.id, person: person.id, deal: deal.id }, {
          actor: principal, trx, expectedVersion: Number(lead.version), requestId: http.state.requestId,
        });
        return { lead: qualified, organization, person, customer, deal, reused };
      });
      http.body = result;
    },
  });
}
