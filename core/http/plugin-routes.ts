import Router from '@koa/router';
type Middleware = ReturnType<Router['routes']>;
import type { Context, Next } from 'koa';
import { requireGrant } from '../auth/principal.ts';
import type { LegacyPluginRoute, PluginRoute } from '../plugins/plugin-context.ts';
import type { MountedRoute } from './route-contract.ts';
import { mountRoute, type MountOptions } from './route-mount.ts';
import { principalOf } from './request-context.ts';

const isDeclared = (route: PluginRoute | LegacyPluginRoute): route is PluginRoute => 'schemas' in route && 'operationId' in route;

/** The declared routes of a plugin, as OpenAPI and the router see them. */
export function mountedPluginRoutes(plugin: string, routes: readonly (PluginRoute | LegacyPluginRoute)[]): MountedRoute[] {
  return routes.filter(isDeclared).map((spec) => ({ spec, owner: plugin, fullPath: `/api/${plugin}${spec.path}` }));
}

/**
 * Routes plugins add in setup(), mounted under /api/<plugin>/ and answered only while the plugin
 * is enabled. They are tried before the generic entity routes, so `/api/finance/reports/x` is a
 * report, not record "x" of an entity "reports".
 */
export function pluginRoutes(routes: Map<string, (PluginRoute | LegacyPluginRoute)[]>, isEnabled: (plugin: string) => boolean, options: MountOptions) {
  const built = new Map<string, { count: number; middleware: Middleware }>();
  const routerFor = (plugin: string): Middleware | undefined => {
    const list = routes.get(plugin);
    if (!list?.length) return undefined;
    const cached = built.get(plugin);
    if (cached?.count === list.length) return cached.middleware;
    const prefix = `/api/${plugin}`;
    const router = new Router({ prefix });
    for (const route of list) {
      if (isDeclared(route)) {
        mountRoute(router, { spec: route, owner: plugin, fullPath: `${prefix}${route.path}` }, options, prefix);
      } else {
        router[route.method](route.path, async (ctx) => {
          const principal = principalOf(ctx);
          requireGrant(principal, route.permission);
          await route.handler(ctx, principal);
        });
      }
    }
    const middleware = router.routes();
    built.set(plugin, { count: list.length, middleware });
    return middleware;
  };
  return async (ctx: Context, next: Next) => {
    const plugin = /^\/api\/([a-z][a-z0-9]*)\//.exec(ctx.path)?.[1];
    const middleware = plugin && isEnabled(plugin) ? routerFor(plugin) : undefined;
    if (!middleware) return next();
    return (middleware as unknown as (ctx: Context, next: Next) => Promise<void>)(ctx, next);
  };
}
