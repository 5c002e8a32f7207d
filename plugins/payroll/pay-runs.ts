import { createHash } from 'node:crypto';
import { SYSTEM, fieldError, type ApiRecord, type PluginContext, type Principal } from 'kubiki/plugin';
import { computePayslip, type PayslipLine, type PayslipResult, type YearToDate } from './calculator.ts';
import { FactsProblem, gatherFacts, type Averages, type EmployeeFacts, type PeriodFacts } from './facts.ts';
import { FormulaProblem, type CompiledStructure } from './formulas.ts';
import { PayrollData, type PreviousPay, type TimesheetFacts } from './payroll-data.ts';
import { ZERO, chunks, dec, elevated, money, periodRange } from './util.ts';

// Pay runs: computing one turns every employee's period into a payslip (calculator.ts) and stores
// them through the entity repository — validated, audited, evented — in the transaction of the
// run's `compute` transition. A correction run pays the difference between the period recomputed
// now (a raise entered later with an earlier date) and what its locked runs paid. Locked runs and
// their payslips are never written again.

export interface RunOptions { actor: Principal; trx: unknown; requestId?: string }

const NO_AVERAGES: Averages = { sickEarnings: '0', vacationEarnings: '0', vacationAverageDays: '0' };
const EMPTY_YTD: ReadonlyMap<string, YearToDate> = new Map();
/** Grants computing needs besides the transition's own permission: writing payslips and the run's figures. */
const RUN_WRITES = ['payroll.payslips.create', 'payroll.payslips.update', 'payroll.payslips.delete', 'payroll.runs.update', 'payroll.payslips.read'];

const strip = <T extends Record<string, unknown>>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== null)) as T;

/** A correction's payslip: each line the recomputed amount less what was paid; undefined when nothing differs. */
export function difference(result: PayslipResult, prev: PreviousPay | undefined): PayslipResult | undefined {
  if (!prev) return result;
  const lines: PayslipLine[] = [];
  const totals = { earning: ZERO, deduction: ZERO, contribution: ZERO };
  const codes = [...result.lines.map((l) => l.code), ...[...prev.lines.keys()].filter((c) => !result.lines.some((l) => l.code === c))];
  for (const code of codes) {
    const now = result.lines.find((l) => l.code === code);
    const before = prev.lines.get(code);
    const amount = dec(now?.amount).minus(before?.amount ?? ZERO);
    const base = dec(now?.base).minus(before?.base ?? ZERO);
    const scaled = now?.base !== undefined || (before !== undefined && !before.base.isZero());
    if (amount.isZero() && (!scaled || base.isZero())) continue;
    const kind = (now?.kind ?? before!.kind) as PayslipLine['kind'];
    totals[kind] = totals[kind].plus(amount);
    lines.push({
      ...(now ?? { code, title: before!.title, kind, ...(before!.account ? { account: before!.account } : {}), ...(before!.inAverage !== undefined ? { inAverage: before!.inAverage, inSickAverage: before!.inSickAverage } : {}) }),
      amount: money(amount), ...(scaled ? { base: money(base) } : {}),
      correction: { recomputed: money(dec(now?.amount)), paid: money(before?.amount ?? ZERO), ...(scaled ? { recomputedBase: money(dec(now?.base)), paidBase: money(before?.base ?? ZERO) } : {}), payslips: prev.payslips },
    });
  }
  if (lines.length === 0) return undefined;
  return {
    ...result, lines,
    earnings: money(totals.earning), deductions: money(totals.deduction), contributions: money(totals.contribution), net: money(totals.earning.minus(totals.deduction)),
    average: { ...result.average, base: money(dec(result.average.base).minus(prev.averageBase)), sickBase: money(dec(result.average.sickBase).minus(prev.sickBase)) },
  };
}

interface PrepareOptions { kind: 'regular' | 'correction'; employees?: readonly string[]; structure?: string; runId?: string; requireApproved: boolean; exec?: unknown }

