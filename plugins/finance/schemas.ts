import { entityRecord, type RouteSchemas } from 'kubiki/plugin';

// JSON Schemas the finance routes share. The core checks params, query and body against them
// before a handler runs (404 naming a bad path parameter, 400 naming the field, nothing written)
// and, in the test suite, every answer against its response schema: they say what really comes.

export type JsonSchema = NonNullable<RouteSchemas['body']>;

/**
 * An id (UUID) in its 36-character form. ajv's `uuid` format also takes a `urn:uuid:` prefix,
 * which PostgreSQL refuses: the length keeps such a value out of the SQL.
 */
export const uuid = (description = 'An id (UUID)', ref?: string): JsonSchema => ({ type: 'string', format: 'uuid', maxLength: 36, ...(ref ? { 'x-ref': ref } : {}), description });

export const nullable = (schema: JsonSchema): JsonSchema => ({ anyOf: [schema, { type: 'null' }] });

export const timestamp: JsonSchema = { type: 'string', format: 'date-time' };

/** A calendar day; 2026-02-30 is refused. */
export const day = (description: string): JsonSchema => ({ type: 'string', format: 'date', description });

export const MONTH_PATTERN = '^[0-9]{4}-(0[1-9]|1[0-2])$';
export const month: JsonSchema = { type: 'string', pattern: MONTH_PATTERN, 'x-format-hint': 'a month YYYY-MM', description: 'The month, YYYY-MM' };

/** An amount as clients send it: a non-negative decimal string with at most 2 decimals. */
export const amountInput: JsonSchema = {
  type: 'string', pattern: '^[0-9]{1,16}(\\.[0-9]{1,2})?$', maxLength: 19,
  'x-format-hint': 'a non-negative decimal string with at most 2 decimals ("1234.50")', description: 'A decimal string, e.g. "1234.50"',
};

/** An amount that must be more than zero. */
export const positiveAmount: JsonSchema = {
  type: 'string', pattern: '^(?=[0-9.]*[1-9])[0-9]{1,16}(\\.[0-9]{1,2})?$', maxLength: 19,
  'x-format-hint': 'a decimal string greater than zero with at most 2 decimals ("1234.50")', description: 'A decimal string greater than zero, e.g. "1234.50"',
};

/** An amount as finance answers it: exactly two decimals, negative in reports where a balance is. */
export const money: JsonSchema = { type: 'string', pattern: '^-?[0-9]+\\.[0-9]{2}$', description: 'A decimal with 2 places, e.g. "1200.50"' };

/** `<plugin>.<plural>`, e.g. crm.deals. */
export const ENTITY_NAME = '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$';

/** Path `:id` of a record of `entity`. */
export const recordParams = (entity: string): JsonSchema => ({
  type: 'object', required: ['id'], additionalProperties: false, properties: { id: uuid(`A ${entity} id (UUID)`) },
});

/** A GET that takes no query parameters: any one is refused, named. */
export const noQuery: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };

/** An opaque keyset cursor: base64url text; what it holds is checked when it is decoded. */
export const cursor: JsonSchema = {
  type: 'string', minLength: 1, maxLength: 500, pattern: '^[A-Za-z0-9_-]+$',
  'x-format-hint': 'the "next" value of the previous page', description: 'The `next` of the previous page',
};

/** `limit` from 1 to `max`, `fallback` when absent. */
export const limit = (max: number, fallback: number): JsonSchema => ({ type: 'integer', minimum: 1, maximum: max, default: fallback, description: `Page size, 1–${max} (default ${fallback})` });

/** A record of a finance entity as its REST API answers it, with its Location and ETag. */
export const createdRecord = (entity: string, what: string): { description: string; headers: Record<string, string>; schema: JsonSchema } => ({
  description: what, headers: { Location: `/api/${entity.replace('.', '/')}/{id}`, ETag: 'The record version, "1"' }, schema: entityRecord(entity),
});

/** The answer of a record changed in place, with its ETag. */
export const changedRecord = (entity: string, what: string): { description: string; headers: Record<string, string>; schema: JsonSchema } => ({
  description: what, headers: { ETag: 'The new record version, e.g. "3"' }, schema: entityRecord(entity),
});

// ── Journal entries ────────────────────────────────────────────────────────────────────────────

/** A journal line as posted: debit or credit (the other is "0.00"), the account by code and id. */
export const MAX_LINES = 500;

const lineInput: JsonSchema = {
  type: 'object', required: ['account'], additionalProperties: false,
  description: 'Exactly one of debit and credit is more than zero',
  properties: {
    account: { type: 'string', minLength: 1, maxLength: 40, description: 'An account code (e.g. "62") or id' },
    debit: amountInput,
    credit: amountInput,
    organization: uuid('The organization the line is about (62, 60 and 76 sub-ledgers)', 'base.organizations'),
  },
};

