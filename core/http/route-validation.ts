import type { ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { JsonSchema } from '../entities/entity-definition.ts';
import type { EntityRegistry } from '../entities/entity-registry.ts';
import { createAjv, toFieldIssues } from '../entities/ajv.ts';
import { KubikiError, type ErrorCode } from '../errors.ts';
import type { ResponseSpec, RouteSchemas } from './route-contract.ts';

// Compiles a route's schemas once (on its first request) and checks what comes in. Params and
// query arrive as strings and are coerced (`limit=20` → 20); bodies are checked as sent.

const SYSTEM_PROPERTIES: JsonSchema = {
  id: { type: 'string', format: 'uuid' },
  version: { type: 'integer' },
  createdAt: { type: 'string', format: 'date-time' },
  updatedAt: { type: 'string', format: 'date-time' },
  createdBy: { type: 'string', format: 'uuid' },
  updatedBy: { type: 'string', format: 'uuid' },
};

/** An entity's record as the API answers it: system fields plus declared and custom fields. */
export function recordResponseSchema(registry: EntityRegistry, qualifiedName: string): JsonSchema {
  const entity = registry.get(qualifiedName);
  const properties: JsonSchema = { ...SYSTEM_PROPERTIES };
  for (const field of entity.fields.values()) properties[field.name] = field.schema;
  return { type: 'object', properties, required: ['id', 'version'], additionalProperties: false };
}

/** Replaces `{ "x-entity-record": name }` markers by the entity's record schema. */
export function resolveEntityMarkers(schema: unknown, registry: EntityRegistry): unknown {
  if (Array.isArray(schema)) return schema.map((s) => resolveEntityMarkers(s, registry));
  if (typeof schema !== 'object' || schema === null) return schema;
  const marker = (schema as Record<string, unknown>)['x-entity-record'];
  if (typeof marker === 'string') return recordResponseSchema(registry, marker);
  const input = (schema as Record<string, unknown>)['x-entity-input'];
  if (typeof input === 'string') return { type: 'object', additionalProperties: true, description: `validated as ${input} by its repository` };
  return Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, resolveEntityMarkers(v, registry)]));
}

/** Objects refuse what they do not declare unless they say otherwise. */
function closed(schema: JsonSchema): JsonSchema {
  return schema.type === 'object' && !('additionalProperties' in schema) ? { ...schema, additionalProperties: false } : schema;
}

let coercingAjv: Ajv2020 | undefined;
/** For params and query: strings coerced to the declared types, a single value to a one-item array. */
function paramsAjv(): Ajv2020 {
  return (coercingAjv ??= createAjv({ coerceTypes: 'array' }));
}
let bodyAjv: Ajv2020 | undefined;
const bodies = (): Ajv2020 => (bodyAjv ??= createAjv());

export interface CompiledRoute {
  params?: ValidateFunction;
  query?: ValidateFunction;
  body?: ValidateFunction;
}

const NO_QUERY: JsonSchema = { type: 'object', properties: {} };

export function compileRouteSchemas(schemas: RouteSchemas, registry: EntityRegistry): CompiledRoute {
  const compile = (ajv: Ajv2020, schema: JsonSchema | undefined) => (schema ? ajv.compile(closed(resolveEntityMarkers(schema, registry) as JsonSchema)) : undefined);
  // A route that declares no query takes none: `?q=` on it is refused rather than silently ignored.
  return { params: compile(paramsAjv(), schemas.params), query: compile(paramsAjv(), schemas.query ?? NO_QUERY), body: compile(bodies(), schemas.body) };
}

const refuse = (code: ErrorCode, where: 'path' | 'query' | 'body', validate: ValidateFunction): KubikiError => {
  // A body field keeps the entity wording (unknown-field, as on entity routes); a path or query names the parameter.
  const issues = toFieldIssues(validate.errors).map((i) => (i.rule === 'unknown-field' && where !== 'body' ? { ...i, rule: 'unknown-parameter', message: `unknown ${where} parameter ${i.field}` } : i));
  return new KubikiError(code, issues.map((i) => i.message).join('; '), { issues });
};

