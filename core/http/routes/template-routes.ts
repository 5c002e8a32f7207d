import type Router from '@koa/router';
import type { Context } from 'koa';
import { requireGrant } from '../../auth/principal.ts';
import { fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { principalOf, stateOf } from '../request-context.ts';

function positiveInt(ctx: Context, name: string, required: boolean): number | undefined {
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

/** Document templates (versioned, previewed, published), rendered documents, the company profile. */
export function templateRoutes(router: Router, k: Kubiki): void {
  const { templates, documents, company } = k;

  router.get('/api/templates', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.templates.read');
    ctx.body = { data: await templates.list(), next: null };
  });

  router.get('/api/templates/:id', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.templates.read');
    const summary = await templates.summary(ctx.params.id);
    const version = positiveInt(ctx, 'version', false) ?? summary.publishedVersion ?? summary.latestVersion;
    const shown = await templates.version(ctx.params.id, version);
    ctx.body = { ...summary, version: shown.version, origin: shown.origin, metadata: shown.metadata, source: shown.source, comment: shown.comment, createdBy: shown.createdBy, createdAt: shown.createdAt };
  });

  router.put('/api/templates/:id', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.templates.manage');
    ctx.body = await templates.save(ctx.params.id, stateOf(ctx).body, principal, stateOf(ctx).requestId);
  });

  router.get('/api/templates/:id/versions', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.templates.read');
    ctx.body = { data: await templates.versions(ctx.params.id), next: null };
  });

  router.post('/api/templates/:id/publish', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.templates.manage');
    ctx.body = await templates.publish(ctx.params.id, bodyVersion(stateOf(ctx).body, false), principal, 'published', stateOf(ctx).requestId);
  });

  router.post('/api/templates/:id/rollback', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.templates.manage');
    ctx.body = await templates.publish(ctx.params.id, bodyVersion(stateOf(ctx).body, true), principal, 'rolled-back', stateOf(ctx).requestId);
  });

  router.get('/api/templates/:id/diff', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.templates.read');
    const from = positiveInt(ctx, 'from', true)!;
    const to = positiveInt(ctx, 'to', true)!;
    const diff = await templates.diff(ctx.params.id, from, to);
    if (ctx.accepts('application/json', 'text/plain') === 'text/plain') {
      ctx.type = 'text/plain';
      ctx.body = diff;
    } else {
      ctx.body = { from, to, diff };
    }
  });

  router.post('/api/templates/:id/preview', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.templates.read');
    ctx.body = await documents.preview(ctx.params.id, stateOf(ctx).body, principal);
  });

  router.post('/api/templates/:id/render', async (ctx) => {
    const document = await documents.render(ctx.params.id, stateOf(ctx).body, principalOf(ctx), stateOf(ctx).requestId);
    ctx.status = 201;
    ctx.set('Location', `/api/documents/${document.id}`);
    ctx.body = document;
  });

  router.get('/api/documents', async (ctx) => {
    const q = ctx.query;
    for (const key of Object.keys(q)) if (!['entity', 'recordId', 'limit'].includes(key)) throw fieldError('bad-query', key, 'unknown-parameter', `unknown parameter ${key} (entity, recordId, limit)`);
    const limit = q.limit === undefined ? 50 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw fieldError('bad-query', 'limit', 'range', 'limit must be an integer from 1 to 500');
    const entity = typeof q.entity === 'string' ? q.entity : undefined;
    const recordId = typeof q.recordId === 'string' ? q.recordId : undefined;
    ctx.body = { data: await documents.list({ entity, recordId, limit }, principalOf(ctx)), next: null };
  });

  router.get('/api/documents/:id', async (ctx) => {
    ctx.body = await documents.get(ctx.params.id, principalOf(ctx));
  });

  router.get('/api/documents/:id/content', async (ctx) => {
    const { document, content } = await documents.content(ctx.params.id, principalOf(ctx));
    ctx.type = document.contentType;
    ctx.set('ETag', `"${document.sha256}"`);
    ctx.set('X-Content-Type-Options', 'nosniff');
    // A stored document is shown, never run: no scripts, nothing fetched from elsewhere.
    ctx.set('Content-Security-Policy', "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:");
    ctx.set('Content-Disposition', `inline; filename="${document.template}-${document.recordId}.${document.format}"`);
    ctx.body = content;
  });

  router.get('/api/settings/company', async (ctx) => {
    principalOf(ctx);
    ctx.body = await company.get();
  });

  router.put('/api/settings/company', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.settings.manage');
    ctx.body = await company.put(stateOf(ctx).body, principal, stateOf(ctx).requestId);
  });
}
