// The timesheet lifecycle is a workflow definition analysts can edit: a published edit (a second
// check between submitting and approving) is what the timesheets of payroll follow from then on.
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { computedRun, expectTaken, hire, line, startPayroll, take } from './helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startPayroll({ finance: false }); }, 240_000);
afterAll(async () => t?.close());

const ID = 'payroll.timesheet-lifecycle';

describe('an analyst\'s edit of the timesheet lifecycle', () => {
  it('is published as a new version and followed by the timesheets: a timekeeper may withdraw, approving needs overtime within 8 hours', async () => {
    const shipped = readFileSync(new URL('../../plugins/payroll/workflows/timesheet-lifecycle.yaml', import.meta.url), 'utf8');
    expect((await t.api('GET', `/api/workflows/${ID}`)).body).toMatchObject({ version: 1 });
    const edited = shipped
      .replace('    action: payroll.approveTimesheet', "    action: payroll.approveTimesheet\n    condition: \"decimal(record.overtimeHours) <= decimal('8')\"")
      .replace('  - name: reopen', '  - name: withdraw\n    title: Withdraw\n    from: [submitted]\n    to: draft\n    permission: payroll.timesheets.update\n  - name: reopen');
    expect(edited).toContain('name: withdraw');
    expect(edited).toContain('condition:');
    const saved = await t.api('PUT', `/api/workflows/${ID}`, { source: edited, comment: 'timekeepers withdraw; overtime over 8 hours is not approved' });
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    expect((await t.api('POST', `/api/workflows/${ID}/publish`)).body).toMatchObject({ publishedVersion: 2 });

    const keeper = await t.userWith(['payroll.timesheets.read', 'payroll.timesheets.update']);
    const e = await hire(t, { hireDate: '2025-01-01', salary: '100000.00' });
    const id = (await t.api('POST', '/api/payroll/timesheets/prefill', { period: '2026-03', employees: [e.id] })).body.data[0].id;
    const day = (date: string, entries: unknown[]) => t.api('PUT', `/api/payroll/timesheets/${id}/days/${date}`, { entries });
    expect((await day('2026-03-02', [{ kind: 'work', hours: '8' }])).status).toBe(200);
    expect((await day('2026-03-03', [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '4' }])).status).toBe(200);
    expect((await day('2026-03-04', [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '5' }])).status).toBe(200);
    await expectTaken(t, 'timesheets', id, 'submit', keeper.token);
    // 9 hours of overtime: the analyst's condition refuses approval, nothing changes.
    const refused = await take(t, 'timesheets', id, 'approve');
    expect(refused.body).toMatchObject({ status: 409, code: 'transition-condition-failed', condition: "decimal(record.overtimeHours) <= decimal('8')" });
    expect((await t.api('GET', `/api/payroll/timesheets/${id}`)).body.status).toBe('submitted');
    // The new transition: the timekeeper (no approve permission) takes it back to draft and corrects it.
    expect((await expectTaken(t, 'timesheets', id, 'withdraw', keeper.token)).record).toMatchObject({ status: 'draft' });
    expect((await day('2026-03-04', [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '2' }])).status).toBe(200);
    await expectTaken(t, 'timesheets', id, 'submit', keeper.token);
    await expectTaken(t, 'timesheets', id, 'approve');
    const { payslips } = await computedRun(t, '2026-03', { employees: [e.id] });
    // 100 000 / 168 = 595.238… an hour; overtime 2 × 1.5 + 2 × 2 (3 March) + 2 × 1.5 (4 March) = 10 paid hours = 5 952.38.
    expect(['base', 'overtime'].map((c) => line(payslips.get(e.id), c))).toEqual(['100000.00', '5952.38']);
  });
});
