import type { Knex } from 'knex';
import { type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import type { StockService, MoveInput } from '../stock-service.ts';
import { cost, dec, invalid, qty, today } from '../util.ts';
import { SUPPLIERS, checkLineRefs, documentFields, checkLocationIn, lockRow, nextNumber, orderWriter, quantities, warehouseOf, withQuantity, type OrderLine, type Row } from './order-kit.ts';

export interface ReceiveInput {
  date?: string;
  location?: string;
  lines: { line: number; quantity: string; lot?: string; lotNumber?: string; serials?: string[] }[];
  notes?: string;
}

const RECEIVABLE = new Set(['confirmed', 'partlyReceived']);

/**
 * Purchase orders and their goods receipts. The order's states are its lifecycle
 * (warehouse.purchase-order-lifecycle); this is what its moments do, and receiving.
 */
export class Purchasing {
  constructor(private readonly ctx: PluginContext, private readonly stock: StockService) {}

  /** The confirm moment: every line names a stock product; the order takes its number. */
  async confirmed(id: string, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<{ number: string }> {
    const order = await lockRow(this.ctx, 'warehouse_purchase_orders', 'warehouse.purchaseOrders', id, trx);
    await this.checkStockLines(order.lines as OrderLine[], trx);
    if (order.location) await checkLocationIn(this.ctx, order.location, order.warehouse, 'location', trx);
    const number = await nextNumber(this.ctx, 'PO', order.date ?? today(), trx);
    await this.ctx.repository('warehouse.purchaseOrders').update(id, { number }, { actor: orderWriter(actor), trx, requestId, viaTransition: true });
    return { number };
  }

  /** The cancel moment: nothing may have been received (an order with receipts is closed short instead). */
  async cancelled(id: string, trx: Knex.Transaction): Promise<void> {
    const order = await lockRow(this.ctx, 'warehouse_purchase_orders', 'warehouse.purchaseOrders', id, trx);
    if (quantities(order.received, (order.lines as unknown[]).length).some((r) => dec(r).gt(0))) {
      throw this.ctx.error('order-state', `purchase order ${order.number ?? id} has receipts; close it short instead of cancelling`, { issues: [{ field: 'status', rule: 'nothing-received', message: 'goods were received against the order' }] });
    }
  }

  /**
   * Receives goods against a confirmed order in one transaction: one receipt move per line from the
   * suppliers location at the line's net unit cost, the receipt record, the order's received
   * quantities and status. Anything refused writes nothing.
   */
  async receive(id: string, input: ReceiveInput, options: { actor: Principal; requestId?: string }): Promise<ApiRecord> {
    return this.ctx.transaction(async (trx) => {
      const order = await lockRow(this.ctx, 'warehouse_purchase_orders', 'warehouse.purchaseOrders', id, trx);
      if (!RECEIVABLE.has(order.status)) {
        throw this.ctx.error('order-state', `purchase order ${order.number ?? id} is ${order.status}; goods are received against a confirmed or partly received order`, { extra: { state: order.status } });
      }
      const lines = order.lines as OrderLine[];
      checkLineRefs(input.lines, lines.length);
      const received = quantities(order.received, lines.length).map(dec);
      const tolerance = dec(order.tolerancePercent ?? '0');
      input.lines.forEach((r, i) => {
        const ordered = dec(lines[r.line].quantity);
        const allowed = ordered.times(tolerance.plus(100)).dividedBy(100).toDecimalPlaces(3);
        if (received[r.line].plus(r.quantity).gt(allowed)) {
          throw this.ctx.error('over-receipt', `lines.${i}.quantity: ${qty(r.quantity)} more of order line ${r.line} would make ${qty(received[r.line].plus(r.quantity))} received, above the ${qty(allowed)} allowed (ordered ${qty(ordered)}, tolerance ${tolerance.toString()} %)`, {
            issues: [{ field: `lines.${i}.quantity`, rule: 'tolerance', message: `at most ${qty(allowed.minus(received[r.line]))} more may be received` }],
            extra: { ordered: qty(ordered), received: qty(received[r.line]), allowed: qty(allowed) },
          });
        }
      });
      const w = await warehouseOf(this.ctx, order.warehouse, trx);
      const location: string = input.location ?? order.location ?? w.location;
      if (input.location) await checkLocationIn(this.ctx, input.location, order.warehouse, 'location', trx);
      const date = input.date ?? today();
      const net = this.ctx.money.totals(lines, { pricesIncludeVat: order.pricesIncludeVat === true }).lines;
      const writer = orderWriter(options.actor);
      const moves: MoveInput[] = input.lines.map((r) => ({
        kind: 'receipt', product: String(lines[r.line].product), quantity: r.quantity, fromLocation: SUPPLIERS, toLocation: location, date,
        unitCost: cost(dec(net[r.line].net).dividedBy(lines[r.line].quantity)),
        ...(r.lot ? { lot: r.lot } : {}), ...(r.lotNumber ? { lotNumber: r.lotNumber } : {}), ...(r.serials ? { serials: r.serials } : {}),
        source: { entity: 'warehouse.purchaseOrders', id, line: String(r.line) },
      }));
      const number = await nextNumber(this.ctx, 'RCPT', date, trx);
      const posted = await this.stock.postMoves(moves, { actor: writer, trx, requestId: options.requestId, prefix: 'lines.', batch: true, reference: number });
      const receipt = await this.ctx.repository('warehouse.receipts').create({
        number, purchaseOrder: id, supplier: order.supplier, warehouse: order.warehouse, location, date,
        ...(order.currency ? { currency: order.currency } : {}), pricesIncludeVat: order.pricesIncludeVat === true,
        lines: input.lines.map((r) => withQuantity(lines[r.line], r.quantity)), orderLines: input.lines.map((r) => r.line),
        moves: posted.map((m) => m.id), ...(input.notes ? { notes: input.notes } : {}),
      }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
      for (const r of input.lines) received[r.line] = received[r.line].plus(r.quantity);
      const complete = lines.every((l, i) => received[i].gte(l.quantity));
      await this.ctx.repository('warehouse.purchaseOrders').update(id, { received: received.map(qty), status: complete ? 'received' : 'partlyReceived' }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
      return receipt;
    });
  }

  /** Every line names a goods product (a service is not received into stock). */
  private async checkStockLines(lines: OrderLine[], trx: Knex.Transaction): Promise<void> {
    const products = await this.stock.products(lines.map((l) => l.product ?? ''), trx);
    lines.forEach((l, i) => {
      if (!l.product) throw invalid(`lines.${i}.product`, 'required', `lines.${i}.product: every line of a purchase order names the product received (line ${i} "${l.description}" has none)`);
      const p = products.get(l.product);
      if (!p) throw invalid(`lines.${i}.product`, 'x-ref', `lines.${i}.product: no base.products record ${l.product}`);
      if (p.kind === 'service') throw invalid(`lines.${i}.product`, 'stockable', `lines.${i}.product: ${p.sku} is a service, which is not received into stock`);
    });
  }
}

/** The purchase order's computed fields: totals always; a draft has no number and nothing received. */
export function purchaseOrderFields(ctx: PluginContext, fields: Readonly<Row>): Row {
  const out = documentFields(ctx, fields);
  if (fields.status === undefined || fields.status === 'draft') Object.assign(out, { number: null, received: quantities([], Array.isArray(fields.lines) ? fields.lines.length : 0) });
  return out;
}
