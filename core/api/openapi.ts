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

function entitySchemas(e: EntityDefinition): { record: Obj; input: Obj } {
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
  return { record, input };
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
        tags: [tag], operationId: `list${name}`, summary: `List ${e.title} records`, parameters: listParameters(e),
        responses: {
          200: { description: 'A page of records', content: json({ type: 'object', required: ['data', 'next'], properties: { data: { type: 'array', items: ref }, next: { type: ['string', 'null'] }, total: { type: 'integer' } } }) },
          ...errors,
        },
      },
      post: {
        tags: [tag], operationId: `create${name}`, summary: `Create a ${e.title}`,
        requestBody: { required: true, content: json(input) },
        responses: { 201: withEtag, ...errors, 409: problemRef, 413: problemRef, 415: problemRef },
      },
    },
    [`/api/${e.plugin}/${e.plural}/{id}`]: {
      parameters: [idParam],
      get: { tags: [tag], operationId: `get${name}`, parameters: [{ name: 'expand', in: 'query', schema: { type: 'string' } }], responses: { 200: withEtag, ...errors } },
      patch: {
        tags: [tag], operationId: `update${name}`, summary: 'Change some fields; null clears a field', parameters: [ifMatch],
        requestBody: { required: true, content: json({ type: 'object', description: `Any fields of ${name}Input; null clears one.` }) },
        responses: { 200: withEtag, ...errors, 409: problemRef, 412: problemRef },
      },
      delete: { tags: [tag], operationId: `delete${name}`, parameters: [ifMatch], responses: { 204: { description: 'Deleted' }, ...errors, 409: problemRef, 412: problemRef } },
    },
  };
}

const coreTag = 'core';
const simple = (summary: string, responses: Obj = { 200: { description: 'OK' } }, extra: Obj = {}) => ({ tags: [coreTag], summary, responses: { ...responses, 401: problemRef, 403: problemRef }, ...extra });

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string' } };

/** The routes every versioned item has (templates, workflows): see core/http/routes/versioned-routes.ts. */
function versionedPaths(prefix: string, noun: string, permission: string): Obj {
  const versions = (name: string) => ({ name, in: 'query', schema: { type: 'integer', minimum: 1 } });
  return {
    [prefix]: { get: simple(`List ${noun}s (${permission}.read)`) },
    [`${prefix}/{id}`]: {
      parameters: [idParam],
      get: simple(`A ${noun} version: published, latest, or ?version=N`, { 200: { description: 'Version' }, 404: problemRef }, { parameters: [versions('version')] }),
      put: simple(`Save a new version (${permission}.manage)`, { 200: { description: 'Saved version' }, 400: problemRef }),
    },
    [`${prefix}/{id}/versions`]: { parameters: [idParam], get: simple('Versions, newest first') },
    [`${prefix}/{id}/publish`]: { parameters: [idParam], post: simple('Publish a version (the latest by default)', { 200: { description: 'Summary' }, 404: problemRef }) },
    [`${prefix}/{id}/rollback`]: { parameters: [idParam], post: simple('Publish an earlier version', { 200: { description: 'Summary' }, 400: problemRef, 404: problemRef }) },
    [`${prefix}/{id}/diff`]: { parameters: [idParam, versions('from'), versions('to')], get: simple('Unified diff of two versions', { 200: { description: 'Diff' }, 400: problemRef, 404: problemRef }) },
  };
}

