import { SYSTEM, type DocumentLine, type PluginContext } from 'kubiki/plugin';
import { bodyObject, uuidParam } from '../util.ts';

export function quoteRoutes(ctx: PluginContext): void {
  // Totals are computed in every write of a quote; this route rewrites a quote stored before that
  // (or under another VAT rounding policy) and answers it with its line amounts and VAT by rate.
  ctx.route({
    method: 'post', path: '/quotes/:id/recalculate', permission: 'crm.quotes.update',
    async handler(http, principal) {
      const id = uuidParam(http.params.id, 'id');
      bodyObject((http.state as { body?: unknown }).body, []);
      await ctx.repository('crm.quotes').get(id, { actor: principal });
      const quote = await ctx.repository('crm.quotes').update(id, {}, { actor: SYSTEM });
      const totals = ctx.money.totals((quote.lines ?? []) as DocumentLine[], { pricesIncludeVat: quote.pricesIncludeVat === true });
      http.body = { ...quote, computed: { lines: totals.lines.map((l) => ({ amount: l.amount })), vat: totals.vat } };
    },
  });
}
