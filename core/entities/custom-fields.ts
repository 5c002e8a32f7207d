import type { Database } from '../db/database.ts';
import { bumpGeneration, withMigrationLock } from '../db/core-migrations.ts';
import { KubikiError, fieldError } from '../errors.ts';
import type { Principal } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import { defineField, type FieldDefinition, type JsonSchema } from './entity-definition.ts';
import type { EntityRegistry } from './entity-registry.ts';
import { applyTableDiff } from './entity-table.ts';

export interface CustomFieldInput {
  name: string;
  schema: JsonSchema;
  required?: boolean;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Admin-added fields take the same path as declared ones: a real column, validation, OpenAPI. */
export class CustomFields {
  constructor(private readonly db: Database, private readonly registry: EntityRegistry) {}

  /** Loads every entity's custom fields from the database into the registry. */
  async load(): Promise<void> {
    const rows: { plugin: string; entity: string; name: string; schema: JsonSchema & { 'x-required'?: boolean } }[] =
      await this.db.table('kubiki_custom_fields').orderBy(['plugin', 'entity', 'created_at']).select();
    const grouped = new Map<string, FieldDefinition[]>();
    for (const r of rows) {
      const qualified = `${r.plugin}.${r.entity}`;
      if (!this.registry.has(qualified)) continue; // its plugin is no longer shipped; the column stays
      // `x-required` is how the row records `required`; it is not part of the field's JSON Schema.
      const { 'x-required': required, ...schema } = r.schema;
      const field = defineField(r.name, schema, { required: required === true, custom: true, where: `custom field of ${qualified}` });
      grouped.set(qualified, [...(grouped.get(qualified) ?? []), field]);
    }
    for (const entity of this.registry.all()) this.registry.setCustomFields(entity.qualifiedName, grouped.get(entity.qualifiedName) ?? []);
  }

  parse(input: unknown): CustomFieldInput {
    if (!isObject(input)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    for (const key of Object.keys(input)) {
      if (!['name', 'schema', 'required'].includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not a property of a custom field (name, schema, required)`);
    }
    if (typeof input.name !== 'string') throw fieldError('validation-failed', 'name', 'required', 'name is required: "x_" followed by a lower-case name, e.g. "x_loyaltyLevel"');
    if (!isObject(input.schema)) throw fieldError('validation-failed', 'schema', 'required', 'schema is required: the field\'s JSON Schema, e.g. {"type": "string", "maxLength": 50}');
    if (input.required !== undefined && typeof input.required !== 'boolean') throw fieldError('validation-failed', 'required', 'type', 'required must be true or false');
    return { name: input.name, schema: input.schema, required: input.required === true };
  }

  async add(qualifiedName: string, input: CustomFieldInput, actor: Principal, requestId?: string): Promise<FieldDefinition> {
    const entity = this.registry.get(qualifiedName);
    let field: FieldDefinition;
    try {
      field = defineField(input.name, input.schema, { required: input.required === true, custom: true, where: `custom field of ${qualifiedName}` });
    } catch (error) {
      const message = (error as Error).message;
      throw fieldError('validation-failed', message.includes('names start with') ? 'name' : 'schema', 'custom-field', message);
    }
    if (field.ref && field.ref !== 'core.users' && !this.registry.has(field.ref)) throw fieldError('validation-failed', 'schema', 'x-ref', `x-ref: no entity ${field.ref}`);
    if (field.required && field.schema.default === undefined) {
      throw fieldError('validation-failed', 'required', 'default', 'a required custom field needs a "default" in its schema, which existing records receive');
    }
    if (entity.fields.has(field.name)) throw fieldError('conflict', 'name', 'unique', `${qualifiedName} already has a field ${field.name}`);
    try {
      // Compile the record schema as it will be (not `validator()`, which returns the entity's cached one).
      this.registry.compile({ ...entity, fields: new Map([...entity.fields, [field.name, field]]) });
    } catch (error) {
      throw fieldError('validation-failed', 'schema', 'json-schema', `schema is not a valid JSON Schema: ${(error as Error).message}`);
    }
    await withMigrationLock(this.db, async (trx) => {
      const table = await trx('information_schema.tables').where({ table_schema: this.db.schema, table_name: entity.table }).first();
      if (!table) throw new KubikiError('lifecycle-conflict', `plugin ${entity.plugin} is not installed, so ${qualifiedName} has no table yet`);
      const taken = await this.db.table('kubiki_custom_fields', trx).where({ plugin: entity.plugin, entity: entity.plural, name: field.name }).first();
      if (taken) throw fieldError('conflict', 'name', 'unique', `${qualifiedName} already has a field ${field.name}`);
      await applyTableDiff(trx, this.db, this.registry, { entity, missingTable: false, addColumns: [field], addIndexes: [] });
      if (field.schema.default !== undefined) {
        const value = field.kind === 'json' ? JSON.stringify(field.schema.default) : field.schema.default;
        await this.db.table(entity.table, trx).whereNull(field.name).update({ [field.name]: value as string });
      }
      await this.db.table('kubiki_custom_fields', trx).insert({
        plugin: entity.plugin, entity: entity.plural, name: field.name,
        schema: JSON.stringify({ ...input.schema, ...(field.required ? { 'x-required': true } : {}) }), created_by: actor.userId,
      });
      await writeAudit(this.db, trx, {
        actor, action: 'created', plugin: 'core', entity: 'customFields', recordId: `${qualifiedName}.${field.name}`,
        changes: { schema: { before: null, after: input.schema } }, requestId,
      });
      await bumpGeneration(this.db, trx);
    }).catch((error: unknown) => {
      if ((error as { code?: string }).code === '23505') throw fieldError('conflict', 'schema', 'x-unique', `existing ${qualifiedName} records share values, so ${field.name} cannot be unique`);
      throw error;
    });
    await this.load();
    return this.registry.get(qualifiedName).fields.get(field.name)!;
  }

  /** Drops the column; refused while any record holds a value, so nothing is lost silently. */
  async remove(qualifiedName: string, name: string, actor: Principal, requestId?: string): Promise<void> {
    const entity = this.registry.get(qualifiedName);
    const field = entity.fields.get(name);
    if (!field?.custom) throw new KubikiError('not-found', `${qualifiedName} has no custom field ${name}`);
    await withMigrationLock(this.db, async (trx) => {
      const [{ count }] = await this.db.table(entity.table, trx).whereNotNull(name).count<{ count: number | string }[]>({ count: '*' });
      if (Number(count) > 0) {
        throw new KubikiError('conflict', `${count} ${qualifiedName} records hold a value in ${name}; clear them first (PATCH ${name}: null) so no data is lost`, { extra: { count: Number(count) } });
      }
      await trx.schema.withSchema(this.db.schema).alterTable(entity.table, (t) => t.dropColumn(name));
      await this.db.table('kubiki_custom_fields', trx).where({ plugin: entity.plugin, entity: entity.plural, name }).delete();
      await writeAudit(this.db, trx, {
        actor, action: 'deleted', plugin: 'core', entity: 'customFields', recordId: `${qualifiedName}.${name}`,
        changes: { schema: { before: field.schema, after: null } }, requestId,
      });
      await bumpGeneration(this.db, trx);
    });
    await this.load();
  }
}

