import { SYSTEM, type ApiRecord, type DocumentLine, type PluginContext } from 'kubiki/plugin';
import { Decimal, NIL, chunks, dec, isUuid, qty, round2 } from '../util.ts';

// Printing: the computed values of the warehouse's documents (templates/warehouse/*.hbs), as
// finance does for its invoice. Templates read them as `totals`:
//   warehouse.shipments — delivery-note.hbs, upd.hbs;  warehouse.receipts — receipt-note.hbs;
//   warehouse.counts    — count-sheet.hbs.
// Line money is the core's money module (ctx.money.totals, the company's VAT rounding policy), the
// same computation as the records' own subtotal / vatTotal / total. What a template cannot reach
// by itself is resolved here: the unit of each line (the product's stock unit — order and
// shipment quantities are in it — else its catalogue unit, else "шт"), the currency as a code
// (a reader without base.currencies.read would hand the helpers an id), and every line of a count
// (the template's `include` stops at 500 records). Those lookups are master data read by the
// plugin itself; the record and its lines were already read with the reader's permissions.

/** Национальные условные обозначения (ОКЕИ) of the usual units; others print the unit's name. */
const OKEI_SYMBOLS: Record<string, string> = {
  '796': 'шт', '166': 'кг', '163': 'г', '168': 'т', '112': 'л', '113': 'м3', '111': 'см3', '006': 'м', '004': 'см', '003': 'мм',
  '055': 'м2', '356': 'ч', '778': 'упак', '839': 'компл', '715': 'пар', '704': 'набор', '736': 'рул', '876': 'усл. ед',
};
/** No unit known: pieces. */
const PIECES = { code: '796', name: 'шт' };

/** Currencies as Russian documents name them (наименование, цифровой код ОКВ); amounts in words exist for these. */
const CURRENCIES: Record<string, { name: string; numeric: string; words: boolean }> = {
  RUB: { name: 'Российский рубль', numeric: '643', words: true },
  USD: { name: 'Доллар США', numeric: '840', words: true },
  EUR: { name: 'Евро', numeric: '978', words: true },
  CNY: { name: 'Китайский юань', numeric: '156', words: true },
  KZT: { name: 'Казахстанский тенге', numeric: '398', words: true },
  BYN: { name: 'Белорусский рубль', numeric: '933', words: false },
};

export interface PrintedUnit { code: string | null; name: string }

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** A reference as the document loader leaves it: the record when the reader may read it, else the id. */
const refId = (v: unknown): string | undefined => (isObject(v) && typeof v.id === 'string' ? v.id : isUuid(v) ? v : undefined);

/** Records of another plugin's entity by id, read by the plugin (500 ids a query, as the list API takes). */
async function byIds(ctx: PluginContext, entity: string, ids: readonly string[]): Promise<Map<string, ApiRecord>> {
  const out = new Map<string, ApiRecord>();
  for (const part of chunks([...new Set(ids)], 500)) {
    const page = await ctx.repository(entity).listFromQuery({ 'id[in]': part.join(','), limit: String(part.length) }, { actor: SYSTEM });
    for (const r of page.data) out.set(r.id, r);
  }
  return out;
}

/** Each product's printed unit: its stock unit (warehouse.products), else its catalogue unit (base.products), else "шт". */
export async function unitsOf(ctx: PluginContext, productIds: readonly string[], catalogue?: Map<string, ApiRecord>): Promise<Map<string, PrintedUnit>> {
  const ids = [...new Set(productIds)];
  const out = new Map<string, PrintedUnit>();
  if (ids.length === 0) return out;
  const products = catalogue ?? await byIds(ctx, 'base.products', ids);
  const stockUnits = new Map<string, string>();
  for (const part of chunks(ids, 1000)) {
    const rows: { product: string; stockUnit: string | null }[] = await ctx.table('warehouse_products').whereIn('product', part).select('product', 'stockUnit');
    for (const r of rows) if (r.stockUnit) stockUnits.set(r.product, r.stockUnit);
  }
  const unitOf = (p: string): string | undefined => stockUnits.get(p) ?? refId(products.get(p)?.unit);
  const units = await byIds(ctx, 'base.units', ids.map(unitOf).filter((u): u is string => u !== undefined));
  for (const p of ids) {
    const u = units.get(unitOf(p) ?? '');
    if (!u) {
      out.set(p, PIECES);
      continue;
    }
    const okei = typeof u.okeiCode === 'string' ? u.okeiCode : null;
    out.set(p, { code: okei, name: (okei && OKEI_SYMBOLS[okei]) || String(u.name ?? u.code) });
  }
  return out;
}

