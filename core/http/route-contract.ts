import type { RouterContext } from '@koa/router';
import type { Principal } from '../auth/principal.ts';
import type { JsonSchema } from '../entities/entity-definition.ts';
import type { ErrorCode, PluginErrorCode } from '../errors.ts';

// A route is data: method, path, permission and JSON Schemas for what comes in and goes out
// (Fastify's route `schema` is the model). The core validates params, query and body before the
// handler runs (problem+json naming the field, nothing written), publishes the same schemas in
// OpenAPI, and in the test suite checks every response against its declared schema.

export type HttpMethod = 'get' | 'post' | 'put' | 'patch' | 'delete';

/**
 * Who may call: a permission name (`finance.invoices.post`), `signed-in` (any authenticated user),
 * or `public` (no token: health, login, signed webhooks).
 */
export type RoutePermission = string;

/**
 * A response: its JSON Schema, or a fuller description (another content type, no body, and
 * `alternatives`: other media types the same status answers with, e.g. `text/csv` for a report
 * asked with format=csv — media type → schema of that body).
 */
export type ResponseSpec =
  | JsonSchema
  | { description: string; schema?: JsonSchema; contentType?: string; headers?: Record<string, string>; alternatives?: Record<string, JsonSchema> };

export interface RouteSchemas {
  /** Path parameters (`:id`); each is a string before coercion. A mismatch answers 404 naming the parameter. */
  params?: JsonSchema;
  /** Query parameters; unknown ones are refused unless the schema allows them. Coerced from strings. */
  query?: JsonSchema;
  /** The JSON body. Without it a POST/PUT/PATCH takes no body (nothing, or `{}`). */
  body?: JsonSchema;
  /** Status → response. Problem responses (4xx) come from `errors` and the route's checks. */
  responses: Record<number, ResponseSpec>;
}

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** The caller (an anonymous principal without permissions on `public` routes). */
  principal: Principal;
}

export interface RouteSpec<P = Record<string, string>, Q = Record<string, unknown>, B = unknown> {
  method: HttpMethod;
  /** Koa path: `/api/templates/:id/preview` (core) or `/reports/trial-balance` (plugin, under /api/<plugin>). */
  path: string;
  /** Unique across the API: becomes the OpenAPI operationId (plugin routes are prefixed with the plugin). */
  operationId: string;
  summary: string;
  description?: string;
  permission: RoutePermission;
  schemas: RouteSchemas;
  /** Error codes the route answers besides validation (listed in OpenAPI): core codes or the plugin's declared ones (`finance.period-closed`). */
  errors?: (ErrorCode | PluginErrorCode)[];
  handler(input: RouteInput<P, Q, B>, http: RouterContext): Promise<void> | void;
}

/** A route as the router mounts it: spec plus where it lives. */
export interface MountedRoute {
  /** Input types are erased here (the handler is a method, so any declared route fits); typed where declared. */
  spec: RouteSpec<unknown, unknown, unknown>;
  /** `core` or the plugin's name (its OpenAPI tag). */
  owner: string;
  /** The full Koa path (`/api/finance/invoices/:id/post`). */
  fullPath: string;
}

/** Declares a route; the generic parameters type the handler's input. */
export const defineRoute = <P = Record<string, string>, Q = Record<string, unknown>, B = unknown>(spec: RouteSpec<P, Q, B>): RouteSpec<P, Q, B> => spec;

/** A marker the core replaces by an entity's record schema (validation) or a `$ref` to it (OpenAPI). */
export const entityRecord = (qualifiedName: string): JsonSchema => ({ 'x-entity-record': qualifiedName });

/**
 * A marker for a request body that is an entity's input (OpenAPI: a `$ref` to `<Entity>Input`).
 * The route lets any object through; the entity repository validates it with custom fields included.
 */
export const entityInput = (qualifiedName: string): JsonSchema => ({ 'x-entity-input': qualifiedName });

/** `{ data: [records], next }`: an entity list page. */
export const entityPage = (qualifiedName: string): JsonSchema => ({
  type: 'object', required: ['data', 'next'],
  properties: { data: { type: 'array', items: entityRecord(qualifiedName) }, next: { type: ['string', 'null'] }, total: { type: 'integer' } },
});

/** The usual path parameter: a record id. */
export const idParams: JsonSchema = {
  type: 'object', required: ['id'], additionalProperties: false,
  properties: { id: { type: 'string', format: 'uuid', description: 'A record id (UUID)' } },
};
