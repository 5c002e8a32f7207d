import type { Knex } from 'knex';
import type { PluginContext } from 'kubiki/plugin';
import { STOCKABLE, isUuid, tableRef } from './util.ts';

/** A location as the stock layer needs it: its type, where it is in its tree, its warehouse's rules. */
export interface Place {
  id: string;
  code: string;
  type: string;
  active: boolean;
  parent: string | null;
  warehouse: string | null;
  /** Ids of the locations above it, root first. */
  ancestors: string[];
  /** The top of its tree: the warehouse's root location, or the location itself. */
  root: string;
  stockable: boolean;
  /** Its warehouse's settings (none: no negative stock, reservations refused beyond available). */
  allowNegative: boolean;
  reservationPolicy: 'refuse' | 'backorder';
}

export const pathIds = (path: unknown): string[] => (typeof path === 'string' ? path.split('/').filter(Boolean) : []);

/**
 * Reads locations with their warehouses' settings by id — and, for `warehouses`, each one's root
 * location (keyed by the warehouse id too) — in one query whatever the count.
 */
export async function loadPlaces(ctx: PluginContext, ids: Iterable<string>, trx: Knex | Knex.Transaction, warehouses: Iterable<string> = []): Promise<Map<string, Place>> {
  const wanted = [...new Set(ids)].filter(isUuid);
  const roots = [...new Set(warehouses)].filter(isUuid);
  const out = new Map<string, Place>();
  if (wanted.length === 0 && roots.length === 0) return out;
  const rows: { id: string; code: string; type: string; active: boolean; parent: string | null; warehouse: string | null; path: string | null; level: string | null; allowNegativeStock: boolean | null; reservationPolicy: string | null }[] = (await trx.raw(
    `select l.id, l.code, l.type, l.active, l.parent, l.warehouse, l.path, l.level, w."allowNegativeStock", w."reservationPolicy"
     from ${tableRef(ctx, 'warehouse_locations')} l left join ${tableRef(ctx, 'warehouse_warehouses')} w on w.id = l.warehouse
     where l.id = any(?::uuid[]) or (l.level = 'warehouse' and l.parent is null and l.warehouse = any(?::uuid[]))`,
    [wanted, roots],
  )).rows;
  for (const r of rows) {
    const ancestors = pathIds(r.path);
    const place: Place = {
      id: r.id, code: r.code, type: r.type, active: r.active !== false, parent: r.parent, warehouse: r.warehouse,
      ancestors, root: ancestors[0] ?? r.id, stockable: STOCKABLE.has(r.type),
      allowNegative: r.allowNegativeStock === true, reservationPolicy: r.reservationPolicy === 'backorder' ? 'backorder' : 'refuse',
    };
    out.set(r.id, place);
    if (r.level === 'warehouse' && !r.parent && r.warehouse && roots.includes(r.warehouse)) out.set(r.warehouse, place);
  }
  return out;
}

/** The ids of a location's subtree membership: the location itself and every location above it. */
export const selfAndAncestors = (p: { id: string; ancestors: string[] }): string[] => [...p.ancestors, p.id];
