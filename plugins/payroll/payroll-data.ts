import type { PluginContext } from 'kubiki/plugin';
import { ProductionCalendar, type CalendarData } from './calendar.ts';
import { compileStructure, type CompiledStructure, type ComponentSpec, type CheckSpec } from './formulas.ts';
import type { Averages, EmployeeFacts, Entry, TermsFacts } from './facts.ts';
import { Parameters, type ParameterRow } from './parameters.ts';
import { scheduleOf, type ScheduleData } from './schedules.ts';
import type { YearToDate } from './calculator.ts';
import { Decimal, ZERO, dec, daysInMonth, periodRange, plain, rawOf, shiftMonth, tableRef } from './util.ts';

// Bulk reads for pay runs: a period's employees, terms, timesheets, year-to-date figures and
// average earnings in a handful of statements however many employees there are. Reads only:
// every write goes through the entity repositories.

type Exec = unknown;

export interface TimesheetFacts { id: string; version: number; status: string; entries: Entry[] }
export interface PreviousPay {
  payslips: string[];
  lines: Map<string, { amount: Decimal; base: Decimal; title: string; kind: string; account?: string; inAverage?: boolean; inSickAverage?: boolean }>;
  earnings: Decimal; deductions: Decimal; contributions: Decimal; net: Decimal;
  averageBase: Decimal; sickBase: Decimal;
}

const uuidArray = (ids: readonly string[]): string => `{${ids.join(',')}}`;

export class PayrollData {
  private readonly compiled = new Map<string, CompiledStructure>();

  constructor(private readonly ctx: PluginContext) {}

  private raw(exec?: Exec) {
    return rawOf(this.ctx, exec);
  }

  private t(name: string): string {
    return tableRef(this.ctx, name);
  }

  async parameters(exec?: Exec): Promise<Parameters> {
    const rows = (await this.raw(exec)(`select code, country, "validFrom"::text as "validFrom", value::text as value, scale from ${this.t('payroll_parameters')}`)).rows as ParameterRow[];
    return new Parameters(rows);
  }

  /** The production calendar of a country's year; calendar-missing when none is loaded. */
  async calendar(country: string, year: number, exec?: Exec): Promise<ProductionCalendar> {
    const row = (await this.raw(exec)(`select country, year, weekend, holidays, "daysOff", "workingDays", shortened from ${this.t('payroll_calendars')} where country = ? and year = ?`, [country, year])).rows[0] as CalendarData | undefined;
    if (!row) throw this.ctx.error('calendar-missing', `no production calendar ${country}-${year} is loaded: POST /api/payroll/calendars with the year's calendar`, { extra: { country, year } });
    return new ProductionCalendar(row);
  }

  async schedules(exec?: Exec): Promise<{ byId: Map<string, ScheduleData>; fallback: ScheduleData }> {
    const rows = (await this.raw(exec)(`select id, code, kind, country, "weeklyHours"::text as "weeklyHours", "nightHours"::text as "nightHours", pattern, anchor::text as anchor, accounting from ${this.t('payroll_schedules')}`)).rows as Record<string, unknown>[];
    const byId = new Map(rows.map((r) => [String(r.id), scheduleOf(r)]));
    const fallback = [...byId.values()].find((s) => s.code === 'five-day-40')
      ?? scheduleOf({ code: 'five-day-40', kind: 'calendar', country: 'RU', weeklyHours: '40', nightHours: '0', accounting: 'days' });
    return { byId, fallback };
  }

  /** A structure compiled (cached per version); the default one when `id` is empty. */
  async structure(id: string | null | undefined, exec?: Exec): Promise<CompiledStructure> {
    const rows = (await this.raw(exec)(
      id ? `select id, code, version, country, components, checks from ${this.t('payroll_structures')} where id = ?`
        : `select id, code, version, country, components, checks from ${this.t('payroll_structures')} where "isDefault" order by "createdAt" limit 1`,
      id ? [id] : [],
    )).rows as { id: string; code: string; version: number; country: string; components: ComponentSpec[]; checks: CheckSpec[] | null }[];
    const row = rows[0];
    if (!row) throw this.ctx.error('formula-invalid', id ? `no salary structure ${id}` : 'no default salary structure: mark one with isDefault', { issues: [{ field: 'structure', rule: 'exists', message: 'no salary structure' }] });
    const key = `${row.id}:${row.version}`;
    let compiled = this.compiled.get(key);
    if (!compiled) {
      compiled = compileStructure({ id: row.id, code: row.code, version: row.version, country: row.country ?? 'RU', components: row.components, checks: row.checks ?? [] });
      this.compiled.set(key, compiled);
    }
    return compiled;
  }

