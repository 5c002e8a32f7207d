import type { Context } from 'koa';
import { componentName } from '../api/openapi.ts';
import type { EntityDefinition, JsonSchema } from '../entities/entity-definition.ts';
import { KubikiError } from '../errors.ts';
import { defineRoute, entityInput, entityRecord, type MountedRoute, type RouteSpec } from '../http/route-contract.ts';
import { stateOf } from '../http/request-context.ts';
import { noContent, timestamp, uuid } from '../http/schemas/common.ts';
import { MAX_EXTERNAL_ID, SOURCE_PATTERN, type ExternalIds } from './external-ids.ts';

// Routes every entity has for its records' ids in other systems. Declared once with
// `/api/:plugin/:entity/…` and mounted beside the generic CRUD routes; OpenAPI lists them per
// entity (`upsertByExternalIdBaseOrganizations`) with the entity's own input and record schemas.

const GENERIC = '/api/:plugin/:entity/';

const entityParams = {
  plugin: { type: 'string', pattern: '^[a-z][a-z0-9]*$', maxLength: 50, description: 'plugin name, e.g. base' },
  entity: { type: 'string', pattern: '^[a-z][a-zA-Z0-9]*$', maxLength: 60, description: 'entity (its plural), e.g. organizations' },
};
const source: JsonSchema = { type: 'string', pattern: SOURCE_PATTERN, description: 'The other system: 1–64 lower-case letters, digits, ".", "_", "-" (1c, bitrix24, shop)' };
const externalId: JsonSchema = { type: 'string', minLength: 1, maxLength: MAX_EXTERNAL_ID, pattern: '^[^\\u0000-\\u001f]+$', description: `The record's id there: 1–${MAX_EXTERNAL_ID} characters, no control characters` };
const recordId: JsonSchema = { ...uuid, description: 'A record id (UUID)' };

const anyRecord: JsonSchema = { type: 'object', required: ['id', 'version'], properties: { id: uuid, version: { type: 'integer' } } };
const link: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['source', 'externalId', 'createdAt'],
  properties: { source: { type: 'string' }, externalId: { type: 'string' }, createdAt: timestamp },
};

/** `If-Match: "3"` (or W/"3", or 3) → 3; none or `*` → undefined. */
function ifMatch(http: Context): number | undefined {
  const header = http.get('if-match').trim();
  if (!header || header === '*') return undefined;
  const m = /^(?:W\/)?"?(\d{1,9})"?$/.exec(header);
  if (!m) throw new KubikiError('precondition-malformed', `If-Match must be the ETag of the record, e.g. "3"; got ${header}`, { issues: [{ field: 'If-Match', rule: 'etag', message: 'not an ETag this API issued' }] });
  return Number(m[1]);
}

type EntityParams = { plugin: string; entity: string };

