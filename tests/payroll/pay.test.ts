// Pay for full and partial months, mid-month raises, overtime tiers, night and holiday work, sick
// leave and vacation from average earnings, holidays shortening the norm (January and May 2026),
// a 36-hour week, МРОТ flags and non-residents — every expected figure computed by hand below
// from the 2026 production calendar (March: 21 working days, 168 hours) and the shipped rates.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { approvedTimesheet, computedRun, created, hire, line, raise, scheduleId, startPayroll } from './helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startPayroll(); }, 240_000);
afterAll(async () => t?.close());

const codes = (p: any) => (p.lines as { code: string }[]).map((l) => l.code);
const flags = (p: any) => (p.flags as { code: string }[]).map((f) => f.code);

describe('March 2026 (21 working days, 168 hours)', () => {
  const e: Record<string, { id: string }> = {};
  let payslips: Map<string, any>;
  let run: any;
  beforeAll(async () => {
    e.full = await hire(t, { hireDate: '2026-01-12', salary: '100000.00' });
    e.midHire = await hire(t, { hireDate: '2026-03-16', salary: '100000.00' });
    e.raised = await hire(t, { hireDate: '2026-02-02', salary: '100000.00' });
    await raise(t, e.raised.id, '2026-03-16', '120000.00');
    e.overtime = await hire(t, { hireDate: '2025-10-01', salary: '84000.00', bonusPercent: '10' });
    e.sick = await hire(t, { hireDate: '2020-01-01', salary: '100000.00' });
    e.lowFull = await hire(t, { hireDate: '2025-01-01', salary: '25000.00' });
    e.halfOk = await hire(t, { hireDate: '2025-01-01', salary: '30000.00', rate: '0.50' });
    e.nonResident = await hire(t, { hireDate: '2025-01-01', salary: '100000.00', taxResidency: 'nonresident' });
    // Sick pay is computed from the insured earnings of 2024 and 2025 (entered as earlier earnings).
    await created(t, '/api/payroll/history', { employee: e.sick.id, month: '2024-12', sickBase: '1200000.00' });
    await created(t, '/api/payroll/history', { employee: e.sick.id, month: '2025-12', sickBase: '3000000.00' });
    for (const key of ['full', 'midHire', 'raised', 'lowFull', 'halfOk', 'nonResident']) await approvedTimesheet(t, e[key].id, '2026-03');
    await approvedTimesheet(t, e.overtime.id, '2026-03', {
      '2026-03-03': [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '3' }],
      '2026-03-04': [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '1' }],
      '2026-03-05': [{ kind: 'work', hours: '8' }, { kind: 'overtime', hours: '4' }],
      '2026-03-07': [{ kind: 'holiday', hours: '8' }],
      '2026-03-10': [{ kind: 'work', hours: '8' }, { kind: 'night', hours: '5' }],
    });
    await approvedTimesheet(t, e.sick.id, '2026-03', Object.fromEntries(['10', '11', '12', '13', '14'].map((d) => [`2026-03-${d}`, [{ kind: 'sick' }]])));
    ({ run, payslips } = await computedRun(t, '2026-03'));
  }, 240_000);

  it('pays a full month of a salary: the salary, НДФЛ 13 %, contributions 30 % and 0.2 %', () => {
    const p = payslips.get(e.full.id);
    // 100 000 × 21 / 21 = 100 000.00; НДФЛ 100 000 × 13 % = 13 000; net 87 000.
    // Contributions: 100 000 × 30 % = 30 000.00 (under the 2 979 000 limit); injury 100 000 × 0.2 % = 200.00.
    expect(p).toMatchObject({ earnings: '100000.00', deductions: '13000.00', net: '87000.00', contributions: '30200.00' });
    expect([line(p, 'base'), line(p, 'ndfl'), line(p, 'contributions'), line(p, 'injury')]).toEqual(['100000.00', '13000.00', '30000.00', '200.00']);
    expect(p.facts).toMatchObject({ normDays: '21', normHours: '168', workedDays: '21', workedHours: '168', bySchedule: false });
    // Each line carries its formula, the values it read and the parameters in force.
    const base = p.lines.find((l: any) => l.code === 'base');
    expect(base.formula).toContain('decimal(record.salary) * decimal(record.rate) * decimal(input.workedDays) / decimal(input.normDays)');
    expect(base.inputs).toMatchObject({ 'record.salary': '100000.00', 'input.workedDays': '21', 'input.normDays': '21' });
    expect(p.parameters.ndflResident).toMatchObject({ validFrom: '2025-01-01' });
    // The 2026 contributions scale (30 % up to 2 979 000, then 15.1 %) by its code and date; values shown.
    expect(p.parameters.insuranceContributions).toEqual({ validFrom: '2026-01-01' });
    expect(p.parameters.injuryRate).toEqual({ value: '0.2', validFrom: '2000-01-01' });
  });

  it('pays a hire in the middle of the month for the days worked of the month\'s norm', () => {
    const p = payslips.get(e.midHire.id);
    // Hired Monday 16 March: 16–20, 23–27, 30–31 = 12 of 21 working days. 100 000 × 12 / 21 = 57 142.857… → 57 142.86.
    // НДФЛ 57 142.86 × 13 % = 7 428.57 → 7 429 (whole rubles); contributions × 30 % = 17 142.86; injury × 0.2 % = 114.29.
    expect([line(p, 'base'), line(p, 'ndfl'), line(p, 'contributions'), line(p, 'injury')]).toEqual(['57142.86', '7429.00', '17142.86', '114.29']);
    expect(p.facts).toMatchObject({ workedDays: '12', normDays: '21', employedDays: '16' });
    expect(p.net).toBe('49713.86'); // 57 142.86 − 7 429
  });

  it('splits a month with a raise on the 16th by days, each part with its own salary', () => {
    const p = payslips.get(e.raised.id);
    // 2–15 March (9 working days: 2–6, 10–13; 9 March is a holiday moved from Sunday 8th) at 100 000: 100 000 × 9 / 21 = 42 857.14
    // 16–31 March (12 working days) at 120 000: 120 000 × 12 / 21 = 68 571.43. Total 111 428.57.
    const base = p.lines.find((l: any) => l.code === 'base');
    expect(base.segments.map((s: any) => [s.from, s.to, s.amount, s.inputs['record.salary'], s.inputs['input.workedDays']])).toEqual([
      ['2026-03-01', '2026-03-15', '42857.14', '100000.00', '9'],
      ['2026-03-16', '2026-03-31', '68571.43', '120000.00', '12'],
    ]);
    expect(base.amount).toBe('111428.57');
    // НДФЛ 111 428.57 × 13 % = 14 485.71 → 14 486.
    expect(line(p, 'ndfl')).toBe('14486.00');
    expect(p.segments).toHaveLength(2);
  });

  it('pays overtime at 1.5× for the first 2 hours of a day and 2× after, night hours +20 %, holiday work double — with the bonus in the base', () => {
    const p = payslips.get(e.overtime.id);
    // Hourly rate 84 000 / 168 = 500. Bonus 10 % of the base: 84 000 × 10 % = 8 400.00.
    // Overtime: 3 March 3 h = 2 × 1.5 + 1 × 2; 4 March 1 h = 1 × 1.5; 5 March 4 h = 2 × 1.5 + 2 × 2.
    //   first hours 2 + 1 + 2 = 5 (× 1.5 = 7.5), next hours 1 + 0 + 2 = 3 (× 2 = 6): 13.5 paid hours
    //   at 500 × (1 + 10 %) = 550 (ст. 152: the base includes incentive pay) → 7 425.00.
    // Night: 5 h × 500 × 20 % = 500.00. Holiday (Saturday 7 March, 8 h): 550 × 8 × 2 = 8 800.00.
    expect(['base', 'bonus', 'overtime', 'night', 'holiday'].map((c) => line(p, c))).toEqual(['84000.00', '8400.00', '7425.00', '500.00', '8800.00']);
    expect(p.facts).toMatchObject({ overtimeHours: '8', overtimeFirstHours: '5', overtimeNextHours: '3', nightHours: '5', holidayHours: '8' });
    // Earnings 84 000 + 8 400 + 7 425 + 500 + 8 800 = 109 125.00; НДФЛ × 13 % = 14 186.25 → 14 186;
    // contributions × 30 % = 32 737.50, injury × 0.2 % = 218.25.
    expect(p).toMatchObject({ earnings: '109125.00', deductions: '14186.00', net: '94939.00', contributions: '32955.75' });
  });

  it('pays the first 3 sick days from the average daily earnings of the two previous years and flags the rest as the social fund\'s', () => {
    const p = payslips.get(e.sick.id);
    // 2024: 1 200 000 (under that year's limit 2 225 000); 2025: 3 000 000 capped at 2 759 000. (1 200 000 + 2 759 000) / 730 = 5 423.287… → 5 423.29 a day.
    // Sick 10–14 March (5 calendar days): 3 days by the employer 5 423.29 × 3 = 16 269.87; 2 days by the fund (flagged).
    expect(line(p, 'sick')).toBe('16269.87');
    expect(p.facts).toMatchObject({ sickDays: '5', sickEmployerDays: '3', sickFundDays: '2', sickEarnings: '3959000' });
    expect(flags(p)).toContain('sick-fund');
    // Worked 21 − 4 sick working days (10–13) = 17: 100 000 × 17 / 21 = 80 952.38.
    // НДФЛ on 80 952.38 + 16 269.87 = 97 222.25 → 12 638.89 → 12 639; contributions on 80 952.38 only (sick pay is not insured): 24 285.71, injury 161.90.
    expect([line(p, 'base'), line(p, 'ndfl'), line(p, 'contributions'), line(p, 'injury')]).toEqual(['80952.38', '12639.00', '24285.71', '161.90']);
    expect(p.average).toMatchObject({ base: '80952.38', sickBase: '80952.38', excludedDays: 5, employedDays: 31 });
  });

  it('flags a full-time month below МРОТ (27 093 from 2026-01-01), and compares part-time pay with МРОТ × the rate', () => {
    const low = payslips.get(e.lowFull.id);
    expect(line(low, 'base')).toBe('25000.00');
    expect(flags(low)).toEqual(['below-mrot']); // 25 000 < 27 093
    expect(low.flags[0].inputs).toMatchObject({ 'vars.mrot': '27093' });
    const half = payslips.get(e.halfOk.id);
    // 30 000 × 0.5 × 21 / 21 = 15 000 ≥ 27 093 × 0.5 = 13 546.50: no flag.
    expect(line(half, 'base')).toBe('15000.00');
    expect(flags(half)).toEqual([]);
  });

  it('taxes a non-resident at 30 %', () => {
    const p = payslips.get(e.nonResident.id);
    expect(codes(p)).toEqual(['base', 'ndflNonResident', 'contributions', 'injury']);
    expect(line(p, 'ndflNonResident')).toBe('30000.00');
  });

  it('sums the run', () => {
    expect(run).toMatchObject({ status: 'review', payslipCount: 8, flagCount: 2 });
    const sum = [...payslips.values()].reduce((s, p) => s + Math.round(Number(p.net) * 100), 0);
    expect(Math.round(Number(run.net) * 100)).toBe(sum);
  });
});

