import type { Knex } from 'knex';
import { KubikiError, SYSTEM, fieldError, type ApiRecord, type PluginContext } from 'kubiki/plugin';
import { loadPlaces } from './places.ts';
import type { MoveInput, StockOptions, StockService } from './stock-service.ts';
import { Decimal, NIL, ZERO, chunks, dec, elevated, invalid, qty, rawOf, tableRef, today } from './util.ts';

// Stock counts: a count sheet for a location and everything under it.
//   draft --start--> counting: expected quantities frozen (on hand per product × location × lot),
//                    and the ledger position, with postings paused for the instant it takes;
//   counting: counted quantities entered (new lines for stock found where none was expected);
//   --submit--> review: the differences wait for approval (the warehouse.count-approval workflow);
//   approved --> posted: one adjustment move per line that differs, from or to inventory loss;
//   rejected --> counting again; cancel at any time before posting.
// Moves during the count: the count is of the stock as it was when it started. A line's
// adjustment is counted − expected, so stock moved in or out while people counted is not undone;
// the review shows those moves beside each line.

export const INVENTORY_LOSS = '019b0000-0000-7000-8000-000000000003';

export interface CountLineInput { product: string; location?: string; lot?: string; counted: string; serials?: string[]; note?: string }

export class StockCounts {
  constructor(private readonly ctx: PluginContext, private readonly stock: StockService) {}

  private async lock(id: string, trx: Knex.Transaction, states: string[], step: string): Promise<Record<string, any>> {
    const row = await this.ctx.table('warehouse_counts', trx).where({ id }).forUpdate().first();
    if (!row) throw new KubikiError('not-found', `warehouse.counts ${id} does not exist`, { extra: { entity: 'warehouse.counts', id } });
    if (!states.includes(row.status)) {
      throw this.ctx.error('count-state', `count ${row.reference ?? id} is ${row.status}; ${step} needs it ${states.join(' or ')}`, { issues: [{ field: 'status', rule: states.join('|'), message: `the count is ${row.status}` }] });
    }
    return row;
  }

  private update(id: string, fields: Record<string, unknown>, options: StockOptions, trx: Knex.Transaction): Promise<ApiRecord> {
    return this.ctx.repository('warehouse.counts').update(id, fields, { actor: this.writer(options), trx, requestId: options.requestId, viaTransition: true });
  }

  private writer(options: StockOptions) {
    return options.actor === SYSTEM ? SYSTEM : elevated(options.actor, ['warehouse.counts.update', 'warehouse.countLines.create', 'warehouse.countLines.update', 'warehouse.moves.post', 'warehouse.postings.create', 'base.products.read']);
  }

