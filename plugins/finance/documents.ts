import type { Knex } from 'knex';
import { KubikiError, fieldError, SYSTEM, type DocumentTotals, type PluginContext, type Principal, type ApiRecord } from 'kubiki/plugin';
import type { Ledger, ParsedLine, PostedEntry } from './ledger.ts';
import { Decimal, elevated, money, today } from './util.ts';

/** The invoice/quote line contract shared with CRM quotes (see docs/finance.md). */
export interface InvoiceLine {
  product?: string;
  description: string;
  quantity: string;
  price: string;
  discountPercent?: string;
  vatRate: '22' | '20' | '10' | '7' | '5' | '0' | 'exempt';
}

/** An invoice's totals under the company's VAT rounding policy (the core's money module, shared with quotes). */
export function invoiceTotals(ctx: PluginContext, invoice: Readonly<Record<string, unknown>>): DocumentTotals {
  const lines = Array.isArray(invoice.lines) ? (invoice.lines as InvoiceLine[]) : [];
  return ctx.money.totals(lines, { pricesIncludeVat: invoice.pricesIncludeVat === true });
}

/** Default accounts of automatic postings; each can be changed with KUBIKI_FINANCE_ACCOUNT_<NAME>. */
export function postingAccounts(config: Readonly<Record<string, string>>) {
  return {
    receivables: config.account_receivables ?? '62',
    revenue: config.account_revenue ?? '90.01',
    vatPayable: config.account_vatpayable ?? '68.02',
    payables: config.account_payables ?? '60',
    purchases: config.account_purchases ?? '41',
    vatReceivable: config.account_vatreceivable ?? '19',
    bank: config.account_bank ?? '51',
  };
}


const line = (account: string, side: 'debit' | 'credit', amount: string, organization?: string): ParsedLine => ({
  account, debit: new Decimal(side === 'debit' ? amount : 0), credit: new Decimal(side === 'credit' ? amount : 0), ...(organization ? { organization } : {}),
});
const nonZero = (l: ParsedLine) => !(l.debit.isZero() && l.credit.isZero());

export class Documents {
  constructor(private readonly ctx: PluginContext, private readonly ledger: Ledger) {}

  private get accounts() { return postingAccounts(this.ctx.config); }

  /** Locks one of this plugin's entity rows FOR UPDATE, or 404. `id` is a UUID (the routes' params say so). */
  async lock(table: 'finance_invoices' | 'finance_payments', id: string, trx: Knex.Transaction): Promise<Record<string, any>> {
    const row = await this.ctx.table(table, trx).where({ id }).forUpdate().first();
    if (!row) {
      const entity = table === 'finance_invoices' ? 'finance.invoices' : 'finance.payments';
      throw new KubikiError('not-found', `${entity} ${id} does not exist`, { extra: { entity, id } });
    }
    return row;
  }

  /** Next number of a series, e.g. INV-2026-000124; gapless: taken inside the posting transaction. */
  async nextNumber(prefix: string, year: string, trx: Knex.Transaction): Promise<string> {
    const key = `${prefix}-${year}`;
    const [row] = await this.ctx.table('finance_counters', trx).insert({ key, value: 1 }).onConflict('key')
      .merge({ value: trx.raw('finance_counters.value + 1') }).returning('value');
    return `${key}-${String(row.value).padStart(6, '0')}`;
  }

