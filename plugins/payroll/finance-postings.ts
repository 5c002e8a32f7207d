import { SYSTEM, isKubikiError, type ApiRecord, type KubikiEvent, type PluginContext } from 'kubiki/plugin';
import { Decimal, dec, money, periodRange, rawOf, tableRef } from './util.ts';

// When finance is enabled, a pay run that is locked posts one journal entry through finance's
// postingRules extension point, dated the run's posting date (default the last day of its period):
//   Dr salary expense (the department's account, default 26)   Cr payable to staff (70)    earnings
//   Dr payable to staff (70)                                   Cr НДФЛ payable (68.01)     deductions
//   Dr salary expense                                          Cr contributions (69)       contributions
// Each pair is equal, so the entry balances; a correction run's negative differences post on the
// other side. Finance posts each event once (its idempotency key) and the rule refuses a run that
// already has an entry, so a run is posted once whatever is redelivered.
// Accounts: KUBIKI_PAYROLL_EXPENSE_ACCOUNT, _PAYABLE_ACCOUNT, _TAX_ACCOUNT, _CONTRIBUTIONS_ACCOUNT.

type Line = { account: string; debit: string } | { account: string; credit: string };
interface EntryInput { date: string; memo?: string; source?: { entity: string; id: string }; lines: Line[] }

export function postingAccounts(config: Readonly<Record<string, string>>) {
  return {
    expense: config.expense_account ?? '26',
    payable: config.payable_account ?? '70',
    tax: config.tax_account ?? '68.01',
    contributions: config.contributions_account ?? '69',
  };
}

/** Accounts payroll posts to that the shipped chart lacks (68.01 НДФЛ under 68, 69 social insurance): made once. */
export async function ensureAccounts(ctx: PluginContext): Promise<void> {
  const accounts = postingAccounts(ctx.config);
  const repo = ctx.repository('finance.accounts');
  const wanted: { code: string; name: string; parentCode?: string }[] = [
    { code: accounts.tax, name: 'Расчёты по НДФЛ / Personal income tax payable', parentCode: accounts.tax.includes('.') ? accounts.tax.split('.')[0] : undefined },
    { code: accounts.contributions, name: 'Расчёты по социальному страхованию / Social insurance contributions payable' },
  ];
  for (const a of wanted) {
    const found = await repo.listFromQuery({ code: a.code, limit: '1', fields: 'id' }, { actor: SYSTEM });
    if (found.data.length) continue;
    const parent = a.parentCode ? (await repo.listFromQuery({ code: a.parentCode, limit: '1', fields: 'id' }, { actor: SYSTEM })).data[0]?.id : undefined;
    try {
      await repo.create({ code: a.code, name: a.name, type: 'liability', ...(parent ? { parent } : {}) }, { actor: SYSTEM });
    } catch (error) {
      // Another instance made it first.
      if (!(isKubikiError(error) && error.code === 'unique-violation')) throw error;
    }
  }
}

export function runPostingRule(ctx: PluginContext) {
  const accounts = postingAccounts(ctx.config);
  return {
    name: 'payroll-runs',
    entity: 'payroll.runs',
    async when(event: KubikiEvent, record: ApiRecord): Promise<boolean> {
      if (record.status !== 'locked' || Number(record.payslipCount ?? 0) === 0) return false;
      const changes = (event.payload.changes ?? {}) as Record<string, { after?: unknown }>;
      if (changes.status?.after !== 'locked') return false;
      try {
        const posted = await ctx.repository('finance.entries').listFromQuery({ sourceEntity: 'payroll.runs', sourceId: record.id, limit: '1', fields: 'id' }, { actor: SYSTEM });
        if (posted.data.length > 0) return false;
        await ensureAccounts(ctx);
        return true;
      } catch (error) {
        if (isKubikiError(error)) return false;
        throw error;
      }
    },
    async entries(record: ApiRecord): Promise<EntryInput[]> {
      return [await runEntry(ctx, record, accounts)];
    },
  };
}

/** The run's journal entry: sums of its payslips' lines by expense account, kind and account. */
export async function runEntry(ctx: PluginContext, run: ApiRecord, accounts = postingAccounts(ctx.config), trx?: unknown): Promise<EntryInput> {
  const rows: { expense: string | null; kind: string; account: string | null; amount: string }[] = (await rawOf(ctx, trx)(
    `select d."expenseAccount" as expense, l->>'kind' as kind, l->>'account' as account, sum((l->>'amount')::numeric)::text as amount
     from ${tableRef(ctx, 'payroll_payslips')} p left join ${tableRef(ctx, 'payroll_departments')} d on d.id = p.department
     cross join lateral jsonb_array_elements(p.lines) l
     where p.run = ? group by 1, 2, 3 order by 1, 2, 3`,
    [run.id],
  )).rows;
  const lines: Line[] = [];
  const pair = (debit: string, credit: string, amount: Decimal) => {
    if (amount.isZero()) return;
    const a = money(amount.abs());
    if (amount.gt(0)) lines.push({ account: debit, debit: a }, { account: credit, credit: a });
    else lines.push({ account: credit, debit: a }, { account: debit, credit: a });
  };
  for (const r of rows) {
    const expense = r.expense ?? accounts.expense;
    const amount = dec(r.amount);
    if (r.kind === 'earning') pair(expense, accounts.payable, amount);
    else if (r.kind === 'deduction') pair(accounts.payable, r.account ?? accounts.tax, amount);
    else pair(expense, r.account ?? accounts.contributions, amount);
  }
  const date = typeof run.postingDate === 'string' ? run.postingDate : periodRange(String(run.period)).to;
  return { date, memo: `Payroll ${String(run.period)}${run.kind === 'correction' ? ' (correction)' : ''}${run.title ? `: ${String(run.title)}` : ''}`, source: { entity: 'payroll.runs', id: run.id }, lines };
}