  /** Employees employed at some day of the period (or the listed ones), with their department's code. */
  async employees(period: string, ids?: readonly string[], exec?: Exec): Promise<EmployeeFacts[]> {
    const { from, to } = periodRange(period);
    const rows = (await this.raw(exec)(
      `select e.id, e.version, e."personnelNumber", coalesce(e.name, e."personnelNumber") as name, e.position, e.department, d.code as "departmentCode", e."user",
              e."hireDate"::text as "hireDate", e."terminationDate"::text as "terminationDate", coalesce(e."taxResidency", 'resident') as "taxResidency",
              coalesce(e."sickPayPercent", 100) as "sickPayPercent", e.structure
       from ${this.t('payroll_employees')} e left join ${this.t('payroll_departments')} d on d.id = e.department
       where e."hireDate" <= ? and (e."terminationDate" is null or e."terminationDate" >= ?) ${ids?.length ? 'and e.id = any(?::uuid[])' : ''}
       order by e."personnelNumber"`,
      ids?.length ? [to, from, uuidArray(ids)] : [to, from],
    )).rows as EmployeeFacts[];
    return rows.map((r) => ({ ...r, version: Number(r.version), sickPayPercent: Number(r.sickPayPercent) }));
  }

  async terms(employeeIds: readonly string[], until: string, exec?: Exec): Promise<Map<string, TermsFacts[]>> {
    const out = new Map<string, TermsFacts[]>();
    if (employeeIds.length === 0) return out;
    const rows = (await this.raw(exec)(
      `select id, version, employee, "validFrom"::text as "validFrom", "payBasis", salary::text as salary, "hourlyRate"::text as "hourlyRate", rate::text as rate,
              "bonusPercent"::text as "bonusPercent", schedule
       from ${this.t('payroll_terms')} where employee = any(?::uuid[]) and "validFrom" <= ? order by "validFrom"`,
      [uuidArray(employeeIds), until],
    )).rows as (TermsFacts & { employee: string })[];
    for (const r of rows) {
      const list = out.get(r.employee) ?? [];
      list.push({ ...r, version: Number(r.version) });
      out.set(r.employee, list);
    }
    return out;
  }

  async timesheets(employeeIds: readonly string[], period: string, exec?: Exec): Promise<Map<string, TimesheetFacts>> {
    const out = new Map<string, TimesheetFacts>();
    if (employeeIds.length === 0) return out;
    const rows = (await this.raw(exec)(
      `select id, version, employee, status, entries from ${this.t('payroll_timesheets')} where period = ? and employee = any(?::uuid[])`,
      [period, uuidArray(employeeIds)],
    )).rows as { id: string; version: number; employee: string; status: string; entries: Entry[] | null }[];
    for (const r of rows) out.set(r.employee, { id: r.id, version: Number(r.version), status: r.status ?? 'draft', entries: r.entries ?? [] });
    return out;
  }

  /** Consecutive sick days at the end of the month before `period` (a leave continuing into it). */
  async sickBefore(employeeIds: readonly string[], period: string, exec?: Exec): Promise<Map<string, number>> {
    const out = new Map<string, number>();
    if (employeeIds.length === 0) return out;
    const previous = shiftMonth(period, -1);
    const last = periodRange(previous).to;
    const rows = (await this.raw(exec)(`select employee, entries from ${this.t('payroll_timesheets')} where period = ? and employee = any(?::uuid[])`, [previous, uuidArray(employeeIds)])).rows as { employee: string; entries: Entry[] | null }[];
    for (const r of rows) {
      const sick = new Set((r.entries ?? []).filter((e) => e.kind === 'sick').map((e) => e.date));
      let n = 0;
      for (let d = Number(last.slice(8, 10)); d >= 1 && sick.has(`${previous}-${String(d).padStart(2, '0')}`); d--) n++;
      if (n > 0) out.set(r.employee, n);
    }
    return out;
  }

