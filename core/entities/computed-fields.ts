import { fieldError } from '../errors.ts';
import type { EntityDefinition } from './entity-definition.ts';
import { normalizeFields } from './record-codec.ts';

// Computed fields: properties a schema marks `readOnly: true` (totals, a derived amount) belong to
// the entity's plugin. Its `ctx.computeFields` function fills them in every write — REST, workflow
// steps, other plugins, imports — in the write itself, so a record is never stored with stale
// totals. Ordinary writers may not set them; sending the value the record will have anyway is
// accepted, so a client can send back a record it read.

const readOnlyCache = new WeakMap<EntityDefinition, Set<string>>();

export function readOnlyFields(entity: EntityDefinition): Set<string> {
  let names = readOnlyCache.get(entity);
  if (!names) {
    names = new Set([...entity.fields.values()].filter((f) => f.schema.readOnly === true).map((f) => f.name));
    readOnlyCache.set(entity, names);
  }
  return names;
}

const sameValue = (entity: EntityDefinition, name: string, a: unknown, b: unknown): boolean =>
  JSON.stringify(normalizeFields(entity, { [name]: a })[name] ?? null) === JSON.stringify(normalizeFields(entity, { [name]: b })[name] ?? null);

/**
 * Refuses `input` values of read-only fields unless they are what the record ends up with (`final`,
 * after the computation) or, on update, what it had (`current`: a client sending back what it read).
 */
export function refuseReadOnlyInput(entity: EntityDefinition, input: Record<string, unknown>, final: Record<string, unknown>, current?: Record<string, unknown>): void {
  const names = readOnlyFields(entity);
  if (names.size === 0) return;
  for (const [name, value] of Object.entries(input)) {
    if (!names.has(name) || sameValue(entity, name, value, final[name]) || (current && sameValue(entity, name, value, current[name]))) continue;
    const description = typeof entity.fields.get(name)?.schema.description === 'string' ? ` (${String(entity.fields.get(name)!.schema.description)})` : '';
    throw fieldError('validation-failed', name, 'read-only', `${name} is computed${description} and cannot be written${final[name] === undefined ? '' : `; it is ${JSON.stringify(final[name])}`}`);
  }
}

/** Applies a computation's result to the record's fields: null clears a field. */
export function applyComputed(fields: Record<string, unknown>, computed: Record<string, unknown>): void {
  for (const [name, value] of Object.entries(computed)) {
    if (value === null || value === undefined) delete fields[name];
    else fields[name] = value;
  }
}
