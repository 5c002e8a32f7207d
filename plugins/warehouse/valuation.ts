import type { Knex } from 'knex';
import type { PluginContext } from 'kubiki/plugin';
import { Decimal, ZERO, dateText, dec, groupBy, money, qty, cost, round2, round4, tableRef } from './util.ts';

// Valuation: every move into or out of valued stock (internal and transit locations) carries its
// value. Receipts enter at their cost; issues leave at the moving average or FIFO. The cost state
// of a product after its last move is one row (warehouse_costs), locked in product order by each
// valued posting, so posting in date order costs one row read and one row write per product.
//
// A back-dated move (dated before the product's last valued move) changes the cost of the issues
// after it. They are recomputed from the last closed stock period's snapshot — never from the
// beginning of time — by replaying the product's moves since then in ledger order (date, seq).
// Posted moves keep their value; a changed issue gets a revaluation row (the difference), dated
// as the issue, so valuation as of any date is the snapshot plus the moves and revaluations after it.

export type Method = 'average' | 'fifo';

/** A FIFO layer: quantity left and its value; `m` the receipt that made it. */
export interface Layer { q: Decimal; v: Decimal; m: string | null }

export interface CostState {
  method: Method;
  qty: Decimal;
  value: Decimal;
  /** The current unit cost (4 decimals): average value/quantity, or FIFO's newest receipt. Used when stock is not there to take the cost from. */
  unitCost: Decimal;
  layers: Layer[];
  lastDate: string | null;
}

/** A valued move as the valuation sees it. */
export interface ValuedMove {
  id: string;
  date: string;
  direction: 'in' | 'out';
  qty: Decimal;
  /** A move already in the ledger (replayed), or one being posted. */
  existing: boolean;
  /** Existing moves: their value as posted plus revaluations. */
  effective?: Decimal;
  /** New receipts: the cost per unit they were given. */
  unitCost?: Decimal;
  /** The move this one reverses. */
  reverses?: string;
  /** The reversed move's value when it is outside the replay (before the snapshot, or already posted). */
  reversedValue?: Decimal;
}

export const emptyState = (method: Method): CostState => ({ method, qty: ZERO, value: ZERO, unitCost: ZERO, layers: [], lastDate: null });

function parseLayers(raw: unknown): Layer[] {
  const list = typeof raw === 'string' ? JSON.parse(raw) : raw;
  return Array.isArray(list) ? list.map((l: { q: string; v: string; m?: string | null }) => ({ q: new Decimal(l.q), v: new Decimal(l.v), m: l.m ?? null })) : [];
}
export const layersJson = (layers: Layer[]): { q: string; v: string; m: string | null }[] => layers.map((l) => ({ q: qty(l.q), v: money(l.v), m: l.m }));

export function stateOf(row: { method: string; quantity: string; value: string; unit_cost: string; layers: unknown; last_date?: unknown }): CostState {
  return {
    method: row.method === 'fifo' ? 'fifo' : 'average', qty: dec(row.quantity), value: dec(row.value), unitCost: dec(row.unit_cost),
    layers: parseLayers(row.layers), lastDate: row.last_date ? dateText(row.last_date) : null,
  };
}

const clone = (s: CostState): CostState => ({ ...s, layers: s.layers.map((l) => ({ ...l })) });

/** Stock comes in: quantity and value added; FIFO makes a layer (netting any shortage first). */
function receive(s: CostState, q: Decimal, v: Decimal, move: string): void {
  s.qty = s.qty.plus(q);
  s.value = s.value.plus(v);
  if (s.method === 'average') {
    s.unitCost = s.qty.gt(0) ? round4(s.value.div(s.qty)) : round4(v.div(q));
    return;
  }
  let layer: Layer = { q, v, m: move };
  // A shortage (negative layer, issued at an assumed cost) or a zero-quantity residue is netted
  // into the new layer: its value absorbs the difference, so the layers always sum to the value.
  while (s.layers.length && s.layers[0].q.lte(0)) {
    const n = s.layers.shift()!;
    layer = { q: layer.q.plus(n.q), v: layer.v.plus(n.v), m: layer.m };
  }
  if (layer.q.lt(0)) s.layers.unshift(layer);
  else s.layers.push(layer);
  s.unitCost = round4(v.div(q));
}