  /** Freezes the expected quantities: the on-hand of every product × location × lot under the count's location. */
  async start(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      const count = await this.lock(id, trx, ['draft'], 'start');
      // Postings wait for the moment the freeze takes (the period lock, exclusively), so the
      // expected quantities and the ledger position belong together.
      await this.stock.lockPeriods(trx, true);
      const [{ seq }] = await this.ctx.table('warehouse_moves', trx).max({ seq: 'seq' }) as { seq: number | string | null }[];
      const rows: { product_id: string; location_id: string; lot_id: string; on_hand: string }[] = await this.ctx.table('warehouse_balances as b', trx)
        .join(this.ctx.table('warehouse_locations', trx).select('id', 'path').as('l'), 'l.id', 'b.location_id')
        .where((w) => { w.where('b.location_id', count.location).orWhere('l.path', 'like', `%/${count.location}/%`); })
        .whereNot('b.on_hand', 0).orderBy(['b.location_id', 'b.product_id', 'b.lot_id']).select('b.product_id', 'b.location_id', 'b.lot_id', 'b.on_hand');
      const lines = rows.map((r) => ({ count: id, product: r.product_id, location: r.location_id, ...(r.lot_id !== NIL ? { lot: r.lot_id } : {}), expected: qty(dec(r.on_hand)) }));
      for (const part of chunks(lines, 1000)) await this.ctx.repository('warehouse.countLines').createMany(part, { actor: this.writer(options), trx, requestId: options.requestId, viaTransition: true });
      return this.update(id, { status: 'counting', startedAt: new Date().toISOString(), startSeq: Number(seq ?? 0) }, options, trx);
    });
  }

  /** Enters counted quantities; a product × location × lot not on the sheet gets a line expecting zero. */
  async enter(id: string, lines: CountLineInput[], options: StockOptions): Promise<ApiRecord[]> {
    return this.stock.run(options, async (trx) => {
      const count = await this.lock(id, trx, ['counting'], 'entering counted quantities');
      const existing: Record<string, any>[] = await this.ctx.table('warehouse_count_lines', trx).where({ count: id });
      const key = (p: string, l: string, lot: string | null | undefined) => `${p}|${l}|${lot ?? ''}`;
      const byKey = new Map(existing.map((l) => [key(l.product, l.location, l.lot), l]));
      const places = await loadPlaces(this.ctx, lines.map((l) => l.location ?? count.location), trx);
      const products = await this.stock.products(lines.map((l) => l.product), trx);
      const out: ApiRecord[] = [];
      const seen = new Set<string>();
      const repo = this.ctx.repository('warehouse.countLines');
      for (const [i, line] of lines.entries()) {
        const f = (name: string) => `lines.${i}.${name}`;
        const location = line.location ?? count.location;
        const place = places.get(location);
        if (!place) throw fieldError('reference-not-found', f('location'), 'x-ref', `${f('location')}: no warehouse.locations record ${location}`);
        if (place.id !== count.location && !place.ancestors.includes(count.location)) throw invalid(f('location'), 'counted-location', `${f('location')}: ${place.code} is not in the counted location`);
        const product = products.get(line.product);
        if (!product) throw fieldError('reference-not-found', f('product'), 'x-ref', `${f('product')}: no base.products record ${line.product}`);
        if (product.tracking === 'lot' && !line.lot) throw invalid(f('lot'), 'required', `${f('lot')} is required: ${product.sku} is lot-tracked`);
        if (product.tracking === 'serial' && (!line.serials || new Decimal(line.serials.length).cmp(dec(line.counted)) !== 0)) throw invalid(f('serials'), 'count', `${f('serials')}: ${product.sku} has serial numbers; list the ${line.counted} found`);
        const k = key(line.product, location, line.lot);
        if (seen.has(k)) throw invalid(f('product'), 'unique', `${f('product')}: the same product, location and lot are counted twice`);
        seen.add(k);
        const fields = { counted: qty(dec(line.counted)), ...(line.serials ? { serials: line.serials } : {}), ...(line.note ? { note: line.note } : {}) };
        const found = byKey.get(k);
        out.push(found
          ? await repo.update(found.id, fields, { actor: this.writer(options), trx, requestId: options.requestId, viaTransition: true })
          : await repo.create({ count: id, product: line.product, location, ...(line.lot ? { lot: line.lot } : {}), expected: qty(0), ...fields }, { actor: this.writer(options), trx, requestId: options.requestId, viaTransition: true }));
      }
      return out;
    });
  }

  /** Sends the count for approval: every line must be counted. */
  async submit(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      await this.lock(id, trx, ['counting'], 'submit');
      const [{ n }] = await this.ctx.table('warehouse_count_lines', trx).where({ count: id }).whereNull('counted').count({ n: '*' }) as { n: string | number }[];
      if (Number(n) > 0) throw this.ctx.error('count-state', `${n} line(s) of the count have no counted quantity; count them (0 when nothing is there) before submitting`, { issues: [{ field: 'lines', rule: 'counted', message: `${n} line(s) not counted` }] });
      return this.update(id, { status: 'review', submittedAt: new Date().toISOString() }, options, trx);
    });
  }

  /** The sheet for review: per line expected, counted, difference, moves since the count started, on hand now, and the difference's value. */
  async review(id: string): Promise<{ count: ApiRecord; lines: Record<string, unknown>[] }> {
    const count = await this.ctx.repository('warehouse.counts').get(id, { actor: SYSTEM });
    const lines: Record<string, any>[] = await this.ctx.table('warehouse_count_lines').where({ count: id }).orderBy(['location', 'product', 'id']);
    const moved = new Map<string, Decimal>();
    if (count.startSeq !== undefined && lines.length) {
      const moves = tableRef(this.ctx, 'warehouse_moves');
      const products = [...new Set(lines.map((l) => l.product))];
      const rows: { product: string; location: string; lot: string | null; q: string }[] = (await rawOf(this.ctx)(
        `select product, location, lot, sum(q) as q from (
           select product, "toLocation" as location, lot, quantity as q from ${moves} where status = 'done' and seq > ? and product = any(?::uuid[])
           union all select product, "fromLocation", lot, -quantity from ${moves} where status = 'done' and seq > ? and product = any(?::uuid[])
         ) d group by product, location, lot`,
        [count.startSeq, products, count.startSeq, products],
      )).rows;
      for (const r of rows) {
        const k = `${r.product}|${r.location}|${r.lot ?? ''}`;
        moved.set(k, (moved.get(k) ?? ZERO).plus(dec(r.q)));
      }
    }
    const balances = await this.ctx.table('warehouse_balances').whereIn('location_id', [...new Set(lines.map((l) => l.location))]).whereIn('product_id', [...new Set(lines.map((l) => l.product))]);
    const onHand = new Map<string, Decimal>(balances.map((b: Record<string, any>) => [`${b.product_id}|${b.location_id}|${b.lot_id === NIL ? '' : b.lot_id}`, dec(b.on_hand)]));
    const costs = new Map<string, Decimal>((await this.ctx.table('warehouse_costs').whereIn('product_id', [...new Set(lines.map((l) => l.product))])).map((c: Record<string, any>) => [c.product_id, dec(c.unit_cost)]));
    return {
      count,
      lines: lines.map((l) => {
        const k = `${l.product}|${l.location}|${l.lot ?? ''}`;
        const difference = l.counted == null ? null : dec(l.counted).minus(dec(l.expected));
        return {
          id: l.id, product: l.product, location: l.location, lot: l.lot ?? null, expected: qty(dec(l.expected)), counted: l.counted == null ? null : qty(dec(l.counted)),
          difference: difference ? qty(difference) : null, movedDuringCount: qty(moved.get(k) ?? ZERO), onHandNow: qty(onHand.get(k) ?? ZERO),
          differenceValue: difference ? difference.times(costs.get(l.product) ?? ZERO).toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2) : null,
        };
      }),
    };
  }

  /** After approval: posts an adjustment move per line that differs, and marks the count posted. */
  async post(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      const count = await this.lock(id, trx, ['review'], 'posting');
      const lines: Record<string, any>[] = await this.ctx.table('warehouse_count_lines', trx).where({ count: id }).orderBy(['location', 'product', 'id']);
      const products = await this.stock.products(lines.map((l) => l.product), trx);
      const moves: MoveInput[] = [];
      const date = count.date ? String(count.date).slice(0, 10) : today();
      for (const l of lines) {
        const diff = dec(l.counted).minus(dec(l.expected));
        if (diff.isZero()) continue;
        const gain = diff.gt(0);
        let serials: string[] | undefined;
        if (products.get(l.product)?.tracking === 'serial') {
          const there: string[] = await this.ctx.table('warehouse_serials', trx).where({ product_id: l.product, location_id: l.location }).pluck('serial');
          const found: string[] = Array.isArray(l.serials) ? l.serials : [];
          serials = gain ? found.filter((s) => !there.includes(s)) : there.filter((s) => !found.includes(s));
          serials = serials.slice(0, diff.abs().toNumber());
        }
        moves.push({
          kind: 'adjustment', date, product: l.product, quantity: qty(diff.abs()),
          fromLocation: gain ? INVENTORY_LOSS : l.location, toLocation: gain ? l.location : INVENTORY_LOSS,
          ...(l.lot ? { lot: l.lot } : {}), ...(serials ? { serials } : {}),
          source: { entity: 'warehouse.counts', id, line: l.id }, memo: `Count ${count.reference ?? id}: ${gain ? 'surplus' : 'shortage'}`,
        });
      }
      const posted = moves.length ? await this.stock.postMoves(moves, { ...options, actor: this.writer(options), trx, prefix: 'lines.', batch: true, reference: `Count ${count.reference ?? id}` }) : [];
      return this.update(id, { status: 'posted', decidedAt: new Date().toISOString(), postedAt: new Date().toISOString(), adjustments: posted.length }, options, trx);
    });
  }

  /** Rejected in review: back to counting. */
  async reopen(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      await this.lock(id, trx, ['review'], 'reopening');
      return this.update(id, { status: 'counting', decidedAt: new Date().toISOString() }, options, trx);
    });
  }

  async cancel(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      await this.lock(id, trx, ['draft', 'counting', 'review'], 'cancel');
      return this.update(id, { status: 'cancelled' }, options, trx);
    });
  }
}
