import type { Principal } from '../../auth/principal.ts';
import type { JsonSchema } from '../../entities/entity-definition.ts';
import type { ErrorCode } from '../../errors.ts';
import type { ItemVersion } from '../../versioning/versioned-store.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { page, timestamp } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';

/** What templates and workflow definitions both offer: versions, publishing, diffs. */
export interface VersionedApi<S extends { publishedVersion: number | null; latestVersion: number }, M> {
  list(): Promise<unknown[]>;
  summary(id: string): Promise<S>;
  version(id: string, version: number): Promise<ItemVersion<M>>;
  versions(id: string): Promise<Omit<ItemVersion<M>, 'source'>[]>;
  save(id: string, body: unknown, actor: Principal, requestId?: string): Promise<ItemVersion<M>>;
  publish(id: string, version: number | undefined, actor: Principal, action: 'published' | 'rolled-back', requestId?: string): Promise<S>;
  diff(id: string, from: number, to: number): Promise<string>;
  /** Takes the published version out of use (workflows). Without it there is no unpublish route. */
  unpublish?(id: string, actor: Principal, requestId?: string): Promise<S>;
}

/**
 * The id of a versioned item as both stores accept it: `<plugin>.<name>`, the name starting with a
 * letter, at most 61 characters (TEMPLATE_ID in template-catalog.ts, `id` in workflow.schema.json).
 * Stricter than common.ts's itemIdParams, which lets a name start with a digit no store accepts.
 */
export const ITEM_ID_PATTERN = '^[a-z][a-z0-9]*\\.[a-z][a-z0-9-]{0,60}$';

export const versionedItemParams = (example: string): JsonSchema => ({
  type: 'object', required: ['id'],
  properties: { id: { type: 'string', pattern: ITEM_ID_PATTERN, maxLength: 120, description: `<plugin>.<name>, e.g. ${example}` } },
});

/** A version number (1, 2, …). */
export const versionNumber: JsonSchema = { type: 'integer', minimum: 1, maximum: 999_999_999 };

const ANY_JSON_VALUE: JsonSchema = { anyOf: ['object', 'array', 'string', 'number', 'boolean', 'null'].map((type) => ({ type })) };

/**
 * A body the caller may leave out (no body reads as `{}`), else `schema` (an object schema, closed
 * here: `closed()` in route-validation only closes a top-level `type: object`).
 *
 * The route contract has no optional body: a declared body schema makes a missing body fail
 * ("body must be object"). "No body at all" is the one value JSON Schema cannot name, so it is
 * matched as "none of the JSON types" in `if`; anything sent goes to `else`.
 */
export function optionalBody(schema: JsonSchema): JsonSchema {
  return {
    description: `Optional: no body is the same as {}. ${typeof schema.description === 'string' ? schema.description : ''}`.trim(),
    if: { not: ANY_JSON_VALUE }, then: true,
    else: { additionalProperties: false, ...schema },
  };
}

/** Summary fields as the stores answer them; `listItem` is one row of the list. */
export interface VersionedOptions {
  /** `Template`, `Workflow`: operationIds are `list${plural}`, `get${name}`, `save${name}`… */
  name: string;
  plural: string;
  /** `document template`, `workflow definition` (summaries). */
  noun: string;
  /** An id to show (`base.invoice`). */
  example: string;
  permissions: { read: string; manage: string };
  /** A row of the list. */
  listItem: JsonSchema;
  /** The summary GET one, publish, rollback (and unpublish) answer: an object schema. */
  summary: JsonSchema;
  /** A version's structured metadata (a template's metadata, a workflow's parsed definition). */
  metadata: JsonSchema;
  /** PUT's body and what it does. */
  saveBody: JsonSchema;
  saveDescription: string;
  saveErrors: ErrorCode[];
}

/** One saved version: source, metadata and who saved it. */
function versionSchema(metadata: JsonSchema, withSource: boolean): JsonSchema {
  return {
    type: 'object', additionalProperties: false,
    required: ['id', 'version', 'origin', ...(withSource ? ['source'] : []), 'metadata', 'sourceHash', 'comment', 'createdBy', 'createdAt'],
    properties: {
      id: { type: 'string' }, version: versionNumber,
      origin: { enum: ['default', 'edit'], description: 'default: a shipped file imported; edit: saved through the API or CLI' },
      ...(withSource ? { source: { type: 'string' } } : {}),
      metadata, sourceHash: { type: 'string', description: 'SHA-256 of source and metadata' },
      comment: { type: 'string' }, createdBy: { type: 'string', description: 'Username' }, createdAt: timestamp,
    },
  };
}

/**
 * GET list, GET one (`?version=N`, else the published or latest), PUT (a new version), versions,
 * publish, rollback, diff (and unpublish, where the store has it) under `prefix`, behind the
 * `read` and `manage` permissions.
 */
