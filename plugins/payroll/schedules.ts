import type { ProductionCalendar } from './calendar.ts';
import { Decimal, ZERO, daysBetween, dec, eachDay, invalid, periodRange } from './util.ts';

// Work schedules: what a day is planned to hold. A calendar schedule follows the production
// calendar's five-day week (weeklyHours/5 a day, pre-holiday days an hour shorter); a cycle repeats
// its pattern from the anchor date (2/2 shifts, day-night-off-off, any custom rota) and runs through
// holidays — a shift planned on a public holiday is holiday work.

export interface ScheduleData {
  id?: string;
  code: string;
  kind: 'calendar' | 'cycle';
  country: string;
  weeklyHours: string;
  nightHours: string;
  pattern?: { hours: string; night?: string }[];
  anchor?: string;
  accounting: 'days' | 'hours';
}

export interface PlannedDay {
  /** Hours planned (0: a day off). */
  hours: Decimal;
  /** Of them, at night (22:00–06:00). */
  night: Decimal;
  /** Planned on a public holiday: paid as holiday work, not part of the norm. */
  holiday: boolean;
}

const OFF: PlannedDay = { hours: ZERO, night: ZERO, holiday: false };

export function scheduleOf(row: Record<string, unknown>): ScheduleData {
  return {
    id: row.id as string | undefined,
    code: String(row.code),
    kind: row.kind === 'cycle' ? 'cycle' : 'calendar',
    country: String(row.country ?? 'RU'),
    weeklyHours: String(row.weeklyHours ?? '40'),
    nightHours: String(row.nightHours ?? '0'),
    pattern: Array.isArray(row.pattern) ? (row.pattern as { hours: string; night?: string }[]) : undefined,
    anchor: typeof row.anchor === 'string' ? row.anchor : undefined,
    accounting: row.accounting === 'hours' ? 'hours' : 'days',
  };
}

export function plannedDay(schedule: ScheduleData, calendar: ProductionCalendar, date: string): PlannedDay {
  if (schedule.kind === 'cycle') {
    const pattern = schedule.pattern ?? [];
    if (pattern.length === 0 || !schedule.anchor) return OFF;
    const n = pattern.length;
    const day = pattern[((daysBetween(schedule.anchor, date) % n) + n) % n];
    const hours = dec(day.hours);
    if (hours.isZero()) return OFF;
    return { hours, night: Decimal.min(dec(day.night), hours), holiday: calendar.isHoliday(date) };
  }
  const hours = calendar.hours(date, schedule.weeklyHours);
  if (hours.isZero()) return OFF;
  return { hours, night: Decimal.min(dec(schedule.nightHours), hours), holiday: false };
}

/** The schedule's norm of the month for a full-time rate: planned days and hours, holidays left out. */
export function monthNorm(schedule: ScheduleData, calendar: ProductionCalendar, period: string): { days: number; hours: Decimal } {
  const { from, to } = periodRange(period);
  let days = 0;
  let hours = ZERO;
  for (const date of eachDay(from, to)) {
    const p = plannedDay(schedule, calendar, date);
    if (p.hours.isZero() || p.holiday) continue;
    days++;
    hours = hours.plus(p.hours);
  }
  return { days, hours };
}

/** Checks a schedule the way its schema cannot: a cycle needs its pattern and anchor, night hours within the day's. */
export function checkSchedule(s: ScheduleData): void {
  if (s.kind === 'cycle') {
    if (!s.pattern?.length) throw invalid('pattern', 'required', 'pattern is required for a cycle schedule: the days of the cycle with their hours');
    if (!s.anchor) throw invalid('anchor', 'required', 'anchor is required for a cycle schedule: the date the pattern\'s first day falls on');
    s.pattern.forEach((d, i) => {
      if (dec(d.night).gt(dec(d.hours))) throw invalid(`pattern.${i}.night`, 'maximum', `pattern.${i}.night: ${d.night} night hours in a day of ${d.hours} hours`);
    });
    if (s.pattern.every((d) => dec(d.hours).isZero())) throw invalid('pattern', 'work', 'pattern: the cycle has no working day');
  } else {
    const w = dec(s.weeklyHours);
    if (w.lte(0) || w.gt(60)) throw invalid('weeklyHours', 'range', 'weeklyHours must be more than 0 and at most 60');
    if (dec(s.nightHours).gt(w.div(5))) throw invalid('nightHours', 'maximum', `nightHours: more night hours than the day's ${w.div(5).toFixed()} hours`);
  }
}
