import type { PluginContext } from 'kubiki/plugin';
import { dateParam, listRecords, mayRead, onlyParams } from '../util.ts';

export function taskRoutes(ctx: PluginContext): void {
  // "My day": the caller's open tasks due by the end of the day (overdue first) and the calls
  // logged by them that day. Days are UTC days; ?date=YYYY-MM-DD picks another day.
  ctx.route({
    method: 'get', path: '/my-day', permission: 'crm.tasks.read',
    async handler(http, principal) {
      const query = http.query as Record<string, string | string[] | undefined>;
      onlyParams(query, ['date']);
      const day = dateParam(query, 'date') ?? new Date().toISOString().slice(0, 10);
      const start = new Date(`${day}T00:00:00.000Z`);
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
        date: day,
        overdue: tasks.filter((t) => Date.parse(String(t.dueAt)) < start.getTime()),
        dueToday: tasks.filter((t) => Date.parse(String(t.dueAt)) >= start.getTime()),
        calls,
      };
    },
  });
}
