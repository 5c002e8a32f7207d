import type { JsonSchema } from '../../core/entities/entity-definition.ts';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import type { ApiResponse, TestKubiki } from './test-kubiki.ts';

// Probes of declared routes through REST, driven by their own declarations: a malformed path
// parameter, an unknown query parameter, a body field of the wrong type. Input is checked before a
// handler runs, so the ids need not exist.

type Spec = RouteSpec<unknown, unknown, unknown>;

/** Path parameters that are not the probed one, well-formed. */
const WELL_FORMED: Record<string, string> = { plugin: 'base', entity: 'products', name: 'activate' };
const SAMPLE_UUID = '00000000-0000-7000-8000-000000000000';

/** Ids no store accepts: not UUIDs, not `<plugin>.<name>`. */
export const MALFORMED_IDS = ['0', 'not-a-uuid', "1'--", 'Alpha_Note', 'base.9-starts-with-a-digit', 'base.', `base.${'x'.repeat(200)}`];

const paramSchema = (spec: Spec, name: string): JsonSchema =>
  (((spec.schemas.params?.properties ?? {}) as Record<string, JsonSchema>)[name] ?? {});

/** A well-formed value for a path parameter (a UUID, a position, an item id, or the usual names). */
function sampleParam(spec: Spec, name: string): string {
  if (WELL_FORMED[name]) return WELL_FORMED[name];
  const schema = paramSchema(spec, name);
  if (schema.type === 'integer') return String(schema.minimum ?? 1);
  return schema.format === 'uuid' ? SAMPLE_UUID : 'base.no-such-item';
}

/** The route's path with `:id` (or every parameter) filled in. */
export function urlOf(spec: Spec, id?: string): string {
  return spec.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(name === 'id' && id !== undefined ? id : sampleParam(spec, name)));
}

const hasBody = (spec: Spec): boolean => ['post', 'put', 'patch'].includes(spec.method);

export async function call(t: TestKubiki, spec: Spec, url: string, body?: unknown): Promise<ApiResponse> {
  return t.api(spec.method.toUpperCase(), url, body ?? (hasBody(spec) ? {} : undefined));
}

/** A query string with every required parameter well-formed. */
export function requiredQuery(spec: Spec): URLSearchParams {
  const query = spec.schemas.query ?? {};
  const properties = (query.properties ?? {}) as Record<string, JsonSchema>;
  const out = new URLSearchParams();
  for (const name of (query.required as string[] | undefined) ?? []) {
    const s = properties[name];
    out.set(name, s.type === 'integer' || s.type === 'number' ? String(s.minimum ?? 1) : s.format === 'uuid' ? SAMPLE_UUID : 'x');
  }
  return out;
}

/** The object schema of a body (through `optionalBody`'s `else`). */
function bodyObject(spec: Spec): JsonSchema {
  const body = spec.schemas.body ?? {};
  return (typeof body.else === 'object' && body.else !== null ? body.else : body) as JsonSchema;
}

/** The properties a body schema declares. */
export const bodyProperties = (spec: Spec): Record<string, JsonSchema> => (bodyObject(spec).properties ?? {}) as Record<string, JsonSchema>;

/** A well-typed value for a (simple) schema. */
function sampleValue(schema: JsonSchema): unknown {
  if (Array.isArray(schema.enum)) return schema.enum[0];
  if (schema.format === 'uuid') return SAMPLE_UUID;
  switch (schema.type) {
    case 'integer': case 'number': return schema.minimum ?? 1;
    case 'boolean': return true;
    case 'object': return {};
    case 'array': return [];
    default: return 'x';
  }
}

/** A body with every required field well-typed and `field` set to `value`. */
export function bodyWith(spec: Spec, field: string, value: unknown): Record<string, unknown> {
  const properties = bodyProperties(spec);
  const required = (bodyObject(spec).required as string[] | undefined) ?? [];
  return { ...Object.fromEntries(required.map((name) => [name, sampleValue(properties[name] ?? {})])), [field]: value };
}

/** A value of the wrong JSON type for `schema`, or undefined when any value fits. */
export function wrongValue(schema: JsonSchema): unknown {
  if (Array.isArray(schema.enum) || 'const' in schema) return 12345;
  switch (schema.type) {
    case 'string': return 12345;
    case 'integer': case 'number': return 'one';
    case 'boolean': return 'yes';
    case 'object': return [1, 2];
    case 'array': return { not: 'a list' };
    default: return undefined;
  }
}
