import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import { fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { NotificationService } from '../../notifications/notification-service.ts';
import { principalOf, stateOf } from '../request-context.ts';

/** Notifications: the viewable outbox, sending (idempotent by key) and retrying failed ones. */
export function notificationRoutes(router: Router, k: Kubiki): void {
  const { notifications } = k;

  router.get('/api/notifications', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.notifications.read');
    const q = ctx.query;
    for (const key of Object.keys(q)) if (!['status', 'channel', 'limit'].includes(key)) throw fieldError('bad-query', key, 'unknown-parameter', `unknown parameter ${key} (status, channel, limit)`);
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw fieldError('bad-query', 'limit', 'range', 'limit must be an integer from 1 to 500');
    const status = NotificationService.parseStatus(q.status);
    const channel = NotificationService.parseChannel(q.channel);
    ctx.body = { data: await notifications.list({ status, channel, limit }, principal), next: null };
  });

  router.get('/api/notifications/:id', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.notifications.read');
    ctx.body = await notifications.get(ctx.params.id, principal);
  });

  router.post('/api/notifications', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.notifications.send');
    const { notification, created } = await notifications.send(stateOf(ctx).body, principal, stateOf(ctx).requestId);
    ctx.status = created ? 201 : 200;
    ctx.set('Location', `/api/notifications/${notification.id}`);
    ctx.body = notification;
  });

  router.post('/api/notifications/:id/retry', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.notifications.send');
    ctx.body = await notifications.retry(ctx.params.id, principal, stateOf(ctx).requestId);
  });
}
