import type { ValidateFunction } from 'ajv';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { KubikiError } from '../errors.ts';
import type { EntityDefinition, FieldDefinition, JsonSchema } from './entity-definition.ts';

export interface Referrer {
  entity: EntityDefinition;
  field: FieldDefinition;
}

/**
 * Every entity of every discovered plugin, by `plugin.plural`, with its compiled validator.
 * Whether an entity is reachable over HTTP depends on its plugin's state, not on the registry.
 */
export class EntityRegistry {
  private readonly entities = new Map<string, EntityDefinition>();
  private readonly validators = new Map<string, ValidateFunction>();

  constructor(private readonly ajv: Ajv2020) {}

  add(entity: EntityDefinition): void {
    if (this.entities.has(entity.qualifiedName)) {
      throw new KubikiError('invalid-entity-schema', `entity ${entity.qualifiedName} is declared twice`);
    }
    this.entities.set(entity.qualifiedName, entity);
  }

  has(qualifiedName: string): boolean {
    return this.entities.has(qualifiedName);
  }

  get(qualifiedName: string): EntityDefinition {
    const entity = this.entities.get(qualifiedName);
    if (!entity) throw new KubikiError('unknown-entity', `no entity ${qualifiedName}`);
    return entity;
  }

  all(): EntityDefinition[] {
    return [...this.entities.values()];
  }

  ofPlugin(plugin: string): EntityDefinition[] {
    return this.all().filter((e) => e.plugin === plugin);
  }

  /** Fields elsewhere that hold ids of `qualifiedName` (what a delete must check). */
  referrersOf(qualifiedName: string): Referrer[] {
    const out: Referrer[] = [];
    for (const entity of this.entities.values()) {
      for (const field of entity.fields.values()) if (field.ref === qualifiedName) out.push({ entity, field });
    }
    return out;
  }

  /** Replaces the custom fields of an entity (after an admin change or a reload). */
  setCustomFields(qualifiedName: string, custom: FieldDefinition[]): void {
    const entity = this.get(qualifiedName);
    for (const [name, field] of entity.fields) if (field.custom) entity.fields.delete(name);
    for (const field of custom) entity.fields.set(field.name, field);
    this.validators.delete(qualifiedName);
  }

  /** JSON Schema of a whole record as clients send it (declared and custom fields, no system fields). */
  recordSchema(entity: EntityDefinition): JsonSchema {
    const properties: JsonSchema = {};
    const required: string[] = [];
    for (const field of entity.fields.values()) {
      properties[field.name] = field.schema;
      if (field.required) required.push(field.name);
    }
    return { type: 'object', properties, required, additionalProperties: false };
  }

  /** Compiles the record schema of `entity` without caching it: throws if ajv rejects the schema. */
  compile(entity: EntityDefinition): ValidateFunction {
    return this.ajv.compile(this.recordSchema(entity));
  }

  validator(entity: EntityDefinition): ValidateFunction {
    let validate = this.validators.get(entity.qualifiedName);
    if (!validate) {
      validate = this.ajv.compile(this.recordSchema(entity));
      this.validators.set(entity.qualifiedName, validate);
    }
    return validate;
  }
}