  /**
   * Year to date before `period`: per employee and scaled component (НДФЛ, contributions), the base
   * and amount of locked payslips of earlier months of the year, plus months paid before Kubiki.
   */
  async yearToDate(employeeIds: readonly string[], period: string, exec?: Exec): Promise<Map<string, Map<string, YearToDate>>> {
    const out = new Map<string, Map<string, YearToDate>>();
    if (employeeIds.length === 0) return out;
    const yearStart = `${period.slice(0, 4)}-01`;
    const ids = uuidArray(employeeIds);
    const rows = (await this.raw(exec)(
      `select employee, code, sum(base)::text as base, sum(amount)::text as amount from (
         select p.employee, l->>'code' as code, coalesce((l->>'base')::numeric, 0) as base, (l->>'amount')::numeric as amount
         from ${this.t('payroll_payslips')} p join ${this.t('payroll_runs')} r on r.id = p.run
         cross join lateral jsonb_array_elements(p.lines) l
         where r.status = 'locked' and p.period >= ? and p.period < ? and p.employee = any(?::uuid[]) and l->>'scale' is not null
         union all
         select h.employee, c->>'code', coalesce((c->>'base')::numeric, 0), (c->>'amount')::numeric
         from ${this.t('payroll_history')} h cross join lateral jsonb_array_elements(coalesce(h.components, '[]'::jsonb)) c
         where h.month >= ? and h.month < ? and h.employee = any(?::uuid[])
       ) x group by employee, code`,
      [yearStart, period, ids, yearStart, period, ids],
    )).rows as { employee: string; code: string; base: string; amount: string }[];
    for (const r of rows) {
      const m = out.get(r.employee) ?? new Map<string, YearToDate>();
      m.set(r.code, { base: dec(r.base), amount: dec(r.amount) });
      out.set(r.employee, m);
    }
    return out;
  }

  /**
   * Average earnings for vacation pay (the 12 months before `period`: earnings ÷ days, 29.3 a fully
   * worked month, pro rata for the others) and sick pay (insured earnings of the two previous
   * years, each capped at that year's contributions base limit).
   */
  async averages(employeeIds: readonly string[], period: string, params: Parameters, country: string, exec?: Exec): Promise<Map<string, Averages>> {
    const out = new Map<string, Averages>();
    if (employeeIds.length === 0) return out;
    const ids = uuidArray(employeeIds);
    const year = Number(period.slice(0, 4));
    const from = `${year - 2}-01`;
    const rows = (await this.raw(exec)(
      `select employee, month, sum(base)::text as base, sum("sickBase")::text as "sickBase", (array_agg(employed order by src, at desc))[1] as employed, (array_agg(excluded order by src, at desc))[1] as excluded from (
         select p.employee, p.period as month, coalesce((p.average->>'base')::numeric, 0) as base, coalesce((p.average->>'sickBase')::numeric, 0) as "sickBase",
                (p.average->>'employedDays')::int as employed, (p.average->>'excludedDays')::int as excluded, 0 as src, p."createdAt" as at
         from ${this.t('payroll_payslips')} p join ${this.t('payroll_runs')} r on r.id = p.run
         where r.status = 'locked' and p.period >= ? and p.period < ? and p.employee = any(?::uuid[])
         union all
         select h.employee, h.month, coalesce(h."averageBase", 0), coalesce(h."sickBase", 0), h."employedDays", coalesce(h."excludedDays", 0), 1, h."createdAt"
         from ${this.t('payroll_history')} h where h.month >= ? and h.month < ? and h.employee = any(?::uuid[])
       ) x group by employee, month`,
      [from, period, ids, from, period, ids],
    )).rows as { employee: string; month: string; base: string; sickBase: string; employed: number | null; excluded: number | null }[];
    const monthDays = dec(params.at('averageMonthDays', `${period}-01`, country)?.value ?? '29.3');
    const firstMonth = shiftMonth(period, -12);
    const byEmployee = new Map<string, typeof rows>();
    for (const r of rows) byEmployee.set(r.employee, [...(byEmployee.get(r.employee) ?? []), r]);
    for (const id of employeeIds) {
      const list = byEmployee.get(id) ?? [];
      let vacationEarnings = ZERO;
      let vacationDays = ZERO;
      const months: Record<string, unknown>[] = [];
      const sickYears: Record<string, { earnings: string; limit: string | null; counted: string }> = {};
      let sickEarnings = ZERO;
      for (const y of [year - 2, year - 1]) {
        const earned = list.filter((r) => r.month.startsWith(`${y}-`)).reduce((s, r) => s.plus(dec(r.sickBase)), ZERO);
        const limit = params.at('contributionBaseLimit', `${y}-12-31`, country)?.value;
        const counted = limit === undefined ? earned : Decimal.min(earned, dec(limit));
        sickYears[String(y)] = { earnings: plain(earned), limit: limit ?? null, counted: plain(counted) };
        sickEarnings = sickEarnings.plus(counted);
      }
      for (const r of list.filter((x) => x.month >= firstMonth).sort((a, b) => (a.month < b.month ? -1 : 1))) {
        const dim = daysInMonth(r.month);
        const employed = r.employed ?? dim;
        const excluded = r.excluded ?? 0;
        const days = employed >= dim && excluded === 0 ? monthDays : monthDays.div(dim).times(Math.max(0, employed - excluded)).toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
        vacationEarnings = vacationEarnings.plus(dec(r.base));
        vacationDays = vacationDays.plus(days);
        months.push({ month: r.month, earnings: plain(dec(r.base)), employedDays: employed, excludedDays: excluded, days: plain(days) });
      }
      out.set(id, { sickEarnings: plain(sickEarnings), vacationEarnings: plain(vacationEarnings), vacationAverageDays: plain(vacationDays), detail: { vacationMonths: months, sickYears } });
    }
    return out;
  }

