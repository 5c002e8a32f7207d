import type Router from '@koa/router';
import type { Context } from 'koa';
import { KubikiError } from '../../errors.ts';
import type { ApiRecord } from '../../entities/record-codec.ts';
import type { Kubiki } from '../../kernel.ts';
import { principalOf, stateOf } from '../request-context.ts';

/** `If-Match: "3"` (or W/"3", or 3) → 3; `*` or no header → undefined (no check). */
function expectedVersion(ctx: Context): number | undefined {
  const header = ctx.get('if-match').trim();
  if (!header || header === '*') return undefined;
  const m = /^(?:W\/)?"?(\d{1,9})"?$/.exec(header);
  if (!m) throw new KubikiError('precondition-malformed', `If-Match must be the ETag of the record, e.g. "3"; got ${header}`, { issues: [{ field: 'If-Match', rule: 'etag', message: 'not an ETag this API issued' }] });
  return Number(m[1]);
}

function sendRecord(ctx: Context, record: ApiRecord, status = 200): void {
  ctx.status = status;
  ctx.set('ETag', `"${record.version}"`);
  ctx.body = record;
}

function expandParam(ctx: Context): string[] | undefined {
  const raw = ctx.query.expand;
  for (const key of Object.keys(ctx.query)) {
    if (key !== 'expand') throw new KubikiError('bad-query', `unknown parameter ${key} (a single record takes only expand)`, { issues: [{ field: key, rule: 'unknown-parameter', message: `unknown parameter ${key}` }] });
  }
  if (raw === undefined) return undefined;
  return String(raw).split(',').map((s) => s.trim()).filter(Boolean);
}

/** CRUD for every entity of every enabled plugin: /api/{plugin}/{entity}[/{id}]. */
export function entityRoutes(router: Router, k: Kubiki): void {
  router.get('/api/:plugin/:entity', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    ctx.body = await repo.listFromQuery(ctx.query, { actor: principalOf(ctx) });
  });

  router.post('/api/:plugin/:entity', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    const record = await repo.create(stateOf(ctx).body, { actor: principalOf(ctx), requestId: stateOf(ctx).requestId });
    ctx.set('Location', `/api/${ctx.params.plugin}/${ctx.params.entity}/${record.id}`);
    sendRecord(ctx, record, 201);
  });

  router.get('/api/:plugin/:entity/:id', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    sendRecord(ctx, await repo.get(ctx.params.id, { actor: principalOf(ctx), expand: expandParam(ctx) }));
  });

  router.patch('/api/:plugin/:entity/:id', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    const body = stateOf(ctx).body;
    const record = await repo.update(ctx.params.id, body === undefined ? {} : body, {
      actor: principalOf(ctx), requestId: stateOf(ctx).requestId, expectedVersion: expectedVersion(ctx),
    });
    sendRecord(ctx, record);
  });

  router.delete('/api/:plugin/:entity/:id', async (ctx) => {
    const repo = k.httpRepository(ctx.params.plugin, ctx.params.entity);
    await repo.delete(ctx.params.id, { actor: principalOf(ctx), requestId: stateOf(ctx).requestId, expectedVersion: expectedVersion(ctx) });
    ctx.status = 204;
  });
}
