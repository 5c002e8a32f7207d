// Every ledger row goes through an audited path: each journal line and each payment allocation has
// its audit row naming who wrote it, and a failed posting leaves neither.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { org } from './helpers.ts';

let t: TestKubiki;
let acme: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['finance'] });
  acme = await org(t, 'Acme', '7707083893');
});
afterAll(() => t?.close());

const audited = async (entity: string): Promise<Map<string, { actor: string; changes: Record<string, { after: unknown }> }>> => {
  const rows: { record_id: string; actor: string; changes: unknown }[] = await t.k.db.table('kubiki_audit').where({ plugin: 'finance', entity, action: 'created' }).select('record_id', 'actor', 'changes');
  return new Map(rows.map((r) => [r.record_id, { actor: r.actor, changes: (typeof r.changes === 'string' ? JSON.parse(r.changes) : r.changes) as Record<string, { after: unknown }> }]));
};

describe('ledger rows are audited', () => {
  it('gives every journal line and every allocation an audit row with the actor and the values', async () => {
    const clerk = await t.userWith(['finance.*', 'base.*.read'], 'clerk');
    const as = { token: clerk.token };
    const draft = await t.api('POST', '/api/finance/invoices', { kind: 'customer', organization: acme, date: '2026-03-01', lines: [{ description: 'Work', quantity: '1', price: '1000.00', vatRate: '20' }] }, as);
    expect((await t.api('POST', `/api/finance/invoices/${draft.body.id}/post`, undefined, as)).status).toBe(200);
    const entry = await t.api('POST', '/api/finance/entries', { date: '2026-03-02', lines: [{ account: '50', debit: '10.00' }, { account: '90.01', credit: '10.00' }] }, as);
    expect(entry.status, JSON.stringify(entry.body)).toBe(201);
    const pay = await t.api('POST', '/api/finance/payments', { direction: 'in', organization: acme, date: '2026-03-05', amount: '1500.00' }, as);
    expect((await t.api('POST', `/api/finance/payments/${pay.body.id}/post`, { allocations: [{ invoice: draft.body.id, amount: '1000.00' }] }, as)).status).toBe(200);
    expect((await t.api('POST', `/api/finance/payments/${pay.body.id}/allocate`, { allocations: [{ invoice: draft.body.id, amount: '200.00' }] }, as)).status).toBe(200);

    const lines: { id: string; debit: string; credit: string }[] = await t.k.db.table('finance_entry_lines').select('id', 'debit', 'credit');
    const allocations: { id: string; amount: string }[] = await t.k.db.table('finance_allocations').select('id', 'amount');
    expect(lines.length).toBeGreaterThanOrEqual(7);
    expect(allocations).toHaveLength(2);
    const lineAudit = await audited('entryLines');
    const allocationAudit = await audited('allocations');
    for (const line of lines) {
      const a = lineAudit.get(String(line.id));
      expect(a, `journal line ${line.id} has no audit row`).toBeDefined();
      expect(a!.actor).toBe('clerk');
      expect(String(a!.changes.debit.after)).toBe(String(Number(line.debit)));
    }
    for (const allocation of allocations) {
      const a = allocationAudit.get(String(allocation.id));
      expect(a, `allocation ${allocation.id} has no audit row`).toBeDefined();
      expect(a!.actor).toBe('clerk');
    }
  });

  it('writes neither a line nor its audit row when the posting fails', async () => {
    const before = [await t.count('finance_entry_lines'), await t.count('kubiki_audit')];
    const res = await t.api('POST', '/api/finance/entries', { date: '2026-03-02', lines: [{ account: '50', debit: '10.00' }, { account: '90.01', credit: '9.00' }] });
    expect(res.status).toBe(400);
    expect([await t.count('finance_entry_lines'), await t.count('kubiki_audit')]).toEqual(before);
  });
});
