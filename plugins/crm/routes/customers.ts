import { defineRoute, entityRecord, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import { decodeCursor, encodeCursor, isoOf, listRecords, mayRead } from '../util.ts';
import { cursor, keysetPage, limit, noQuery, nullable, records, uuid, type JsonSchema } from './schemas.ts';

/** What other modules add to a customer card (manifest extension point crm.customerFacts). */
export interface CustomerFactsContribution {
  name: string;
  facts(organizationId: string): Promise<Record<string, unknown>>;
}

const FACTS_TIMEOUT_MS = 5000;
type TimelineCursor = { at: string; id: string };
const isCursor = (v: unknown): v is TimelineCursor =>
  typeof v === 'object' && v !== null && typeof (v as TimelineCursor).at === 'string' && typeof (v as TimelineCursor).id === 'string' && !Number.isNaN(Date.parse((v as TimelineCursor).at));

/**
 * A customer's timeline: activities newest first by occurredAt (the time of recording when it has
 * none), keyset-paged. Ids come from one SQL query; the records are read through the repository,
 * so the caller's read permissions (":own" included) apply.
 */
export async function timeline(ctx: PluginContext, organizationId: string, actor: Principal, limit: number, cursor?: TimelineCursor): Promise<{ data: ApiRecord[]; next: string | null }> {
  const knex = ctx.table('crm_activities').client;
  const q = ctx.table('crm_activities').where({ organization: organizationId }).select('id', knex.raw('coalesce("occurredAt", "createdAt") as at'))
    .orderByRaw('coalesce("occurredAt", "createdAt") desc, id desc').limit(limit + 1);
  if (cursor) q.where(knex.raw('(coalesce("occurredAt", "createdAt"), id) < (?::timestamptz, ?::uuid)', [cursor.at, cursor.id]));
  const rows: { id: string; at: Date | string }[] = await q;
  const more = rows.length > limit;
  if (more) rows.pop();
  const ids = rows.map((r) => String(r.id));
  const found = ids.length ? await listRecords(ctx, 'crm.activities', actor, [{ field: 'id', op: 'in', value: ids }], { limit: ids.length }) : [];
  const byId = new Map(found.map((r) => [r.id, r]));
  const last = rows[rows.length - 1];
  return {
    data: ids.map((id) => byId.get(id)).filter((r): r is ApiRecord => Boolean(r)),
    next: more && last ? encodeCursor({ at: isoOf(last.at), id: String(last.id) }) : null,
  };
}

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([work, new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms); })]);
  } finally {
    clearTimeout(timer);
  }
}

/** Calls every crm.customerFacts contribution; a failing one is reported under its name, never thrown. */
export async function customerFacts(ctx: PluginContext, organizationId: string): Promise<Record<string, unknown>> {
  const contributions = ctx.contributions<CustomerFactsContribution>('customerFacts');
  const results = await Promise.all(contributions.map(async (c, i) => {
    const name = typeof c?.name === 'string' && c.name ? c.name : `contribution${i + 1}`;
    try {
      if (typeof c?.facts !== 'function') throw new Error('the contribution has no facts(organizationId) function');
      const facts = await withTimeout(Promise.resolve(c.facts(organizationId)), FACTS_TIMEOUT_MS);
      if (typeof facts !== 'object' || facts === null || Array.isArray(facts)) throw new Error('facts() did not return an object');
      return [name, JSON.parse(JSON.stringify(facts)) as unknown] as const;
    } catch (error) {
      ctx.logger.warn({ err: error, contribution: name, organizationId }, 'customer facts contribution failed');
      return [name, { error: (error as Error)?.message ?? String(error) }] as const;
    }
  }));
  return Object.fromEntries(results);
}

const organizationParams: JsonSchema = {
  type: 'object', required: ['organizationId'], additionalProperties: false,
  properties: { organizationId: uuid('The organization (a base.organizations id) whose customer it is') },
};

/** The organization on a card: its currency, when set, expanded to the base.currencies record. */
const cardOrganization: JsonSchema = {
  description: 'The base.organizations record as GET /api/base/organizations/{id}?expand=currency answers it',
  anyOf: [
    entityRecord('base.organizations'),
    {
      type: 'object', required: ['id', 'version', 'currency'],
      properties: { id: uuid(), version: { type: 'integer' }, currency: entityRecord('base.currencies') },
      description: 'With a currency: the organization\'s fields, currency being the base.currencies record',
    },
  ],
};

