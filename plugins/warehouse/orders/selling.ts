import type { Knex } from 'knex';
import { type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import type { StockService, MoveInput } from '../stock-service.ts';
import { Decimal } from 'decimal.js';
import { ZERO, dec, invalid, qty, today } from '../util.ts';
import { CUSTOMERS, checkLineRefs, documentFields, checkLocationIn, lockRow, nextNumber, orderWriter, quantities, warehouseOf, withQuantity, type OrderLine, type Row } from './order-kit.ts';

export interface ShipmentInput {
  lines?: { line: number; quantity: string; location?: string; lot?: string; serials?: string[] }[];
  deliveryAddress?: string;
  notes?: string;
}

const SHIPPABLE = new Set(['confirmed', 'partlyShipped']);
const OPEN_SHIPMENT = ['picking', 'packed'];
const DEMAND = 'warehouse.salesOrders';

/**
 * Sales orders and their shipments. The states are lifecycles (warehouse.sales-order-lifecycle,
 * warehouse.shipment-lifecycle); this is what their moments do, and making shipments.
 */
export class Selling {
  constructor(private readonly ctx: PluginContext, private readonly stock: StockService) {}

  /**
   * The confirm moment: numbered, and one reservation per stock line at the warehouse (refused
   * or back-ordered by its reservation policy: a refusal undoes the confirmation).
   */
  async confirmed(id: string, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<{ number: string }> {
    const order = await lockRow(this.ctx, 'warehouse_sales_orders', DEMAND, id, trx);
    const lines = order.lines as OrderLine[];
    const stockLines = await this.stockLines(lines, trx);
    const writer = orderWriter(actor);
    const reservations: (string | null)[] = [];
    const reserved: string[] = [];
    for (const [i, l] of lines.entries()) {
      if (!stockLines.has(i)) {
        reservations.push(null);
        reserved.push(qty(0));
        continue;
      }
      const [{ record }] = await this.stock.reserve([{
        product: String(l.product), warehouse: order.warehouse, quantity: l.quantity, demand: { entity: DEMAND, id, line: String(i) },
      }], { actor: writer, trx, requestId, prefix: `lines.${i}.` });
      reservations.push(record.id);
      reserved.push(qty(dec(record.reserved)));
    }
    const number = await nextNumber(this.ctx, 'SO', order.date ?? today(), trx);
    await this.ctx.repository(DEMAND).update(id, { number, reservations, reserved }, { actor: writer, trx, requestId, viaTransition: true });
    return { number };
  }

  /** The cancel moment: nothing shipped or being picked; the reservations are released. */
  async cancelled(id: string, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<void> {
    const order = await lockRow(this.ctx, 'warehouse_sales_orders', DEMAND, id, trx);
    const label = order.number ?? id;
    if (quantities(order.shipped, (order.lines as unknown[]).length).some((s) => dec(s).gt(0))) {
      throw this.ctx.error('order-state', `sales order ${label} has shipped goods; it is not cancelled`, { issues: [{ field: 'status', rule: 'nothing-shipped', message: 'goods were shipped against the order' }] });
    }
    const open = await this.ctx.table('warehouse_shipments', trx).where({ salesOrder: id }).whereIn('status', OPEN_SHIPMENT).first('number');
    if (open) {
      throw this.ctx.error('order-state', `sales order ${label} has shipment ${open.number} being picked or packed; cancel the shipment first`, { issues: [{ field: 'status', rule: 'no-open-shipment', message: `shipment ${open.number} is open` }] });
    }
    const active = await this.ctx.table('warehouse_reservations', trx).where({ demandEntity: DEMAND, demandId: id, status: 'active' }).select('id');
    for (const r of active) await this.stock.release(String(r.id), {}, { actor: orderWriter(actor), trx, requestId });
  }

  /**
   * A shipment of what is left of a confirmed order (or of the lines named), status picking. The
   * order row is locked first, so two clients shipping the same rest at once make one shipment.
   */
  async makeShipment(id: string, input: ShipmentInput, options: { actor: Principal; requestId?: string }): Promise<ApiRecord> {
    return this.ctx.transaction(async (trx) => {
      const order = await lockRow(this.ctx, 'warehouse_sales_orders', DEMAND, id, trx);
      if (!SHIPPABLE.has(order.status)) {
        throw this.ctx.error('order-state', `sales order ${order.number ?? id} is ${order.status}; shipments are made from a confirmed or partly shipped order`, { extra: { state: order.status } });
      }
      const lines = order.lines as OrderLine[];
      const stockLines = await this.stockLines(lines, trx);
      const left = await this.leftToShip(order, trx);
      let wanted: NonNullable<ShipmentInput['lines']>;
      if (input.lines) {
        checkLineRefs(input.lines, lines.length);
        input.lines.forEach((r, i) => {
          if (!stockLines.has(r.line)) throw invalid(`lines.${i}.line`, 'stockable', `lines.${i}.line: order line ${r.line} is not a stock product; it is not shipped`);
          if (dec(r.quantity).gt(left[r.line])) {
            throw this.ctx.error('over-shipment', `lines.${i}.quantity: ${qty(r.quantity)} of order line ${r.line} asked, ${qty(left[r.line])} left to ship`, {
              issues: [{ field: `lines.${i}.quantity`, rule: 'left', message: `${qty(left[r.line])} left to ship` }], extra: { left: qty(left[r.line]) },
            });
          }
        });
        wanted = input.lines;
      } else {
        wanted = [...stockLines].filter((i) => left[i].gt(0)).map((i) => ({ line: i, quantity: qty(left[i]) }));
        if (wanted.length === 0) throw this.ctx.error('over-shipment', `sales order ${order.number ?? id} has nothing left to ship (shipped, or in shipments being picked or packed)`);
      }
      for (const [i, r] of wanted.entries()) if (r.location) await checkLocationIn(this.ctx, r.location, order.warehouse, `lines.${i}.location`, trx);
      const { weight, volume } = await this.load(wanted.map((r) => ({ product: String(lines[r.line].product), quantity: r.quantity })), trx);
      const writer = orderWriter(options.actor);
      return this.ctx.repository('warehouse.shipments').create({
        number: await nextNumber(this.ctx, 'SHP', today(), trx), salesOrder: id, customer: order.customer, warehouse: order.warehouse,
        ...(order.currency ? { currency: order.currency } : {}), pricesIncludeVat: order.pricesIncludeVat === true,
        ...(input.deliveryAddress ?? order.deliveryAddress ? { deliveryAddress: input.deliveryAddress ?? order.deliveryAddress } : {}),
        lines: wanted.map((r) => withQuantity(lines[r.line], qty(r.quantity))), orderLines: wanted.map((r) => r.line),
        picks: wanted.map((r) => ({ ...(r.location ? { location: r.location } : {}), ...(r.lot ? { lot: r.lot } : {}), ...(r.serials ? { serials: r.serials } : {}) })),
        weight, volume, ...(input.notes ? { notes: input.notes } : {}),
      }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
    });
  }

  /** The pack moment: the number of packages. */
  async packed(id: string, input: { packages?: number }, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<void> {
    if (input.packages !== undefined) await this.ctx.repository('warehouse.shipments').update(id, { packages: input.packages }, { actor: orderWriter(actor), trx, requestId, viaTransition: true });
  }

  /**
   * The ship moment: one shipment move per line from its pick location to the customers location,
   * consuming the order line's reservation (what it holds; the rest from free stock), then the
   * order's shipped quantities and status.
   */
  async shipped(id: string, input: { date?: string }, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<{ moves: string[] }> {
    const shipment = await lockRow(this.ctx, 'warehouse_shipments', 'warehouse.shipments', id, trx);
    const order = await lockRow(this.ctx, 'warehouse_sales_orders', DEMAND, shipment.salesOrder, trx);
    const w = await warehouseOf(this.ctx, order.warehouse, trx);
    const date = input.date ?? today();
    const writer = orderWriter(actor);
    const lines = shipment.lines as OrderLine[];
    const orderLines = shipment.orderLines as number[];
    const picks = (shipment.picks ?? []) as { location?: string; lot?: string; serials?: string[] }[];
    const reservationIds = (order.reservations ?? []) as (string | null)[];
    const held = await this.held(reservationIds.filter((r): r is string => !!r), trx);
    const moves: MoveInput[] = [];
    lines.forEach((l, i) => {
      const orderLine = orderLines[i];
      const pick = picks[i] ?? {};
      const base: MoveInput = {
        kind: 'shipment', product: String(l.product), quantity: l.quantity, fromLocation: pick.location ?? w.location, toLocation: CUSTOMERS, date,
        ...(pick.lot ? { lot: pick.lot } : {}), ...(pick.serials ? { serials: pick.serials } : {}),
        source: { entity: DEMAND, id: order.id, line: String(orderLine) },
      };
      const reservation = reservationIds[orderLine];
      const holds = reservation ? held.get(reservation) ?? ZERO : ZERO;
      const quantity = dec(l.quantity);
      if (!reservation || holds.lte(0)) moves.push(base);
      else if (quantity.lte(holds)) moves.push({ ...base, reservation });
      else {
        // A back-ordered line ships what its reservation holds and the rest from free stock.
        moves.push({ ...base, quantity: qty(holds), reservation });
        moves.push({ ...base, quantity: qty(quantity.minus(holds)) });
      }
    });
    const posted = await this.stock.postMoves(moves, { actor: writer, trx, requestId, prefix: 'lines.', batch: true, reference: shipment.number });
    await this.ctx.repository('warehouse.shipments').update(id, { moves: posted.map((m) => m.id), date }, { actor: writer, trx, requestId, viaTransition: true });
    const shipped = quantities(order.shipped, (order.lines as unknown[]).length).map(dec);
    lines.forEach((l, i) => { shipped[orderLines[i]] = shipped[orderLines[i]].plus(l.quantity); });
    const stockLines = await this.stockLines(order.lines as OrderLine[], trx);
    const complete = [...stockLines].every((i) => shipped[i].gte((order.lines as OrderLine[])[i].quantity));
    await this.ctx.repository(DEMAND).update(order.id, { shipped: shipped.map(qty), status: complete ? 'shipped' : 'partlyShipped' }, { actor: writer, trx, requestId, viaTransition: true });
    return { moves: posted.map((m) => m.id) };
  }

  /** Positions of the lines that are stock products (a line without product or a service ships nothing). */
  private async stockLines(lines: OrderLine[], trx: Knex.Transaction): Promise<Set<number>> {
    const products = await this.stock.products(lines.map((l) => l.product ?? ''), trx);
    const out = new Set<number>();
    lines.forEach((l, i) => {
      const p = l.product ? products.get(l.product) : undefined;
      if (p && p.kind !== 'service') out.add(i);
    });
    return out;
  }

  /** Per order line: ordered − shipped − what open (picking or packed) shipments hold. */
  private async leftToShip(order: Row, trx: Knex.Transaction): Promise<Decimal[]> {
    const lines = order.lines as OrderLine[];
    const left = quantities(order.shipped, lines.length).map((s, i) => dec(lines[i].quantity).minus(s));
    const open = await this.ctx.table('warehouse_shipments', trx).where({ salesOrder: order.id }).whereIn('status', OPEN_SHIPMENT).select('lines', 'orderLines');
    for (const s of open) (s.orderLines as number[]).forEach((line, i) => { left[line] = left[line].minus((s.lines as OrderLine[])[i].quantity); });
    return left.map((l) => Decimal.max(l, ZERO));
  }

  /** What each reservation still holds. */
  private async held(ids: string[], trx: Knex.Transaction): Promise<Map<string, Decimal>> {
    if (ids.length === 0) return new Map();
    const rows = await this.ctx.table('warehouse_reservations', trx).whereIn('id', ids).where({ status: 'active' }).select('id', 'reserved', 'consumed', 'released');
    return new Map(rows.map((r: Row) => [String(r.id), dec(r.reserved).minus(r.consumed).minus(r.released)]));
  }

  /** Weight (kg) and volume (m³) of product quantities, from the products' stock settings. */
  async load(items: { product: string; quantity: string }[], trx: Knex.Transaction): Promise<{ weight: string; volume: string }> {
    const settings = await this.ctx.table('warehouse_products', trx).whereIn('product', [...new Set(items.map((i) => i.product))]).select('product', 'weight', 'volume');
    const byProduct = new Map<string, Row>(settings.map((s: Row) => [String(s.product), s]));
    let weight = ZERO;
    let volume = ZERO;
    for (const { product, quantity } of items) {
      const s = byProduct.get(product);
      weight = weight.plus(dec(s?.weight).times(quantity));
      volume = volume.plus(dec(s?.volume).times(quantity));
    }
    return { weight: weight.toFixed(3, Decimal.ROUND_HALF_UP), volume: volume.toFixed(4, Decimal.ROUND_HALF_UP) };
  }
}

/** The sales order's computed fields: totals always; a draft has no number, reservation or shipment. */
export function salesOrderFields(ctx: PluginContext, fields: Readonly<Row>): Row {
  const out = documentFields(ctx, fields);
  if (fields.status === undefined || fields.status === 'draft') {
    Object.assign(out, { number: null, reservations: [], reserved: [], shipped: quantities([], Array.isArray(fields.lines) ? fields.lines.length : 0) });
  }
  return out;
}