export interface Computed { employee: EmployeeFacts; facts: PeriodFacts; result: PayslipResult; structure: CompiledStructure; timesheet?: TimesheetFacts; record: Record<string, unknown> }

export class PayRuns {
  readonly data: PayrollData;

  constructor(private readonly ctx: PluginContext) {
    this.data = new PayrollData(ctx);
  }

  private fail(problem: FormulaProblem, employee: EmployeeFacts, structure: CompiledStructure, period: string) {
    const who = `employee ${employee.personnelNumber} (${employee.name})`;
    if (problem.rule === 'parameter-missing') return this.ctx.error('parameter-missing', `${who}, ${period}: ${problem.message}`, { extra: { employee: employee.id, personnelNumber: employee.personnelNumber, ...problem.extra() } });
    return this.ctx.error('formula-failed', `structure ${structure.code}, ${who}, ${period}: ${problem.message}`, {
      issues: [{ field: problem.field, rule: problem.rule, message: problem.message }],
      extra: { structure: structure.code, employee: employee.id, personnelNumber: employee.personnelNumber, period, ...problem.extra() },
    });
  }

  /**
   * Everything a run of `period` pays, computed without writing: per employee the facts, the
   * result (a correction's: the difference) and the payslip record as it would be stored.
   */
  async calculate(period: string, options: PrepareOptions): Promise<Computed[]> {
    const prepared = await this.prepare(period, options);
    return prepared.employees.map((e) => prepared.compute(e)).filter((c): c is Computed => c !== undefined);
  }

  /**
   * Loads what a run of `period` is computed from — a handful of statements however many employees
   * — and answers the employees and a synchronous `compute` of one employee's payslip (undefined:
   * nothing to pay). Storing can then overlap computing.
   */
  async prepare(period: string, options: PrepareOptions): Promise<{ employees: EmployeeFacts[]; compute(employee: EmployeeFacts): Computed | undefined }> {
    const exec = options.exec;
    const data = this.data;
    const employees = await data.employees(period, options.employees, exec);
    const ids = employees.map((e) => e.id);
    const { to } = periodRange(period);
    // One statement after another: inside the transition's transaction they share one connection.
    const params = await data.parameters(exec);
    const schedules = await data.schedules(exec);
    const terms = await data.terms(ids, to, exec);
    const timesheets = await data.timesheets(ids, period, exec);
    const ytd = await data.yearToDate(ids, period, exec);
    if (options.requireApproved) {
      const open = employees.filter((e) => timesheets.get(e.id) && timesheets.get(e.id)!.status !== 'approved');
      if (open.length) {
        throw this.ctx.error('timesheet-not-approved', `${open.length} timesheet(s) of ${period} are not approved: ${open.slice(0, 10).map((e) => `${e.personnelNumber} (${timesheets.get(e.id)!.status})`).join(', ')}${open.length > 10 ? ', …' : ''}`, {
          extra: { timesheets: open.slice(0, 100).map((e) => ({ id: timesheets.get(e.id)!.id, employee: e.id, personnelNumber: e.personnelNumber, status: timesheets.get(e.id)!.status })) },
        });
      }
    }
    const firstDaySick = ids.filter((id) => timesheets.get(id)?.entries.some((e) => e.kind === 'sick' && e.date === `${period}-01`));
    const needAverages = ids.filter((id) => timesheets.get(id)?.entries.some((e) => e.kind === 'sick' || e.kind === 'vacation'));
    const structures = new Map<string, CompiledStructure>();
    const keyOf = (e: EmployeeFacts) => options.structure ?? e.structure ?? '';
    for (const e of employees) if (!structures.has(keyOf(e))) structures.set(keyOf(e), await data.structure(keyOf(e) || undefined, exec));
    const countries = new Set([...structures.values()].map((s) => s.country));
    const sickBefore = await data.sickBefore(firstDaySick, period, exec);
    const averagesByCountry = new Map<string, Map<string, Averages>>();
    const calendars = new Map<string, Awaited<ReturnType<PayrollData['calendar']>>>();
    for (const c of countries) {
      averagesByCountry.set(c, await data.averages(needAverages, period, params, c, exec));
      calendars.set(c, await data.calendar(c, Number(period.slice(0, 4)), exec));
    }
    const previous = options.kind === 'correction' ? await data.previousPay(ids, period, exec) : undefined;
    const varsByCountry = new Map([...countries].map((c) => [c, params.varsAt(`${period}-01`, c)]));

    const compute = (employee: EmployeeFacts): Computed | undefined => {
      const structure = structures.get(keyOf(employee))!;
      const timesheet = timesheets.get(employee.id);
      const averages = averagesByCountry.get(structure.country)?.get(employee.id);
      let facts: PeriodFacts | undefined;
      try {
        facts = gatherFacts({
          period, employee, terms: terms.get(employee.id) ?? [], schedules: schedules.byId, defaultSchedule: schedules.fallback, calendar: calendars.get(structure.country)!,
          entries: timesheet && (timesheet.status === 'approved' || !options.requireApproved) ? timesheet.entries : undefined,
          sickBefore: sickBefore.get(employee.id) ?? 0, averages: averages ?? NO_AVERAGES, vars: varsByCountry.get(structure.country)!,
        });
      } catch (error) {
        if (error instanceof FactsProblem) throw this.ctx.error(error.code, `${period}: ${error.message}`, { extra: error.extra });
        throw error;
      }
      if (!facts) return undefined;
      let result: PayslipResult | undefined;
      try {
        result = computePayslip(structure, facts, varsByCountry.get(structure.country)!, ytd.get(employee.id) ?? EMPTY_YTD);
      } catch (error) {
        if (error instanceof FormulaProblem) throw this.fail(error, employee, structure, period);
        throw error;
      }
      if (previous) result = difference(result, previous.get(employee.id));
      if (!result) return undefined;
      const record = this.payslipRecord(period, options.kind, options.runId, employee, facts, result, structure, timesheet, terms.get(employee.id) ?? [], averages);
      return { employee, facts, result, structure, timesheet, record };
    };
    return { employees, compute };
  }