function corePaths(): Obj {
  const pluginName = { name: 'name', in: 'path', required: true, schema: { type: 'string' } };
  return {
    '/api/auth/login': {
      post: {
        tags: [coreTag], summary: 'Exchange username and password for a session token', security: [],
        requestBody: { required: true, content: json({ type: 'object', required: ['username', 'password'], properties: { username: { type: 'string' }, password: { type: 'string' } }, additionalProperties: false }) },
        responses: { 200: { description: 'Session token' }, 400: problemRef, 401: problemRef },
      },
    },
    '/api/auth/logout': { post: simple('Revoke the calling token', { 204: { description: 'Logged out' } }) },
    '/api/auth/me': { get: simple('The calling user and their permissions') },
    '/api/users': { get: simple('Users (core.users.read)'), post: simple('Create a user (core.users.create)', { 201: { description: 'User' }, 400: problemRef, 409: problemRef }) },
    '/api/users/{id}': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      get: simple('One user'), patch: simple('Change a user (core.users.update)', { 200: { description: 'User' }, 400: problemRef, 404: problemRef }),
    },
    '/api/users/{id}/tokens': {
      parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
      get: simple('Active tokens of a user'), post: simple('Issue an API token (shown once)', { 201: { description: 'Token' } }),
    },
    '/api/roles': { get: simple('Roles (core.roles.read)') },
    '/api/roles/{name}': {
      parameters: [{ name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
      put: simple('Create or replace a role (core.roles.manage)', { 200: { description: 'Role' }, 400: problemRef }),
      delete: simple('Delete a role no user holds', { 204: { description: 'Deleted' }, 409: problemRef }),
    },
    ...versionedPaths('/api/templates', 'document template', 'core.templates'),
    '/api/templates/{id}/preview': { parameters: [idParam], post: simple('Render a version for a record or sample data; lists missing fields', { 200: { description: 'HTML and missingFields' }, 400: problemRef, 404: problemRef }) },
    '/api/templates/{id}/render': { parameters: [idParam], post: simple('Render the published version for a record and store the document (core.documents.create)', { 201: { description: 'Stored document' }, 400: problemRef, 404: problemRef, 406: problemRef }) },
    '/api/documents': { get: simple('Stored documents, newest first', { 200: { description: 'Documents' }, 400: problemRef }, { parameters: ['entity', 'recordId', 'limit'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })) }) },
    '/api/documents/{id}': { parameters: [idParam], get: simple('Metadata of a stored document', { 200: { description: 'Document' }, 404: problemRef }) },
    '/api/documents/{id}/content': { parameters: [idParam], get: simple('The stored bytes, exactly as rendered', { 200: { description: 'HTML or PDF' }, 404: problemRef }) },
    '/api/settings/company': { get: simple('Company profile printed on documents'), put: simple('Replace the company profile (core.settings.manage)', { 200: { description: 'Profile' }, 400: problemRef }) },
    '/api/notifications': {
      get: simple('The notification outbox, newest first (core.notifications.read)', { 200: { description: 'Notifications' }, 400: problemRef }, { parameters: ['status', 'channel', 'limit'].map((name) => ({ name, in: 'query', schema: { type: 'string' } })) }),
      post: simple('Send an email or SMS; held in the outbox when the channel has no transport; a repeated idempotencyKey returns the first (core.notifications.send)', { 200: { description: 'The notification sent before with this idempotencyKey' }, 201: { description: 'Notification' }, 400: problemRef }),
    },
    '/api/notifications/{id}': { parameters: [idParam], get: simple('One notification with its body (core.notifications.read)', { 200: { description: 'Notification' }, 404: problemRef }) },
    '/api/notifications/{id}/retry': { parameters: [idParam], post: simple('Send a failed (or held) notification again (core.notifications.send)', { 200: { description: 'Notification' }, 404: problemRef, 409: problemRef }) },
    '/api/workflows/schema.json': { get: simple('JSON Schema of workflow definitions') },
    '/api/workflows/validate': { post: simple('Validate a definition: every error with its JSON path', { 200: { description: '{ valid, errors }' }, 400: problemRef }) },
    ...versionedPaths('/api/workflows', 'workflow definition', 'core.workflows'),
    '/api/workflows/instances': { get: simple('Workflow instances, newest first; filters status, workflow, entity, recordId; keyset cursor', { 200: { description: '{ data, next }' }, 400: problemRef }) },
    '/api/workflows/instances/{id}': { parameters: [idParam], get: simple('One instance with its variables, outputs and step history', { 200: { description: 'instance' }, 404: problemRef }) },
    '/api/workflows/instances/{id}/retry': { parameters: [idParam], post: simple('Run the failed steps of a failed instance again', { 200: { description: 'instance' }, 404: problemRef, 409: problemRef }) },
    '/api/workflows/instances/{id}/cancel': { parameters: [idParam], post: simple('Cancel an instance, its open steps, tasks and sub-workflows', { 200: { description: 'instance' }, 404: problemRef, 409: problemRef }) },
    '/api/workflows/{id}/unpublish': { parameters: [idParam], post: simple('Unpublish: triggers and transitions stop, running instances finish; publishing brings it back', { 200: { description: 'summary' }, 404: problemRef, 409: problemRef }) },
    '/api/workflows/{id}/run': { parameters: [idParam], post: simple('Start a manual workflow: { recordId?, input? }', { 202: { description: '{ instanceId }' }, 400: problemRef, 404: problemRef, 409: problemRef }) },
    '/api/workflows/{id}/webhook': { parameters: [idParam], post: { tags: [coreTag], summary: 'Start a webhook workflow; the body signed with X-Kubiki-Signature: sha256=<HMAC>, deduplicated by X-Kubiki-Delivery', security: [], responses: { 202: { description: '{ instanceId, created }' }, 200: { description: 'a repeated delivery' }, 400: problemRef, 401: problemRef, 404: problemRef } } },
    '/api/tasks': { get: simple("The caller's open approval tasks", { 200: { description: '{ data }' } }) },
    '/api/tasks/{id}': { parameters: [idParam], get: simple('One approval task with its decisions', { 200: { description: 'task' }, 404: problemRef }) },
    '/api/tasks/{id}/approve': { parameters: [idParam], post: simple('Approve: { comment? }', { 200: { description: 'task' }, 400: problemRef, 404: problemRef, 409: problemRef }) },
    '/api/tasks/{id}/reject': { parameters: [idParam], post: simple('Reject: { comment }', { 200: { description: 'task' }, 400: problemRef, 404: problemRef, 409: problemRef }) },
    '/api/workflows/{id}/diagram': { parameters: [idParam], get: simple('Mermaid diagram of a version (published by default)', { 200: { description: 'Mermaid text' }, 404: problemRef }) },
    '/api/workflows/{id}/dry-run': { parameters: [idParam], post: simple('Dry run: the latest version (or version, or unsaved source) against a record or payload; path, evaluated steps and what they would write or send — nothing is written', { 200: { description: '{ outcome, path, steps, vars }' }, 400: problemRef, 404: problemRef }) },
    '/api/meta/entities': { get: simple('Entities of enabled plugins with their fields') },
    '/api/meta/entities/{plugin}/{entity}/fields': {
      parameters: ['plugin', 'entity'].map((name) => ({ name, in: 'path', required: true, schema: { type: 'string' } })),
      post: simple('Add a custom field (core.customFields.manage)', { 201: { description: 'Field' }, 400: problemRef, 409: problemRef }),
    },
  };
}

