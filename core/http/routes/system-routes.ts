import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import { KubikiError, fieldError } from '../../errors.ts';
import { readAudit } from '../../audit/audit-trail.ts';
import type { Kubiki } from '../../kernel.ts';
import { principalOf, stateOf } from '../request-context.ts';

/** Health, OpenAPI, plugin lifecycle and the audit trail. */
export function systemRoutes(router: Router, k: Kubiki): void {
  router.get('/api/health', async (ctx) => {
    await k.db.knex.raw('select 1');
    ctx.body = { status: 'ok', version: k.coreVersion, database: k.db.kind, plugins: k.plugins.status().filter((p) => p.state === 'enabled').map((p) => p.name) };
  });

  router.get('/api/openapi.json', (ctx) => {
    principalOf(ctx);
    ctx.body = k.openApi();
  });

  router.get('/api/plugins', (ctx) => {
    requireGrant(principalOf(ctx), 'core.plugins.read');
    ctx.body = { data: k.plugins.status() };
  });

  router.post('/api/plugins/:name/:action', async (ctx) => {
    const principal = principalOf(ctx);
    const { name, action } = ctx.params;
    if (action !== 'install' && action !== 'enable' && action !== 'disable') throw new KubikiError('route-not-found', `no plugin action ${action}; use install, enable or disable`);
    requireGrant(principal, 'core.plugins.manage');
    k.plugins.plugin(name);
    ctx.body = await k.plugins[action](name, principal, stateOf(ctx).requestId);
  });

  router.get('/api/audit', async (ctx) => {
    const principal = principalOf(ctx);
    const q = ctx.query;
    const one = (key: string): string | undefined => {
      const v = q[key];
      if (Array.isArray(v)) throw fieldError('bad-query', key, 'single', `${key} may be given once`);
      return v;
    };
    const entity = one('entity');
    const id = one('id');
    const limitRaw = one('limit') ?? '100';
    const beforeRaw = one('before');
    for (const key of Object.keys(q)) if (!['entity', 'id', 'limit', 'before'].includes(key)) throw fieldError('bad-query', key, 'unknown-parameter', `unknown parameter ${key} (entity, id, limit, before)`);
    const limit = Number(limitRaw);
    if (!/^\d+$/.test(limitRaw) || limit < 1 || limit > 1000) throw fieldError('bad-query', 'limit', 'range', 'limit must be an integer from 1 to 1000');
    if (beforeRaw !== undefined && !/^\d{1,15}$/.test(beforeRaw)) throw fieldError('bad-query', 'before', 'type', 'before must be an audit entry id');
    let plugin: string | undefined;
    let plural: string | undefined;
    if (entity) {
      const m = /^([a-z][a-z0-9]*)\.([a-zA-Z][a-zA-Z0-9]*)$/.exec(entity);
      if (!m) throw fieldError('bad-query', 'entity', 'pattern', 'entity must be <plugin>.<entity>, e.g. base.organizations');
      [, plugin, plural] = m;
    }
    // Whoever may read every record of an entity may read its history; the full trail needs core.audit.read.
    const entityReader = entity && k.registry.has(entity) && principal.permissions.grant(`${entity}.read`) === 'all';
    if (!entityReader) requireGrant(principal, 'core.audit.read');
    const data = await readAudit(k.db, { plugin, entity: plural, recordId: id, limit, beforeId: beforeRaw ? Number(beforeRaw) : undefined });
    ctx.body = { data, next: data.length === limit ? String(data[data.length - 1].id) : null };
  });
}
