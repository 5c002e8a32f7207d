import type { ProductionCalendar } from './calendar.ts';
import type { ParameterValue } from './parameters.ts';
import { monthNorm, plannedDay, type ScheduleData } from './schedules.ts';
import { Decimal, ZERO, addDays, daysBetween, dec, eachDay, maxDate, minDate, money, periodRange, plain } from './util.ts';

// What a payslip is computed from, gathered per part of the period with the same terms (a raise
// on the 16th makes two parts): the terms as `record`, the timesheet and calendar figures as
// `input`. Every number is decimal text. Gathering is plain code; what is paid for it is the
// structure's formulas (calculator.ts).

export type EntryKind = 'work' | 'overtime' | 'night' | 'holiday' | 'sick' | 'vacation' | 'absence';
export interface Entry { date: string; kind: EntryKind; hours?: string }

export interface EmployeeFacts {
  id: string;
  version: number;
  personnelNumber: string;
  name: string;
  position?: string | null;
  department?: string | null;
  departmentCode?: string | null;
  user?: string | null;
  hireDate: string;
  terminationDate?: string | null;
  taxResidency: string;
  sickPayPercent: number;
  structure?: string | null;
}

export interface TermsFacts {
  id: string;
  version: number;
  validFrom: string;
  payBasis: 'monthly' | 'hourly';
  salary?: string | null;
  hourlyRate?: string | null;
  rate?: string | null;
  bonusPercent?: string | null;
  schedule?: string | null;
}

export interface Averages {
  /** Insured earnings of the two previous years, each capped at its contributions base limit. */
  sickEarnings: string;
  /** Earnings of the 12 months before, and the days they count for (29.3 per full month). */
  vacationEarnings: string;
  vacationAverageDays: string;
  /** How they were found, month by month and year by year. */
  detail?: Record<string, unknown>;
}

export interface Segment {
  from: string;
  to: string;
  terms: TermsFacts;
  schedule: ScheduleData;
  record: Record<string, string>;
  input: Record<string, string>;
}

export interface PeriodFacts {
  period: string;
  employee: EmployeeFacts;
  segments: Segment[];
  /** The whole period: sums of the parts, the last part's terms. */
  record: Record<string, string>;
  input: Record<string, string>;
  /** Calendar days of sick leave, vacation and unpaid absence (left out of averages later). */
  excludedDays: number;
  employedDays: number;
  /** Paid by the schedule: the employee had no timesheet for the period. */
  bySchedule: boolean;
}

export class FactsProblem extends Error {
  constructor(readonly code: 'no-terms' | 'parameter-missing', message: string, readonly extra: Record<string, unknown>) {
    super(message);
  }
}

/** Hours as whole hundredths: "7.25" → 725 (entries have at most 2 decimals, so this is exact). */
const centi = (hours: string | undefined): number => (hours ? Math.round(Number(hours) * 100) : 0);
const HOURS: ReadonlySet<string> = new Set(['plannedHours', 'workedHours', 'overtimeHours', 'overtimeFirstHours', 'overtimeNextHours', 'nightHours', 'holidayHours']);

interface MonthPlan { days: { centi: number; holiday: boolean }[]; normDays: number; normHours: string; calendarNormDays: number; calendarNormHours: string }
const plans = new WeakMap<ProductionCalendar, Map<string, MonthPlan>>();
/** A schedule's month on a calendar — planned hours per day and the norms — worked out once and kept. */
function planOf(schedule: ScheduleData, calendar: ProductionCalendar, period: string): MonthPlan {
  let byKey = plans.get(calendar);
  if (!byKey) plans.set(calendar, (byKey = new Map()));
  const key = `${period}|${schedule.kind}|${schedule.weeklyHours}|${schedule.nightHours}|${schedule.anchor ?? ''}|${JSON.stringify(schedule.pattern ?? [])}`;
  let plan = byKey.get(key);
  if (!plan) {
    const { from, to } = periodRange(period);
    const days = eachDay(from, to).map((date) => {
      const p = plannedDay(schedule, calendar, date);
      return { centi: Math.round(p.hours.times(100).toNumber()), holiday: p.holiday };
    });
    const norm = monthNorm(schedule, calendar, period);
    const calendarNorm = calendar.monthNorm(period, 40);
    plan = { days, normDays: norm.days, normHours: plain(norm.hours), calendarNormDays: calendarNorm.days, calendarNormHours: calendarNorm.hours };
    byKey.set(key, plan);
  }
  return plan;
}

const ADDITIVE = ['calendarDays', 'employedDays', 'plannedDays', 'plannedHours', 'workedDays', 'workedHours', 'overtimeHours', 'overtimeFirstHours', 'overtimeNextHours', 'nightHours', 'holidayHours', 'sickDays', 'sickEmployerDays', 'sickFundDays', 'vacationDays', 'absenceDays'] as const;

