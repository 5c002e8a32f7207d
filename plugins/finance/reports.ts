import type { Knex } from 'knex';
import { KubikiError, fieldError, SYSTEM, type PluginContext } from 'kubiki/plugin';
import { Decimal, isUuid, money, today } from './util.ts';

export interface Report {
  report: string;
  columns: string[];
  rows: Record<string, unknown>[];
  [meta: string]: unknown;
}

/** from..to (to defaults to asOf, then today): dates the routes' query schemas checked. */
export interface RangeQuery { from?: string; to?: string; asOf?: string }

interface AccountInfo { id: string; code: string; name: string; type: string }
const DEBIT_NORMAL = new Set(['asset', 'expense']);

/**
 * Financial reports. Every sum is a GROUP BY in the database over finance_entry_lines (indexed on
 * (account_id, date) and date); JavaScript only formats the grouped rows (one per account).
 */
export class Reports {
  constructor(private readonly ctx: PluginContext) {}

  private lines(): Knex.QueryBuilder { return this.ctx.table('finance_entry_lines'); }

  private async accounts(): Promise<Map<string, AccountInfo>> {
    const rows: AccountInfo[] = await this.ctx.table('finance_accounts').select('id', 'code', 'name', 'type');
    return new Map(rows.map((r) => [r.id, r]));
  }

  private range(query: RangeQuery): { from?: string; to: string } {
    const { from } = query;
    const to = query.to ?? query.asOf ?? today();
    if (from && from > to) throw fieldError('bad-query', 'from', 'maximum', 'from must not be after to');
    return { from, to };
  }

  /** Opening balance (before `from`), debit and credit turnover (`from`..`to`) and closing balance per account. */
  async trialBalance(query: RangeQuery): Promise<Report> {
    const { from, to } = this.range(query);
    const k = this.ctx.table('finance_entry_lines').client;
    const start = from ?? '0001-01-01';
    const grouped: { account_id: string; opening: string; debit: string; credit: string }[] = await this.lines()
      .where('date', '<=', to).groupBy('account_id')
      .select('account_id',
        k.raw('coalesce(sum(case when date < ? then debit - credit end), 0) as opening', [start]),
        k.raw('coalesce(sum(case when date >= ? then debit end), 0) as debit', [start]),
        k.raw('coalesce(sum(case when date >= ? then credit end), 0) as credit', [start]));
    const accounts = await this.accounts();
    let totals = { openingDebit: new Decimal(0), openingCredit: new Decimal(0), debit: new Decimal(0), credit: new Decimal(0), closingDebit: new Decimal(0), closingCredit: new Decimal(0) };
    const rows = grouped.map((g) => {
      const a = accounts.get(g.account_id)!;
      const opening = new Decimal(g.opening);
      const closing = opening.plus(g.debit).minus(g.credit);
      const r = {
        account: a.code, name: a.name, type: a.type,
        openingDebit: opening.gt(0) ? opening : new Decimal(0), openingCredit: opening.lt(0) ? opening.neg() : new Decimal(0),
        debit: new Decimal(g.debit), credit: new Decimal(g.credit),
        closingDebit: closing.gt(0) ? closing : new Decimal(0), closingCredit: closing.lt(0) ? closing.neg() : new Decimal(0),
      };
      totals = Object.fromEntries(Object.entries(totals).map(([key, v]) => [key, v.plus(r[key as keyof typeof totals])])) as typeof totals;
      return Object.fromEntries(Object.entries(r).map(([key, v]) => [key, v instanceof Decimal ? money(v) : v]));
    }).sort((x, y) => String(x.account).localeCompare(String(y.account)));
    const t = Object.fromEntries(Object.entries(totals).map(([key, v]) => [key, money(v)]));
    return {
      report: 'trial-balance', from: from ?? null, to,
      columns: ['account', 'name', 'type', 'openingDebit', 'openingCredit', 'debit', 'credit', 'closingDebit', 'closingCredit'],
      rows, totals: t, balanced: totals.debit.eq(totals.credit) && totals.closingDebit.eq(totals.closingCredit),
    };
  }

