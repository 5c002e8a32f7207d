import type { Knex } from 'knex';
import type { PluginContext } from 'kubiki/plugin';
import { Decimal, NIL, ZERO, dec, qty, tableRef } from './util.ts';
import { pathIds } from './places.ts';

// Balances per product × location × lot, kept in the same transaction as the moves and
// reservations that change them. Every change is one INSERT … ON CONFLICT DO UPDATE on the primary
// key (so a key never has two rows), its rows sorted by (product, location, lot): concurrent writers
// take their row locks in one global order and never deadlock. Each writer also touches the
// product's "anchor" row — (product, root of the location's tree, nil lot) — so whoever checks
// availability across a warehouse's locations holds a lock every other writer of that product in
// that warehouse needs. Writers of other products touch none of these rows: they never wait.

export interface BalanceKey { product: string; location: string; lot: string; root: string }
export interface BalanceDelta extends BalanceKey { onHand?: Decimal; reserved?: Decimal; incoming?: Decimal; outgoing?: Decimal }

export interface BalanceRow {
  product: string;
  location: string;
  lot: string;
  onHand: Decimal;
  reserved: Decimal;
  /** Ids above the row's location, root first. */
  ancestors: string[];
}

/** Sums deltas per key and adds the anchor of each (product, root); answers them in key order. */
export function mergeDeltas(deltas: readonly BalanceDelta[]): BalanceDelta[] {
  // Keyed product → location → lot (no key strings to build and hash for every delta).
  const merged = new Map<string, Map<string, Map<string, BalanceDelta>>>();
  const slot = (product: string, location: string): Map<string, BalanceDelta> => {
    let locations = merged.get(product);
    if (!locations) merged.set(product, (locations = new Map()));
    let lots = locations.get(location);
    if (!lots) locations.set(location, (lots = new Map()));
    return lots;
  };
  for (const d of deltas) {
    const lots = slot(d.product, d.location);
    const m = lots.get(d.lot);
    if (!m) lots.set(d.lot, { ...d, onHand: d.onHand ?? ZERO, reserved: d.reserved ?? ZERO, incoming: d.incoming ?? ZERO, outgoing: d.outgoing ?? ZERO });
    else {
      // Only what the delta changes (adding zero changes nothing).
      if (d.onHand) m.onHand = m.onHand!.plus(d.onHand);
      if (d.reserved) m.reserved = m.reserved!.plus(d.reserved);
      if (d.incoming) m.incoming = m.incoming!.plus(d.incoming);
      if (d.outgoing) m.outgoing = m.outgoing!.plus(d.outgoing);
    }
    // The anchor: a row changed by nothing, there to be locked.
    const anchors = slot(d.product, d.root);
    if (!anchors.has(NIL)) anchors.set(NIL, { product: d.product, location: d.root, lot: NIL, root: d.root, onHand: ZERO, reserved: ZERO, incoming: ZERO, outgoing: ZERO });
  }
  const byText = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);
  const out: BalanceDelta[] = [];
  for (const product of [...merged.keys()].sort(byText)) {
    const locations = merged.get(product)!;
    for (const location of [...locations.keys()].sort(byText)) {
      const lots = locations.get(location)!;
      for (const lot of [...lots.keys()].sort(byText)) out.push(lots.get(lot)!);
    }
  }
  return out;
}

export class Balances {
  constructor(private readonly ctx: PluginContext) {}

  /** Applies the deltas (plus anchors) in key order, taking the row locks. */
  async apply(trx: Knex.Transaction, deltas: readonly BalanceDelta[]): Promise<void> {
    const rows = mergeDeltas(deltas);
    if (rows.length === 0) return;
    const table = tableRef(this.ctx, 'warehouse_balances');
    // Chunks stay in key order, so locks are still taken in one global order.
    for (let i = 0; i < rows.length; i += 5000) {
      // Zero changes are left out of the rows sent (read back as 0): most rows change one quantity.
      const part = rows.slice(i, i + 5000).map((r) => {
        const x: Record<string, string> = { p: r.product, l: r.location, t: r.lot, r: r.root };
        if (!r.onHand!.isZero()) x.h = qty(r.onHand!);
        if (!r.reserved!.isZero()) x.s = qty(r.reserved!);
        if (!r.incoming!.isZero()) x.i = qty(r.incoming!);
        if (!r.outgoing!.isZero()) x.o = qty(r.outgoing!);
        return x;
      });
      await trx.raw(
        `insert into ${table} as b (product_id, location_id, lot_id, root_id, on_hand, reserved, incoming, outgoing)
         select x.p, x.l, x.t, x.r, coalesce(x.h, 0), coalesce(x.s, 0), coalesce(x.i, 0), coalesce(x.o, 0)
         from json_to_recordset(?::json) as x(p uuid, l uuid, t uuid, r uuid, h numeric, s numeric, i numeric, o numeric)
         order by x.p, x.l, x.t
         on conflict (product_id, location_id, lot_id) do update set on_hand = b.on_hand + excluded.on_hand, reserved = b.reserved + excluded.reserved,
           incoming = b.incoming + excluded.incoming, outgoing = b.outgoing + excluded.outgoing, updated_at = now()`,
        [JSON.stringify(part)],
      );
    }
  }

  /** Every balance row of the given products in the given trees (read after `apply` locked their anchors). */
  async rowsIn(trx: Knex | Knex.Transaction, pairs: { product: string; root: string }[]): Promise<BalanceRow[]> {
    if (pairs.length === 0) return [];
    const unique = [...new Map(pairs.map((p) => [`${p.product}|${p.root}`, p])).values()];
    const rows: { product_id: string; location_id: string; lot_id: string; on_hand: string; reserved: string; path: string | null }[] = (await trx.raw(
      `select b.product_id, b.location_id, b.lot_id, b.on_hand, b.reserved, l.path
       from ${tableRef(this.ctx, 'warehouse_balances')} b join ${tableRef(this.ctx, 'warehouse_locations')} l on l.id = b.location_id
       join json_to_recordset(?::json) as x(p uuid, r uuid) on b.product_id = x.p and b.root_id = x.r`,
      [JSON.stringify(unique.map((p) => ({ p: p.product, r: p.root })))],
    )).rows;
    // Rows of one location share its path: split once (the lists are only read).
    const paths = new Map<string | null, string[]>();
    const ancestorsOf = (path: string | null) => {
      let ids = paths.get(path);
      if (!ids) paths.set(path, (ids = pathIds(path)));
      return ids;
    };
    return rows.map((r) => ({ product: r.product_id, location: r.location_id, lot: r.lot_id, onHand: dec(r.on_hand), reserved: dec(r.reserved), ancestors: ancestorsOf(r.path) }));
  }
}

/** On hand and reserved in `location`'s subtree (rows of one product), optionally of one lot. */
export function subtree(rows: readonly BalanceRow[], location: string, lot?: string): { onHand: Decimal; reserved: Decimal; available: Decimal } {
  let onHand = ZERO;
  let reserved = ZERO;
  for (const r of rows) {
    if (r.location !== location && !r.ancestors.includes(location)) continue;
    if (lot !== undefined && r.lot !== lot) continue;
    onHand = onHand.plus(r.onHand);
    reserved = reserved.plus(r.reserved);
  }
  return { onHand, reserved, available: onHand.minus(reserved) };
}