export interface FactsRequest {
  period: string;
  employee: EmployeeFacts;
  /** The employee's terms, any order. */
  terms: readonly TermsFacts[];
  schedules: ReadonlyMap<string, ScheduleData>;
  defaultSchedule: ScheduleData;
  calendar: ProductionCalendar;
  /** The approved timesheet's entries; undefined: none, pay by the schedule. */
  entries?: readonly Entry[];
  /** Consecutive sick days right before the period (a leave that started last month). */
  sickBefore: number;
  averages: Averages;
  vars: ReadonlyMap<string, ParameterValue>;
  /** The terms' employment rate scales planned hours when prefilling by schedule. */
}

function param(vars: ReadonlyMap<string, ParameterValue>, code: string, period: string): Decimal {
  const v = vars.get(code);
  if (!v || v.value === undefined) throw new FactsProblem('parameter-missing', `the dated parameter ${code} has no value for ${period}`, { parameter: code, date: `${period}-01` });
  return dec(v.value);
}

/** The entries a schedule plans for the dates (work or holiday hours, night hours), scaled by the rate. */
export function plannedEntries(schedule: ScheduleData, calendar: ProductionCalendar, dates: readonly string[], rate: Decimal.Value): Entry[] {
  const out: Entry[] = [];
  const r = new Decimal(rate);
  for (const date of dates) {
    const p = plannedDay(schedule, calendar, date);
    if (p.hours.isZero()) continue;
    const hours = p.hours.times(r).toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
    out.push({ date, kind: p.holiday ? 'holiday' : 'work', hours: plain(hours) });
    if (p.night.gt(0)) out.push({ date, kind: 'night', hours: plain(p.night.times(r).toDecimalPlaces(2, Decimal.ROUND_HALF_UP)) });
  }
  return out;
}

/** The parts of [from, to] with the same terms; throws no-terms for a day no terms cover. */
function split(employee: EmployeeFacts, terms: readonly TermsFacts[], from: string, to: string): { from: string; to: string; terms: TermsFacts }[] {
  const sorted = [...terms].sort((a, b) => (a.validFrom < b.validFrom ? -1 : a.validFrom > b.validFrom ? 1 : 0));
  const first = [...sorted].reverse().find((t) => t.validFrom <= from);
  if (!first) {
    throw new FactsProblem('no-terms', `employee ${employee.personnelNumber} (${employee.name}) has no pay terms for ${from}${sorted.length ? `: the first terms apply from ${sorted[0].validFrom}` : ''}`, { employee: employee.id, personnelNumber: employee.personnelNumber, date: from });
  }
  const parts: { from: string; to: string; terms: TermsFacts }[] = [{ from, to, terms: first }];
  for (const t of sorted) {
    if (t.validFrom <= from || t.validFrom > to) continue;
    const last = parts[parts.length - 1];
    if (last.from === t.validFrom) { last.terms = t; continue; }
    last.to = addDays(t.validFrom, -1);
    parts.push({ from: t.validFrom, to, terms: t });
  }
  return parts;
}

export function termsRecord(employee: EmployeeFacts, t: TermsFacts): Record<string, string> {
  return {
    personnelNumber: employee.personnelNumber, name: employee.name, position: employee.position ?? '', department: employee.departmentCode ?? '',
    payBasis: t.payBasis, salary: money(dec(t.salary)), hourlyRate: money(dec(t.hourlyRate)), rate: plain(dec(t.rate ?? '1')), bonusPercent: plain(dec(t.bonusPercent)),
    sickPayPercent: String(employee.sickPayPercent), taxResidency: employee.taxResidency, hireDate: employee.hireDate, terminationDate: employee.terminationDate ?? '',
  };
}

