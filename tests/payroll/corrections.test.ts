// A locked run is immutable; a raise entered later with an earlier date is paid as arrears by a
// correction run that computes the difference — never by an edit. Also: a correction that recovers
// an overpayment, the next month's tax seeing both, and the corrections posted to finance.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { computedRun, created, expectTaken, hire, line, lockedRun, raise, snapshot, startPayroll, take } from './helpers.ts';

let t: TestKubiki;
let e: { id: string };
let march: { run: any; payslips: Map<string, any> };
beforeAll(async () => {
  t = await startPayroll();
  e = await hire(t, { hireDate: '2026-03-02', salary: '100000.00' });
  march = await lockedRun(t, '2026-03');
  await t.k.workflowRuntime.settle();
}, 240_000);
afterAll(async () => t?.close());

describe('a locked run', () => {
  it('paid March in full: 100 000, НДФЛ 13 000, contributions 30 000 + 200', () => {
    const p = march.payslips.get(e.id);
    expect([line(p, 'base'), line(p, 'ndfl'), line(p, 'contributions'), line(p, 'injury'), p.net]).toEqual(['100000.00', '13000.00', '30000.00', '200.00', '87000.00']);
  });

  it('is immune to edits: its payslips, the run itself, its transitions and a second regular run are refused, nothing written', async () => {
    const p = march.payslips.get(e.id);
    const before = await snapshot(t);
    const refused: [string, string, unknown, number, string][] = [
      ['PATCH', `/api/payroll/payslips/${p.id}`, { net: '1.00' }, 409, 'payroll.run-locked'],
      ['DELETE', `/api/payroll/payslips/${p.id}`, undefined, 409, 'payroll.payslip-computed'],
      ['POST', '/api/payroll/payslips', { run: march.run.id, employee: e.id, period: '2026-03', net: '1.00' }, 409, 'payroll.payslip-computed'],
      ['PATCH', `/api/payroll/runs/${march.run.id}`, { title: 'changed' }, 409, 'document-locked'],
      ['PATCH', `/api/payroll/runs/${march.run.id}`, { net: '1.00' }, 409, 'document-locked'],
      ['DELETE', `/api/payroll/runs/${march.run.id}`, undefined, 409, 'document-locked'],
      ['POST', `/api/payroll/runs/${march.run.id}/transitions/compute`, undefined, 409, 'transition-not-allowed'],
      ['POST', `/api/payroll/runs/${march.run.id}/transitions/cancel`, undefined, 409, 'transition-not-allowed'],
      ['POST', '/api/payroll/runs', { period: '2026-03' }, 409, 'payroll.run-exists'],
    ];
    for (const [method, url, body, status, code] of refused) {
      const res = await t.api(method, url, body);
      expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body.code, `${method} ${url}`).toBe(code);
    }
    expect(await snapshot(t)).toEqual(before);
    expect((await t.api('GET', `/api/payroll/payslips/${p.id}`)).body).toMatchObject({ version: p.version, net: '87000.00', digest: p.digest });
  });
});

