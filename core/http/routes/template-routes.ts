import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import { fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { versionedRoutes } from './versioned-routes.ts';
import { principalOf, stateOf } from '../request-context.ts';

/** Document templates (versioned, previewed, published), rendered documents, the company profile. */
export function templateRoutes(router: Router, k: Kubiki): void {
  const { templates, documents, company } = k;

  versionedRoutes(router, '/api/templates', templates, { read: 'core.templates.read', manage: 'core.templates.manage' });

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
