import { requireGrant } from '../../auth/principal.ts';
import { readAudit } from '../../audit/audit-trail.ts';
import type { Kubiki } from '../../kernel.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { limit, page, timestamp } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';

const pluginStatus = {
  type: 'object',
  required: ['name', 'title', 'version', 'state', 'dependsOn', 'enhances', 'entities'],
  properties: {
    name: { type: 'string' }, title: { type: 'string' }, description: { type: 'string' }, version: { type: 'string' },
    installedVersion: { type: ['string', 'null'] }, state: { enum: ['available', 'installed', 'enabled', 'disabled'] },
    alwaysEnabled: { type: 'boolean' }, dependsOn: { type: 'array', items: { type: 'string' } },
    enhances: { type: 'array', items: { type: 'string' } }, entities: { type: 'array', items: { type: 'string' } },
  },
};

const auditEntry = {
  type: 'object',
  required: ['id', 'at', 'actor', 'action', 'entity', 'recordId', 'changes'],
  properties: {
    id: { type: 'integer' }, at: timestamp, actorId: { type: ['string', 'null'] }, actor: { type: 'string' },
    action: { type: 'string' }, entity: { type: 'string', description: '<plugin>.<entity>' }, recordId: { type: 'string' },
    changes: { type: 'object', additionalProperties: { type: 'object', properties: { before: {}, after: {} } } }, requestId: { type: ['string', 'null'] },
  },
};

/** Health, OpenAPI, plugin lifecycle and the audit trail. */
export function systemRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  return [
    defineRoute({
      method: 'get', path: '/api/health', operationId: 'health', summary: 'Liveness and database check', permission: 'public',
      schemas: {
        responses: {
          200: {
            type: 'object', required: ['status', 'version', 'database', 'plugins'],
            properties: { status: { const: 'ok' }, version: { type: 'string' }, database: { enum: ['postgres', 'pglite'] }, plugins: { type: 'array', items: { type: 'string' } } },
          },
        },
      },
      async handler(_input, http) {
        await k.db.knex.raw('select 1');
        http.body = { status: 'ok', version: k.coreVersion, database: k.db.kind, plugins: k.plugins.status().filter((p) => p.state === 'enabled').map((p) => p.name) };
      },
    }),
    defineRoute({
      method: 'get', path: '/api/openapi.json', operationId: 'openApi', summary: 'This document: every route of the enabled modules', permission: 'signed-in',
      schemas: { responses: { 200: { type: 'object', required: ['openapi', 'paths'], properties: { openapi: { type: 'string' }, info: { type: 'object' }, paths: { type: 'object' }, components: { type: 'object' } } } } },
      handler(_input, http) {
        http.body = k.openApi();
      },
    }),
    defineRoute({
      method: 'get', path: '/api/plugins', operationId: 'listPlugins', summary: 'Plugins and their lifecycle state', permission: 'core.plugins.read',
      schemas: { responses: { 200: page(pluginStatus, false) } },
      handler(_input, http) {
        http.body = { data: k.plugins.status() };
      },
    }),
    defineRoute<{ name: string; action: 'install' | 'enable' | 'disable' }>({
      method: 'post', path: '/api/plugins/:name/:action', operationId: 'changePlugin',
      summary: 'install (tables, migrations, seeds), enable (refused while a dependency is not enabled) or disable (keeps data; refused while an enabled plugin depends on it)',
      permission: 'core.plugins.manage', errors: ['unknown-plugin', 'lifecycle-conflict', 'missing-dependency'],
      schemas: {
        params: {
          type: 'object', required: ['name', 'action'],
          properties: { name: { type: 'string', pattern: '^[a-z][a-z0-9]*$', maxLength: 50 }, action: { enum: ['install', 'enable', 'disable'] } },
        },
        responses: { 200: pluginStatus },
      },
      async handler({ params, principal }, http) {
        k.plugins.plugin(params.name);
        http.body = await k.plugins[params.action](params.name, principal, stateOf(http).requestId);
      },
    }),
    defineRoute<unknown, { entity?: string; id?: string; limit: number; before?: number }>({
      method: 'get', path: '/api/audit', operationId: 'listAudit', permission: 'signed-in',
      summary: 'Audit trail, newest first',
      description: 'Whoever may read every record of an entity may read its history (entity=…); the whole trail needs core.audit.read.',
      schemas: {
        query: {
          type: 'object',
          properties: {
            entity: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-zA-Z][a-zA-Z0-9]*$', description: '<plugin>.<entity>, e.g. base.organizations' },
            id: { type: 'string', maxLength: 100, description: 'A record id' },
            limit: limit(1000, 100),
            before: { type: 'integer', minimum: 1, maximum: 999_999_999_999_999, description: 'An audit entry id: entries older than it' },
          },
        },
        responses: { 200: page(auditEntry) },
      },
      async handler({ query, principal }, http) {
        const [plugin, plural] = query.entity ? query.entity.split('.') : [undefined, undefined];
        // Whoever may read every record of an entity may read its history; the full trail needs core.audit.read.
        const entityReader = query.entity && k.registry.has(query.entity) && principal.permissions.grant(`${query.entity}.read`) === 'all';
        if (!entityReader) requireGrant(principal, 'core.audit.read');
        const data = await readAudit(k.db, { plugin, entity: plural, recordId: query.id, limit: query.limit, beforeId: query.before });
        http.body = { data, next: data.length === query.limit ? String(data[data.length - 1].id) : null };
      },
    }),
  ];
}