describe('a back-dated raise', () => {
  let correction: { run: any; payslips: Map<string, any> };
  let raiseId: string;
  beforeAll(async () => {
    // Entered after March was locked: 120 000 from 16 March.
    raiseId = await raise(t, e.id, '2026-03-16', '120000.00', { note: 'Приказ № 17 от 10.04.2026' });
    correction = await lockedRun(t, '2026-03', { kind: 'correction' });
    await t.k.workflowRuntime.settle();
  }, 240_000);

  it('is paid as arrears by a correction run: the difference of each line, the locked payslip untouched', async () => {
    const p = correction.payslips.get(e.id);
    // Recomputed: 100 000 × 9 / 21 + 120 000 × 12 / 21 = 42 857.14 + 68 571.43 = 111 428.57; paid 100 000: arrears 11 428.57.
    // НДФЛ: 111 428.57 × 13 % = 14 485.71 → 14 486, paid 13 000: 1 486.
    // Contributions: 33 428.57 − 30 000 = 3 428.57; injury 222.86 − 200 = 22.86. Net 11 428.57 − 1 486 = 9 942.57.
    expect([line(p, 'base'), line(p, 'ndfl'), line(p, 'contributions'), line(p, 'injury'), p.net]).toEqual(['11428.57', '1486.00', '3428.57', '22.86', '9942.57']);
    expect(p).toMatchObject({ kind: 'correction', period: '2026-03', earnings: '11428.57', deductions: '1486.00', contributions: '3451.43' });
    const base = p.lines.find((l: any) => l.code === 'base');
    expect(base.correction).toMatchObject({ recomputed: '111428.57', paid: '100000.00', payslips: [march.payslips.get(e.id).id] });
    expect(base.segments.map((s: any) => s.amount)).toEqual(['42857.14', '68571.43']);
    const original = march.payslips.get(e.id);
    expect((await t.api('GET', `/api/payroll/payslips/${original.id}`)).body).toMatchObject({ version: original.version, digest: original.digest, net: '87000.00' });
  });

  it('posts the arrears to finance as their own entry', async () => {
    const entries = (await t.api('GET', `/api/finance/entries?sourceEntity=payroll.runs&sourceId=${correction.run.id}`)).body.data;
    expect(entries).toHaveLength(1);
    const credit70 = entries[0].lines.filter((l: any) => l.account === '70' && Number(l.credit) > 0).map((l: any) => l.credit);
    expect(credit70).toEqual(['11428.57']);
    expect(entries[0].memo).toContain('correction');
  });

  it('finds nothing more to correct when nothing changed', async () => {
    const again = await computedRun(t, '2026-03', { kind: 'correction' });
    expect(again.run).toMatchObject({ payslipCount: 0, net: '0.00' });
    expect(again.payslips.size).toBe(0);
    await expectTaken(t, 'runs', again.run.id, 'cancel');
  });

  it('is seen by the next month\'s year-to-date tax', async () => {
    const april = await computedRun(t, '2026-04');
    const ndfl = april.payslips.get(e.id).lines.find((l: any) => l.code === 'ndfl');
    // Before April: 100 000 + 11 428.57 = 111 428.57 taxed 13 000 + 1 486 = 14 486.
    // With April's 120 000: 231 428.57 × 13 % = 30 085.71 → 30 086; less 14 486: 15 600 (= 120 000 × 13 %).
    expect(ndfl).toMatchObject({ amount: '15600.00', ytd: { baseBefore: '111428.57', amountBefore: '14486.00' } });
    await expectTaken(t, 'runs', april.run.id, 'cancel');
  });

  it('is recovered by another correction when it is withdrawn: negative differences, posted on the other side', async () => {
    expect((await t.api('DELETE', `/api/payroll/terms/${raiseId}`)).status).toBe(204);
    const back = await lockedRun(t, '2026-03', { kind: 'correction' });
    await t.k.workflowRuntime.settle();
    const p = back.payslips.get(e.id);
    // Recomputed 100 000 again; paid 100 000 + 11 428.57: −11 428.57; НДФЛ 13 000 − 14 486 = −1 486.
    expect([line(p, 'base'), line(p, 'ndfl'), p.net]).toEqual(['-11428.57', '-1486.00', '-9942.57']);
    const [entry] = (await t.api('GET', `/api/finance/entries?sourceEntity=payroll.runs&sourceId=${back.run.id}`)).body.data;
    const debit70 = entry.lines.filter((l: any) => l.account === '70' && Number(l.debit) > 0).map((l: any) => l.debit).sort();
    expect(debit70).toEqual(['11428.57']);
    const sum = (side: string) => entry.lines.reduce((s: number, l: any) => s + Math.round(Number(l[side]) * 100), 0);
    expect(sum('debit')).toBe(sum('credit'));
  });

  it('refuses a correction of a period without a locked regular run', async () => {
    const run = await created(t, '/api/payroll/runs', { period: '2026-07', kind: 'correction' });
    const before = await snapshot(t);
    const res = await take(t, 'runs', run.id, 'compute');
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('payroll.nothing-to-correct');
    expect(await snapshot(t)).toEqual(before);
    expect((await t.api('GET', `/api/payroll/runs/${run.id}`)).body.status).toBe('draft');
  });
});

describe('a run in review', () => {
  it('is refused approval when a timesheet changed after computing, and computing again updates only what changed', async () => {
    const x = await hire(t, { hireDate: '2025-01-01', salary: '80000.00' });
    const y = await hire(t, { hireDate: '2025-01-01', salary: '90000.00' });
    const sheets = await t.api('POST', '/api/payroll/timesheets/prefill', { period: '2026-08', employees: [x.id, y.id] });
    for (const s of sheets.body.data) { await expectTaken(t, 'timesheets', s.id, 'submit'); await expectTaken(t, 'timesheets', s.id, 'approve'); }
    const { run, payslips } = await computedRun(t, '2026-08', { employees: [x.id, y.id] });
    // August 2026: 21 working days. x is sick on the 31st after all.
    const sheetOfX = sheets.body.data.find((s: any) => s.employee === x.id).id;
    await expectTaken(t, 'timesheets', sheetOfX, 'reopen');
    expect((await t.api('PUT', `/api/payroll/timesheets/${sheetOfX}/days/2026-08-31`, { entries: [{ kind: 'absence' }] })).status).toBe(200);
    await expectTaken(t, 'timesheets', sheetOfX, 'submit');
    await expectTaken(t, 'timesheets', sheetOfX, 'approve');
    const stale = await take(t, 'runs', run.id, 'approve');
    expect(stale.body).toMatchObject({ status: 409, code: 'payroll.run-stale', changed: [{ personnelNumber: x.personnelNumber, what: ['timesheet'] }] });
    expect((await t.api('GET', `/api/payroll/runs/${run.id}`)).body.status).toBe('review');
    const again = await expectTaken(t, 'runs', run.id, 'compute');
    expect(again.output).toMatchObject({ created: 0, updated: 1, deleted: 0, payslipCount: 2 });
    // 80 000 × 20 / 21 = 76 190.476… → 76 190.48 (an unpaid day off); y untouched.
    const px = (await t.api('GET', `/api/payroll/payslips/${payslips.get(x.id).id}`)).body;
    expect(px).toMatchObject({ version: 2, facts: { workedDays: '20', absenceDays: '1' } });
    expect(px.lines.find((l: any) => l.code === 'base').amount).toBe('76190.48');
    expect((await t.api('GET', `/api/payroll/payslips/${payslips.get(y.id).id}`)).body.version).toBe(1);
    await expectTaken(t, 'runs', run.id, 'approve');
    // Approved: its payslips are not changed any more, not even by computing (the lifecycle refuses it).
    expect((await take(t, 'runs', run.id, 'compute')).body.code).toBe('transition-not-allowed');
    await expectTaken(t, 'runs', run.id, 'cancel');
    expect(await t.count('payroll_payslips', { run: run.id })).toBe(0);
  });
});

