import { KubikiError } from '../errors.ts';
import { FIELD_FORMATS } from './field-formats.ts';

/** A JSON Schema object as read from disk; Kubiki only trusts it after `defineEntity` checked it. */
export type JsonSchema = { [key: string]: unknown };

export type FieldKind = 'text' | 'date' | 'datetime' | 'uuid' | 'integer' | 'boolean' | 'decimal' | 'json';

export interface DecimalSpec {
  precision: number;
  scale: number;
}

export interface FieldDefinition {
  name: string;
  kind: FieldKind;
  /** The property's JSON Schema, as declared (plus the implicit rules Kubiki adds). */
  schema: JsonSchema;
  required: boolean;
  /** `plugin.plural` of the referenced entity. */
  ref?: string;
  decimal?: DecimalSpec;
  unique: boolean;
  index: boolean;
  title: boolean;
  /** `"x-search": "exact"`: `q=` also finds records whose value equals the search text (INN, barcode…). */
  search?: 'exact';
  /** Added by an admin at run time (`x_` prefix) rather than declared by the plugin. */
  custom: boolean;
}

export interface EntityDefinition {
  plugin: string;
  /** Singular name (file name), e.g. `organization`. */
  name: string;
  /** URL name, e.g. `organizations`. */
  plural: string;
  /** `base.organizations`: how permissions, events, audit and references name the entity. */
  qualifiedName: string;
  table: string;
  title: string;
  description?: string;
  fields: Map<string, FieldDefinition>;
  /** Field holding the owning user for "own records only" rules; `createdBy` when not declared. */
  ownerField?: string;
}

export const SYSTEM_FIELDS = ['id', 'version', 'createdAt', 'updatedAt', 'createdBy', 'updatedBy'] as const;
export const RESERVED_QUERY_PARAMS = ['sort', 'limit', 'cursor', 'fields', 'expand', 'withTotal', 'q', 'externalId'] as const;
const reserved = new Set<string>([...SYSTEM_FIELDS, ...RESERVED_QUERY_PARAMS]);

const DECLARED_NAME = /^[a-z][a-zA-Z0-9]{0,62}$/;
export const CUSTOM_FIELD_NAME = /^x_[a-z][a-zA-Z0-9_]{0,60}$/;
const PLURAL_NAME = /^[a-z][a-zA-Z0-9]{0,40}$/;
const REF = /^[a-z][a-z0-9]*\.[a-z][a-zA-Z0-9]*$/;
const ALLOWED_FORMATS = new Set(Object.keys(FIELD_FORMATS));

export const snakeCase = (s: string): string => s.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

const isObject = (v: unknown): v is JsonSchema => typeof v === 'object' && v !== null && !Array.isArray(v);

function fail(where: string, message: string): never {
  throw new KubikiError('invalid-entity-schema', `${where}: ${message}`);
}

