import { KubikiError } from '../errors.ts';
import type { JsonSchema } from './entity-definition.ts';

// A schema part several plugins' entities share (document lines: quotes, invoices, orders,
// payslips…) lives once, in the plugin that owns the concept; an entity says
// `"lines": { "x-shared": "base.document-lines", "description": "…" }` and gets it inline, with its
// own keywords on top (a description, a smaller maxItems). Inlined at load, so validation, OpenAPI
// and generated types all see the same plain JSON Schema.

export type SharedDefinitions = Map<string, { owner: string; schema: JsonSchema }>;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `raw` with every `x-shared` reference replaced by the definition (refused when unknown or not reachable). */
export function resolveShared(raw: unknown, shared: SharedDefinitions, where: string, depth = 0): unknown {
  if (Array.isArray(raw)) return raw.map((v) => resolveShared(v, shared, where, depth));
  if (!isObject(raw)) return raw;
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(raw)) if (key !== 'x-shared') out[key] = resolveShared(value, shared, where, depth);
  const name = raw['x-shared'];
  if (name === undefined) return out;
  if (typeof name !== 'string' || !shared.has(name)) {
    throw new KubikiError('invalid-entity-schema', `${where}: "x-shared": ${JSON.stringify(name)} names no definition this plugin may use (one of its own or of a plugin it dependsOn${shared.size ? `: ${[...shared.keys()].join(', ')}` : ''})`);
  }
  if (depth > 8) throw new KubikiError('invalid-entity-schema', `${where}: "x-shared" definitions refer to each other in a loop`);
  const definition = resolveShared(structuredClone(shared.get(name)!.schema), shared, where, depth + 1) as Record<string, unknown>;
  delete definition.$schema;
  delete definition.$id;
  return { ...definition, ...out };
}
