import { Decimal } from 'decimal.js';
import type { Knex } from 'knex';
import { defineRoute, type PluginContext } from 'kubiki/plugin';
import { count, day, money as amountSchema, nullable, uuid, type JsonSchema } from './schemas.ts';

const STAGES = ['new', 'qualified', 'proposal', 'negotiation', 'won', 'lost'] as const;
const OPEN = ['new', 'qualified', 'proposal', 'negotiation'];
const FUNNEL = ['new', 'qualified', 'proposal', 'negotiation', 'won'];
/** Used when a deal's pipeline does not list its stage. */
const FALLBACK: Record<string, number> = { new: 10, qualified: 25, proposal: 50, negotiation: 75, won: 100, lost: 0 };

const money = (d: Decimal): string => d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);
const dec = (v: unknown): Decimal => new Decimal(v == null ? 0 : String(v));

/** Stage probabilities by pipeline id ('' = deals without a pipeline: the default pipeline's). */
async function probabilities(ctx: PluginContext): Promise<(pipeline: string | null, stage: string, override: number | null) => number> {
  const rows: { id: string; isDefault: boolean | null; stages: { name: string; probability: number }[] | null }[] = await ctx.table('crm_pipelines').select('id', 'isDefault', 'stages');
  const byPipeline = new Map<string, Map<string, number>>();
  for (const r of rows) byPipeline.set(String(r.id), new Map((r.stages ?? []).map((s) => [s.name, s.probability])));
  const fallbackPipeline = rows.find((r) => r.isDefault) ?? rows[0];
  return (pipeline, stage, override) => {
    if (override != null) return override;
    const map = byPipeline.get(pipeline ?? '') ?? (fallbackPipeline ? byPipeline.get(String(fallbackPipeline.id)) : undefined);
    return map?.get(stage) ?? FALLBACK[stage] ?? 0;
  };
}

interface Acc { count: number; amount: Decimal; weighted: Decimal }
const acc = (): Acc => ({ count: 0, amount: new Decimal(0), weighted: new Decimal(0) });
const out = (a: Acc) => ({ count: a.count, amount: money(a.amount), weightedAmount: money(a.weighted) });

interface DealFilters { pipeline?: string; owner?: string; from?: string; to?: string }

/** Deals filtered by the common report parameters: pipeline, owner, created from/to. */
function deals(ctx: PluginContext, f: DealFilters): Knex.QueryBuilder {
  const q = ctx.table('crm_deals');
  if (f.pipeline) q.where('pipeline', f.pipeline);
  if (f.owner) q.where('owner', f.owner);
  if (f.from) q.where('createdAt', '>=', `${f.from}T00:00:00Z`);
  if (f.to) q.where('createdAt', '<', new Date(Date.parse(`${f.to}T00:00:00Z`) + 86400_000).toISOString());
  return q;
}

// ── What the reports take and answer ──────────────────────────────────────────────────────────

const pipelineParam = uuid('Only deals of this pipeline (a crm.pipelines id)');
const dealFilters = (period: string): JsonSchema => ({
  type: 'object',
  properties: {
    pipeline: pipelineParam,
    owner: uuid('Only deals this manager owns (a user id)'),
    from: day(`Only deals ${period} on or after this day`),
    to: day(`Only deals ${period} on or before this day`),
  },
});
const createdFilters = dealFilters('created (UTC days)');

const currency: JsonSchema = { ...nullable(uuid()), description: 'The base.currencies id of the amounts; null for deals without a currency' };
const owner: JsonSchema = { ...nullable(uuid()), description: 'The manager (a user id); null for deals without an owner' };
const stage: JsonSchema = { enum: [...STAGES] };
const sums: JsonSchema = { count, amount: amountSchema, weightedAmount: { ...amountSchema, description: 'amount × the stage probability (the deal\'s own probability when set) / 100' } };
const row = (properties: JsonSchema): JsonSchema => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties });
const percent: JsonSchema = { type: ['number', 'null'], description: 'Percent, one decimal; null when the base is 0' };

