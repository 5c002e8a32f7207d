// Who sees what (an employee only their own payslips, the :own rule), the payslip and register
// documents, every payroll route declared with schemas that refuse bad input (problem+json, nothing
// written), and payroll working with finance not installed.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { MALFORMED_IDS, bodyProperties, wrongValue } from '../helpers/route-probes.ts';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';
import { created, expectTaken, hire, lockedRun, snapshot, startPayroll } from './helpers.ts';

type Spec = RouteSpec<unknown, unknown, unknown>;
const SAMPLE = '00000000-0000-7000-8000-000000000000';

let t: TestKubiki;
let specs: Spec[];
let a: { id: string; token: string; employee: string; personnelNumber: string };
let b: { id: string; token: string; employee: string };
let run: any;
let payslips: Map<string, any>;

async function employeeUser(name: string): Promise<{ id: string; token: string }> {
  const user = await created(t, '/api/users', { username: name, roles: ['employee'] });
  const token = await t.api('POST', `/api/users/${user.id}/tokens`, { name: 'test' });
  return { id: user.id, token: token.body.token };
}

beforeAll(async () => {
  t = await startPayroll({ finance: false });
  specs = (t.k.plugins.routes.get('payroll') ?? []) as Spec[];
  const ua = await employeeUser('anna');
  const ub = await employeeUser('boris');
  const ea = await hire(t, { hireDate: '2025-01-01', salary: '100000.00', user: ua.id, lastName: 'Аннина' });
  const eb = await hire(t, { hireDate: '2025-01-01', salary: '150000.00', user: ub.id, lastName: 'Борисов' });
  a = { ...ua, employee: ea.id, personnelNumber: ea.personnelNumber };
  b = { ...ub, employee: eb.id };
  ({ run, payslips } = await lockedRun(t, '2026-02'));
}, 240_000);
afterAll(async () => t?.close());