/** Checks (and coerces) params and query in place; throws the problem a client gets. */
export function checkParams(compiled: CompiledRoute, params: Record<string, unknown>, query: Record<string, unknown>): void {
  if (compiled.params && !compiled.params(params)) throw refuse('not-found', 'path', compiled.params);
  if (compiled.query && !compiled.query(query)) throw refuse('bad-query', 'query', compiled.query);
}

/** The body the handler gets: checked against the schema, or refused when the route takes none. */
export function checkBody(compiled: CompiledRoute, method: string, body: unknown): unknown {
  if (compiled.body) {
    if (!compiled.body(body)) throw refuse('validation-failed', 'body', compiled.body);
    return body;
  }
  const empty = body === undefined || (typeof body === 'object' && body !== null && !Array.isArray(body) && Object.keys(body).length === 0);
  if (!empty && method !== 'get' && method !== 'delete') {
    const first = typeof body === 'object' && body !== null && !Array.isArray(body) ? Object.keys(body)[0] : '';
    throw new KubikiError('validation-failed', 'this call takes no request body', { issues: [{ field: first, rule: 'unknown-field', message: first ? `${first} is not a field of this call (it takes no body)` : 'this call takes no body' }] });
  }
  return body ?? {};
}

// ── Response checks (the test suite turns them on with KUBIKI_CHECK_RESPONSES=1) ──────────────

const responseAjv = new Ajv2020({ allErrors: true, strict: false, validateFormats: true });
{
  // The same formats as requests, so a response that could not be sent back fails the check.
  const formats = createAjv().formats;
  for (const [name, format] of Object.entries(formats)) responseAjv.addFormat(name, format as never);
}
const responseValidators = new Map<string, ValidateFunction>();

export const responseSchemaOf = (spec: ResponseSpec | undefined): JsonSchema | undefined =>
  spec === undefined ? undefined : typeof spec.description === 'string' && !('type' in spec) && !('$ref' in spec) && !('oneOf' in spec) && !('anyOf' in spec) ? (spec.schema as JsonSchema | undefined) : (spec as JsonSchema);

export const responseContentType = (spec: ResponseSpec | undefined): string =>
  spec && typeof spec.description === 'string' && typeof spec.contentType === 'string' ? spec.contentType : 'application/json';

/** The other media types a response declares (`alternatives`), media type → schema. */
export const responseAlternatives = (spec: ResponseSpec | undefined): Record<string, JsonSchema> =>
  spec && typeof spec.description === 'string' && typeof spec.alternatives === 'object' && spec.alternatives !== null ? spec.alternatives as Record<string, JsonSchema> : {};

/** Why a response breaks its route's declaration, or undefined when it keeps it. */
export function responseProblem(schemas: RouteSchemas, status: number, body: unknown, contentType: string, registry: EntityRegistry): string | undefined {
  if (status >= 400) return undefined; // problem+json, rendered by the error middleware
  const spec = schemas.responses[status];
  if (spec === undefined) return `status ${status} is not declared (declared: ${Object.keys(schemas.responses).join(', ')})`;
  const declaredType = responseContentType(spec);
  // Another declared media type (a report's text/csv): its body is text, checked by its type.
  const alternative = Object.keys(responseAlternatives(spec)).find((type) => contentType.startsWith(type));
  if (alternative !== undefined && alternative !== declaredType) return undefined;
  const schema = responseSchemaOf(spec);
  if (schema === undefined) return body === undefined || body === null || declaredType !== 'application/json' ? undefined : `status ${status} declares no body but one was sent`;
  if (declaredType !== 'application/json') return contentType.startsWith(declaredType) ? undefined : `content type ${contentType}, declared ${declaredType}`;
  const resolved = JSON.stringify(resolveEntityMarkers(schema, registry));
  let validate = responseValidators.get(resolved);
  if (!validate) {
    validate = responseAjv.compile(JSON.parse(resolved) as JsonSchema);
    responseValidators.set(resolved, validate);
  }
  const json: unknown = JSON.parse(JSON.stringify(body ?? null));
  if (validate(json)) return undefined;
  return (validate.errors ?? []).slice(0, 5).map((e) => `${e.instancePath || '(body)'} ${e.message ?? ''} ${JSON.stringify(e.params)}`).join('; ');
}
