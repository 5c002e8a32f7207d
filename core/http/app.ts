import Koa from 'koa';
import Router from '@koa/router';
import type { Kubiki } from '../kernel.ts';
import { authenticate, jsonBody, rejectNulCharacters, requestLifecycle } from './middleware.ts';
import { pluginRoutes } from './plugin-routes.ts';
import type { MountedRoute, RouteSpec } from './route-contract.ts';
import { mountRoute } from './route-mount.ts';
import { authRoutes } from './routes/auth-routes.ts';
import { entityRoutes } from './routes/entity-routes.ts';
import { metaRoutes } from './routes/meta-routes.ts';
import { notificationRoutes } from './routes/notification-routes.ts';
import { systemRoutes } from './routes/system-routes.ts';
import { templateRoutes } from './routes/template-routes.ts';
import { workflowRoutes } from './routes/workflow-routes.ts';
import { workflowRunRoutes } from './routes/workflow-run-routes.ts';
import { workflowDryRunRoutes } from './routes/workflow-dry-run-routes.ts';
import { webhookRoutes } from '../webhooks/webhook-routes.ts';
import { mountedExternalIdRoutes } from '../integration/external-id-routes.ts';
import { rateLimitPerToken } from '../integration/rate-limit.ts';
import { throttleLogins } from '../integration/login-throttle.ts';
import { importRoutes } from '../import/import-routes.ts';
import { crossOrigin, securityHeaders } from './security-headers.ts';

/**
 * The core's declared routes, in matching order (a fixed path before a `:param` one). Each module
 * returns its route specs; OpenAPI is generated from the same list.
 */
export function coreRoutes(k: Kubiki): MountedRoute[] {
  const specs: RouteSpec<unknown, unknown, unknown>[] = [...systemRoutes(k), ...authRoutes(k), ...metaRoutes(k), ...templateRoutes(k), ...workflowRunRoutes(k), ...workflowRoutes(k), ...workflowDryRunRoutes(k), ...notificationRoutes(k), ...importRoutes(k), ...webhookRoutes(k.webhooks)];
  return specs.map((spec) => ({ spec, owner: 'core', fullPath: spec.path }));
}

/** A method and Koa path the HTTP API answers (`GET /api/finance/reports/:name`). */
export interface RouteEntry { method: string; path: string }

/** Every route the routers hold: core, each enabled plugin's, and the entity routes per enabled entity. */
function inventory(k: Kubiki, core: Router, entities: Router): RouteEntry[] {
  const layers = (router: Router, prefix = '') => router.stack.flatMap((layer) => layer.methods.filter((m) => m !== 'HEAD').map((method) => ({ method, path: `${prefix}${layer.path}` })));
  // Core routes for every entity (lifecycle transitions) are listed per entity with a lifecycle.
  const lifecycled = k.registry.all().filter((e) => k.plugins.isEnabled(e.plugin) && k.workflowRuntime.published.lifecycleOf(e.qualifiedName) !== undefined);
  const out = layers(core).flatMap((r) => (r.path.startsWith('/api/:plugin/:entity/')
    ? lifecycled.map((e) => ({ method: r.method, path: r.path.replace(':plugin', e.plugin).replace(':entity', e.plural) }))
    : [r]));
  for (const plugin of k.plugins.status().filter((p) => p.state === 'enabled').map((p) => p.name)) {
    for (const route of k.plugins.routes.get(plugin) ?? []) out.push({ method: route.method.toUpperCase(), path: `/api/${plugin}${route.path}` });
  }
  // The generic entity routes serve every enabled entity; listed once per entity.
  for (const entity of k.registry.all().filter((e) => k.plugins.isEnabled(e.plugin))) {
    for (const { method, path } of layers(entities)) out.push({ method, path: path.replace(':plugin', entity.plugin).replace(':entity', entity.plural) });
  }
  return out;
}

/** The HTTP API: core routes first, then plugin routes, then generic entity CRUD. */
export function createApp(k: Kubiki): { app: Koa; routes: () => RouteEntry[] } {
  const app = new Koa({ proxy: true });
  app.silent = true; // errors are logged by requestLifecycle with their request id
  const mount = { registry: k.registry, checkResponses: k.config.checkResponses };
  const core = new Router();
  for (const route of k.coreRoutes) mountRoute(core, route, mount);
  const entities = new Router();
  // Declared routes every entity has (ids in other systems), listed per entity like the CRUD routes.
  for (const route of mountedExternalIdRoutes(k.externalIds)) mountRoute(entities, route, mount);
  entityRoutes(entities, k);
  app.use(requestLifecycle(k.logger));
  app.use(securityHeaders());
  app.use(crossOrigin(k.config.corsOrigins));
  app.use(authenticate(k.auth));
  app.use(rateLimitPerToken(k.rateLimiter));
  app.use(rejectNulCharacters());
  // An import's upload (a CSV or XLSX file, raw or multipart) is streamed by its route, never buffered as JSON.
  const json = jsonBody(k.config.bodyLimitBytes);
  app.use((ctx, next) => (ctx.method === 'POST' && ctx.path === '/api/imports' ? next() : json(ctx, next)));
  app.use(throttleLogins(k.loginThrottle));
  app.use(core.routes());
  app.use(pluginRoutes(k.plugins.routes, k.plugins.isEnabled, mount));
  app.use(entities.routes());
  return { app, routes: () => inventory(k, core, entities) };
}