/** The record's currency as a code with its Russian name and numeric code; RUB when the document has none. */
async function currencyOf(ctx: PluginContext, value: unknown): Promise<{ code: string; name: string; numeric: string | null; words: boolean }> {
  let code: string | undefined = isObject(value) && typeof value.code === 'string' ? value.code : undefined;
  if (!code && isUuid(value)) {
    const found = (await byIds(ctx, 'base.currencies', [value])).get(value);
    code = typeof found?.code === 'string' ? found.code : undefined;
  }
  code = (code ?? 'RUB').toUpperCase();
  const known = CURRENCIES[code];
  return { code, name: known?.name ?? code, numeric: known?.numeric ?? null, words: known?.words ?? false };
}

type PrintedLine = DocumentLine & { product?: unknown; description?: string };

/**
 * A priced warehouse document (shipment, receipt): the finance invoice's totals, plus per line
 * the unit and the price without VAT, the currency, and the УПД status.
 */
export async function pricedDocument(ctx: PluginContext, record: ApiRecord): Promise<Record<string, unknown>> {
  const lines = (Array.isArray(record.lines) ? record.lines : []).filter(isObject) as unknown as PrintedLine[];
  const t = ctx.money.totals(lines.map((l) => ({ quantity: l.quantity, price: l.price, vatRate: l.vatRate, ...(l.discountPercent ? { discountPercent: l.discountPercent } : {}) })), { pricesIncludeVat: record.pricesIncludeVat === true });
  const productIds = lines.map((l) => refId(l.product)).filter((p): p is string => p !== undefined);
  const units = await unitsOf(ctx, productIds);
  let quantity = new Decimal(0);
  const printed = t.lines.map((lt, i) => {
    const l = lines[i];
    const product = refId(l.product);
    quantity = quantity.plus(dec(l.quantity));
    // Цена за единицу без НДС: the price as entered when it is net and not discounted, else the line's net amount per unit.
    const plain = record.pricesIncludeVat !== true && dec(l.discountPercent).isZero();
    const unitPrice = plain || dec(l.quantity).isZero() ? round2(dec(l.price)).toFixed(2) : round2(dec(lt.net).dividedBy(dec(l.quantity))).toFixed(2);
    return { ...lt, unit: product ? units.get(product) ?? PIECES : PIECES, unitPrice, exempt: l.vatRate === 'exempt' };
  });
  const exempt = lines.length > 0 && lines.every((l) => l.vatRate === 'exempt');
  return {
    lines: printed,
    subtotal: t.subtotal,
    vatTotal: t.vatTotal,
    total: t.total,
    // Lines with their net amounts, for the taxLines helper (VAT on top, `included=false`).
    taxBase: t.lines.map((l) => ({ amount: l.net, vatRate: l.taxRate })),
    vatLines: t.vat.map((v) => ({ ...v, rate: v.rate === 'exempt' ? 'none' : v.rate })),
    quantity: qty(quantity),
    lineCount: lines.length,
    currency: await currencyOf(ctx, record.currency),
    // УПД: статус 1 (счёт-фактура и передаточный документ) when any line carries VAT (0 % included),
    // статус 2 (передаточный документ) when every line is без НДС.
    exempt,
    updStatus: exempt ? '2' : '1',
  };
}

/**
 * A count sheet: every line of the count (however many), with the product, location and lot
 * named, the unit, expected / counted / difference, and the difference's value at the product's
 * current unit cost (as GET /counts/{id}/review values it); totals of quantities and values.
 */
