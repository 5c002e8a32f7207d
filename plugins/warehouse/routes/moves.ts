import { defineRoute, idParams, type PluginContext } from 'kubiki/plugin';
import type { CompleteInput, MoveInput } from '../stock-service.ts';
import { date, lotNumber, lotRef, moveInput, moveOrPlanned, moveRecord, plannedRecord, serials, unitCost, uuid } from '../schemas.ts';
import { MOVE_KINDS } from '../stock-service.ts';
import { requestIdOf, type Services } from './common.ts';

const MAX_BATCH = 1000;

export function moveRoutes(ctx: PluginContext, { stock }: Services): void {
  ctx.route(defineRoute<unknown, unknown, MoveInput>({
    method: 'post', path: '/moves', operationId: 'postMove', summary: 'Post a stock move (or plan one: status planned)',
    description: 'Receipt, shipment, transfer, adjustment or scrap, from one location to another. Balances change in the same transaction; '
      + 'a move out of stock is refused beyond what is available (on hand − reserved, in the location and every location above it) unless the warehouse allows negative stock. '
      + 'Lot-tracked products name a lot (or a lotNumber on receipts); serial-tracked ones list one serial per unit, and a serial is in stock at most once. '
      + 'Receipts carry unitCost; issues are valued by the product\'s method (moving average or FIFO). Nothing is posted on or before a closed stock period.',
    permission: 'warehouse.moves.post',
    errors: ['reference-not-found', 'warehouse.insufficient-stock', 'warehouse.period-closed', 'warehouse.serial-in-stock', 'warehouse.serial-not-found', 'warehouse.reservation-closed', 'conflict'],
    schemas: { body: moveInput, responses: { 201: { description: 'The move as posted (or the planned move)', schema: moveOrPlanned, headers: { Location: '/api/warehouse/moves/{id}' } } } },
    async handler({ body, principal }, http) {
      const [record] = await stock.postMoves([body], { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', `/api/warehouse/moves/${record.id}`);
      http.body = record;
    },
  }));

  ctx.route(defineRoute<unknown, unknown, { moves: MoveInput[] }>({
    method: 'post', path: '/moves/batch', operationId: 'postMoves', summary: `Post up to ${MAX_BATCH} moves in one transaction (all or none)`,
    description: 'The same rules as POST /moves for each; an error names the move (moves.3.quantity). Balances and cost rows are locked once per product, in product order.',
    permission: 'warehouse.moves.post',
    errors: ['reference-not-found', 'warehouse.insufficient-stock', 'warehouse.period-closed', 'warehouse.serial-in-stock', 'warehouse.serial-not-found', 'warehouse.reservation-closed', 'conflict'],
    schemas: {
      body: { type: 'object', additionalProperties: false, required: ['moves'], properties: { moves: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: moveInput } } },
      responses: { 201: { type: 'object', required: ['data'], additionalProperties: false, properties: { data: { type: 'array', items: moveOrPlanned } } } },
    },
    async handler({ body, principal }, http) {
      const data = await stock.postMoves(body.moves, { actor: principal, requestId: requestIdOf(http), prefix: 'moves.', batch: true });
      http.status = 201;
      http.body = { data };
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, Omit<CompleteInput, 'id'>>({
    method: 'post', path: '/moves/:id/complete', operationId: 'completeMove', summary: 'Post a planned move (dated date, default today)',
    description: 'Its incoming/outgoing quantities become on-hand ones; lot, lotNumber, serials and unitCost may be given now.',
    permission: 'warehouse.moves.post',
    errors: ['not-found', 'warehouse.move-posted', 'warehouse.insufficient-stock', 'warehouse.period-closed', 'warehouse.serial-in-stock', 'warehouse.serial-not-found'],
    schemas: {
      params: idParams,
      body: {
        type: 'object', additionalProperties: false,
        properties: { date: date('Posting date; default today'), lot: lotRef, lotNumber, serials, unitCost },
      },
      responses: { 200: moveRecord },
    },
    async handler({ params, body, principal }, http) {
      const [record] = await stock.completeMoves([{ id: params.id, ...body }], { actor: principal, requestId: requestIdOf(http) });
      http.body = record;
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/moves/:id/cancel', operationId: 'cancelMove', summary: 'Cancel a planned move',
    permission: 'warehouse.moves.post', errors: ['not-found', 'warehouse.move-posted'],
    schemas: { params: idParams, responses: { 200: plannedRecord } },
    async handler({ params, principal }, http) {
      const [record] = await stock.cancelMoves([params.id], { actor: principal, requestId: requestIdOf(http) });
      http.body = record;
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, { date?: string; memo?: string }>({
    method: 'post', path: '/moves/:id/reverse', operationId: 'reverseMove', summary: 'Correct a done move: post its reversal (same quantity back, at its value)',
    description: 'The reversal goes from the original\'s destination back to its source, with the same lot and serials, dated date (default today), valued at the original\'s value. A move is reversed once; a reversal is not reversed.',
    permission: 'warehouse.moves.post',
    errors: ['not-found', 'conflict', 'warehouse.move-posted', 'warehouse.insufficient-stock', 'warehouse.period-closed', 'warehouse.serial-in-stock', 'warehouse.serial-not-found'],
    schemas: {
      params: idParams,
      body: { type: 'object', additionalProperties: false, properties: { date: date('Date of the reversal; default today'), memo: { type: 'string', maxLength: 1000 } } },
      responses: { 201: { description: 'The reversing move', schema: moveRecord, headers: { Location: '/api/warehouse/moves/{id}' } } },
    },
    async handler({ params, body, principal }, http) {
      const record = await stock.reverseMove(params.id, body, { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', `/api/warehouse/moves/${record.id}`);
      http.body = record;
    },
  }));

  ctx.route(defineRoute<unknown, { product?: string; kind?: string; location?: string; sourceEntity?: string; sourceId?: string; reservation?: string; reverses?: string; posting?: string; from?: string; to?: string; limit: number; cursor?: string }>({
    method: 'get', path: '/moves', operationId: 'listMoves', summary: 'The ledger: done moves in ledger order (date, then posting order), filtered, keyset-paged',
    description: 'location matches moves from or to it or any location under it. Planned moves are /api/warehouse/plannedMoves.',
    permission: 'warehouse.moves.read', errors: ['bad-query'],
    schemas: {
      query: {
        type: 'object',
        properties: {
          product: uuid(), kind: { enum: MOVE_KINDS }, location: uuid('From or to this location or one under it'), sourceEntity: { type: 'string', maxLength: 100 }, sourceId: { type: 'string', maxLength: 100 },
          reservation: uuid(), reverses: uuid(), posting: uuid(), from: date('Dated on or after'), to: date('Dated on or before'),
          limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 }, cursor: { type: 'string', maxLength: 200, description: 'The next of the previous page' },
        },
      },
      responses: { 200: { type: 'object', required: ['data', 'next'], additionalProperties: false, properties: { data: { type: 'array', items: moveRecord }, next: { type: ['string', 'null'] } } } },
    },
    async handler({ query }, http) {
      http.body = await stock.listMoves(query);
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'get', path: '/moves/:id', operationId: 'getMove', summary: 'One done move of the ledger',
    permission: 'warehouse.moves.read', errors: ['not-found'],
    schemas: { params: idParams, responses: { 200: moveRecord } },
    async handler({ params }, http) {
      http.body = await stock.getMove(params.id);
    },
  }));

  // Planned moves end by completion or cancellation, postings stay with their moves.
  for (const [path, operationId, summary] of [
    ['/plannedMoves/:id', 'deletePlannedMove', 'Refused: a planned move is cancelled (POST /moves/{id}/cancel), not deleted (409)'],
    ['/postings/:id', 'deletePosting', 'Refused: a posting stays with the moves it wrote (409)'],
  ] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method: 'delete', path, operationId, summary, permission: path.startsWith('/planned') ? 'warehouse.plannedMoves.read' : 'warehouse.postings.read', errors: ['warehouse.move-posted'],
      schemas: { params: idParams, responses: { 409: { description: 'Always' } } },
      handler({ params }) {
        throw ctx.error('move-posted', `${path.startsWith('/planned') ? `planned move ${params.id} is cancelled with POST /api/warehouse/moves/{id}/cancel` : `posting ${params.id} belongs to the ledger`}; nothing of the stock ledger is deleted`, { issues: [{ field: 'id', rule: 'immutable', message: 'not deleted' }] });
      },
    }));
  }

  // The ledger is append-only: no edits, no deletions.
  for (const method of ['patch', 'delete'] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method, path: '/moves/:id', operationId: method === 'patch' ? 'updateMove' : 'deleteMove',
      summary: 'Refused: stock moves are never changed (409 warehouse.move-posted)',
      description: 'Correct a done move with POST /moves/{id}/reverse; complete or cancel a planned one.',
      permission: 'warehouse.moves.read', errors: ['warehouse.move-posted'],
      schemas: { params: idParams, ...(method === 'patch' ? { body: { type: 'object', additionalProperties: true, description: 'Any body: the answer is 409' } } : {}), responses: { 409: { description: 'Always' } } },
      handler({ params }) {
        throw ctx.error('move-posted', `stock move ${params.id} is part of the ledger and is never ${method === 'patch' ? 'changed' : 'deleted'}: reverse a done move (POST /api/warehouse/moves/{id}/reverse), complete or cancel a planned one`, { issues: [{ field: 'id', rule: 'immutable', message: 'moves are append-only' }] });
      },
    }));
  }
}
