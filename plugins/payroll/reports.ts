import type { ApiRecord, PluginContext } from 'kubiki/plugin';
import type { Entry } from './facts.ts';
import { PayrollData } from './payroll-data.ts';
import { plannedDay } from './schedules.ts';
import { Decimal, ZERO, addDays, dec, eachDay, isoWeek, maxDate, minDate, periodRange, plain, rawOf, tableRef } from './util.ts';
import type { ProductionCalendar } from './calendar.ts';

// Reports: the hourly load (scheduled vs worked vs overtime hours per employee and department and
// ISO week, and who exceeds the legal overtime limits of ст. 99 ТК РФ: 4 hours in two days running,
// 120 hours a year — both dated parameters) and the payroll register of a run.

/** The register's total columns (named apart from component codes such as `contributions`). */
const TOTAL_COLUMNS = [['earnings', 'totalEarnings'], ['deductions', 'totalDeductions'], ['net', 'netPay'], ['contributions', 'totalContributions']] as const;

export interface Report { report: string; columns: string[]; rows: Record<string, unknown>[]; [extra: string]: unknown }

export class PayrollReports {
  private readonly data: PayrollData;

  constructor(private readonly ctx: PluginContext) {
    this.data = new PayrollData(ctx);
  }

  async load(query: { from: string; to: string; department?: string; employee?: string }): Promise<Report> {
    const { from, to } = query;
    const yearStart = `${to.slice(0, 4)}-01-01`;
    const months = new Set<string>();
    for (let d = yearStart; d <= to; d = addDays(periodRange(d.slice(0, 7)).to, 1)) months.add(d.slice(0, 7));
    const periodMonths = [...months].filter((m) => m >= from.slice(0, 7));
    let employees = (await Promise.all(periodMonths.map((m) => this.data.employees(m)))).flat();
    employees = [...new Map(employees.map((e) => [e.id, e])).values()];
    if (query.department) employees = employees.filter((e) => e.department === query.department);
    if (query.employee) employees = employees.filter((e) => e.id === query.employee);
    const ids = employees.map((e) => e.id);
    const [terms, schedules, params] = await Promise.all([this.data.terms(ids, to), this.data.schedules(), this.data.parameters()]);
    const sheets = ids.length ? (await rawOf(this.ctx)(`select employee, period, entries from ${tableRef(this.ctx, 'payroll_timesheets')} where period >= ? and period <= ? and employee = any(?::uuid[])`, [yearStart.slice(0, 7), to.slice(0, 7), `{${ids.join(',')}}`])).rows as { employee: string; period: string; entries: Entry[] | null }[] : [];
    const entriesOf = new Map<string, Entry[]>();
    for (const s of sheets) entriesOf.set(s.employee, [...(entriesOf.get(s.employee) ?? []), ...(s.entries ?? [])]);
    const calendars = new Map<string, ProductionCalendar | null>();
    const calendarOf = async (country: string, year: number) => {
      const key = `${country}-${year}`;
      if (!calendars.has(key)) calendars.set(key, await this.data.calendar(country, year).catch(() => null));
      return calendars.get(key) ?? null;
    };
    const twoDays = dec(params.at('overtimeLimitTwoDays', to)?.value ?? '4');
    const year = dec(params.at('overtimeLimitYear', to)?.value ?? '120');

    const rows: Record<string, unknown>[] = [];
    const departments = new Map<string, { department: string | null; week: string; scheduled: Decimal; worked: Decimal; overtime: Decimal; employees: Set<string> }>();
    const violations: Record<string, unknown>[] = [];
    for (const e of employees) {
      const list = [...(terms.get(e.id) ?? [])].sort((a, b) => (a.validFrom < b.validFrom ? -1 : 1));
      const start = maxDate(from, e.hireDate);
      const end = e.terminationDate ? minDate(to, e.terminationDate) : to;
      const weeks = new Map<string, { week: string; weekStart: string; scheduled: Decimal; worked: Decimal; overtime: Decimal }>();
      const byDate = new Map<string, Entry[]>();
      for (const entry of entriesOf.get(e.id) ?? []) byDate.set(entry.date, [...(byDate.get(entry.date) ?? []), entry]);
      const hours = (date: string, kinds: string[]) => (byDate.get(date) ?? []).filter((x) => kinds.includes(x.kind)).reduce((s, x) => s.plus(dec(x.hours)), ZERO);
      for (const date of start <= end ? eachDay(start, end) : []) {
        const t = [...list].reverse().find((x) => x.validFrom <= date);
        const { week, monday } = isoWeek(date);
        const w = weeks.get(week) ?? { week, weekStart: monday, scheduled: ZERO, worked: ZERO, overtime: ZERO };
        if (t) {
          const schedule = (t.schedule ? schedules.byId.get(t.schedule) : undefined) ?? schedules.fallback;
          const calendar = await calendarOf(schedule.country, Number(date.slice(0, 4)));
          if (calendar) {
            const p = plannedDay(schedule, calendar, date);
            w.scheduled = w.scheduled.plus(p.hours.times(dec(t.rate ?? '1')));
          }
        }
        w.worked = w.worked.plus(hours(date, ['work', 'overtime', 'holiday']));
        w.overtime = w.overtime.plus(hours(date, ['overtime']));
        weeks.set(week, w);
      }
      for (const w of weeks.values()) {
        rows.push({ employee: e.id, personnelNumber: e.personnelNumber, name: e.name, department: e.departmentCode ?? null, week: w.week, weekStart: w.weekStart, scheduled: plain(w.scheduled), worked: plain(w.worked), overtime: plain(w.overtime) });
        const key = `${e.department ?? ''}:${w.week}`;
        const d = departments.get(key) ?? { department: e.departmentCode ?? null, week: w.week, scheduled: ZERO, worked: ZERO, overtime: ZERO, employees: new Set<string>() };
        d.scheduled = d.scheduled.plus(w.scheduled); d.worked = d.worked.plus(w.worked); d.overtime = d.overtime.plus(w.overtime); d.employees.add(e.id);
        departments.set(key, d);
      }
      // ст. 99 ТК РФ: at most 4 hours of overtime in two days running, 120 hours a year.
      for (const date of start <= end ? eachDay(start, end) : []) {
        const pairHours = hours(addDays(date, -1), ['overtime']).plus(hours(date, ['overtime']));
        if (hours(date, ['overtime']).gt(0) && pairHours.gt(twoDays)) {
          violations.push({ employee: e.id, personnelNumber: e.personnelNumber, name: e.name, rule: 'two-days', date, hours: plain(pairHours), limit: plain(twoDays), message: `${plain(pairHours)} hours of overtime on ${addDays(date, -1)} and ${date} (at most ${plain(twoDays)} in two days running)` });
        }
      }
      const yearly = eachDay(maxDate(yearStart, e.hireDate), end).reduce((s, d) => s.plus(hours(d, ['overtime'])), ZERO);
      if (yearly.gt(year)) violations.push({ employee: e.id, personnelNumber: e.personnelNumber, name: e.name, rule: 'year', date: end, hours: plain(yearly), limit: plain(year), message: `${plain(yearly)} hours of overtime in ${to.slice(0, 4)} up to ${end} (at most ${plain(year)} a year)` });
    }
    rows.sort((a, b) => (a.week === b.week ? String(a.personnelNumber).localeCompare(String(b.personnelNumber)) : String(a.week) < String(b.week) ? -1 : 1));
    return {
      report: 'hourly-load', from, to,
      columns: ['personnelNumber', 'name', 'department', 'week', 'weekStart', 'scheduled', 'worked', 'overtime'],
      rows,
      departments: [...departments.values()].sort((a, b) => (a.week === b.week ? String(a.department).localeCompare(String(b.department)) : a.week < b.week ? -1 : 1))
        .map((d) => ({ department: d.department, week: d.week, employees: d.employees.size, scheduled: plain(d.scheduled), worked: plain(d.worked), overtime: plain(d.overtime) })),
      violations,
    };
  }

