import { defineRoute, entityRecord, idParams, optionalBody, type PluginContext } from 'kubiki/plugin';
import type { OrderServices } from '../orders/setup.ts';
import { uuid } from '../schemas.ts';
import { requestIdOf } from './common.ts';

const at = { type: 'string', format: 'date-time', description: 'When (default now)' };

export function transportRoutes(ctx: PluginContext, { transport }: OrderServices): void {
  const trip = entityRecord('warehouse.trips');
  const stopParams = {
    type: 'object', required: ['id', 'n'], additionalProperties: false,
    properties: { id: { type: 'string', format: 'uuid', description: 'A trip id' }, n: { type: 'integer', minimum: 1, maximum: 10000, description: 'The stop\'s position, from 1' } },
  };

  ctx.route(defineRoute<{ id: string }, unknown, { shipments: string[] }>({
    method: 'put', path: '/trips/:id/stops', operationId: 'setTripStops', summary: 'Set a planned trip\'s stops: its shipments in delivery order',
    description: 'Each shipment listed is put on the trip (its customer and delivery address become the stop), those dropped are taken off. The load (weight, volume) is summed and checked against the vehicle\'s capacity: '
      + 'above it, 409 warehouse.over-capacity with weight, volume, capacityWeight, capacityVolume. A cancelled shipment, or one on another trip: 409 warehouse.trip-state naming shipments.N. Nothing changes on a refusal.',
    permission: 'warehouse.trips.dispatch', errors: ['not-found', 'reference-not-found', 'warehouse.trip-state', 'warehouse.over-capacity'],
    schemas: {
      params: idParams,
      body: { type: 'object', additionalProperties: false, required: ['shipments'], properties: { shipments: { type: 'array', maxItems: 500, uniqueItems: true, items: uuid('A warehouse.shipments id') } } },
      responses: { 200: trip },
    },
    async handler({ params, body, principal }, http) {
      http.body = await transport.setStops(params.id, body.shipments, { actor: principal, requestId: requestIdOf(http) });
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/trips/:id/depart', operationId: 'departTrip', summary: 'Send a planned trip out',
    description: 'Needs at least one stop and every stop\'s shipment shipped (else 409 warehouse.trip-state naming stops.N).',
    permission: 'warehouse.trips.dispatch', errors: ['not-found', 'warehouse.trip-state'],
    schemas: { params: idParams, responses: { 200: trip } },
    async handler({ params, principal }, http) {
      http.body = await transport.depart(params.id, { actor: principal, requestId: requestIdOf(http) });
    },
  }));

  for (const status of ['delivered', 'failed'] as const) {
    ctx.route(defineRoute<{ id: string; n: number }, unknown, { reason?: string; at?: string } | undefined>({
      method: 'post', path: `/trips/:id/stops/:n/${status}`, operationId: status === 'delivered' ? 'reportStopDelivered' : 'reportStopFailed',
      summary: status === 'delivered' ? 'Report a stop delivered' : 'Report a stop failed, with the reason',
      description: 'Once the trip departed, each stop once; when every stop is reported the trip is completed.',
      permission: 'warehouse.trips.dispatch', errors: ['not-found', 'validation-failed', 'warehouse.trip-state'],
      schemas: {
        params: stopParams,
        body: status === 'failed'
          ? { type: 'object', additionalProperties: false, required: ['reason'], properties: { reason: { type: 'string', minLength: 1, maxLength: 1000, description: 'Why it was not delivered' }, at } }
          : optionalBody({ type: 'object', properties: { at } }),
        responses: { 200: trip },
      },
      async handler({ params, body, principal }, http) {
        http.body = await transport.report(params.id, params.n, { status, ...(body?.reason ? { reason: body.reason } : {}), ...(body?.at ? { at: body.at } : {}) }, { actor: principal, requestId: requestIdOf(http) });
      },
    }));
  }

  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/trips/:id/cancel', operationId: 'cancelTrip', summary: 'Cancel a planned trip: its shipments are free for another',
    permission: 'warehouse.trips.dispatch', errors: ['not-found', 'warehouse.trip-state'],
    schemas: { params: idParams, responses: { 200: trip } },
    async handler({ params, principal }, http) {
      http.body = await transport.cancel(params.id, { actor: principal, requestId: requestIdOf(http) });
    },
  }));
}