export function externalIdRoutes(externalIds: ExternalIds): RouteSpec<unknown, unknown, unknown>[] {
  return [
    defineRoute<EntityParams & { source: string; externalId: string }, unknown, Record<string, unknown>>({
      method: 'put', path: '/api/:plugin/:entity/by-external/:source/:externalId', operationId: 'upsertByExternalId', permission: 'signed-in',
      summary: 'Create or update the record another system knows by this id (idempotent)',
      description: 'No record has the id yet: it is created from the body (201, create permission), and the id is linked to it. One has: the fields given are changed as PATCH does (200, update permission; null clears a field, fields left out stay). '
        + 'Validated, audited and evented like any write; the same body again changes nothing; parallel calls with one id make one record. If-Match makes the update conditional (412).',
      errors: ['not-found', 'unknown-plugin', 'unknown-entity', 'plugin-disabled', 'forbidden', 'unique-violation', 'reference-not-found', 'version-mismatch', 'precondition-malformed', 'transition-required', 'document-locked'],
      schemas: {
        params: { type: 'object', required: ['plugin', 'entity', 'source', 'externalId'], properties: { ...entityParams, source, externalId } },
        body: { type: 'object', additionalProperties: true, description: 'The record\'s fields (validated by the entity)' },
        responses: {
          200: { description: 'Updated (or unchanged)', schema: anyRecord, headers: { ETag: 'The record version' } },
          201: { description: 'Created', schema: anyRecord, headers: { ETag: 'The record version', Location: 'The record' } },
        },
      },
      async handler({ params, body, principal }, http) {
        const { record, created } = await externalIds.upsert(params.plugin, params.entity, params.source, params.externalId, body, {
          actor: principal, requestId: stateOf(http).requestId, expectedVersion: ifMatch(http),
        });
        http.status = created ? 201 : 200;
        if (created) http.set('Location', `/api/${params.plugin}/${params.entity}/${record.id}`);
        http.set('ETag', `"${record.version}"`);
        http.body = record;
      },
    }),
    defineRoute<EntityParams & { id: string }>({
      method: 'get', path: '/api/:plugin/:entity/:id/external-ids', operationId: 'listExternalIds', permission: 'signed-in',
      summary: 'The record\'s ids in other systems', errors: ['not-found', 'unknown-plugin', 'unknown-entity', 'plugin-disabled', 'forbidden'],
      schemas: {
        params: { type: 'object', required: ['plugin', 'entity', 'id'], properties: { ...entityParams, id: recordId } },
        query: { type: 'object', properties: {} },
        responses: { 200: { type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: link } } } },
      },
      async handler({ params, principal }, http) {
        http.body = { data: await externalIds.linksOf(params.plugin, params.entity, params.id, principal) };
      },
    }),
    defineRoute<EntityParams & { id: string; source: string }, unknown, { externalId: string }>({
      method: 'put', path: '/api/:plugin/:entity/:id/external-ids/:source', operationId: 'linkExternalId', permission: 'signed-in',
      summary: 'Give a record its id from another system (replacing the one it had from there); audited',
      description: 'Needs update permission on the entity; 409 unique-violation when the id already names another record.',
      errors: ['not-found', 'unknown-plugin', 'unknown-entity', 'plugin-disabled', 'forbidden', 'unique-violation'],
      schemas: {
        params: { type: 'object', required: ['plugin', 'entity', 'id', 'source'], properties: { ...entityParams, id: recordId, source } },
        body: { type: 'object', required: ['externalId'], properties: { externalId } },
        responses: { 200: link },
      },
      async handler({ params, body, principal }, http) {
        http.body = await externalIds.link(params.plugin, params.entity, params.id, params.source, body.externalId, principal, stateOf(http).requestId);
      },
    }),
    defineRoute<EntityParams & { id: string; source: string }>({
      method: 'delete', path: '/api/:plugin/:entity/:id/external-ids/:source', operationId: 'unlinkExternalId', permission: 'signed-in',
      summary: 'Forget the record\'s id from a source (the record stays); audited', errors: ['not-found', 'unknown-plugin', 'unknown-entity', 'plugin-disabled', 'forbidden'],
      schemas: {
        params: { type: 'object', required: ['plugin', 'entity', 'id', 'source'], properties: { ...entityParams, id: recordId, source } },
        responses: { 204: noContent },
      },
      async handler({ params, principal }, http) {
        await externalIds.unlink(params.plugin, params.entity, params.id, params.source, principal, stateOf(http).requestId);
        http.status = 204;
      },
    }),
  ];
}

/** The generic routes as mounted (owner core, full path as declared). */
export const mountedExternalIdRoutes = (externalIds: ExternalIds): MountedRoute[] =>
  externalIdRoutes(externalIds).map((spec) => ({ spec, owner: 'core', fullPath: spec.path }));

/** Entity-specific schemas where the generic route has placeholders. */
function forEntity(spec: RouteSpec<unknown, unknown, unknown>, e: EntityDefinition): RouteSpec<unknown, unknown, unknown> {
  const params = spec.schemas.params!;
  const properties = { ...(params.properties as Record<string, JsonSchema>) };
  delete properties.plugin;
  delete properties.entity;
  const required = (params.required as string[]).filter((n) => n !== 'plugin' && n !== 'entity');
  const responses = Object.fromEntries(Object.entries(spec.schemas.responses).map(([status, response]) => [
    status, response === anyRecord ? entityRecord(e.qualifiedName) : typeof response.description === 'string' && response.schema === anyRecord ? { ...response, schema: entityRecord(e.qualifiedName) } : response,
  ]));
  const body = spec.operationId === 'upsertByExternalId' ? entityInput(e.qualifiedName) : spec.schemas.body;
  return { ...spec, operationId: `${spec.operationId}${componentName(e)}`, schemas: { ...spec.schemas, params: { ...params, properties, required }, body, responses } };
}

/** What OpenAPI lists: each generic route once per entity (`/api/base/organizations/by-external/{source}/{externalId}`). */
export function externalIdRoutesPerEntity(externalIds: ExternalIds, entities: EntityDefinition[]): MountedRoute[] {
  return mountedExternalIdRoutes(externalIds).flatMap((route) => entities.map((e) => ({
    owner: 'core',
    fullPath: route.fullPath.replace(GENERIC, `/api/${e.plugin}/${e.plural}/`),
    spec: forEntity(route.spec, e),
  })));
}
