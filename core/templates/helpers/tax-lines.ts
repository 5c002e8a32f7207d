/**
 * {{#each (taxLines record.lines [amount="amount"] [rate="vatRate"] [included=true])}} — the VAT
 * summary of a document, one row per rate; {{sum lines "field"}} — a column total.
 *
 * The arithmetic is the core money module's (core/money, `vatByRate`), so a document printed with
 * it shows the VAT its totals were computed with. included=true (line amounts include VAT):
 * tax = amount × rate / (100 + rate); included=false: tax = amount × rate / 100. Rounding half-up
 * to kopecks, per the policy `rounding="line"|"rate"` — else `vatRounding` at the root of the data
 * (documents get the company's KUBIKI_VAT_ROUNDING there), else "rate": line rounds every line's
 * amount and VAT and sums them; rate sums a group's amounts and rounds its VAT once.
 * Rate "none" (also "без НДС", "-") means no VAT: tax "0.00". Rows come sorted by rate, highest
 * first, "none" last. Missing line amounts count as zero; a missing rate is an error (say "none").
 */
import { vatByRate, VAT_ROUNDINGS, type VatRounding } from '../../money/document-totals.ts';
import {
  Dec,
  type DocumentHelper,
  hashBoolean,
  helperCall,
  type HelperCall,
  isBlank,
  ownPath,
  ownProp,
  scaleOf,
  toDecimal,
} from './helper-support.ts';

export interface TaxLine {
  /** The rate in percent without trailing zeros ("20", "10", "0", "7.5") or "none". */
  rate: string;
  base: string;
  tax: string;
  total: string;
}

export interface TaxLinesOptions {
  amountField?: string;
  rateField?: string;
  included?: boolean;
  /** "rate" (the default here) or "line"; see the module comment. */
  rounding?: VatRounding;
}

const NO_VAT = new Set(['none', 'без ндс', 'no vat', '-', '—']);

function fieldName(name: string, value: unknown, fallback: string): string {
  if (isBlank(value)) return fallback;
  if (typeof value !== 'string' || !/^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/.test(value)) {
    throw new Error(`${name}: field names must be plain property paths like "amount" or "price.amount"`);
  }
  return value;
}

function linesArray(name: string, lines: unknown): readonly unknown[] {
  if (isBlank(lines)) return [];
  if (!Array.isArray(lines)) throw new Error(`${name}: expects an array of lines`);
  return lines;
}

function rateKey(name: string, raw: unknown, index: number, field: string): string {
  if (typeof raw === 'string' && NO_VAT.has(raw.trim().toLowerCase())) return 'none';
  if (isBlank(raw)) throw new Error(`${name}: line ${index + 1} has no VAT rate in "${field}" (use "none" for no VAT)`);
  const text = typeof raw === 'string' ? raw.trim().replace(/\s*%$/, '') : raw;
  const rate = toDecimal(name, text, `VAT rate of line ${index + 1}`);
  if (rate.isNegative() || rate.gte(100)) throw new Error(`${name}: VAT rate of line ${index + 1} must be from 0 to 100`);
  return rate.toFixed(); // decimal.js keeps no trailing zeros: "20.00" → "20"
}

/** The VAT summary of `lines` (pure; see the module comment for the arithmetic). */
export function taxLines(lines: unknown, options: TaxLinesOptions = {}): TaxLine[] {
  const name = 'taxLines';
  const amountField = options.amountField ?? 'amount';
  const rateField = options.rateField ?? 'vatRate';
  const included = options.included ?? true;
  const items = linesArray(name, lines).map((line, index) => {
    const rate = rateKey(name, ownPath(line, rateField), index, rateField);
    const rawAmount = ownPath(line, amountField);
    const amount = isBlank(rawAmount) ? new Dec(0) : toDecimal(name, rawAmount, `"${amountField}" of line ${index + 1}`);
    return { amount: amount.toFixed(), rate: rate === 'none' ? 'exempt' : rate };
  });
  return vatByRate(items, { included, vatRounding: options.rounding ?? 'rate' })
    .map((row) => ({ ...row, rate: row.rate === 'exempt' ? 'none' : row.rate }));
}

function roundingOf(name: string, call: HelperCall): VatRounding {
  const raw = isBlank(call.hash.rounding) ? ownProp(ownProp(call.options.data, 'root'), 'vatRounding') : call.hash.rounding;
  if (isBlank(raw)) return 'rate';
  if (typeof raw !== 'string' || !(VAT_ROUNDINGS as readonly string[]).includes(raw)) throw new Error(`${name}: rounding must be one of ${VAT_ROUNDINGS.join(', ')}`);
  return raw as VatRounding;
}

/** Σ of `field` over `lines` (or of the array's own values without a field), at the largest input scale. */
export function sumLines(lines: unknown, field?: string): string {
  const name = 'sum';
  let total = new Dec(0);
  let scale = 0;
  linesArray(name, lines).forEach((line, index) => {
    const raw = field === undefined ? line : ownPath(line, field);
    if (isBlank(raw)) return;
    total = total.plus(toDecimal(name, raw, field === undefined ? `item ${index + 1}` : `"${field}" of line ${index + 1}`));
    scale = Math.max(scale, scaleOf(raw), typeof raw === 'number' ? new Dec(raw).decimalPlaces() : 0);
  });
  return total.toFixed(scale);
}

const taxLinesHelper: DocumentHelper = (...args) => {
  const call = helperCall('taxLines', args, 1, 1);
  return taxLines(call.params[0], {
    amountField: fieldName('taxLines', call.hash.amount, 'amount'),
    rateField: fieldName('taxLines', call.hash.rate, 'vatRate'),
    included: hashBoolean('taxLines', call, 'included', true),
    rounding: roundingOf('taxLines', call),
  });
};

/** {{sum lines "field"}} or {{sum values}} */
const sumHelper: DocumentHelper = (...args) => {
  const call = helperCall('sum', args, 1, 2);
  const [lines, field] = call.params;
  return sumLines(lines, isBlank(field) ? undefined : fieldName('sum', field, ''));
};

export const taxLinesHelpers: Readonly<Record<string, DocumentHelper>> = { taxLines: taxLinesHelper, sum: sumHelper };