export async function countSheet(ctx: PluginContext, record: ApiRecord): Promise<Record<string, unknown>> {
  const rows: Record<string, unknown>[] = await ctx.table('warehouse_count_lines').where({ count: record.id }).orderBy(['location', 'product', 'id'])
    .select('id', 'product', 'location', 'lot', 'expected', 'counted', 'difference', 'serials', 'note');
  const productIds = [...new Set(rows.map((r) => String(r.product)))];
  const products = await byIds(ctx, 'base.products', productIds);
  const units = await unitsOf(ctx, productIds, products);
  const locationIds = [...new Set(rows.map((r) => String(r.location)))];
  const locations = new Map<string, Record<string, unknown>>();
  for (const part of chunks(locationIds, 1000)) {
    for (const l of await ctx.table('warehouse_locations').whereIn('id', part).select('id', 'code', 'name')) locations.set(String(l.id), l);
  }
  const lotIds = [...new Set(rows.map((r) => r.lot).filter((l): l is string => typeof l === 'string' && l !== NIL))];
  const lots = new Map<string, Record<string, unknown>>();
  for (const part of chunks(lotIds, 1000)) {
    for (const l of await ctx.table('warehouse_lots').whereIn('id', part).select('id', 'number')) lots.set(String(l.id), l);
  }
  const costs = new Map<string, Decimal>();
  for (const part of chunks(productIds, 1000)) {
    for (const c of await ctx.table('warehouse_costs').whereIn('product_id', part).select('product_id', 'unit_cost')) costs.set(String(c.product_id), dec(c.unit_cost));
  }
  const zero = new Decimal(0);
  let expected = zero, counted = zero, differences = zero, surplus = zero, shortage = zero, surplusValue = zero, shortageValue = zero, uncounted = 0;
  const lines = rows.map((r) => {
    const product = products.get(String(r.product));
    const location = locations.get(String(r.location));
    const lot = typeof r.lot === 'string' ? lots.get(r.lot) : undefined;
    const unitCost = costs.get(String(r.product)) ?? zero;
    expected = expected.plus(dec(r.expected));
    const hasCount = r.counted !== null && r.counted !== undefined;
    const difference = hasCount ? dec(r.counted).minus(dec(r.expected)) : null;
    const value = difference ? round2(difference.times(unitCost)) : null;
    if (hasCount) counted = counted.plus(dec(r.counted));
    if (difference) differences = differences.plus(difference);
    else uncounted++;
    if (difference && difference.gt(0)) { surplus = surplus.plus(difference); surplusValue = surplusValue.plus(value!); }
    if (difference && difference.lt(0)) { shortage = shortage.plus(difference.abs()); shortageValue = shortageValue.plus(value!.abs()); }
    return {
      id: r.id,
      product: { id: String(r.product), sku: product?.sku ?? null, name: product?.name ?? null },
      location: { id: String(r.location), code: location?.code ?? null, name: location?.name ?? null },
      lot: lot ? { id: String(lot.id), number: lot.number } : null,
      unit: units.get(String(r.product)) ?? PIECES,
      expected: qty(dec(r.expected)),
      counted: hasCount ? qty(dec(r.counted)) : null,
      difference: difference ? qty(difference) : null,
      unitCost: unitCost.toDecimalPlaces(2, Decimal.ROUND_HALF_UP).toFixed(2),
      differenceValue: value ? value.toFixed(2) : null,
      serials: Array.isArray(r.serials) ? r.serials : [],
      note: r.note ?? null,
    };
  });
  return {
    lines,
    lineCount: lines.length,
    uncounted,
    expected: qty(expected),
    counted: qty(counted),
    // Σ of the counted lines' differences (an uncounted line has none yet).
    difference: qty(differences),
    surplus: qty(surplus),
    shortage: qty(shortage),
    surplusValue: surplusValue.toFixed(2),
    shortageValue: shortageValue.toFixed(2),
    differenceValue: surplusValue.minus(shortageValue).toFixed(2),
  };
}

/** Registers the providers: call once from the plugin's setup. */
export function documentTotals(ctx: PluginContext): void {
  ctx.documentTotals('warehouse.shipments', ({ record }) => pricedDocument(ctx, record));
  ctx.documentTotals('warehouse.receipts', ({ record }) => pricedDocument(ctx, record));
  ctx.documentTotals('warehouse.counts', ({ record }) => countSheet(ctx, record));
}