/** The OpenAPI 3.1 document of what this installation serves right now. */
/** The transition routes of an entity that has a published lifecycle. */
function transitionPaths(e: EntityDefinition): Obj {
  const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', format: 'uuid' } };
  const errors = { 400: problemRef, 401: problemRef, 403: problemRef, 404: problemRef };
  const name = componentName(e);
  return {
    [`/api/${e.plugin}/${e.plural}/{id}/transitions`]: {
      parameters: [idParam],
      get: { tags: [e.plugin], operationId: `transitionsOf${name}`, summary: 'The record\'s lifecycle state and the transitions, each with whether you may take it', responses: { 200: { description: '{ workflow, state, transitions }' }, ...errors } },
    },
    [`/api/${e.plugin}/${e.plural}/{id}/transitions/{name}`]: {
      parameters: [idParam, { name: 'name', in: 'path', required: true, schema: { type: 'string' } }],
      post: {
        tags: [e.plugin], operationId: `transition${name}`, summary: 'Take a lifecycle transition: { input?, version? }',
        responses: { 200: { description: '{ record, transition, from, to, instanceId }' }, ...errors, 409: problemRef },
      },
    },
  };
}

export function buildOpenApi(coreVersion: string, entities: EntityDefinition[], hasLifecycle: (qualifiedName: string) => boolean = () => false, routes: readonly MountedRoute[] = [], pluginErrors: readonly DeclaredError[] = []): Obj {
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
  let paths: Obj = corePaths();
  for (const e of entities) {
    const { record, input } = entitySchemas(e);
    schemas[componentName(e)] = record;
    schemas[`${componentName(e)}Input`] = input;
    paths = { ...paths, ...entityPaths(e), ...(hasLifecycle(e.qualifiedName) ? transitionPaths(e) : {}) };
  }
  // Declared routes win over the hand-written entries above (which go as routes are declared).
  const byName = new Map(entities.map((e) => [e.qualifiedName, componentName(e)]));
  const component = (q: string) => byName.get(q) ?? pascal(q);
  const statusOf = (code: string) => errorCodes.find((e) => e.code === code)?.status;
  for (const [path, item] of Object.entries(routePaths(routes, component, statusOf))) paths[path] = { ...(paths[path] as Obj | undefined), ...(item as Obj) };
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
