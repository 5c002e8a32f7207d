import { SYSTEM, definePlugin, fieldError, isKubikiError, type ApiRecord, type GuardedWrite, type PluginContext } from 'kubiki/plugin';
import { checkCalendar, type CalendarData } from './calendar.ts';
import { FormulaProblem, compileStructure, type CheckSpec, type ComponentSpec } from './formulas.ts';
import { PayRuns } from './pay-runs.ts';
import { PayrollData } from './payroll-data.ts';
import { PayrollReports } from './reports.ts';
import { checkSchedule, scheduleOf } from './schedules.ts';
import { loadShippedData } from './shipped-data.ts';
import { Timesheets, sortEntries, timesheetTotals } from './timesheets.ts';
import { ensureAccounts, runPostingRule } from './finance-postings.ts';
import type { Entry } from './facts.ts';
import { calendarRoutes } from './routes/calendar-routes.ts';
import { runRoutes } from './routes/run-routes.ts';
import { timesheetRoutes } from './routes/timesheet-routes.ts';
import { dec, invalid } from './util.ts';

export { PayRuns } from './pay-runs.ts';
export { computePayslip } from './calculator.ts';
export { gatherFacts } from './facts.ts';

/** The payroll services of running instances, newest last (the benchmark drives them in-process). */
export const payrollServices: { ctx: PluginContext; runs: PayRuns; timesheets: Timesheets; reports: PayrollReports }[] = [];

const FIGURES = ['payslipCount', 'earnings', 'deductions', 'contributions', 'net', 'flagCount', 'computedAt', 'lockedAt'];