export function versionedRoutes<S extends { publishedVersion: number | null; latestVersion: number }, M>(
  prefix: string, api: VersionedApi<S, M>, o: VersionedOptions,
): RouteSpec<unknown, unknown, unknown>[] {
  const params = versionedItemParams(o.example);
  const { read, manage } = o.permissions;
  const summaryProperties = (o.summary.properties ?? {}) as JsonSchema;
  const shown = versionSchema(o.metadata, true);
  const shownProperties = shown.properties as JsonSchema;
  const detail: JsonSchema = {
    type: 'object', additionalProperties: false,
    required: [...new Set([...((o.summary.required as string[] | undefined) ?? []), 'version', 'origin', 'metadata', 'source', 'comment', 'createdBy', 'createdAt'])],
    properties: {
      ...summaryProperties,
      version: { ...versionNumber, description: 'The version shown: ?version=N, else the published one, else the latest' },
      origin: shownProperties.origin, metadata: o.metadata, source: { type: 'string' }, comment: { type: 'string' },
      createdBy: shownProperties.createdBy, createdAt: timestamp,
    },
  };
  const diffObject: JsonSchema = {
    type: 'object', additionalProperties: false, required: ['from', 'to', 'diff'],
    properties: { from: versionNumber, to: versionNumber, diff: { type: 'string', description: 'Unified diff of the sources, then of the metadata when it changed' } },
  };

  const routes: RouteSpec<unknown, unknown, unknown>[] = [
    defineRoute({
      method: 'get', path: prefix, operationId: `list${o.plural}`, summary: `List ${o.noun}s with their published and latest versions`, permission: read,
      schemas: { responses: { 200: page(o.listItem) } },
      async handler(_input, http) {
        http.body = { data: await api.list(), next: null };
      },
    }),
    defineRoute<{ id: string }, { version?: number }>({
      method: 'get', path: `${prefix}/:id`, operationId: `get${o.name}`, summary: `A ${o.noun} with the source and metadata of one version`,
      description: 'The version shown is `?version=N`, else the published one, else the latest.', permission: read, errors: ['not-found'],
      schemas: { params, query: { type: 'object', properties: { version: { ...versionNumber, description: 'The version to show' } } }, responses: { 200: detail } },
      async handler({ params: { id }, query }, http) {
        const summary = await api.summary(id);
        const v = await api.version(id, query.version ?? summary.publishedVersion ?? summary.latestVersion);
        http.body = { ...summary, version: v.version, origin: v.origin, metadata: v.metadata, source: v.source, comment: v.comment, createdBy: v.createdBy, createdAt: v.createdAt };
      },
    }),
    defineRoute<{ id: string }, unknown, Record<string, unknown>>({
      method: 'put', path: `${prefix}/:id`, operationId: `save${o.name}`, summary: `Save a new (unpublished) version of a ${o.noun}`,
      description: o.saveDescription, permission: manage, errors: o.saveErrors,
      schemas: { params, body: o.saveBody, responses: { 200: versionSchema(o.metadata, true) } },
      async handler({ params: { id }, body, principal }, http) {
        http.body = await api.save(id, body, principal, stateOf(http).requestId);
      },
    }),
    defineRoute<{ id: string }>({
      method: 'get', path: `${prefix}/:id/versions`, operationId: `list${o.name}Versions`, summary: `Versions of a ${o.noun}, newest first (without their source)`,
      permission: read, errors: ['not-found'],
      schemas: { params, responses: { 200: page(versionSchema(o.metadata, false)) } },
      async handler({ params: { id } }, http) {
        http.body = { data: await api.versions(id), next: null };
      },
    }),
    defineRoute<{ id: string }, unknown, { version?: number } | undefined>({
      method: 'post', path: `${prefix}/:id/publish`, operationId: `publish${o.name}`, summary: `Publish a version of a ${o.noun} (the latest when none is named)`,
      permission: manage, errors: ['not-found'],
      schemas: { params, body: optionalBody({ type: 'object', properties: { version: versionNumber } }), responses: { 200: o.summary } },
      async handler({ params: { id }, body, principal }, http) {
        http.body = await api.publish(id, body?.version, principal, 'published', stateOf(http).requestId);
      },
    }),
    defineRoute<{ id: string }, unknown, { version: number }>({
      method: 'post', path: `${prefix}/:id/rollback`, operationId: `rollback${o.name}`, summary: `Publish an earlier version of a ${o.noun} again`,
      permission: manage, errors: ['not-found'],
      schemas: { params, body: { type: 'object', required: ['version'], properties: { version: versionNumber } }, responses: { 200: o.summary } },
      async handler({ params: { id }, body, principal }, http) {
        http.body = await api.publish(id, body.version, principal, 'rolled-back', stateOf(http).requestId);
      },
    }),
    defineRoute<{ id: string }, { from: number; to: number }>({
      method: 'get', path: `${prefix}/:id/diff`, operationId: `diff${o.name}`, summary: `Unified diff of two versions of a ${o.noun}`,
      description: 'JSON `{from, to, diff}`; with `Accept: text/plain` the diff itself as text/plain.', permission: read, errors: ['not-found'],
      schemas: {
        params,
        query: { type: 'object', required: ['from', 'to'], properties: { from: { ...versionNumber, description: 'The older version' }, to: { ...versionNumber, description: 'The newer version' } } },
        // One status, two content types: the contract declares one per status, so the JSON
        // schema also admits the text/plain answer (a string) for the response check.
        responses: {
          200: {
            description: 'The diff (application/json; text/plain with Accept: text/plain)',
            schema: { anyOf: [diffObject, { type: 'string', description: 'With Accept: text/plain: the unified diff as text' }] },
          },
        },
      },
      async handler({ params: { id }, query: { from, to } }, http) {
        const diff = await api.diff(id, from, to);
        if (http.accepts('application/json', 'text/plain') === 'text/plain') {
          http.type = 'text/plain';
          http.body = diff;
        } else {
          http.body = { from, to, diff };
        }
      },
    }),
  ];
  const unpublish = api.unpublish?.bind(api);
  if (unpublish) {
    routes.push(defineRoute<{ id: string }>({
      method: 'post', path: `${prefix}/:id/unpublish`, operationId: `unpublish${o.name}`, summary: `Unpublish a ${o.noun}`,
      description: 'Triggers and transitions stop, running instances finish on their version; shipped updates do not publish it again until someone does. Nothing is deleted.',
      permission: manage, errors: ['not-found', 'conflict'],
      schemas: { params, responses: { 200: o.summary } },
      async handler({ params: { id }, principal }, http) {
        http.body = await unpublish(id, principal, stateOf(http).requestId);
      },
    }));
  }
  return routes;
}
