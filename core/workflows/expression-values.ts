// Values crossing the expression boundary. Going in, whatever the engine hands over (records,
// trigger payloads, step outputs) is deep-copied into plain data — null-prototype objects,
// arrays, strings, numbers, booleans, null — so an expression can reach no method, getter,
// prototype or shared object. Going out, CEL values become JSON-like values the engine can store.

import { Decimal } from 'decimal.js';

/** Limits on the data an expression is evaluated over (not on the expression itself). */
export const VALUE_LIMITS = {
  /** Objects/arrays nested deeper than this are refused (also catches circular data). */
  maxDepth: 64,
  /** Total values (every object, array element and scalar) copied for one evaluation. */
  maxValues: 200_000,
  /** Elements in one list or entries in one object. */
  maxCollection: 10_000,
} as const;

/** A decimal number inside an expression: exact, never a JS float. No reachable fields or methods. */
export class DecimalValue {
  readonly #value: Decimal;
  constructor(value: Decimal) {
    this.#value = value;
  }
  get value(): Decimal {
    return this.#value;
  }
}

/** Statistics of one copied context, used to bound comprehension cost. */
export interface CopyStats {
  values: number;
  /** Largest list/object size seen. */
  maxCollection: number;
  /** Longest string seen (`split("")` can turn it into a list). */
  maxString: number;
}

export class ValueError extends Error {}

/**
 * Deep-copies `value` into plain data, JSON.stringify-style: `toJSON()` is honoured (Date → ISO
 * string, Decimal → string), undefined/functions/symbols are dropped, non-finite numbers become
 * null, keys named `__proto__` are dropped. Safe integers become CEL ints (BigInt), other numbers
 * doubles.
 */
export function toCelValue(value: unknown, stats: CopyStats, depth = 0): unknown {
  if (++stats.values > VALUE_LIMITS.maxValues) throw new ValueError(`the data holds more than ${VALUE_LIMITS.maxValues} values`);
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
      if (value.length > stats.maxString) stats.maxString = value.length;
      return value;
    case 'boolean':
      return value;
    case 'number':
      if (Number.isSafeInteger(value)) return BigInt(value);
      return Number.isFinite(value) ? value : null;
    case 'bigint':
      return value >= -(2n ** 63n) && value < 2n ** 63n ? value : value.toString();
    case 'object':
      break;
    default:
      return null; // functions, symbols
  }
  if (depth >= VALUE_LIMITS.maxDepth) throw new ValueError(`the data is nested deeper than ${VALUE_LIMITS.maxDepth} levels (or is circular)`);
  const obj = value as { toJSON?: unknown };
  if (typeof obj.toJSON === 'function') return toCelValue((obj.toJSON as () => unknown).call(obj), stats, depth + 1);
  if (Array.isArray(value)) {
    if (value.length > VALUE_LIMITS.maxCollection) throw new ValueError(`a list holds more than ${VALUE_LIMITS.maxCollection} items`);
    if (value.length > stats.maxCollection) stats.maxCollection = value.length;
    const out: unknown[] = new Array<unknown>(value.length);
    for (let i = 0; i < value.length; i++) {
      const item: unknown = value[i];
      out[i] = typeof item === 'function' || typeof item === 'symbol' ? null : toCelValue(item, stats, depth + 1);
    }
    return out;
  }
  const keys = Object.keys(value);
  if (keys.length > VALUE_LIMITS.maxCollection) throw new ValueError(`an object holds more than ${VALUE_LIMITS.maxCollection} fields`);
  if (keys.length > stats.maxCollection) stats.maxCollection = keys.length;
  const out = Object.create(null) as Record<string, unknown>;
  for (const key of keys) {
    if (key === '__proto__') continue;
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
    out[key] = toCelValue(item, stats, depth + 1);
  }
  return out;
}

/**
 * Converts a CEL result into plain JSON-like data: ints → numbers when safe, else decimal strings;
 * decimals → plain-notation strings ("1500.5"); timestamps → ISO strings; durations → "<seconds>s";
 * maps → ordinary objects (no `__proto__` key); lists → arrays. Bytes, types and other values
 * cannot be results.
 */
export function fromCelValue(value: unknown, depth = 0): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      if (!Number.isFinite(value)) throw new ValueError('the result is not a finite number (division by zero?)');
      return value;
    case 'bigint':
      return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value.toString();
    case 'object':
      break;
    default:
      throw new ValueError(`a ${typeof value} cannot be a result`);
  }
  if (depth >= VALUE_LIMITS.maxDepth) throw new ValueError(`the result is nested deeper than ${VALUE_LIMITS.maxDepth} levels`);
  if (value instanceof DecimalValue) return value.value.toFixed();
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((item: unknown) => fromCelValue(item, depth + 1));
  const proto: unknown = Object.getPrototypeOf(value);
  if (proto === null || proto === Object.prototype) {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value)) {
      if (key === '__proto__') continue;
      Object.defineProperty(out, key, { value: fromCelValue((value as Record<string, unknown>)[key], depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  if (value instanceof Map) {
    const out: Record<string, unknown> = {};
    for (const [key, item] of value as Map<unknown, unknown>) {
      const name = String(fromCelValue(key, depth + 1));
      if (name === '__proto__') continue;
      Object.defineProperty(out, name, { value: fromCelValue(item, depth + 1), enumerable: true, writable: true, configurable: true });
    }
    return out;
  }
  const ctorName = (value as { constructor?: { name?: unknown } }).constructor?.name;
  // CEL durations and unsigned ints (library classes, recognised by shape, not by calling into them).
  if (ctorName === 'Duration' && typeof (value as { seconds?: unknown }).seconds !== 'undefined') {
    const { seconds, nanos } = value as { seconds: number | bigint; nanos: number };
    return `${Number(seconds) + Number(nanos) / 1e9}s`;
  }
  if (ctorName === 'UnsignedInt') return fromCelValue(BigInt(String(value)), depth);
  throw new ValueError(`a ${value instanceof Uint8Array ? 'bytes' : typeof ctorName === 'string' ? ctorName : 'non-data'} value cannot be a result`);
}