export default definePlugin({
  async setup(ctx) {
    const runs = new PayRuns(ctx);
    const timesheets = new Timesheets(ctx);
    const reports = new PayrollReports(ctx);
    const data = new PayrollData(ctx);
    payrollServices.push({ ctx, runs, timesheets, reports });

    // ── Employees: the name follows the shared person ──────────────────────────────────────
    const nameOf = (p: ApiRecord) => [p.lastName, p.firstName, p.middleName].filter((x) => typeof x === 'string' && x !== '').join(' ');
    ctx.computeFields('payroll.employees', async ({ fields, exec }) => {
      if (fields.terminationDate && fields.hireDate && String(fields.terminationDate) < String(fields.hireDate)) {
        throw invalid('terminationDate', 'after-hire', `terminationDate ${String(fields.terminationDate)} is before hireDate ${String(fields.hireDate)}`);
      }
      try {
        const person = await ctx.repository('base.people').get(String(fields.person), { actor: SYSTEM, trx: exec });
        return { name: nameOf(person) };
      } catch (error) {
        if (isKubikiError(error) && error.code === 'not-found') throw fieldError('reference-not-found', 'person', 'x-ref', `person: no base.people record ${String(fields.person)}`);
        throw error;
      }
    });
    ctx.on('base.people.updated', async (event) => {
      const ids: string[] = await ctx.table('payroll_employees').where({ person: event.recordId }).pluck('id');
      for (const id of ids) await ctx.repository('payroll.employees').update(id, {}, { actor: SYSTEM, viaTransition: true });
    });

    // ── Terms, schedules, calendars, parameters: checked beyond their schemas ───────────────
    ctx.computeFields('payroll.terms', ({ fields }) => {
      if (fields.payBasis === 'monthly' && !(dec(fields.salary).gt(0))) throw invalid('salary', 'required', 'salary is required (more than 0) for payBasis monthly');
      if (fields.payBasis === 'hourly' && !(dec(fields.hourlyRate).gt(0))) throw invalid('hourlyRate', 'required', 'hourlyRate is required (more than 0) for payBasis hourly');
      const rate = dec(fields.rate ?? '1');
      if (rate.lte(0) || rate.gt(2)) throw invalid('rate', 'range', 'rate (the employment rate) must be more than 0 and at most 2.00');
      if (dec(fields.bonusPercent).lt(0)) throw invalid('bonusPercent', 'minimum', 'bonusPercent must not be negative');
      return {};
    });
    ctx.computeFields('payroll.schedules', ({ fields }) => {
      checkSchedule(scheduleOf(fields as Record<string, unknown>));
      return {};
    });
    ctx.computeFields('payroll.calendars', ({ fields }) => {
      checkCalendar(fields as unknown as CalendarData);
      return { code: `${String(fields.country)}-${String(fields.year)}` };
    });
    ctx.computeFields('payroll.parameters', ({ fields }) => {
      const hasValue = fields.value !== undefined && fields.value !== null;
      const hasScale = Array.isArray(fields.scale);
      if (hasValue === hasScale) throw invalid(hasValue ? 'scale' : 'value', 'one-of', 'give either value (a decimal) or scale (brackets), not both or neither');
      if (hasScale) {
        const scale = fields.scale as { upTo?: string }[];
        scale.forEach((b, i) => {
          const last = i === scale.length - 1;
          if (last !== (b.upTo === undefined)) throw invalid(`scale.${i}.upTo`, last ? 'last' : 'required', last ? `scale.${i}.upTo: the last bracket has no upper limit` : `scale.${i}.upTo is required: only the last bracket is open-ended`);
          if (i > 0 && b.upTo !== undefined && dec(b.upTo).lte(dec(scale[i - 1].upTo))) throw invalid(`scale.${i}.upTo`, 'ascending', `scale.${i}.upTo must be above the bracket before (${String(scale[i - 1].upTo)})`);
        });
      }
      return {};
    });

    // ── Salary structures: every formula compiles and reads known names ────────────────────
    ctx.computeFields('payroll.structures', async ({ fields, current, exec }) => {
      const params = await data.parameters(exec);
      const country = String(fields.country ?? 'RU');
      const vars = new Map([...params.varsAt('9999-12-31', country)].map(([code, v]) => [code, (v.scale ?? v.value) as unknown]));
      const scales = new Set([...params.codes(country)].filter((c) => params.hasScale(c, country)));
      try {
        compileStructure({ code: String(fields.code), components: fields.components as ComponentSpec[], checks: (fields.checks ?? []) as CheckSpec[], country }, { vars, scales });
      } catch (error) {
        if (!(error instanceof FormulaProblem)) throw error;
        throw ctx.error('formula-invalid', `structure ${String(fields.code)}: ${error.message}`, { issues: [{ field: error.field, rule: error.rule, message: error.message }], extra: error.extra() });
      }
      if (fields.isDefault === true) {
        const other = await ctx.table('payroll_structures', exec).where({ isDefault: true }).whereNot({ code: String(current?.code ?? fields.code) }).first('code');
        if (other) throw invalid('isDefault', 'unique', `isDefault: ${String(other.code)} is the default structure; unmark it first`);
      }
      return {};
    });

    // ── Timesheets: totals computed, the lifecycle owns the status ──────────────────────────
    ctx.guardWrites('payroll.timesheets', ({ action, fields, trusted }: GuardedWrite) => {
      if (action !== 'update' || trusted) return;
      const fixed = ['employee', 'period'].find((f) => f in fields);
      if (fixed) throw fieldError('validation-failed', fixed, 'immutable', `${fixed} of a timesheet never changes; make another timesheet`);
    });
    ctx.computeFields('payroll.timesheets', ({ fields }) => timesheetTotals(String(fields.period), sortEntries((fields.entries ?? []) as Entry[])));

    // ── Pay runs and payslips ──────────────────────────────────────────────────────────────
    ctx.guardWrites('payroll.runs', ({ action, fields, current, trusted }: GuardedWrite) => {
      if (trusted) return;
      const figure = FIGURES.find((f) => f in fields);
      if (figure) throw fieldError('validation-failed', figure, 'read-only', `${figure} is set by computing and locking the run`);
      if (action === 'update' && current && current.status !== 'draft') {
        const fixed = ['period', 'kind', 'employees'].find((f) => f in fields);
        if (fixed) throw fieldError('validation-failed', fixed, 'draft', `${fixed} changes only while the run is a draft (it is ${String(current.status)})`);
      }
    });
    ctx.computeFields('payroll.runs', async ({ action, fields, current, exec }) => {
      if (action === 'create' || fields.period !== current?.period || fields.kind !== current?.kind) {
        if ((fields.kind ?? 'regular') === 'regular') {
          const other = await ctx.table('payroll_runs', exec).where({ period: fields.period, kind: 'regular' }).whereNot({ status: 'cancelled' }).modify((q) => { if (current?.id) q.whereNot({ id: current.id }); }).first('id');
          if (other) throw ctx.error('run-exists', `${String(fields.period)} has a regular run (${String(other.id)}); a correction is a run of kind correction`, { issues: [{ field: 'period', rule: 'unique', message: 'one regular run per period' }], extra: { run: other.id } });
        }
      }
      return {};
    });
    ctx.guardWrites('payroll.payslips', ({ trusted, action }: GuardedWrite) => {
      if (trusted) return;
      throw ctx.error('payslip-computed', action === 'create'
        ? 'payslips are made by computing their pay run: POST /api/payroll/runs/{id}/transitions/compute'
        : 'a payslip is never edited or deleted by hand: compute its run again while it is in review, or correct a locked run with a correction run', {
        issues: [{ field: action === 'create' ? 'run' : 'id', rule: 'computed', message: 'written only by computing the pay run' }],
      });
    });
    ctx.computeFields('payroll.payslips', async ({ action, fields, exec }) => {
      // New payslips come only from computing a run in draft or review (the guard refuses others' and
      // the lifecycle computes nothing else): only a change is checked against the run's state.
      if (action === 'create') return {};
      const run = await ctx.table('payroll_runs', exec).where({ id: fields.run }).first('status');
      if (run && ['approved', 'locked', 'cancelled'].includes(String(run.status))) {
        throw ctx.error('run-locked', `the run is ${String(run.status)}: its payslips do not change`, { issues: [{ field: 'run', rule: 'locked', message: `run is ${String(run.status)}` }] });
      }
      return {};
    });

    // ── Documents: the payslip's lines by kind, the register's rows (every payslip of the run) ──
    ctx.documentTotals('payroll.payslips', ({ record: p }) => {
      const lines = (p.lines ?? []) as { kind: string; title: string; amount: string }[];
      return { earnings: lines.filter((l) => l.kind === 'earning'), deductions: lines.filter((l) => l.kind === 'deduction'), contributions: lines.filter((l) => l.kind === 'contribution'), facts: p.facts ?? {} };
    });
    ctx.documentTotals('payroll.runs', async ({ record: run }) => {
      const register = await reports.register(run);
      return { rows: register.rows, components: (register.components as { code: string; title: string }[]).map((c) => ({ ...c, amount: (register.totals as Record<string, string>)[c.code] })) };
    });

    // ── Routes ─────────────────────────────────────────────────────────────────────────────
    timesheetRoutes(ctx, timesheets);
    calendarRoutes(ctx);
    runRoutes(ctx, runs, reports);

    // ── Workflow actions: the lifecycles' document moments ────────────────────────────────
    const record = (input: Record<string, unknown>) => input.record as ApiRecord;
    ctx.workflowAction('computeRun', {
      description: 'Computes (again) and stores the pay run\'s payslips: {record} (the compute transition of payroll.run-lifecycle)',
      handler: (input, { trx, actor, requestId }) => runs.compute(record(input), { trx, actor, requestId }),
    });
    ctx.workflowAction('checkRun', {
      description: 'Refuses to approve a run whose timesheets, terms, employees or structure changed since it was computed: {record}',
      handler: (input, { trx, actor, requestId }) => runs.check(record(input), { trx, actor, requestId }),
    });
    ctx.workflowAction('lockRun', {
      description: 'Locks the pay run (stamps lockedAt; finance posts it): {record}',
      handler: (input, { trx, actor, requestId }) => runs.lock(record(input), { trx, actor, requestId }),
    });
    ctx.workflowAction('cancelRun', {
      description: 'Deletes a cancelled run\'s payslips: {record}',
      handler: (input, { trx, actor, requestId }) => runs.cancel(record(input), { trx, actor, requestId }),
    });
    ctx.workflowAction('approveTimesheet', {
      description: 'Checks a timesheet before approval (every entry within the employment): {record}',
      handler: (input, { trx }) => timesheets.approve(record(input), trx),
    });

    // ── Shipped rates and calendars, then the books ────────────────────────────────────────
    await loadShippedData(ctx);
    try {
      await ctx.contribute('finance.postingRules', runPostingRule(ctx));
      if (ctx.isEnabled('finance')) await ensureAccounts(ctx);
    } catch (error) {
      // No finance in this installation: pay is kept without the books.
      if (!isKubikiError(error)) throw error;
    }
  },
});
