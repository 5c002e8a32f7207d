import { Decimal, ZERO, dec } from './util.ts';

// Dated parameters: every rate, limit and amount is a row valid from a date, never a constant in
// code. The value in force on a date is the row with the latest validFrom on or before it.

export interface Bracket { upTo?: string; rate: string }
export interface ParameterRow { code: string; country: string; validFrom: string; value?: string | null; scale?: Bracket[] | null }
export interface ParameterValue { code: string; validFrom: string; value?: string; scale?: Bracket[] }

export class Parameters {
  private readonly byKey = new Map<string, ParameterRow[]>();

  constructor(rows: readonly ParameterRow[]) {
    for (const row of rows) {
      const key = `${row.country}:${row.code}`;
      const list = this.byKey.get(key) ?? [];
      list.push(row);
      this.byKey.set(key, list);
    }
    for (const list of this.byKey.values()) list.sort((a, b) => (a.validFrom < b.validFrom ? 1 : -1));
  }

  at(code: string, date: string, country = 'RU'): ParameterValue | undefined {
    const row = this.byKey.get(`${country}:${code}`)?.find((r) => r.validFrom <= date);
    if (!row) return undefined;
    return { code, validFrom: row.validFrom, ...(row.scale ? { scale: row.scale } : { value: String(row.value) }) };
  }

  /** Every parameter of the country in force on `date`: what formulas see as `vars`. */
  varsAt(date: string, country = 'RU'): Map<string, ParameterValue> {
    const out = new Map<string, ParameterValue>();
    for (const key of this.byKey.keys()) {
      if (!key.startsWith(`${country}:`)) continue;
      const code = key.slice(country.length + 1);
      const v = this.at(code, date, country);
      if (v) out.set(code, v);
    }
    return out;
  }

  codes(country = 'RU'): Set<string> {
    return new Set([...this.byKey.keys()].filter((k) => k.startsWith(`${country}:`)).map((k) => k.slice(country.length + 1)));
  }

  hasScale(code: string, country = 'RU'): boolean {
    return (this.byKey.get(`${country}:${code}`) ?? []).some((r) => Array.isArray(r.scale));
  }
}

/** A progressive scale applied to a base: each bracket's rate (percent) on the part of the base up to its upTo. */
export function applyScale(scale: readonly Bracket[], base: Decimal): Decimal {
  let rest = Decimal.max(base, ZERO);
  let lower = ZERO;
  let total = ZERO;
  for (const b of scale) {
    if (rest.isZero()) break;
    const width = b.upTo === undefined ? rest : Decimal.min(rest, Decimal.max(dec(b.upTo).minus(lower), ZERO));
    total = total.plus(width.times(dec(b.rate)).div(100));
    rest = rest.minus(width);
    if (b.upTo !== undefined) lower = dec(b.upTo);
  }
  return total;
}