const OPEN_STAGES = ['new', 'qualified', 'proposal', 'negotiation'];

export function customerRoutes(ctx: PluginContext): void {
  ctx.route(defineRoute<{ organizationId: string }, { limit: number; cursor?: string }>({
    method: 'get', path: '/customers/:organizationId/timeline', operationId: 'customerTimeline', permission: 'crm.activities.read',
    summary: 'A customer\'s timeline: activities newest first, keyset-paged',
    description: 'Activities of the organization by occurredAt (the time of recording when it has none), newest first. '
      + 'Only activities the caller may read are listed (":own" grants apply), so a page may hold fewer than `limit`. 404 when the organization does not exist.',
    errors: ['not-found'],
    schemas: {
      params: organizationParams,
      query: { type: 'object', properties: { limit: limit(200, 50), cursor } },
      responses: { 200: keysetPage(entityRecord('crm.activities')) },
    },
    async handler({ params, query, principal }, http) {
      const after = decodeCursor(query.cursor, isCursor);
      const organization = await ctx.repository('base.organizations').get(params.organizationId, { actor: principal });
      http.body = await timeline(ctx, organization.id, principal, query.limit, after);
    },
  }));

  ctx.route(defineRoute<{ organizationId: string }>({
    method: 'get', path: '/customers/:organizationId/card', operationId: 'customerCard', permission: 'crm.customers.read',
    summary: 'A customer card: organization, customer record, open deals and tasks, last activities, facts from other modules',
    description: 'Deals, tasks and activities appear only when the caller may read them (else empty lists). '
      + 'facts holds what each crm.customerFacts contribution of an enabled plugin answered, under its name; one that failed or took longer than 5 s shows { error }.',
    errors: ['not-found'],
    schemas: {
      params: organizationParams,
      query: noQuery,
      responses: {
        200: {
          type: 'object', additionalProperties: false, required: ['organization', 'customer', 'openDeals', 'openTasks', 'lastActivities', 'facts'],
          properties: {
            organization: cardOrganization,
            customer: { ...nullable(entityRecord('crm.customers')), description: 'The crm.customers record of the organization; null when it has none' },
            openDeals: { ...records('crm.deals', `Open deals (${OPEN_STAGES.join(', ')}), newest first, at most 50`), maxItems: 50 },
            openTasks: { ...records('crm.tasks', 'Open tasks, soonest due first, at most 20'), maxItems: 20 },
            lastActivities: { ...records('crm.activities', 'The 10 newest timeline entries'), maxItems: 10 },
            facts: {
              type: 'object', description: 'Contribution name → its facts (an object), or { error: message } when it failed',
              additionalProperties: { type: 'object' },
            },
          },
        },
      },
    },
    async handler({ params, principal }, http) {
      const organization = await ctx.repository('base.organizations').get(params.organizationId, { actor: principal, expand: ['currency'] });
      const organizationId = organization.id;
      const customer = (await listRecords(ctx, 'crm.customers', principal, [{ field: 'organization', op: 'eq', value: organizationId }], { limit: 1 }))[0] ?? null;
      const openDeals = mayRead(principal, 'crm.deals') ? await listRecords(ctx, 'crm.deals', principal, [
        { field: 'organization', op: 'eq', value: organizationId }, { field: 'stage', op: 'in', value: OPEN_STAGES },
      ], { sort: [['createdAt', 'desc']], limit: 50 }) : [];
      const openTasks = mayRead(principal, 'crm.tasks') ? await listRecords(ctx, 'crm.tasks', principal, [
        { field: 'organization', op: 'eq', value: organizationId }, { field: 'status', op: 'eq', value: 'open' },
      ], { sort: [['dueAt', 'asc']], limit: 20 }) : [];
      const lastActivities = mayRead(principal, 'crm.activities') ? (await timeline(ctx, organizationId, principal, 10)).data : [];
      http.body = { organization, customer, openDeals, openTasks, lastActivities, facts: await customerFacts(ctx, organizationId) };
    },
  }));
}
