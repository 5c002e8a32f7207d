import type { JsonSchema } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { MAX_BODY_BYTES, type NotificationChannel, type NotificationStatus } from '../../notifications/notification-service.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { limit, timestamp, uuid, uuidParams } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';

const CHANNELS: NotificationChannel[] = ['email', 'sms'];
const STATUSES: NotificationStatus[] = ['queued', 'sent', 'failed', 'held'];

const summaryProperties: JsonSchema = {
  id: uuid,
  channel: { enum: CHANNELS },
  to: { type: 'string', description: 'An email address or an E.164 phone number' },
  subject: { type: ['string', 'null'] },
  attachments: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['documentId'], properties: { documentId: uuid } } },
  idempotencyKey: { type: 'string' },
  status: { enum: STATUSES, description: 'held: the channel has no transport configured; retry once it has' },
  attempts: { type: 'integer', minimum: 0 },
  lastError: { type: ['string', 'null'] },
  providerMessageId: { type: ['string', 'null'] },
  createdBy: { type: 'string', description: 'Username of the sender' },
  createdAt: timestamp,
  sentAt: { type: ['string', 'null'], format: 'date-time' },
};
const summaryRequired = ['id', 'channel', 'to', 'subject', 'attachments', 'idempotencyKey', 'status', 'attempts', 'lastError', 'providerMessageId', 'createdBy', 'createdAt', 'sentAt'];

/** A notification as listed: without its body. */
const notificationSummary: JsonSchema = { type: 'object', additionalProperties: false, required: summaryRequired, properties: summaryProperties };
/** One notification: with its body. */
const notification: JsonSchema = {
  type: 'object', additionalProperties: false, required: [...summaryRequired, 'body'],
  properties: { ...summaryProperties, body: { type: 'string' } },
};

interface ListQuery { status?: NotificationStatus; channel?: NotificationChannel; limit: number }
interface SendBody { channel: NotificationChannel; to: string; subject?: string | null; body: string; attachments?: { documentId: string }[] | null; idempotencyKey: string }

/** Notifications: the viewable outbox, sending (idempotent by key) and retrying failed ones. */
export function notificationRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  const { notifications } = k;
  const sent = (description: string) => ({ description, schema: notification, headers: { Location: 'The notification: /api/notifications/{id}' } });
  return [
    defineRoute<unknown, ListQuery>({
      method: 'get', path: '/api/notifications', operationId: 'listNotifications', summary: 'The notification outbox, newest first (without bodies)', permission: 'core.notifications.read',
      schemas: {
        query: { type: 'object', properties: { status: { enum: STATUSES }, channel: { enum: CHANNELS }, limit: limit(500, 50) } },
        responses: {
          200: {
            type: 'object', additionalProperties: false, required: ['data', 'next'],
            properties: { data: { type: 'array', items: notificationSummary }, next: { type: 'null', description: 'Always null: the newest `limit` notifications' } },
          },
        },
      },
      async handler({ query, principal }, http) {
        http.body = { data: await notifications.list(query, principal), next: null };
      },
    }),
    defineRoute<{ id: string }>({
      method: 'get', path: '/api/notifications/:id', operationId: 'getNotification', summary: 'One notification with its body', permission: 'core.notifications.read',
      errors: ['not-found'],
      schemas: { params: uuidParams('id', 'A notification id (UUID)'), responses: { 200: notification } },
      async handler({ params, principal }, http) {
        http.body = await notifications.get(params.id, principal);
      },
    }),
    defineRoute<unknown, unknown, SendBody>({
      method: 'post', path: '/api/notifications', operationId: 'sendNotification', summary: 'Send an email or SMS; a repeated idempotencyKey returns the first notification',
      description: 'Recorded in the outbox before anything is sent; held there (status held) when the channel has no transport. '
        + 'Sending again with the same idempotencyKey answers 200 with the first notification and sends nothing. '
        + 'An email goes to one address (name@example.com), an SMS to an E.164 number (+79991234567) and has no subject or attachments. '
        + `The body is at most ${MAX_BODY_BYTES} bytes of UTF-8.`,
      permission: 'core.notifications.send',
      errors: ['reference-not-found'],
      schemas: {
        body: {
          type: 'object', required: ['channel', 'to', 'body', 'idempotencyKey'],
          properties: {
            channel: { enum: CHANNELS },
            to: { type: 'string', minLength: 1, maxLength: 254, description: 'email: one address; sms: an E.164 number' },
            subject: { anyOf: [{ type: 'string', maxLength: 998, pattern: '^[^\\r\\n\\u0000]*$' }, { type: 'null' }], description: 'One line; emails only' },
            body: { type: 'string', minLength: 1, maxLength: MAX_BODY_BYTES, description: `Plain text, not blank, at most ${MAX_BODY_BYTES} bytes` },
            attachments: {
              anyOf: [
                { type: 'array', maxItems: 20, items: { type: 'object', additionalProperties: false, required: ['documentId'], properties: { documentId: { ...uuid, description: 'A stored document (GET /api/documents)' } } } },
                { type: 'null' },
              ],
              description: 'Stored documents attached to an email',
            },
            idempotencyKey: { type: 'string', pattern: '^[\\x21-\\x7e]{1,200}$', description: '1–200 printable ASCII characters without spaces' },
          },
        },
        responses: { 201: sent('The notification, sent or held'), 200: sent('The notification sent before with this idempotencyKey') },
      },
      async handler({ body, principal }, http) {
        const { notification: sentOne, created } = await notifications.send(body, principal, stateOf(http).requestId);
        http.status = created ? 201 : 200;
        http.set('Location', `/api/notifications/${sentOne.id}`);
        http.body = sentOne;
      },
    }),
    defineRoute<{ id: string }>({
      method: 'post', path: '/api/notifications/:id/retry', operationId: 'retryNotification', summary: 'Send a failed (or held) notification again',
      description: 'A held notification is sent once its channel has a transport; 409 while it has none, or when the notification is not failed or held.',
      permission: 'core.notifications.send',
      errors: ['not-found', 'conflict'],
      schemas: { params: uuidParams('id', 'A notification id (UUID)'), responses: { 200: notification } },
      async handler({ params, principal }, http) {
        http.body = await notifications.retry(params.id, principal, stateOf(http).requestId);
      },
    }),
  ];
}