  /** Every line of one account in `from`..`to` with its entry, and the running balance (a window sum). */
  async generalLedger(query: RangeQuery & { account: string; limit: number }): Promise<Report> {
    const { from, to } = this.range(query);
    const { account: ref, limit } = query;
    const account = await this.ctx.table('finance_accounts').where((q) => { q.where('code', ref); if (isUuid(ref)) q.orWhere('id', ref); }).first('id', 'code', 'name', 'type');
    if (!account) throw fieldError('bad-query', 'account', 'exists', `no account ${ref}`);
    const k = this.ctx.table('finance_entry_lines').client;
    const start = from ?? '0001-01-01';
    const [{ opening }] = await this.lines().where({ account_id: account.id }).where('date', '<', start).select(k.raw('coalesce(sum(debit - credit), 0) as opening'));
    const [{ debit, credit, count }] = await this.lines().where({ account_id: account.id }).whereBetween('date', [start, to])
      .select(k.raw('coalesce(sum(debit), 0) as debit'), k.raw('coalesce(sum(credit), 0) as credit'), k.raw('count(*)::int as count'));
    const lines: Record<string, any>[] = await this.lines().where({ account_id: account.id }).whereBetween('date', [start, to])
      .orderBy([{ column: 'date' }, { column: 'id' }]).limit(limit)
      .select('id', 'entry_id', 'date', 'debit', 'credit', 'organization_id', k.raw('? + sum(debit - credit) over (order by date, id) as balance', [opening]));
    const headers: Record<string, any>[] = lines.length ? await this.ctx.table('finance_entries').whereIn('id', [...new Set(lines.map((l) => l.entry_id))]).select('id', 'memo', 'sourceEntity', 'sourceId') : [];
    const byId = new Map(headers.map((h) => [h.id, h]));
    const rows = lines.map((l) => ({
      date: l.date, entry: l.entry_id, memo: byId.get(l.entry_id)?.memo ?? '', source: byId.get(l.entry_id)?.sourceEntity ? `${byId.get(l.entry_id)!.sourceEntity}/${byId.get(l.entry_id)!.sourceId}` : '',
      organization: l.organization_id ?? '', debit: money(l.debit), credit: money(l.credit), balance: money(l.balance),
    }));
    return {
      report: 'general-ledger', account: { id: account.id, code: account.code, name: account.name, type: account.type }, from: from ?? null, to,
      columns: ['date', 'entry', 'memo', 'source', 'organization', 'debit', 'credit', 'balance'], rows,
      opening: money(opening), debit: money(debit), credit: money(credit), closing: money(new Decimal(opening).plus(debit).minus(credit)),
      lineCount: count, truncated: count > rows.length,
    };
  }

  /** Income and expense accounts' turnover over `from`..`to`; net profit = income − expenses. */
  async profitAndLoss(query: RangeQuery): Promise<Report> {
    const { from, to } = this.range(query);
    const accounts = await this.accounts();
    const ids = [...accounts.values()].filter((a) => a.type === 'income' || a.type === 'expense').map((a) => a.id);
    const k = this.ctx.table('finance_entry_lines').client;
    const q = this.lines().whereIn('account_id', ids).where('date', '<=', to).groupBy('account_id')
      .select('account_id', k.raw('sum(debit) as debit'), k.raw('sum(credit) as credit'));
    if (from) q.where('date', '>=', from);
    const grouped: { account_id: string; debit: string; credit: string }[] = await q;
    let income = new Decimal(0);
    let expense = new Decimal(0);
    const rows = grouped.map((g) => {
      const a = accounts.get(g.account_id)!;
      const amount = a.type === 'income' ? new Decimal(g.credit).minus(g.debit) : new Decimal(g.debit).minus(g.credit);
      if (a.type === 'income') income = income.plus(amount); else expense = expense.plus(amount);
      return { section: a.type, account: a.code, name: a.name, amount: money(amount) };
    }).sort((x, y) => (x.section === y.section ? x.account.localeCompare(y.account) : x.section === 'income' ? -1 : 1));
    return {
      report: 'profit-and-loss', from: from ?? null, to, columns: ['section', 'account', 'name', 'amount'], rows,
      income: money(income), expenses: money(expense), netProfit: money(income.minus(expense)),
    };
  }

