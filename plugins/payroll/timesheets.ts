import { fieldError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import { plannedEntries, type Entry, type EntryKind } from './facts.ts';
import { PayrollData } from './payroll-data.ts';
import { Decimal, ZERO, addDays, dateText, dec, eachDay, invalid, maxDate, minDate, periodRange, plain } from './util.ts';

// Timesheets (табель): a month of hours per employee, day and kind. Prefilled from the schedule,
// corrected by managers while draft, approved through the payroll.timesheet-lifecycle workflow.

const WORKING: ReadonlySet<EntryKind> = new Set(['work', 'overtime', 'holiday']);
const ABSENT: ReadonlySet<EntryKind> = new Set(['sick', 'vacation', 'absence']);

/** Checks a month's entries and answers the totals the timesheet shows (its readOnly fields). */
export function timesheetTotals(period: string, entries: readonly Entry[]): Record<string, unknown> {
  const { from, to } = periodRange(period);
  const seen = new Set<string>();
  const byDate = new Map<string, Entry[]>();
  entries.forEach((e, i) => {
    if (e.date < from || e.date > to) throw invalid(`entries.${i}.date`, 'period', `entries.${i}.date: ${e.date} is not in ${period}`);
    const key = `${e.date}:${e.kind}`;
    if (seen.has(key)) throw invalid(`entries.${i}.kind`, 'unique', `entries.${i}: ${e.date} has ${e.kind} twice; give one entry per day and kind`);
    seen.add(key);
    if (WORKING.has(e.kind) || e.kind === 'night') {
      if (e.hours === undefined || dec(e.hours).lte(0)) throw invalid(`entries.${i}.hours`, 'required', `entries.${i}.hours: ${e.kind} needs its hours (more than 0)`);
    }
    byDate.set(e.date, [...(byDate.get(e.date) ?? []), e]);
  });
  const totals = { workedDays: 0, workedHours: ZERO, overtimeHours: ZERO, nightHours: ZERO, holidayHours: ZERO, sickDays: 0, vacationDays: 0, absenceDays: 0 };
  for (const [date, day] of byDate) {
    const index = entries.indexOf(day[day.length - 1]);
    const hours = (kinds: ReadonlySet<EntryKind> | EntryKind) => day.filter((e) => (typeof kinds === 'string' ? e.kind === kinds : kinds.has(e.kind))).reduce((s, e) => s.plus(dec(e.hours)), ZERO);
    const worked = hours(WORKING);
    if (worked.gt(24)) throw invalid(`entries.${index}.hours`, 'day', `entries: ${date} has ${plain(worked)} hours of work; a day has 24`);
    if (hours('night').gt(worked)) throw invalid(`entries.${index}.hours`, 'night', `entries: ${date} has ${plain(hours('night'))} night hours but ${plain(worked)} hours worked (night hours are the worked hours between 22:00 and 06:00)`);
    const absent = day.filter((e) => ABSENT.has(e.kind));
    if (absent.length > 1) throw invalid(`entries.${index}.kind`, 'absence', `entries: ${date} is both ${absent.map((e) => e.kind).join(' and ')}`);
    if (absent.length && worked.gt(0)) throw invalid(`entries.${index}.kind`, 'absence', `entries: ${date} is ${absent[0].kind} and has hours worked`);
    if (hours('work').gt(0)) totals.workedDays++;
    totals.workedHours = totals.workedHours.plus(hours('work'));
    totals.overtimeHours = totals.overtimeHours.plus(hours('overtime'));
    totals.nightHours = totals.nightHours.plus(hours('night'));
    totals.holidayHours = totals.holidayHours.plus(hours('holiday'));
    if (absent[0]?.kind === 'sick') totals.sickDays++;
    if (absent[0]?.kind === 'vacation') totals.vacationDays++;
    if (absent[0]?.kind === 'absence') totals.absenceDays++;
  }
  const h = (d: Decimal) => d.toFixed(2);
  return { ...totals, workedHours: h(totals.workedHours), overtimeHours: h(totals.overtimeHours), nightHours: h(totals.nightHours), holidayHours: h(totals.holidayHours) };
}

/** Entries in date order, each day's kinds in a fixed order (so equal timesheets read the same). */
export function sortEntries(entries: readonly Entry[]): Entry[] {
  const order: EntryKind[] = ['work', 'overtime', 'night', 'holiday', 'sick', 'vacation', 'absence'];
  return [...entries].sort((a, b) => (a.date === b.date ? order.indexOf(a.kind) - order.indexOf(b.kind) : a.date < b.date ? -1 : 1));
}

export class Timesheets {
  private readonly data: PayrollData;

  constructor(private readonly ctx: PluginContext) {
    this.data = new PayrollData(ctx);
  }

  /** Draft timesheets from the schedules for the period's employees that have none; answers what was made and skipped. */
  async prefill(period: string, options: { employees?: string[]; department?: string; actor: Principal; requestId?: string }): Promise<{ created: ApiRecord[]; skipped: { employee: string; personnelNumber: string; reason: string }[] }> {
    const { from, to } = periodRange(period);
    let employees = await this.data.employees(period, options.employees);
    if (options.employees?.length) {
      const found = new Set(employees.map((e) => e.id));
      const missing = options.employees.findIndex((id) => !found.has(id));
      if (missing >= 0) {
        const exists = await this.ctx.table('payroll_employees').where({ id: options.employees[missing] }).first('id');
        throw fieldError(exists ? 'validation-failed' : 'reference-not-found', `employees.${missing}`, exists ? 'employed' : 'exists', exists ? `employees.${missing}: ${options.employees[missing]} is not employed in ${period}` : `employees.${missing}: no payroll.employees record ${options.employees[missing]}`);
      }
    }
    if (options.department) employees = employees.filter((e) => e.department === options.department);
    const ids = employees.map((e) => e.id);
    const [terms, existing, schedules] = await Promise.all([this.data.terms(ids, to), this.data.timesheets(ids, period), this.data.schedules()]);
    const calendars = new Map<string, Awaited<ReturnType<PayrollData['calendar']>>>();
    const skipped: { employee: string; personnelNumber: string; reason: string }[] = [];
    const records: Record<string, unknown>[] = [];
    for (const e of employees) {
      if (existing.has(e.id)) { skipped.push({ employee: e.id, personnelNumber: e.personnelNumber, reason: 'has a timesheet for the period' }); continue; }
      const list = [...(terms.get(e.id) ?? [])].sort((a, b) => (a.validFrom < b.validFrom ? -1 : 1));
      const start = maxDate(from, e.hireDate);
      const end = e.terminationDate ? minDate(to, e.terminationDate) : to;
      if (!list.some((t) => t.validFrom <= start)) { skipped.push({ employee: e.id, personnelNumber: e.personnelNumber, reason: `no pay terms on ${start}` }); continue; }
      const entries: Entry[] = [];
      for (let i = 0; i < list.length; i++) {
        const t = list[i];
        const partFrom = maxDate(start, t.validFrom);
        const partTo = i + 1 < list.length ? minDate(end, addDays(list[i + 1].validFrom, -1)) : end;
        if (partFrom > partTo) continue;
        const schedule = (t.schedule ? schedules.byId.get(t.schedule) : undefined) ?? schedules.fallback;
        let calendar = calendars.get(schedule.country);
        if (!calendar) calendars.set(schedule.country, (calendar = await this.data.calendar(schedule.country, Number(period.slice(0, 4)))));
        entries.push(...plannedEntries(schedule, calendar, eachDay(partFrom, partTo), dec(t.rate ?? '1')));
      }
      records.push({ employee: e.id, period, entries: sortEntries(entries) });
    }
    const created: ApiRecord[] = [];
    const repo = this.ctx.repository('payroll.timesheets');
    for (let i = 0; i < records.length; i += 1000) {
      created.push(...await repo.createMany(records.slice(i, i + 1000), { actor: options.actor, requestId: options.requestId }));
    }
    return { created, skipped };
  }

  /** Replaces one day's entries (a manager's correction); the lifecycle refuses it once submitted. */
  async setDay(id: string, date: string, entries: { kind: EntryKind; hours?: string }[], options: { version?: number; actor: Principal; requestId?: string }): Promise<ApiRecord> {
    const repo = this.ctx.repository('payroll.timesheets');
    const sheet = await repo.get(id, { actor: options.actor });
    const period = String(sheet.period);
    if (date.slice(0, 7) !== period) throw invalid('date', 'period', `date: ${date} is not in the timesheet's month ${period}`);
    const kept = ((sheet.entries ?? []) as Entry[]).filter((e) => e.date !== date);
    const day = entries.map((e) => ({ date, kind: e.kind, ...(e.hours !== undefined ? { hours: e.hours } : {}) }));
    return repo.update(id, { entries: sortEntries([...kept, ...day]) }, { actor: options.actor, requestId: options.requestId, expectedVersion: options.version ?? Number(sheet.version) });
  }

  /** The `approve` transition's action: every entry lies within the employee's employment. */
  async approve(sheet: ApiRecord, trx: unknown): Promise<Record<string, unknown>> {
    const employee = await this.ctx.table('payroll_employees', trx as never).where({ id: sheet.employee }).first('personnelNumber', 'hireDate', 'terminationDate');
    const hire = dateText(employee?.hireDate);
    const end = employee?.terminationDate ? dateText(employee.terminationDate) : undefined;
    const entries = (sheet.entries ?? []) as Entry[];
    const outside = entries.findIndex((e) => e.date < hire || (end !== undefined && e.date > end));
    if (outside >= 0) {
      const e = entries[outside];
      throw this.ctx.error('timesheet-invalid', `entries.${outside}: ${e.date} (${e.kind}) is ${e.date < hire ? `before the hire date ${hire}` : `after the termination date ${end}`} of employee ${String(employee?.personnelNumber)}`, {
        issues: [{ field: `entries.${outside}.date`, rule: 'employment', message: `${e.date} is outside the employment` }],
      });
    }
    return { entries: entries.length, workedDays: sheet.workedDays ?? 0, workedHours: sheet.workedHours ?? '0.00' };
  }
}
