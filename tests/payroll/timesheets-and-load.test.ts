// The production calendar as data (2026 norms; another year loaded from a file), schedules
// prefilling timesheets, managers' corrections, the approval lifecycle (a workflow definition),
// and the hourly load with the legal overtime limits.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { created, expectTaken, hire, scheduleId, snapshot, startPayroll, take } from './helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startPayroll({ finance: false }); }, 240_000);
afterAll(async () => t?.close());

const prefill = async (period: string, employees: string[]) => {
  const res = await t.api('POST', '/api/payroll/timesheets/prefill', { period, employees });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
};
const sheet = async (id: string) => (await t.api('GET', `/api/payroll/timesheets/${id}`)).body;

describe('the production calendar', () => {
  it('ships Russia 2026: 247 working days, 1 972 hours at 40 a week, the months as the calendar has them', async () => {
    const cal = (await t.api('GET', '/api/payroll/calendars?code=RU-2026')).body.data[0];
    const res = await t.api('GET', `/api/payroll/calendars/${cal.id}/norms`);
    expect(res.status).toBe(200);
    expect(res.body.months.map((m: any) => m.days)).toEqual([15, 19, 21, 22, 19, 21, 23, 21, 22, 22, 20, 22]);
    expect(res.body.months.map((m: any) => m.hours40)).toEqual(['120', '152', '168', '175', '151', '167', '184', '168', '176', '176', '159', '176']);
    expect(res.body.total).toMatchObject({ days: 247, hours40: '1972' });
    // A 36-hour week: a day is 7.2 hours, one less when shortened: April 22 × 7.2 − 1 = 157.4.
    expect(res.body.months[3]).toMatchObject({ hours36: '157.4', hours24: '104.6' });
    expect(cal.shortened).toEqual(['2026-04-30', '2026-05-08', '2026-06-11', '2026-11-03']);
  });

  it('loads another year from a file of the same shape and refuses a malformed one naming the field, writing nothing', async () => {
    const file = {
      country: 'RU', year: 2027, title: 'Test calendar 2027', weekend: [6, 7],
      holidays: [{ date: '2027-01-01' }, { date: '2027-01-07' }, { date: '2027-05-09' }],
      daysOff: [{ date: '2027-05-10', note: 'moved from Sunday 9 May' }],
      workingDays: [{ date: '2027-01-09', note: 'a Saturday made working' }],
      shortened: ['2027-01-06'],
    };
    const c = await created(t, '/api/payroll/calendars', file);
    expect(c.code).toBe('RU-2027');
    const norms = (await t.api('GET', `/api/payroll/calendars/${c.id}/norms`)).body;
    // January 2027: 21 weekdays − Friday 1st − Thursday 7th + Saturday 9th = 20 days; 20 × 8 − 1 (the 6th shortened) = 159 hours.
    expect(norms.months[0]).toMatchObject({ days: 20, hours40: '159' });
    const before = await snapshot(t);
    const bad: [Record<string, unknown>, string, string][] = [
      [{ ...file, year: 2028, holidays: [{ date: '2027-12-31' }] }, 'holidays.0.date', 'year'],
      [{ ...file, year: 2029, holidays: [], daysOff: [], workingDays: [], shortened: ['2029-01-06'] }, 'shortened.0', 'workday'],
      [{ ...file, year: 2030, holidays: [{ date: '2030-01-01' }], daysOff: [{ date: '2030-01-01' }], workingDays: [], shortened: [] }, 'daysOff.0.date', 'unique'],
      [{ ...file, year: 2031, holidays: [], daysOff: [], workingDays: [{ date: '2031-01-08' }], shortened: [] }, 'workingDays.0.date', 'weekend'],
      [{ ...file, year: 2032, holidays: [{ date: '2032-13-01' }], daysOff: [], workingDays: [], shortened: [] }, 'holidays.0.date', 'format'],
      [file, 'code', 'unique'],
    ];
    for (const [body, field, rule] of bad) {
      const res = await t.api('POST', '/api/payroll/calendars', body);
      expect(res.status, JSON.stringify(res.body)).toBeGreaterThanOrEqual(400);
      expect(res.body.errors?.[0]?.field ?? res.body.field, JSON.stringify(res.body)).toBe(field);
      if (rule !== 'unique') expect(res.body.rule).toBe(rule);
    }
    expect(await snapshot(t)).toEqual(before);
  });

  it('keeps every rate as a dated parameter', async () => {
    const mrot = (await t.api('GET', '/api/payroll/parameters?code=mrot&sort=validFrom')).body.data.map((p: any) => [p.validFrom, p.value]);
    expect(mrot).toEqual([['2024-01-01', '19242'], ['2025-01-01', '22440'], ['2026-01-01', '27093']]);
    const limit = (await t.api('GET', '/api/payroll/parameters?code=contributionBaseLimit&validFrom=2026-01-01')).body.data[0];
    expect(limit.value).toBe('2979000');
    const scale = (await t.api('GET', '/api/payroll/parameters?code=ndflResident')).body.data[0];
    expect(scale.scale.map((b: any) => [b.upTo ?? null, b.rate])).toEqual([['2400000', '13'], ['5000000', '15'], ['20000000', '18'], ['50000000', '20'], [null, '22']]);
    const bad = await t.api('POST', '/api/payroll/parameters', { code: 'x', validFrom: '2026-01-01', scale: [{ upTo: '10', rate: '1' }, { upTo: '5', rate: '2' }, { rate: '3' }] });
    expect(bad.body).toMatchObject({ status: 400, field: 'scale.1.upTo', rule: 'ascending' });
    const both = await t.api('POST', '/api/payroll/parameters', { code: 'x', validFrom: '2026-01-01', value: '1', scale: [{ rate: '3' }] });
    expect(both.body).toMatchObject({ status: 400, rule: 'one-of' });
  });
});