describe('an employee sees only their own payslips', () => {
  it('lists and reads their own, never a colleague\'s', async () => {
    const list = await t.api('GET', '/api/payroll/payslips', undefined, { token: a.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((p: any) => p.employee)).toEqual([a.employee]);
    const mine = payslips.get(a.employee);
    expect((await t.api('GET', `/api/payroll/payslips/${mine.id}`, undefined, { token: a.token })).body).toMatchObject({ net: '87000.00' });
    const theirs = await t.api('GET', `/api/payroll/payslips/${payslips.get(b.employee).id}`, undefined, { token: a.token });
    expect(theirs.status).toBe(404);
    expect((await t.api('GET', '/api/payroll/employees', undefined, { token: a.token })).body.data.map((e: any) => e.id)).toEqual([a.employee]);
    expect((await t.api('GET', `/api/payroll/payslips?employee=${b.employee}`, undefined, { token: a.token })).body.data).toEqual([]);
  });

  it('prints their own payslip (расчётный листок) and not a colleague\'s', async () => {
    const own = await t.api('POST', '/api/templates/payroll.payslip/render', { recordId: payslips.get(a.employee).id }, { token: a.token });
    expect(own.status, JSON.stringify(own.body)).toBe(201);
    const html = await (await fetch(`${t.url}/api/documents/${own.body.id}/content`, { headers: { authorization: `Bearer ${a.token}` } })).text();
    expect(html).toContain('Расчётный листок за 2026-02');
    expect(html).toContain('Аннина Иван Петрович');
    expect(html).toContain(a.personnelNumber);
    expect(html).toMatch(/87\s000,00/); // net 100 000 − 13 000
    expect(html).toContain('Восемьдесят семь тысяч рублей 00 копеек');
    expect(html).toMatch(/Норм|нормы 19 дн/);
    const other = await t.api('POST', '/api/templates/payroll.payslip/render', { recordId: payslips.get(b.employee).id }, { token: a.token });
    expect(other.status).toBe(404);
  });

  it('does not see runs, registers or other people\'s terms, and cannot change a payslip', async () => {
    const probes: [string, string, unknown, number][] = [
      ['GET', '/api/payroll/runs', undefined, 403],
      ['GET', `/api/payroll/runs/${run.id}/register`, undefined, 403],
      ['GET', '/api/payroll/terms', undefined, 403],
      ['POST', '/api/payroll/payslips/preview', { employee: a.employee, period: '2026-03' }, 403],
      ['PATCH', `/api/payroll/payslips/${payslips.get(a.employee).id}`, { net: '1000000.00' }, 403],
      ['POST', `/api/payroll/runs/${run.id}/transitions/cancel`, undefined, 403],
    ];
    const before = await snapshot(t);
    for (const [method, url, body, status] of probes) {
      const res = await t.api(method, url, body, { token: a.token });
      expect(res.status, `${method} ${url}: ${JSON.stringify(res.body)}`).toBe(status);
      expect(res.body.code).toBe('forbidden');
    }
    expect(await snapshot(t)).toEqual(before);
  });
});

describe('documents', () => {
  it('prints the payroll register of a run with every payslip', async () => {
    const doc = await t.api('POST', '/api/templates/payroll.register/render', { recordId: run.id });
    expect(doc.status, JSON.stringify(doc.body)).toBe(201);
    const html = await (await fetch(`${t.url}/api/documents/${doc.body.id}/content`, { headers: { authorization: `Bearer ${t.adminToken}` } })).text();
    expect(html).toContain('Расчётная ведомость за 2026-02');
    expect(html).toContain('Борисов Иван Петрович');
    // Net 87 000 + 130 500 (150 000 − 19 500) = 217 500.
    expect(html).toMatch(/217\s500,00/);
    const register = await t.api('GET', `/api/payroll/runs/${run.id}/register`);
    // Contributions 30 % of 250 000 = 75 000 plus injury 0.2 % = 500: 75 500 in all.
    expect(register.body.totals).toMatchObject({ base: '250000.00', ndfl: '32500.00', contributions: '75000.00', injury: '500.00', netPay: '217500.00', totalContributions: '75500.00' });
    const csv = await t.api('GET', `/api/payroll/runs/${run.id}/register?format=csv`);
    expect(String(csv.body)).toContain('personnelNumber,name,department,base,ndfl,contributions,injury,totalEarnings,totalDeductions,netPay,totalContributions,flags');
  });
});

describe('employees on the shared people records', () => {
  it('follow a change of the person\'s name', async () => {
    const e = await hire(t, { hireDate: '2025-01-01', lastName: 'Старова' });
    expect((await t.api('PATCH', `/api/base/people/${e.person}`, { lastName: 'Новова' })).status).toBe(200);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', `/api/payroll/employees/${e.id}`)).body.name).toBe('Новова Иван Петрович');
  });
});

describe('without finance', () => {
  it('locks runs and keeps pay without the books', async () => {
    expect((await t.api('GET', `/api/payroll/runs/${run.id}`)).body).toMatchObject({ status: 'locked', lockedAt: expect.any(String) });
    expect(t.k.plugins.isEnabled('finance')).toBe(false);
    await t.k.workflowRuntime.settle();
    expect((await t.api('GET', '/api/payroll/runs?status=locked')).body.data).toHaveLength(1);
  });
});

describe('payroll routes', () => {
  const paramsOf = (spec: Spec): string[] => [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
  const sample = (name: string) => (name === 'date' ? '2026-03-02' : SAMPLE);
  const urlOf = (spec: Spec, param?: string, bad?: string): string =>
    `/api/payroll${spec.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(name === param ? bad! : sample(name)))}`;
  const call = (spec: Spec, url: string, body?: unknown) => t.api(spec.method.toUpperCase(), url, body ?? (['post', 'put', 'patch'].includes(spec.method) ? {} : undefined));

  async function expectRefused(request: () => Promise<ApiResponse>, status: number, code: string, issue: { field: string; rule?: string }): Promise<void> {
    const before = await snapshot(t);
    const res = await request();
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status, code, ...issue });
    expect(await snapshot(t)).toEqual(before);
  }

  it('are all declared: operationId, summary, permission, schemas, and in OpenAPI with the lifecycle routes', async () => {
    expect(specs.map((s) => `${s.method.toUpperCase()} ${s.path}`).sort()).toEqual([
      'GET /calendars/:id/norms', 'GET /reports/load', 'GET /runs/:id/register', 'POST /payslips/preview', 'POST /timesheets/prefill', 'PUT /timesheets/:id/days/:date',
    ]);
    const doc = (await t.api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, any>> };
    for (const spec of specs) {
      expect(spec, spec.path).toMatchObject({ operationId: expect.any(String), summary: expect.any(String), permission: expect.stringMatching(/^payroll\./) });
      expect(spec.schemas.responses[200] ?? spec.schemas.responses[201], spec.path).toBeDefined();
      const op = doc.paths[`/api/payroll${spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`]?.[spec.method];
      expect(op, spec.path).toMatchObject({ tags: ['payroll'], 'x-permission': spec.permission });
    }
    expect(doc.paths['/api/payroll/runs/{id}/transitions/{name}']).toBeDefined();
    expect(doc.paths['/api/payroll/timesheets/{id}/transitions/{name}']).toBeDefined();
    const codes = JSON.stringify(doc);
    for (const code of ['payroll.formula-invalid', 'payroll.formula-failed', 'payroll.run-locked', 'payroll.timesheet-not-approved']) expect(codes).toContain(code);
  });

  it('answer a malformed path parameter with 404 naming it, writing nothing', async () => {
    for (const spec of specs.filter((s) => paramsOf(s).length > 0)) {
      for (const param of paramsOf(spec)) {
        const bads = param === 'date' ? ['2026-13-01', '02.03.2026', 'today', '2026-3-2'] : [...MALFORMED_IDS, `urn:uuid:${SAMPLE}`, `${SAMPLE}0`];
        for (const bad of bads) await expectRefused(() => call(spec, urlOf(spec, param, bad)), 404, 'not-found', { field: param });
      }
    }
  });

  it('answer a well-formed id of no record with 404', async () => {
    for (const spec of specs.filter((s) => paramsOf(s).includes('id'))) {
      const body = spec.operationId === 'setTimesheetDay' ? { entries: [] } : undefined;
      const res = await call(spec, urlOf(spec), body);
      expect(res.body, spec.path).toMatchObject({ status: 404, code: 'not-found' });
    }
  });

  it('refuse an unknown query parameter with 400 bad-query naming it, and malformed query values', async () => {
    const required: Record<string, string> = { hourlyLoadReport: 'from=2026-04-01&to=2026-04-30&' };
    for (const spec of specs.filter((s) => s.method === 'get')) {
      await expectRefused(() => call(spec, `${urlOf(spec)}?${required[spec.operationId] ?? ''}colour=red`), 400, 'bad-query', { field: 'colour', rule: 'unknown-parameter' });
    }
    const cases: [string, string][] = [
      ['/api/payroll/reports/load?from=2026-04-01', 'to'],
      ['/api/payroll/reports/load?from=2026-04-01&to=2026-13-01', 'to'],
      ['/api/payroll/reports/load?from=01.04.2026&to=2026-04-30', 'from'],
      ['/api/payroll/reports/load?from=2026-04-30&to=2026-04-01', 'to'],
      ['/api/payroll/reports/load?from=2025-01-01&to=2026-04-01', 'to'],
      ['/api/payroll/reports/load?from=2026-04-01&to=2026-04-30&department=x', 'department'],
      ['/api/payroll/reports/load?from=2026-04-01&to=2026-04-30&format=xml', 'format'],
      [`/api/payroll/runs/${SAMPLE}/register?format=pdf`, 'format'],
    ];
    for (const [url, field] of cases) await expectRefused(() => t.api('GET', url), 400, 'bad-query', { field });
  });

  it('refuse an ill-typed or unknown body field naming it, writing nothing', async () => {
    for (const spec of specs.filter((s) => ['post', 'put'].includes(s.method))) {
      const url = urlOf(spec);
      // Every other field well-formed, so the one probed is the one refused.
      const valid: Record<string, unknown> = { prefillTimesheets: { period: '2026-03' }, setTimesheetDay: { entries: [] }, previewPayslip: { employee: SAMPLE, period: '2026-03' } }[spec.operationId] ?? {};
      await expectRefused(() => call(spec, url, { ...valid, colour: 'red' }), 400, 'validation-failed', { field: 'colour' });
      for (const [field, schema] of Object.entries(bodyProperties(spec))) {
        const value = wrongValue(schema);
        if (value === undefined) continue;
        await expectRefused(() => call(spec, url, { ...valid, [field]: value }), 400, 'validation-failed', { field });
      }
    }
    const more: [string, string, unknown, string][] = [
      ['POST', '/api/payroll/timesheets/prefill', { period: '2026-3' }, 'period'],
      ['POST', '/api/payroll/timesheets/prefill', { period: '2026-03', employees: [] }, 'employees'],
      ['POST', '/api/payroll/timesheets/prefill', { period: '2026-03', employees: [SAMPLE] }, 'employees.0'],
      ['POST', '/api/payroll/payslips/preview', { employee: SAMPLE, period: '2026-03' }, 'employee'],
      ['POST', '/api/payroll/payslips/preview', { employee: a.employee, period: '2026-03', structure: SAMPLE }, 'structure'],
      ['POST', '/api/payroll/payslips/preview', { employee: a.employee, period: '2024-03' }, 'period'],
      ['PUT', `/api/payroll/timesheets/${SAMPLE}/days/2026-03-02`, { entries: [{ kind: 'nap', hours: '1' }] }, 'entries.0.kind'],
      ['PUT', `/api/payroll/timesheets/${SAMPLE}/days/2026-03-02`, { entries: [{ kind: 'work', hours: 8 }] }, 'entries.0.hours'],
    ];
    for (const [method, url, body, field] of more) {
      const before = await snapshot(t);
      const res = await t.api(method, url, body);
      expect(res.status, `${url} ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.field, JSON.stringify(res.body)).toBe(field);
      expect(await snapshot(t)).toEqual(before);
    }
  });

  it('refuse bad records on the entity routes, naming the field, writing nothing', async () => {
    const person = await created(t, '/api/base/people', { firstName: 'Пётр' });
    const cases: [string, string, unknown, string, string][] = [
      ['POST', '/api/payroll/employees', { personnelNumber: 'X1', hireDate: '2026-01-01' }, 'person', 'required'],
      ['POST', '/api/payroll/employees', { person: SAMPLE, personnelNumber: 'X1', hireDate: '2026-01-01' }, 'person', 'x-ref'],
      ['POST', '/api/payroll/employees', { person: person.id, personnelNumber: 'X1', hireDate: '2026-01-01', terminationDate: '2025-12-31' }, 'terminationDate', 'after-hire'],
      ['POST', '/api/payroll/employees', { person: person.id, personnelNumber: 'X1', hireDate: '2026-01-01', sickPayPercent: 70 }, 'sickPayPercent', 'enum'],
      ['POST', '/api/payroll/terms', { employee: a.employee, validFrom: '2026-05-01', payBasis: 'monthly' }, 'salary', 'required'],
      ['POST', '/api/payroll/terms', { employee: a.employee, validFrom: '2026-05-01', payBasis: 'monthly', salary: '1.5e3' }, 'salary', 'x-decimal'],
      ['POST', '/api/payroll/terms', { employee: a.employee, validFrom: '2026-05-01', payBasis: 'monthly', salary: '100', rate: '3.00' }, 'rate', 'range'],
      ['POST', '/api/payroll/runs', { period: '2026-13' }, 'period', 'pattern'],
      ['POST', '/api/payroll/runs', { period: '2026-02' }, 'period', 'unique'],
      ['POST', '/api/payroll/runs', { period: '2026-03', payslipCount: 5 }, 'payslipCount', 'read-only'],
      ['POST', '/api/payroll/runs', { period: '2026-03', status: 'locked' }, 'status', 'transition-required'],
      ['POST', '/api/payroll/timesheets', { employee: a.employee, period: '2026-03', entries: [{ date: '2026-04-01', kind: 'work', hours: '8' }] }, 'entries.0.date', 'period'],
      ['POST', '/api/payroll/schedules', { code: 'bad-cycle', name: 'Bad', kind: 'cycle' }, 'pattern', 'required'],
      ['POST', '/api/payroll/history', { employee: a.employee, month: '2025-13' }, 'month', 'pattern'],
    ];
    for (const [method, url, body, field, rule] of cases) {
      const before = await snapshot(t);
      const res = await t.api(method, url, body);
      expect(res.status, `${url} ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect({ field: res.body.field, rule: res.body.rule }, `${url} ${JSON.stringify(res.body)}`).toEqual({ field, rule });
      expect(await snapshot(t)).toEqual(before);
    }
    const ts = await created(t, '/api/payroll/timesheets', { employee: a.employee, period: '2026-05' });
    const moved = await t.api('PATCH', `/api/payroll/timesheets/${ts.id}`, { period: '2026-06' });
    expect(moved.body).toMatchObject({ status: 400, field: 'period', rule: 'immutable' });
    const totals = await t.api('PATCH', `/api/payroll/timesheets/${ts.id}`, { workedDays: 30 });
    expect(totals.body).toMatchObject({ status: 400, field: 'workedDays', rule: 'read-only' });
    await expectTaken(t, 'timesheets', ts.id, 'submit');
  });
});
