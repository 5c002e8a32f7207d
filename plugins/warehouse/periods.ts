import { v7 as uuidv7 } from 'uuid';
import { KubikiError, type ApiRecord, type PluginContext } from 'kubiki/plugin';
import type { StockOptions, StockService } from './stock-service.ts';
import { emptyState, layersJson, replay, stateOf, type CostState, type Method } from './valuation.ts';
import { Decimal, ZERO, chunks, cost, dateText, dec, elevated, invalid, money, qty, round2, tableRef, today } from './util.ts';

// Stock periods (as Tryton's): closing one at a date stores, per product × location × lot, the
// quantity and value on that date, and per product the cost state (quantity, value, unit cost,
// FIFO layers). After that nothing is posted on or before the date, reports as of a later date
// start from the snapshot, and a back-dated move recomputes costs from it. A period is computed
// from the one before it plus the moves in between, so closing costs what the month holds.

export class StockPeriods {
  constructor(private readonly ctx: PluginContext, private readonly stock: StockService) {}

  /** Closes the period ending `date` (a new record, or a reopened one at that date). */
  async close(input: { date: string; name?: string }, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      await this.stock.lockPeriods(trx, true);
      const { date } = input;
      if (date >= today()) throw invalid('date', 'past', `date ${date}: a stock period is closed on a past day (today is ${today()}); moves may still be posted today`);
      const last = await this.stock.lastClosed(trx);
      if (last && date <= last.date) throw new KubikiError('conflict', `the stock period until ${last.date} is closed already; close a later date, or reopen it first`, { issues: [{ field: 'date', rule: 'after-last', message: `must be after ${last.date}` }], extra: { closedUntil: last.date } });
      const existing = await this.ctx.table('warehouse_periods', trx).where({ date }).first('id', 'status');
      const prev = last;

      // Quantities: the previous snapshot plus the done moves since, per product × location × lot.
      const moves = tableRef(this.ctx, 'warehouse_moves');
      const locations = tableRef(this.ctx, 'warehouse_locations');
      const quantities: { product_id: string; location_id: string; lot_id: string; quantity: string }[] = (await trx.raw(
        `select product_id, location_id, lot_id, sum(q) as quantity from (
           select m.product as product_id, m."toLocation" as location_id, coalesce(m.lot, '00000000-0000-0000-0000-000000000000'::uuid) as lot_id, m.quantity as q
             from ${moves} m join ${locations} l on l.id = m."toLocation" and l.type in ('internal', 'transit')
             where m.status = 'done' and m.date <= ? ${prev ? 'and m.date > ?' : ''}
           union all
           select m.product, m."fromLocation", coalesce(m.lot, '00000000-0000-0000-0000-000000000000'::uuid), -m.quantity
             from ${moves} m join ${locations} l on l.id = m."fromLocation" and l.type in ('internal', 'transit')
             where m.status = 'done' and m.date <= ? ${prev ? 'and m.date > ?' : ''}
           ${prev ? `union all select product_id, location_id, lot_id, quantity from ${tableRef(this.ctx, 'warehouse_period_quantities')} where period_id = ?` : ''}
         ) d group by product_id, location_id, lot_id having sum(q) <> 0 order by product_id, location_id, lot_id`,
        prev ? [date, prev.date, date, prev.date, prev.id] : [date, date],
      )).rows;

      // Cost states: the previous one replayed through the period's valued moves.
      const ledger = await this.stock.valuation.ledgerRange(trx, prev?.date, date);
      const prevCosts = new Map<string, CostState>(prev ? (await this.ctx.table('warehouse_period_costs', trx).where({ period_id: prev.id })).map((r: Parameters<typeof stateOf>[0] & { product_id: string }) => [r.product_id, stateOf(r)]) : []);
      const productIds = [...new Set([...prevCosts.keys(), ...ledger.keys()])];
      const settings = await this.stock.products(productIds, trx);
      const costs = new Map<string, CostState>();
      for (const product of productIds) {
        const method: Method = prevCosts.get(product)?.method ?? settings.get(product)?.method ?? 'average';
        const start = prevCosts.get(product) ?? emptyState(method);
        costs.set(product, replay({ ...start, lastDate: null }, ledger.get(product) ?? []).state);
      }
      // Value per location: the product's value shared by quantity (the last location takes the rounding).
      const valued = quantities.map((r) => ({ ...r, value: ZERO }));
      const byProduct = new Map<string, typeof valued>();
      for (const r of valued) byProduct.set(r.product_id, [...(byProduct.get(r.product_id) ?? []), r]);
      for (const [product, rows] of byProduct) {
        const s = costs.get(product);
        if (!s) continue;
        const total = rows.reduce((a, r) => a.plus(dec(r.quantity)), ZERO);
        let left = s.value;
        rows.forEach((r, i) => {
          const share = i === rows.length - 1 && total.eq(s.qty) ? left : total.gt(0) ? round2(s.value.times(dec(r.quantity)).div(total)) : round2(dec(r.quantity).times(s.unitCost));
          r.value = share;
          left = left.minus(share);
        });
      }

      const actor = options.actor;
      const writer = elevated(actor, ['warehouse.periods.create', 'warehouse.periods.update']);
      const fields = { status: 'closed', closedAt: new Date().toISOString(), closedBy: actor.userId ?? undefined, products: costs.size, rows: quantities.length, name: input.name ?? `Stock until ${date}` };
      const repo = this.ctx.repository('warehouse.periods');
      const id = existing?.id ?? uuidv7();
      const record = existing
        ? await repo.update(id, fields, { actor: writer, trx, requestId: options.requestId, viaTransition: true })
        : await repo.create({ id, date, ...fields }, { actor: writer, trx, requestId: options.requestId, viaTransition: true });
      for (const part of chunks(valued, 2000)) {
        await this.ctx.table('warehouse_period_quantities', trx).insert(part.map((r) => ({ period_id: id, product_id: r.product_id, location_id: r.location_id, lot_id: r.lot_id, quantity: qty(dec(r.quantity)), value: money(r.value) })));
      }
      const costRows = [...costs.entries()].map(([product, s]) => ({ period_id: id, product_id: product, method: s.method, quantity: qty(s.qty), value: money(s.value), unit_cost: cost(s.unitCost), layers: JSON.stringify(layersJson(s.layers)) }));
      for (const part of chunks(costRows, 2000)) await this.ctx.table('warehouse_period_costs', trx).insert(part);
      return record;
    });
  }

  /** Reopens the last closed period: its snapshot goes, moves may be posted in it again. */
  async reopen(id: string, options: StockOptions): Promise<ApiRecord> {
    return this.stock.run(options, async (trx) => {
      await this.stock.lockPeriods(trx, true);
      const row = await this.ctx.table('warehouse_periods', trx).where({ id }).first('id', 'date', 'status');
      if (!row) throw new KubikiError('not-found', `warehouse.periods ${id} does not exist`, { extra: { entity: 'warehouse.periods', id } });
      if (row.status !== 'closed') throw new KubikiError('conflict', `the stock period until ${dateText(row.date)} is not closed`, { issues: [{ field: 'id', rule: 'closed', message: 'only a closed period is reopened' }] });
      const last = await this.stock.lastClosed(trx);
      if (last && last.id !== id) throw new KubikiError('conflict', `only the last closed period (until ${last.date}) can be reopened; reopen that one first`, { issues: [{ field: 'id', rule: 'last', message: `the last closed period ends ${last.date}` }] });
      await this.ctx.table('warehouse_period_quantities', trx).where({ period_id: id }).delete();
      await this.ctx.table('warehouse_period_costs', trx).where({ period_id: id }).delete();
      return this.ctx.repository('warehouse.periods').update(id, { status: 'open', closedAt: null, closedBy: null, products: null, rows: null }, { actor: elevated(options.actor, ['warehouse.periods.update']), trx, requestId: options.requestId, viaTransition: true });
    });
  }
}

export type { Decimal };
