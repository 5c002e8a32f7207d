import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { KubikiError, SYSTEM, fieldError, isKubikiError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import { Balances, subtree, type BalanceDelta, type BalanceRow } from './balances.ts';
import { loadPlaces, selfAndAncestors, type Place } from './places.ts';
import { Valuation, type Method } from './valuation.ts';
import { Decimal, NIL, ZERO, chunks, cost, dateText, dec, elevated, groupBy, invalid, isUuid, qty, rawOf, tableRef, today } from './util.ts';

// The stock layer's internal API: every route, workflow action and (later) order module posts
// moves and reserves stock through here. One call is one transaction (or joins the caller's):
//   1. the period lock (shared; closing a period takes it exclusively) and the closed-period check,
//   2. balances changed in key order (the row locks, anchors included),
//   3. availability, reservation and serial checks on the locked state,
//   4. valuation (the products' cost rows, in product order),
//   5. the records: moves and reservations through the entity repository (validated, audited,
//      evented), revaluations through the audited journal.

export type MoveKind = 'receipt' | 'shipment' | 'transfer' | 'adjustment' | 'scrap';
export const MOVE_KINDS: MoveKind[] = ['receipt', 'shipment', 'transfer', 'adjustment', 'scrap'];

export interface SourceRef { entity: string; id: string; line?: string }

/** A move to post (status done, the default) or plan (status planned). Quantities are decimal strings. */
export interface MoveInput {
  kind: MoveKind;
  status?: 'planned' | 'done';
  /** Posting date (YYYY-MM-DD); default today. Expected date of a planned move. */
  date?: string;
  product: string;
  quantity: string;
  /** The unit `quantity` is in: the stock unit (default), or the product's purchase or sales unit. */
  unit?: string;
  fromLocation: string;
  toLocation: string;
  lot?: string;
  /** Lot-tracked receipts: the lot by number (created when new). */
  lotNumber?: string;
  serials?: string[];
  /** Receipts: cost of one stock unit (default: the product's current cost). */
  unitCost?: string;
  /** Shipments: the reservation consumed. */
  reservation?: string;
  source?: SourceRef;
  memo?: string;
}

export interface CompleteInput { id: string; date?: string; lot?: string; lotNumber?: string; serials?: string[]; unitCost?: string }

export interface ReserveInput {
  product: string;
  /** Where: a location (internal), or a warehouse (its root location). */
  location?: string;
  warehouse?: string;
  lot?: string;
  quantity: string;
  demand: SourceRef;
  reference?: string;
}

export interface StockOptions {
  actor: Principal;
  /** Join the caller's transaction (a workflow step, an order module's own write). */
  trx?: Knex.Transaction;
  requestId?: string;
  /** Field prefix in errors (`moves.`); with `batch`, each item's index follows it (`moves.3.quantity`). */
  prefix?: string;
  batch?: boolean;
  /** Shown on the posting record (a count, an order number). */
  reference?: string;
}

/** The error prefix of item `i`. */
const itemPrefix = (options: { prefix?: string; batch?: boolean }, i: number): string => `${options.prefix ?? ''}${options.batch ? `${i}.` : ''}`;

interface ProductInfo {
  id: string;
  sku: string;
  kind: string;
  tracking: 'none' | 'lot' | 'serial';
  method: Method;
  stockUnit: string | null;
  purchaseUnit: string | null;
  purchaseFactor: Decimal | null;
  salesUnit: string | null;
  salesFactor: Decimal | null;
}

interface ReservationRow {
  id: string; product: string; location: string; lot: string | null; status: string;
  quantity: string; reserved: string; backordered: string; consumed: string; released: string;
}
const heldOf = (r: ReservationRow): Decimal => dec(r.reserved).minus(dec(r.consumed)).minus(dec(r.released));

type Mode = 'post' | 'plan' | 'complete' | 'cancel';
interface Op {
  field: string;
  order: number;
  mode: Mode;
  id: string;
  kind: MoveKind;
  date: string;
  product: ProductInfo;
  qty: Decimal;
  from: Place;
  to: Place;
  lot: string | null;
  /** complete/cancel: the planned move, and the lot its quantities were recorded under. */
  planned?: string;
  plannedLot?: string | null;
  serials: string[];
  unitCost?: Decimal;
  reservation?: ReservationRow;
  /** Where the reservation holds its stock. */
  held?: Place;
  reverses?: { id: string; value: Decimal };
  valuation: 'in' | 'out' | 'none';
  /** New moves: their fields; existing ones: the fields that change. */
  fields: Record<string, unknown>;
}

/** Grants a posting needs besides the caller's own route permission. */
const POSTING_WRITES = ['warehouse.postings.create', 'warehouse.plannedMoves.create', 'warehouse.plannedMoves.update', 'warehouse.reservations.create', 'warehouse.reservations.update', 'warehouse.reservations.read', 'warehouse.lots.create', 'base.products.read'];

const RECEIPT_FROM = new Set(['supplier', 'customer']);
const SHIPMENT_TO = new Set(['customer', 'supplier']);

export const valuationOf = (from: Place, to: Place): 'in' | 'out' | 'none' => (from.stockable === to.stockable ? 'none' : to.stockable ? 'in' : 'out');

/** Why a kind does not fit the two locations, or undefined. */
function kindProblem(kind: MoveKind, from: Place, to: Place): string | undefined {
  switch (kind) {
    case 'receipt': return RECEIPT_FROM.has(from.type) && to.stockable ? undefined : 'a receipt goes from a supplier (or customer) location into an internal or transit location';
    case 'shipment': return from.stockable && SHIPMENT_TO.has(to.type) ? undefined : 'a shipment goes from an internal or transit location to a customer (or supplier) location';
    case 'transfer': return from.stockable && to.stockable ? undefined : 'a transfer goes between internal or transit locations';
    case 'adjustment': return (from.type === 'inventory-loss' && to.stockable) || (from.stockable && to.type === 'inventory-loss') ? undefined : 'an adjustment goes between an inventory-loss location and an internal or transit location';
    case 'scrap': return from.stockable && to.type === 'scrap' ? undefined : 'scrap goes from an internal or transit location to a scrap location';
  }
}

export class StockService {
  readonly balances: Balances;
  readonly valuation: Valuation;

  constructor(private readonly ctx: PluginContext) {
    this.balances = new Balances(ctx);
    this.valuation = new Valuation(ctx);
  }

  // ── Transactions ──────────────────────────────────────────────────────────────────────────

  /** Runs `work` in the caller's transaction, or its own (retried on a deadlock or serialization failure, which ordered locking makes rare). */
  async run<T>(options: { trx?: Knex.Transaction }, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
    if (options.trx) return work(options.trx);
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.ctx.transaction(work);
      } catch (error) {
        const code = (error as { code?: string }).code;
        if (attempt < 4 && (code === '40P01' || code === '40001')) continue;
        throw error;
      }
    }
  }

  private periodLockKey(): string {
    return `kubiki:warehouse-periods:${tableRef(this.ctx, 'warehouse_periods')}`;
  }

  /** Postings hold the period lock shared; closing or reopening a period holds it exclusively. */
  async lockPeriods(trx: Knex.Transaction, exclusive: boolean): Promise<void> {
    await trx.raw(`select ${exclusive ? 'pg_advisory_xact_lock' : 'pg_advisory_xact_lock_shared'}(hashtext(?))`, [this.periodLockKey()]);
  }

  /** The last closed stock period (nothing is posted on or before its date). */
  async lastClosed(trx: Knex | Knex.Transaction): Promise<{ id: string; date: string } | undefined> {
    const row = await this.ctx.table('warehouse_periods', trx).where({ status: 'closed' }).orderBy('date', 'desc').first('id', 'date');
    return row ? { id: row.id, date: dateText(row.date) } : undefined;
  }

  // ── Moves ─────────────────────────────────────────────────────────────────────────────────

  /** Posts (or plans) moves; answers their records in the order given. */
  async postMoves(inputs: MoveInput[], options: StockOptions): Promise<ApiRecord[]> {
    if (inputs.length === 0) return [];
    return this.run(options, async (trx) => {
      const ops = await this.resolveNew(inputs, options, trx, options.actor);
      return this.apply(ops, options, trx);
    });
  }

  /** Completes planned moves (they are posted, dated `date` or today). */
  async completeMoves(inputs: CompleteInput[], options: StockOptions): Promise<ApiRecord[]> {
    return this.run(options, async (trx) => {
      const ops = await this.resolveExisting(inputs.map((i) => ({ ...i, mode: 'complete' as const })), options, trx, options.actor);
      return this.apply(ops, options, trx);
    });
  }

  /** Cancels planned moves (their incoming/outgoing quantities go). */
  async cancelMoves(ids: string[], options: StockOptions): Promise<ApiRecord[]> {
    return this.run(options, async (trx) => {
      const ops = await this.resolveExisting(ids.map((id) => ({ id, mode: 'cancel' as const })), options, trx, options.actor);
      return this.apply(ops, options, trx);
    });
  }

  /** Posts the reversal of a done move: the same quantity back, at the original's value. A move is reversed once. */
  async reverseMove(id: string, input: { date?: string; memo?: string }, options: StockOptions): Promise<ApiRecord> {
    return this.run(options, async (trx) => {
      // The row lock makes two concurrent reversals of one move take turns: the second then sees the first.
      const original = isUuid(id) ? await this.ctx.table('warehouse_moves', trx).where({ id }).forUpdate().first() : undefined;
      if (!original) {
        const planned = isUuid(id) ? await this.ctx.table('warehouse_planned_moves', trx).where({ id }).first('status') : undefined;
        if (planned) throw this.ctx.error('move-posted', `move ${id} is ${planned.status}: only done moves are reversed (cancel a planned move instead)`, { issues: [{ field: 'id', rule: 'done', message: `the move is ${planned.status}` }] });
        throw new KubikiError('not-found', `warehouse.moves ${id} does not exist`, { extra: { entity: 'warehouse.moves', id } });
      }
      if (original.reverses) throw new KubikiError('conflict', `move ${id} is itself a reversal; post the move again instead of reversing the reversal`, { issues: [{ field: 'id', rule: 'not-a-reversal', message: 'a reversal is not reversed' }] });
      const by = await this.ctx.table('warehouse_moves', trx).where({ reverses: id }).first('id');
      if (by) throw new KubikiError('conflict', `move ${id} was already reversed by move ${by.id}`, { issues: [{ field: 'id', rule: 'reversed-once', message: 'a move is reversed at most once' }], extra: { reversedBy: by.id } });
      const [op] = await this.resolveNew([{
        kind: original.kind, date: input.date, product: original.product, quantity: String(original.quantity),
        fromLocation: original.toLocation, toLocation: original.fromLocation, ...(original.lot ? { lot: original.lot } : {}),
        ...(Array.isArray(original.serials) && original.serials.length ? { serials: original.serials } : {}),
        ...(original.sourceEntity ? { source: { entity: original.sourceEntity, id: original.sourceId, ...(original.sourceLine ? { line: original.sourceLine } : {}) } } : {}),
        memo: input.memo ?? `Reversal of ${original.memo ?? id}`,
      }], { prefix: options.prefix }, trx, options.actor, { reversal: true });
      const value = (await this.valuation.effectiveValues(trx, [id])).get(id) ?? ZERO;
      op.reverses = { id, value };
      op.fields.reverses = id;
      const [record] = await this.apply([op], options, trx);
      return record;
    });
  }

  /** One done move of the ledger. */
  async getMove(id: string, trx?: Knex | Knex.Transaction): Promise<ApiRecord> {
    const row = isUuid(id) ? await this.ctx.table('warehouse_moves', trx).where({ id }).first() : undefined;
    if (!row) throw new KubikiError('not-found', `warehouse.moves ${id} does not exist${isUuid(id) && await this.ctx.table('warehouse_planned_moves', trx).where({ id }).first('id') ? ' in the ledger: it is a planned move (GET /api/warehouse/plannedMoves/{id})' : ''}`, { extra: { entity: 'warehouse.moves', id } });
    return moveRecord(row);
  }

  /** Done moves in ledger order, filtered, keyset-paged by (date, seq). */
  async listMoves(query: { product?: string; kind?: string; location?: string; sourceEntity?: string; sourceId?: string; reservation?: string; reverses?: string; posting?: string; from?: string; to?: string; limit: number; cursor?: string }): Promise<{ data: ApiRecord[]; next: string | null }> {
    const q = this.ctx.table('warehouse_moves as m').orderBy([{ column: 'm.date' }, { column: 'm.seq' }]).limit(query.limit + 1).select('m.*');
    for (const f of ['product', 'kind', 'sourceEntity', 'sourceId', 'reservation', 'reverses', 'posting'] as const) if (query[f] !== undefined) q.where(`m.${f}`, query[f]);
    if (query.from) q.where('m.date', '>=', query.from);
    if (query.to) q.where('m.date', '<=', query.to);
    if (query.location) {
      const inside = this.ctx.table('warehouse_locations').where('id', query.location).orWhere('path', 'like', `%/${query.location}/%`).select('id');
      q.where((w) => { w.whereIn('m.fromLocation', inside).orWhereIn('m.toLocation', inside.clone()); });
    }
    if (query.cursor) {
      let c: unknown;
      try { c = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')); } catch { c = undefined; }
      if (!Array.isArray(c) || typeof c[0] !== 'string' || typeof c[1] !== 'number') throw fieldError('bad-query', 'cursor', 'format', 'cursor must be the "next" value of the previous page');
      q.whereRaw('(m.date, m.seq) > (?::date, ?)', [c[0], c[1]]);
    }
    const rows: Record<string, unknown>[] = await q;
    const more = rows.length > query.limit;
    if (more) rows.pop();
    const last = rows[rows.length - 1];
    return { data: rows.map(moveRecord), next: more && last ? Buffer.from(JSON.stringify([dateText(last.date), Number(last.seq)])).toString('base64url') : null };
  }

  // ── Reservations ──────────────────────────────────────────────────────────────────────────

  /**
   * Reserves stock for demand lines. Refused beyond what is available in the location and every
   * location above it (409 warehouse.insufficient-stock), or back-ordered where the warehouse says
   * so. A demand line with an active reservation answers that one (`created: false`).
   */
  async reserve(inputs: ReserveInput[], options: StockOptions): Promise<{ record: ApiRecord; created: boolean }[]> {
    if (inputs.length === 0) return [];
    return this.run(options, async (trx) => {
      const products = await this.products(inputs.map((i) => i.product), trx);
      const places = await loadPlaces(this.ctx, inputs.map((i) => i.location).filter((l): l is string => !!l), trx, inputs.map((i) => i.warehouse).filter((w): w is string => !!w));
      const locationOf = (i: ReserveInput) => i.location ?? places.get(i.warehouse ?? '')?.id;
      const lots = await this.lotRows(inputs.map((i) => i.lot).filter((l): l is string => !!l), trx);
      const demands = new Map<string, string>();
      const lines = inputs.map((input, i) => {
        const f = (name: string) => `${itemPrefix(options, i)}${name}`;
        const key = this.demandKey(input.demand);
        if (demands.has(key)) throw invalid(f('demand'), 'unique', `${f('demand')}: the same demand line is also in ${demands.get(key)}`);
        demands.set(key, f('demand'));
        const product = products.get(input.product);
        if (!product) throw fieldError('reference-not-found', f('product'), 'x-ref', `${f('product')}: no base.products record ${input.product}`);
        if (product.kind === 'service') throw invalid(f('product'), 'stockable', `${f('product')}: ${product.sku} is a service, which is not kept in stock`);
        if (input.location && input.warehouse) throw invalid(f('warehouse'), 'one-of', `give ${f('location')} or ${f('warehouse')}, not both`);
        if (!input.location && !input.warehouse) throw invalid(f('location'), 'required', `${f('location')} (or ${f('warehouse')}) is required: where the stock is reserved`);
        const locationId = locationOf(input);
        if (!locationId) throw fieldError('reference-not-found', f('warehouse'), 'x-ref', `${f('warehouse')}: no warehouse.warehouses record ${input.warehouse}`);
        const place = places.get(locationId);
        if (!place) throw fieldError('reference-not-found', f('location'), 'x-ref', `${f('location')}: no warehouse.locations record ${locationId}`);
        if (place.type !== 'internal') throw invalid(f('location'), 'internal', `${f('location')}: stock is reserved in internal locations, not in ${place.type} location ${place.code}`);
        if (!place.active) throw invalid(f('location'), 'active', `${f('location')}: location ${place.code} is inactive`);
        let lot: string | null = null;
        if (input.lot) {
          const row = lots.get(input.lot);
          if (!row || row.product !== product.id) throw fieldError('reference-not-found', f('lot'), 'x-ref', `${f('lot')}: no lot ${input.lot} of product ${product.sku}`);
          lot = row.id;
        }
        const quantity = this.stockQuantity(product, input.quantity, undefined, f('quantity'));
        return { input, product, place, lot, quantity, f };
      });
      // The quantities asked for go onto the balance rows at once (the locks, anchors included, in
      // key order); what cannot be held is taken back below, on the locked state.
      const at = (l: (typeof lines)[number]) => ({ product: l.product.id, location: l.place.id, lot: l.lot ?? NIL, root: l.place.root });
      await this.balances.apply(trx, lines.map((l) => ({ ...at(l), reserved: l.quantity })));
      const existing = await this.activeByDemand(trx, lines.map((l) => l.input.demand));
      const rows = await this.balances.rowsIn(trx, lines.map((l) => ({ product: l.product.id, root: l.place.root })));
      // The state before this call: the asked quantities taken off again, in memory.
      for (const l of lines) this.addReserved(rows.filter((r) => r.product === l.product.id), l.place, l.lot ?? NIL, l.quantity.negated());
      const byProduct = groupBy(rows, (r) => r.product);
      const results: { record?: ApiRecord; fields?: Record<string, unknown>; created: boolean }[] = [];
      const deltas: BalanceDelta[] = [];
      for (const line of lines) {
        const found = existing.get(this.demandKey(line.input.demand));
        if (found) {
          deltas.push({ ...at(line), reserved: line.quantity.negated() });
          results.push({ record: found, created: false });
          continue;
        }
        const productRows = byProduct.get(line.product.id) ?? [];
        const available = this.availableFor(productRows, line.place, line.lot);
        const take = Decimal.max(ZERO, Decimal.min(line.quantity, available));
        if (take.lt(line.quantity) && line.place.reservationPolicy === 'refuse') {
          throw this.insufficient(line.f('quantity'), line.product, line.place, available, line.quantity, 'reserve');
        }
        if (take.lt(line.quantity)) deltas.push({ ...at(line), reserved: take.minus(line.quantity) });
        if (take.gt(0)) {
          this.addReserved(productRows, line.place, line.lot ?? NIL, take);
          byProduct.set(line.product.id, productRows);
        }
        results.push({
          created: true,
          fields: {
            product: line.product.id, location: line.place.id, ...(line.lot ? { lot: line.lot } : {}), quantity: qty(line.quantity),
            reserved: qty(take), backordered: qty(line.quantity.minus(take)), consumed: qty(0), released: qty(0), status: 'active',
            demandEntity: line.input.demand.entity, demandId: line.input.demand.id, ...(line.input.demand.line ? { demandLine: line.input.demand.line } : {}),
            ...(line.input.reference ? { reference: line.input.reference } : {}),
          },
        });
      }
      await this.balances.apply(trx, deltas);
      const fresh = results.filter((r) => r.fields);
      const created = fresh.length ? await this.ctx.repository('warehouse.reservations').createMany(fresh.map((r) => r.fields), { actor: this.writer(options.actor), trx, requestId: options.requestId, viaTransition: true }) : [];
      let n = 0;
      return results.map((r) => (r.fields ? { record: created[n++], created: true } : { record: r.record!, created: false }));
    });
  }

  /** Gives back what a reservation holds (all of it, dropping any back-order, or `quantity`). */
  async release(id: string, input: { quantity?: string }, options: StockOptions): Promise<ApiRecord> {
    return this.run(options, async (trx) => {
      const { row, place } = await this.lockReservation(id, trx);
      const held = heldOf(row);
      const quantity = input.quantity === undefined ? held : dec(input.quantity);
      if (quantity.gt(held)) throw invalid('quantity', 'maximum', `quantity ${qty(quantity)} is more than the reservation holds (${qty(held)})`);
      const all = quantity.eq(held);
      await this.balances.apply(trx, [{ product: row.product, location: row.location, lot: row.lot ?? NIL, root: place.root, reserved: quantity.negated() }]);
      return this.ctx.repository('warehouse.reservations').update(id, {
        released: qty(dec(row.released).plus(quantity)), ...(all ? { backordered: qty(0), status: 'released' } : {}),
      }, { actor: this.writer(options.actor), trx, requestId: options.requestId, viaTransition: true });
    });
  }

  /** Reserves what has become available of a reservation's back-order. */
  async fill(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.run(options, async (trx) => {
      const { row, place } = await this.lockReservation(id, trx);
      const backordered = dec(row.backordered);
      if (backordered.isZero()) return this.ctx.repository('warehouse.reservations').get(id, { actor: SYSTEM, trx });
      const rows = await this.balances.rowsIn(trx, [{ product: row.product, root: place.root }]);
      const take = Decimal.max(ZERO, Decimal.min(backordered, this.availableFor(rows, place, row.lot)));
      if (take.isZero()) return this.ctx.repository('warehouse.reservations').get(id, { actor: SYSTEM, trx });
      await this.balances.apply(trx, [{ product: row.product, location: row.location, lot: row.lot ?? NIL, root: place.root, reserved: take }]);
      return this.ctx.repository('warehouse.reservations').update(id, { reserved: qty(dec(row.reserved).plus(take)), backordered: qty(backordered.minus(take)) }, { actor: this.writer(options.actor), trx, requestId: options.requestId, viaTransition: true });
    });
  }

  private async lockReservation(id: string, trx: Knex.Transaction): Promise<{ row: ReservationRow; place: Place }> {
    const before: ReservationRow | undefined = isUuid(id) ? await this.ctx.table('warehouse_reservations', trx).where({ id }).first() : undefined;
    if (!before) throw new KubikiError('not-found', `warehouse.reservations ${id} does not exist`, { extra: { entity: 'warehouse.reservations', id } });
    const place = (await loadPlaces(this.ctx, [before.location], trx)).get(before.location)!;
    await this.balances.apply(trx, [{ product: before.product, location: before.location, lot: before.lot ?? NIL, root: place.root }]);
    const row: ReservationRow = await this.ctx.table('warehouse_reservations', trx).where({ id }).first();
    if (row.status !== 'active') throw this.ctx.error('reservation-closed', `reservation ${id} is ${row.status}`, { issues: [{ field: 'id', rule: 'active', message: `the reservation is ${row.status}` }] });
    return { row, place };
  }

  // ── Availability ──────────────────────────────────────────────────────────────────────────

  /** On hand, reserved, available, incoming and outgoing of a product in a location and everything under it. */
  async availability(product: string, location: string, lot?: string, trx?: Knex | Knex.Transaction): Promise<{ onHand: string; reserved: string; available: string; incoming: string; outgoing: string }> {
    const raw = rawOf(this.ctx, trx);
    const q = this.ctx.table('warehouse_balances as b', trx).join(this.ctx.table('warehouse_locations', trx).select('id', 'path').as('l'), 'l.id', 'b.location_id')
      .where('b.product_id', product).where((w) => { w.where('b.location_id', location).orWhere('l.path', 'like', `%/${location}/%`); });
    if (lot) q.where('b.lot_id', lot);
    const [row] = await q.select(
      raw('coalesce(sum(b.on_hand), 0) as on_hand'), raw('coalesce(sum(b.reserved), 0) as reserved'),
      raw('coalesce(sum(b.incoming), 0) as incoming'), raw('coalesce(sum(b.outgoing), 0) as outgoing'),
    ) as { on_hand: string; reserved: string; incoming: string; outgoing: string }[];
    return { onHand: qty(dec(row.on_hand)), reserved: qty(dec(row.reserved)), available: qty(dec(row.on_hand).minus(dec(row.reserved))), incoming: qty(dec(row.incoming)), outgoing: qty(dec(row.outgoing)) };
  }

  /** What can still be taken at `place`: the least available in it and in every location above it (lot: that lot's too). */
  private availableFor(rows: readonly BalanceRow[], place: Place, lot: string | null): Decimal {
    let least: Decimal | undefined;
    for (const a of selfAndAncestors(place)) {
      const general = subtree(rows, a).available;
      least = least === undefined || general.lt(least) ? general : least;
      if (lot && lot !== NIL) {
        const own = subtree(rows, a, lot).available;
        if (own.lt(least)) least = own;
      }
    }
    return least ?? ZERO;
  }

  /** Adds to a row's reserved quantity in memory (rows of one product). */
  private addReserved(rows: BalanceRow[], place: Place, lot: string, quantity: Decimal): void {
    const row = rows.find((r) => r.location === place.id && r.lot === lot);
    if (row) row.reserved = row.reserved.plus(quantity);
    else rows.push({ product: '', location: place.id, lot, onHand: ZERO, reserved: quantity, ancestors: place.ancestors });
  }

  private insufficient(field: string, product: ProductInfo, place: Place, available: Decimal, wanted: Decimal, what: 'move' | 'reserve'): KubikiError {
    const shown = Decimal.max(available, ZERO);
    return this.ctx.error('insufficient-stock', `${field}: only ${qty(shown)} of ${product.sku} ${what === 'reserve' ? 'can be reserved' : 'is available'} in ${place.code} (and the locations above it); ${what === 'reserve' ? 'reserving' : 'the move takes'} ${qty(wanted)}`, {
      issues: [{ field, rule: 'available', message: `only ${qty(shown)} available, ${qty(wanted)} wanted` }],
      extra: { product: product.id, location: place.id, available: qty(shown), requested: qty(wanted) },
    });
  }

  // ── Resolving inputs ──────────────────────────────────────────────────────────────────────

  private writer(actor: Principal): Principal {
    return actor === SYSTEM ? SYSTEM : elevated(actor, POSTING_WRITES);
  }

  /** Catalogue products with their stock settings. */
  async products(ids: string[], trx: Knex | Knex.Transaction): Promise<Map<string, ProductInfo>> {
    const wanted = [...new Set(ids.filter(isUuid))];
    const out = new Map<string, ProductInfo>();
    if (wanted.length === 0) return out;
    const base = await this.ctx.repository('base.products').getMany(wanted, { actor: SYSTEM, trx });
    const settings = new Map<string, Record<string, unknown>>((await this.ctx.table('warehouse_products', trx).whereIn('product', wanted)).map((s: Record<string, unknown>) => [String(s.product), s]));
    for (const [id, p] of base) {
      const s = settings.get(id) ?? {};
      out.set(id, {
        id, sku: String(p.sku), kind: String(p.kind ?? 'goods'),
        tracking: s.tracking === 'lot' || s.tracking === 'serial' ? s.tracking : 'none',
        method: s.valuation === 'fifo' ? 'fifo' : 'average',
        stockUnit: (s.stockUnit as string | undefined) ?? (p.unit as string | undefined) ?? null,
        purchaseUnit: (s.purchaseUnit as string | null) ?? null, purchaseFactor: s.purchaseFactor ? dec(s.purchaseFactor) : null,
        salesUnit: (s.salesUnit as string | null) ?? null, salesFactor: s.salesFactor ? dec(s.salesFactor) : null,
      });
    }
    return out;
  }

  /** A quantity in stock units: converted from the purchase or sales unit when `unit` names one. */
  private stockQuantity(product: ProductInfo, quantity: string, unit: string | undefined, field: string): Decimal {
    let q = dec(quantity);
    if (unit && unit !== product.stockUnit) {
      const factor = unit === product.purchaseUnit ? product.purchaseFactor : unit === product.salesUnit ? product.salesFactor : null;
      if (!factor) throw invalid(field.replace(/quantity$/, 'unit'), 'unit', `${field.replace(/quantity$/, 'unit')}: ${product.sku} is kept in its stock unit; give the quantity in it or in the product's purchase or sales unit (with its factor set in /api/warehouse/products)`);
      q = q.times(factor);
      if (q.decimalPlaces() > 3) throw invalid(field, 'precision', `${field}: ${quantity} × ${factor.toString()} = ${q.toString()} stock units has more than 3 decimals`);
    }
    if (q.lte(0)) throw invalid(field, 'positive', `${field} must be greater than zero`);
    if (product.tracking === 'serial' && !q.isInteger()) throw invalid(field, 'integer', `${field}: ${product.sku} has serial numbers, so it moves in whole units`);
    return q;
  }

  private async lotRows(ids: string[], trx: Knex | Knex.Transaction): Promise<Map<string, { id: string; product: string; number: string }>> {
    const wanted = [...new Set(ids.filter(isUuid))];
    if (wanted.length === 0) return new Map();
    const rows: { id: string; product: string; number: string }[] = await this.ctx.table('warehouse_lots', trx).whereIn('id', wanted).select('id', 'product', 'number');
    return new Map(rows.map((r) => [r.id, r]));
  }

  private demandKey = (d: SourceRef): string => `${d.entity}|${d.id}|${d.line ?? ''}`;

  private async activeByDemand(trx: Knex.Transaction, demands: SourceRef[]): Promise<Map<string, ApiRecord>> {
    if (demands.length === 0) return new Map();
    const rows = await this.ctx.table('warehouse_reservations', trx).where({ status: 'active' })
      .whereIn(['demandEntity', 'demandId'], [...new Map(demands.map((d) => [`${d.entity}|${d.id}`, [d.entity, d.id]])).values()]).select('id', 'demandEntity', 'demandId', 'demandLine');
    if (rows.length === 0) return new Map();
    const records = await this.ctx.repository('warehouse.reservations').getMany(rows.map((r: { id: string }) => r.id), { actor: SYSTEM, trx });
    return new Map(rows.map((r: { id: string; demandEntity: string; demandId: string; demandLine: string | null }) => [`${r.demandEntity}|${r.demandId}|${r.demandLine ?? ''}`, records.get(r.id)!]));
  }

  /** Finds lots by number for lot-tracked receipts, creating the missing ones (audited). */
  private async lotsByNumber(trx: Knex.Transaction, wanted: { product: string; number: string }[], actor: Principal): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    if (wanted.length === 0) return out;
    const unique = [...new Map(wanted.map((w) => [`${w.product}|${w.number}`, { product: w.product, number: w.number }])).values()];
    const find = async () => {
      const rows: { id: string; product: string; number: string }[] = await this.ctx.table('warehouse_lots', trx).whereIn(['product', 'number'], unique.map((u) => [u.product, u.number])).select('id', 'product', 'number');
      for (const r of rows) out.set(`${r.product}|${r.number}`, r.id);
    };
    await find();
    const missing = unique.filter((u) => !out.has(`${u.product}|${u.number}`));
    if (missing.length) {
      try {
        // In a savepoint: a concurrent receipt creating the same lot makes this one wait, then find it.
        await trx.transaction((sp) => this.ctx.repository('warehouse.lots').createMany(missing, { actor: this.writer(actor), trx: sp }));
      } catch (error) {
        if (!(isKubikiError(error) && error.code === 'unique-violation')) throw error;
      }
      await find();
    }
    return out;
  }

  /** Checks new moves and resolves their references; errors name the field (`moves.3.lot`). */
  private async resolveNew(inputs: MoveInput[], at: { prefix?: string; batch?: boolean }, trx: Knex.Transaction, actor: Principal, options: { reversal?: boolean } = {}): Promise<Op[]> {
    const products = await this.products(inputs.map((m) => m.product), trx);
    const reservationIds = inputs.map((m) => m.reservation).filter((r): r is string => !!r);
    const reservations = new Map<string, ReservationRow>(reservationIds.length ? (await this.ctx.table('warehouse_reservations', trx).whereIn('id', reservationIds)).map((r: ReservationRow) => [r.id, r]) : []);
    const places = await loadPlaces(this.ctx, [...inputs.flatMap((m) => [m.fromLocation, m.toLocation]), ...[...reservations.values()].map((r) => r.location)], trx);
    const lots = await this.lotRows(inputs.map((m) => m.lot).filter((l): l is string => !!l), trx);
    const seenSerials = new Map<string, string>();
    const lotWanted: { i: number; product: string; number: string }[] = [];
    const ops = inputs.map((m, i): Op => {
      const prefix = itemPrefix(at, i);
      const f = (name: string) => `${prefix}${name}`;
      const product = products.get(m.product);
      if (!product) throw fieldError('reference-not-found', f('product'), 'x-ref', `${f('product')}: no base.products record ${m.product}`);
      if (product.kind === 'service') throw invalid(f('product'), 'stockable', `${f('product')}: ${product.sku} is a service, which is not kept in stock`);
      const from = places.get(m.fromLocation);
      const to = places.get(m.toLocation);
      if (!from) throw fieldError('reference-not-found', f('fromLocation'), 'x-ref', `${f('fromLocation')}: no warehouse.locations record ${m.fromLocation}`);
      if (!to) throw fieldError('reference-not-found', f('toLocation'), 'x-ref', `${f('toLocation')}: no warehouse.locations record ${m.toLocation}`);
      if (from.id === to.id) throw invalid(f('toLocation'), 'different', `${f('toLocation')} must differ from ${f('fromLocation')}`);
      if (!options.reversal) {
        if (!from.active) throw invalid(f('fromLocation'), 'active', `${f('fromLocation')}: location ${from.code} is inactive`);
        if (!to.active) throw invalid(f('toLocation'), 'active', `${f('toLocation')}: location ${to.code} is inactive`);
        const problem = kindProblem(m.kind, from, to);
        if (problem) throw invalid(f('kind'), 'locations', `${f('kind')}: ${problem} (here ${from.type} ${from.code} → ${to.type} ${to.code})`);
      }
      const status = m.status ?? 'done';
      const quantity = this.stockQuantity(product, m.quantity, m.unit, f('quantity'));
      const valuation = valuationOf(from, to);
      if (m.unitCost !== undefined && valuation !== 'in') throw invalid(f('unitCost'), 'receipts-only', `${f('unitCost')}: only moves into stock are given a cost; issues take theirs from the valuation (${product.method})`);
      // Lots and serials, as the product is tracked.
      let lot: string | null = null;
      if (m.lot && m.lotNumber) throw invalid(f('lotNumber'), 'one-of', `give ${f('lot')} or ${f('lotNumber')}, not both`);
      if ((m.lot || m.lotNumber) && product.tracking !== 'lot') throw invalid(f(m.lot ? 'lot' : 'lotNumber'), 'tracking', `${f(m.lot ? 'lot' : 'lotNumber')}: ${product.sku} is not lot-tracked (tracking ${product.tracking})`);
      if (m.lot) {
        const row = lots.get(m.lot);
        if (!row || row.product !== product.id) throw fieldError('reference-not-found', f('lot'), 'x-ref', `${f('lot')}: no lot ${m.lot} of product ${product.sku}`);
        lot = row.id;
      } else if (m.lotNumber) {
        if (!(to.stockable && !from.stockable)) throw invalid(f('lotNumber'), 'receipts-only', `${f('lotNumber')}: a lot is made by a move into stock; name an existing lot with ${f('lot')}`);
        lotWanted.push({ i, product: product.id, number: m.lotNumber });
      } else if (product.tracking === 'lot' && status === 'done') {
        throw invalid(f('lot'), 'required', `${f('lot')} is required: ${product.sku} is lot-tracked (give lot, or lotNumber on a receipt)`);
      }
      const serials = m.serials ?? [];
      if (serials.length && product.tracking !== 'serial') throw invalid(f('serials'), 'tracking', `${f('serials')}: ${product.sku} has no serial numbers (tracking ${product.tracking})`);
      if (product.tracking === 'serial' && (status === 'done' || serials.length)) {
        if (serials.length !== quantity.toNumber()) throw invalid(f('serials'), 'count', `${f('serials')}: ${product.sku} has serial numbers; give one per unit (${qty(quantity)} units, ${serials.length} serials)`);
        for (const s of serials) {
          const key = `${product.id}|${s}`;
          if (seenSerials.has(key)) throw invalid(f('serials'), 'unique', `${f('serials')}: serial ${s} appears twice (also in ${seenSerials.get(key)})`);
          seenSerials.set(key, f('serials'));
        }
      }
      let reservation: ReservationRow | undefined;
      if (m.reservation) {
        reservation = reservations.get(m.reservation);
        if (!reservation) throw fieldError('reference-not-found', f('reservation'), 'x-ref', `${f('reservation')}: no warehouse.reservations record ${m.reservation}`);
        if (reservation.product !== product.id) throw invalid(f('reservation'), 'product', `${f('reservation')} holds another product`);
        const held = places.get(reservation.location)!;
        if (!(from.id === held.id || from.ancestors.includes(held.id)) || to.stockable) throw invalid(f('reservation'), 'location', `${f('reservation')}: a reservation held in ${held.code} is consumed by a move out of stock from ${held.code} or a location under it`);
        if (reservation.lot && m.lot !== reservation.lot) throw invalid(f('lot'), 'reservation', `${f('lot')} must be the reserved lot ${reservation.lot}`);
      }
      const date = m.date ?? today();
      return {
        field: prefix, order: i, mode: status === 'planned' ? 'plan' : 'post', id: uuidv7(), kind: m.kind, date, product, qty: quantity, from, to, lot, serials,
        unitCost: m.unitCost !== undefined ? dec(m.unitCost) : undefined, reservation, held: reservation ? places.get(reservation.location) : undefined, valuation,
        fields: {
          kind: m.kind, status, date, product: product.id, quantity: qty(quantity),
          ...(m.unit && m.unit !== product.stockUnit ? { enteredQuantity: qty(dec(m.quantity)), enteredUnit: m.unit } : {}),
          fromLocation: from.id, toLocation: to.id, ...(serials.length ? { serials } : {}), valuation,
          ...(m.unitCost !== undefined ? { unitCost: m.unitCost } : {}),
          ...(m.reservation ? { reservation: m.reservation } : {}),
          ...(m.source ? { sourceEntity: m.source.entity, sourceId: m.source.id, ...(m.source.line ? { sourceLine: m.source.line } : {}) } : {}),
          ...(m.memo ? { memo: m.memo } : {}),
        },
      };
    });
    if (lotWanted.length) {
      const found = await this.lotsByNumber(trx, lotWanted, actor);
      for (const w of lotWanted) ops[w.i].lot = found.get(`${w.product}|${w.number}`)!;
    }
    for (const op of ops) if (op.lot) op.fields.lot = op.lot;
    return ops;
  }

  /** Planned moves to complete or cancel, locked. */
  private async resolveExisting(inputs: (Partial<CompleteInput> & { id: string; mode: 'complete' | 'cancel' })[], at: { prefix?: string; batch?: boolean }, trx: Knex.Transaction, actor: Principal): Promise<Op[]> {
    const ids = inputs.map((i) => i.id);
    const rows = new Map<string, Record<string, any>>((await this.ctx.table('warehouse_planned_moves', trx).whereIn('id', ids.filter(isUuid)).orderBy('id').forUpdate()).map((r: Record<string, any>) => [r.id, r]));
    const ops: Op[] = [];
    const plannedLots = new Map<string, string | null>();
    const asNew: MoveInput[] = [];
    inputs.forEach((input, i) => {
      const row = rows.get(input.id);
      const f = (name: string) => `${itemPrefix(at, i)}${name}`;
      if (!row) throw new KubikiError('not-found', `warehouse.plannedMoves ${input.id} does not exist (done moves are in the ledger and are not completed again)`, { extra: { entity: 'warehouse.plannedMoves', id: input.id } });
      if (row.status !== 'planned') throw this.ctx.error('move-posted', `move ${input.id} is ${row.status}: only planned moves are ${input.mode === 'complete' ? 'completed' : 'cancelled'}`, { issues: [{ field: f('id'), rule: 'planned', message: `the move is ${row.status}` }] });
      plannedLots.set(row.id, row.lot ?? null);
      asNew.push({
        kind: row.kind, status: input.mode === 'complete' ? 'done' : 'planned', date: input.mode === 'complete' ? input.date ?? today() : dateText(row.date),
        product: row.product, quantity: String(row.quantity), fromLocation: row.fromLocation, toLocation: row.toLocation,
        ...(input.lotNumber ? { lotNumber: input.lotNumber } : (input.lot ?? row.lot) ? { lot: input.lot ?? row.lot } : {}),
        ...((input.serials ?? row.serials)?.length ? { serials: input.serials ?? row.serials } : {}),
        ...(input.unitCost !== undefined ? { unitCost: input.unitCost } : row.unitCost != null ? { unitCost: String(row.unitCost) } : {}),
        ...(row.reservation ? { reservation: row.reservation } : {}),
        ...(row.sourceEntity ? { source: { entity: row.sourceEntity, id: row.sourceId, ...(row.sourceLine ? { line: row.sourceLine } : {}) } } : {}),
        ...(row.memo ? { memo: row.memo } : {}),
      });
    });
    const resolved = await this.resolveNew(asNew, at, trx, actor, { reversal: true });
    resolved.forEach((op, i) => {
      const row = rows.get(inputs[i].id)!;
      op.mode = inputs[i].mode;
      op.planned = row.id;
      op.plannedLot = plannedLots.get(row.id) ?? null;
      if (op.mode === 'cancel') op.id = row.id;
      // A completed move enters the ledger as a new row (its own id), naming the planned one.
      else op.fields = { ...op.fields, planned: row.id, ...(row.enteredUnit ? { enteredQuantity: row.enteredQuantity, enteredUnit: row.enteredUnit } : {}) };
      ops.push(op);
    });
    return ops;
  }

  // ── Applying ──────────────────────────────────────────────────────────────────────────────

  private async apply(ops: Op[], options: StockOptions, trx: Knex.Transaction): Promise<ApiRecord[]> {
    const ledger = ops.filter((o) => o.mode === 'post' || o.mode === 'complete');
    // 1. Periods: shared lock, nothing on or before the last closed period.
    await this.lockPeriods(trx, false);
    const closed = await this.lastClosed(trx);
    if (closed) {
      const early = ops.find((o) => (o.mode !== 'cancel') && o.date <= closed.date);
      if (early) throw this.ctx.error('period-closed', `${early.field}date ${early.date} is in a closed stock period (closed until ${closed.date}): post on a later date or reopen the period`, { issues: [{ field: `${early.field}date`, rule: 'period-open', message: `the stock period until ${closed.date} is closed` }], extra: { closedUntil: closed.date } });
    }

    // 2. Balances, in key order (the locks).
    const deltas: BalanceDelta[] = [];
    const at = (op: Op, place: Place, lot: string | null) => ({ product: op.product.id, location: place.id, lot: lot ?? NIL, root: place.root });
    for (const op of ops) {
      if (op.mode === 'post' || op.mode === 'complete') {
        if (op.from.stockable) deltas.push({ ...at(op, op.from, op.lot), onHand: op.qty.negated() });
        if (op.to.stockable) deltas.push({ ...at(op, op.to, op.lot), onHand: op.qty });
        if (op.reservation) deltas.push({ ...at(op, op.held!, op.reservation.lot), reserved: op.qty.negated() });
      }
      if (op.mode === 'complete' || op.mode === 'cancel') {
        if (op.from.stockable) deltas.push({ ...at(op, op.from, op.plannedLot ?? null), outgoing: op.qty.negated() });
        if (op.to.stockable) deltas.push({ ...at(op, op.to, op.plannedLot ?? null), incoming: op.qty.negated() });
      }
      if (op.mode === 'plan') {
        if (op.from.stockable) deltas.push({ ...at(op, op.from, op.lot), outgoing: op.qty });
        if (op.to.stockable) deltas.push({ ...at(op, op.to, op.lot), incoming: op.qty });
      }
    }
    await this.balances.apply(trx, deltas);

    // 3. Reservations consumed: what they hold, read under the lock.
    const consumed = ledger.filter((o) => o.reservation);
    const reservationUpdates = new Map<string, { row: ReservationRow; consumed: Decimal }>();
    if (consumed.length) {
      const fresh = new Map<string, ReservationRow>((await this.ctx.table('warehouse_reservations', trx).whereIn('id', consumed.map((o) => o.reservation!.id))).map((r: ReservationRow) => [r.id, r]));
      for (const op of consumed) {
        const row = fresh.get(op.reservation!.id)!;
        if (row.status !== 'active') throw this.ctx.error('reservation-closed', `${op.field}reservation ${row.id} is ${row.status}`, { issues: [{ field: `${op.field}reservation`, rule: 'active', message: `the reservation is ${row.status}` }] });
        const u = reservationUpdates.get(row.id) ?? { row, consumed: ZERO };
        const held = heldOf(row).minus(u.consumed);
        if (op.qty.gt(held)) throw new KubikiError('conflict', `${op.field}quantity ${qty(op.qty)} is more than reservation ${row.id} holds (${qty(held)})`, { issues: [{ field: `${op.field}quantity`, rule: 'reservation', message: `the reservation holds ${qty(held)}` }] });
        u.consumed = u.consumed.plus(op.qty);
        reservationUpdates.set(row.id, u);
      }
    }

    // 4. Serial numbers: in stock at most once, moved only from where they are (before the
    //    availability check, so a serial in the wrong place is named as such).
    await this.moveSerials(trx, ledger.filter((o) => o.serials.length));

    // 5. Availability where stock leaves a location of a warehouse that allows no negative stock.
    const checked = ledger.filter((o) => o.from.stockable && !o.from.allowNegative);
    if (checked.length) {
      const rows = await this.balances.rowsIn(trx, checked.map((o) => ({ product: o.product.id, root: o.from.root })));
      const byProduct = groupBy(rows, (r) => r.product);
      // Every move of a product out of one location (and lot) sees the same state: checked once.
      const seen = new Map<string, { own: BalanceRow | undefined; available: Decimal }>();
      for (const op of checked) {
        const key = `${op.product.id}|${op.from.id}|${op.lot ?? NIL}`;
        let state = seen.get(key);
        if (!state) {
          const productRows = byProduct.get(op.product.id) ?? [];
          state = { own: productRows.find((r) => r.location === op.from.id && r.lot === (op.lot ?? NIL)), available: this.availableFor(productRows, op.from, op.lot) };
          seen.set(key, state);
        }
        const { own, available } = state;
        if ((own && own.onHand.lt(0)) || available.lt(0)) {
          const left = Decimal.min(own ? own.onHand : ZERO, available);
          throw this.insufficient(`${op.field}quantity`, op.product, op.from, left.plus(op.qty), op.qty, 'move');
        }
      }
    }

    // 6. Valuation of what enters or leaves valued stock, in ledger order.
    const valued = ledger.filter((o) => o.valuation !== 'none').sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.order - b.order));
    const { values, revaluations } = await this.valuation.post(trx, valued.map((o) => ({
      id: o.id, product: o.product.id, method: o.product.method, date: o.date, direction: o.valuation as 'in' | 'out', qty: o.qty, existing: false,
      ...(o.unitCost !== undefined ? { unitCost: o.unitCost } : {}), ...(o.reverses ? { reverses: o.reverses.id, reversedValue: o.reverses.value } : {}),
    })), closed);
    for (const op of valued) {
      const value = values.get(op.id)!;
      op.fields.value = value.toFixed(2);
      op.fields.unitCost = cost(value.div(op.qty));
    }

    // 7. The records. Ledger rows in ledger order (their seq), each with its audit row, under one
    //    posting record (audited and evented: what finance posts from); planned moves through
    //    their entity's repository.
    const writer = this.writer(options.actor);
    const byId = new Map<string, ApiRecord>();
    const ledgerOps = [...ledger].sort((a, b) => (a.date < b.date ? -1 : a.date > b.date ? 1 : a.order - b.order));
    if (ledgerOps.length) {
      let valueIn = ZERO;
      let valueOut = ZERO;
      for (const o of ledgerOps) {
        if (o.valuation === 'in') valueIn = valueIn.plus(dec(o.fields.value));
        if (o.valuation === 'out') valueOut = valueOut.plus(dec(o.fields.value));
      }
      const posting = await this.ctx.repository('warehouse.postings').create({
        moves: ledgerOps.length, valued: valued.length, revalued: revaluations.length, firstDate: ledgerOps[0].date, lastDate: ledgerOps[ledgerOps.length - 1].date,
        valueIn: valueIn.toFixed(2), valueOut: valueOut.toFixed(2), ...(options.reference ? { reference: options.reference } : {}),
      }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
      const journal = this.ctx.journalRows('warehouse_moves', 'moves');
      for (const part of ledgerParts(ledgerOps.map((o) => ledgerRow(o, posting.id, writer.userId)))) {
        for (const r of await journal.insert(part, { actor: writer, trx, requestId: options.requestId })) byId.set(String(r.id), moveRecord(r));
      }
    }
    const plans = ops.filter((o) => o.mode === 'plan');
    const planned = this.ctx.repository('warehouse.plannedMoves');
    for (const part of chunks(plans, 1000)) {
      for (const r of await planned.createMany(part.map((o) => ({ id: o.id, ...o.fields, status: 'planned' })), { actor: writer, trx, requestId: options.requestId, viaTransition: true })) byId.set(r.id, r);
    }
    for (const op of ops) {
      if (op.mode === 'complete') await planned.update(op.planned!, { status: 'done', move: op.id }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
      if (op.mode === 'cancel') byId.set(op.id, await planned.update(op.id, { status: 'cancelled' }, { actor: writer, trx, requestId: options.requestId, viaTransition: true }));
    }

    // 8. Revaluations of later issues (audited journal rows).
    if (revaluations.length) await this.ctx.journalRows('warehouse_revaluations', 'revaluations').insert(revaluations as unknown as Record<string, unknown>[], { actor: writer, trx, requestId: options.requestId });

    // 9. Reservations consumed.
    for (const { row, consumed: c } of reservationUpdates.values()) {
      const total = dec(row.consumed).plus(c);
      const done = dec(row.reserved).minus(total).minus(dec(row.released)).isZero() && dec(row.backordered).isZero();
      await this.ctx.repository('warehouse.reservations').update(row.id, { consumed: qty(total), ...(done ? { status: 'done' } : {}) }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
    }
    return ops.map((o) => byId.get(o.id)!);
  }

  private async moveSerials(trx: Knex.Transaction, ops: Op[]): Promise<void> {
    if (ops.length === 0) return;
    const table = tableRef(this.ctx, 'warehouse_serials');
    const entering = ops.filter((o) => !o.from.stockable && o.to.stockable);
    const moving = ops.filter((o) => o.from.stockable);
    const sorted = <T extends { p: string; s: string }>(list: T[]) => list.sort((a, b) => (a.p < b.p ? -1 : a.p > b.p ? 1 : a.s < b.s ? -1 : a.s > b.s ? 1 : 0));
    if (entering.length) {
      const rows = sorted(entering.flatMap((o) => o.serials.map((s) => ({ p: o.product.id, s, l: o.to.id, t: o.lot, m: o.id, field: `${o.field}serials` }))));
      const done: { serial: string; product_id: string }[] = (await trx.raw(
        `insert into ${table} as s (product_id, serial, location_id, lot_id, last_move)
         select x.p, x.s, x.l, x.t, x.m from jsonb_to_recordset(?::jsonb) as x(p uuid, s text, l uuid, t uuid, m uuid) order by x.p, x.s
         on conflict (product_id, serial) do update set location_id = excluded.location_id, lot_id = excluded.lot_id, last_move = excluded.last_move, updated_at = now()
         where s.location_id is null returning product_id, serial`,
        [JSON.stringify(rows.map(({ p, s, l, t, m }) => ({ p, s, l, t, m })))],
      )).rows;
      const ok = new Set(done.map((d) => `${d.product_id}|${d.serial}`));
      const bad = rows.find((r) => !ok.has(`${r.p}|${r.s}`));
      if (bad) throw this.ctx.error('serial-in-stock', `${bad.field}: serial ${bad.s} is already in stock (a serial number is in stock once)`, { issues: [{ field: bad.field, rule: 'not-in-stock', message: `serial ${bad.s} is in stock` }], extra: { serial: bad.s, product: bad.p } });
    }
    if (moving.length) {
      const rows = sorted(moving.flatMap((o) => o.serials.map((s) => ({ p: o.product.id, s, from: o.from.id, l: o.to.stockable ? o.to.id : null, m: o.id, field: `${o.field}serials` }))));
      const locked: { product_id: string; serial: string; location_id: string | null }[] = (await trx.raw(
        `select s.product_id, s.serial, s.location_id from ${table} s join jsonb_to_recordset(?::jsonb) as x(p uuid, s text) on s.product_id = x.p and s.serial = x.s
         order by s.product_id, s.serial for update of s`,
        [JSON.stringify(rows.map(({ p, s }) => ({ p, s })))],
      )).rows;
      const where = new Map(locked.map((r) => [`${r.product_id}|${r.serial}`, r.location_id]));
      const bad = rows.find((r) => where.get(`${r.p}|${r.s}`) !== r.from);
      if (bad) throw this.ctx.error('serial-not-found', `${bad.field}: serial ${bad.s} is not in the source location`, { issues: [{ field: bad.field, rule: 'in-location', message: `serial ${bad.s} is not in the source location` }], extra: { serial: bad.s, product: bad.p } });
      await trx.raw(
        `update ${table} s set location_id = x.l, last_move = x.m, updated_at = now() from jsonb_to_recordset(?::jsonb) as x(p uuid, s text, l uuid, m uuid)
         where s.product_id = x.p and s.serial = x.s`,
        [JSON.stringify(rows.map(({ p, s, l, m }) => ({ p, s, l, m })))],
      );
    }
  }
}

const LEDGER_COLUMNS = ['id', 'kind', 'status', 'date', 'product', 'quantity', 'enteredQuantity', 'enteredUnit', 'fromLocation', 'toLocation', 'lot', 'serials', 'valuation',
  'unitCost', 'value', 'reservation', 'reverses', 'planned', 'posting', 'sourceEntity', 'sourceId', 'sourceLine', 'memo', 'createdBy'] as const;

/** A ledger row to insert: every column present (journal rows take one column list). */
function ledgerRow(op: Op, posting: string, actor: string | null): Record<string, unknown> {
  const f = op.fields;
  const row: Record<string, unknown> = {};
  for (const c of LEDGER_COLUMNS) row[c] = f[c] ?? null;
  row.id = op.id;
  row.status = 'done';
  row.posting = posting;
  row.createdBy = actor;
  row.serials = Array.isArray(f.serials) && f.serials.length ? JSON.stringify(f.serials) : null;
  return row;
}

/** Columns every ledger row is given, even when null. */
const LEDGER_ALWAYS = new Set<string>(['id', 'kind', 'date', 'product', 'quantity', 'fromLocation', 'toLocation', 'valuation', 'posting']);
/** Columns left out of a part where every row has the column's default (the table gives it). */
const LEDGER_DEFAULTS: Record<string, unknown> = { status: 'done' };
const isDefault = (c: string, v: unknown) => v === null || (c in LEDGER_DEFAULTS && v === LEDGER_DEFAULTS[c]);

/**
 * Ledger rows in parts of one journal statement each, with only the columns some row sets (a column
 * left out is null, or its default, as given): the same rows and audit rows, with fewer bind
 * parameters. The journal takes its column list from a part's first row, so every row gets them all.
 */
function ledgerParts(rows: Record<string, unknown>[]): Record<string, unknown>[][] {
  const columns = LEDGER_COLUMNS.filter((c) => LEDGER_ALWAYS.has(c) || rows.some((r) => !isDefault(c, r[c])));
  // The journal splits a statement at 20,000 bind parameters: a part stays within one.
  const size = Math.max(1, Math.floor(20_000 / columns.length));
  const out: Record<string, unknown>[][] = [];
  for (let i = 0; i < rows.length; i += size) {
    out.push(rows.slice(i, i + size).map((r) => {
      const row: Record<string, unknown> = {};
      for (const c of columns) row[c] = r[c];
      return row;
    }));
  }
  return out;
}

const RECORD_COLUMNS = [...LEDGER_COLUMNS, 'createdAt'] as const;

/** A ledger row as the API shows a move (nothing null; version 1: a move never changes). */
export function moveRecord(row: Record<string, unknown>): ApiRecord {
  const out: ApiRecord = { id: String(row.id), version: 1 };
  for (const c of RECORD_COLUMNS) {
    if (c === 'id') continue;
    const v = row[c];
    if (v === null || v === undefined) continue;
    out[c] = c === 'date' ? dateText(v) : c === 'createdAt' && v instanceof Date ? v.toISOString() : c === 'serials' && typeof v === 'string' ? JSON.parse(v) : v;
  }
  return out;
}