  /** What locked runs already paid each employee for `period` (a correction pays the difference). */
  async previousPay(employeeIds: readonly string[], period: string, exec?: Exec): Promise<Map<string, PreviousPay>> {
    const out = new Map<string, PreviousPay>();
    if (employeeIds.length === 0) return out;
    const rows = (await this.raw(exec)(
      `select p.id, p.employee, p.lines, p.earnings::text as earnings, p.deductions::text as deductions, p.contributions::text as contributions, p.net::text as net, p.average
       from ${this.t('payroll_payslips')} p join ${this.t('payroll_runs')} r on r.id = p.run
       where r.status = 'locked' and p.period = ? and p.employee = any(?::uuid[]) order by p."createdAt"`,
      [period, uuidArray(employeeIds)],
    )).rows as { id: string; employee: string; lines: Record<string, unknown>[]; earnings: string; deductions: string; contributions: string; net: string; average: Record<string, unknown> | null }[];
    for (const r of rows) {
      const prev: PreviousPay = out.get(r.employee) ?? { payslips: [], lines: new Map(), earnings: ZERO, deductions: ZERO, contributions: ZERO, net: ZERO, averageBase: ZERO, sickBase: ZERO };
      prev.payslips.push(r.id);
      for (const l of r.lines ?? []) {
        const code = String(l.code);
        const line = prev.lines.get(code) ?? { amount: ZERO, base: ZERO, title: String(l.title), kind: String(l.kind), ...(l.account ? { account: String(l.account) } : {}), ...(l.inAverage !== undefined ? { inAverage: l.inAverage === true, inSickAverage: l.inSickAverage === true } : {}) };
        line.amount = line.amount.plus(dec(l.amount));
        line.base = line.base.plus(dec(l.base));
        prev.lines.set(code, line);
      }
      prev.earnings = prev.earnings.plus(dec(r.earnings));
      prev.deductions = prev.deductions.plus(dec(r.deductions));
      prev.contributions = prev.contributions.plus(dec(r.contributions));
      prev.net = prev.net.plus(dec(r.net));
      prev.averageBase = prev.averageBase.plus(dec(r.average?.base));
      prev.sickBase = prev.sickBase.plus(dec(r.average?.sickBase));
      out.set(r.employee, prev);
    }
    return out;
  }
}

