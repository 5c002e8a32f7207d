import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import { fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { principalOf, stateOf } from '../request-context.ts';

/**
 * Running workflows: instances (list, history, retry, cancel), manual runs, webhooks, approval
 * tasks and lifecycle transitions. Registered before the definition routes, whose `/:id` would
 * otherwise take `/api/workflows/instances`.
 */
export function workflowRunRoutes(router: Router, k: Kubiki): void {
  const runtime = k.workflowRuntime;

  router.get('/api/workflows/instances', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.workflows.read');
    ctx.body = await runtime.instances.list(ctx.query);
  });

  router.get('/api/workflows/instances/:id', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.workflows.read');
    ctx.body = await runtime.instances.get(ctx.params.id);
  });

  router.post('/api/workflows/instances/:id/retry', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.workflows.manage');
    ctx.body = await runtime.instances.retry(ctx.params.id, principal, stateOf(ctx).requestId);
  });

  router.post('/api/workflows/instances/:id/cancel', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.workflows.manage');
    ctx.body = await runtime.instances.cancel(ctx.params.id, principal, stateOf(ctx).requestId);
  });

  router.post('/api/workflows/:id/run', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.workflows.run');
    const { id } = await runtime.triggers.runManual(ctx.params.id, stateOf(ctx).body, principal);
    ctx.status = 202;
    ctx.set('Location', `/api/workflows/instances/${id}`);
    ctx.body = { instanceId: id };
  });

  router.post('/api/workflows/:id/webhook', async (ctx) => {
    const header = (name: string): string | undefined => ctx.get(name) || undefined;
    const { id, created } = await runtime.triggers.receiveWebhook(ctx.params.id, stateOf(ctx).rawBody ?? '', stateOf(ctx).body, {
      signature: header('x-kubiki-signature'), delivery: header('x-kubiki-delivery'),
    });
    ctx.status = created ? 202 : 200;
    ctx.body = { instanceId: id, created };
  });

  // Tasks are the caller's own: being one of the people who decide a task is the permission.
  router.get('/api/tasks', async (ctx) => {
    const principal = principalOf(ctx);
    if (Object.keys(ctx.query).length) throw fieldError('bad-query', Object.keys(ctx.query)[0], 'unknown-parameter', '/api/tasks takes no parameters: it lists your open tasks');
    ctx.body = { data: await runtime.tasks.openFor(principal) };
  });

  router.get('/api/tasks/:id', async (ctx) => {
    ctx.body = await runtime.tasks.get(ctx.params.id, principalOf(ctx));
  });

  for (const [verb, decision] of [['approve', 'approved'], ['reject', 'rejected']] as const) {
    router.post(`/api/tasks/:id/${verb}`, async (ctx) => {
      ctx.body = await runtime.tasks.decide(ctx.params.id, principalOf(ctx), decision, stateOf(ctx).body, stateOf(ctx).requestId);
    });
  }

  router.get('/api/:plugin/:entity/:id/transitions', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    ctx.body = await runtime.lifecycles.available(repo.entity.qualifiedName, ctx.params.id, principalOf(ctx));
  });

  router.post('/api/:plugin/:entity/:id/transitions/:name', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    ctx.body = await runtime.lifecycles.take(repo.entity.qualifiedName, ctx.params.id, ctx.params.name, stateOf(ctx).body, principalOf(ctx), stateOf(ctx).requestId);
  });
}
