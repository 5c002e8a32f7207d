import { expect } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

// Payroll through REST: people, employees with terms, timesheets, runs taken through their lifecycle.

export async function startPayroll(options: { finance?: boolean } = {}): Promise<TestKubiki> {
  return startKubiki({ enable: options.finance === false ? ['base', 'payroll'] : ['base', 'finance', 'payroll'] });
}

/** The tables payroll writes and the audit trail: "nothing written" compares two of these. */
export async function snapshot(t: TestKubiki): Promise<Record<string, number>> {
  const tables = ['payroll_employees', 'payroll_terms', 'payroll_timesheets', 'payroll_runs', 'payroll_payslips', 'payroll_structures', 'payroll_parameters', 'payroll_calendars', 'payroll_schedules', 'payroll_departments', 'payroll_history', 'kubiki_audit'];
  return Object.fromEntries(await Promise.all(tables.map(async (name) => [name, await t.count(name)] as const)));
}

export async function created<T = any>(t: TestKubiki, path: string, body: unknown, token?: string): Promise<T> {
  const res = await t.api('POST', path, body, { token });
  expect(res.status, `${path}: ${JSON.stringify(res.body)}`).toBe(201);
  return res.body as T;
}

let counter = 0;
/** A person and an employee on it, with terms from `terms.validFrom` (default the hire date). */
export async function hire(t: TestKubiki, options: {
  hireDate: string; salary?: string; hourlyRate?: string; rate?: string; bonusPercent?: string; schedule?: string; department?: string;
  lastName?: string; taxResidency?: 'resident' | 'nonresident'; user?: string; structure?: string; termsFrom?: string; terminationDate?: string; sickPayPercent?: number;
}): Promise<{ id: string; person: string; personnelNumber: string; terms: string }> {
  counter++;
  const person = await created(t, '/api/base/people', { firstName: 'Иван', lastName: options.lastName ?? `Сотрудников${counter}`, middleName: 'Петрович' });
  const personnelNumber = `T${String(Date.now() % 100000).padStart(5, '0')}${counter}`;
  const employee = await created(t, '/api/payroll/employees', {
    person: person.id, personnelNumber, hireDate: options.hireDate, position: 'Инженер',
    ...(options.department ? { department: options.department } : {}), ...(options.taxResidency ? { taxResidency: options.taxResidency } : {}),
    ...(options.user ? { user: options.user } : {}), ...(options.structure ? { structure: options.structure } : {}),
    ...(options.terminationDate ? { terminationDate: options.terminationDate } : {}), ...(options.sickPayPercent ? { sickPayPercent: options.sickPayPercent } : {}),
  });
  const terms = await created(t, '/api/payroll/terms', {
    employee: employee.id, validFrom: options.termsFrom ?? options.hireDate,
    ...(options.hourlyRate ? { payBasis: 'hourly', hourlyRate: options.hourlyRate } : { payBasis: 'monthly', salary: options.salary ?? '100000.00' }),
    ...(options.rate ? { rate: options.rate } : {}), ...(options.bonusPercent ? { bonusPercent: options.bonusPercent } : {}),
    ...(options.schedule ? { schedule: options.schedule } : {}),
  });
  return { id: employee.id, person: person.id, personnelNumber, terms: terms.id };
}

export async function raise(t: TestKubiki, employee: string, validFrom: string, salary: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (await created(t, '/api/payroll/terms', { employee, validFrom, payBasis: 'monthly', salary, ...extra })).id;
}

export async function scheduleId(t: TestKubiki, code: string): Promise<string> {
  const res = await t.api('GET', `/api/payroll/schedules?code=${code}`);
  expect(res.body.data, code).toHaveLength(1);
  return res.body.data[0].id;
}

export async function take(t: TestKubiki, entity: 'runs' | 'timesheets', id: string, name: string, token?: string) {
  return t.api('POST', `/api/payroll/${entity}/${id}/transitions/${name}`, undefined, { token });
}

export async function expectTaken(t: TestKubiki, entity: 'runs' | 'timesheets', id: string, name: string, token?: string) {
  const res = await take(t, entity, id, name, token);
  expect(res.status, `${entity} ${name}: ${JSON.stringify(res.body)}`).toBe(200);
  return res.body;
}

/** Prefills, optionally corrects, submits and approves an employee's timesheet for a month. */
export async function approvedTimesheet(t: TestKubiki, employee: string, period: string, days: Record<string, { kind: string; hours?: string }[]> = {}): Promise<string> {
  const pre = await t.api('POST', '/api/payroll/timesheets/prefill', { period, employees: [employee] });
  expect(pre.status, JSON.stringify(pre.body)).toBe(201);
  const id = pre.body.data[0]?.id ?? (await t.api('GET', `/api/payroll/timesheets?employee=${employee}&period=${period}`)).body.data[0].id;
  for (const [date, entries] of Object.entries(days)) {
    const r = await t.api('PUT', `/api/payroll/timesheets/${id}/days/${date}`, { entries });
    expect(r.status, `${date}: ${JSON.stringify(r.body)}`).toBe(200);
  }
  await expectTaken(t, 'timesheets', id, 'submit');
  await expectTaken(t, 'timesheets', id, 'approve');
  return id;
}

/** A run of the period (only `employees`, when given) computed; answers the run and its payslips by employee. */
export async function computedRun(t: TestKubiki, period: string, options: { employees?: string[]; kind?: 'regular' | 'correction' } = {}) {
  const run = await created(t, '/api/payroll/runs', { period, ...(options.kind ? { kind: options.kind } : {}), ...(options.employees ? { employees: options.employees } : {}) });
  const computed = await expectTaken(t, 'runs', run.id, 'compute');
  const payslips = (await t.api('GET', `/api/payroll/payslips?run=${run.id}&limit=500`)).body.data as any[];
  return { run: computed.record, output: computed.output, payslips: new Map(payslips.map((p) => [p.employee as string, p])) };
}

export async function lockedRun(t: TestKubiki, period: string, options: { employees?: string[]; kind?: 'regular' | 'correction' } = {}) {
  const r = await computedRun(t, period, options);
  await expectTaken(t, 'runs', r.run.id, 'approve');
  await expectTaken(t, 'runs', r.run.id, 'lock');
  return r;
}

/** The amount of a payslip's line, "0.00" when it has none. */
export const line = (payslip: any, code: string): string => (payslip.lines as { code: string; amount: string }[]).find((l) => l.code === code)?.amount ?? '0.00';