  private payslipRecord(period: string, kind: string, runId: string | undefined, e: EmployeeFacts, facts: PeriodFacts, result: PayslipResult, structure: CompiledStructure, timesheet: TimesheetFacts | undefined, terms: readonly { id: string; version: number; validFrom: string }[], averages: Averages | undefined): Record<string, unknown> {
    const { to } = periodRange(period);
    const content = strip({
      employee: e.id, user: e.user, period, kind, employeeName: e.name, personnelNumber: e.personnelNumber, position: e.position, department: e.department,
      structure: structure.code, structureVersion: structure.version,
      earnings: result.earnings, deductions: result.deductions, contributions: result.contributions, net: result.net,
      lines: result.lines, flags: result.flags,
      // The period's figures; those that are zero are left out (a missing fact reads as 0).
      facts: { ...Object.fromEntries(Object.entries(facts.input).filter(([, v]) => v !== '0')), bySchedule: facts.bySchedule, ...(averages?.detail ? { averages: averages.detail } : {}) },
      segments: facts.segments.map((s) => strip({ from: s.from, to: s.to, terms: s.terms.id, payBasis: s.terms.payBasis, salary: s.record.salary, hourlyRate: s.record.hourlyRate, rate: s.record.rate, bonusPercent: s.record.bonusPercent, schedule: s.schedule.code })),
      parameters: result.parameters,
      average: result.average,
      sources: {
        employee: { id: e.id, version: e.version }, structure: { id: structure.id, version: structure.version },
        timesheet: timesheet ? { id: timesheet.id, version: timesheet.version, status: timesheet.status } : null,
        terms: terms.filter((t) => t.validFrom <= to).map((t) => ({ id: t.id, version: t.version })),
      },
    });
    // The same code builds the same content in the same key order: plain JSON is a stable digest.
    const digest = createHash('sha256').update(JSON.stringify(content)).digest('hex');
    return { ...(runId ? { run: runId } : {}), ...content, digest };
  }

