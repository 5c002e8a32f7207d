import { writeAudit } from '../audit/audit-trail.ts';
import type { JsonSchema } from '../entities/entity-definition.ts';
import { KubikiError } from '../errors.ts';
import { defineRoute, type RouteSpec } from '../http/route-contract.ts';
import { stateOf } from '../http/request-context.ts';
import { optionalBody } from '../http/routes/versioned-routes.ts';
import { limit, noContent, nullable, timestamp, uuid, uuidParams } from '../http/schemas/common.ts';
import { DELIVERY_STATUSES, type DeliveryStatus } from './delivery-queue.ts';
import { EVENT_PATTERN } from './event-patterns.ts';
import { SECRET_PATTERN } from './signing.ts';
import type { WebhookService } from './webhook-service.ts';

// /api/webhooks: subscriptions, secret rotation, the delivery log and replays.
// core.webhooks.read lists and reads; core.webhooks.manage changes (every change is audited).

const READ = 'core.webhooks.read';
const MANAGE = 'core.webhooks.manage';
const MAX_REPLAY = 1000;

const eventTypes: JsonSchema = {
  type: 'array', minItems: 1, maxItems: 50,
  items: { type: 'string', pattern: EVENT_PATTERN, maxLength: 200 },
  description: 'Event types (crm.deals.updated) or patterns: "*" is one segment (crm.*.created), a trailing "*" the rest (finance.* — every finance event; * — every event)',
};
const url: JsonSchema = { type: 'string', minLength: 8, maxLength: 2000, description: 'http(s) URL on a host of KUBIKI_WORKFLOW_HTTP_ALLOW' };
const secret: JsonSchema = { type: 'string', pattern: SECRET_PATTERN, description: 'whsec_ + base64 of 24–64 random bytes (Standard Webhooks); generated when left out' };

const webhookProperties: JsonSchema = {
  id: uuid, url: { type: 'string' }, eventTypes: { type: 'array', items: { type: 'string' } }, description: { type: 'string' },
  active: { type: 'boolean', description: 'false: no new deliveries are made and open ones wait' },
  disabledReason: { ...nullable({ type: 'string' }), description: 'Why Kubiki switched it off (the endpoint answered 410 Gone)' },
  disabledAt: nullable(timestamp),
  previousSecretExpiresAt: { ...nullable(timestamp), description: 'While a rotation overlaps: the previous secret signs too until then' },
  secretRotatedAt: nullable(timestamp),
  createdAt: timestamp, updatedAt: timestamp,
};
const webhookRequired = Object.keys(webhookProperties);
const webhook: JsonSchema = { type: 'object', additionalProperties: false, required: webhookRequired, properties: webhookProperties };
const withSecret: JsonSchema = {
  type: 'object', additionalProperties: false, required: [...webhookRequired, 'secret'],
  properties: { ...webhookProperties, secret: { type: 'string', pattern: '^whsec_', description: 'The signing secret: shown only in this answer' } },
};

const deliveryProperties: JsonSchema = {
  id: uuid, webhookId: uuid,
  messageId: { type: 'string', description: 'The webhook-id header: the same on every attempt and replay' },
  eventId: { type: 'integer', description: 'The outbox event' }, eventType: { type: 'string' }, entity: { type: 'string' }, recordId: { type: 'string' },
  status: { enum: DELIVERY_STATUSES, description: 'pending (nextAttemptAt), sending, delivered, failed (every attempt failed)' },
  attempts: { type: 'integer', minimum: 0 },
  nextAttemptAt: nullable(timestamp), lastStatus: { ...nullable({ type: 'integer' }), description: 'HTTP status of the last attempt (null: no answer)' },
  lastError: nullable({ type: 'string' }), replayOf: { ...nullable(uuid), description: 'The delivery this one replays' },
  createdAt: timestamp, deliveredAt: nullable(timestamp),
};
const deliveryRequired = Object.keys(deliveryProperties);
const delivery: JsonSchema = { type: 'object', additionalProperties: false, required: deliveryRequired, properties: deliveryProperties };
const attempt: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['attempt', 'at', 'status', 'durationMs', 'error', 'response'],
  properties: {
    attempt: { type: 'integer', minimum: 1 }, at: timestamp, status: nullable({ type: 'integer' }), durationMs: { type: 'integer', minimum: 0 },
    error: nullable({ type: 'string' }), response: { ...nullable({ type: 'string' }), description: 'The first KiB of the answer' },
  },
};
const deliveryDetail: JsonSchema = {
  type: 'object', additionalProperties: false, required: [...deliveryRequired, 'payload', 'attemptLog'],
  properties: { ...deliveryProperties, payload: { type: 'object', description: 'The body sent: {type, timestamp, data: {entity, id, eventId, changes, by}}' }, attemptLog: { type: 'array', items: attempt } },
};