/** Stock goes out: the value it takes. */
function issue(s: CostState, q: Decimal, options: { fixed?: Decimal; preferLayer?: string } = {}): Decimal {
  let value: Decimal;
  if (s.method === 'average') {
    if (options.fixed !== undefined) value = options.fixed;
    else if (s.qty.gt(0) && q.lte(s.qty)) value = q.eq(s.qty) ? s.value : round2(s.value.times(q).div(s.qty));
    else if (s.qty.gt(0)) value = s.value.plus(round2(q.minus(s.qty).times(s.unitCost)));
    else value = round2(q.times(s.unitCost));
    s.qty = s.qty.minus(q);
    s.value = s.value.minus(value);
    if (s.qty.gt(0)) s.unitCost = round4(s.value.div(s.qty));
    return value;
  }
  let remaining = q;
  value = ZERO;
  const take = (i: number) => {
    const layer = s.layers[i];
    const c = Decimal.min(layer.q, remaining);
    const part = c.eq(layer.q) ? layer.v : round2(layer.v.times(c).div(layer.q));
    layer.q = layer.q.minus(c);
    layer.v = layer.v.minus(part);
    value = value.plus(part);
    remaining = remaining.minus(c);
  };
  if (options.preferLayer) {
    const i = s.layers.findIndex((l) => l.m === options.preferLayer && l.q.gt(0));
    if (i >= 0) take(i);
  }
  for (let i = 0; i < s.layers.length && remaining.gt(0); i++) if (s.layers[i].q.gt(0)) take(i);
  // Consumed layers go; a zero-quantity residue stays to be netted into the next receipt.
  s.layers = s.layers.filter((l) => !l.q.isZero() || !l.v.isZero());
  if (remaining.gt(0)) {
    // More than is in stock (negative stock allowed): at the newest cost, as a shortage layer.
    // Every layer left has no quantity (a shortage or a residue): they merge into one shortage layer.
    const part = round2(remaining.times(s.unitCost));
    value = value.plus(part);
    const restQ = s.layers.reduce((a, l) => a.plus(l.q), ZERO);
    const restV = s.layers.reduce((a, l) => a.plus(l.v), ZERO);
    s.layers = [{ q: restQ.minus(remaining), v: restV.minus(part), m: null }];
  }
  s.qty = s.qty.minus(q);
  s.value = s.value.minus(value);
  return value;
}

/**
 * Values one move on `s` (changing it): in-moves at their fixed value (the posted one, a reversal's
 * original value, the given unit cost, or the current unit cost); out-moves by the method — a
 * reversed receipt leaves at its own value (average) or from its own layer first (FIFO).
 */
export function valueMove(s: CostState, m: ValuedMove, reversedValue?: Decimal): Decimal {
  let value: Decimal;
  if (m.direction === 'in') {
    if (m.reverses && reversedValue !== undefined) value = reversedValue;
    else if (m.existing && m.effective !== undefined) value = m.effective;
    else if (m.unitCost !== undefined) value = round2(m.qty.times(m.unitCost));
    else value = round2(m.qty.times(s.unitCost));
    receive(s, m.qty, value, m.id);
  } else if (m.reverses && s.method === 'average' && reversedValue !== undefined) {
    value = issue(s, m.qty, { fixed: reversedValue });
  } else {
    value = issue(s, m.qty, { preferLayer: m.reverses });
  }
  if (!s.lastDate || m.date > s.lastDate) s.lastDate = m.date;
  return value;
}

/**
 * Values `moves` in order from `start`; answers the end state and each move's value. Reversals
 * take their original's value as computed here when it is in the run, else `reversedValue`.
 */
export function replay(start: CostState, moves: readonly ValuedMove[]): { state: CostState; values: Map<string, Decimal> } {
  const s = clone(start);
  const values = new Map<string, Decimal>();
  for (const m of moves) {
    const original = m.reverses ? values.get(m.reverses) ?? m.reversedValue : undefined;
    values.set(m.id, valueMove(s, m, original));
  }
  return { state: s, values };
}

export interface Revaluation { move_id: string; caused_by: string; product_id: string; date: string; delta: string; stock_delta: string }

/**
 * The valuation step of a posting, inside its transaction: locks the products' cost rows (in
 * product order), values the new moves — in date order on the current state, or by a replay from
 * the last closed snapshot when one is back-dated — stores the new states and answers the values
 * and the revaluations of later issues.
 */
