import type { JsonSchema } from '../entities/entity-definition.ts';
import type { MountedRoute } from '../http/route-contract.ts';
import { responseAlternatives, responseContentType, responseSchemaOf } from '../http/route-validation.ts';

// Declared routes → OpenAPI 3.1 operations: the same schemas the core validates with.

type Obj = Record<string, unknown>;
const problemRef = { $ref: '#/components/responses/Problem' };

const pascal = (s: string): string => s.replace(/(^|[^a-zA-Z0-9])([a-zA-Z0-9])/g, (_m, _p, c: string) => c.toUpperCase());

/** Entity markers → `$ref`s to the entity's component schemas. */
function withRefs(schema: unknown, component: (qualifiedName: string) => string): unknown {
  if (Array.isArray(schema)) return schema.map((s) => withRefs(s, component));
  if (typeof schema !== 'object' || schema === null) return schema;
  const o = schema as Obj;
  if (typeof o['x-entity-record'] === 'string') return { $ref: `#/components/schemas/${component(o['x-entity-record'])}` };
  if (typeof o['x-entity-input'] === 'string') return { $ref: `#/components/schemas/${component(o['x-entity-input'])}Input` };
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, withRefs(v, component)]));
}

function parameters(schema: JsonSchema | undefined, where: 'path' | 'query', component: (q: string) => string): Obj[] {
  const properties = (schema?.properties ?? {}) as Record<string, JsonSchema>;
  const required = new Set((schema?.required as string[] | undefined) ?? []);
  return Object.entries(properties).map(([name, s]) => ({
    name, in: where, required: where === 'path' || required.has(name),
    ...(typeof s.description === 'string' ? { description: s.description } : {}),
    schema: withRefs(s, component),
  }));
}

/** The OpenAPI operationId of a route: plugin routes are prefixed with their plugin. */
export const operationIdOf = (route: MountedRoute): string => (route.owner === 'core' ? route.spec.operationId : `${route.owner}${pascal(route.spec.operationId)}`);

/** OpenAPI path items of the mounted routes (merged by path). */
export function routePaths(routes: readonly MountedRoute[], component: (qualifiedName: string) => string, statusOf: (code: string) => number | undefined): Obj {
  const paths: Record<string, Obj> = {};
  for (const route of routes) {
    const { spec } = route;
    const path = route.fullPath.replace(/:([A-Za-z0-9_]+)/g, '{$1}');
    const responses: Obj = {};
    for (const [status, response] of Object.entries(spec.schemas.responses)) {
      const schema = responseSchemaOf(response);
      const description = typeof response.description === 'string' ? response.description : 'OK';
      const headers = typeof response.description === 'string' && response.headers ? Object.fromEntries(Object.entries(response.headers as Record<string, string>).map(([h, d]) => [h, { description: d, schema: { type: 'string' } }])) : undefined;
      responses[status] = {
        description,
        ...(headers ? { headers } : {}),
        ...(schema || responseContentType(response) !== 'application/json' ? {
          content: {
            [responseContentType(response)]: schema ? { schema: withRefs(schema, component) } : {},
            ...Object.fromEntries(Object.entries(responseAlternatives(response)).map(([type, s]) => [type, { schema: withRefs(s, component) }])),
          },
        } : {}),
      };
    }
    const problems = new Set<number>();
    if (spec.schemas.body || spec.schemas.query || ['post', 'put', 'patch'].includes(spec.method)) problems.add(400);
    if (spec.permission !== 'public') problems.add(401);
    if (spec.permission !== 'public' && spec.permission !== 'signed-in') problems.add(403);
    if (spec.schemas.params) problems.add(404);
    for (const code of spec.errors ?? []) {
      const status = statusOf(code);
      if (status !== undefined) problems.add(status);
    }
    for (const status of problems) responses[status] ??= problemRef;
    const operation: Obj = {
      tags: [route.owner],
      operationId: operationIdOf(route),
      summary: spec.summary,
      ...(spec.description ? { description: spec.description } : {}),
      'x-permission': spec.permission,
      ...(spec.errors?.length ? { 'x-error-codes': spec.errors } : {}),
      ...(spec.permission === 'public' ? { security: [] } : {}),
      parameters: [...parameters(spec.schemas.params, 'path', component), ...parameters(spec.schemas.query, 'query', component)],
      ...(spec.schemas.body ? { requestBody: { required: true, content: { 'application/json': { schema: withRefs(spec.schemas.body, component) } } } } : {}),
      responses,
    };
    paths[path] = { ...paths[path], [spec.method]: operation };
  }
  return paths;
}
