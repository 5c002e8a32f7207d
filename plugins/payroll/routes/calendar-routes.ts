import { defineRoute, idParams, type PluginContext } from 'kubiki/plugin';
import { ProductionCalendar, type CalendarData } from '../calendar.ts';
import { plain, dec } from '../util.ts';

export function calendarRoutes(ctx: PluginContext): void {
  const month = {
    type: 'object', additionalProperties: false, required: ['month', 'days', 'hours40', 'hours36', 'hours24'],
    properties: { month: { type: 'string' }, days: { type: 'integer' }, hours40: { type: 'string' }, hours36: { type: 'string' }, hours24: { type: 'string' } },
  };
  ctx.route(defineRoute<{ id: string }>({
    method: 'get', path: '/calendars/:id/norms', operationId: 'calendarNorms', summary: 'Working days and hours per month of a production calendar',
    description: 'Working days of the five-day week and the hour norms for 40-, 36- and 24-hour weeks (a day is a fifth of the week, a shortened pre-holiday day one hour less), per month and for the year.',
    permission: 'payroll.calendars.read', errors: ['not-found'],
    schemas: {
      params: idParams,
      query: { type: 'object', additionalProperties: false, properties: {} },
      responses: { 200: { type: 'object', additionalProperties: false, required: ['code', 'country', 'year', 'months', 'total'], properties: { code: { type: 'string' }, country: { type: 'string' }, year: { type: 'integer' }, months: { type: 'array', items: month }, total: month } } },
    },
    async handler({ params, principal }, http) {
      const record = await ctx.repository('payroll.calendars').get(params.id, { actor: principal });
      const calendar = new ProductionCalendar(record as unknown as CalendarData);
      const months = Array.from({ length: 12 }, (_, i) => {
        const period = `${calendar.year}-${String(i + 1).padStart(2, '0')}`;
        const n40 = calendar.monthNorm(period, 40);
        return { month: period, days: n40.days, hours40: n40.hours, hours36: calendar.monthNorm(period, 36).hours, hours24: calendar.monthNorm(period, 24).hours };
      });
      const sum = (k: 'hours40' | 'hours36' | 'hours24') => plain(months.reduce((s, m) => s.plus(dec(m[k])), dec(0)));
      http.body = { code: String(record.code), country: calendar.country, year: calendar.year, months, total: { month: String(calendar.year), days: months.reduce((s, m) => s + m.days, 0), hours40: sum('hours40'), hours36: sum('hours36'), hours24: sum('hours24') } };
    },
  }));
}
