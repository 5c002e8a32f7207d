import { expect } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';

/** Rows of the finance tables and the audit trail: "nothing written" compares two of these. */
export async function snapshot(t: TestKubiki): Promise<Record<string, number>> {
  const tables = ['finance_entries', 'finance_entry_lines', 'finance_invoices', 'finance_payments', 'finance_allocations', 'finance_bank_rows', 'finance_periods', 'finance_accounts', 'kubiki_audit'];
  return Object.fromEntries(await Promise.all(tables.map(async (name) => [name, await t.count(name)] as const)));
}

export async function expectNothingWritten(t: TestKubiki, before: Record<string, number>): Promise<void> {
  expect(await snapshot(t)).toEqual(before);
}

/** Σ debit = Σ credit over every line, and per entry. */
export async function expectBalanced(t: TestKubiki): Promise<void> {
  const [{ d, c }] = (await t.k.db.table('finance_entry_lines').select(t.k.db.knex.raw('coalesce(sum(debit),0)::text as d, coalesce(sum(credit),0)::text as c'))) as { d: string; c: string }[];
  expect(d).toBe(c);
  const off = await t.k.db.table('finance_entry_lines').groupBy('entry_id').havingRaw('sum(debit) <> sum(credit)').select('entry_id');
  expect(off).toEqual([]);
}

export async function org(t: TestKubiki, name: string, inn?: string): Promise<string> {
  const r = await t.api('POST', '/api/base/organizations', { name, ...(inn ? { inn } : {}) });
  expect(r.status).toBe(201);
  return r.body.id;
}