export class Valuation {
  constructor(private readonly ctx: PluginContext) {}

  async post(trx: Knex.Transaction, moves: (ValuedMove & { product: string; method: Method })[], snapshot: { id: string; date: string } | undefined): Promise<{ values: Map<string, Decimal>; revaluations: Revaluation[] }> {
    const values = new Map<string, Decimal>();
    const revaluations: Revaluation[] = [];
    if (moves.length === 0) return { values, revaluations };
    const byProduct = groupBy(moves, (m) => m.product);
    const products = [...byProduct.keys()].sort();
    const locked = (await trx.raw(
      `insert into ${tableRef(this.ctx, 'warehouse_costs')} as c (product_id, method) select x.p, x.m from json_to_recordset(?::json) as x(p uuid, m text) order by x.p
       on conflict (product_id) do update set updated_at = now() returning product_id, method, quantity, value, unit_cost, layers, last_date`,
      [JSON.stringify(products.map((p) => ({ p, m: byProduct.get(p)![0].method })))],
    )).rows as { product_id: string; method: string; quantity: string; value: string; unit_cost: string; layers: unknown; last_date: unknown }[];
    const states = new Map(locked.map((r) => [r.product_id, stateOf(r)]));
    const updates: Record<string, unknown>[] = [];
    for (const product of products) {
      const list = byProduct.get(product)!; // in ledger order (the caller sorts by date)
      let state = states.get(product)!;
      const backdated = state.lastDate !== null && list.some((m) => m.date < state.lastDate!);
      if (!backdated) {
        for (const m of list) values.set(m.id, valueMove(state, m, m.reversedValue));
      } else {
        const { state: end, values: replayed, changed } = await this.replayFrom(trx, product, state.method, snapshot, list);
        state = end;
        for (const m of list) values.set(m.id, replayed.get(m.id)!);
        const cause = list.reduce((a, b) => (b.date < a.date ? b : a));
        for (const c of changed) revaluations.push({ move_id: c.id, caused_by: cause.id, product_id: product, date: c.date, delta: money(c.delta), stock_delta: money(c.direction === 'in' ? c.delta : c.delta.negated()) });
      }
      updates.push({ p: product, q: qty(state.qty), v: money(state.value), u: cost(state.unitCost), l: layersJson(state.layers), d: state.lastDate });
    }
    await trx.raw(
      `update ${tableRef(this.ctx, 'warehouse_costs')} c set quantity = x.q, value = x.v, unit_cost = x.u, layers = x.l, last_date = x.d, updated_at = now()
       from json_to_recordset(?::json) as x(p uuid, q numeric, v numeric, u numeric, l jsonb, d date) where c.product_id = x.p`,
      [JSON.stringify(updates)],
    );
    return { values, revaluations };
  }

  /** The cost state at a closed period's end (empty when none was closed). */
  async snapshotState(trx: Knex | Knex.Transaction, product: string, method: Method, snapshot: { id: string } | undefined): Promise<CostState> {
    if (!snapshot) return emptyState(method);
    const row = await this.ctx.table('warehouse_period_costs', trx).where({ period_id: snapshot.id, product_id: product }).first();
    return row ? { ...stateOf(row), lastDate: null } : emptyState(method);
  }

  /** The valued moves of a product after `after` (a date) in ledger order, with their effective values. */
  async ledgerAfter(trx: Knex | Knex.Transaction, product: string, after: string | undefined, until?: string): Promise<ValuedMove[]> {
    const q = this.ctx.table('warehouse_moves as m', trx)
      .leftJoin(this.ctx.table('warehouse_revaluations', trx).where({ product_id: product }).groupBy('move_id').select('move_id', trx.raw('sum(delta) as delta')).as('r'), 'r.move_id', 'm.id')
      .where({ 'm.product': product, 'm.status': 'done' }).whereNot('m.valuation', 'none')
      .orderBy([{ column: 'm.date' }, { column: 'm.seq' }])
      .select('m.id', 'm.date', 'm.valuation', 'm.quantity', 'm.value', 'm.reverses', trx.raw('coalesce(r.delta, 0) as reval'));
    if (after) q.where('m.date', '>', after);
    if (until) q.where('m.date', '<=', until);
    const rows: { id: string; date: unknown; valuation: string; quantity: string; value: string | null; reverses: string | null; reval: string }[] = await q;
    const moves: ValuedMove[] = rows.map((r) => ({
      id: r.id, date: dateText(r.date), direction: r.valuation === 'in' ? 'in' : 'out', qty: dec(r.quantity), existing: true,
      effective: dec(r.value).plus(dec(r.reval)), ...(r.reverses ? { reverses: r.reverses } : {}),
    }));
    // Reversals of moves before the run take the original's effective value.
    const outside = [...new Set(moves.filter((m) => m.reverses).map((m) => m.reverses!))].filter((id) => !moves.some((m) => m.id === id));
    if (outside.length) {
      const effective = await this.effectiveValues(trx, outside);
      for (const m of moves) if (m.reverses && effective.has(m.reverses)) m.reversedValue = effective.get(m.reverses);
    }
    return moves;
  }

