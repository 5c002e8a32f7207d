import { defineRoute, type PluginContext } from 'kubiki/plugin';
import { MOVE_KINDS } from '../stock-service.ts';
import { csvQuery, date, report, uuid } from '../schemas.ts';
import { respond, type Services } from './common.ts';

type Csv = { format?: 'json' | 'csv'; delimiter?: string; bom?: string };

export function reportRoutes(ctx: PluginContext, { reports }: Services): void {
  const permission = 'warehouse.reports.read';
  const scope = { warehouse: uuid('A warehouse: its locations'), location: uuid('A location and everything under it') };

  ctx.route(defineRoute<unknown, Csv & { warehouse?: string; location?: string; product?: string; asOf?: string; includeZero?: boolean; byProduct?: boolean }>({
    method: 'get', path: '/reports/stock-on-hand', operationId: 'stockOnHandReport', summary: 'Stock on hand by location: per product × location × lot',
    description: 'Now: on hand, reserved, available, incoming, outgoing from the balances (one query). As of a past date (asOf): on hand from the last closed period plus the moves since. byProduct=true: one row per product.',
    permission, errors: ['bad-query'],
    schemas: { query: { type: 'object', properties: { ...scope, product: uuid('One product'), asOf: date('End of this day; default now'), includeZero: { type: 'boolean', default: false }, byProduct: { type: 'boolean', default: false, description: 'One row per product (its locations summed)' }, ...csvQuery } }, responses: { 200: report() } },
    async handler({ query }, http) { respond(http, await reports.stockOnHand(query), query.format); },
  }));

  ctx.route(defineRoute<unknown, Csv & { product: string; location?: string; from?: string; to?: string }>({
    method: 'get', path: '/reports/stock-ledger', operationId: 'stockLedgerReport', summary: 'Stock ledger of a product: every move with running quantity and value',
    description: 'Opening balance before from, each done move in from..to (value including revaluations of back-dated postings), closing balance. With location: quantities in it and under it (no values).',
    permission, errors: ['bad-query'],
    schemas: { query: { type: 'object', required: ['product'], properties: { product: uuid('A base.products id'), location: uuid('Quantities in this location and under it'), from: date(), to: date('Default today'), ...csvQuery } }, responses: { 200: report() } },
    async handler({ query }, http) { respond(http, await reports.stockLedger(query), query.format); },
  }));

  ctx.route(defineRoute<unknown, Csv & { asOf?: string; product?: string }>({
    method: 'get', path: '/reports/valuation', operationId: 'valuationReport', summary: 'Stock valuation as of a date: quantity, value and unit cost per product',
    description: 'The last closed stock period on or before asOf, plus the valued moves and revaluations after it.',
    permission, errors: ['bad-query'],
    schemas: { query: { type: 'object', properties: { asOf: date('End of this day; default today'), product: uuid('One product'), ...csvQuery } }, responses: { 200: report() } },
    async handler({ query }, http) { respond(http, await reports.valuation(query), query.format); },
  }));

  ctx.route(defineRoute<unknown, Csv & { from?: string; to?: string; product?: string; warehouse?: string; location?: string; kind?: string; limit: number; cursor?: string }>({
    method: 'get', path: '/reports/movements', operationId: 'movementsReport', summary: 'Movement history: done moves in ledger order, filtered, keyset-paged',
    permission, errors: ['bad-query'],
    schemas: {
      query: { type: 'object', properties: { from: date(), to: date(), product: uuid(), ...scope, kind: { enum: MOVE_KINDS }, limit: { type: 'integer', minimum: 1, maximum: 5000, default: 500 }, cursor: { type: 'string', maxLength: 200 }, ...csvQuery } },
      responses: { 200: report({ next: { type: ['string', 'null'] } }) },
    },
    async handler({ query }, http) { respond(http, await reports.movements(query), query.format); },
  }));

  ctx.route(defineRoute<unknown, Csv & { days: number; asOf?: string; warehouse?: string; location?: string }>({
    method: 'get', path: '/reports/slow-movers', operationId: 'slowMoversReport', summary: 'Slow movers: products in stock not shipped for `days` days',
    permission, errors: ['bad-query'],
    schemas: { query: { type: 'object', properties: { days: { type: 'integer', minimum: 1, maximum: 3650, default: 90 }, asOf: date(), ...scope, ...csvQuery } }, responses: { 200: report() } },
    async handler({ query }, http) { respond(http, await reports.slowMovers(query), query.format); },
  }));

  ctx.route(defineRoute<unknown, Csv & { warehouse?: string; location?: string }>({
    method: 'get', path: '/reports/reorder', operationId: 'reorderReport', summary: 'Products at or below their reorder point, with a suggested purchase quantity',
    permission, errors: ['bad-query'],
    schemas: { query: { type: 'object', properties: { ...scope, ...csvQuery } }, responses: { 200: report() } },
    async handler({ query }, http) { respond(http, await reports.reorder(query), query.format); },
  }));
}