const webhookParams = uuidParams('id', 'A webhook subscription id (UUID)');
/** A GET without parameters: unknown ones are refused. */
const noQuery: JsonSchema = { type: 'object', properties: {} };
const deliveryParams: JsonSchema = {
  type: 'object', required: ['id', 'deliveryId'],
  properties: { id: { ...uuid, description: 'A webhook subscription id (UUID)' }, deliveryId: { ...uuid, description: 'A delivery id (UUID)' } },
};

interface CreateBody { url: string; eventTypes: string[]; description?: string | null; active?: boolean; secret?: string | null }
interface PatchBody { url?: string; eventTypes?: string[]; description?: string | null; active?: boolean }
interface RotateBody { overlapSeconds?: number; secret?: string | null }
interface DeliveriesQuery { status?: DeliveryStatus; eventType?: string; recordId?: string; limit: number; cursor?: string }
interface ReplayBody { deliveryIds?: string[]; status?: 'delivered' | 'failed'; since?: string; until?: string }

export function webhookRoutes(webhooks: WebhookService): RouteSpec<unknown, unknown, unknown>[] {
  const { store, queue } = webhooks;
  const { db } = webhooks;
  return [
    defineRoute({
      method: 'get', path: '/api/webhooks', operationId: 'listWebhooks', summary: 'Outgoing webhook subscriptions (never their secrets)', permission: READ,
      schemas: { query: noQuery, responses: { 200: { type: 'object', additionalProperties: false, required: ['data', 'next'], properties: { data: { type: 'array', items: webhook }, next: { type: 'null' } } } } },
      async handler(_input, http) {
        http.body = { data: await store.list(), next: null };
      },
    }),
    defineRoute<unknown, unknown, CreateBody>({
      method: 'post', path: '/api/webhooks', operationId: 'createWebhook', permission: MANAGE,
      summary: 'Subscribe a URL to events; the answer shows the signing secret, once',
      description: 'Messages are signed per Standard Webhooks (webhook-id, webhook-timestamp, webhook-signature: v1,<base64 HMAC-SHA256 of "id.timestamp.body">). '
        + 'The host must be on KUBIKI_WORKFLOW_HTTP_ALLOW (403 http-not-allowed otherwise). The secret is stored encrypted and never shown again; rotate it to get a new one.',
      errors: ['http-not-allowed'],
      schemas: {
        body: {
          type: 'object', required: ['url', 'eventTypes'],
          properties: { url, eventTypes, description: nullable({ type: 'string', maxLength: 500 }), active: { type: 'boolean', default: true }, secret: nullable(secret) },
        },
        responses: { 201: { description: 'The subscription with its secret (shown only now)', schema: withSecret, headers: { Location: 'The subscription: /api/webhooks/{id}' } } },
      },
      async handler({ body, principal }, http) {
        const { webhook: made, secret: plain } = await store.create(principal, body, stateOf(http).requestId);
        await webhooks.reload();
        http.status = 201;
        http.set('Location', `/api/webhooks/${made.id}`);
        http.body = { ...made, secret: plain };
      },
    }),
    defineRoute<{ id: string }>({
      method: 'get', path: '/api/webhooks/:id', operationId: 'getWebhook', summary: 'One subscription', permission: READ, errors: ['not-found'],
      schemas: { params: webhookParams, query: noQuery, responses: { 200: webhook } },
      async handler({ params }, http) {
        http.body = await store.get(params.id);
      },
    }),
    defineRoute<{ id: string }, unknown, PatchBody>({
      method: 'patch', path: '/api/webhooks/:id', operationId: 'updateWebhook', permission: MANAGE,
      summary: 'Change URL, event types, description; active: true switches a subscription on again (also one disabled by a 410)',
      errors: ['not-found', 'http-not-allowed'],
      schemas: {
        params: webhookParams,
        body: { type: 'object', minProperties: 1, properties: { url, eventTypes, description: nullable({ type: 'string', maxLength: 500 }), active: { type: 'boolean' } } },
        responses: { 200: webhook },
      },
      async handler({ params, body, principal }, http) {
        http.body = await store.update(principal, params.id, body, stateOf(http).requestId);
        await webhooks.reload();
        // Switched on again: what waited goes out now.
        if (body.active) webhooks.kick();
      },
    }),
    defineRoute<{ id: string }>({
      method: 'delete', path: '/api/webhooks/:id', operationId: 'deleteWebhook', summary: 'Delete a subscription with its delivery log', permission: MANAGE, errors: ['not-found'],
      schemas: { params: webhookParams, responses: { 204: noContent } },
      async handler({ params, principal }, http) {
        await store.remove(principal, params.id, stateOf(http).requestId);
        await webhooks.reload();
        http.status = 204;
      },
    }),
    defineRoute<{ id: string }, unknown, RotateBody | undefined>({
      method: 'post', path: '/api/webhooks/:id/rotate-secret', operationId: 'rotateWebhookSecret', permission: MANAGE,
      summary: 'A new signing secret (shown once); the previous one keeps signing beside it for overlapSeconds',
      description: 'During the overlap every message carries two signatures (webhook-signature: "v1,<new> v1,<previous>"), so a receiver may switch secrets at any moment in it.',
      errors: ['not-found'],
      schemas: {
        params: webhookParams,
        body: optionalBody({
          type: 'object',
          properties: {
            overlapSeconds: { type: 'integer', minimum: 0, maximum: 7 * 86400, default: 86400, description: 'How long the previous secret signs too (default a day; 0: it stops now)' },
            secret: nullable(secret),
          },
        }),
        responses: { 200: { description: 'The subscription with its new secret (shown only now)', schema: withSecret } },
      },
      async handler({ params, body, principal }, http) {
        const { webhook: rotated, secret: plain } = await store.rotate(principal, params.id, { overlapSeconds: body?.overlapSeconds ?? 86400, secret: body?.secret }, stateOf(http).requestId);
        http.body = { ...rotated, secret: plain };
      },
    }),
    defineRoute<{ id: string }, DeliveriesQuery>({
      method: 'get', path: '/api/webhooks/:id/deliveries', operationId: 'listWebhookDeliveries', permission: READ,
      summary: 'The delivery log of a subscription, newest first', errors: ['not-found'],
      schemas: {
        params: webhookParams,
        query: {
          type: 'object',
          properties: {
            status: { enum: DELIVERY_STATUSES }, eventType: { type: 'string', maxLength: 200 }, recordId: { type: 'string', maxLength: 100 },
            limit: limit(500, 50), cursor: { ...uuid, description: 'The next of the previous page' },
          },
        },
        responses: { 200: { type: 'object', additionalProperties: false, required: ['data', 'next'], properties: { data: { type: 'array', items: delivery }, next: { ...nullable(uuid), description: 'Cursor of the next page' } } } },
      },
      async handler({ params, query }, http) {
        await store.get(params.id);
        http.body = await queue.list(params.id, { status: query.status, eventType: query.eventType, recordId: query.recordId, before: query.cursor, limit: query.limit });
      },
    }),
    defineRoute<{ id: string; deliveryId: string }>({
      method: 'get', path: '/api/webhooks/:id/deliveries/:deliveryId', operationId: 'getWebhookDelivery', permission: READ,
      summary: 'One delivery: the body sent and every attempt (status, time, error, the first KiB of the answer)', errors: ['not-found'],
      schemas: { params: deliveryParams, query: noQuery, responses: { 200: deliveryDetail } },
      async handler({ params }, http) {
        const { attempts_, ...rest } = await queue.get(params.id, params.deliveryId);
        http.body = { ...rest, attemptLog: attempts_ };
      },
    }),
    defineRoute<{ id: string; deliveryId: string }>({
      method: 'post', path: '/api/webhooks/:id/deliveries/:deliveryId/replay', operationId: 'replayWebhookDelivery', permission: MANAGE,
      summary: 'Send a delivered or failed delivery again (a new delivery, same webhook-id and body)',
      description: '409 conflict while the delivery is still pending or sending (it goes out anyway).',
      errors: ['not-found', 'conflict'],
      schemas: { params: deliveryParams, responses: { 202: { description: 'The new delivery, pending', schema: delivery } } },
      async handler({ params, principal }, http) {
        const made = await db.knex.transaction(async (trx) => {
          const status = await queue.status(params.id, params.deliveryId, trx);
          if (!status) throw new KubikiError('not-found', `webhook subscription ${params.id} has no delivery ${params.deliveryId}`, { extra: { id: params.deliveryId } });
          if (status === 'pending' || status === 'sending') throw new KubikiError('conflict', `delivery ${params.deliveryId} is ${status}: it is going out anyway`);
          const [replayed] = await queue.replay(trx, params.id, { ids: [params.deliveryId], limit: 1 }, webhooks.clock.now());
          await writeAudit(db, trx, { actor: principal, action: 'replayed', plugin: 'core', entity: 'webhooks', recordId: params.id, changes: { deliveries: { before: [params.deliveryId], after: [replayed.id] } }, requestId: stateOf(http).requestId });
          return replayed;
        });
        webhooks.kick();
        http.status = 202;
        http.body = made;
      },
    }),
    defineRoute<{ id: string }, unknown, ReplayBody>({
      method: 'post', path: '/api/webhooks/:id/replay', operationId: 'replayWebhookDeliveries', permission: MANAGE,
      summary: `Send many finished deliveries again: by id, and/or by status and creation time (at most ${MAX_REPLAY} a call, oldest events first)`,
      description: 'Each becomes a new pending delivery with the same webhook-id and body; open deliveries are left alone. Give deliveryIds, or since (with until and status if you like).',
      errors: ['not-found'],
      schemas: {
        params: webhookParams,
        body: {
          type: 'object', minProperties: 1,
          anyOf: [{ required: ['deliveryIds'] }, { required: ['since'] }],
          properties: {
            deliveryIds: { type: 'array', minItems: 1, maxItems: MAX_REPLAY, items: uuid },
            status: { enum: ['delivered', 'failed'] },
            since: { ...timestamp, description: 'Deliveries created at or after' }, until: { ...timestamp, description: 'Deliveries created before' },
          },
        },
        responses: {
          202: {
            description: 'The new deliveries, pending',
            schema: { type: 'object', additionalProperties: false, required: ['replayed', 'data'], properties: { replayed: { type: 'integer', minimum: 0 }, data: { type: 'array', items: delivery } } },
          },
        },
      },
      async handler({ params, body, principal }, http) {
        await store.get(params.id);
        const made = await db.knex.transaction(async (trx) => {
          const replayed = await queue.replay(trx, params.id, { ids: body.deliveryIds, status: body.status, since: body.since, until: body.until, limit: MAX_REPLAY }, webhooks.clock.now());
          if (replayed.length) {
            await writeAudit(db, trx, { actor: principal, action: 'replayed', plugin: 'core', entity: 'webhooks', recordId: params.id, changes: { deliveries: { before: replayed.map((r) => r.replayOf), after: replayed.map((r) => r.id) } }, requestId: stateOf(http).requestId });
          }
          return replayed;
        });
        if (made.length) webhooks.kick();
        http.status = 202;
        http.body = { replayed: made.length, data: made };
      },
    }),
  ];
}
