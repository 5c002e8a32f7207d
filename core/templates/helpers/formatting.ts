/**
 * Locale-aware formatting helpers: money, number, percent, date.
 * Amounts stay decimal strings end to end: rounded (half-up) with decimal.js, then handed to
 * Intl.NumberFormat as a STRING, which Node 20 formats exactly (no float on the way).
 */
import {
  type DocumentHelper,
  helperCall,
  hashInteger,
  isBlank,
  ownProp,
  resolveLocale,
  toDecimal,
  type Dec as DecValue,
} from './helper-support.ts';

type NumericString = `${number}`;

/** A rounded decimal as the string Intl takes; never "-0.00". */
function fixed(value: DecValue, decimals: number): NumericString {
  const rounded = value.toDecimalPlaces(decimals);
  return (rounded.isZero() ? rounded.abs() : rounded).toFixed(decimals) as NumericString;
}

// Building an Intl formatter costs far more than using one (60% of an invoice's render time):
// keep them per locale and options. Few distinct combinations exist, so the cache stays small.
const numberFormats = new Map<string, Intl.NumberFormat>();
const dateFormats = new Map<string, Intl.DateTimeFormat>();

function numberFormat(name: string, locale: string, options: Intl.NumberFormatOptions): Intl.NumberFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let format = numberFormats.get(key);
  if (!format) {
    try {
      format = new Intl.NumberFormat(locale, options);
    } catch (error) {
      throw new Error(`${name}: ${(error as Error).message}`);
    }
    if (numberFormats.size > 1000) numberFormats.clear();
    numberFormats.set(key, format);
  }
  return format;
}

function dateFormat(locale: string, options: Intl.DateTimeFormatOptions): Intl.DateTimeFormat {
  const key = `${locale}|${JSON.stringify(options)}`;
  let format = dateFormats.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat(locale, { ...options, timeZone: 'UTC' });
    if (dateFormats.size > 1000) dateFormats.clear();
    dateFormats.set(key, format);
  }
  return format;
}

/** A currency code ("RUB") or an expanded currency record ({ code: "RUB", … }) → "RUB". */
export function currencyCode(name: string, currency: unknown): string {
  const raw = typeof currency === 'string' ? currency : ownProp(currency, 'code');
  if (typeof raw !== 'string' || !/^[A-Za-z]{3}$/.test(raw.trim())) {
    throw new Error(`${name}: currency must be an ISO 4217 code like "RUB" or a record with a "code"`);
  }
  return raw.trim().toUpperCase();
}

const CURRENCY_DISPLAYS = new Set(['symbol', 'narrowSymbol', 'code', 'name']);

/** {{money amount currency [locale=] [display="symbol"|"narrowSymbol"|"code"|"name"]}} */
const money: DocumentHelper = (...args) => {
  const call = helperCall('money', args, 2, 2);
  const [amount, currency] = call.params;
  if (isBlank(amount)) return '';
  const value = toDecimal('money', amount, 'amount');
  const locale = resolveLocale('money', call);
  // No currency yet (a draft, a preview from partial sample data): the amount alone, 2 decimals;
  // the preview lists the missing currency field. A malformed currency still fails.
  if (isBlank(currency)) return numberFormat('money', locale, { minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(fixed(value, 2));
  const code = currencyCode('money', currency);
  const display = call.hash.display ?? 'symbol';
  if (typeof display !== 'string' || !CURRENCY_DISPLAYS.has(display)) {
    throw new Error('money: display must be one of symbol, narrowSymbol, code, name');
  }
  const format = numberFormat('money', locale, {
    style: 'currency',
    currency: code,
    currencyDisplay: display as Intl.NumberFormatOptions['currencyDisplay'],
  });
  return format.format(fixed(value, format.resolvedOptions().maximumFractionDigits ?? 2));
};

/** {{number value [decimals=2] [locale=]}} */
const number: DocumentHelper = (...args) => {
  const call = helperCall('number', args, 1, 1);
  const [value] = call.params;
  if (isBlank(value)) return '';
  const decimals = hashInteger('number', call, 'decimals', 2);
  const locale = resolveLocale('number', call);
  const format = numberFormat('number', locale, { minimumFractionDigits: decimals, maximumFractionDigits: decimals });
  return format.format(fixed(toDecimal('number', value), decimals));
};

/** {{percent value [decimals=] [locale=]}}: value in percent points ("20" → "20 %" / "20%"). */
const percent: DocumentHelper = (...args) => {
  const call = helperCall('percent', args, 1, 1);
  const [value] = call.params;
  if (isBlank(value)) return '';
  const fixedDecimals = call.hash.decimals !== undefined;
  const decimals = hashInteger('percent', call, 'decimals', 2);
  const locale = resolveLocale('percent', call);
  const points = toDecimal('percent', value).toDecimalPlaces(decimals);
  const ratio = (points.isZero() ? points.abs() : points).div(100).toFixed() as NumericString;
  const format = numberFormat('percent', locale, {
    style: 'percent',
    minimumFractionDigits: fixedDecimals ? decimals : 0,
    maximumFractionDigits: decimals,
  });
  return format.format(ratio);
};

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

const DATE_FORMATS: Readonly<Record<string, Intl.DateTimeFormatOptions>> = {
  short: { dateStyle: 'short' },
  long: { dateStyle: 'long' },
  numeric: { year: 'numeric', month: '2-digit', day: '2-digit' },
};

/** "YYYY-MM-DD" (a calendar date), an ISO timestamp (no offset = UTC) or a Date → a Date. */
export function parseDate(name: string, value: unknown): Date {
  if (value instanceof Date) {
    let time: number;
    try {
      time = Date.prototype.getTime.call(value);
    } catch {
      // e.g. a Date wrapped in a Proxy: its internal time slot cannot be read.
      throw new Error(`${name}: cannot read this Date object; pass dates as "YYYY-MM-DD" strings`);
    }
    if (Number.isNaN(time)) throw new Error(`${name}: invalid date`);
    return new Date(time);
  }
  if (typeof value === 'string') {
    const text = value.trim();
    const day = DATE_ONLY.exec(text);
    if (day) {
      const [y, m, d] = [Number(day[1]), Number(day[2]), Number(day[3])];
      const date = new Date(Date.UTC(y, m - 1, d));
      if (date.getUTCFullYear() === y && date.getUTCMonth() === m - 1 && date.getUTCDate() === d) return date;
    } else if (TIMESTAMP.test(text)) {
      const withZone = /(Z|[+-]\d{2}:?\d{2})$/i.test(text) ? text : `${text}Z`;
      const date = new Date(withZone.replace(' ', 'T'));
      if (!Number.isNaN(date.getTime())) return date;
    }
  }
  const shown = typeof value === 'string' ? `"${value}"` : typeof value;
  throw new Error(`${name}: value must be a date "YYYY-MM-DD" or an ISO timestamp, got ${shown}`);
}

/** {{date value [format="short"|"long"|"numeric"] [locale=]}}, always in UTC so a day never shifts. */
const date: DocumentHelper = (...args) => {
  const call = helperCall('date', args, 1, 1);
  const [value] = call.params;
  if (isBlank(value)) return '';
  const formatName = call.hash.format ?? 'short';
  const options = typeof formatName === 'string' && Object.hasOwn(DATE_FORMATS, formatName)
    ? DATE_FORMATS[formatName]
    : undefined;
  if (!options) throw new Error('date: format must be one of short, long, numeric');
  const locale = resolveLocale('date', call);
  return dateFormat(locale, options).format(parseDate('date', value));
};

export const formattingHelpers: Readonly<Record<string, DocumentHelper>> = { money, number, percent, date };