/** Reads one property schema into a field; `where` names the file and property in errors. */
export function defineField(name: string, raw: unknown, options: { required: boolean; custom: boolean; where: string }): FieldDefinition {
  const where = `${options.where} property "${name}"`;
  if (options.custom ? !CUSTOM_FIELD_NAME.test(name) : !DECLARED_NAME.test(name)) {
    fail(where, options.custom
      ? 'custom field names start with "x_" followed by a lower-case letter (letters, digits, underscores; at most 62 characters)'
      : 'property names are lowerCamelCase letters and digits (names starting with "x_" are kept for custom fields)');
  }
  if (reserved.has(name)) fail(where, `"${name}" is reserved (system fields: ${SYSTEM_FIELDS.join(', ')}; query parameters: ${RESERVED_QUERY_PARAMS.join(', ')})`);
  if (!isObject(raw)) fail(where, 'must be a JSON Schema object');
  const schema: JsonSchema = { ...raw };
  const type = schema.type;
  const ref = schema['x-ref'];
  const decimal = schema['x-decimal'];
  const format = schema.format;

  if (type === 'number') fail(where, '"type": "number" is not allowed (floats lose money); use {"type": "string", "x-decimal": {"precision": 18, "scale": 2}} or "integer"');
  if (typeof type !== 'string' || !['string', 'integer', 'boolean', 'array', 'object'].includes(type)) {
    fail(where, '"type" must be one of string, integer, boolean, array, object');
  }
  if (format !== undefined && (typeof format !== 'string' || !ALLOWED_FORMATS.has(format))) {
    fail(where, `"format" must be one of ${[...ALLOWED_FORMATS].join(', ')}`);
  }
  const hint = schema['x-format-hint'];
  if (hint !== undefined && (typeof hint !== 'string' || hint.trim() === '' || typeof schema.pattern !== 'string')) {
    fail(where, '"x-format-hint" is a non-empty string saying in words what "pattern" asks for, e.g. "9 digits"');
  }

  let kind: FieldKind;
  let decimalSpec: DecimalSpec | undefined;
  if (decimal !== undefined) {
    if (type !== 'string') fail(where, '"x-decimal" fields are "type": "string" (values are decimal strings like "1234.50")');
    if (!isObject(decimal) || !Number.isInteger(decimal.precision) || !Number.isInteger(decimal.scale)) {
      fail(where, '"x-decimal" must be {"precision": <integer>, "scale": <integer>}');
    }
    const precision = decimal.precision as number;
    const scale = decimal.scale as number;
    if (precision < 1 || precision > 38 || scale < 0 || scale > precision) fail(where, '"x-decimal" needs 1 <= precision <= 38 and 0 <= scale <= precision');
    decimalSpec = { precision, scale };
    kind = 'decimal';
  } else if (ref !== undefined) {
    if (typeof ref !== 'string' || !REF.test(ref)) fail(where, '"x-ref" must name an entity as "<plugin>.<plural>", e.g. "base.organizations"');
    if (type !== 'string') fail(where, '"x-ref" fields are "type": "string" holding the referenced id');
    schema.format = 'uuid';
    kind = 'uuid';
  } else if (type === 'string') {
    kind = format === 'date' ? 'date' : format === 'date-time' ? 'datetime' : format === 'uuid' ? 'uuid' : 'text';
  } else if (type === 'integer') {
    // Stored as a PostgreSQL integer: keep values inside its range unless the schema is stricter.
    if (schema.minimum === undefined) schema.minimum = -2147483648;
    if (schema.maximum === undefined) schema.maximum = 2147483647;
    kind = 'integer';
  } else if (type === 'boolean') {
    kind = 'boolean';
  } else {
    kind = 'json';
  }
  for (const flag of ['x-unique', 'x-index', 'x-title'] as const) {
    if (schema[flag] !== undefined && typeof schema[flag] !== 'boolean') fail(where, `"${flag}" must be true or false`);
  }
  if (kind === 'json' && (schema['x-unique'] || schema['x-index'])) fail(where, 'array and object fields cannot be unique or indexed');
  if (schema['x-title'] && kind !== 'text') fail(where, '"x-title" fields must be plain strings');
  const search = schema['x-search'];
  if (search !== undefined && search !== 'exact') fail(where, '"x-search" must be "exact" (q= then also finds records whose value equals the search text)');
  if (search !== undefined && kind !== 'text') fail(where, '"x-search" fields must be plain strings');
  // A search hint, not a validation rule: the record validator never sees it.
  delete schema['x-search'];

  return {
    name,
    kind,
    schema,
    required: options.required,
    ref: typeof ref === 'string' ? ref : undefined,
    decimal: decimalSpec,
    unique: schema['x-unique'] === true,
    index: schema['x-index'] === true || typeof ref === 'string',
    title: schema['x-title'] === true,
    ...(search === 'exact' ? { search } : {}),
    custom: options.custom,
  };
}

/** Turns `plugins/<plugin>/entities/<name>.schema.json` into an entity, or a named boot error. */
export function defineEntity(plugin: string, name: string, raw: unknown, file: string): EntityDefinition {
  if (!isObject(raw)) fail(file, 'must hold a JSON object');
  if (raw.type !== 'object') fail(file, '"type" must be "object"');
  if (raw.additionalProperties !== undefined && raw.additionalProperties !== false) {
    fail(file, '"additionalProperties" is always false for entities; declare the field or add a custom field');
  }
  const plural = raw['x-plural'];
  if (typeof plural !== 'string' || !PLURAL_NAME.test(plural)) fail(file, '"x-plural" is required: the lowerCamelCase plural used in URLs, e.g. "organizations"');
  if (!isObject(raw.properties) || Object.keys(raw.properties).length === 0) fail(file, '"properties" must declare at least one field');
  const required = raw.required ?? [];
  if (!Array.isArray(required) || required.some((r) => typeof r !== 'string' || !(r in (raw.properties as JsonSchema)))) {
    fail(file, '"required" must list declared properties');
  }
  const fields = new Map<string, FieldDefinition>();
  for (const [fieldName, fieldSchema] of Object.entries(raw.properties)) {
    fields.set(fieldName, defineField(fieldName, fieldSchema, { required: required.includes(fieldName), custom: false, where: file }));
  }
  if (![...fields.values()].some((f) => f.title)) fail(file, 'mark at least one string field with "x-title": true (used for search and display)');
  const owner = raw['x-owner'];
  if (owner !== undefined && (typeof owner !== 'string' || fields.get(owner)?.ref !== 'core.users')) {
    fail(file, '"x-owner" must name a field with "x-ref": "core.users"');
  }
  return {
    plugin,
    name,
    plural,
    qualifiedName: `${plugin}.${plural}`,
    table: `${plugin}_${snakeCase(plural)}`,
    title: typeof raw.title === 'string' ? raw.title : name,
    description: typeof raw.description === 'string' ? raw.description : undefined,
    fields,
    ownerField: typeof owner === 'string' ? owner : undefined,
  };
}
