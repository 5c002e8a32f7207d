import type { JsonSchema } from '../../entities/entity-definition.ts';

// Schemas several core routes share. Kept as plain JSON Schema so OpenAPI shows them as written.

export const uuid: JsonSchema = { type: 'string', format: 'uuid' };
export const timestamp: JsonSchema = { type: 'string', format: 'date-time' };
export const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

/** Path `:id` of a record, task, instance… (a UUID). */
export const uuidParams = (name = 'id', description = 'An id (UUID)'): JsonSchema => ({
  type: 'object', required: [name], properties: { [name]: { type: 'string', format: 'uuid', description } },
});

/** Path `:id` of a versioned item (`base.invoice`, `workflows.deal-won-invoice`). */
export const itemIdParams: JsonSchema = {
  type: 'object', required: ['id'],
  properties: { id: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-z0-9][a-z0-9-]*$', maxLength: 120, description: '<plugin>.<name>, e.g. base.organization-card' } },
};

/** `limit` 1–max, default `fallback`. */
export const limit = (max = 500, fallback = 50): JsonSchema => ({ type: 'integer', minimum: 1, maximum: max, default: fallback, description: `Page size, 1–${max}` });

/** `{ data: [items] }` with an optional keyset `next`. */
export const page = (items: JsonSchema, withNext = true): JsonSchema => ({
  type: 'object', required: withNext ? ['data', 'next'] : ['data'],
  properties: { data: { type: 'array', items }, ...(withNext ? { next: { type: ['string', 'null'], description: 'Cursor of the next page, null on the last' } } : {}) },
});

export const noContent = { description: 'Done; no body' };
