import type { EntityDefinition, JsonSchema } from '../entities/entity-definition.ts';
import { DEFAULT_LIMIT, MAX_LIMIT } from '../entities/list-query.ts';
import type { MountedRoute } from '../http/route-contract.ts';
import { coreErrorCatalog, type DeclaredError } from '../errors.ts';
import { routePaths } from './route-openapi.ts';

type Obj = Record<string, unknown>;

const pascal = (s: string): string => s.replace(/(^|[^a-zA-Z0-9])([a-zA-Z0-9])/g, (_m, _p, c: string) => c.toUpperCase());
export const componentName = (e: EntityDefinition): string => `${pascal(e.plugin)}${pascal(e.name)}`;

const problemRef = { $ref: '#/components/responses/Problem' };
const json = (schema: Obj) => ({ 'application/json': { schema } });

const systemProperties: Obj = {
  id: { type: 'string', format: 'uuid', readOnly: true },
  version: { type: 'integer', readOnly: true, description: 'Incremented on every change; send it back as If-Match.' },
  createdAt: { type: 'string', format: 'date-time', readOnly: true },
  updatedAt: { type: 'string', format: 'date-time', readOnly: true },
  createdBy: { type: 'string', format: 'uuid', readOnly: true },
  updatedBy: { type: 'string', format: 'uuid', readOnly: true },
};

function entitySchemas(e: EntityDefinition): { record: Obj; input: Obj; patch: Obj } {
  const properties: Obj = {};
  const required: string[] = [];
  for (const f of e.fields.values()) {
    properties[f.name] = f.custom ? { ...f.schema, 'x-custom': true } : f.schema;
    if (f.required) required.push(f.name);
  }
  const input: Obj = { type: 'object', properties, additionalProperties: false, ...(required.length ? { required } : {}) };
  const record: Obj = {
    type: 'object',
    ...(e.description ? { description: e.description } : {}),
    properties: { ...systemProperties, ...properties },
    required: ['id', 'version'],
  };
  // A PATCH names only the fields it changes; null clears one (a required field cannot be cleared).
  const patchProperties = Object.fromEntries([...e.fields.values()].map((f) => [f.name, f.required ? properties[f.name] : { anyOf: [properties[f.name], { type: 'null' }] }]));
  const patch: Obj = { type: 'object', properties: { ...patchProperties, version: { type: 'integer', description: 'The version you read (instead of If-Match); a stale one answers 412.' } }, additionalProperties: false, description: `Any fields of ${componentName(e)}Input; null clears an optional one.` };
  return { record, input, patch };
}

function listParameters(e: EntityDefinition): Obj[] {
  const params: Obj[] = [
    { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: MAX_LIMIT, default: DEFAULT_LIMIT } },
    { name: 'cursor', in: 'query', schema: { type: 'string' }, description: 'The `next` value of the previous page.' },
    { name: 'sort', in: 'query', schema: { type: 'string' }, description: 'Comma-separated fields, `-` for descending, e.g. `-createdAt,name`.' },
    { name: 'fields', in: 'query', schema: { type: 'string' }, description: 'Comma-separated fields to return (id and version always come).' },
    { name: 'expand', in: 'query', schema: { type: 'string' }, description: 'Comma-separated reference fields to replace by the referenced record.' },
    { name: 'withTotal', in: 'query', schema: { type: 'boolean' }, description: 'Also count all matching records (answered as `total`).' },
    { name: 'q', in: 'query', schema: { type: 'string' }, description: 'Text search in the title fields.' },
    { name: 'externalId', in: 'query', schema: { type: 'string' }, description: 'Records another system knows by this id: `externalId=<source>:<id>`; `externalId[in]=1c:1,1c:2` for several.' },
  ];
  for (const f of e.fields.values()) {
    if (f.kind === 'json') continue;
    params.push({
      name: f.name, in: 'query', required: false, schema: { type: 'string' },
      description: `Filter: \`${f.name}=v\`; also \`${f.name}[ne|in|gt|gte|lt|lte|contains|null]=…\` (in: comma-separated).`,
    });
  }
  return params;
}

