import { defineRoute, entityRecord, idParams, optionalBody, type PluginContext } from 'kubiki/plugin';
import type { ShipmentInput } from '../orders/selling.ts';
import type { OrderServices } from '../orders/setup.ts';
import { date, lotRef, quantity, serials, uuid } from '../schemas.ts';
import { requestIdOf } from './common.ts';

type ErrorCodes = NonNullable<Parameters<typeof defineRoute>[0]['errors']>;

export function sellingRoutes(ctx: PluginContext, { selling }: OrderServices): void {
  const order = entityRecord('warehouse.salesOrders');
  const shipment = entityRecord('warehouse.shipments');
  for (const [name, summary, description, errors] of [
    ['confirm', 'Confirm a draft and reserve its stock, numbered SO-<year>-NNNNNN',
      'The confirm transition of warehouse.sales-order-lifecycle: one reservation per stock line at the warehouse. Not enough available: 409 warehouse.insufficient-stock naming lines.N.quantity and nothing changes, or, where the warehouse\'s reservationPolicy is backorder, what is available is held and the rest back-ordered.',
      ['warehouse.insufficient-stock']],
    ['cancel', 'Cancel an order with nothing shipped: its reservations are released',
      'Refused (409 warehouse.order-state) once anything was shipped or while a shipment is being picked or packed.', ['warehouse.order-state']],
  ] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method: 'post', path: `/salesOrders/:id/${name}`, operationId: `${name}SalesOrder`, summary, description,
      permission: 'warehouse.salesOrders.confirm', errors: ['not-found', 'transition-not-allowed', ...errors],
      schemas: { params: idParams, responses: { 200: order } },
      async handler({ params, principal }, http) {
        http.body = (await ctx.transition('warehouse.salesOrders', params.id, name, { actor: principal, requestId: requestIdOf(http) })).record;
      },
    }));
  }

  ctx.route(defineRoute<{ id: string }, unknown, ShipmentInput | undefined>({
    method: 'post', path: '/salesOrders/:id/shipments', operationId: 'makeShipment', summary: 'Make a shipment of a confirmed order (status picking)',
    description: 'Without `lines`: every stock line with what is left to ship (ordered − shipped − in shipments being picked or packed). Each line may name its pick location (default the warehouse\'s root location), lot and serials. '
      + 'More than is left: 409 warehouse.over-shipment naming lines.N.quantity. Weight and volume come from the products\' stock settings.',
    permission: 'warehouse.shipments.create', errors: ['not-found', 'validation-failed', 'warehouse.order-state', 'warehouse.over-shipment'],
    schemas: {
      params: idParams,
      body: optionalBody({
        type: 'object',
        properties: {
          lines: {
            type: 'array', minItems: 1, maxItems: 1000,
            items: {
              type: 'object', additionalProperties: false, required: ['line', 'quantity'],
              properties: { line: { type: 'integer', minimum: 0, description: 'The order line (position, from 0)' }, quantity: quantity('To ship, in the stock unit'), location: uuid('Pick location: an internal location of the order\'s warehouse'), lot: lotRef, serials },
            },
          },
          deliveryAddress: { type: 'string', maxLength: 1000, description: 'Default: the order\'s' },
          notes: { type: 'string', maxLength: 5000 },
        },
      }),
      responses: { 201: { description: 'The shipment', schema: shipment, headers: { Location: '/api/warehouse/shipments/{id}' } } },
    },
    async handler({ params, body, principal }, http) {
      const made = await selling.makeShipment(params.id, body ?? {}, { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', `/api/warehouse/shipments/${made.id}`);
      http.body = made;
    },
  }));

  const shipmentStep = (name: 'pack' | 'ship' | 'cancel', summary: string, input: Record<string, unknown> | undefined, errors: ErrorCodes) =>
    ctx.route(defineRoute<{ id: string }, unknown, Record<string, unknown> | undefined>({
      method: 'post', path: `/shipments/:id/${name}`, operationId: `${name}Shipment`, summary,
      description: `The ${name} transition of warehouse.shipment-lifecycle.`,
      permission: 'warehouse.shipments.ship', errors: ['not-found', 'transition-not-allowed', ...errors],
      schemas: { params: idParams, ...(input ? { body: optionalBody({ type: 'object', properties: input }) } : {}), responses: { 200: shipment } },
      async handler({ params, body, principal }, http) {
        http.body = (await ctx.transition('warehouse.shipments', params.id, name, { actor: principal, ...(input ? { input: body ?? {} } : {}), requestId: requestIdOf(http) })).record;
      },
    }));
  shipmentStep('pack', 'Packed: picking → packed', { packages: { type: 'integer', minimum: 1, maximum: 100000, description: 'Number of packages' } }, []);
  shipmentStep('ship', 'Ship a packed shipment: posts its moves, consuming the order\'s reservations', { date: date('Shipping date (default today)') },
    ['warehouse.insufficient-stock', 'warehouse.period-closed', 'warehouse.serial-not-found']);
  shipmentStep('cancel', 'Cancel a shipment not yet shipped: its quantities are free to ship again', undefined, []);
}