const pipelineReport: JsonSchema = row({
  byStage: { type: 'array', items: row({ stage, currency, ...sums }), description: 'Per stage and currency, in pipeline order' },
  byManager: { type: 'array', items: row({ owner, currency, ...sums }), description: 'Per manager and currency, open deals only' },
  byStageAndManager: { type: 'array', items: row({ stage, owner, currency, ...sums }) },
  note: { type: 'string' },
});
const funnelReport: JsonSchema = row({
  stages: {
    type: 'array', description: `${FUNNEL.join(', ')}: deals that entered the stage or went past it`,
    items: row({ stage: { enum: FUNNEL }, count, fromPrevious: percent, fromFirst: percent }),
  },
  lost: { ...count, description: 'Deals that were lost at some point' },
});
const wonLostReport: JsonSchema = row({
  won: row({ count, byCurrency: { type: 'array', items: row({ currency, count, amount: amountSchema }) } }),
  lost: row({ count, byReason: { type: 'array', items: row({ reason: { type: ['string', 'null'], description: 'lostReason; null when none was given' }, currency, count, amount: amountSchema }) } }),
});
const activityReport: JsonSchema = row({
  managers: {
    type: 'array', description: 'Most active first',
    items: row({
      manager: { ...nullable(uuid()), description: 'The activity\'s owner, else who recorded it (a user id); null for entries made by the system' },
      total: count,
      byKind: { type: 'object', additionalProperties: count, description: 'Activity kind (call, email, meeting, note, deal, quote, invoice, payment) → how many' },
      callSeconds: { ...count, description: 'Total durationSeconds of the calls' },
    }),
  },
});
const forecastReport: JsonSchema = row({
  months: {
    type: 'array', description: 'By month, then currency',
    items: row({ month: { type: 'string', pattern: '^[0-9]{4}-[0-9]{2}$', description: 'YYYY-MM of expectedCloseDate' }, currency, ...sums }),
  },
  note: { type: 'string' },
});

