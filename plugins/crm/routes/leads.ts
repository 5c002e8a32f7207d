import { KubikiError, defineRoute, entityRecord, fieldError, isKubikiError, optionalBody, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import type { Knex } from 'knex';
import { listRecords, normalizeEmail, normalizePhone } from '../util.ts';
import { day, noQuery, recordParams, uuid, type JsonSchema } from './schemas.ts';

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

// ── What the routes take and answer ───────────────────────────────────────────────────────────

const text: JsonSchema = { type: 'string' };
/** One match: the record's id, the fields shown (those it has) and what matched. */
const match = (entity: string, fields: JsonSchema): JsonSchema => ({
  type: 'object', additionalProperties: false, required: ['id', 'matchedOn'],
  properties: {
    id: uuid(`The ${entity} record`), ...fields,
    matchedOn: { type: 'array', minItems: 1, items: { enum: ['inn', 'email', 'phone'] }, description: 'What equals the lead\'s, normalised' },
  },
});
const duplicates: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['normalized', 'leads', 'organizations', 'people'],
  properties: {
    normalized: {
      type: 'object', additionalProperties: false, description: 'The lead\'s keys as compared (absent when the lead has none)',
      properties: {
        email: { type: 'string', description: 'Trimmed, lower-cased' },
        phone: { type: 'string', pattern: '^[0-9]+$', description: 'Digits; Russian 8/7/10-digit forms as 7XXXXXXXXXX' },
        inn: text,
      },
    },
    leads: { type: 'array', description: 'Other crm.leads records', items: match('crm.leads', { name: text, company: text, email: text, phone: text, inn: text, status: { enum: ['new', 'qualified', 'disqualified'] } }) },
    organizations: { type: 'array', description: 'base.organizations records', items: match('base.organizations', { name: text, inn: text, email: text, phone: text }) },
    people: { type: 'array', description: 'base.people records', items: match('base.people', { firstName: text, lastName: text, organization: uuid('Their organization'), email: text, phone: text }) },
  },
};

interface QualifyBody { dealTitle?: string; amount?: string; currency?: string; organization?: string; expectedCloseDate?: string }

const qualifyBody: JsonSchema = optionalBody({
  type: 'object',
  description: 'Everything optional; the deal\'s amount, currency and expectedCloseDate as the deal takes them.',
  properties: {
    dealTitle: { type: 'string', minLength: 1, maxLength: 300, pattern: '\\S', 'x-format-hint': 'a title that is not blank', description: 'The deal\'s title; "<organization> (<source>)" when absent' },
    amount: { type: 'string', 'x-decimal': { precision: 18, scale: 2 }, description: 'The deal\'s expected amount, a decimal string such as "80000.00"' },
    currency: { ...uuid('The deal\'s currency (a base.currencies id)'), 'x-ref': 'base.currencies' },
    organization: { ...uuid('An existing organization to attach the lead to (a base.organizations id); else the one with the lead\'s INN, else a new one'), 'x-ref': 'base.organizations' },
    expectedCloseDate: day('When the deal is expected to close'),
  },
});

const qualified: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['lead', 'organization', 'person', 'customer', 'deal', 'reused'],
  properties: {
    lead: { ...entityRecord('crm.leads'), description: 'The lead, now qualified, naming organization, person and deal' },
    organization: entityRecord('base.organizations'),
    person: entityRecord('base.people'),
    customer: entityRecord('crm.customers'),
    deal: entityRecord('crm.deals'),
    reused: {
      type: 'object', additionalProperties: false, required: ['organization', 'person', 'customer'], description: 'true: an existing record was taken, false: one was created',
      properties: { organization: { type: 'boolean' }, person: { type: 'boolean' }, customer: { type: 'boolean' } },
    },
  },
};

export function leadRoutes(ctx: PluginContext): void {
  ctx.route(defineRoute<{ id: string }>({
    method: 'get', path: '/leads/:id/duplicates', operationId: 'leadDuplicates', permission: 'crm.leads.read',
    summary: 'Leads, organizations and people with the same e-mail, phone or INN as a lead',
    description: 'E-mail compared case-insensitively, phones by their digits (8/7/10-digit Russian forms are equal), INN as is. '
      + 'Only records the caller may read are searched.',
    errors: ['not-found'],
    schemas: { params: recordParams('crm.leads'), query: noQuery, responses: { 200: duplicates } },
    async handler({ params, principal }, http) {
      const lead = await ctx.repository('crm.leads').get(params.id, { actor: principal });
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
  }));

  ctx.route(defineRoute<{ id: string }, unknown, QualifyBody | undefined>({
    method: 'post', path: '/leads/:id/qualify', operationId: 'qualifyLead', permission: 'crm.leads.qualify',
    summary: 'Turn a new lead into an organization, contact person, customer card and deal, in one transaction',
    description: 'The organization: the one named, else the one with the lead\'s INN, else a new one; the person: one of that organization with the lead\'s e-mail or phone, else a new one; '
      + 'the customer card of the organization, else a new one; always a new deal. The lead becomes qualified. '
      + 'Needs create permission on what it creates. 409 unless the lead is new; nothing is written when any step fails.',
    errors: ['not-found', 'conflict', 'forbidden', 'reference-not-found', 'unique-violation', 'version-mismatch'],
    schemas: { params: recordParams('crm.leads'), body: qualifyBody, responses: { 200: qualified } },
    async handler({ params, body: given, principal }, http) {
      const body: QualifyBody = given ?? {};
      const id = params.id;
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
            if (isKubikiError(error) && error.code === 'not-found') throw fieldError('reference-not-found', 'organization', 'exists', `organization ${body.organization} does not exist`);
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
  }));
}
