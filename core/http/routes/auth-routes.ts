import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import type { Kubiki } from '../../kernel.ts';
import { principalOf, stateOf } from '../request-context.ts';

/** Login, users, roles and tokens. */
export function authRoutes(router: Router, k: Kubiki): void {
  router.post('/api/auth/login', async (ctx) => {
    ctx.body = await k.auth.login(stateOf(ctx).body, stateOf(ctx).requestId);
  });

  router.post('/api/auth/logout', async (ctx) => {
    await k.auth.logout(principalOf(ctx), ctx.get('authorization').replace(/^Bearer\s+/i, ''), stateOf(ctx).requestId);
    ctx.status = 204;
  });

  router.get('/api/auth/me', (ctx) => {
    const p = principalOf(ctx);
    ctx.body = { id: p.userId, username: p.username, displayName: p.displayName, roles: p.roles, permissions: p.permissions.raw };
  });

  router.get('/api/users', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.users.read');
    ctx.body = { data: await k.auth.listUsers(), next: null };
  });

  router.post('/api/users', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.users.create');
    ctx.status = 201;
    ctx.body = await k.auth.createUser(principal, stateOf(ctx).body, stateOf(ctx).requestId);
  });

  router.get('/api/users/:id', async (ctx) => {
    const principal = principalOf(ctx);
    if (principal.userId !== ctx.params.id) requireGrant(principal, 'core.users.read');
    ctx.body = await k.auth.getUser(ctx.params.id);
  });

  router.patch('/api/users/:id', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.users.update');
    ctx.body = await k.auth.updateUser(principal, ctx.params.id, stateOf(ctx).body, stateOf(ctx).requestId);
  });

  // Users manage their own API tokens; core.users.update manages anyone's.
  const tokenGuard = (principal: ReturnType<typeof principalOf>, userId: string) => {
    if (principal.userId !== userId) requireGrant(principal, 'core.users.update');
  };

  router.get('/api/users/:id/tokens', async (ctx) => {
    tokenGuard(principalOf(ctx), ctx.params.id);
    ctx.body = { data: await k.auth.listTokens(ctx.params.id), next: null };
  });

  router.post('/api/users/:id/tokens', async (ctx) => {
    const principal = principalOf(ctx);
    tokenGuard(principal, ctx.params.id);
    ctx.status = 201;
    ctx.body = await k.auth.issueApiToken(principal, ctx.params.id, stateOf(ctx).body, stateOf(ctx).requestId);
  });

  router.delete('/api/users/:id/tokens/:tokenId', async (ctx) => {
    const principal = principalOf(ctx);
    tokenGuard(principal, ctx.params.id);
    await k.auth.revokeToken(principal, ctx.params.id, ctx.params.tokenId, stateOf(ctx).requestId);
    ctx.status = 204;
  });

  router.get('/api/roles', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.roles.read');
    ctx.body = { data: await k.auth.listRoles(), next: null };
  });

  router.put('/api/roles/:name', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.roles.manage');
    ctx.body = await k.auth.putRole(principal, ctx.params.name, stateOf(ctx).body, stateOf(ctx).requestId);
  });

  router.delete('/api/roles/:name', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.roles.manage');
    await k.auth.deleteRole(principal, ctx.params.name, stateOf(ctx).requestId);
    ctx.status = 204;
  });
}