export function reportRoutes(ctx: PluginContext): void {
  const route = <Q>(path: string, doc: { operationId: string; summary: string; description?: string; query: JsonSchema; response: JsonSchema }, build: (query: Q) => Promise<unknown>) =>
    ctx.route(defineRoute<unknown, Q>({
      method: 'get', path: `/reports/${path}`, operationId: doc.operationId, permission: 'crm.reports.read', summary: doc.summary,
      ...(doc.description ? { description: doc.description } : {}),
      schemas: { query: doc.query, responses: { 200: doc.response } },
      async handler({ query }, http) { http.body = await build(query); },
    }));

  // Pipeline by stage and manager: count, amount and weighted amount (amount × stage probability),
  // per currency (amounts in different currencies are never added up).
  route<DealFilters>('pipeline', {
    operationId: 'pipelineReport', summary: 'Pipeline by stage and manager: count, amount and weighted amount per currency',
    description: 'Deals filtered by pipeline, owner and creation day. Amounts in different currencies are never added up.',
    query: createdFilters, response: pipelineReport,
  }, async (f) => {
    const probability = await probabilities(ctx);
    const rows: { stage: string; owner: string | null; currency: string | null; pipeline: string | null; probability: number | null; count: string; amount: string | null }[] =
      await deals(ctx, f).select('stage', 'owner', 'currency', 'pipeline', 'probability').count({ count: '*' }).sum({ amount: 'amount' })
        .groupBy('stage', 'owner', 'currency', 'pipeline', 'probability');
    const byStage = new Map<string, Acc>();
    const byManager = new Map<string, Acc>();
    const cells = new Map<string, Acc & { stage: string; owner: string | null; currency: string | null }>();
    for (const r of rows) {
      const amount = dec(r.amount);
      const weighted = amount.times(probability(r.pipeline, r.stage, r.probability)).dividedBy(100);
      const add = (a: Acc) => { a.count += Number(r.count); a.amount = a.amount.plus(amount); a.weighted = a.weighted.plus(weighted); };
      const cur = r.currency ?? '';
      add(byStage.get(`${r.stage}|${cur}`) ?? byStage.set(`${r.stage}|${cur}`, acc()).get(`${r.stage}|${cur}`)!);
      if (OPEN.includes(r.stage)) {
        const m = `${r.owner ?? ''}|${cur}`;
        add(byManager.get(m) ?? byManager.set(m, acc()).get(m)!);
      }
      const c = `${r.stage}|${r.owner ?? ''}|${cur}`;
      add(cells.get(c) ?? cells.set(c, { ...acc(), stage: r.stage, owner: r.owner, currency: r.currency }).get(c)!);
    }
    const split = (k: string) => k.split('|').map((x) => x || null);
    return {
      byStage: [...byStage.entries()].map(([k, a]) => ({ stage: split(k)[0], currency: split(k)[1], ...out(a) }))
        .sort((a, b) => STAGES.indexOf(a.stage as never) - STAGES.indexOf(b.stage as never)),
      byManager: [...byManager.entries()].map(([k, a]) => ({ owner: split(k)[0], currency: split(k)[1], ...out(a) })),
      byStageAndManager: [...cells.values()].map((c) => ({ stage: c.stage, owner: c.owner, currency: c.currency, ...out(c) })),
      note: 'byManager counts open deals only (new, qualified, proposal, negotiation)',
    };
  });

  // Conversion funnel: how many deals ever entered each stage (from the stage history the CRM
  // keeps from deal events), and the conversion from the previous stage and from the first.
  route<DealFilters>('funnel', {
    operationId: 'funnelReport', summary: 'Conversion funnel: deals that reached each stage, conversion from the previous and the first',
    description: 'From the stage history the CRM keeps from deal events; a deal that skipped a stage still passed it. Deals filtered by pipeline, owner and creation day.',
    query: createdFilters, response: funnelReport,
  }, async (f) => {
    const ids = deals(ctx, f).select('id');
    const knex = ctx.table('crm_deal_stages').client;
    // Per deal, the furthest funnel stage it entered (a deal that skipped a stage, new → proposal,
    // still passed it); then how many deals got at least that far.
    const depth = knex.raw(`max(case stage ${FUNNEL.map((st, i) => `when '${st}' then ${i}`).join(' ')} else -1 end)`);
    const perDeal = ctx.table('crm_deal_stages').whereIn('deal_id', ids).select('deal_id', knex.raw('? as depth', [depth]))
      .select(knex.raw("bool_or(stage = 'lost') as lost")).groupBy('deal_id');
    const rows: { depth: number; lost: boolean }[] = await perDeal;
    const cumulative = FUNNEL.map((stage, i) => ({ stage, count: rows.filter((r) => Number(r.depth) >= i).length }));
    const lostCount = rows.filter((r) => r.lost).length;
    const first = cumulative[0]?.count ?? 0;
    const pct = (a: number, b: number) => (b === 0 ? null : new Decimal(a).times(100).dividedBy(b).toDecimalPlaces(1, Decimal.ROUND_HALF_UP).toNumber());
    return {
      stages: cumulative.map((s, i) => ({ ...s, fromPrevious: i === 0 ? null : pct(s.count, cumulative[i - 1].count), fromFirst: pct(s.count, first) })),
      lost: lostCount,
    };
  });

  // Won and lost deals, lost ones by reason.
  route<DealFilters>('won-lost', {
    operationId: 'wonLostReport', summary: 'Won and lost deals; lost ones by reason',
    description: 'Deals filtered by pipeline, owner and creation day.',
    query: createdFilters, response: wonLostReport,
  }, async (f) => {
    const rows: { stage: string; lostReason: string | null; currency: string | null; count: string; amount: string | null }[] =
      await deals(ctx, f).whereIn('stage', ['won', 'lost']).select('stage', 'lostReason', 'currency').count({ count: '*' }).sum({ amount: 'amount' })
        .groupBy('stage', 'lostReason', 'currency').orderBy('stage', 'desc').orderByRaw('count(*) desc');
    const won = rows.filter((r) => r.stage === 'won');
    const lost = rows.filter((r) => r.stage === 'lost');
    return {
      won: { count: won.reduce((n, r) => n + Number(r.count), 0), byCurrency: won.map((r) => ({ currency: r.currency, count: Number(r.count), amount: money(dec(r.amount)) })) },
      lost: { count: lost.reduce((n, r) => n + Number(r.count), 0), byReason: lost.map((r) => ({ reason: r.lostReason, currency: r.currency, count: Number(r.count), amount: money(dec(r.amount)) })) },
    };
  });

  // Activities per manager (the owner, or who recorded it) and kind, in a period of occurredAt.
  route<{ from?: string; to?: string; owner?: string }>('activity', {
    operationId: 'activityReport', summary: 'Activities per manager and kind, with call time',
    description: 'The manager is the activity\'s owner, else who recorded it. from/to are UTC days of occurredAt (the time of recording when it has none).',
    query: {
      type: 'object',
      properties: {
        from: day('Activities on or after this day'), to: day('Activities on or before this day'),
        owner: uuid('Only this manager\'s activities (a user id)'),
      },
    },
    response: activityReport,
  }, async ({ from, to, owner }) => {
    const knex = ctx.table('crm_activities').client;
    const q = ctx.table('crm_activities').select(knex.raw('coalesce("owner", "createdBy") as manager'), 'kind').count({ count: '*' }).sum({ seconds: 'durationSeconds' }).groupByRaw('coalesce("owner", "createdBy"), "kind"').orderBy('kind');
    if (from) q.whereRaw('coalesce("occurredAt", "createdAt") >= ?', [`${from}T00:00:00Z`]);
    if (to) q.whereRaw('coalesce("occurredAt", "createdAt") < ?', [new Date(Date.parse(`${to}T00:00:00Z`) + 86400_000).toISOString()]);
    if (owner) q.whereRaw('coalesce("owner", "createdBy") = ?', [owner]);
    const rows: { manager: string | null; kind: string; count: string; seconds: string | null }[] = await q;
    const managers = new Map<string, { manager: string | null; total: number; byKind: Record<string, number>; callSeconds: number }>();
    for (const r of rows) {
      const key = r.manager ?? '';
      const m = managers.get(key) ?? managers.set(key, { manager: r.manager, total: 0, byKind: {}, callSeconds: 0 }).get(key)!;
      m.total += Number(r.count);
      m.byKind[r.kind] = Number(r.count);
      if (r.kind === 'call') m.callSeconds += Number(r.seconds ?? 0);
    }
    return { managers: [...managers.values()].sort((a, b) => b.total - a.total) };
  });

  // Sales forecast by month of expectedCloseDate: open deals' amount and weighted amount.
  route<DealFilters>('forecast', {
    operationId: 'forecastReport', summary: 'Sales forecast: open deals by month of expectedCloseDate, amount and weighted amount',
    description: 'Open deals (new, qualified, proposal, negotiation) with an expectedCloseDate; here from/to filter expectedCloseDate.',
    query: dealFilters('expected to close'), response: forecastReport,
  }, async (f) => {
    const probability = await probabilities(ctx);
    const knex = ctx.table('crm_deals').client;
    const rows: { month: string; stage: string; pipeline: string | null; probability: number | null; currency: string | null; count: string; amount: string | null }[] =
      await ctx.table('crm_deals').modify((q: Knex.QueryBuilder) => {
        if (f.pipeline) q.where('pipeline', f.pipeline);
        if (f.owner) q.where('owner', f.owner);
        if (f.from) q.where('expectedCloseDate', '>=', f.from);
        if (f.to) q.where('expectedCloseDate', '<=', f.to);
      }).whereIn('stage', OPEN).whereNotNull('expectedCloseDate')
        .select(knex.raw('to_char("expectedCloseDate", \'YYYY-MM\') as month'), 'stage', 'pipeline', 'probability', 'currency').count({ count: '*' }).sum({ amount: 'amount' })
        .groupByRaw('to_char("expectedCloseDate", \'YYYY-MM\'), "stage", "pipeline", "probability", "currency"');
    const months = new Map<string, Acc & { month: string; currency: string | null }>();
    for (const r of rows) {
      const key = `${r.month}|${r.currency ?? ''}`;
      const a = months.get(key) ?? months.set(key, { ...acc(), month: r.month, currency: r.currency }).get(key)!;
      const amount = dec(r.amount);
      a.count += Number(r.count);
      a.amount = a.amount.plus(amount);
      a.weighted = a.weighted.plus(amount.times(probability(r.pipeline, r.stage, r.probability)).dividedBy(100));
    }
    return { months: [...months.values()].sort((a, b) => a.month.localeCompare(b.month)).map((m) => ({ month: m.month, currency: m.currency, ...out(m) })), note: 'from/to filter expectedCloseDate here' };
  });
}
