import type { Knex } from 'knex';
import { KubikiError, SYSTEM, definePlugin, fieldError, isKubikiError, type GuardedWrite, type Principal } from 'kubiki/plugin';
import { checkActionInput } from './action-inputs.ts';
import { StockService, type MoveInput, type ReserveInput } from './stock-service.ts';
import { StockPeriods } from './periods.ts';
import { StockCounts } from './counts.ts';
import { StockReports } from './reports.ts';
import { movePostingRule } from './finance-postings.ts';
import { LEDGER_SETTINGS, placeRoutes } from './routes/places.ts';
import { moveRoutes } from './routes/moves.ts';
import { reservationRoutes } from './routes/reservations.ts';
import { periodRoutes } from './routes/periods.ts';
import { countRoutes } from './routes/counts.ts';
import { reportRoutes } from './routes/reports.ts';
import { purchasingRoutes } from './routes/purchasing.ts';
import { sellingRoutes } from './routes/selling.ts';
import { transportRoutes } from './routes/transport.ts';
import { setUpOrders } from './orders/setup.ts';
import type { Services } from './routes/common.ts';
import { dec, elevated, invalid, isUuid, qty } from './util.ts';

export type { Services } from './routes/common.ts';
export { StockService } from './stock-service.ts';

/** Refuses writes that do not come from the warehouse's own code (`trusted`), saying which route to use. */
const onlyTrusted = (how: string) => ({ trusted, action }: GuardedWrite) => {
  if (!trusted) throw invalid('', 'route', `${action === 'create' ? 'created' : 'changed'} only ${how}`);
};
/** Refuses untrusted writes of fields the warehouse computes. */
const computedBy = (fields: readonly string[], how: string) => ({ trusted, fields: given }: GuardedWrite) => {
  if (trusted) return;
  const f = fields.find((name) => name in given);
  if (f) throw fieldError('validation-failed', f, 'read-only', `${f} is set by the warehouse ${how}`);
};

const text = (v: unknown, field: string): string => {
  if (typeof v !== 'string' || v === '') throw invalid(field, 'type', `${field} must be a non-empty string`);
  return v;
};
const id = (v: unknown, field: string): string => {
  if (!isUuid(v)) throw invalid(field, 'format', `${field} must be an id (UUID)`);
  return v;
};

