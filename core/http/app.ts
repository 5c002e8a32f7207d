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

/**
 * The core's declared routes, in matching order (a fixed path before a `:param` one). Each module
 * returns its route specs; OpenAPI is generated from the same list.
 */
export function coreRoutes(k: Kubiki): MountedRoute[] {
  const specs: RouteSpec<unknown, unknown, unknown>[] = [...systemRoutes(k)];
  return specs.map((spec) => ({ spec, owner: 'core', fullPath: spec.path }));
}

/** The HTTP API: core routes first, then plugin routes, then generic entity CRUD. */
export function createApp(k: Kubiki): Koa {
  const app = new Koa({ proxy: true });
  app.silent = true; // errors are logged by requestLifecycle with their request id
  const mount = { registry: k.registry, checkResponses: k.config.checkResponses };
  const core = new Router();
  for (const route of k.coreRoutes) mountRoute(core, route, mount);
  authRoutes(core, k);
  metaRoutes(core, k);
  templateRoutes(core, k);
  workflowRunRoutes(core, k);
  workflowRoutes(core, k);
  workflowDryRunRoutes(core, k);
  notificationRoutes(core, k);
  const entities = new Router();
  entityRoutes(entities, k);
  app.use(requestLifecycle(k.logger));
  app.use(authenticate(k.auth));
  app.use(rejectNulCharacters());
  app.use(jsonBody(k.config.bodyLimitBytes));
  app.use(core.routes());
  app.use(pluginRoutes(k.plugins.routes, k.plugins.isEnabled, mount));
  app.use(entities.routes());
  return app;
}