  /**
   * The moment an invoice is posted (the `post` transition's action, finance.postInvoice): the
   * lifecycle has already set its status in `trx`; this checks the document, computes its totals,
   * numbers it and writes its journal entry, all in that transaction — a refusal (400 naming the
   * field, 409 finance.period-closed) undoes the state change too.
   */
  async invoicePosted(id: string, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<{ invoice: ApiRecord; entry: PostedEntry }> {
    const row = await this.lock('finance_invoices', id, trx);
    if (!row.organization) throw fieldError('validation-failed', 'organization', 'required', 'set the organization before posting the invoice');
    if (!row.date) throw fieldError('validation-failed', 'date', 'required', 'set the invoice date before posting');
    if (row.dueDate && row.dueDate < row.date) throw fieldError('validation-failed', 'dueDate', 'minimum', 'dueDate cannot be before the invoice date');
    const lines = (row.lines ?? []) as InvoiceLine[];
    if (lines.length === 0) throw fieldError('validation-failed', 'lines', 'minItems', 'an invoice needs at least one line to be posted');
    lines.forEach((l, i) => {
      if (new Decimal(l.quantity).lte(0)) throw fieldError('validation-failed', `lines.${i}.quantity`, 'positive', `lines.${i}.quantity must be greater than zero`);
    });
    const totals = invoiceTotals(this.ctx, row);
    if (new Decimal(totals.total).lte(0)) throw fieldError('validation-failed', 'lines', 'positive', 'the invoice total must be greater than zero');
    const customer = row.kind === 'customer';
    if (customer && row.debitAccount) throw fieldError('validation-failed', 'debitAccount', 'supplier-only', 'debitAccount is for supplier invoices; a customer invoice debits receivables');
    const number = await this.nextNumber(customer ? 'INV' : 'SINV', row.date.slice(0, 4), trx);
    const a = this.accounts;
    const entryLines = (customer
      ? [line(a.receivables, 'debit', totals.total, row.organization), line(a.revenue, 'credit', totals.subtotal), line(a.vatPayable, 'credit', totals.vatTotal)]
      : [line(row.debitAccount ?? a.purchases, 'debit', totals.subtotal, row.debitAccount ? row.organization : undefined), line(a.vatReceivable, 'debit', totals.vatTotal), line(a.payables, 'credit', totals.total, row.organization)]
    ).filter(nonZero);
    const [entry] = await this.ledger.post([{
      date: row.date, memo: `${customer ? 'Invoice' : 'Supplier invoice'} ${number}`, sourceEntity: 'finance.invoices', sourceId: id,
      sourceKey: `finance.invoices:${id}:post`, lines: entryLines, total: new Decimal(totals.total), prefix: '',
    }], { actor, trx, requestId });
    const invoice = await this.ctx.repository('finance.invoices').update(id, {
      number, subtotal: totals.subtotal, vatTotal: totals.vatTotal, total: totals.total, paidAmount: '0.00', entry: entry.id,
    }, { actor: elevated(actor, ['finance.invoices.update']), trx, requestId, viaTransition: true });
    return { invoice, entry };
  }

  /**
   * A workflow step's `callAction: finance.postInvoice` (`{invoice: id}`): the same posting, in the
   * step's transaction (so it commits exactly once, with the step) — the draft → posted state change
   * made here as finance's own write, then the moment above. A record not in draft fails the step
   * for good (409 transition-not-allowed).
   */
  async postInvoiceInStep(id: string, trx: Knex.Transaction): Promise<{ invoice: ApiRecord; entry: PostedEntry }> {
    const row = await this.lock('finance_invoices', id, trx);
    if (row.status !== 'draft') {
      throw new KubikiError('transition-not-allowed', `invoice ${id} is ${row.status}; only a draft can be posted`, { extra: { state: row.status, transition: 'post' } });
    }
    await this.ctx.repository('finance.invoices').update(id, { status: 'posted' }, { actor: SYSTEM, trx, viaTransition: true });
    return this.invoicePosted(id, SYSTEM, trx);
  }

  /**
   * The moment an invoice is cancelled (the `cancel` transition's action, finance.cancelInvoice):
   * a draft needs nothing more; a posted, unpaid one is reversed by an entry dated `date` (default
   * today). The lifecycle has already set the status in `trx`.
   */
  async invoiceCancelled(id: string, from: string, b: { date?: string; reason?: string }, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<{ reversal?: PostedEntry }> {
    if (from === 'draft') return {};
    const row = await this.lock('finance_invoices', id, trx);
    if (new Decimal(row.paidAmount ?? 0).gt(0)) throw new KubikiError('conflict', 'the invoice has payments allocated; it cannot be cancelled', { issues: [{ field: 'status', rule: 'unpaid', message: 'paid invoices are not cancelled' }] });
    // A posted invoice written without an entry (migrated data) has nothing to reverse.
    if (!row.entry) return {};
    const reversal = await this.ledger.reverse(row.entry, { date: b.date ?? today(), memo: `Cancellation of ${row.number}${b.reason ? `: ${b.reason}` : ''}`, sourceKey: `finance.invoices:${id}:cancel` }, { actor, trx, requestId });
    return { reversal };
  }

  /**
   * Allocations of the shape the schemas give them (`[{invoice, amount}]`: a request body, or a
   * draft payment's stored proposal) as amounts, with what no schema says: each invoice once, and
   * (for a stored draft, whose entity schema allows "0.00") every amount more than zero.
   */
  allocations(list: readonly { invoice: string; amount: string }[], field = 'allocations'): { invoice: string; amount: Decimal }[] {
    const seen = new Set<string>();
    return list.map((a, i) => {
      const at = `${field}.${i}`;
      const invoice = a.invoice.toLowerCase();
      if (seen.has(invoice)) throw fieldError('validation-failed', `${at}.invoice`, 'uniqueItems', `${at}.invoice appears twice`);
      seen.add(invoice);
      const amount = new Decimal(a.amount);
      if (amount.lte(0)) throw fieldError('validation-failed', `${at}.amount`, 'positive', `${at}.amount must be greater than zero`);
      return { invoice, amount };
    });
  }

  /**
   * The moment a payment is posted (the `post` transition's action, finance.postPayment; the
   * lifecycle has set its status in `trx`): writes its entry and allocates it. The payment row, then the invoices (in id order) are
   * locked FOR UPDATE, so concurrent postings against one invoice queue up and each sees what the
   * previous one allocated: an allocation above what is still due is refused (409), never clipped.
   */
  async paymentPosted(id: string, b: { allocations?: { invoice: string; amount: string }[] }, actor: Principal, trx: Knex.Transaction, requestId?: string): Promise<{ payment: ApiRecord; entry: PostedEntry; invoices: ApiRecord[] }> {
    const requested = b.allocations === undefined ? undefined : this.allocations(b.allocations);
    const row = await this.lock('finance_payments', id, trx);
    if (!row.date) throw fieldError('validation-failed', 'date', 'required', 'set the payment date before posting');
    if (!row.organization) throw fieldError('validation-failed', 'organization', 'required', 'set the organization (payer or payee) before posting');
    const amount = new Decimal(row.amount);
    if (amount.lte(0)) throw fieldError('validation-failed', 'amount', 'positive', 'the payment amount must be greater than zero');
    const allocations = requested ?? (Array.isArray(row.allocations) ? this.allocations(row.allocations) : []);
    const allocated = allocations.reduce((s, a) => s.plus(a.amount), new Decimal(0));
    if (allocated.gt(amount)) throw fieldError('validation-failed', 'allocations', 'maximum', `allocations total ${money(allocated)}, more than the payment's ${money(amount)}`);
    const updates = await this.checkAllocations(row, allocations, trx);
    const a = this.accounts;
    const counter = row.direction === 'in' ? a.receivables : a.payables;
    const [entry] = await this.ledger.post([{
      date: row.date, memo: `Payment ${row.direction === 'in' ? 'received' : 'made'}${row.reference ? `: ${String(row.reference).slice(0, 200)}` : ''}`,
      sourceEntity: 'finance.payments', sourceId: id, sourceKey: `finance.payments:${id}:post`, total: amount, prefix: '',
      lines: row.direction === 'in'
        ? [line(a.bank, 'debit', money(amount)), line(counter, 'credit', money(amount), row.organization)]
        : [line(counter, 'debit', money(amount), row.organization), line(a.bank, 'credit', money(amount))],
    }], { actor, trx, requestId });
    await this.ctx.journalRows('finance_allocations', 'allocations').insert(allocations.map((x) => ({ payment_id: id, invoice_id: x.invoice, amount: money(x.amount), date: row.date })), { actor, trx, requestId });
    const writer = elevated(actor, ['finance.invoices.update', 'finance.payments.update']);
    const updated: ApiRecord[] = [];
    for (const u of updates) updated.push(await this.ctx.repository('finance.invoices').update(u.id, { paidAmount: u.paidAmount, status: u.status }, { actor: writer, trx, requestId, viaTransition: true }));
    const payment = await this.ctx.repository('finance.payments').update(id, {
      allocations: allocations.map((x) => ({ invoice: x.invoice, amount: money(x.amount) })), unallocated: money(amount.minus(allocated)), entry: entry.id,
    }, { actor: writer, trx, requestId, viaTransition: true });
    return { payment, entry, invoices: updated };
  }

  /**
   * Locks the allocated invoices FOR UPDATE in id order (the caller holds the payment's lock) and
   * checks each allocation against what is still due as committed by the previous lock holder.
   * Returns the invoices' new paidAmount/status; throws 400/409 naming `allocations.N.*`.
   */
  private async checkAllocations(row: Record<string, any>, allocations: { invoice: string; amount: Decimal }[], trx: Knex.Transaction): Promise<{ id: string; paidAmount: string; status: string }[]> {
    const kind = row.direction === 'in' ? 'customer' : 'supplier';
    const ids = allocations.map((a) => a.invoice).sort();
    const invoices: Record<string, any>[] = ids.length ? await this.ctx.table('finance_invoices', trx).whereIn('id', ids).orderBy('id').forUpdate().select() : [];
    const byId = new Map(invoices.map((r) => [r.id as string, r]));
    const updates: { id: string; paidAmount: string; status: string }[] = [];
    allocations.forEach((a, i) => {
      const at = `allocations.${i}`;
      const inv = byId.get(a.invoice);
      if (!inv) throw fieldError('reference-not-found', `${at}.invoice`, 'x-ref', `${at}.invoice: no finance.invoices record ${a.invoice}`);
      if (inv.kind !== kind) throw fieldError('validation-failed', `${at}.invoice`, 'kind', `${at}.invoice is a ${inv.kind} invoice; a payment ${row.direction} settles ${kind} invoices`);
      if (inv.organization !== row.organization) throw fieldError('validation-failed', `${at}.invoice`, 'organization', `${at}.invoice belongs to another organization than the payment`);
      if (!['posted', 'partlyPaid'].includes(inv.status) || !inv.entry) throw new KubikiError('conflict', `${at}.invoice is ${inv.status}; only posted, not fully paid invoices take payments`, { issues: [{ field: `${at}.invoice`, rule: 'open', message: `the invoice is ${inv.status}` }] });
      const due = new Decimal(inv.total).minus(inv.paidAmount ?? 0);
      if (a.amount.gt(due)) {
        throw new KubikiError('conflict', `${at}.amount ${money(a.amount)} exceeds what is still due on ${inv.number} (${money(due)}); nothing was posted`, { issues: [{ field: `${at}.amount`, rule: 'outstanding', message: `at most ${money(due)} is due` }], extra: { due: money(due) } });
      }
      const paid = new Decimal(inv.paidAmount ?? 0).plus(a.amount);
      updates.push({ id: inv.id, paidAmount: money(paid), status: paid.eq(inv.total) ? 'paid' : 'partlyPaid' });
    });
    return updates;
  }

  /**
   * Allocates (part of) a posted payment's advance (`unallocated`) to posted, not fully paid invoices
   * of its organization. Locks the payment, then the invoices in id order (as posting does), so
   * concurrent allocations queue up: neither an invoice nor the advance is ever over-allocated.
   * No journal entry: the advance was credited to 62 (debited to 60 for `out`) with the organization
   * when the payment was posted, and the invoice debited the same account, so settling one against
   * the other changes no account balance.
   */
  async allocatePayment(id: string, b: { allocations: { invoice: string; amount: string }[]; date?: string }, actor: Principal, requestId?: string): Promise<{ payment: ApiRecord; invoices: ApiRecord[] }> {
    const allocations = this.allocations(b.allocations);
    const date = b.date ?? today();
    return this.ctx.transaction(async (trx) => {
      const row = await this.lock('finance_payments', id, trx);
      if (row.status !== 'posted' || !row.entry) throw new KubikiError('conflict', `payment ${id} is ${row.status}; only a posted payment's advance is allocated (a draft is allocated when it is posted)`, { issues: [{ field: 'status', rule: 'posted', message: `the payment is ${row.status}` }] });
      if (date < row.date) throw fieldError('validation-failed', 'date', 'minimum', `date ${date} is before the payment's date ${row.date}`);
      const unallocated = new Decimal(row.unallocated ?? 0);
      const total = allocations.reduce((s, a) => s.plus(a.amount), new Decimal(0));
      if (total.gt(unallocated)) {
        throw new KubikiError('conflict', `allocations total ${money(total)}, more than the payment's unallocated ${money(unallocated)}; nothing was allocated`, { issues: [{ field: 'allocations', rule: 'unallocated', message: `at most ${money(unallocated)} is unallocated` }], extra: { unallocated: money(unallocated) } });
      }
      const updates = await this.checkAllocations(row, allocations, trx);
      await this.ctx.journalRows('finance_allocations', 'allocations').insert(allocations.map((x) => ({ payment_id: id, invoice_id: x.invoice, amount: money(x.amount), date })), { actor, trx, requestId });
      const writer = elevated(actor, ['finance.invoices.update', 'finance.payments.update']);
      const updated: ApiRecord[] = [];
      for (const u of updates) updated.push(await this.ctx.repository('finance.invoices').update(u.id, { paidAmount: u.paidAmount, status: u.status }, { actor: writer, trx, requestId, viaTransition: true }));
      // The payment's allocations list: one element per invoice (amounts of the same invoice summed).
      const merged = new Map<string, Decimal>();
      for (const x of (Array.isArray(row.allocations) ? row.allocations : []) as { invoice: string; amount: string }[]) merged.set(x.invoice, (merged.get(x.invoice) ?? new Decimal(0)).plus(x.amount));
      for (const x of allocations) merged.set(x.invoice, (merged.get(x.invoice) ?? new Decimal(0)).plus(x.amount));
      const payment = await this.ctx.repository('finance.payments').update(id, {
        allocations: [...merged].map(([invoice, amount]) => ({ invoice, amount: money(amount) })), unallocated: money(unallocated.minus(total)),
      }, { actor: writer, trx, requestId, viaTransition: true });
      return { payment, invoices: updated };
    });
  }
}