describe('timesheets', () => {
  it('are prefilled from the schedule: five-day week, 2/2 shifts, day-night shifts, part time, a mid-month hire', async () => {
    const office = await hire(t, { hireDate: '2025-01-01', salary: '100000.00' });
    const shift = await hire(t, { hireDate: '2025-01-01', salary: '88000.00', schedule: await scheduleId(t, 'shift-2x2') });
    const nights = await hire(t, { hireDate: '2025-01-01', hourlyRate: '400.00', schedule: await scheduleId(t, 'shift-day-night') });
    const half = await hire(t, { hireDate: '2025-01-01', salary: '100000.00', rate: '0.50' });
    const late = await hire(t, { hireDate: '2026-03-16', salary: '100000.00' });
    const res = await prefill('2026-03', [office.id, shift.id, nights.id, half.id, late.id]);
    expect(res.created).toBe(5);
    const of = async (e: { id: string }) => sheet(res.data.find((d: any) => d.employee === e.id).id);
    expect(await of(office)).toMatchObject({ status: 'draft', workedDays: 21, workedHours: '168.00', nightHours: '0.00' });
    // 2/2 from 1 January 2026: 2–3, 6–7, … 30–31 March: 16 shifts of 11 hours (8 March falls on a day off).
    expect(await of(shift)).toMatchObject({ workedDays: 16, workedHours: '176.00' });
    // Day–night–off–off from 1 January: day shifts 2, 6, … 30 March, night shifts 3, 7, … 31 March (8 each),
    // 11 hours a shift, 8 of a night shift's at night: 176 hours, 64 at night.
    expect(await of(nights)).toMatchObject({ workedDays: 16, workedHours: '176.00', nightHours: '64.00' });
    // A shift that falls on a public holiday is holiday work: Monday 23 February is a night shift.
    const feb = await prefill('2026-02', [nights.id]);
    const f = await sheet(feb.data[0].id);
    expect(f.entries.filter((x: any) => x.date === '2026-02-23')).toEqual([{ date: '2026-02-23', kind: 'night', hours: '8' }, { date: '2026-02-23', kind: 'holiday', hours: '11' }]);
    expect(f).toMatchObject({ holidayHours: '11.00' });
    expect(await of(half)).toMatchObject({ workedDays: 21, workedHours: '84.00' });
    const l = await of(late);
    expect(l).toMatchObject({ workedDays: 12, workedHours: '96.00' });
    expect(l.entries[0].date).toBe('2026-03-16');
    const again = await prefill('2026-03', [office.id]);
    expect(again).toMatchObject({ created: 0, skipped: [{ employee: office.id, reason: 'has a timesheet for the period' }] });
  });

  it('are corrected day by day while draft, locked once submitted, approved by whoever may approve', async () => {
    const e = await hire(t, { hireDate: '2025-01-01', salary: '100000.00' });
    const id = (await prefill('2026-04', [e.id])).data[0].id;
    const day = (date: string, entries: unknown[], token?: string) => t.api('PUT', `/api/payroll/timesheets/${id}/days/${date}`, { entries }, { token });
    expect((await day('2026-04-01', [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '2.5' }])).body).toMatchObject({ overtimeHours: '2.50', workedHours: '175.00' });
    expect((await day('2026-04-02', [{ kind: 'sick' }])).body).toMatchObject({ sickDays: 1, workedDays: 21 });
    const before = await snapshot(t);
    const bad: [string, unknown[], string, string][] = [
      ['2026-04-03', [{ kind: 'work', hours: '8' }, { kind: 'night', hours: '9' }], 'entries.', 'night'],
      ['2026-04-03', [{ kind: 'work', hours: '8' }, { kind: 'work', hours: '1' }], 'entries.', 'unique'],
      ['2026-04-03', [{ kind: 'sick' }, { kind: 'work', hours: '8' }], 'entries.', 'absence'],
      ['2026-04-03', [{ kind: 'work', hours: '25' }], 'entries.0.hours', 'pattern'],
      ['2026-04-03', [{ kind: 'work' }], 'entries.', 'required'],
      ['2026-05-03', [{ kind: 'work', hours: '8' }], 'date', 'period'],
    ];
    for (const [date, entries, field, rule] of bad) {
      const res = await day(date, entries);
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body.field, JSON.stringify(res.body)).toContain(field);
      expect(res.body.rule).toBe(rule);
    }
    expect(await snapshot(t)).toEqual(before);

    const keeper = await t.userWith(['payroll.timesheets.read', 'payroll.timesheets.update']);
    expect((await take(t, 'timesheets', id, 'submit', keeper.token)).status).toBe(200);
    const locked = await day('2026-04-03', [{ kind: 'work', hours: '7' }]);
    expect(locked.body).toMatchObject({ status: 409, code: 'document-locked' });
    const refused = await take(t, 'timesheets', id, 'approve', keeper.token);
    expect(refused.status).toBe(403);
    expect(refused.body.detail).toContain('payroll.timesheets.approve');
    await expectTaken(t, 'timesheets', id, 'return');
    expect((await day('2026-04-03', [{ kind: 'work', hours: '7' }])).status).toBe(200);
    await expectTaken(t, 'timesheets', id, 'submit');
    await expectTaken(t, 'timesheets', id, 'approve');
    expect((await sheet(id)).status).toBe('approved');
    const edit = await t.api('PATCH', `/api/payroll/timesheets/${id}`, { note: 'late' });
    expect(edit.body.code).toBe('document-locked');
  });

  it('cannot be approved with days outside the employment, and an unapproved one stops the pay run', async () => {
    const e = await hire(t, { hireDate: '2026-06-10', salary: '100000.00' });
    const ts = await created(t, '/api/payroll/timesheets', { employee: e.id, period: '2026-06', entries: [{ date: '2026-06-09', kind: 'work', hours: '8' }, { date: '2026-06-10', kind: 'work', hours: '8' }] });
    await expectTaken(t, 'timesheets', ts.id, 'submit');
    const before = await snapshot(t);
    const res = await take(t, 'timesheets', ts.id, 'approve');
    expect(res.body).toMatchObject({ status: 409, code: 'payroll.timesheet-invalid', field: 'entries.0.date' });
    expect(await snapshot(t)).toEqual(before);
    expect((await sheet(ts.id)).status).toBe('submitted');
    const run = await created(t, '/api/payroll/runs', { period: '2026-06', employees: [e.id] });
    const compute = await take(t, 'runs', run.id, 'compute');
    expect(compute.body).toMatchObject({ status: 409, code: 'payroll.timesheet-not-approved', timesheets: [{ id: ts.id, employee: e.id, status: 'submitted' }] });
    expect((await t.api('GET', `/api/payroll/runs/${run.id}`)).body.status).toBe('draft');
  });
});

