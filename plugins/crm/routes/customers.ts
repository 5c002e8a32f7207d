import type { ApiRecord, PluginContext, Principal } from 'kubiki/plugin';
import { decodeCursor, encodeCursor, isoOf, limitParam, listRecords, mayRead, onlyParams, uuidParam } from '../util.ts';

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

export function customerRoutes(ctx: PluginContext): void {
  ctx.route({
    method: 'get', path: '/customers/:organizationId/timeline', permission: 'crm.activities.read',
    async handler(http, principal) {
      const organizationId = uuidParam(http.params.organizationId, 'organizationId');
      const query = http.query as Record<string, string | string[] | undefined>;
      onlyParams(query, ['limit', 'cursor']);
      const limit = limitParam(query);
      const cursor = decodeCursor(query, isCursor);
      await ctx.repository('base.organizations').get(organizationId, { actor: principal });
      http.body = await timeline(ctx, organizationId, principal, limit, cursor);
    },
  });

  ctx.route({
    method: 'get', path: '/customers/:organizationId/card', permission: 'crm.customers.read',
    async handler(http, principal) {
      const organizationId = uuidParam(http.params.organizationId, 'organizationId');
      onlyParams(http.query as Record<string, string>, []);
      const organization = await ctx.repository('base.organizations').get(organizationId, { actor: principal, expand: ['currency'] });
      const customer = (await listRecords(ctx, 'crm.customers', principal, [{ field: 'organization', op: 'eq', value: organizationId }], { limit: 1 }))[0] ?? null;
      const openDeals = mayRead(principal, 'crm.deals') ? await listRecords(ctx, 'crm.deals', principal, [
        { field: 'organization', op: 'eq', value: organizationId }, { field: 'stage', op: 'in', value: ['new', 'qualified', 'proposal', 'negotiation'] },
      ], { sort: [['createdAt', 'desc']], limit: 50 }) : [];
      const openTasks = mayRead(principal, 'crm.tasks') ? await listRecords(ctx, 'crm.tasks', principal, [
        { field: 'organization', op: 'eq', value: organizationId }, { field: 'status', op: 'eq', value: 'open' },
      ], { sort: [['dueAt', 'asc']], limit: 20 }) : [];
      const lastActivities = mayRead(principal, 'crm.activities') ? (await timeline(ctx, organizationId, principal, 10)).data : [];
      http.body = { organization, customer, openDeals, openTasks, lastActivities, facts: await customerFacts(ctx, organizationId) };
    },
  });
}