describe('holidays shorten the norm: January (15 days, 120 hours) and May 2026 (19 days, 151 hours)', () => {
  it('pays January: an hourly worker the 120 planned hours, a salary hired on the 19th 10 of 15 days', async () => {
    const hourly = await hire(t, { hireDate: '2025-06-02', hourlyRate: '500.00' });
    const salaried = await hire(t, { hireDate: '2026-01-19', salary: '90000.00' });
    const full = await hire(t, { hireDate: '2025-06-02', salary: '90000.00' });
    for (const x of [hourly, salaried, full]) await approvedTimesheet(t, x.id, '2026-01');
    const { payslips } = await computedRun(t, '2026-01');
    // 1–8 January are holidays, 9 January a day off moved from Saturday 3rd: 15 working days of 8 hours.
    expect(line(payslips.get(hourly.id), 'base')).toBe('60000.00'); // 500 × 120
    expect(payslips.get(hourly.id).facts).toMatchObject({ normDays: '15', normHours: '120', workedHours: '120' });
    expect(line(payslips.get(salaried.id), 'base')).toBe('60000.00'); // 90 000 × 10 / 15 (19–23, 26–30 January)
    expect(line(payslips.get(full.id), 'base')).toBe('90000.00');
  });

  it('pays May: the shortened 8 May (7 hours) and the moved 11 May in the norm', async () => {
    const hourly = await hire(t, { hireDate: '2025-06-02', hourlyRate: '500.00' });
    const salaried = await hire(t, { hireDate: '2026-05-12', salary: '90000.00' });
    for (const x of [hourly, salaried]) await approvedTimesheet(t, x.id, '2026-05');
    const { payslips } = await computedRun(t, '2026-05');
    // May: 1 and 9 (moved to 11) are holidays; 19 working days, 8 May one hour shorter: 19 × 8 − 1 = 151 hours.
    expect(line(payslips.get(hourly.id), 'base')).toBe('75500.00'); // 500 × 151
    // Hired Tuesday 12 May: 12–15, 18–22, 25–29 = 14 of 19 days: 90 000 × 14 / 19 = 66 315.789… → 66 315.79.
    expect(line(payslips.get(salaried.id), 'base')).toBe('66315.79');
  });
});