describe('the hourly load', () => {
  it('sums scheduled, worked and overtime hours per employee, department and week, and flags overtime over the legal limits', async () => {
    const dept = await created(t, '/api/payroll/departments', { code: 'WH', name: 'Склад' });
    const busy = await hire(t, { hireDate: '2025-01-01', salary: '60000.00', department: dept.id });
    const calm = await hire(t, { hireDate: '2025-01-01', salary: '60000.00', department: dept.id });
    // busy: 2 hours of overtime every working day January–March (15 + 19 + 21 days = 110 hours; 4 in any two days, within the limit),
    // and in the week of 6 April 3 hours on Monday 6th and 2 on Tuesday 7th (5 in two days running: over 4), then 2 more a day to 10 April.
    const workdays: Record<string, string[]> = {};
    for (const period of ['2026-01', '2026-02', '2026-03', '2026-04']) {
      const res = await prefill(period, [busy.id, calm.id]);
      for (const d of res.data) workdays[`${period}:${d.employee}`] = [d.id];
    }
    const extra = (period: string, over: Record<string, string>) => async () => {
      const id = workdays[`${period}:${busy.id}`][0];
      const s = await sheet(id);
      const entries = [...s.entries.filter((x: any) => x.kind !== 'overtime'), ...Object.entries(over).map(([date, hours]) => ({ date, kind: 'overtime', hours }))];
      const res = await t.api('PATCH', `/api/payroll/timesheets/${id}`, { entries });
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    };
    for (const period of ['2026-01', '2026-02', '2026-03']) {
      const s = await sheet(workdays[`${period}:${busy.id}`][0]);
      await extra(period, Object.fromEntries(s.entries.filter((x: any) => x.kind === 'work').map((x: any) => [x.date, '2'])))();
    }
    await extra('2026-04', { '2026-04-06': '3', '2026-04-07': '2', '2026-04-08': '2', '2026-04-09': '2', '2026-04-10': '2' })();

    const res = await t.api('GET', `/api/payroll/reports/load?from=2026-04-06&to=2026-04-12&department=${dept.id}`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    const row = (e: { id: string }) => res.body.rows.find((r: any) => r.employee === e.id);
    // Week 15 (6–12 April): 5 days × 8 scheduled; busy worked 40 + 11 overtime.
    expect(row(busy)).toMatchObject({ week: '2026-W15', weekStart: '2026-04-06', scheduled: '40', worked: '51', overtime: '11' });
    expect(row(calm)).toMatchObject({ scheduled: '40', worked: '40', overtime: '0' });
    expect(res.body.departments).toEqual([{ department: 'WH', week: '2026-W15', employees: 2, scheduled: '80', worked: '91', overtime: '11' }]);
    // ст. 99: 3 + 2 on 6–7 April is over 4 in two days; 110 + 11 = 121 hours this year is over 120.
    expect(res.body.violations.map((v: any) => [v.personnelNumber, v.rule, v.date, v.hours])).toEqual([
      [busy.personnelNumber, 'two-days', '2026-04-07', '5'],
      [busy.personnelNumber, 'year', '2026-04-12', '121'],
    ]);
    const csv = await t.api('GET', `/api/payroll/reports/load?from=2026-04-06&to=2026-04-12&department=${dept.id}&format=csv&delimiter=;`);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    expect(String(csv.body)).toContain('personnelNumber;name;department;week;weekStart;scheduled;worked;overtime');
  });
});
