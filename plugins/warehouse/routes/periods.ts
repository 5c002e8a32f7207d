import { KubikiError, defineRoute, entityRecord, idParams, type PluginContext } from 'kubiki/plugin';
import { date } from '../schemas.ts';
import { requestIdOf, type Services } from './common.ts';

export function periodRoutes(ctx: PluginContext, { periods }: Services): void {
  const period = entityRecord('warehouse.periods');
  ctx.route(defineRoute<unknown, unknown, { date: string; name?: string }>({
    method: 'post', path: '/periods', operationId: 'closePeriod', summary: 'Close the stock period ending on date',
    description: 'Stores quantity and value per product × location × lot and each product\'s cost state on that date (from the previous period and the moves since). '
      + 'Afterwards nothing is posted on or before the date (409 warehouse.period-closed), reports as of later dates start from the snapshot, '
      + 'and a back-dated move recomputes costs from it. The date must be in the past and after the last closed period.',
    permission: 'warehouse.periods.close', errors: ['conflict'],
    schemas: {
      body: { type: 'object', additionalProperties: false, required: ['date'], properties: { date: date('Last day of the period'), name: { type: 'string', maxLength: 200 } } },
      responses: { 201: { description: 'The closed period', schema: period, headers: { Location: '/api/warehouse/periods/{id}' } } },
    },
    async handler({ body, principal }, http) {
      const record = await periods.close(body, { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', `/api/warehouse/periods/${record.id}`);
      http.body = record;
    },
  }));
  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/periods/:id/close', operationId: 'closeReopenedPeriod', summary: 'Close a reopened period again (a new snapshot)',
    permission: 'warehouse.periods.close', errors: ['not-found', 'conflict'],
    schemas: { params: idParams, responses: { 200: period } },
    async handler({ params, principal }, http) {
      const row = await ctx.table('warehouse_periods').where({ id: params.id }).first('date', 'status', 'name');
      if (!row) throw new KubikiError('not-found', `warehouse.periods ${params.id} does not exist`, { extra: { entity: 'warehouse.periods', id: params.id } });
      if (row.status === 'closed') throw new KubikiError('conflict', 'the period is closed already', { issues: [{ field: 'id', rule: 'open', message: 'the period is closed' }] });
      http.body = await periods.close({ date: String(row.date).slice(0, 10), ...(row.name ? { name: row.name } : {}) }, { actor: principal, requestId: requestIdOf(http) });
    },
  }));
  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/periods/:id/reopen', operationId: 'reopenPeriod', summary: 'Reopen the last closed period (its snapshot goes)',
    permission: 'warehouse.periods.close', errors: ['not-found', 'conflict'],
    schemas: { params: idParams, responses: { 200: period } },
    async handler({ params, principal }, http) {
      http.body = await periods.reopen(params.id, { actor: principal, requestId: requestIdOf(http) });
    },
  }));
  for (const method of ['patch', 'delete'] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method, path: '/periods/:id', operationId: method === 'patch' ? 'updatePeriod' : 'deletePeriod',
      summary: 'Refused: periods change only by close and reopen (409)',
      permission: 'warehouse.periods.read', errors: ['conflict'],
      schemas: { params: idParams, ...(method === 'patch' ? { body: { type: 'object', additionalProperties: true, description: 'Any body: the answer is 409' } } : {}), responses: { 409: { description: 'Always' } } },
      handler({ params }) {
        throw new KubikiError('conflict', `stock period ${params.id} changes only through POST /api/warehouse/periods/{id}/reopen and …/close`, { issues: [{ field: 'id', rule: 'immutable', message: 'use close and reopen' }] });
      },
    }));
  }
}
