import { Decimal } from 'decimal.js';

/** A quote (or invoice) line: the shape shared with finance invoices. */
export interface QuoteLine {
  product?: unknown;
  description: string;
  quantity: string;
  price: string;
  discountPercent?: string;
  vatRate: '22' | '20' | '10' | '7' | '5' | '0' | 'exempt';
}

export interface VatGroup { rate: string; base: string; tax: string; total: string }

export interface QuoteTotals {
  /** Each line with its amount (quantity × price less discount, rounded to kopecks) and the rate as taxLines reads it. */
  lines: (QuoteLine & { amount: string; taxRate: string })[];
  vat: VatGroup[];
  subtotal: string;
  vatTotal: string;
  total: string;
}

const D = Decimal.clone({ precision: 40, rounding: Decimal.ROUND_HALF_UP });
const money = (d: Decimal): string => d.toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2);

/**
 * Totals of a quote with exact decimals. Line amount = quantity × price × (1 − discount/100),
 * rounded half-up to 2 places. VAT is computed once per rate group (as the taxLines helper does):
 * on top of the amounts (base = Σ amounts, tax = base × rate/100) or, with `pricesIncludeVat`,
 * inside them (total = Σ amounts, tax = total × rate/(100 + rate)). "exempt" lines carry no VAT.
 */
export function quoteTotals(rawLines: unknown, pricesIncludeVat = false): QuoteTotals {
  const lines = (Array.isArray(rawLines) ? rawLines : []) as QuoteLine[];
  const withAmounts = lines.map((l) => {
    const discount = new D(l.discountPercent ?? '0');
    const amount = new D(l.quantity).times(l.price).times(new D(100).minus(discount)).dividedBy(100);
    return { ...l, amount: money(amount), taxRate: l.vatRate === 'exempt' ? 'none' : l.vatRate };
  });
  const groups = new Map<string, Decimal>();
  for (const l of withAmounts) groups.set(l.vatRate, (groups.get(l.vatRate) ?? new D(0)).plus(l.amount));
  const vat: VatGroup[] = [];
  let subtotal = new D(0);
  let vatTotal = new D(0);
  let total = new D(0);
  const order = (r: string) => (r === 'exempt' ? -1 : Number(r));
  for (const [rate, sum] of [...groups.entries()].sort((a, b) => order(b[0]) - order(a[0]))) {
    const r = rate === 'exempt' ? new D(0) : new D(rate);
    let base: Decimal; let tax: Decimal; let gross: Decimal;
    if (pricesIncludeVat) {
      gross = sum;
      tax = new D(money(sum.times(r).dividedBy(r.plus(100))));
      base = gross.minus(tax);
    } else {
      base = sum;
      tax = new D(money(sum.times(r).dividedBy(100)));
      gross = base.plus(tax);
    }
    vat.push({ rate, base: money(base), tax: money(tax), total: money(gross) });
    subtotal = subtotal.plus(base);
    vatTotal = vatTotal.plus(tax);
    total = total.plus(gross);
  }
  return { lines: withAmounts, vat, subtotal: money(subtotal), vatTotal: money(vatTotal), total: money(total) };
}