/** POST /api/finance/entries: a balanced entry of at least two lines. */
export const entryInput: JsonSchema = {
  type: 'object', required: ['date', 'lines'], additionalProperties: false,
  description: 'A balanced journal entry: the debits equal the credits',
  properties: {
    date: day('The posting date (its month must be an open period)'),
    memo: { type: 'string', maxLength: 1000 },
    source: {
      type: 'object', required: ['entity', 'id'], additionalProperties: false, description: 'The document the entry comes from',
      properties: {
        entity: { type: 'string', pattern: ENTITY_NAME, maxLength: 100, 'x-format-hint': 'an entity as <plugin>.<plural>, e.g. crm.deals', description: '<plugin>.<plural>, e.g. crm.deals' },
        id: { type: 'string', minLength: 1, maxLength: 100, description: 'The source record\'s id' },
      },
    },
    lines: { type: 'array', minItems: 2, maxItems: MAX_LINES, items: lineInput },
  },
};

const postedLine: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['account', 'accountId', 'debit', 'credit'],
  properties: {
    account: { type: 'string', description: 'Account code' }, accountId: uuid('Account id'),
    debit: money, credit: money, organization: uuid('A base.organizations id'),
  },
};

/** A posted entry: its header (a finance.entries record) with its lines. */
export const postedEntry: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['id', 'version', 'date', 'period', 'total', 'lines', 'createdAt'],
  properties: {
    id: uuid('The entry id'),
    version: { type: 'integer', minimum: 1, description: 'The header\'s version (entries are immutable: always 1)' },
    date: day('The posting date'),
    memo: { type: 'string' },
    period: month,
    source: { type: 'object', additionalProperties: false, required: ['entity', 'id'], properties: { entity: { type: 'string' }, id: { type: 'string' } } },
    sourceKey: { type: 'string', description: 'Idempotency key of automatic postings' },
    reverses: uuid('The entry this one reverses'),
    reversedBy: uuid('The entry reversing this one'),
    total: { ...money, description: 'The sum of the debits (= the sum of the credits)' },
    lines: { type: 'array', minItems: 2, items: postedLine },
    createdAt: timestamp,
    createdBy: uuid('Who posted it (absent for postings by the system)'),
  },
};

// ── Payments ───────────────────────────────────────────────────────────────────────────────────

export const allocationsInput = (minItems: number): JsonSchema => ({
  type: 'array', minItems, maxItems: 200, description: 'Amounts of the payment settling invoices; each invoice once',
  items: {
    type: 'object', required: ['invoice', 'amount'], additionalProperties: false,
    properties: { invoice: uuid('A posted, not fully paid invoice of the payment\'s organization', 'finance.invoices'), amount: positiveAmount },
  },
});

// ── Reports ────────────────────────────────────────────────────────────────────────────────────

/** format, bom and delimiter: every report answers JSON or, with format=csv, its rows as CSV. */
export const reportFormat: Record<string, JsonSchema> = {
  format: { enum: ['json', 'csv'], description: 'json (default) or csv: the rows as a CSV download with `columns` as the header line' },
  bom: { type: 'boolean', description: 'CSV: start with a UTF-8 byte order mark so Excel reads Cyrillic (default true)' },
  delimiter: { enum: [',', ';', 'comma', 'semicolon'], description: 'CSV: the separator, "," (default) or ";" for Excel where the decimal separator is a comma' },
};

const csvText: JsonSchema = {
  type: 'string', contentMediaType: 'text/csv',
  description: 'format=csv: text/csv; charset=utf-8, Content-Disposition attachment <report>.csv; CRLF lines, the header line is `columns`; text a spreadsheet would run as a formula starts with an apostrophe',
};

/** 200: the report's JSON (application/json), or its CSV (text/csv) when format=csv. */
export const reportResponse = (report: JsonSchema, name: string): { description: string; schema: JsonSchema; alternatives: Record<string, JsonSchema> } => ({
  description: `The ${name} report as JSON (rows and totals); with format=csv the rows as text/csv`,
  schema: report,
  alternatives: { 'text/csv': csvText },
});

/** A report row: every property given, nothing else. */
export const row = (properties: Record<string, JsonSchema>): JsonSchema => ({ type: 'object', additionalProperties: false, required: Object.keys(properties), properties });

export const columns = (names: string[]): JsonSchema => ({ type: 'array', items: { enum: names }, description: `The CSV header: ${names.join(', ')}` });
