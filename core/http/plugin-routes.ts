import Router from '@koa/router';
type Middleware = ReturnType<Router['routes']>;
import type { Context, Next } from 'koa';
import { requireGrant } from '../auth/principal.ts';
import type { PluginRoute } from '../plugins/plugin-context.ts';
import { principalOf } from './request-context.ts';

/**
 * Routes plugins add in setup(), mounted under /api/<plugin>/ and answered only while the plugin
 * is enabled. They are tried before the generic entity routes, so `/api/finance/reports/x` is a
 * report, not record "x" of an entity "reports".
 */
export function pluginRoutes(routes: Map<string, PluginRoute[]>, isEnabled: (plugin: string) => boolean) {
  const built = new Map<string, { count: number; middleware: Middleware }>();
  const routerFor = (plugin: string): Middleware | undefined => {
    const list = routes.get(plugin);
    if (!list?.length) return undefined;
    const cached = built.get(plugin);
    if (cached?.count === list.length) return cached.middleware;
    const router = new Router({ prefix: `/api/${plugin}` });
    for (const route of list) {
      router[route.method](route.path, async (ctx) => {
        const principal = principalOf(ctx);
        requireGrant(principal, route.permission);
        await route.handler(ctx, principal);
      });
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
