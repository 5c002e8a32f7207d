// The CEL environment workflow expressions run in: the visible roots and the business functions
// (exact decimals for money, calendar dates). Documented for analysts in docs/workflow-expressions.md.

import { Environment, EvaluationError } from '@marcbachmann/cel-js';
import { Decimal } from 'decimal.js';
import { DecimalValue } from './expression-values.ts';

/** The only names an expression can see. */
export const EXPRESSION_ROOTS = ['trigger', 'record', 'vars', 'steps', 'input', 'now'] as const;

/** Parse-time limits handed to the library (the source itself is capped at 2,000 characters). */
export const PARSE_LIMITS = { maxAstNodes: 1000, maxDepth: 32, maxListElements: 1000, maxMapEntries: 1000, maxCallArguments: 16 };

// 34 significant digits (IEEE 754 decimal128), banker's rounding for division results.
const Dec = Decimal.clone({ precision: 34, rounding: Decimal.ROUND_HALF_EVEN, toExpNeg: -40, toExpPos: 40 });
const DAY_MS = 86_400_000;

const fail = (message: string): never => {
  throw new EvaluationError(message);
};

function parseDecimal(text: string): DecimalValue {
  const trimmed = text.trim();
  if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/.test(trimmed) || trimmed.length > 100) {
    fail(`decimal(): "${text.slice(0, 40)}" is not a decimal number`);
  }
  return new DecimalValue(new Dec(trimmed));
}

const dec = (v: Decimal.Value): DecimalValue => new DecimalValue(new Dec(v));
const int = (v: bigint): Decimal => new Dec(v.toString());

/** UTC midnight of the calendar date of `d`. */
const startOfDay = (d: Date): Date => new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));

function parseDate(text: string): Date {
  const day = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (day) {
    const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
    const date = new Date(Date.UTC(y, m - 1, d));
    if (date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d) return date;
  } else if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/.test(text)) {
    const date = new Date(text);
    if (!Number.isNaN(date.getTime())) return startOfDay(date);
  }
  return fail(`date(): "${text.slice(0, 40)}" is not a date (expected YYYY-MM-DD or an ISO 8601 date-time)`);
}

/**
 * The evaluation clock. Evaluation is synchronous (no async functions are registered), so the
 * Expression sets it just before running and clears it after; `today()` reads it.
 */
let clock: Date | undefined;
export function withClock<T>(now: Date, run: () => T): T {
  const previous = clock;
  clock = now;
  try {
    return run();
  } finally {
    clock = previous;
  }
}

const TS = 'google.protobuf.Timestamp';