  /**
   * The valued moves of every product dated in (after, until], in ledger order, with effective
   * values: what closing a period replays (one query, whatever the number of products).
   */
  async ledgerRange(trx: Knex | Knex.Transaction, after: string | undefined, until: string): Promise<Map<string, ValuedMove[]>> {
    const q = this.ctx.table('warehouse_moves as m', trx)
      .where({ 'm.status': 'done' }).whereNot('m.valuation', 'none').where('m.date', '<=', until)
      .orderBy([{ column: 'm.product' }, { column: 'm.date' }, { column: 'm.seq' }])
      .select('m.id', 'm.product', 'm.date', 'm.valuation', 'm.quantity', 'm.value', 'm.reverses',
        trx.raw(`(select sum(delta) from ${tableRef(this.ctx, 'warehouse_revaluations')} r where r.move_id = m.id) as reval`));
    if (after) q.where('m.date', '>', after);
    const rows: { id: string; product: string; date: unknown; valuation: string; quantity: string; value: string | null; reverses: string | null; reval: string | null }[] = await q;
    const out = new Map<string, ValuedMove[]>();
    const ids = new Set(rows.map((r) => r.id));
    const outside: string[] = [];
    for (const r of rows) {
      const list = out.get(r.product) ?? [];
      list.push({ id: r.id, date: dateText(r.date), direction: r.valuation === 'in' ? 'in' : 'out', qty: dec(r.quantity), existing: true, effective: dec(r.value).plus(dec(r.reval)), ...(r.reverses ? { reverses: r.reverses } : {}) });
      out.set(r.product, list);
      if (r.reverses && !ids.has(r.reverses)) outside.push(r.reverses);
    }
    if (outside.length) {
      const effective = await this.effectiveValues(trx, outside);
      for (const list of out.values()) for (const m of list) if (m.reverses && effective.has(m.reverses)) m.reversedValue = effective.get(m.reverses);
    }
    return out;
  }

  /** Value as posted plus revaluations, per move. */
  async effectiveValues(trx: Knex | Knex.Transaction, ids: string[]): Promise<Map<string, Decimal>> {
    if (ids.length === 0) return new Map();
    const rows: { id: string; value: string | null; reval: string | null }[] = await this.ctx.table('warehouse_moves as m', trx).whereIn('m.id', ids)
      .select('m.id', 'm.value', trx.raw(`(select sum(delta) from ${tableRef(this.ctx, 'warehouse_revaluations')} r where r.move_id = m.id) as reval`));
    return new Map(rows.map((r) => [r.id, dec(r.value).plus(dec(r.reval))]));
  }

  /** Replays a product from the snapshot with new moves merged in; lists existing moves whose value changed. */
  private async replayFrom(trx: Knex.Transaction, product: string, method: Method, snapshot: { id: string; date: string } | undefined, fresh: ValuedMove[]) {
    const start = await this.snapshotState(trx, product, method, snapshot);
    const existing = await this.ledgerAfter(trx, product, snapshot?.date);
    // New moves go after the existing ones of their date (they get the higher seq).
    const merged: ValuedMove[] = [];
    let i = 0;
    for (const m of fresh) {
      while (i < existing.length && existing[i].date <= m.date) merged.push(existing[i++]);
      merged.push(m);
    }
    while (i < existing.length) merged.push(existing[i++]);
    const { state, values } = replay(start, merged);
    const changed = existing.filter((m) => !values.get(m.id)!.eq(m.effective!)).map((m) => ({ id: m.id, date: m.date, direction: m.direction, delta: values.get(m.id)!.minus(m.effective!) }));
    return { state, values, changed };
  }
}
