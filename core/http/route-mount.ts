import type Router from '@koa/router';
import { requireGrant, type Principal } from '../auth/principal.ts';
import { PermissionSet } from '../auth/permissions.ts';
import type { EntityRegistry } from '../entities/entity-registry.ts';
import type { MountedRoute } from './route-contract.ts';
import { checkBody, checkParams, compileRouteSchemas, responseProblem, type CompiledRoute } from './route-validation.ts';
import { principalOf, stateOf } from './request-context.ts';

/** Who calls a `public` route without a token: nobody in particular, holding no permission. */
const ANONYMOUS: Principal = { userId: null, username: 'anonymous', displayName: 'Anonymous', roles: [], permissions: new PermissionSet([]) };

export interface MountOptions {
  registry: EntityRegistry;
  /** Check every answer against its declared response schema (the test suite; not the hot path). */
  checkResponses: boolean;
}

/** `/api/finance/invoices/:id/post` relative to a router's prefix. */
const relative = (fullPath: string, prefix: string): string => fullPath.slice(prefix.length) || '/';

/**
 * Mounts a declared route: permission, then params/query/body checked against the schemas
 * (compiled on the first request), then the handler with its typed input.
 */
export function mountRoute(router: Router, route: MountedRoute, options: MountOptions, prefix = ''): void {
  const { spec } = route;
  let compiled: CompiledRoute | undefined;
  router[spec.method](relative(route.fullPath, prefix), async (http) => {
    const principal = spec.permission === 'public' ? stateOf(http).principal ?? ANONYMOUS : principalOf(http);
    if (spec.permission !== 'public' && spec.permission !== 'signed-in') requireGrant(principal, spec.permission);
    compiled ??= compileRouteSchemas(spec.schemas, options.registry);
    const params: Record<string, unknown> = { ...http.params };
    const query: Record<string, unknown> = { ...http.query };
    checkParams(compiled, params, query);
    const body = checkBody(compiled, spec.method, stateOf(http).body);
    await spec.handler({ params, query, body, principal }, http);
    if (options.checkResponses) {
      const problem = responseProblem(spec.schemas, http.status, http.body, http.response.type || 'application/json', options.registry);
      if (problem) throw new Error(`the response of ${spec.method.toUpperCase()} ${route.fullPath} (${spec.operationId}) breaks its declared schema: ${problem}`);
    }
  });
}
