import { entityRecord, type RouteSchemas } from 'kubiki/plugin';

// JSON Schemas the CRM routes share. The core checks params, query and body against them before a
// handler runs and, in the test suite, every answer against its response schema.

export type JsonSchema = NonNullable<RouteSchemas['body']>;

/**
 * An id (UUID) in its 36-character form. ajv's `uuid` format also takes a `urn:uuid:` prefix,
 * which PostgreSQL refuses: the length keeps such a value out of the SQL the reports write.
 */
export const uuid = (description = 'An id (UUID)'): JsonSchema => ({ type: 'string', format: 'uuid', maxLength: 36, description });

export const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

export const timestamp: JsonSchema = { type: 'string', format: 'date-time' };

/** A calendar day; 2026-02-30 is refused. */
export const day = (description: string): JsonSchema => ({ type: 'string', format: 'date', description });

/** A decimal amount as the CRM answers it: a string with two places. */
export const money: JsonSchema = { type: 'string', pattern: '^-?[0-9]+\\.[0-9]{2}$', description: 'A decimal with 2 places, e.g. "1200.50"' };

export const count: JsonSchema = { type: 'integer', minimum: 0 };

/** `limit` from 1 to `max`, `fallback` when absent. */
export const limit = (max: number, fallback: number): JsonSchema => ({ type: 'integer', minimum: 1, maximum: max, default: fallback, description: `Page size, 1–${max} (default ${fallback})` });

/** An opaque keyset cursor: base64url text; what it holds is checked when it is decoded. */
export const cursor: JsonSchema = {
  type: 'string', minLength: 1, maxLength: 500, pattern: '^[A-Za-z0-9_-]+$',
  'x-format-hint': 'the "next" value of the previous page', description: 'The `next` of the previous page',
};

/** A GET that takes no query parameters: any one is refused, named. */
export const noQuery: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };

/** Path `:id` of a record of `entity`. */
export const recordParams = (entity: string, name = 'id'): JsonSchema => ({
  type: 'object', required: [name], additionalProperties: false, properties: { [name]: uuid(`A ${entity} id (UUID)`) },
});

/** Records of an entity as its REST API answers them. */
export const records = (entity: string, description?: string): JsonSchema => ({ type: 'array', items: entityRecord(entity), ...(description ? { description } : {}) });

/** `{ data, next }`: one keyset page. */
export const keysetPage = (items: JsonSchema): JsonSchema => ({
  type: 'object', additionalProperties: false, required: ['data', 'next'],
  properties: { data: { type: 'array', items }, next: { ...nullable(cursor), description: 'The cursor of the next page (pass it as `cursor`); null on the last' } },
});
