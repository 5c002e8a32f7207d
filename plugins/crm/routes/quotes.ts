import { SYSTEM, type PluginContext } from 'kubiki/plugin';
import { quoteTotals } from '../quote-math.ts';
import { bodyObject, uuidParam } from '../util.ts';

export function quoteRoutes(ctx: PluginContext, recalculate: (id: string) => Promise<void>): void {
  // Totals are kept by the crm.quotes.created/updated subscriber (eventually); this route brings
  // them up to date at once and answers the quote with its line amounts and VAT by rate.
  ctx.route({
    method: 'post', path: '/quotes/:id/recalculate', permission: 'crm.quotes.update',
    async handler(http, principal) {
      const id = uuidParam(http.params.id, 'id');
      bodyObject((http.state as { body?: unknown }).body, []);
      await ctx.repository('crm.quotes').get(id, { actor: principal });
      await recalculate(id);
      const quote = await ctx.repository('crm.quotes').get(id, { actor: SYSTEM });
      const totals = quoteTotals(quote.lines, quote.pricesIncludeVat === true);
      http.body = { ...quote, computed: { lines: totals.lines.map((l) => ({ amount: l.amount })), vat: totals.vat } };
    },
  });
}