/** Gathers the facts of one employee's period, or undefined when they were not employed in it. */
export function gatherFacts(req: FactsRequest): PeriodFacts | undefined {
  const { period, employee, calendar, vars } = req;
  const range = periodRange(period);
  const from = maxDate(range.from, employee.hireDate);
  const to = employee.terminationDate ? minDate(range.to, employee.terminationDate) : range.to;
  if (from > to) return undefined;
  const firstLimit = param(vars, 'overtimeFirstHours', period);
  const employerDays = param(vars, 'sickEmployerDays', period).toNumber();
  const parts = split(employee, req.terms, from, to);
  const scheduleOf = (t: TermsFacts) => (t.schedule ? req.schedules.get(t.schedule) : undefined) ?? req.defaultSchedule;

  const bySchedule = req.entries === undefined;
  const entries: readonly Entry[] = req.entries ?? parts.flatMap((p) => plannedEntries(scheduleOf(p.terms), calendar, eachDay(p.from, p.to), dec(p.terms.rate ?? '1')));
  const byDate = new Map<string, Entry[]>();
  for (const e of entries) {
    if (e.date < from || e.date > to) continue;
    const list = byDate.get(e.date) ?? [];
    list.push(e);
    byDate.set(e.date, list);
  }
  // Sick leave: the first days of each leave (consecutive sick days) are the employer's.
  const employerSick = new Set<string>();
  let run = req.sickBefore;
  let previous = addDays(range.from, -1);
  const anySick = entries.some((e) => e.kind === 'sick');
  for (const date of anySick ? eachDay(range.from, range.to) : []) {
    const sick = (byDate.get(date) ?? []).some((e) => e.kind === 'sick');
    if (!sick) { run = 0; previous = date; continue; }
    run = daysBetween(previous, date) === 1 ? run + 1 : 1;
    previous = date;
    if (run <= employerDays) employerSick.add(date);
  }

  const averages = { sickEarnings: req.averages.sickEarnings, vacationEarnings: req.averages.vacationEarnings, vacationAverageDays: req.averages.vacationAverageDays };
  const firstLimitCenti = centi(firstLimit.toString());
  let excluded = 0;
  const segments: Segment[] = parts.map((p, i) => {
    const schedule = scheduleOf(p.terms);
    const plan = planOf(schedule, calendar, period);
    const rate = dec(p.terms.rate ?? '1');
    // Hours are summed as whole hundredths (entries have at most 2 decimals): exact and fast.
    const sums: Record<(typeof ADDITIVE)[number], number> = { calendarDays: 0, employedDays: 0, plannedDays: 0, plannedHours: 0, workedDays: 0, workedHours: 0, overtimeHours: 0, overtimeFirstHours: 0, overtimeNextHours: 0, nightHours: 0, holidayHours: 0, sickDays: 0, sickEmployerDays: 0, sickFundDays: 0, vacationDays: 0, absenceDays: 0 };
    const fromDay = Number(p.from.slice(8, 10));
    const toDay = Number(p.to.slice(8, 10));
    for (let d = fromDay; d <= toDay; d++) {
      const date = `${period}-${String(d).padStart(2, '0')}`;
      sums.calendarDays++;
      sums.employedDays++;
      const planned = plan.days[d - 1];
      if (planned.centi > 0 && !planned.holiday) { sums.plannedDays++; sums.plannedHours += planned.centi; }
      const day = byDate.get(date);
      if (!day) continue;
      let work = 0; let overtime = 0; let night = 0; let holiday = 0; let absent: EntryKind | undefined;
      for (const e of day) {
        switch (e.kind) {
          case 'work': work += centi(e.hours); break;
          case 'overtime': overtime += centi(e.hours); break;
          case 'night': night += centi(e.hours); break;
          case 'holiday': holiday += centi(e.hours); break;
          default: absent ??= e.kind;
        }
      }
      if (work > 0) { sums.workedDays++; sums.workedHours += work; }
      if (overtime > 0) {
        const first = Math.min(overtime, firstLimitCenti);
        sums.overtimeHours += overtime;
        sums.overtimeFirstHours += first;
        sums.overtimeNextHours += overtime - first;
      }
      sums.nightHours += night;
      sums.holidayHours += holiday;
      if (absent === 'sick') {
        sums.sickDays++;
        if (employerSick.has(date)) sums.sickEmployerDays++;
        else sums.sickFundDays++;
      }
      // Public holidays inside a vacation are not vacation days (ст. 120 ТК РФ).
      if (absent === 'vacation' && !calendar.isHoliday(date)) sums.vacationDays++;
      if (absent === 'absence') sums.absenceDays++;
      if (absent) excluded++;
    }
    const text = (k: (typeof ADDITIVE)[number]) => (HOURS.has(k) ? plain(new Decimal(sums[k]).div(100)) : String(sums[k]));
    const input: Record<string, string> = {
      from: p.from, to: p.to, accounting: schedule.accounting, segment: String(i + 1), segments: String(parts.length),
      normDays: String(plan.normDays), normHours: plan.normHours, calendarNormDays: String(plan.calendarNormDays), calendarNormHours: plan.calendarNormHours,
      ...Object.fromEntries(ADDITIVE.map((k) => [k, text(k)])),
      plannedHours: plain(new Decimal(sums.plannedHours).div(100).times(rate)),
      ...averages,
    };
    return { from: p.from, to: p.to, terms: p.terms, schedule, record: termsRecord(employee, p.terms), input };
  });
  const last = segments[segments.length - 1];
  const input: Record<string, string> = { ...last.input, from: segments[0].from, to: last.to, segment: '0', segments: String(segments.length) };
  for (const k of ADDITIVE) input[k] = plain(segments.reduce((s, seg) => s.plus(dec(seg.input[k])), ZERO));
  return { period, employee, segments, record: last.record, input, excludedDays: excluded, employedDays: Number(input.employedDays), bySchedule };
}