export default definePlugin({
  async setup(ctx) {
    const stock = new StockService(ctx);
    const services: Services = { stock, periods: new StockPeriods(ctx, stock), counts: new StockCounts(ctx, stock), reports: new StockReports(ctx, stock) };

    // ── Places ──────────────────────────────────────────────────────────────────────────────
    ctx.guardWrites('warehouse.warehouses', ({ trusted, action }) => {
      if (!trusted && action === 'create') throw invalid('', 'route', 'a warehouse is created with POST /api/warehouse/warehouses, which also creates its root location');
    });
    ctx.guardWrites('warehouse.locations', ({ trusted, action, fields }) => {
      if (action === 'update') {
        const fixed = ['type', 'parent', 'level'].find((f) => f in fields);
        if (fixed) throw fieldError('validation-failed', fixed, 'immutable', `${fixed} of a location never changes (balances and the ledger depend on its place in the tree); create a new location instead`);
        return;
      }
      if (!trusted && fields.level === 'warehouse') throw invalid('level', 'route', 'a warehouse\'s root location is created with its warehouse (POST /api/warehouse/warehouses)');
      if (!trusted && fields.type === 'internal' && !fields.parent) throw invalid('parent', 'required', 'parent is required for internal locations: zones and bins live under a warehouse\'s root location');
    });
    ctx.computeFields('warehouse.locations', async ({ action, fields, current, exec }) => {
      if (action === 'update') return { path: current?.path ?? '/', warehouse: current?.warehouse ?? null };
      if (!fields.parent) return { path: '/', warehouse: fields.level === 'warehouse' ? fields.warehouse ?? null : null };
      const parent = await ctx.table('warehouse_locations', exec).where({ id: fields.parent }).first('id', 'type', 'level', 'path', 'warehouse');
      if (!parent) throw fieldError('reference-not-found', 'parent', 'x-ref', `parent: no warehouse.locations record ${String(fields.parent)}`);
      if (parent.type !== fields.type) throw invalid('parent', 'type', `parent: a ${String(fields.type)} location goes under a ${String(fields.type)} location, not under a ${parent.type} one`);
      if (parent.level === 'bin') throw invalid('parent', 'level', 'parent: a bin holds no locations');
      if (fields.level === 'warehouse') throw invalid('level', 'root', 'level warehouse is the root of a warehouse; under a parent use zone or bin');
      return { path: `${parent.path ?? '/'}${parent.id}/`, warehouse: parent.warehouse ?? null };
    });

    // ── Product settings ────────────────────────────────────────────────────────────────────
    ctx.guardWrites('warehouse.products', ({ trusted, fields }) => {
      if (trusted) return;
      const f = LEDGER_SETTINGS.find((name) => name in fields);
      if (f) throw fieldError('validation-failed', f, 'route', `${f} is set with POST or PATCH /api/warehouse/products, which checks the product has no stock moves yet`);
    });
    ctx.computeFields('warehouse.products', async ({ fields, exec }) => {
      if (!isUuid(fields.product)) return {};
      try {
        const p = await ctx.repository('base.products').get(String(fields.product), { actor: SYSTEM, trx: exec });
        return { sku: p.sku ?? null, name: p.name ?? null };
      } catch (error) {
        if (isKubikiError(error) && error.code === 'not-found') throw fieldError('reference-not-found', 'product', 'x-ref', `product: no base.products record ${String(fields.product)}`);
        throw error;
      }
    });

    // ── The ledger and what hangs on it: written by the stock service only ──────────────────
    ctx.guardWrites('warehouse.plannedMoves', onlyTrusted('through POST /api/warehouse/moves {status: planned}, …/complete and …/cancel (or the warehouse.postMoves workflow action)'));
    ctx.guardWrites('warehouse.postings', onlyTrusted('by the stock layer when it writes moves to the ledger'));
    ctx.guardWrites('warehouse.reservations', onlyTrusted('through POST /api/warehouse/reservations, …/release, …/fill and shipments (or the warehouse.reserve and warehouse.release workflow actions)'));
    ctx.guardWrites('warehouse.periods', onlyTrusted('through POST /api/warehouse/periods and …/reopen'));
    ctx.guardWrites('warehouse.countLines', onlyTrusted('through POST /api/warehouse/counts/{id}/start and …/lines'));
    ctx.guardWrites('warehouse.counts', (write) => {
      computedBy(['status', 'startedAt', 'startSeq', 'submittedAt', 'decidedAt', 'postedAt', 'adjustments'], 'as the count goes through start, submit and approval')(write);
      if (!write.trusted && write.action === 'update' && write.current && write.current.status !== 'draft') {
        throw new KubikiError('conflict', `a ${String(write.current.status)} count is not edited`, { issues: [{ field: 'status', rule: 'draft', message: `the count is ${String(write.current.status)}` }] });
      }
    });
    ctx.computeFields('warehouse.counts', ({ action, fields }) => (action === 'create' && !fields.status ? { status: 'draft' } : {}));
    ctx.computeFields('warehouse.countLines', ({ fields }) => ({ difference: fields.counted === undefined ? null : qty(dec(fields.counted).minus(dec(fields.expected))) }));

    // ── Routes ──────────────────────────────────────────────────────────────────────────────
    placeRoutes(ctx, services);
    moveRoutes(ctx, services);
    reservationRoutes(ctx, services);
    periodRoutes(ctx, services);
    countRoutes(ctx, services);
    reportRoutes(ctx, services);

    // ── Orders, shipments and transport: documents on the stock layer ───────────────────────
    const orders = setUpOrders(ctx, stock);
    purchasingRoutes(ctx, orders);
    sellingRoutes(ctx, orders);
    transportRoutes(ctx, orders);

    // ── Workflow actions: the stock layer for workflows (and the order modules to come) ─────
    const actor = (a: Principal) => (a === SYSTEM ? SYSTEM : elevated(a, ['warehouse.moves.post', 'warehouse.reservations.reserve']));
    const trxOf = (t: unknown) => t as Knex.Transaction;
    ctx.workflowAction('postMoves', {
      description: 'Posts (or plans) stock moves: {moves: [{kind, product, quantity, fromLocation, toLocation, lot?, serials?, unitCost?, reservation?, source?, status?, date?}]}; returns their ids',
      async handler(input, { trx, actor: a }) {
        checkActionInput('postMoves', input);
        const records = await stock.postMoves(input.moves as MoveInput[], { actor: actor(a), trx: trxOf(trx), prefix: 'moves.', batch: true });
        return { moves: records.map((r) => r.id) };
      },
    });
    ctx.workflowAction('completeMove', {
      description: 'Posts a planned move: {move, date?}',
      async handler(input, { trx, actor: a }) {
        checkActionInput('completeMove', input);
        const [record] = await stock.completeMoves([{ id: id(input.move, 'move'), ...(typeof input.date === 'string' ? { date: input.date } : {}) }], { actor: actor(a), trx: trxOf(trx) });
        return { move: record.id, value: record.value ?? null };
      },
    });
    ctx.workflowAction('reverseMove', {
      description: 'Reverses a done move: {move, date?}; returns the reversal',
      async handler(input, { trx, actor: a }) {
        checkActionInput('reverseMove', input);
        const record = await stock.reverseMove(id(input.move, 'move'), { ...(typeof input.date === 'string' ? { date: input.date } : {}) }, { actor: actor(a), trx: trxOf(trx) });
        return { move: record.id };
      },
    });
    ctx.workflowAction('reserve', {
      description: 'Reserves stock for a demand line: {product, warehouse | location, quantity, demandEntity, demandId, demandLine?, lot?}; returns the reservation and what it holds',
      async handler(input, { trx, actor: a }) {
        checkActionInput('reserve', input);
        const request: ReserveInput = {
          product: id(input.product, 'product'), quantity: text(input.quantity, 'quantity'),
          ...(input.location ? { location: id(input.location, 'location') } : {}), ...(input.warehouse ? { warehouse: id(input.warehouse, 'warehouse') } : {}),
          ...(input.lot ? { lot: id(input.lot, 'lot') } : {}),
          demand: { entity: text(input.demandEntity, 'demandEntity'), id: text(input.demandId, 'demandId'), ...(input.demandLine ? { line: String(input.demandLine) } : {}) },
        };
        const [{ record, created }] = await stock.reserve([request], { actor: actor(a), trx: trxOf(trx) });
        return { reservation: record.id, reserved: record.reserved, backordered: record.backordered, created };
      },
    });
    ctx.workflowAction('release', {
      description: 'Releases a reservation: {reservation, quantity?}',
      async handler(input, { trx, actor: a }) {
        checkActionInput('release', input);
        const record = await stock.release(id(input.reservation, 'reservation'), { ...(typeof input.quantity === 'string' ? { quantity: input.quantity } : {}) }, { actor: actor(a), trx: trxOf(trx) });
        return { reservation: record.id, status: record.status };
      },
    });
    ctx.workflowAction('postCount', {
      description: 'Posts an approved stock count\'s adjustments: {count}',
      async handler(input, { trx, actor: a }) {
        checkActionInput('postCount', input);
        const record = await services.counts.post(id(input.count, 'count'), { actor: a === SYSTEM ? SYSTEM : elevated(a, ['warehouse.counts.count']), trx: trxOf(trx) });
        return { count: record.id, status: record.status, adjustments: record.adjustments ?? 0 };
      },
    });
    ctx.workflowAction('reopenCount', {
      description: 'Sends a rejected stock count back to counting: {count}',
      async handler(input, { trx, actor: a }) {
        checkActionInput('reopenCount', input);
        const record = await services.counts.reopen(id(input.count, 'count'), { actor: a, trx: trxOf(trx) });
        return { count: record.id, status: record.status };
      },
    });

    // ── Finance: moves post their value through finance's posting rules, when finance is here ──
    try {
      await ctx.contribute('finance.postingRules', movePostingRule(ctx));
    } catch (error) {
      // No finance plugin in this installation: stock is kept without the books.
      if (!isKubikiError(error)) throw error;
    }
  },
});
