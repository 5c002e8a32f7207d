import type { Knex } from 'knex';
import type { EntityDefinition } from './entity-definition.ts';

/**
 * `q=`: a record matches when a title field (`x-title`) contains the text, or an identifier field
 * (`"x-search": "exact"`: INN, OGRN, barcode…) equals it.
 *
 * Russian readers write е for ё (and search "ежик" for "Ёжик"), so both sides are folded before
 * comparing: Cyrillic capitals to small letters and ё to е. The folding is spelled out letter by
 * letter with translate() instead of lower(), because lower() and ILIKE only fold Cyrillic under a
 * UTF-8 LC_CTYPE and a PostgreSQL created with LC_CTYPE=C would silently stop matching; ILIKE still
 * does the Latin case. The letters are literals in the SQL (never user text) so that an expression
 * index on exactly this expression could serve it.
 */
const FOLD_FROM = 'АБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЫЬЭЮЯё';
const FOLD_TO = 'абвгдеежзийклмнопрстуфхцчшщъыьэюяе';
const FOLD = new Map([...FOLD_FROM].map((c, i) => [c, FOLD_TO[i]]));

/** The SQL of a folded column; `??` is the column name binding. */
export const FOLDED_COLUMN_SQL = `translate(??, '${FOLD_FROM}', '${FOLD_TO}')`;

/** The same folding as FOLDED_COLUMN_SQL, for the search text. */
export const foldSearchText = (s: string): string => [...s].map((c) => FOLD.get(c) ?? c).join('');

export const escapeLike = (s: string): string => s.replace(/[\\%_]/g, (c) => `\\${c}`);

export function applyTextSearch(qb: Knex.QueryBuilder, entity: EntityDefinition, q: string): void {
  const pattern = `%${escapeLike(foldSearchText(q))}%`;
  // Identifiers are compared whole and as stored (an equality the field's b-tree index serves);
  // spaces around a pasted INN are not part of it.
  const exact = q.trim();
  const fields = [...entity.fields.values()];
  qb.where((w) => {
    for (const f of fields) if (f.title) w.orWhereRaw(`${FOLDED_COLUMN_SQL} ilike ?`, [f.name, pattern]);
    if (exact) for (const f of fields) if (f.search === 'exact') w.orWhere(f.name, exact);
  });
}
