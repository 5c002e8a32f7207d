import { defineRoute, type PluginContext } from 'kubiki/plugin';
import { listRecords, mayRead } from '../util.ts';
import { day, records } from './schemas.ts';

export function taskRoutes(ctx: PluginContext): void {
  // "My day": the caller's open tasks due by the end of the day (overdue first) and the calls
  // logged by them that day. Days are UTC days; ?date=YYYY-MM-DD picks another day.
  ctx.route(defineRoute<unknown, { date?: string }>({
    method: 'get', path: '/my-day', operationId: 'myDay', permission: 'crm.tasks.read',
    summary: 'My day: my open tasks overdue and due that day, and my calls that day',
    description: 'Days are UTC days. Tasks are the caller\'s own (owner) and open; calls are activities of kind call the caller owns, or logged without naming an owner. '
      + 'calls is empty without crm.activities.read.',
    schemas: {
      query: { type: 'object', properties: { date: day('The day (UTC), today when absent') } },
      responses: {
        200: {
          type: 'object', additionalProperties: false, required: ['date', 'overdue', 'dueToday', 'calls'],
          properties: {
            date: day('The day shown'),
            overdue: records('crm.tasks', 'Open tasks due before the day, soonest due first'),
            dueToday: records('crm.tasks', 'Open tasks due during the day, soonest due first'),
            calls: records('crm.activities', 'Calls that day, earliest first'),
          },
        },
      },
    },
    async handler({ query, principal }, http) {
      const date = query.date ?? new Date().toISOString().slice(0, 10);
      const start = new Date(`${date}T00:00:00.000Z`);
      const end = new Date(start.getTime() + 86400_000);
      const me = principal.userId;
      const tasks = me ? await listRecords(ctx, 'crm.tasks', principal, [
        { field: 'owner', op: 'eq', value: me }, { field: 'status', op: 'eq', value: 'open' }, { field: 'dueAt', op: 'lt', value: end.toISOString() },
      ], { sort: [['dueAt', 'asc']], limit: 500 }) : [];
      // Calls the caller made: activities they own, or logged themselves without naming an owner.
      const callsBy = async (field: 'owner' | 'createdBy') => listRecords(ctx, 'crm.activities', principal, [
        { field, op: 'eq', value: me }, { field: 'kind', op: 'eq', value: 'call' },
        { field: 'occurredAt', op: 'gte', value: start.toISOString() }, { field: 'occurredAt', op: 'lt', value: end.toISOString() },
      ], { sort: [['occurredAt', 'asc']], limit: 500 });
      const calls = me && mayRead(principal, 'crm.activities')
        ? [...new Map([...(await callsBy('owner')), ...(await callsBy('createdBy')).filter((a) => a.owner == null || a.owner === me)].map((a) => [a.id, a])).values()]
          .sort((a, b) => String(a.occurredAt).localeCompare(String(b.occurredAt)))
        : [];
      http.body = {
        date,
        overdue: tasks.filter((t) => Date.parse(String(t.dueAt)) < start.getTime()),
        dueToday: tasks.filter((t) => Date.parse(String(t.dueAt)) >= start.getTime()),
        calls,
      };
    },
  }));
}
