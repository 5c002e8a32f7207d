/**
 * Shared plumbing for the document helpers: splitting Handlebars' call arguments, reading the hash
 * and the template locale, parsing decimal strings. Helpers are pure functions of their arguments:
 * nothing here touches files, env, the network, or inherited (prototype) properties of data.
 */
import { Decimal } from 'decimal.js';
import type { HelperOptions } from 'handlebars';

/** A private Decimal constructor: half-up rounding, no exponent notation, global config untouched. */
export const Dec = Decimal.clone({
  precision: 60,
  rounding: Decimal.ROUND_HALF_UP,
  toExpNeg: -1000,
  toExpPos: 1000,
});
export type Dec = InstanceType<typeof Dec>;

export const DEFAULT_LOCALE = 'ru-RU';

/** A helper as registered: positional params followed by Handlebars' options object. */
export type DocumentHelper = (...args: unknown[]) => unknown;

export interface HelperCall {
  params: unknown[];
  hash: Readonly<Record<string, unknown>>;
  options: HelperOptions;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null;
}

/** Splits `(...params, options)` and checks the helper got between `min` and `max` params. */
export function helperCall(name: string, args: unknown[], min: number, max: number): HelperCall {
  const options = args[args.length - 1];
  if (!isRecord(options) || !isRecord(options.hash)) {
    throw new Error(`${name}: must be called from a template`);
  }
  const params = args.slice(0, -1);
  if (params.length < min || params.length > max) {
    const expected = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    throw new Error(`${name}: expects ${expected} argument(s), got ${params.length}`);
  }
  return { params, hash: options.hash as Record<string, unknown>, options: options as unknown as HelperOptions };
}

const FORBIDDEN_KEYS = new Set(['__proto__', 'prototype', 'constructor']);

/** Reads an own property only (never the prototype chain); `undefined` otherwise. */
export function ownProp(value: unknown, key: string): unknown {
  if (!isRecord(value) || FORBIDDEN_KEYS.has(key) || !Object.hasOwn(value, key)) return undefined;
  return (value as Record<string, unknown>)[key];
}

/** Reads a dotted path ("price.amount") through own properties only. */
export function ownPath(value: unknown, path: string): unknown {
  let current = value;
  for (const key of path.split('.')) current = ownProp(current, key);
  return current;
}

/** Hash `locale=`, else `locale` at the root of the template data, else ru-RU; canonicalised. */
export function resolveLocale(name: string, call: HelperCall): string {
  const fromHash = call.hash.locale;
  const data: unknown = call.options.data;
  const fromRoot = ownProp(ownProp(data, 'root'), 'locale');
  const raw = isBlank(fromHash) ? (isBlank(fromRoot) ? DEFAULT_LOCALE : fromRoot) : fromHash;
  if (typeof raw !== 'string') throw new Error(`${name}: locale must be a string like "ru-RU"`);
  const known = canonicalLocales.get(raw);
  if (known) return known;
  try {
    const [canonical] = Intl.getCanonicalLocales(raw);
    if (canonical) {
      if (canonicalLocales.size < 1000) canonicalLocales.set(raw, canonical);
      return canonical;
    }
  } catch {
    // fall through to the error below
  }
  throw new Error(`${name}: invalid locale "${raw}"`);
}

const canonicalLocales = new Map<string, string>();

/** The language part of a locale: "ru-RU" → "ru". */
export function languageOf(locale: string): string {
  return locale.split('-')[0]!.toLowerCase();
}

export function isBlank(value: unknown): value is null | undefined | '' {
  return value === undefined || value === null || value === '';
}

const DECIMAL_STRING = /^[+-]?\d+(\.\d+)?$/;

/** True for finite numbers, bigints and decimal strings such as "-1234.50" (no exponents, no commas). */
export function looksNumeric(value: unknown): boolean {
  if (typeof value === 'number') return Number.isFinite(value);
  if (typeof value === 'bigint') return true;
  return typeof value === 'string' && DECIMAL_STRING.test(value.trim());
}

/** Parses a decimal string / number / bigint exactly; anything else is a clear Error. */
export function toDecimal(name: string, value: unknown, what = 'value'): Dec {
  if (typeof value === 'bigint') return new Dec(value.toString());
  if (typeof value === 'number' && Number.isFinite(value)) return new Dec(value);
  if (typeof value === 'string' && DECIMAL_STRING.test(value.trim())) return new Dec(value.trim());
  const shown = typeof value === 'string' ? `"${value}"` : typeof value === 'object' ? 'an object' : String(value);
  throw new Error(`${name}: ${what} must be a decimal string like "1234.50", got ${shown}`);
}

/** Reads a non-negative integer from the hash (e.g. `decimals=3`), or `fallback`. */
export function hashInteger(name: string, call: HelperCall, key: string, fallback: number, max = 20): number {
  const raw = call.hash[key];
  if (isBlank(raw)) return fallback;
  const n = typeof raw === 'string' ? Number(raw) : raw;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > max) {
    throw new Error(`${name}: ${key} must be an integer from 0 to ${max}`);
  }
  return n;
}

/** A boolean hash value; accepts true/false and the strings "true"/"false". */
export function hashBoolean(name: string, call: HelperCall, key: string, fallback: boolean): boolean {
  const raw = call.hash[key];
  if (isBlank(raw)) return fallback;
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  throw new Error(`${name}: ${key} must be true or false`);
}

/** Number of digits after the point in a decimal string ("1.50" → 2). */
export function scaleOf(value: unknown): number {
  if (typeof value !== 'string') return 0;
  const text = value.trim();
  const dot = text.indexOf('.');
  return dot < 0 ? 0 : text.length - dot - 1;
}
