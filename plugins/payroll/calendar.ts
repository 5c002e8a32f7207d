import { Decimal, ZERO, eachDay, invalid, isoWeekday, periodRange, plain } from './util.ts';

// The production calendar (производственный календарь) as data: a country's year of weekend days,
// public holidays, days off moved onto weekdays, weekend days made working and shortened pre-holiday
// days. Norms follow from it: a working day of a five-day week of W hours has W/5 hours, one hour
// less when shortened (ст. 95 ТК РФ); 2026 in Russia: 247 days, 1,972 hours at 40 hours a week.

export interface CalendarData {
  country: string;
  year: number;
  weekend?: number[];
  holidays?: { date: string; name?: string }[];
  daysOff?: { date: string; note?: string }[];
  workingDays?: { date: string; note?: string }[];
  shortened?: string[];
}

export interface MonthNorm { month: string; days: number; hours: string }

export class ProductionCalendar {
  readonly country: string;
  readonly year: number;
  private readonly weekend: Set<number>;
  private readonly holidays: Set<string>;
  private readonly daysOff: Set<string>;
  private readonly working: Set<string>;
  private readonly shortened: Set<string>;

  constructor(data: CalendarData) {
    this.country = data.country;
    this.year = data.year;
    this.weekend = new Set(data.weekend ?? [6, 7]);
    this.holidays = new Set((data.holidays ?? []).map((h) => h.date));
    this.daysOff = new Set((data.daysOff ?? []).map((d) => d.date));
    this.working = new Set((data.workingDays ?? []).map((d) => d.date));
    this.shortened = new Set(data.shortened ?? []);
  }

  /** A public holiday (work on it is holiday work whatever the schedule). */
  isHoliday(date: string): boolean {
    return this.holidays.has(date);
  }

  /** A working day of the five-day week. */
  isWorkday(date: string): boolean {
    if (this.holidays.has(date) || this.daysOff.has(date)) return false;
    if (this.working.has(date)) return true;
    return !this.weekend.has(isoWeekday(date));
  }

  isShortened(date: string): boolean {
    return this.shortened.has(date) && this.isWorkday(date);
  }

  /** Hours of a day for a five-day week of `weeklyHours`: a fifth of the week, one less when shortened. */
  hours(date: string, weeklyHours: Decimal.Value): Decimal {
    if (!this.isWorkday(date)) return ZERO;
    const day = new Decimal(weeklyHours).div(5);
    return this.isShortened(date) ? Decimal.max(day.minus(1), ZERO) : day;
  }

  monthNorm(period: string, weeklyHours: Decimal.Value = 40): MonthNorm {
    const { from, to } = periodRange(period);
    let days = 0;
    let hours = ZERO;
    for (const date of eachDay(from, to)) {
      if (!this.isWorkday(date)) continue;
      days++;
      hours = hours.plus(this.hours(date, weeklyHours));
    }
    return { month: period, days, hours: plain(hours) };
  }
}

/** Checks a calendar record the way its schema cannot: every date in its year, no day both off and working. */
export function checkCalendar(data: CalendarData): void {
  const inYear = (date: string, field: string) => {
    if (date.slice(0, 4) !== String(data.year)) throw invalid(field, 'year', `${field}: ${date} is not in ${data.year}`);
  };
  const seen = new Map<string, string>();
  const lists: [keyof CalendarData, { date: string }[]][] = [['holidays', data.holidays ?? []], ['daysOff', data.daysOff ?? []], ['workingDays', data.workingDays ?? []]];
  for (const [name, list] of lists) {
    list.forEach((d, i) => {
      const field = `${String(name)}.${i}.date`;
      inYear(d.date, field);
      const other = seen.get(d.date);
      if (other) throw invalid(field, 'unique', `${field}: ${d.date} is already listed in ${other}`);
      seen.set(d.date, String(name));
    });
  }
  const weekend = new Set(data.weekend ?? [6, 7]);
  (data.workingDays ?? []).forEach((d, i) => {
    if (!weekend.has(isoWeekday(d.date))) throw invalid(`workingDays.${i}.date`, 'weekend', `workingDays.${i}.date: ${d.date} is a weekday already; list only weekend days made working`);
  });
  const calendar = new ProductionCalendar(data);
  (data.shortened ?? []).forEach((date, i) => {
    inYear(date, `shortened.${i}`);
    if (!calendar.isWorkday(date)) throw invalid(`shortened.${i}`, 'workday', `shortened.${i}: ${date} is not a working day`);
  });
}
