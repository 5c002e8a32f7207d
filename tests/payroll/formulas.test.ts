// Salary rules are data: CEL formulas (the workflows' expression language, never eval) checked when
// a structure is saved — a formula with an error is refused naming the component and the position —
// and evaluated on every employee's data; a formula failing on the data stops the run naming the
// employee, component and position, and nothing of the run is written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { approvedTimesheet, created, expectTaken, hire, snapshot, startPayroll, take } from './helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startPayroll({ finance: false }); }, 240_000);
afterAll(async () => t?.close());

const structure = (components: unknown[], extra: Record<string, unknown> = {}) => ({ code: `s-${Math.random().toString(36).slice(2, 8)}`, title: 'Test structure', components, ...extra });
const base = { code: 'base', title: 'Base', kind: 'earning', formula: 'decimal(record.salary) * decimal(input.workedDays) / decimal(input.normDays)' };

async function refused(body: unknown, field: string, rule: string, position?: { line: number; column: number }) {
  const before = await snapshot(t);
  const res = await t.api('POST', '/api/payroll/structures', body);
  expect(res.status, JSON.stringify(res.body)).toBe(400);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ code: 'payroll.formula-invalid', field, rule });
  if (position) expect(res.body).toMatchObject(position);
  expect(await snapshot(t)).toEqual(before);
  return res.body;
}

describe('a structure is saved only when every formula is sound', () => {
  it('accepts the shipped structure and a new one', async () => {
    const shipped = (await t.api('GET', '/api/payroll/structures?code=ru-standard')).body.data[0];
    expect(shipped).toMatchObject({ isDefault: true });
    expect(shipped.components.map((c: { code: string }) => c.code)).toEqual(['base', 'bonus', 'overtime', 'night', 'holiday', 'sick', 'vacation', 'ndfl', 'ndflNonResident', 'contributions', 'injury']);
    const same = await t.api('PATCH', `/api/payroll/structures/${shipped.id}`, { components: shipped.components });
    expect(same.status, JSON.stringify(same.body)).toBe(200);
    await created(t, '/api/payroll/structures', structure([base, { code: 'tax', title: 'Tax', kind: 'deduction', base: 'decimal(steps.totals.earnings)', scale: 'ndflResident', round: 0 }]));
  });

  it('refuses a syntax error naming the component, the field and the line and column', async () => {
    const body = await refused(structure([base, { code: 'bonus', title: 'Bonus', kind: 'earning', formula: 'decimal(steps.base) *\n  (decimal(record.bonusPercent) / 100' }]), 'components.1.formula', 'expression-syntax');
    expect(body).toMatchObject({ component: 'bonus', line: 2 });
    expect(body.detail).toContain('component bonus');
  });

  it('refuses a name the data does not have, pointing at it', async () => {
    // "input.wrkedDays" starts at offset 33 of line 1: column 34.
    const body = await refused(structure([{ ...base, formula: 'decimal(record.salary) * decimal(input.wrkedDays)' }]), 'components.0.formula', 'unknown-name', { line: 1, column: 34 });
    expect(body).toMatchObject({ component: 'base', position: 33 });
    expect(body.detail).toContain('input has no wrkedDays');
  });

  it('refuses a later component, an unknown parameter, a scale that is not one', async () => {
    await refused(structure([{ ...base, formula: 'decimal(steps.bonus) + 1' }, { code: 'bonus', title: 'Bonus', kind: 'earning', formula: '1' }]), 'components.0.formula', 'unknown-name');
    const p = await refused(structure([base, { code: 'extra', title: 'Extra', kind: 'earning', formula: 'decimal(steps.base) * decimal(vars.noSuchRate)' }]), 'components.1.formula', 'unknown-name', { line: 1, column: 31 });
    expect(p.detail).toContain('no dated parameter noSuchRate');
    await refused(structure([base, { code: 'tax', title: 'Tax', kind: 'deduction', base: 'decimal(steps.base)', scale: 'mrot' }]), 'components.1.scale', 'exists');
    await refused(structure([base, { code: 'tax', title: 'Tax', kind: 'deduction', formula: '1', base: '1' }]), 'components.1.formula', 'one-of');
  });

  it('refuses a formula that gives text or compares money with a float, and a condition that is not true or false', async () => {
    await refused(structure([{ ...base, formula: 'record.payBasis' }]), 'components.0.formula', 'expression-type');
    await refused(structure([{ ...base, formula: 'decimal(record.salary) * 1.5' }]), 'components.0.formula', 'expression-type');
    await refused(structure([{ ...base, condition: 'decimal(record.salary)' }]), 'components.0.condition', 'expression-type');
  });

  it('refuses what is not data: no eval, no host objects, no clock', async () => {
    await refused(structure([{ ...base, formula: 'process.exit(1)' }]), 'components.0.formula', 'expression-unknown-variable');
    await refused(structure([{ ...base, formula: 'record.constructor' }]), 'components.0.formula', 'unknown-name');
    await refused(structure([{ ...base, formula: "today() > date('2026-01-01') ? decimal(1) : decimal(0)" }]), 'components.0.formula', 'expression-unknown-variable');
    await refused(structure([{ ...base, formula: "record.name.matches('(a+)+$') ? 1 : 0" }]), 'components.0.formula', 'expression-refused');
  });

  it('names checks the same way', async () => {
    const body = await refused(structure([base], { checks: [{ code: 'low', when: 'decimal(steps.nope) < 1', message: 'x' }] }), 'checks.0.when', 'unknown-name');
    expect(body).toMatchObject({ check: 'low' });
  });
});

