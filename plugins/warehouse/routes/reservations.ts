import { KubikiError, defineRoute, idParams, type PluginContext } from 'kubiki/plugin';
import type { ReserveInput } from '../stock-service.ts';
import { quantity, reservationRecord, reserveInput } from '../schemas.ts';
import { requestIdOf, type Services } from './common.ts';

const MAX_BATCH = 500;

export function reservationRoutes(ctx: PluginContext, { stock }: Services): void {
  const reservedAnswer = { description: 'The reservation', schema: reservationRecord, headers: { Location: '/api/warehouse/reservations/{id}' } };
  ctx.route(defineRoute<unknown, unknown, ReserveInput>({
    method: 'post', path: '/reservations', operationId: 'reserve', summary: 'Reserve stock for a demand line',
    description: 'Holds quantity of the product in the location (or the warehouse\'s root location) — stock anywhere under it counts — against a demand line (entity, id, line). '
      + 'Beyond what is available (on hand − reserved, in the location and every location above it) it is refused with 409 warehouse.insufficient-stock, '
      + 'or, where the warehouse\'s reservationPolicy is backorder, holds what is available and back-orders the rest. '
      + 'Concurrent reservations of a product lock its balance rows in that warehouse only: other products never wait. '
      + 'A demand line that already has an active reservation answers it (200) and reserves nothing more.',
    permission: 'warehouse.reservations.reserve', errors: ['reference-not-found', 'warehouse.insufficient-stock', 'unique-violation'],
    schemas: { body: reserveInput, responses: { 201: reservedAnswer, 200: { ...reservedAnswer, description: 'The demand line\'s active reservation, made before' } } },
    async handler({ body, principal }, http) {
      const [{ record, created }] = await stock.reserve([body], { actor: principal, requestId: requestIdOf(http) });
      http.status = created ? 201 : 200;
      http.set('Location', `/api/warehouse/reservations/${record.id}`);
      http.body = record;
    },
  }));

  ctx.route(defineRoute<unknown, unknown, { reservations: ReserveInput[] }>({
    method: 'post', path: '/reservations/batch', operationId: 'reserveMany', summary: `Reserve up to ${MAX_BATCH} demand lines in one transaction (all or none)`,
    description: 'As POST /reservations for each line, in order (a later line sees what earlier ones reserved); an error names the line (reservations.2.quantity).',
    permission: 'warehouse.reservations.reserve', errors: ['reference-not-found', 'warehouse.insufficient-stock', 'unique-violation'],
    schemas: {
      body: { type: 'object', additionalProperties: false, required: ['reservations'], properties: { reservations: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: reserveInput } } },
      responses: { 201: { type: 'object', required: ['data'], additionalProperties: false, properties: { data: { type: 'array', items: { type: 'object', required: ['reservation', 'created'], additionalProperties: false, properties: { reservation: reservationRecord, created: { type: 'boolean' } } } } } } },
    },
    async handler({ body, principal }, http) {
      const results = await stock.reserve(body.reservations, { actor: principal, requestId: requestIdOf(http), prefix: 'reservations.', batch: true });
      http.status = 201;
      http.body = { data: results.map((r) => ({ reservation: r.record, created: r.created })) };
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, { quantity?: string }>({
    method: 'post', path: '/reservations/:id/release', operationId: 'releaseReservation', summary: 'Give back what a reservation holds (all, or quantity)',
    description: 'Releasing all of it also drops its back-order and closes it (status released).',
    permission: 'warehouse.reservations.reserve', errors: ['not-found', 'warehouse.reservation-closed'],
    schemas: { params: idParams, body: { type: 'object', additionalProperties: false, properties: { quantity: quantity('Quantity to give back; default all it holds') } }, responses: { 200: reservationRecord } },
    async handler({ params, body, principal }, http) {
      http.body = await stock.release(params.id, body, { actor: principal, requestId: requestIdOf(http) });
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/reservations/:id/fill', operationId: 'fillReservation', summary: 'Reserve what has become available of a back-order',
    permission: 'warehouse.reservations.reserve', errors: ['not-found', 'warehouse.reservation-closed'],
    schemas: { params: idParams, responses: { 200: reservationRecord } },
    async handler({ params, principal }, http) {
      http.body = await stock.fill(params.id, { actor: principal, requestId: requestIdOf(http) });
    },
  }));

  for (const method of ['patch', 'delete'] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method, path: '/reservations/:id', operationId: method === 'patch' ? 'updateReservation' : 'deleteReservation',
      summary: 'Refused: reservations change only by release, fill and shipments (409)',
      permission: 'warehouse.reservations.read', errors: ['conflict'],
      schemas: { params: idParams, ...(method === 'patch' ? { body: { type: 'object', additionalProperties: true, description: 'Any body: the answer is 409' } } : {}), responses: { 409: { description: 'Always' } } },
      handler({ params }) {
        throw new KubikiError('conflict', `reservation ${params.id} is not edited: release it (POST /api/warehouse/reservations/{id}/release) or ship against it`, { issues: [{ field: 'id', rule: 'immutable', message: 'reservations change through release, fill and shipments' }] });
      },
    }));
  }
}
