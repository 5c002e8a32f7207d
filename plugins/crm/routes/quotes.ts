import { SYSTEM, defineRoute, type DocumentLine, type PluginContext } from 'kubiki/plugin';
import { money, recordParams, uuid, type JsonSchema } from './schemas.ts';

const VAT_RATES = ['22', '20', '10', '7', '5', '0', 'exempt'];

/** What the recalculation adds to the quote: each line's amount and VAT by rate. */
const computed: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['lines', 'vat'],
  properties: {
    lines: {
      type: 'array', description: 'One per quote line, in order',
      items: { type: 'object', additionalProperties: false, required: ['amount'], properties: { amount: { ...money, description: 'quantity × price × (1 − discount/100), rounded: gross when prices include VAT, net otherwise' } } },
    },
    vat: {
      type: 'array', description: 'VAT by rate, highest rate first, exempt last',
      items: {
        type: 'object', additionalProperties: false, required: ['rate', 'base', 'tax', 'total'],
        properties: { rate: { enum: VAT_RATES }, base: money, tax: money, total: money },
      },
    },
  },
};

export function quoteRoutes(ctx: PluginContext): void {
  // Totals are computed in every write of a quote; this route rewrites a quote stored before that
  // (or under another VAT rounding policy) and answers it with its line amounts and VAT by rate.
  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/quotes/:id/recalculate', operationId: 'recalculateQuote', permission: 'crm.quotes.update',
    summary: 'Recompute a stored quote\'s totals and show its line amounts and VAT by rate',
    description: 'Rewrites subtotal, vatTotal and total under the current VAT rounding policy (KUBIKI_VAT_ROUNDING). Takes no body.',
    errors: ['not-found', 'forbidden'],
    schemas: {
      params: recordParams('crm.quotes'),
      responses: {
        200: {
          // The quote record (whose fields, custom ones included, only the entity knows) plus `computed`.
          type: 'object', required: ['id', 'version', 'computed'],
          description: 'The crm.quotes record as GET /api/crm/quotes/{id} answers it, plus computed',
          properties: {
            id: uuid('The quote'), version: { type: 'integer' },
            subtotal: money, vatTotal: money, total: money,
            lines: { type: 'array', items: { type: 'object' }, description: 'The quote lines as stored' },
            computed,
          },
        },
      },
    },
    async handler({ params, principal }, http) {
      await ctx.repository('crm.quotes').get(params.id, { actor: principal });
      const quote = await ctx.repository('crm.quotes').update(params.id, {}, { actor: SYSTEM });
      const totals = ctx.money.totals((quote.lines ?? []) as DocumentLine[], { pricesIncludeVat: quote.pricesIncludeVat === true });
      http.body = { ...quote, computed: { lines: totals.lines.map((l) => ({ amount: l.amount })), vat: totals.vat } };
    },
  }));
}
