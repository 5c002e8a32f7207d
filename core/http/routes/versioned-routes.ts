import type Router from '@koa/router';
import type { Context } from 'koa';
import { requireGrant, type Principal } from '../../auth/principal.ts';
import { fieldError } from '../../errors.ts';
import type { ItemVersion } from '../../versioning/versioned-store.ts';
import { principalOf, stateOf } from '../request-context.ts';

/** What templates and workflow definitions both offer: versions, publishing, diffs. */
export interface VersionedApi<S extends { publishedVersion: number | null; latestVersion: number }, M> {
  list(): Promise<S[]>;
  summary(id: string): Promise<S>;
  version(id: string, version: number): Promise<ItemVersion<M>>;
  versions(id: string): Promise<Omit<ItemVersion<M>, 'source'>[]>;
  save(id: string, body: unknown, actor: Principal, requestId?: string): Promise<ItemVersion<M>>;
  publish(id: string, version: number | undefined, actor: Principal, action: 'published' | 'rolled-back', requestId?: string): Promise<S>;
  diff(id: string, from: number, to: number): Promise<string>;
}

function queryVersion(ctx: Context, name: string, required: boolean): number | undefined {
  const raw = ctx.query[name];
  if (raw === undefined && !required) return undefined;
  if (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw fieldError('bad-query', name, 'type', `${name} must be a version number`);
  return Number(raw);
}

function bodyVersion(body: unknown, required: boolean): number | undefined {
  const version = typeof body === 'object' && body !== null && !Array.isArray(body) ? (body as Record<string, unknown>).version : undefined;
  if (version === undefined && !required) return undefined;
  if (!Number.isInteger(version) || (version as number) < 1) throw fieldError('validation-failed', 'version', 'type', 'version must be a positive integer');
  return version as number;
}

/**
 * GET list, GET one (`?version=N`, else the published or latest), PUT (a new version),
 * versions, publish, rollback and diff under `prefix`, behind `read` and `manage` permissions.
 */
export function versionedRoutes<S extends { publishedVersion: number | null; latestVersion: number }, M>(
  router: Router, prefix: string, api: VersionedApi<S, M>, permissions: { read: string; manage: string },
): void {
  router.get(prefix, async (ctx) => {
    requireGrant(principalOf(ctx), permissions.read);
    ctx.body = { data: await api.list(), next: null };
  });

  router.get(`${prefix}/:id`, async (ctx) => {
    requireGrant(principalOf(ctx), permissions.read);
    const summary = await api.summary(ctx.params.id);
    const shown = await api.version(ctx.params.id, queryVersion(ctx, 'version', false) ?? summary.publishedVersion ?? summary.latestVersion);
    ctx.body = { ...summary, version: shown.version, origin: shown.origin, metadata: shown.metadata, source: shown.source, comment: shown.comment, createdBy: shown.createdBy, createdAt: shown.createdAt };
  });

  router.put(`${prefix}/:id`, async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, permissions.manage);
    ctx.body = await api.save(ctx.params.id, stateOf(ctx).body, principal, stateOf(ctx).requestId);
  });

  router.get(`${prefix}/:id/versions`, async (ctx) => {
    requireGrant(principalOf(ctx), permissions.read);
    ctx.body = { data: await api.versions(ctx.params.id), next: null };
  });

  router.post(`${prefix}/:id/publish`, async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, permissions.manage);
    ctx.body = await api.publish(ctx.params.id, bodyVersion(stateOf(ctx).body, false), principal, 'published', stateOf(ctx).requestId);
  });

  router.post(`${prefix}/:id/rollback`, async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, permissions.manage);
    ctx.body = await api.publish(ctx.params.id, bodyVersion(stateOf(ctx).body, true), principal, 'rolled-back', stateOf(ctx).requestId);
  });

  router.get(`${prefix}/:id/diff`, async (ctx) => {
    requireGrant(principalOf(ctx), permissions.read);
    const from = queryVersion(ctx, 'from', true)!;
    const to = queryVersion(ctx, 'to', true)!;
    const diff = await api.diff(ctx.params.id, from, to);
    if (ctx.accepts('application/json', 'text/plain') === 'text/plain') {
      ctx.type = 'text/plain';
      ctx.body = diff;
    } else {
      ctx.body = { from, to, diff };
    }
  });
}