  /** The `compute` transition's action: computes (again) and stores the run's payslips; answers the figures. */
  async compute(run: ApiRecord, options: RunOptions): Promise<Record<string, unknown>> {
    const { trx } = options;
    const period = String(run.period);
    const kind = run.kind === 'correction' ? 'correction' : 'regular';
    if (kind === 'correction') {
      const regular = await this.ctx.table('payroll_runs', trx as never).where({ period, kind: 'regular', status: 'locked' }).first('id');
      if (!regular) throw this.ctx.error('nothing-to-correct', `${period} has no locked regular run: a correction pays differences against what was paid`, { extra: { period } });
    }
    const prepared = await this.prepare(period, { kind, employees: Array.isArray(run.employees) ? (run.employees as string[]) : undefined, runId: run.id, requireApproved: true, exec: trx });
    const writer = options.actor === SYSTEM ? SYSTEM : elevated(options.actor, RUN_WRITES);
    const write = { actor: writer, trx: trx as never, requestId: options.requestId, viaTransition: true };
    const repo = this.ctx.repository('payroll.payslips');
    const existing = new Map<string, { id: string; digest: string | null }>(
      (await this.ctx.table('payroll_payslips', trx as never).where({ run: run.id }).select('id', 'employee', 'digest')).map((r: { id: string; employee: string; digest: string | null }) => [r.employee, r]),
    );
    const computed: Computed[] = [];
    const changed: { c: Computed; id: string }[] = [];
    let created = 0;
    let storing: Promise<unknown> | undefined;
    // Payslips are stored 200 at a time (a statement with their audit rows and events; bigger ones
    // cost more per row), each batch's statement running in the database while the next is computed.
    for (const batch of chunks(prepared.employees, 200)) {
      const fresh: Record<string, unknown>[] = [];
      for (const employee of batch) {
        const c = prepared.compute(employee);
        if (!c) continue;
        computed.push(c);
        const before = existing.get(employee.id);
        existing.delete(employee.id);
        if (!before) fresh.push(c.record);
        else if (before.digest !== c.record.digest) changed.push({ c, id: before.id });
      }
      await storing;
      if (fresh.length) {
        created += fresh.length;
        storing = repo.createMany(fresh, write);
        // Let the statement reach the database before computing on.
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    await storing;
    for (const { c, id } of changed) await repo.update(id, { ...c.record, user: c.record.user ?? null, position: c.record.position ?? null, department: c.record.department ?? null }, write);
    for (const gone of existing.values()) await repo.delete(gone.id, write);
    const sum = (field: 'earnings' | 'deductions' | 'contributions' | 'net') => money(computed.reduce((s, c) => s.plus(dec(c.result[field])), ZERO));
    const figures = {
      payslipCount: computed.length, earnings: sum('earnings'), deductions: sum('deductions'), contributions: sum('contributions'), net: sum('net'),
      flagCount: computed.filter((c) => c.result.flags.length > 0).length, computedAt: new Date().toISOString(),
    };
    await this.ctx.repository('payroll.runs').update(run.id, figures, write);
    return { ...figures, created, updated: changed.length, deleted: existing.size };
  }

  /** The `approve` transition's action: refuses when what the payslips were computed from changed since. */
  async check(run: ApiRecord, options: RunOptions): Promise<Record<string, unknown>> {
    const trx = options.trx;
    const period = String(run.period);
    const stored: { id: string; employee: string; personnelNumber: string; sources: Record<string, unknown> }[] = await this.ctx.table('payroll_payslips', trx as never).where({ run: run.id }).select('id', 'employee', 'personnelNumber', 'sources');
    const ids = stored.map((s) => s.employee);
    const { to } = periodRange(period);
    const employees = await this.data.employees(period, ids, trx);
    const terms = await this.data.terms(ids, to, trx);
    const timesheets = await this.data.timesheets(ids, period, trx);
    const versions = new Map(employees.map((e) => [e.id, e.version]));
    const structures = new Map<string, number>((await this.ctx.table('payroll_structures', trx as never).select('id', 'version')).map((r: { id: string; version: number }) => [r.id, Number(r.version)]));
    const changed: { personnelNumber: string; what: string[] }[] = [];
    for (const s of stored) {
      const src = s.sources as { employee: { version: number }; structure: { id: string; version: number }; timesheet: { id: string; version: number } | null; terms: { id: string; version: number }[] };
      const what: string[] = [];
      if (versions.get(s.employee) !== src.employee.version) what.push('employee');
      if (structures.get(src.structure.id) !== src.structure.version) what.push('structure');
      const ts = timesheets.get(s.employee);
      if ((ts?.version ?? null) !== (src.timesheet?.version ?? null) || (ts?.id ?? null) !== (src.timesheet?.id ?? null)) what.push('timesheet');
      const now = (terms.get(s.employee) ?? []).map((t) => `${t.id}:${t.version}`).join(',');
      if (now !== src.terms.map((t) => `${t.id}:${t.version}`).join(',')) what.push('terms');
      if (what.length) changed.push({ personnelNumber: s.personnelNumber, what });
    }
    if (run.kind !== 'correction' && !Array.isArray(run.employees)) {
      // Employees hired into the period (with terms) since the run was computed.
      const paid = new Set(ids);
      const missing = (await this.data.employees(period, undefined, trx)).filter((e) => !paid.has(e.id));
      const withTerms = await this.data.terms(missing.map((e) => e.id), to, trx);
      for (const e of missing) if (withTerms.has(e.id)) changed.push({ personnelNumber: e.personnelNumber, what: ['employed, no payslip'] });
    }
    if (changed.length) {
      throw this.ctx.error('run-stale', `compute the run again: ${changed.slice(0, 10).map((c) => `${c.personnelNumber} (${c.what.join(', ')})`).join('; ')}${changed.length > 10 ? '; …' : ''} changed since it was computed`, { extra: { changed: changed.slice(0, 100) } });
    }
    return { payslips: stored.length };
  }

  /** The `lock` transition's action: stamps the run; finance posts it from the event. */
  async lock(run: ApiRecord, options: RunOptions): Promise<Record<string, unknown>> {
    const writer = options.actor === SYSTEM ? SYSTEM : elevated(options.actor, RUN_WRITES);
    const lockedAt = new Date().toISOString();
    await this.ctx.repository('payroll.runs').update(run.id, { lockedAt }, { actor: writer, trx: options.trx as never, requestId: options.requestId, viaTransition: true });
    return { lockedAt, payslips: Number(run.payslipCount ?? 0) };
  }

  /** The `cancel` transition's action: a cancelled run keeps no payslips. */
  async cancel(run: ApiRecord, options: RunOptions): Promise<Record<string, unknown>> {
    const writer = options.actor === SYSTEM ? SYSTEM : elevated(options.actor, RUN_WRITES);
    const ids: string[] = await this.ctx.table('payroll_payslips', options.trx as never).where({ run: run.id }).pluck('id');
    const repo = this.ctx.repository('payroll.payslips');
    for (const id of ids) await repo.delete(id, { actor: writer, trx: options.trx as never, requestId: options.requestId, viaTransition: true });
    return { deleted: ids.length };
  }

  /** One employee's payslip for a period as computing would make it, written nowhere (try a structure on data). */
  async preview(employee: string, period: string, structure?: string): Promise<Record<string, unknown>> {
    const computed = await this.calculate(period, { kind: 'regular', employees: [employee], structure, requireApproved: false });
    if (computed.length === 0) {
      const exists = await this.ctx.table('payroll_employees').where({ id: employee }).first('id');
      if (!exists) throw fieldError('reference-not-found', 'employee', 'exists', `employee: no payroll.employees record ${employee}`);
      throw fieldError('validation-failed', 'period', 'employed', `period: employee ${employee} is not employed in ${period}`);
    }
    return computed[0].record;
  }
}