function createEnvironment(): Environment {
  const env = new Environment({ homogeneousAggregateLiterals: false, limits: PARSE_LIMITS });
  for (const root of EXPRESSION_ROOTS) env.registerVariable(root, root === 'now' ? TS : 'dyn');

  // Mixed int/double arithmetic: JSON numbers arrive as ints when whole and doubles otherwise, so
  // `record.price * 2` must not depend on whether price happens to be 2 or 2.5 today.
  const n = (v: bigint | number): number => Number(v);
  env
    .registerOperator('int + double', (a: bigint, b: number) => n(a) + b)
    .registerOperator('double + int', (a: number, b: bigint) => a + n(b))
    .registerOperator('int - double', (a: bigint, b: number) => n(a) - b)
    .registerOperator('double - int', (a: number, b: bigint) => a - n(b))
    .registerOperator('int * double', (a: bigint, b: number) => n(a) * b)
    .registerOperator('double * int', (a: number, b: bigint) => a * n(b))
    .registerOperator('int / double', (a: bigint, b: number) => n(a) / b)
    .registerOperator('double / int', (a: number, b: bigint) => a / n(b))
    .registerOperator('int == double', (a: bigint, b: number) => n(a) === b);

  // Decimals: exact money arithmetic. decimal op decimal, and with ints on either side.
  env.registerType('decimal', { ctor: DecimalValue, fields: {} });
  env
    .registerFunction('decimal(string): decimal', (s: string) => parseDecimal(s))
    .registerFunction('decimal(int): decimal', (i: bigint) => dec(i.toString()))
    .registerFunction('decimal(double): decimal', (x: number) => (Number.isFinite(x) ? dec(x) : fail('decimal(): not a finite number')))
    .registerFunction('decimal(decimal): decimal', (d: DecimalValue) => d)
    .registerFunction('round(decimal, int): decimal', (d: DecimalValue, places: bigint) =>
      places < 0n || places > 20n ? fail('round(): places must be between 0 and 20') : dec(d.value.toDecimalPlaces(Number(places), Decimal.ROUND_HALF_UP)),
    )
    .registerFunction('fixed(decimal, int): string', (d: DecimalValue, places: bigint) =>
      places < 0n || places > 20n ? fail('fixed(): places must be between 0 and 20') : d.value.toFixed(Number(places), Decimal.ROUND_HALF_UP),
    )
    .registerFunction('string(decimal): string', (d: DecimalValue) => d.value.toFixed())
    .registerFunction('double(decimal): double', (d: DecimalValue) => d.value.toNumber());
  const arith: Record<string, (a: Decimal, b: Decimal) => Decimal> = {
    '+': (a, b) => a.plus(b),
    '-': (a, b) => a.minus(b),
    '*': (a, b) => a.times(b),
    '/': (a, b) => (b.isZero() ? fail('decimal division by zero') : a.dividedBy(b)),
  };
  const compare: Record<string, (a: Decimal, b: Decimal) => boolean> = {
    '==': (a, b) => a.eq(b),
    '<': (a, b) => a.lt(b),
    '<=': (a, b) => a.lte(b),
    '>': (a, b) => a.gt(b),
    '>=': (a, b) => a.gte(b),
  };
  for (const [op, f] of Object.entries(arith)) {
    env.registerOperator(`decimal ${op} decimal`, (a: DecimalValue, b: DecimalValue) => new DecimalValue(f(a.value, b.value)));
    env.registerOperator(`decimal ${op} int`, (a: DecimalValue, b: bigint) => new DecimalValue(f(a.value, int(b))));
    // The result type is named: the library would type `int + decimal` as int, and `x * (1 + d)` then fails.
    env.registerOperator(`int ${op} decimal: decimal`, (a: bigint, b: DecimalValue) => new DecimalValue(f(int(a), b.value)));
  }
  for (const [op, f] of Object.entries(compare)) {
    env.registerOperator(`decimal ${op} decimal`, (a: DecimalValue, b: DecimalValue) => f(a.value, b.value));
    env.registerOperator(`decimal ${op} int`, (a: DecimalValue, b: bigint) => f(a.value, int(b)));
    // `decimal == int` also registers `int == decimal` (equality is symmetric in the library).
    if (op !== '==') env.registerOperator(`int ${op} decimal`, (a: bigint, b: DecimalValue) => f(int(a), b.value));
  }

  // Calendar dates (UTC): a date is a timestamp at midnight UTC, so CEL comparisons work on it.
  env
    .registerFunction(`date(string): ${TS}`, (s: string) => parseDate(s))
    .registerFunction(`date(${TS}): ${TS}`, (d: Date) => startOfDay(d))
    .registerFunction(`today(): ${TS}`, () => startOfDay(clock ?? fail('today(): no evaluation clock')))
    .registerFunction(`daysBetween(${TS}, ${TS}): int`, (a: Date, b: Date) => BigInt(Math.round((startOfDay(b).getTime() - startOfDay(a).getTime()) / DAY_MS)))
    .registerFunction(`addDays(${TS}, int): ${TS}`, (d: Date, days: bigint) => {
      const result = new Date(d.getTime() + Number(days) * DAY_MS);
      return Number.isNaN(result.getTime()) || days > 3_000_000n || days < -3_000_000n ? fail('addDays(): date out of range') : result;
    });
  return env;
}

/** The one shared environment (building it is the expensive part; parse results are cached). */
export const celEnvironment = createEnvironment();
