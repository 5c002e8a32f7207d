import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { KubikiError, defineRoute, entityInput, entityRecord, fieldError, idParams, type PluginContext } from 'kubiki/plugin';
import { availability, uuid } from '../schemas.ts';
import { elevated, isUuid } from '../util.ts';
import { requestIdOf, type Services } from './common.ts';

/** Product settings that decide how the ledger reads a product: fixed once it has moves. */
export const LEDGER_SETTINGS = ['tracking', 'valuation', 'stockUnit'] as const;

export function placeRoutes(ctx: PluginContext, { stock }: Services): void {
  ctx.route(defineRoute<unknown, unknown, Record<string, unknown>>({
    method: 'post', path: '/warehouses', operationId: 'createWarehouse', summary: 'Create a warehouse with its root location',
    description: 'The root location (type internal, level warehouse, the warehouse\'s code and name) is the top of its tree: zones and bins are created under it (POST /api/warehouse/locations with parent).',
    permission: 'warehouse.warehouses.create', errors: ['unique-violation', 'reference-not-found'],
    schemas: { body: entityInput('warehouse.warehouses'), responses: { 201: { description: 'The warehouse', schema: entityRecord('warehouse.warehouses'), headers: { Location: '/api/warehouse/warehouses/{id}' } } } },
    async handler({ body, principal }, http) {
      if (body.location !== undefined) throw fieldError('validation-failed', 'location', 'read-only', 'location is computed (the root location made with the warehouse) and cannot be written');
      const writer = elevated(principal, ['warehouse.locations.create']);
      const record = await ctx.transaction(async (trx) => {
        const id = isUuid(body.id) ? String(body.id).toLowerCase() : uuidv7();
        const root = uuidv7();
        const warehouse = await ctx.repository('warehouse.warehouses').create({ ...body, id, location: root }, { actor: principal, trx, requestId: requestIdOf(http), viaTransition: true });
        await ctx.repository('warehouse.locations').create({
          id: root, code: warehouse.code, name: warehouse.name, type: 'internal', level: 'warehouse', warehouse: id,
        }, { actor: writer, trx, requestId: requestIdOf(http), viaTransition: true });
        return warehouse;
      });
      http.status = 201;
      http.set('Location', `/api/warehouse/warehouses/${record.id}`);
      http.set('ETag', `"${record.version}"`);
      http.body = record;
    },
  }));

  // Product settings: tracking, valuation and stock unit are fixed once the product has moves.
  // Checked after the write (inside its transaction), so a malformed body is a 400 first.
  const DEFAULTS: Record<string, unknown> = { tracking: 'none', valuation: 'average', stockUnit: undefined };
  const checkNoMoves = async (trx: Knex.Transaction, after: Record<string, unknown>, before?: Record<string, unknown>) => {
    const changed = LEDGER_SETTINGS.filter((f) => (before ? (after[f] ?? null) !== (before[f] ?? null) : (after[f] ?? undefined) !== DEFAULTS[f]));
    if (changed.length === 0) return;
    const move = await ctx.table('warehouse_moves', trx).where({ product: after.product }).first('id');
    if (move) {
      throw new KubikiError('conflict', `${changed.join(', ')} cannot change: the product has stock moves (they were posted ${changed.includes('tracking') ? 'with its tracking' : 'under these settings'})`, {
        issues: changed.map((field) => ({ field, rule: 'no-moves', message: `${field} is fixed once the product has stock moves` })),
      });
    }
  };
  ctx.route(defineRoute<unknown, unknown, Record<string, unknown>>({
    method: 'post', path: '/products', operationId: 'createProductSettings', summary: 'Stock settings for a catalogue product',
    description: 'Tracking and valuation other than the defaults (none, average) are refused once the product has moves.',
    permission: 'warehouse.products.create', errors: ['conflict', 'unique-violation', 'reference-not-found'],
    schemas: { body: entityInput('warehouse.products'), responses: { 201: { description: 'The settings', schema: entityRecord('warehouse.products'), headers: { Location: '/api/warehouse/products/{id}' } } } },
    async handler({ body, principal }, http) {
      const record = await ctx.transaction(async (trx) => {
        const created = await ctx.repository('warehouse.products').create(body, { actor: principal, trx, requestId: requestIdOf(http), viaTransition: true });
        await checkNoMoves(trx, created);
        return created;
      });
      http.status = 201;
      http.set('Location', `/api/warehouse/products/${record.id}`);
      http.set('ETag', `"${record.version}"`);
      http.body = record;
    },
  }));
  ctx.route(defineRoute<{ id: string }, unknown, Record<string, unknown>>({
    method: 'patch', path: '/products/:id', operationId: 'updateProductSettings', summary: 'Change a product\'s stock settings',
    description: 'Tracking, valuation and stock unit cannot change once the product has moves (409).',
    permission: 'warehouse.products.update', errors: ['not-found', 'conflict', 'version-mismatch'],
    schemas: { params: idParams, body: { type: 'object', additionalProperties: true, description: 'Any fields of WarehouseProductInput; null clears one' }, responses: { 200: entityRecord('warehouse.products') } },
    async handler({ params, body, principal }, http) {
      const header = http.get('if-match');
      const expectedVersion = header && /^(?:W\/)?"?(\d+)"?$/.test(header.trim()) ? Number(/(\d+)/.exec(header)![1]) : undefined;
      const record = await ctx.transaction(async (trx) => {
        const before = await ctx.repository('warehouse.products').get(params.id, { actor: principal, trx });
        const updated = await ctx.repository('warehouse.products').update(params.id, body, { actor: principal, trx, requestId: requestIdOf(http), viaTransition: true, expectedVersion });
        await checkNoMoves(trx, updated, before);
        return updated;
      });
      http.set('ETag', `"${record.version}"`);
      http.body = record;
    },
  }));

  ctx.route(defineRoute<unknown, { product: string; location?: string; warehouse?: string; lot?: string }>({
    method: 'get', path: '/availability', operationId: 'availability', summary: 'On hand, reserved, available, incoming and outgoing of a product in a location and everything under it',
    permission: 'warehouse.moves.read', errors: ['bad-query'],
    schemas: {
      query: { type: 'object', required: ['product'], properties: { product: uuid('A base.products id'), location: uuid('A location (its subtree)'), warehouse: uuid('A warehouse (its root location)'), lot: uuid('One lot only') } },
      responses: { 200: availability },
    },
    async handler({ query }, http) {
      let location = query.location;
      if (!location && query.warehouse) {
        const w = await ctx.table('warehouse_warehouses').where({ id: query.warehouse }).first('location');
        if (!w) throw new KubikiError('bad-query', `no warehouse.warehouses record ${query.warehouse}`, { issues: [{ field: 'warehouse', rule: 'exists', message: 'no such warehouse' }] });
        location = w.location;
      }
      if (!location) throw new KubikiError('bad-query', 'give location or warehouse', { issues: [{ field: 'location', rule: 'required', message: 'location (or warehouse) is required' }] });
      http.body = { product: query.product, location, lot: query.lot ?? null, ...(await stock.availability(query.product, location, query.lot)) };
    },
  }));

  ctx.route(defineRoute<unknown, { product?: string; serial?: string; location?: string; inStock?: boolean; limit: number }>({
    method: 'get', path: '/serials', operationId: 'listSerials', summary: 'Serial numbers: where each one is (location null: not in stock)',
    permission: 'warehouse.moves.read',
    schemas: {
      query: { type: 'object', properties: { product: uuid(), serial: { type: 'string', maxLength: 100 }, location: uuid(), inStock: { type: 'boolean' }, limit: { type: 'integer', minimum: 1, maximum: 1000, default: 100 } } },
      responses: {
        200: {
          type: 'object', required: ['data'], additionalProperties: false,
          properties: { data: { type: 'array', items: { type: 'object', required: ['product', 'serial', 'location'], additionalProperties: false, properties: { product: { type: 'string' }, serial: { type: 'string' }, location: { type: ['string', 'null'] }, lot: { type: ['string', 'null'] }, lastMove: { type: ['string', 'null'] } } } } },
        },
      },
    },
    async handler({ query }, http) {
      const q = ctx.table('warehouse_serials').orderBy(['product_id', 'serial']).limit(query.limit);
      if (query.product) q.where({ product_id: query.product });
      if (query.serial) q.where({ serial: query.serial });
      if (query.location) q.where({ location_id: query.location });
      if (query.inStock === true) q.whereNotNull('location_id');
      if (query.inStock === false) q.whereNull('location_id');
      const rows: { product_id: string; serial: string; location_id: string | null; lot_id: string | null; last_move: string | null }[] = await q;
      http.body = { data: rows.map((r) => ({ product: r.product_id, serial: r.serial, location: r.location_id, lot: r.lot_id, lastMove: r.last_move })) };
    },
  }));
}
