// Pay on schedules other than the five-day week: a custom rota created as data (3 on / 3 off, the
// third shift at night, a shift on a public holiday), the shipped 2/2 shifts on summarized
// accounting (a salary prorated by hours, a shortened shift paid less), and a five-day week with
// night hours — every figure computed by hand from the 2026 calendar (8 March a holiday, 9 March a
// day off moved from it, which is an ordinary day for a rota).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { approvedTimesheet, computedRun, created, hire, line, scheduleId, startPayroll } from './helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startPayroll({ finance: false }); }, 240_000);
afterAll(async () => t?.close());

describe('March 2026 on other schedules', () => {
  const e: Record<string, { id: string }> = {};
  let payslips: Map<string, any>;
  const sheets: Record<string, any> = {};
  beforeAll(async () => {
    const rota = await created(t, '/api/payroll/schedules', {
      code: 'rota-3x3', name: 'Три через три по 12 часов, третья смена ночная', kind: 'cycle', anchor: '2026-03-01', accounting: 'hours',
      pattern: [{ hours: '12' }, { hours: '12' }, { hours: '12', night: '8' }, { hours: '0' }, { hours: '0' }, { hours: '0' }],
    });
    const nights = await created(t, '/api/payroll/schedules', { code: 'five-day-late', name: 'Пятидневка, 2 ночных часа в день', kind: 'calendar', weeklyHours: '40', nightHours: '2' });
    e.rota = await hire(t, { hireDate: '2025-01-01', salary: '90000.00', schedule: rota.id });
    e.shifts = await hire(t, { hireDate: '2026-03-16', salary: '88000.00', schedule: await scheduleId(t, 'shift-2x2') });
    e.late = await hire(t, { hireDate: '2025-01-01', hourlyRate: '500.00', schedule: nights.id });
    e.leaver = await hire(t, { hireDate: '2025-01-01', salary: '100000.00', terminationDate: '2026-03-13' });
    for (const key of ['rota', 'late', 'leaver']) sheets[key] = await approvedTimesheet(t, e[key].id, '2026-03');
    // The 2/2 worker left the last shift after 5.5 of its 11 hours (a manager's correction).
    sheets.shifts = await approvedTimesheet(t, e.shifts.id, '2026-03', { '2026-03-31': [{ kind: 'work', hours: '5.5' }] });
    ({ payslips } = await computedRun(t, '2026-03', { employees: [e.rota.id, e.shifts.id, e.late.id, e.leaver.id] }));
  }, 240_000);

  it('prefills a custom rota from its anchor: shifts through the weekends, night hours, a shift on a holiday as holiday work', async () => {
    const s = (await t.api('GET', `/api/payroll/timesheets/${sheets.rota}`)).body;
    // From 1 March, 3 on / 3 off: 1–3, 7–9, 13–15, 19–21, 25–27, 31 — 16 shifts of 12 hours; the third of each
    // run (3, 9, 15, 21, 27) 8 hours at night; Sunday 8 March is a public holiday: 12 hours of holiday work.
    expect(s).toMatchObject({ workedDays: 15, workedHours: '180.00', nightHours: '40.00', holidayHours: '12.00' });
    expect(s.entries.filter((x: any) => x.date === '2026-03-08')).toEqual([{ date: '2026-03-08', kind: 'holiday', hours: '12' }]);
    expect(s.entries.filter((x: any) => x.date === '2026-03-09')).toEqual([{ date: '2026-03-09', kind: 'work', hours: '12' }, { date: '2026-03-09', kind: 'night', hours: '8' }]);
  });

  it('pays a salary on the rota by hours of its own norm, with night and holiday hours at the hourly base', () => {
    const p = payslips.get(e.rota.id);
    // Norm: the rota's shifts not on a holiday, 15 × 12 = 180 hours; worked all of them: 90 000 × 180 / 180 = 90 000.00.
    // Hourly base 90 000 / 180 = 500. Night 500 × 40 × 20 % = 4 000.00. Holiday 500 × 12 × 2 = 12 000.00.
    expect(p.facts).toMatchObject({ normDays: '15', normHours: '180', workedHours: '180', nightHours: '40', holidayHours: '12' });
    expect(['base', 'night', 'holiday'].map((c) => line(p, c))).toEqual(['90000.00', '4000.00', '12000.00']);
    // Earnings 106 000; НДФЛ 13 % = 13 780; net 92 220.
    expect(p).toMatchObject({ earnings: '106000.00', deductions: '13780.00', net: '92220.00' });
  });

  it('prorates a 2/2 salary by hours (summarized accounting): a mid-month hire and a shortened shift', () => {
    const p = payslips.get(e.shifts.id);
    // 2/2 from 1 January: March shifts 2–3, 6–7, … 30–31, 16 of 11 hours = 176 hours of norm.
    // Hired 16 March: 18–19, 22–23, 26–27, 30–31 = 8 shifts, 7 × 11 + 5.5 = 82.5 hours: 88 000 × 82.5 / 176 = 41 250.00
    // (by days it would be 8 of 16 shifts, 44 000).
    expect(p.facts).toMatchObject({ normDays: '16', normHours: '176', workedDays: '8', workedHours: '82.5' });
    expect(line(p, 'base')).toBe('41250.00');
  });

  it('pays the night hours of a five-day week at +20 % of the hourly rate', () => {
    const p = payslips.get(e.late.id);
    // 21 working days × 8 = 168 hours × 500 = 84 000.00; 21 × 2 = 42 night hours × 500 × 20 % = 4 200.00.
    expect(p.facts).toMatchObject({ workedHours: '168', nightHours: '42' });
    expect(['base', 'night'].map((c) => line(p, c))).toEqual(['84000.00', '4200.00']);
  });

  it('pays a leaver up to the termination date: the timesheet stops there, the salary by the days worked', async () => {
    const s = (await t.api('GET', `/api/payroll/timesheets/${sheets.leaver}`)).body;
    expect(s.entries.at(-1).date).toBe('2026-03-13');
    const p = payslips.get(e.leaver.id);
    // Terminated Friday 13 March: 2–6 and 10–13 (9 March a moved day off) = 9 of 21 days: 100 000 × 9 / 21 = 42 857.14.
    expect(p.facts).toMatchObject({ workedDays: '9', normDays: '21', employedDays: '13' });
    expect(line(p, 'base')).toBe('42857.14');
  });
});
