import { KubikiError, defineRoute, entityRecord, idParams, type PluginContext } from 'kubiki/plugin';
import type { CountLineInput } from '../counts.ts';
import { lotRef, nonNegativeQuantity, serials, uuid } from '../schemas.ts';
import { requestIdOf, type Services } from './common.ts';

export function countRoutes(ctx: PluginContext, { counts }: Services): void {
  const count = entityRecord('warehouse.counts');
  const step = (path: string, operationId: string, summary: string, run: (id: string, options: { actor: Parameters<typeof counts.start>[1]['actor']; requestId?: string }) => Promise<unknown>, description?: string) =>
    ctx.route(defineRoute<{ id: string }>({
      method: 'post', path: `/counts/:id/${path}`, operationId, summary, ...(description ? { description } : {}),
      permission: 'warehouse.counts.count', errors: ['not-found', 'warehouse.count-state'],
      schemas: { params: idParams, responses: { 200: count } },
      async handler({ params, principal }, http) {
        http.body = await run(params.id, { actor: principal, requestId: requestIdOf(http) });
      },
    }));
  step('start', 'startCount', 'Start counting: freeze the expected quantities', (id, o) => counts.start(id, o),
    'Every product × location × lot with stock under the counted location gets a line with its on-hand quantity as expected. Moves posted during the count are shown in the review and are not undone by the adjustments.');
  step('submit', 'submitCount', 'Submit the counted quantities for approval', (id, o) => counts.submit(id, o),
    'Every line must be counted. The count goes to review; the warehouse.count-approval workflow asks a stock-manager to approve (adjustments are posted) or reject (back to counting).');
  step('cancel', 'cancelCount', 'Cancel a count that is not posted', (id, o) => counts.cancel(id, o));

  ctx.route(defineRoute<{ id: string }, unknown, { lines: CountLineInput[] }>({
    method: 'post', path: '/counts/:id/lines', operationId: 'enterCountLines', summary: 'Enter counted quantities',
    description: 'Each line names the product, location (default the counted one), lot and counted quantity (serial-tracked products: the serials found). A product × location × lot not on the sheet is added, expecting zero.',
    permission: 'warehouse.counts.count', errors: ['not-found', 'reference-not-found', 'warehouse.count-state'],
    schemas: {
      params: idParams,
      body: {
        type: 'object', additionalProperties: false, required: ['lines'],
        properties: {
          lines: {
            type: 'array', minItems: 1, maxItems: 1000,
            items: { type: 'object', additionalProperties: false, required: ['product', 'counted'], properties: { product: uuid('A base.products id'), location: uuid('Default: the counted location'), lot: lotRef, counted: nonNegativeQuantity, serials, note: { type: 'string', maxLength: 1000 } } },
          },
        },
      },
      responses: { 200: { type: 'object', required: ['data'], additionalProperties: false, properties: { data: { type: 'array', items: entityRecord('warehouse.countLines') } } } },
    },
    async handler({ params, body, principal }, http) {
      http.body = { data: await counts.enter(params.id, body.lines, { actor: principal, requestId: requestIdOf(http) }) };
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'get', path: '/counts/:id/review', operationId: 'reviewCount', summary: 'The count sheet with differences, moves during the count and their value',
    permission: 'warehouse.counts.read', errors: ['not-found'],
    schemas: {
      params: idParams,
      responses: { 200: { type: 'object', required: ['count', 'lines'], additionalProperties: false, properties: { count, lines: { type: 'array', items: { type: 'object' } } } } },
    },
    async handler({ params }, http) {
      http.body = await counts.review(params.id);
    },
  }));

  // Lines are written by the count's own routes; a count is deleted only as a draft.
  for (const method of ['patch', 'delete'] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method, path: '/countLines/:id', operationId: method === 'patch' ? 'updateCountLine' : 'deleteCountLine',
      summary: 'Refused: count lines are entered with POST /counts/{id}/lines (409)',
      permission: 'warehouse.countLines.read', errors: ['warehouse.count-state'],
      schemas: { params: idParams, ...(method === 'patch' ? { body: { type: 'object', additionalProperties: true, description: 'Any body: the answer is 409' } } : {}), responses: { 409: { description: 'Always' } } },
      handler() {
        throw ctx.error('count-state', 'count lines are entered with POST /api/warehouse/counts/{id}/lines and never deleted', { issues: [{ field: 'id', rule: 'count-route', message: 'use the count\'s lines route' }] });
      },
    }));
  }
  ctx.route(defineRoute<{ id: string }>({
    method: 'delete', path: '/counts/:id', operationId: 'deleteCount', summary: 'Delete a draft count (others are cancelled instead)',
    permission: 'warehouse.counts.delete', errors: ['not-found', 'warehouse.count-state'],
    schemas: { params: idParams, responses: { 204: { description: 'Deleted' } } },
    async handler({ params, principal }, http) {
      const row = await ctx.table('warehouse_counts').where({ id: params.id }).first('status');
      if (row && row.status !== 'draft') throw ctx.error('count-state', `the count is ${row.status}; only a draft is deleted (cancel it instead)`, { issues: [{ field: 'status', rule: 'draft', message: `the count is ${row.status}` }] });
      await ctx.repository('warehouse.counts').delete(params.id, { actor: principal, requestId: requestIdOf(http) });
      http.status = 204;
    },
  }));
  void KubikiError;
}
