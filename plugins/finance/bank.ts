import { createHash } from 'node:crypto';
import { KubikiError, fieldError, SYSTEM, type PluginContext, type Principal } from 'kubiki/plugin';
import { Decimal, elevated, isDate, money } from './util.ts';

/** RFC 4180-ish CSV: `,` or `;` separated, quoted fields with "" escapes; returns rows with their line numbers. */
export function parseCsv(text: string): { line: number; cells: string[] }[] {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  const sep = (firstLine.match(/;/g)?.length ?? 0) > (firstLine.match(/,/g)?.length ?? 0) ? ';' : ',';
  const rows: { line: number; cells: string[] }[] = [];
  let cells: string[] = [];
  let cell = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') { cell += '"'; i++; } else if (c === '"') quoted = false; else { if (c === '\n') line++; cell += c; }
    } else if (c === '"' && cell === '') quoted = true;
    else if (c === sep) { cells.push(cell); cell = ''; }
    else if (c === '\n' || c === '\r') {
      if (c === '\r' && text[i + 1] === '\n') i++;
      cells.push(cell);
      if (cells.some((x) => x.trim() !== '')) rows.push({ line: rowLine, cells });
      cells = []; cell = ''; line++; rowLine = line;
    } else cell += c;
  }
  cells.push(cell);
  if (cells.some((x) => x.trim() !== '')) rows.push({ line: rowLine, cells });
  return rows;
}

const COLUMNS: Record<string, string> = {
  date: 'date', amount: 'amount', reference: 'reference', purpose: 'reference', counterpartyinn: 'counterpartyInn', inn: 'counterpartyInn',
  counterpartyname: 'counterpartyName', counterparty: 'counterpartyName', name: 'counterpartyName', direction: 'direction', currency: 'currency',
  id: 'lineId', lineid: 'lineId', transactionid: 'lineId',
};
const AMOUNT = /^[+-]?[0-9]{1,16}([.,][0-9]{1,2})?$/;
const NUMBER = /\b(S?INV-[0-9]{4}-[0-9]{6})\b/gi;

/** What an import answers (POST /api/finance/bank-statements; its schema is in routes/bank.ts). */
export interface StatementImport {
  created: number;
  matched: { line: number; payment: string; invoice: string; number: string; amount: string; allocated: string; by: 'reference' | 'amount' }[];
  unmatched: { line: number; payment: string; amount: string; reason: string }[];
  duplicates: { line: number; payment: string | null; importedLine: number | null; importedAt: string | null }[];
}

interface Row { line: number; date: string; amount: Decimal; direction: 'in' | 'out'; reference: string; counterpartyInn?: string; counterpartyName?: string; lineId?: string; fingerprint: string }

/**
 * The identity of a statement row: direction, date, amount, reference (whitespace collapsed),
 * counterparty INN and the bank's own line id when the CSV has one — plus its occurrence among
 * identical rows of the same statement, so two genuinely equal rows (two equal fees on one day) are
 * two payments, while the same statement (or an overlapping one holding the same days) imported
 * again yields the same fingerprints.
 */
function fingerprints(rows: Omit<Row, 'fingerprint'>[]): string[] {
  const seen = new Map<string, number>();
  return rows.map((r) => {
    const key = JSON.stringify([r.direction, r.date, r.amount.toFixed(2), r.reference.replace(/\s+/g, ' ').trim(), r.counterpartyInn ?? '', r.lineId ?? '']);
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    return createHash('sha256').update(`${key}#${n}`).digest('hex');
  });
}

/**
 * Bank statement import: every row is checked first (all bad rows reported with line numbers, nothing
 * written); then, in one transaction, a draft payment per row, matched to an open invoice by the
 * invoice number in the reference (or, without one, by the counterparty's INN and the exact amount due).
 */