describe('April 2026: vacation from the average of 12 months, a 36-hour week', () => {
  it('pays vacation days at the average daily earnings (÷ 29.3 per full month, partly worked months pro rata)', async () => {
    const v = await hire(t, { hireDate: '2024-01-01', salary: '100000.00' });
    const w = await hire(t, { hireDate: '2024-01-01', hourlyRate: '400.00', schedule: await scheduleId(t, 'five-day-36') });
    // April 2025 – March 2026 paid before Kubiki: 100 000 a month, but August 2025 only 70 000 with 10 days of sick leave.
    for (let m = 0; m < 12; m++) {
      const month = m < 9 ? `2025-${String(m + 4).padStart(2, '0')}` : `2026-${String(m - 8).padStart(2, '0')}`;
      await created(t, '/api/payroll/history', { employee: v.id, month, averageBase: month === '2025-08' ? '70000.00' : '100000.00', ...(month === '2025-08' ? { excludedDays: 10 } : {}) });
    }
    await approvedTimesheet(t, v.id, '2026-04', Object.fromEntries(Array.from({ length: 14 }, (_, i) => [`2026-04-${String(6 + i).padStart(2, '0')}`, [{ kind: 'vacation' }]])));
    await approvedTimesheet(t, w.id, '2026-04');
    const { payslips } = await computedRun(t, '2026-04');
    const p = payslips.get(v.id);
    // Days: 11 full months × 29.3 = 322.3; August 29.3 / 31 × (31 − 10) = 19.848… → 19.85; together 342.15.
    // Earnings 11 × 100 000 + 70 000 = 1 170 000; a day 1 170 000 / 342.15 = 3 419.5528… → 3 419.55.
    // Vacation 6–19 April, 14 calendar days: 3 419.55 × 14 = 47 873.70.
    expect(p.facts).toMatchObject({ vacationDays: '14', vacationEarnings: '1170000', vacationAverageDays: '342.15' });
    expect(line(p, 'vacation')).toBe('47873.70');
    // Worked 22 − 10 working days of vacation = 12: 100 000 × 12 / 22 = 54 545.45.
    expect(line(p, 'base')).toBe('54545.45');
    // Vacation pay is insured income (contributions) but does not count in the next vacation's average.
    expect(p.average).toMatchObject({ base: '54545.45', sickBase: '102419.15' });
    // 36-hour week: 22 days × 7.2 − 1 (30 April shortened) = 157.4 hours × 400 = 62 960.00.
    expect(line(payslips.get(w.id), 'base')).toBe('62960.00');
    expect(payslips.get(w.id).facts).toMatchObject({ normHours: '157.4', workedHours: '157.4' });
  });
});
