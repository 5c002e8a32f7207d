import { defineRoute, entityRecord, type PluginContext } from 'kubiki/plugin';
import type { EntryKind } from '../facts.ts';
import type { Timesheets } from '../timesheets.ts';
import { entryKind, hours, period, requestIdOf, uuid } from './schemas.ts';

export function timesheetRoutes(ctx: PluginContext, timesheets: Timesheets): void {
  ctx.route(defineRoute<unknown, unknown, { period: string; employees?: string[]; department?: string }>({
    method: 'post', path: '/timesheets/prefill', operationId: 'prefillTimesheets', summary: 'Draft timesheets of a month from the employees\' schedules',
    description: 'For every employee employed in the period (or the listed ones, or a department\'s) that has no timesheet for it: a draft with each planned day\'s work (or holiday) hours and night hours, by the schedule of the terms in force each day, scaled by the employment rate. Days before the hire date or after the termination date stay empty.',
    permission: 'payroll.timesheets.create', errors: ['reference-not-found', 'payroll.calendar-missing'],
    schemas: {
      body: {
        type: 'object', additionalProperties: false, required: ['period'],
        properties: { period, employees: { type: 'array', minItems: 1, maxItems: 1000, uniqueItems: true, items: uuid('A payroll.employees id') }, department: uuid('Only this department\'s employees') },
      },
      responses: {
        201: {
          type: 'object', additionalProperties: false, required: ['created', 'data', 'skipped'],
          properties: {
            created: { type: 'integer', minimum: 0 },
            data: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['id', 'employee'], properties: { id: uuid(), employee: uuid() } } },
            skipped: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['employee', 'personnelNumber', 'reason'], properties: { employee: uuid(), personnelNumber: { type: 'string' }, reason: { type: 'string' } } } },
          },
        },
      },
    },
    async handler({ body, principal }, http) {
      const { created, skipped } = await timesheets.prefill(body.period, { employees: body.employees, department: body.department, actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.body = { created: created.length, data: created.map((t) => ({ id: t.id, employee: String(t.employee) })), skipped };
    },
  }));

  ctx.route(defineRoute<{ id: string; date: string }, unknown, { entries: { kind: EntryKind; hours?: string }[]; version?: number }>({
    method: 'put', path: '/timesheets/:id/days/:date', operationId: 'setTimesheetDay', summary: 'Set one day of a draft timesheet (a manager\'s correction)',
    description: 'Replaces the day\'s entries with the ones given (none: the day is empty). The totals are computed again. Refused once the timesheet is submitted or approved (409 document-locked); `version` (or If-Match) guards against someone else\'s edit (412).',
    permission: 'payroll.timesheets.update', errors: ['not-found', 'document-locked', 'version-mismatch'],
    schemas: {
      params: { type: 'object', required: ['id', 'date'], additionalProperties: false, properties: { id: uuid('A payroll.timesheets id'), date: { type: 'string', format: 'date', description: 'A day of the timesheet\'s month' } } },
      body: {
        type: 'object', additionalProperties: false, required: ['entries'],
        properties: {
          entries: { type: 'array', maxItems: 7, items: { type: 'object', additionalProperties: false, required: ['kind'], properties: { kind: entryKind, hours } } },
          version: { type: 'integer', minimum: 1, description: 'The version you saw' },
        },
      },
      responses: { 200: entityRecord('payroll.timesheets') },
    },
    async handler({ params, body, principal }, http) {
      const ifMatch = /^"?(\d+)"?$/.exec(http.get('if-match') ?? '');
      http.body = await timesheets.setDay(params.id, params.date, body.entries, { actor: principal, requestId: requestIdOf(http), version: body.version ?? (ifMatch ? Number(ifMatch[1]) : undefined) });
    },
  }));
}