  /** Balances as of `asOf`: assets = liabilities + equity (+ the not yet closed result of income and expense accounts). */
  async balanceSheet(query: { asOf?: string; to?: string }): Promise<Report> {
    const asOf = query.asOf ?? query.to ?? today();
    const k = this.ctx.table('finance_entry_lines').client;
    const grouped: { account_id: string; balance: string }[] = await this.lines().where('date', '<=', asOf).groupBy('account_id')
      .select('account_id', k.raw('sum(debit - credit) as balance'));
    const accounts = await this.accounts();
    const sums: Record<string, Decimal> = { asset: new Decimal(0), liability: new Decimal(0), equity: new Decimal(0), result: new Decimal(0) };
    const rows: Record<string, unknown>[] = [];
    for (const g of grouped) {
      const a = accounts.get(g.account_id)!;
      const balance = new Decimal(g.balance);
      if (a.type === 'income' || a.type === 'expense') { sums.result = sums.result.minus(balance); continue; }
      const amount = a.type === 'asset' ? balance : balance.neg();
      sums[a.type] = sums[a.type].plus(amount);
      if (!amount.isZero()) rows.push({ section: a.type, account: a.code, name: a.name, amount: money(amount) });
    }
    if (!sums.result.isZero()) rows.push({ section: 'equity', account: '', name: 'Current result (income − expenses not yet closed)', amount: money(sums.result) });
    const order = ['asset', 'liability', 'equity'];
    rows.sort((x, y) => order.indexOf(String(x.section)) - order.indexOf(String(y.section)) || String(x.account).localeCompare(String(y.account)));
    const equity = sums.equity.plus(sums.result);
    return {
      report: 'balance-sheet', asOf, columns: ['section', 'account', 'name', 'amount'], rows,
      assets: money(sums.asset), liabilities: money(sums.liability), equity: money(equity),
      liabilitiesAndEquity: money(sums.liability.plus(equity)), balanced: sums.asset.eq(sums.liability.plus(equity)),
    };
  }

  /** Open invoices' outstanding amounts by organization and days past due as of `asOf`. */
  async ageing(kind: 'customer' | 'supplier', query: { asOf?: string }): Promise<Report> {
    const asOf = query.asOf ?? today();
    const k = this.ctx.table('finance_invoices').client;
    // What was paid on each invoice as of asOf: allocations dated ≤ asOf (an allocation is dated by its
    // payment, or by its own date when an advance was allocated later) — not today's paidAmount.
    const paid = this.ctx.table('finance_allocations').where('date', '<=', asOf).groupBy('invoice_id').select('invoice_id', k.raw('sum(amount) as paid'));
    // asOf passed the route's date format check (YYYY-MM-DD), so it is safe as a literal.
    const due = `('${asOf}'::date - coalesce(finance_invoices."dueDate", finance_invoices."date"))`;
    const out = '(finance_invoices."total" - coalesce(alloc.paid, 0))';
    const bucket = (cond: string, name: string) => k.raw(`coalesce(sum(case when ${cond.replace(/DAYS/g, due)} then ${out} end), 0) as "${name}"`);
    // Invoices posted by asOf: dated ≤ asOf and posted (open or paid now — paid later is still open
    // then), or cancelled by a reversal dated after asOf. Fully paid as of asOf ones are filtered out.
    const reversedAfter = this.ctx.table('finance_entries').whereRaw('finance_entries."reverses" = finance_invoices."entry"').where('date', '>', asOf).select(k.raw('1'));
    const grouped: Record<string, string>[] = await this.ctx.table('finance_invoices')
      .leftJoin(paid.as('alloc'), 'alloc.invoice_id', 'finance_invoices.id')
      .where('finance_invoices.kind', kind).whereNotNull('finance_invoices.entry').where('finance_invoices.date', '<=', asOf)
      .where((w) => { w.whereIn('finance_invoices.status', ['posted', 'partlyPaid', 'paid']).orWhere((c) => c.where('finance_invoices.status', 'cancelled').whereExists(reversedAfter)); })
      .whereRaw(`${out} <> 0`)
      .groupBy('finance_invoices.organization')
      .select('finance_invoices.organization',
        bucket('DAYS < 0', 'notDue'), bucket('DAYS between 0 and 30', 'days0to30'), bucket('DAYS between 31 and 60', 'days31to60'),
        bucket('DAYS between 61 and 90', 'days61to90'), bucket('DAYS > 90', 'days90plus'), k.raw(`sum(${out}) as total`), k.raw('count(*)::int as invoices'));
    const ids = grouped.map((g) => g.organization).filter(Boolean);
    const names = new Map<string, string>();
    for (let i = 0; i < ids.length; i += 500) {
      const page = await this.ctx.repository('base.organizations').listFromQuery({ 'id[in]': ids.slice(i, i + 500).join(','), limit: '500', fields: 'id,name' }, { actor: SYSTEM });
      for (const r of page.data) names.set(r.id, String(r.name));
    }
    const cols = ['notDue', 'days0to30', 'days31to60', 'days61to90', 'days90plus', 'total'] as const;
    const totals = Object.fromEntries(cols.map((c) => [c, new Decimal(0)])) as Record<string, Decimal>;
    const rows = grouped.map((g): Record<string, string> => {
      for (const c of cols) totals[c] = totals[c].plus(g[c]);
      return { organization: g.organization, name: names.get(g.organization) ?? '', invoices: g.invoices, ...Object.fromEntries(cols.map((c) => [c, money(g[c])])) };
    }).filter((r) => r.total !== '0.00').sort((a, b) => a.name.localeCompare(b.name));
    return {
      report: kind === 'customer' ? 'receivables-ageing' : 'payables-ageing', asOf,
      columns: ['organization', 'name', 'invoices', ...cols], rows, totals: Object.fromEntries(cols.map((c) => [c, money(totals[c])])),
    };
  }

