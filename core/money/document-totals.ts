import { Decimal } from 'decimal.js';

// The one money computation of Kubiki's documents (quotes, invoices, orders, payslips…): exact
// decimals, never floats. The rounding policy is explicit and configurable (KUBIKI_VAT_ROUNDING):
//   line — VAT rounded on every line, document totals are the sums of the rounded lines. The
//          Russian default: an invoice (счёт-фактура) shows VAT per line and its totals add up.
//   rate — VAT rounded once per rate group (Σ amounts × rate), the lines' VAT shown but indicative.
// Both round half-up to kopecks. With `pricesIncludeVat` the line amount is gross and VAT is the
// part inside it (amount × rate / (100 + rate)); otherwise VAT is added on top (amount × rate / 100).

export type VatRounding = 'line' | 'rate';
export const VAT_ROUNDINGS: readonly VatRounding[] = ['line', 'rate'];

export interface DocumentLine {
  quantity: string;
  price: string;
  discountPercent?: string;
  /** Percent ("22", "10", "0"…) or "exempt" (без НДС). */
  vatRate: string;
}

export interface LineTotals {
  /** quantity × price × (1 − discount/100), rounded: gross with prices VAT-included, net otherwise. */
  amount: string;
  net: string;
  vat: string;
  total: string;
  /** The rate as the taxLines template helper reads it ("none" for exempt). */
  taxRate: string;
}

export interface VatGroup { rate: string; base: string; tax: string; total: string }

export interface DocumentTotals {
  lines: LineTotals[];
  /** Per rate, highest first, exempt last. */
  vat: VatGroup[];
  subtotal: string;
  vatTotal: string;
  total: string;
}

export interface TotalsOptions {
  pricesIncludeVat?: boolean;
  vatRounding?: VatRounding;
}

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });
const kopecks = (d: Decimal): Decimal => d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
const percentOf = (rate: string): Decimal => (rate === 'exempt' ? new D(0) : new D(rate));
const vatPart = (amount: Decimal, rate: Decimal, included: boolean): Decimal =>
  kopecks(included ? amount.times(rate).dividedBy(rate.plus(100)) : amount.times(rate).dividedBy(100));
const order = (rate: string): number => (rate === 'exempt' ? -1 : Number(rate));

export interface TaxableAmount {
  /** Gross with `included`, net otherwise; any number of decimals (a document line's is in kopecks). */
  amount: string;
  /** Percent ("22", "10", "0"…) or "exempt". */
  rate: string;
}

/**
 * The VAT rows of amounts, one per rate (highest first, exempt last), under the rounding policy:
 * the one VAT arithmetic, used by `documentTotals` and by the `taxLines` template helper.
 *   line — every amount is rounded to kopecks and its VAT rounded; a row sums them.
 *   rate — a row's amounts are summed, the sum rounded to kopecks, its VAT rounded once.
 */
export function vatByRate(items: readonly TaxableAmount[], options: { included?: boolean; vatRounding?: VatRounding } = {}): VatGroup[] {
  const included = options.included === true;
  const rounding = options.vatRounding ?? 'line';
  const sums = new Map<string, { amount: Decimal; vat: Decimal }>();
  for (const item of items) {
    const s = sums.get(item.rate) ?? { amount: new D(0), vat: new D(0) };
    if (rounding === 'line') {
      const amount = kopecks(new D(item.amount));
      sums.set(item.rate, { amount: s.amount.plus(amount), vat: s.vat.plus(vatPart(amount, percentOf(item.rate), included)) });
    } else {
      sums.set(item.rate, { amount: s.amount.plus(item.amount), vat: s.vat });
    }
  }
  return [...sums].sort((a, b) => order(b[0]) - order(a[0])).map(([rate, s]) => {
    const amount = kopecks(s.amount);
    const tax = rounding === 'line' ? s.vat : vatPart(amount, percentOf(rate), included);
    const base = included ? amount.minus(tax) : amount;
    return { rate, base: base.toFixed(2), tax: tax.toFixed(2), total: base.plus(tax).toFixed(2) };
  });
}

/** Totals of document lines under the rounding policy (see the module comment). Lines must be valid. */
export function documentTotals(lines: readonly DocumentLine[], options: TotalsOptions = {}): DocumentTotals {
  const included = options.pricesIncludeVat === true;
  const rounding = options.vatRounding ?? 'line';
  const out: LineTotals[] = lines.map((l) => {
    const amount = kopecks(new D(l.quantity).times(l.price).times(new D(100).minus(l.discountPercent ?? '0')).dividedBy(100));
    const vat = vatPart(amount, percentOf(l.vatRate), included);
    const net = included ? amount.minus(vat) : amount;
    return { amount: amount.toFixed(2), net: net.toFixed(2), vat: vat.toFixed(2), total: net.plus(vat).toFixed(2), taxRate: l.vatRate === 'exempt' ? 'none' : l.vatRate };
  });

  const vat = vatByRate(lines.map((l, i) => ({ amount: out[i].amount, rate: l.vatRate })), { included, vatRounding: rounding });
  let subtotal = new D(0);
  let vatTotal = new D(0);
  for (const g of vat) {
    subtotal = subtotal.plus(g.base);
    vatTotal = vatTotal.plus(g.tax);
  }
  return { lines: out, vat, subtotal: subtotal.toFixed(2), vatTotal: vatTotal.toFixed(2), total: subtotal.plus(vatTotal).toFixed(2) };
}