export async function importStatement(ctx: PluginContext, text: string, actor: Principal, requestId?: string): Promise<StatementImport> {
  const rows = parseCsv(text.replace(/^\uFEFF/, ''));
  if (rows.length < 2) throw fieldError('validation-failed', 'csv', 'minItems', 'the statement needs a header line and at least one row');
  const header = rows[0].cells.map((h) => COLUMNS[h.trim().toLowerCase().replace(/[^a-z]/g, '')]);
  for (const need of ['date', 'amount']) {
    if (!header.includes(need)) throw fieldError('validation-failed', 'csv.1', 'header', `the header line must name a "${need}" column (known: date, amount, reference, counterpartyInn, counterpartyName, direction, id)`);
  }
  if (rows.length > 5001) throw fieldError('validation-failed', 'csv', 'maxItems', 'at most 5000 rows per statement');
  const issues: { field: string; rule: string; message: string }[] = [];
  const parsed: Omit<Row, 'fingerprint'>[] = [];
  for (const r of rows.slice(1)) {
    const get = (name: string) => { const i = header.indexOf(name); return i >= 0 ? (r.cells[i] ?? '').trim() : ''; };
    const bad = (col: string, rule: string, message: string) => issues.push({ field: `csv.${r.line}.${col}`, rule, message: `line ${r.line}: ${message}` });
    let date = get('date');
    const dm = /^([0-9]{2})\.([0-9]{2})\.([0-9]{4})$/.exec(date);
    if (dm) date = `${dm[3]}-${dm[2]}-${dm[1]}`;
    if (!isDate(date)) bad('date', 'format', `date "${get('date')}" is not YYYY-MM-DD or DD.MM.YYYY`);
    const a = get('amount').replace(/\s/g, '');
    if (!AMOUNT.test(a) || new Decimal(a.replace(',', '.')).isZero()) { bad('amount', 'format', `amount "${get('amount')}" is not a non-zero decimal (1234.50, -99,90)`); continue; }
    let amount = new Decimal(a.replace(',', '.'));
    let direction: 'in' | 'out' = amount.isNegative() ? 'out' : 'in';
    const d = get('direction').toLowerCase();
    if (d) {
      if (d !== 'in' && d !== 'out') bad('direction', 'enum', `direction "${d}" must be in or out`);
      else direction = d;
    }
    amount = amount.abs();
    const inn = get('counterpartyInn');
    if (inn && !/^([0-9]{10}|[0-9]{12})$/.test(inn)) bad('counterpartyInn', 'format', `counterpartyInn "${inn}" must be 10 or 12 digits`);
    const reference = get('reference');
    if (reference.length > 500) bad('reference', 'maxLength', 'reference is longer than 500 characters');
    const lineId = get('lineId');
    if (lineId.length > 200) bad('lineId', 'maxLength', 'the line id is longer than 200 characters');
    if (isDate(date)) parsed.push({ line: r.line, date, amount, direction, reference, counterpartyInn: inn || undefined, counterpartyName: get('counterpartyName').slice(0, 300) || undefined, lineId: lineId || undefined });
  }
  if (issues.length) throw new KubikiError('validation-failed', `${issues.length} bad value(s) in the statement; nothing was imported: ${issues.slice(0, 5).map((i) => i.message).join('; ')}`, { issues });

  const prints = fingerprints(parsed);
  const all: Row[] = parsed.map((r, i) => ({ ...r, fingerprint: prints[i] }));
  const numbers = [...new Set(parsed.flatMap((r) => [...r.reference.matchAll(NUMBER)].map((m) => m[1].toUpperCase())))];
  const inns = [...new Set(parsed.map((r) => r.counterpartyInn).filter((x): x is string => !!x))];
  const writer = elevated(actor, ['finance.payments.create']);
  return ctx.transaction(async (trx) => {
    // Claim every row's fingerprint first (primary key): a row imported before — or by an import
    // running right now, whose insert this one waits for — is skipped and reported as a duplicate.
    const claimed = new Set<string>();
    for (let i = 0; i < all.length; i += 1000) {
      const got: { fingerprint: string }[] = await ctx.table('finance_bank_rows', trx)
        .insert(all.slice(i, i + 1000).map((r) => ({ fingerprint: r.fingerprint, line: r.line })))
        .onConflict('fingerprint').ignore().returning('fingerprint');
      for (const g of got) claimed.add(g.fingerprint);
    }
    const fresh = all.filter((r) => claimed.has(r.fingerprint));
    const dup = all.filter((r) => !claimed.has(r.fingerprint));
    const earlier = new Map<string, { payment_id: string | null; line: number; imported_at: Date | string }>();
    for (let i = 0; i < dup.length; i += 1000) {
      const got = await ctx.table('finance_bank_rows', trx).whereIn('fingerprint', dup.slice(i, i + 1000).map((r) => r.fingerprint)).select('fingerprint', 'payment_id', 'line', 'imported_at');
      for (const g of got) earlier.set(g.fingerprint, g);
    }
    const duplicates = dup.map((r) => {
      const e = earlier.get(r.fingerprint);
      return { line: r.line, payment: e?.payment_id ?? null, importedLine: e?.line ?? null, importedAt: e ? new Date(e.imported_at).toISOString() : null };
    });
    const orgByInn = new Map<string, string>();
    for (let i = 0; i < inns.length; i += 200) {
      const page = await ctx.repository('base.organizations').listFromQuery({ 'inn[in]': inns.slice(i, i + 200).join(','), limit: '500', fields: 'id,inn' }, { actor: SYSTEM, trx });
      for (const o of page.data) orgByInn.set(String(o.inn), o.id);
    }
    const open: Record<string, any>[] = await ctx.table('finance_invoices', trx).whereIn('status', ['posted', 'partlyPaid'])
      .where((q) => { q.whereIn('number', numbers); if (orgByInn.size) q.orWhereIn('organization', [...orgByInn.values()]); })
      .select('id', 'number', 'kind', 'organization', 'total', 'paidAmount');
    const dueOf = new Map(open.map((i) => [i.id as string, new Decimal(i.total).minus(i.paidAmount ?? 0)]));
    const matched: StatementImport['matched'] = [];
    const unmatched: StatementImport['unmatched'] = [];
    for (const r of fresh) {
      const kind = r.direction === 'in' ? 'customer' : 'supplier';
      const org = r.counterpartyInn ? orgByInn.get(r.counterpartyInn) : undefined;
      const refs = [...r.reference.matchAll(NUMBER)].map((m) => m[1].toUpperCase());
      let invoice = open.find((i) => refs.includes(i.number) && i.kind === kind && dueOf.get(i.id)!.gt(0) && (!org || i.organization === org));
      let by: 'reference' | 'amount' = 'reference';
      if (!invoice && org) {
        const same = open.filter((i) => i.organization === org && i.kind === kind && dueOf.get(i.id)!.eq(r.amount));
        if (same.length === 1) { invoice = same[0]; by = 'amount'; }
      }
      const allocation = invoice ? Decimal.min(r.amount, dueOf.get(invoice.id)!) : undefined;
      if (invoice) dueOf.set(invoice.id, dueOf.get(invoice.id)!.minus(allocation!));
      const payment = await ctx.repository('finance.payments').create({
        direction: r.direction, date: r.date, amount: money(r.amount), reference: r.reference || undefined, organization: invoice?.organization ?? org,
        counterpartyInn: r.counterpartyInn, counterpartyName: r.counterpartyName, importLine: r.line, status: 'draft',
        ...(invoice ? { allocations: [{ invoice: invoice.id, amount: money(allocation!) }] } : {}),
      }, { actor: writer, trx, requestId });
      await ctx.table('finance_bank_rows', trx).where({ fingerprint: r.fingerprint }).update({ payment_id: payment.id });
      if (invoice) matched.push({ line: r.line, payment: payment.id, invoice: invoice.id, number: invoice.number, amount: money(r.amount), allocated: money(allocation!), by });
      else unmatched.push({ line: r.line, payment: payment.id, amount: money(r.amount), reason: refs.length ? `no open ${kind} invoice ${refs.join(', ')} with an amount due` : org ? 'no invoice number in the reference and no single open invoice of this counterparty with this amount due' : 'no invoice number in the reference and unknown counterparty' });
    }
    return { created: fresh.length, matched, unmatched, duplicates };
  });
}