describe('evaluating formulas on the data', () => {
  it('computes with exact decimals: a multiplier of (1 + percent / 100) on money', async () => {
    const s = await created(t, '/api/payroll/structures', structure([
      base,
      { code: 'uplift', title: 'Uplift', kind: 'earning', formula: 'decimal(steps.base) * (1 + decimal(record.bonusPercent) / 100) - decimal(steps.base)' },
    ]));
    const e = await hire(t, { hireDate: '2025-01-01', salary: '12345.67', bonusPercent: '7.5', structure: s.id });
    const res = await t.api('POST', '/api/payroll/payslips/preview', { employee: e.id, period: '2026-02' });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    // 12 345.67 × 7.5 % = 925.92525 → 925.93 (half-up), exactly, no float drift.
    expect(res.body.payslip.lines.map((l: any) => [l.code, l.amount])).toEqual([['base', '12345.67'], ['uplift', '925.93']]);
    expect(res.body.payslip.flags.map((f: any) => f.code)).toEqual(['no-timesheet']);
  });

  it('tries another structure on an employee before it is used (preview writes nothing)', async () => {
    const e = await hire(t, { hireDate: '2025-01-01', salary: '50000.00' });
    const s = await created(t, '/api/payroll/structures', structure([{ ...base, formula: 'decimal(record.salary) * 2' }]));
    const before = await snapshot(t);
    const res = await t.api('POST', '/api/payroll/payslips/preview', { employee: e.id, period: '2026-02', structure: s.id });
    expect(res.body.payslip).toMatchObject({ earnings: '100000.00', structure: s.code });
    expect(await snapshot(t)).toEqual(before);
  });

  it('stops a run when a formula fails on an employee\'s data, naming the employee, the component and its formula; nothing written', async () => {
    // Sound on sample data (every number 1), but this employee worked no overtime: division by zero.
    const s = await created(t, '/api/payroll/structures', structure([base, { code: 'ratio', title: 'Ratio', kind: 'earning', formula: 'decimal(steps.base) /\n  decimal(input.overtimeHours)' }]));
    const e = await hire(t, { hireDate: '2025-01-01', salary: '60000.00', structure: s.id });
    await approvedTimesheet(t, e.id, '2026-02');
    const run = await created(t, '/api/payroll/runs', { period: '2026-02', employees: [e.id] });
    const before = await snapshot(t);
    const res = await take(t, 'runs', run.id, 'compute');
    expect(res.status, JSON.stringify(res.body)).toBe(409);
    expect(res.body).toMatchObject({ code: 'payroll.formula-failed', field: 'components.1.formula', rule: 'expression-evaluation', component: 'ratio', employee: e.id, personnelNumber: e.personnelNumber, period: '2026-02' });
    expect(res.body.detail).toContain('division by zero');
    expect(await snapshot(t)).toEqual(before);
    expect((await t.api('GET', `/api/payroll/runs/${run.id}`)).body.status).toBe('draft');
    await expectTaken(t, 'runs', run.id, 'cancel');
  });

  it('needs the dated parameter in force: a structure reading one from a later date fails the run naming it', async () => {
    await created(t, '/api/payroll/parameters', { code: 'regionalBonus', validFrom: '2026-06-01', value: '15', title: 'Районный коэффициент (test)' });
    const s = await created(t, '/api/payroll/structures', structure([base, { code: 'regional', title: 'Regional', kind: 'earning', formula: 'decimal(steps.base) * decimal(vars.regionalBonus) / 100' }]));
    const e = await hire(t, { hireDate: '2025-01-01', salary: '60000.00', structure: s.id });
    const may = await t.api('POST', '/api/payroll/payslips/preview', { employee: e.id, period: '2026-05' });
    expect(may.status).toBe(409);
    // The position of `.regionalBonus` in the formula: offset 35, column 36.
    expect(may.body).toMatchObject({ code: 'payroll.formula-failed', component: 'regional', field: 'components.1.formula', position: 35, line: 1, column: 36 });
    expect(may.body.detail).toContain('no dated parameter regionalBonus is in force');
    const june = await t.api('POST', '/api/payroll/payslips/preview', { employee: e.id, period: '2026-06' });
    // June: 60 000 × 15 % = 9 000.00, with the value and its date in the payslip.
    expect(june.body.payslip.lines.find((l: any) => l.code === 'regional')).toMatchObject({ amount: '9000.00' });
    expect(june.body.payslip.parameters.regionalBonus).toEqual({ value: '15', validFrom: '2026-06-01' });
  });
});