  /** The payroll register (расчётная ведомость) of a run: a row per payslip, a column per component. */
  async register(run: ApiRecord): Promise<Report> {
    const payslips = await this.ctx.table('payroll_payslips').where({ run: run.id }).orderBy('personnelNumber').select('id', 'personnelNumber', 'employeeName', 'department', 'earnings', 'deductions', 'contributions', 'net', 'lines', 'flags');
    const departments = new Map<string, string>((await this.ctx.table('payroll_departments').select('id', 'code')).map((d: { id: string; code: string }) => [d.id, d.code]));
    const components: { code: string; title: string; kind: string }[] = [];
    for (const p of payslips) for (const l of (p.lines ?? []) as { code: string; title: string; kind: string }[]) if (!components.some((c) => c.code === l.code)) components.push({ code: l.code, title: l.title, kind: l.kind });
    const order = { earning: 0, deduction: 1, contribution: 2 } as Record<string, number>;
    components.sort((a, b) => order[a.kind] - order[b.kind]);
    const totals: Record<string, Decimal> = {};
    const add = (k: string, v: unknown) => { totals[k] = (totals[k] ?? ZERO).plus(dec(v)); };
    const rows = payslips.map((p: Record<string, unknown>) => {
      const row: Record<string, unknown> = { personnelNumber: p.personnelNumber, name: p.employeeName, department: p.department ? departments.get(String(p.department)) ?? null : null };
      for (const c of components) {
        const amount = ((p.lines ?? []) as { code: string; amount: string }[]).filter((l) => l.code === c.code).reduce((s, l) => s.plus(dec(l.amount)), ZERO);
        row[c.code] = amount.toFixed(2);
        add(c.code, amount);
      }
      for (const [k, column] of TOTAL_COLUMNS) { row[column] = dec(p[k]).toFixed(2); add(column, p[k]); }
      row.flags = ((p.flags ?? []) as { code: string }[]).map((f) => f.code).join(' ');
      return row;
    });
    return {
      report: 'payroll-register', run: run.id, period: run.period, kind: run.kind ?? 'regular', status: run.status,
      columns: ['personnelNumber', 'name', 'department', ...components.map((c) => c.code), ...TOTAL_COLUMNS.map(([, column]) => column), 'flags'],
      components, rows,
      totals: Object.fromEntries(Object.entries(totals).map(([k, v]) => [k, v.toFixed(2)])),
    };
  }
}