function entityPaths(e: EntityDefinition): Obj {
  const name = componentName(e);
  const ref = { $ref: `#/components/schemas/${name}` };
  const input = { $ref: `#/components/schemas/${name}Input` };
  const tag = e.plugin;
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const ifMatch = { name: 'If-Match', in: 'header', required: false, schema: { type: 'string' }, description: 'The ETag (version) you read; a stale one answers 412.' };
  const withEtag = { description: 'The record', headers: { ETag: { schema: { type: 'string' } } }, content: json(ref) };
  const errors = { 400: problemRef, 401: problemRef, 403: problemRef, 404: problemRef };
  return {
    [`/api/${e.plugin}/${e.plural}`]: {
      get: {
        tags: [tag], operationId: `list${name}`, 'x-permission': `${e.qualifiedName}.read`, summary: `List ${e.title} records`, parameters: listParameters(e),
        responses: {
          200: { description: 'A page of records', content: json({ type: 'object', required: ['data', 'next'], properties: { data: { type: 'array', items: ref }, next: { type: ['string', 'null'] }, total: { type: 'integer' } } }) },
          ...errors,
        },
      },
      post: {
        tags: [tag], operationId: `create${name}`, 'x-permission': `${e.qualifiedName}.create`, summary: `Create a ${e.title}`,
        requestBody: { required: true, content: json(input) },
        responses: { 201: withEtag, ...errors, 409: problemRef, 413: problemRef, 415: problemRef },
      },
    },
    [`/api/${e.plugin}/${e.plural}/{id}`]: {
      parameters: [idParam],
      get: { tags: [tag], operationId: `get${name}`, 'x-permission': `${e.qualifiedName}.read`, parameters: [{ name: 'expand', in: 'query', schema: { type: 'string' } }], responses: { 200: withEtag, ...errors } },
      patch: {
        tags: [tag], operationId: `update${name}`, 'x-permission': `${e.qualifiedName}.update`, summary: 'Change some fields; null clears a field', parameters: [ifMatch],
        requestBody: { required: true, content: json({ $ref: `#/components/schemas/${name}Patch` }) },
        responses: { 200: withEtag, ...errors, 409: problemRef, 412: problemRef },
      },
      delete: { tags: [tag], operationId: `delete${name}`, 'x-permission': `${e.qualifiedName}.delete`, parameters: [ifMatch], responses: { 204: { description: 'Deleted' }, ...errors, 409: problemRef, 412: problemRef } },
    },
  };
}

const coreTag = 'core';

const GENERIC = '/api/:plugin/:entity/';

/**
 * Routes declared once for every entity (`/api/:plugin/:entity/:id/transitions`) are listed per
 * entity they serve, as the CRUD routes are: a generated client gets `takeTransitionCrmDeals`.
 */
function perEntity(route: MountedRoute, entities: EntityDefinition[]): MountedRoute[] {
  const params = route.spec.schemas.params;
  const properties = { ...((params?.properties ?? {}) as Obj) };
  delete properties.plugin;
  delete properties.entity;
  const required = ((params?.required ?? []) as string[]).filter((n) => n !== 'plugin' && n !== 'entity');
  return entities.map((e) => ({
    ...route,
    fullPath: route.fullPath.replace(GENERIC, `/api/${e.plugin}/${e.plural}/`),
    spec: { ...route.spec, operationId: `${route.spec.operationId}${componentName(e)}`, schemas: { ...route.spec.schemas, params: { ...params, properties, required } } },
  }));
}

export function buildOpenApi(coreVersion: string, entities: EntityDefinition[], routes: readonly MountedRoute[] = [], pluginErrors: readonly DeclaredError[] = [], hasLifecycle: (qualifiedName: string) => boolean = () => false): Obj {
  const errorCodes = [...coreErrorCatalog(), ...pluginErrors.map(({ code, status, title, description }) => ({ code, status, title, ...(description ? { description } : {}) }))];
  const schemas: Record<string, JsonSchema> = {
    Problem: {
      type: 'object',
      description: 'RFC 9457 problem details',
      required: ['type', 'title', 'status'],
      properties: {
        type: { type: 'string' }, title: { type: 'string' }, status: { type: 'integer' }, detail: { type: 'string' },
        code: { type: 'string', description: 'A stable error code; every code this installation answers with is listed in x-error-codes (plugin codes are <plugin>.<code>).', examples: errorCodes.slice(0, 3).map((e) => e.code) },
        instance: { type: 'string' }, field: { type: 'string' }, rule: { type: 'string' },
        errors: { type: 'array', items: { type: 'object', properties: { field: { type: 'string' }, rule: { type: 'string' }, message: { type: 'string' } } } },
      },
    },
  };
  const paths: Obj = {};
  for (const e of entities) {
    const { record, input, patch } = entitySchemas(e);
    schemas[componentName(e)] = record;
    schemas[`${componentName(e)}Input`] = input;
    schemas[`${componentName(e)}Patch`] = patch;
    Object.assign(paths, entityPaths(e));
  }
  // Every other route is declared with its schemas (core/http/route-contract.ts).
  const byName = new Map(entities.map((e) => [e.qualifiedName, componentName(e)]));
  const component = (q: string) => byName.get(q) ?? pascal(q);
  const statusOf = (code: string) => errorCodes.find((e) => e.code === code)?.status;
  // Generic per-entity routes today are the lifecycle transitions: listed for entities that have one.
  const listed = routes.flatMap((r) => (r.fullPath.startsWith(GENERIC) ? perEntity(r, entities.filter((e) => hasLifecycle(e.qualifiedName))) : [r]));
  for (const [path, item] of Object.entries(routePaths(listed, component, statusOf))) paths[path] = { ...(paths[path] as Obj | undefined), ...(item as Obj) };
  return {
    openapi: '3.1.0',
    info: { title: 'Kubiki API', version: coreVersion, description: 'Modular ERP/CRM. Errors are application/problem+json; money is a decimal string.' },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    tags: [{ name: coreTag }, ...[...new Set(entities.map((e) => e.plugin))].map((name) => ({ name }))],
    paths,
    'x-error-codes': errorCodes,
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      responses: { Problem: { description: 'Problem details', content: { 'application/problem+json': { schema: { $ref: '#/components/schemas/Problem' } } } } },
      schemas,
    },
  };
}
