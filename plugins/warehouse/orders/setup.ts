import type { Knex } from 'knex';
import { fieldError, type GuardedWrite, type PluginContext } from 'kubiki/plugin';
import type { StockService } from '../stock-service.ts';
import { invalid, today } from '../util.ts';
import { documentFields, momentOf, nextNumber } from './order-kit.ts';
import { Purchasing, purchaseOrderFields } from './purchasing.ts';
import { Selling, salesOrderFields } from './selling.ts';
import { Transport, newTripFields } from './transport.ts';
import { documentTotals } from './document-totals.ts';

export interface OrderServices { purchasing: Purchasing; selling: Selling; transport: Transport }

/** Refuses every write that is not the warehouse's own (`how` says where the record comes from). */
const ownWritesOnly = (entity: string, how: string) => ({ trusted, action }: GuardedWrite) => {
  if (!trusted) throw invalid('', 'route', `${entity} records are ${action === 'create' ? 'made' : action === 'delete' ? 'never deleted: they are' : 'never edited: they are'} ${how}`);
};

/**
 * The order documents: their computed fields, who may write them, and the moments their lifecycles
 * run (warehouse.purchase-order-lifecycle, sales-order-lifecycle, shipment-lifecycle).
 */
export function setUpOrders(ctx: PluginContext, stock: StockService): OrderServices {
  const purchasing = new Purchasing(ctx, stock);
  const selling = new Selling(ctx, stock);
  const transport = new Transport(ctx);

  ctx.computeFields('warehouse.purchaseOrders', ({ fields }) => purchaseOrderFields(ctx, fields));
  ctx.computeFields('warehouse.salesOrders', ({ fields }) => salesOrderFields(ctx, fields));
  ctx.computeFields('warehouse.receipts', ({ fields }) => documentFields(ctx, fields));
  ctx.computeFields('warehouse.shipments', ({ fields }) => documentFields(ctx, fields));
  ctx.computeFields('warehouse.trips', async ({ action, fields, exec }) =>
    (action === 'create' ? { ...newTripFields(), number: await nextNumber(ctx, 'TRIP', String(fields.date ?? today()), exec as Knex.Transaction) } : {}));

  ctx.guardWrites('warehouse.receipts', ownWritesOnly('warehouse.receipts', 'made by POST /api/warehouse/purchaseOrders/{id}/receive (correct a receipt by reversing its moves)'));
  ctx.guardWrites('warehouse.shipments', (write) => {
    if (write.trusted) return;
    if (write.action !== 'update') ownWritesOnly('warehouse.shipments', 'made by POST /api/warehouse/salesOrders/{id}/shipments and cancelled with …/shipments/{id}/cancel')(write);
    const fixed = Object.keys(write.fields).find((f) => !['deliveryAddress', 'notes', 'packages'].includes(f));
    if (fixed) throw fieldError('validation-failed', fixed, 'read-only', `${fixed} of a shipment is set from its sales order; cancel the shipment and make another`);
  });
  ctx.guardWrites('warehouse.trips', ({ trusted, action, current, fields }) => {
    if (trusted) return;
    // Computed on create, then the dispatch routes' own: a write naming them is refused, even with the value they have.
    const computed = ['status', 'stops', 'weight', 'volume', 'number'].find((f) => f in fields);
    if (computed) throw fieldError('validation-failed', computed, 'read-only', `${computed} of a trip is set by PUT …/stops, …/depart, …/stops/{n}/delivered|failed and …/cancel`);
    if (action === 'create' || !current) return;
    if (current.status !== 'planned') throw ctx.error('trip-state', `trip ${String(current.number)} is ${String(current.status)}; it is changed or deleted only while planned`, { extra: { state: current.status } });
    if (action === 'delete' && Array.isArray(current.stops) && current.stops.length) throw ctx.error('trip-state', `trip ${String(current.number)} has stops; cancel it (POST …/cancel) instead of deleting it`);
    if ('vehicle' in fields && Array.isArray(current.stops) && current.stops.length) throw invalid('vehicle', 'stops-set', 'vehicle: the stops were loaded against the vehicle\'s capacity; set the stops again after changing it (clear them first)');
  });

  // Document moments: each runs in its transition's transaction, right after the state change.
  const moment = (action: string, route: string, run: (m: ReturnType<typeof momentOf>, trx: Knex.Transaction, actor: Parameters<Purchasing['confirmed']>[1], requestId?: string) => Promise<unknown>, description: string) =>
    ctx.workflowAction(action, {
      description,
      async handler(input, { trx, actor, requestId }) {
        return (await run(momentOf(input, action, route), trx as Knex.Transaction, actor, requestId)) ?? {};
      },
    });
  moment('purchaseOrderConfirmed', 'POST /api/warehouse/purchaseOrders/{id}/confirm', (m, trx, actor, rid) => purchasing.confirmed(m.id, actor, trx, rid),
    'The confirm transition of warehouse.purchase-order-lifecycle: checks every line names a stock product and numbers the order');
  moment('purchaseOrderCancelled', 'POST /api/warehouse/purchaseOrders/{id}/cancel', (m, trx) => purchasing.cancelled(m.id, trx),
    'The cancel transition of warehouse.purchase-order-lifecycle: refused once goods were received');
  moment('salesOrderConfirmed', 'POST /api/warehouse/salesOrders/{id}/confirm', (m, trx, actor, rid) => selling.confirmed(m.id, actor, trx, rid),
    'The confirm transition of warehouse.sales-order-lifecycle: reserves every stock line and numbers the order');
  moment('salesOrderCancelled', 'POST /api/warehouse/salesOrders/{id}/cancel', (m, trx, actor, rid) => selling.cancelled(m.id, actor, trx, rid),
    'The cancel transition of warehouse.sales-order-lifecycle: releases the reservations; refused once shipped or with an open shipment');
  moment('shipmentPacked', 'POST /api/warehouse/shipments/{id}/pack', (m, trx, actor, rid) => selling.packed(m.id, m.input as { packages?: number }, actor, trx, rid),
    'The pack transition of warehouse.shipment-lifecycle: records the packages');
  moment('shipmentShipped', 'POST /api/warehouse/shipments/{id}/ship', (m, trx, actor, rid) => selling.shipped(m.id, m.input as { date?: string }, actor, trx, rid),
    'The ship transition of warehouse.shipment-lifecycle: posts the shipment moves (consuming the reservations) and updates the sales order');

  documentTotals(ctx);
  return { purchasing, selling, transport };
}
