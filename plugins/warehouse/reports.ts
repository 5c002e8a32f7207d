import { KubikiError, SYSTEM, fieldError, type PluginContext } from 'kubiki/plugin';
import type { StockService } from './stock-service.ts';
import { Decimal, NIL, ZERO, cost, dateText, dec, money, qty, rawOf, tableRef, today } from './util.ts';

// Stock reports. Current figures read the balances (one indexed query); figures as of a date start
// from the last stock period closed on or before it and add the moves (and revaluations) after it,
// so no report reads the ledger from the beginning of time once periods are closed.

export interface Report {
  report: string;
  columns: string[];
  rows: Record<string, unknown>[];
  [meta: string]: unknown;
}

const addDays = (d: string, n: number): string => new Date(Date.parse(`${d}T00:00:00Z`) + n * 86400_000).toISOString().slice(0, 10);

export class StockReports {
  constructor(private readonly ctx: PluginContext, private readonly stock: StockService) {}

  private raw() { return rawOf(this.ctx); }

  /** SKU and name of catalogue products (through the repository: base is another plugin). */
  private async catalogue(ids: string[]): Promise<Map<string, { sku: string; name: string }>> {
    const out = new Map<string, { sku: string; name: string }>();
    const unique = [...new Set(ids)];
    for (let i = 0; i < unique.length; i += 1000) {
      const part = unique.slice(i, i + 1000);
      const found = await this.ctx.repository('base.products').list({ filters: [{ field: 'id', op: 'in', value: part }], sort: [], limit: part.length, fields: ['sku', 'name'], expand: [], total: false }, { actor: SYSTEM });
      for (const p of found.data) out.set(p.id, { sku: String(p.sku), name: String(p.name) });
    }
    return out;
  }

