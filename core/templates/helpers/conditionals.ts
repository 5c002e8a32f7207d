/**
 * Conditionals for {{#if (…)}} subexpressions: eq ne gt gte lt lte, and or not, default.
 *
 * Comparisons are numeric and decimal-exact when both sides look like numbers (finite numbers or
 * decimal strings: "10.50" gt "9.9" is true, "10.50" eq "10.5" is true); otherwise two strings
 * compare by code units (ISO dates "2024-01-09" lt "2024-01-10" work), and other values are only
 * equal when identical (eq/ne) and never ordered (gt/gte/lt/lte are false).
 * Truthiness follows Handlebars' #if: false, null, undefined, "", 0, NaN and [] are false.
 */
import { type DocumentHelper, helperCall, isBlank, looksNumeric, toDecimal } from './helper-support.ts';

type Comparison = 'eq' | 'ne' | 'gt' | 'gte' | 'lt' | 'lte';

/** -1 / 0 / 1, or undefined when the two values have no order. */
function order(name: string, a: unknown, b: unknown): number | undefined {
  if (looksNumeric(a) && looksNumeric(b)) return toDecimal(name, a).comparedTo(toDecimal(name, b));
  if (typeof a === 'string' && typeof b === 'string') return a === b ? 0 : a < b ? -1 : 1;
  return undefined;
}

export function compare(op: Comparison, a: unknown, b: unknown): boolean {
  const result = order(op, a, b);
  switch (op) {
    case 'eq': return result === undefined ? a === b : result === 0;
    case 'ne': return result === undefined ? a !== b : result !== 0;
    case 'gt': return result !== undefined && result > 0;
    case 'gte': return result !== undefined && result >= 0;
    case 'lt': return result !== undefined && result < 0;
    case 'lte': return result !== undefined && result <= 0;
  }
}

export function truthy(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0;
  return Boolean(value);
}

function comparison(op: Comparison): DocumentHelper {
  return (...args) => {
    const [a, b] = helperCall(op, args, 2, 2).params;
    return compare(op, a, b);
  };
}

export const conditionalHelpers: Readonly<Record<string, DocumentHelper>> = {
  eq: comparison('eq'),
  ne: comparison('ne'),
  gt: comparison('gt'),
  gte: comparison('gte'),
  lt: comparison('lt'),
  lte: comparison('lte'),
  /** {{#if (and a b …)}}: true when every argument is truthy. */
  and: (...args) => helperCall('and', args, 1, Infinity).params.every(truthy),
  /** {{#if (or a b …)}}: true when any argument is truthy. */
  or: (...args) => helperCall('or', args, 1, Infinity).params.some(truthy),
  not: (...args) => !truthy(helperCall('not', args, 1, 1).params[0]),
  /** {{add @index 1}} → row numbers; integers only (money goes through sum/taxLines, exactly). */
  add: (...args) => {
    const { params } = helperCall('add', args, 2, 2);
    if (!params.every((p) => Number.isSafeInteger(p) || (typeof p === 'string' && /^-?\d{1,15}$/.test(p)))) throw new Error('add: both arguments must be whole numbers');
    return Number(params[0]) + Number(params[1]);
  },
  /** {{default value fallback}}: the value unless it is null, undefined or "". */
  default: (...args) => {
    const [value, fallback] = helperCall('default', args, 2, 2).params;
    return isBlank(value) ? fallback : value;
  },
};
