import { KubikiError, defineRoute, fieldError, idParams, type PluginContext } from 'kubiki/plugin';
import { daysBetween } from '../util.ts';
import type { PayRuns } from '../pay-runs.ts';
import type { PayrollReports } from '../reports.ts';
import { csvQuery, date, period, report, respond, uuid } from './schemas.ts';

type Csv = { format?: 'json' | 'csv'; delimiter?: string; bom?: string };

export function runRoutes(ctx: PluginContext, runs: PayRuns, reports: PayrollReports): void {
  ctx.route(defineRoute<{ id: string }, Csv>({
    method: 'get', path: '/runs/:id/register', operationId: 'payrollRegister', summary: 'The payroll register of a run: a row per payslip, a column per component',
    description: 'Personnel number, name, department, each component\'s amount, earnings, deductions, net pay, employer contributions and flags; totals per column. CSV with format=csv.',
    permission: 'payroll.reports.read', errors: ['not-found'],
    schemas: { params: idParams, query: { type: 'object', additionalProperties: false, properties: { ...csvQuery } }, responses: { 200: report({ totals: { type: 'object' }, components: { type: 'array', items: { type: 'object' } } }) } },
    async handler({ params, query, principal }, http) {
      const run = await ctx.repository('payroll.runs').get(params.id, { actor: principal });
      respond(http, await reports.register(run), query.format);
    },
  }));

  ctx.route(defineRoute<unknown, unknown, { employee: string; period: string; structure?: string }>({
    method: 'post', path: '/payslips/preview', operationId: 'previewPayslip', summary: 'An employee\'s payslip for a period as a run would compute it, stored nowhere',
    description: 'Tries a salary structure (the employee\'s, or `structure`) on real data before it is used: the draft or approved timesheet (or the schedule), the terms in force, the dated parameters, the year to date of locked runs. Every line with its formula, inputs and parameters; a formula that fails on the data is 409 payroll.formula-failed naming the component and the position.',
    permission: 'payroll.runs.compute', errors: ['reference-not-found', 'payroll.formula-failed', 'payroll.no-terms', 'payroll.calendar-missing', 'payroll.parameter-missing'],
    schemas: {
      body: { type: 'object', additionalProperties: false, required: ['employee', 'period'], properties: { employee: uuid('A payroll.employees id'), period, structure: uuid('A payroll.structures id; default the employee\'s') } },
      responses: { 200: { type: 'object', additionalProperties: false, required: ['payslip'], properties: { payslip: { type: 'object' } } } },
    },
    async handler({ body }, http) {
      if (body.structure && !(await ctx.table('payroll_structures').where({ id: body.structure }).first('id'))) {
        throw fieldError('reference-not-found', 'structure', 'exists', `structure: no payroll.structures record ${body.structure}`);
      }
      http.body = { payslip: await runs.preview(body.employee, body.period, body.structure) };
    },
  }));

  ctx.route(defineRoute<unknown, Csv & { from: string; to: string; department?: string; employee?: string }>({
    method: 'get', path: '/reports/load', operationId: 'hourlyLoadReport', summary: 'Hourly load: scheduled, worked and overtime hours per employee and week, and overtime over the legal limits',
    description: 'Rows per employee and ISO week (scheduled hours by the schedule and employment rate, worked = work + overtime + holiday hours of the timesheets in any state, overtime), `departments` the same per department and week, `violations` the overtime over ст. 99 ТК РФ: more than overtimeLimitTwoDays (4) hours in two days running, more than overtimeLimitYear (120) in the year up to `to`.',
    permission: 'payroll.reports.read', errors: ['bad-query'],
    schemas: {
      query: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: { from: date('First day'), to: date('Last day (at most a year after from)'), department: uuid('One department'), employee: uuid('One employee'), ...csvQuery } },
      responses: { 200: report({ departments: { type: 'array', items: { type: 'object' } }, violations: { type: 'array', items: { type: 'object' } } }) },
    },
    async handler({ query }, http) {
      if (query.to < query.from) throw new KubikiError('bad-query', 'to must not be before from', { issues: [{ field: 'to', rule: 'after-from', message: 'to must not be before from' }] });
      if (daysBetween(query.from, query.to) > 366) throw new KubikiError('bad-query', 'the report covers at most a year (from … to at most 366 days apart)', { issues: [{ field: 'to', rule: 'range', message: 'at most a year after from' }] });
      respond(http, await reports.load(query), query.format);
    },
  }));
}