  private async locationCodes(ids: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(ids)];
    if (unique.length === 0) return new Map();
    const rows: { id: string; code: string }[] = await this.ctx.table('warehouse_locations').whereIn('id', unique).select('id', 'code');
    return new Map(rows.map((r) => [r.id, r.code]));
  }

  private async lotNumbers(ids: string[]): Promise<Map<string, string>> {
    const unique = [...new Set(ids.filter((i) => i && i !== NIL))];
    if (unique.length === 0) return new Map();
    const rows: { id: string; number: string }[] = await this.ctx.table('warehouse_lots').whereIn('id', unique).select('id', 'number');
    return new Map(rows.map((r) => [r.id, r.number]));
  }

  /** The root location of a warehouse, or a location's own id: where a filter's subtree starts. */
  async scope(query: { warehouse?: string; location?: string }): Promise<string | undefined> {
    if (query.location) {
      const row = await this.ctx.table('warehouse_locations').where({ id: query.location }).first('id');
      if (!row) throw fieldError('bad-query', 'location', 'exists', `no warehouse.locations record ${query.location}`);
      return row.id;
    }
    if (query.warehouse) {
      const row = await this.ctx.table('warehouse_warehouses').where({ id: query.warehouse }).first('location');
      if (!row) throw fieldError('bad-query', 'warehouse', 'exists', `no warehouse.warehouses record ${query.warehouse}`);
      return row.location;
    }
    return undefined;
  }

  /** `"l".id = scope or "l".path contains it`, for a locations alias. */
  private inScope(alias: string, scope: string | undefined): { sql: string; bindings: string[] } {
    return scope ? { sql: `and (${alias}.id = ? or coalesce(${alias}.path, '') like ?)`, bindings: [scope, `%/${scope}/%`] } : { sql: '', bindings: [] };
  }

  async closedOnOrBefore(d: string): Promise<{ id: string; date: string } | undefined> {
    const row = await this.ctx.table('warehouse_periods').where({ status: 'closed' }).where('date', '<=', d).orderBy('date', 'desc').first('id', 'date');
    return row ? { id: row.id, date: dateText(row.date) } : undefined;
  }

  /** Stock on hand per product × location × lot: now (with reserved, available, incoming, outgoing), or as of a date. */
  async stockOnHand(query: { warehouse?: string; location?: string; product?: string; asOf?: string; includeZero?: boolean; byProduct?: boolean }): Promise<Report> {
    if (query.byProduct) return this.stockByProduct(query);
    const scope = await this.scope(query);
    const where = this.inScope('l', scope);
    const product = query.product ? { sql: 'and b.product_id = ?', bindings: [query.product] } : { sql: '', bindings: [] };
    let rows: { product_id: string; location_id: string; lot_id: string; on_hand: string; reserved?: string; available?: string; incoming?: string; outgoing?: string; location_code?: string; lot_number?: string | null; total?: string }[];
    if (!query.asOf || query.asOf >= today()) {
      // One query: the balances with their locations' codes and lots' numbers.
      rows = (await this.raw()(
        `select b.product_id, b.location_id, l.code as location_code, b.lot_id, lo.number as lot_number, b.on_hand, b.reserved, b.available, b.incoming, b.outgoing,
           sum(b.on_hand) over () as total
         from ${tableRef(this.ctx, 'warehouse_balances')} b join ${tableRef(this.ctx, 'warehouse_locations')} l on l.id = b.location_id
         left join ${tableRef(this.ctx, 'warehouse_lots')} lo on lo.id = b.lot_id
         where true ${where.sql} ${product.sql} ${query.includeZero ? '' : 'and (b.on_hand <> 0 or b.reserved <> 0 or b.incoming <> 0 or b.outgoing <> 0)'}
         order by l.code, b.location_id, b.product_id, b.lot_id`,
        [...where.bindings, ...product.bindings],
      )).rows;
    } else {
      rows = await this.quantitiesAsOf(query.asOf, scope, query.product);
    }
    const needCodes = rows.some((r) => r.location_code === undefined);
    const [names, codes, lots] = await Promise.all([
      this.catalogue(rows.map((r) => r.product_id)),
      needCodes ? this.locationCodes(rows.map((r) => r.location_id)) : Promise.resolve(new Map<string, string>()),
      needCodes ? this.lotNumbers(rows.map((r) => r.lot_id)) : Promise.resolve(new Map<string, string>()),
    ]);
    const asOf = Boolean(query.asOf && query.asOf < today());
    const columns = asOf ? ['location', 'locationCode', 'product', 'sku', 'name', 'lot', 'lotNumber', 'onHand'] : ['location', 'locationCode', 'product', 'sku', 'name', 'lot', 'lotNumber', 'onHand', 'reserved', 'available', 'incoming', 'outgoing'];
    // numeric(18,3) comes as text with its 3 decimals: passed through as it is (no decimal arithmetic per row).
    const out = rows.map((r) => {
      const lot = r.lot_id === NIL ? null : r.lot_id;
      const name = names.get(r.product_id);
      const row: Record<string, unknown> = {
        location: r.location_id, locationCode: r.location_code ?? codes.get(r.location_id) ?? null, product: r.product_id, sku: name?.sku ?? null, name: name?.name ?? null,
        lot, lotNumber: lot ? r.lot_number ?? lots.get(lot) ?? null : null, onHand: asOf ? qty(dec(r.on_hand)) : r.on_hand,
      };
      if (!asOf) { row.reserved = r.reserved; row.available = r.available; row.incoming = r.incoming; row.outgoing = r.outgoing; }
      return row;
    });
    const total = asOf ? rows.reduce((a, r) => a.plus(dec(r.on_hand)), ZERO) : dec(rows[0]?.total ?? 0);
    return { report: 'stock-on-hand', asOf: query.asOf ?? today(), columns, rows: out, totalOnHand: qty(total) };
  }

  /** Stock on hand per product (all locations in scope summed): one row per product. */
  private async stockByProduct(query: { warehouse?: string; location?: string; product?: string; asOf?: string }): Promise<Report> {
    const scope = await this.scope(query);
    const asOf = Boolean(query.asOf && query.asOf < today());
    let rows: { product_id: string; on_hand: string; reserved?: string; available?: string; incoming?: string; outgoing?: string }[];
    if (!asOf) {
      const where = this.inScope('l', scope);
      rows = (await this.raw()(
        `select b.product_id, sum(b.on_hand)::numeric(18,3) as on_hand, sum(b.reserved)::numeric(18,3) as reserved, sum(b.available)::numeric(18,3) as available,
           sum(b.incoming)::numeric(18,3) as incoming, sum(b.outgoing)::numeric(18,3) as outgoing
         from ${tableRef(this.ctx, 'warehouse_balances')} b join ${tableRef(this.ctx, 'warehouse_locations')} l on l.id = b.location_id
         where l.type in ('internal', 'transit') ${where.sql} ${query.product ? 'and b.product_id = ?' : ''}
         group by b.product_id having sum(b.on_hand) <> 0 or sum(b.reserved) <> 0 or sum(b.incoming) <> 0 or sum(b.outgoing) <> 0`,
        [...where.bindings, ...(query.product ? [query.product] : [])],
      )).rows;
    } else {
      const sums = new Map<string, Decimal>();
      for (const r of await this.quantitiesAsOf(query.asOf!, scope, query.product)) sums.set(r.product_id, (sums.get(r.product_id) ?? ZERO).plus(dec(r.on_hand)));
      rows = [...sums.entries()].filter(([, q]) => !q.isZero()).map(([product_id, q]) => ({ product_id, on_hand: qty(q) }));
    }
    const names = await this.catalogue(rows.map((r) => r.product_id));
    const out = rows.map((r) => ({
      product: r.product_id, sku: names.get(r.product_id)?.sku ?? null, name: names.get(r.product_id)?.name ?? null, onHand: r.on_hand,
      ...(asOf ? {} : { reserved: r.reserved, available: r.available, incoming: r.incoming, outgoing: r.outgoing }),
    })).sort((a, b) => (a.sku ?? '') < (b.sku ?? '') ? -1 : (a.sku ?? '') > (b.sku ?? '') ? 1 : 0);
    return {
      report: 'stock-on-hand-by-product', asOf: query.asOf ?? today(),
      columns: asOf ? ['product', 'sku', 'name', 'onHand'] : ['product', 'sku', 'name', 'onHand', 'reserved', 'available', 'incoming', 'outgoing'], rows: out,
      totalOnHand: qty(out.reduce((a, r) => a.plus(dec(r.onHand)), ZERO)),
    };
  }

  /** Quantities per product × location × lot at the end of `asOf`: the last snapshot on or before it plus the moves after. */
  private async quantitiesAsOf(asOf: string, scope: string | undefined, product: string | undefined): Promise<{ product_id: string; location_id: string; lot_id: string; on_hand: string }[]> {
    const period = await this.closedOnOrBefore(asOf);
    const moves = tableRef(this.ctx, 'warehouse_moves');
    const locations = tableRef(this.ctx, 'warehouse_locations');
    const where = this.inScope('l', scope);
    const p = product ? 'and m.product = ?' : '';
    const pq = product ? 'and q.product_id = ?' : '';
    const after = period ? 'and m.date > ?' : '';
    const b = (extra: unknown[]) => [asOf, ...(period ? [period.date] : []), ...(product ? [product] : []), ...extra];
    return (await this.raw()(
      `select product_id, location_id, lot_id, sum(q) as on_hand from (
         select m.product as product_id, m."toLocation" as location_id, coalesce(m.lot, '${NIL}'::uuid) as lot_id, m.quantity as q from ${moves} m
           where m.status = 'done' and m.date <= ? ${after} ${p}
         union all
         select m.product, m."fromLocation", coalesce(m.lot, '${NIL}'::uuid), -m.quantity from ${moves} m
           where m.status = 'done' and m.date <= ? ${after} ${p}
         ${period ? `union all select q.product_id, q.location_id, q.lot_id, q.quantity from ${tableRef(this.ctx, 'warehouse_period_quantities')} q where q.period_id = ? ${pq}` : ''}
       ) d join ${locations} l on l.id = d.location_id and l.type in ('internal', 'transit')
       where true ${where.sql}
       group by product_id, location_id, lot_id having sum(q) <> 0 order by location_id, product_id, lot_id`,
      [...b([]), ...b([]), ...(period ? [period.id, ...(product ? [product] : [])] : []), ...where.bindings],
    )).rows;
  }

  /** Quantity and value per product at the end of `asOf` (all valued locations). */
  async valuationAsOf(asOf: string, product?: string): Promise<Map<string, { qty: Decimal; value: Decimal }>> {
    const period = await this.closedOnOrBefore(asOf);
    const out = new Map<string, { qty: Decimal; value: Decimal }>();
    const add = (p: string, q: Decimal, v: Decimal) => {
      const e = out.get(p) ?? { qty: ZERO, value: ZERO };
      out.set(p, { qty: e.qty.plus(q), value: e.value.plus(v) });
    };
    if (period) {
      const q = this.ctx.table('warehouse_period_costs').where({ period_id: period.id });
      if (product) q.where({ product_id: product });
      for (const r of await q as { product_id: string; quantity: string; value: string }[]) add(r.product_id, dec(r.quantity), dec(r.value));
    }
    const moves = this.ctx.table('warehouse_moves').where({ status: 'done' }).whereNot('valuation', 'none').where('date', '<=', asOf).groupBy('product')
      .select('product', this.raw()(`sum(case when valuation = 'in' then quantity else -quantity end) as q`), this.raw()(`sum(case when valuation = 'in' then value else -value end) as v`));
    if (period) moves.where('date', '>', period.date);
    if (product) moves.where({ product });
    for (const r of await moves as { product: string; q: string; v: string }[]) add(r.product, dec(r.q), dec(r.v));
    const revals = this.ctx.table('warehouse_revaluations').where('date', '<=', asOf).groupBy('product_id').select('product_id', this.raw()('sum(stock_delta) as v'));
    if (period) revals.where('date', '>', period.date);
    if (product) revals.where({ product_id: product });
    for (const r of await revals as { product_id: string; v: string }[]) add(r.product_id, ZERO, dec(r.v));
    return out;
  }

  async valuation(query: { asOf?: string; product?: string }): Promise<Report> {
    const asOf = query.asOf ?? today();
    const values = await this.valuationAsOf(asOf, query.product);
    const names = await this.catalogue([...values.keys()]);
    let total = ZERO;
    const rows = [...values.entries()].filter(([, v]) => !v.qty.isZero() || !v.value.isZero()).map(([product, v]) => {
      total = total.plus(v.value);
      return { product, sku: names.get(product)?.sku ?? null, name: names.get(product)?.name ?? null, quantity: qty(v.qty), value: money(v.value), unitCost: v.qty.gt(0) ? cost(v.value.div(v.qty)) : null };
    }).sort((a, b) => String(a.sku).localeCompare(String(b.sku)));
    const period = await this.closedOnOrBefore(asOf);
    return { report: 'valuation', asOf, fromPeriod: period?.date ?? null, columns: ['product', 'sku', 'name', 'quantity', 'value', 'unitCost'], rows, totalValue: money(total) };
  }

  /** Every done move of a product, with running quantity and value (value: all valued locations; with a location: quantity there). */
  async stockLedger(query: { product: string; location?: string; from?: string; to?: string }): Promise<Report> {
    const to = query.to ?? today();
    if (query.from && query.from > to) throw fieldError('bad-query', 'from', 'maximum', 'from must not be after to');
    const scope = query.location ? await this.scope({ location: query.location }) : undefined;
    const moves = tableRef(this.ctx, 'warehouse_moves');
    const locations = tableRef(this.ctx, 'warehouse_locations');
    const inScope = (alias: string) => (scope ? `(${alias}.id = ? or coalesce(${alias}.path, '') like ?)` : `${alias}.type in ('internal', 'transit')`);
    const sb = scope ? [scope, `%/${scope}/%`] : [];
    // Opening: quantity (in scope) and value just before `from`.
    let openingQty = ZERO;
    let openingValue = ZERO;
    if (query.from) {
      const before = addDays(query.from, -1);
      if (scope) {
        const rows = await this.quantitiesAsOf(before, scope, query.product);
        openingQty = rows.reduce((a, r) => a.plus(dec(r.on_hand)), ZERO);
      } else {
        const v = (await this.valuationAsOf(before, query.product)).get(query.product);
        openingQty = v?.qty ?? ZERO;
        openingValue = v?.value ?? ZERO;
      }
    }
    const rows: Record<string, any>[] = (await this.raw()(
      `select m.id, m.date, m.kind, m.quantity, m.lot, m."fromLocation", m."toLocation", m.valuation, m.value, m."sourceEntity", m."sourceId", m.memo, m.reverses,
         lf.code as from_code, lt.code as to_code, ${inScope('lf')} as out_of_scope, ${inScope('lt')} as into_scope,
         (select coalesce(sum(r.delta), 0) from ${tableRef(this.ctx, 'warehouse_revaluations')} r where r.move_id = m.id) as reval
       from ${moves} m join ${locations} lf on lf.id = m."fromLocation" join ${locations} lt on lt.id = m."toLocation"
       where m.product = ? and m.status = 'done' and m.date <= ? ${query.from ? 'and m.date >= ?' : ''}
       order by m.date, m.seq`,
      [...sb, ...sb, query.product, to, ...(query.from ? [query.from] : [])],
    )).rows;
    const lots = await this.lotNumbers(rows.map((r) => r.lot).filter(Boolean));
    let runningQty = openingQty;
    let runningValue = openingValue;
    const out = rows.filter((r) => r.out_of_scope !== r.into_scope).map((r) => {
      const q = dec(r.quantity);
      const incoming = r.into_scope === true;
      runningQty = incoming ? runningQty.plus(q) : runningQty.minus(q);
      const value = r.valuation === 'none' ? null : dec(r.value).plus(dec(r.reval));
      if (!scope && value) runningValue = r.valuation === 'in' ? runningValue.plus(value) : runningValue.minus(value);
      return {
        date: dateText(r.date), move: r.id, kind: r.kind, from: r.from_code, to: r.to_code, lot: r.lot ? lots.get(r.lot) ?? r.lot : null,
        quantityIn: incoming ? qty(q) : null, quantityOut: incoming ? null : qty(q),
        value: scope || !value ? null : money(value), revaluation: scope || dec(r.reval).isZero() ? null : money(dec(r.reval)),
        balanceQuantity: qty(runningQty), balanceValue: scope ? null : money(runningValue),
        source: r.sourceEntity ? `${r.sourceEntity}/${r.sourceId}` : null, memo: r.memo ?? null,
      };
    });
    return {
      report: 'stock-ledger', product: query.product, location: scope ?? null, from: query.from ?? null, to,
      opening: { quantity: qty(openingQty), value: scope ? null : money(openingValue) },
      closing: { quantity: qty(runningQty), value: scope ? null : money(runningValue) },
      columns: ['date', 'move', 'kind', 'from', 'to', 'lot', 'quantityIn', 'quantityOut', 'value', 'revaluation', 'balanceQuantity', 'balanceValue', 'source', 'memo'],
      rows: out,
    };
  }

  /** Done moves in a date range touching a location's subtree (or all), newest last, keyset-paged. */
  async movements(query: { from?: string; to?: string; product?: string; warehouse?: string; location?: string; kind?: string; limit: number; cursor?: string }): Promise<Report & { next: string | null }> {
    const scope = await this.scope(query);
    let after: [string, number] | undefined;
    if (query.cursor) {
      let c: unknown;
      try { c = JSON.parse(Buffer.from(query.cursor, 'base64url').toString('utf8')); } catch { c = undefined; }
      if (!Array.isArray(c) || typeof c[0] !== 'string' || typeof c[1] !== 'number') throw fieldError('bad-query', 'cursor', 'format', 'cursor must be the "next" value of the previous page');
      after = [c[0], c[1]];
    }
    const moves = tableRef(this.ctx, 'warehouse_moves');
    const locations = tableRef(this.ctx, 'warehouse_locations');
    const where: string[] = [`m.status = 'done'`];
    const bindings: unknown[] = [];
    if (query.from) { where.push('m.date >= ?'); bindings.push(query.from); }
    if (query.to) { where.push('m.date <= ?'); bindings.push(query.to); }
    if (query.product) { where.push('m.product = ?'); bindings.push(query.product); }
    if (query.kind) { where.push('m.kind = ?'); bindings.push(query.kind); }
    if (scope) { where.push("((lf.id = ? or coalesce(lf.path, '') like ?) or (lt.id = ? or coalesce(lt.path, '') like ?))"); bindings.push(scope, `%/${scope}/%`, scope, `%/${scope}/%`); }
    if (after) { where.push('(m.date, m.seq) > (?::date, ?)'); bindings.push(after[0], after[1]); }
    const rows: Record<string, any>[] = (await this.raw()(
      `select m.id, m.seq, m.date, m.kind, m.product, m.quantity, m.lot, m.valuation, m.value, m."unitCost", m."sourceEntity", m."sourceId", m.memo, m.reverses, m.reservation,
         lf.code as from_code, lt.code as to_code
       from ${moves} m join ${locations} lf on lf.id = m."fromLocation" join ${locations} lt on lt.id = m."toLocation"
       where ${where.join(' and ')} order by m.date, m.seq limit ?`,
      [...bindings, query.limit + 1],
    )).rows;
    const more = rows.length > query.limit;
    if (more) rows.pop();
    const [names, lots] = await Promise.all([this.catalogue(rows.map((r) => r.product)), this.lotNumbers(rows.map((r) => r.lot).filter(Boolean))]);
    const last = rows[rows.length - 1];
    return {
      report: 'movements', from: query.from ?? null, to: query.to ?? null,
      columns: ['date', 'move', 'kind', 'sku', 'quantity', 'from', 'to', 'lot', 'value', 'source', 'memo'],
      rows: rows.map((r) => ({
        date: dateText(r.date), move: r.id, kind: r.kind, product: r.product, sku: names.get(r.product)?.sku ?? null, quantity: qty(dec(r.quantity)),
        from: r.from_code, to: r.to_code, lot: r.lot ? lots.get(r.lot) ?? r.lot : null, value: r.value == null ? null : money(dec(r.value)),
        source: r.sourceEntity ? `${r.sourceEntity}/${r.sourceId}` : null, memo: r.memo ?? null, reverses: r.reverses ?? null,
      })),
      next: more && last ? Buffer.from(JSON.stringify([dateText(last.date), Number(last.seq)])).toString('base64url') : null,
    };
  }

  /** Products in stock that shipped nothing (or little) for `days` days up to `asOf`. */
  async slowMovers(query: { days: number; asOf?: string; warehouse?: string; location?: string }): Promise<Report> {
    const asOf = query.asOf ?? today();
    const since = addDays(asOf, -query.days);
    const scope = await this.scope(query);
    const where = this.inScope('l', scope);
    const balances = tableRef(this.ctx, 'warehouse_balances');
    const locations = tableRef(this.ctx, 'warehouse_locations');
    const moves = tableRef(this.ctx, 'warehouse_moves');
    const rows: { product_id: string; on_hand: string; last_out: unknown; shipped: string | null }[] = (await this.raw()(
      `with stock as (
         select b.product_id, sum(b.on_hand) as on_hand from ${balances} b join ${locations} l on l.id = b.location_id
         where l.type in ('internal', 'transit') ${where.sql} group by b.product_id having sum(b.on_hand) > 0
       )
       select s.product_id, s.on_hand,
         (select max(m.date) from ${moves} m where m.product = s.product_id and m.status = 'done' and m.kind = 'shipment' and m.valuation = 'out' and m.date <= ?) as last_out,
         (select sum(m.quantity) from ${moves} m where m.product = s.product_id and m.status = 'done' and m.kind = 'shipment' and m.valuation = 'out' and m.date > ? and m.date <= ?) as shipped
       from stock s`,
      [...where.bindings, asOf, since, asOf],
    )).rows;
    const slow = rows.filter((r) => !r.last_out || dateText(r.last_out) <= since);
    const [names, costs] = await Promise.all([
      this.catalogue(slow.map((r) => r.product_id)),
      slow.length ? this.ctx.table('warehouse_costs').whereIn('product_id', slow.map((r) => r.product_id)).select('product_id', 'unit_cost') : Promise.resolve([]),
    ]);
    const unitCost = new Map((costs as { product_id: string; unit_cost: string }[]).map((c) => [c.product_id, dec(c.unit_cost)]));
    const days = (d: unknown) => (d ? Math.round((Date.parse(`${asOf}T00:00:00Z`) - Date.parse(`${dateText(d)}T00:00:00Z`)) / 86400_000) : null);
    const out = slow.map((r) => ({
      product: r.product_id, sku: names.get(r.product_id)?.sku ?? null, name: names.get(r.product_id)?.name ?? null, onHand: qty(dec(r.on_hand)),
      value: money(dec(r.on_hand).times(unitCost.get(r.product_id) ?? ZERO)), lastShipment: r.last_out ? dateText(r.last_out) : null, daysSinceShipment: days(r.last_out),
    })).sort((a, b) => (b.daysSinceShipment ?? Infinity) - (a.daysSinceShipment ?? Infinity) || String(a.sku).localeCompare(String(b.sku)));
    return { report: 'slow-movers', asOf, days: query.days, columns: ['product', 'sku', 'name', 'onHand', 'value', 'lastShipment', 'daysSinceShipment'], rows: out };
  }

  /** Products at or below their reorder point, with a suggested purchase quantity. */
  async reorder(query: { warehouse?: string; location?: string }): Promise<Report> {
    const scope = await this.scope(query);
    const where = this.inScope('l', scope);
    const settings: Record<string, any>[] = await this.ctx.table('warehouse_products').whereNotNull('reorderPoint').where((w) => { w.where('active', true).orWhereNull('active'); });
    if (settings.length === 0) return { report: 'reorder', columns: [], rows: [] };
    const sums: { product_id: string; on_hand: string; reserved: string; incoming: string; outgoing: string }[] = (await this.raw()(
      `select b.product_id, sum(b.on_hand) as on_hand, sum(b.reserved) as reserved, sum(b.incoming) as incoming, sum(b.outgoing) as outgoing
       from ${tableRef(this.ctx, 'warehouse_balances')} b join ${tableRef(this.ctx, 'warehouse_locations')} l on l.id = b.location_id
       where l.type = 'internal' and b.product_id = any(?::uuid[]) ${where.sql} group by b.product_id`,
      [settings.map((s) => s.product), ...where.bindings],
    )).rows;
    const byProduct = new Map(sums.map((s) => [s.product_id, s]));
    const names = await this.catalogue(settings.map((s) => s.product));
    const rows = settings.flatMap((s) => {
      const b = byProduct.get(s.product);
      const onHand = dec(b?.on_hand);
      const reserved = dec(b?.reserved);
      const incoming = dec(b?.incoming);
      const outgoing = dec(b?.outgoing);
      const projected = onHand.minus(reserved).plus(incoming).minus(outgoing);
      const point = dec(s.reorderPoint);
      if (projected.gt(point)) return [];
      let suggested = Decimal.max(dec(s.reorderQuantity), point.minus(projected));
      const factor = s.purchaseFactor ? dec(s.purchaseFactor) : undefined;
      const purchaseUnits = factor && factor.gt(0) ? suggested.div(factor).toDecimalPlaces(0, Decimal.ROUND_UP) : undefined;
      if (purchaseUnits && factor) suggested = purchaseUnits.times(factor);
      return [{
        product: s.product, sku: names.get(s.product)?.sku ?? null, name: names.get(s.product)?.name ?? null,
        onHand: qty(onHand), reserved: qty(reserved), incoming: qty(incoming), outgoing: qty(outgoing), projected: qty(projected),
        reorderPoint: qty(point), reorderQuantity: s.reorderQuantity == null ? null : qty(dec(s.reorderQuantity)), suggestedQuantity: qty(suggested),
        purchaseUnit: s.purchaseUnit ?? null, suggestedPurchaseUnits: purchaseUnits ? purchaseUnits.toFixed(0) : null,
      }];
    }).sort((a, b) => String(a.sku).localeCompare(String(b.sku)));
    return {
      report: 'reorder', note: 'projected = on hand − reserved + incoming − outgoing in internal locations; suggested = max(reorder quantity, reorder point − projected), rounded up to whole purchase units',
      columns: ['product', 'sku', 'name', 'onHand', 'reserved', 'incoming', 'outgoing', 'projected', 'reorderPoint', 'reorderQuantity', 'suggestedQuantity', 'purchaseUnit', 'suggestedPurchaseUnits'], rows,
    };
  }
}

export { KubikiError };