  /** Planned (finance.budgets) against actual movements per account and month of one budget. */
  async budget(query: { budget: string }): Promise<Report> {
    const name = query.budget;
    const plans: { account: string; month: string; amount: string }[] = await this.ctx.table('finance_budgets').where({ budget: name })
      .groupBy('account', 'month').select('account', 'month', this.ctx.table('finance_budgets').client.raw('sum(amount) as amount'));
    if (plans.length === 0) throw new KubikiError('not-found', `no budget lines for budget "${name}"`, { issues: [{ field: 'budget', rule: 'exists', message: 'no such budget' }] });
    const months = [...new Set(plans.map((p) => p.month))].sort();
    const from = `${months[0]}-01`;
    const last = months[months.length - 1];
    const end = new Date(Date.UTC(Number(last.slice(0, 4)), Number(last.slice(5, 7)), 0)).toISOString().slice(0, 10);
    const k = this.ctx.table('finance_entry_lines').client;
    const actual: { account_id: string; month: string; debit: string; credit: string }[] = await this.lines()
      .whereIn('account_id', [...new Set(plans.map((p) => p.account))]).whereBetween('date', [from, end])
      .groupBy('account_id', k.raw("to_char(date, 'YYYY-MM')"))
      .select('account_id', k.raw("to_char(date, 'YYYY-MM') as month"), k.raw('sum(debit) as debit'), k.raw('sum(credit) as credit'));
    const accounts = await this.accounts();
    const actualOf = new Map(actual.map((a) => [`${a.account_id}|${a.month}`, a]));
    let planned = new Decimal(0);
    let done = new Decimal(0);
    const rows = plans.map((p) => {
      const a = accounts.get(p.account)!;
      const act = actualOf.get(`${p.account}|${p.month}`);
      const value = act ? (DEBIT_NORMAL.has(a.type) ? new Decimal(act.debit).minus(act.credit) : new Decimal(act.credit).minus(act.debit)) : new Decimal(0);
      planned = planned.plus(p.amount);
      done = done.plus(value);
      return { account: a.code, name: a.name, month: p.month, planned: money(p.amount), actual: money(value), variance: money(value.minus(p.amount)) };
    }).sort((x, y) => x.account.localeCompare(y.account) || x.month.localeCompare(y.month));
    return { report: 'budget', budget: name, columns: ['account', 'name', 'month', 'planned', 'actual', 'variance'], rows, planned: money(planned), actual: money(done), variance: money(done.minus(planned)) };
  }
}
