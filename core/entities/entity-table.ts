import { createHash } from 'node:crypto';
import type { Knex } from 'knex';
import type { Database } from '../db/database.ts';
import { KubikiError } from '../errors.ts';
import type { EntityDefinition, FieldDefinition } from './entity-definition.ts';
import type { EntityRegistry } from './entity-registry.ts';

/** PostgreSQL caps identifiers at 63 bytes; long names keep a readable head and a hash tail. */
export function indexName(table: string, column: string, suffix: 'uniq' | 'idx' | 'fk'): string {
  const name = `${table}_${column}_${suffix}`.toLowerCase();
  if (name.length <= 63) return name;
  const hash = createHash('sha1').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 50)}_${hash}_${suffix}`;
}

const udtOf: Record<FieldDefinition['kind'], string> = {
  text: 'text', date: 'date', datetime: 'timestamptz', uuid: 'uuid', integer: 'int4', boolean: 'bool', decimal: 'numeric', json: 'jsonb',
};

export function refTable(registry: EntityRegistry, ref: string): string {
  return ref === 'core.users' ? 'kubiki_users' : registry.get(ref).table;
}

function addColumn(t: Knex.CreateTableBuilder | Knex.AlterTableBuilder, db: Database, registry: EntityRegistry, table: string, field: FieldDefinition): void {
  const name = field.name;
  // Columns stay nullable: "required" is enforced by validation so that adding a required field
  // to a table that already has rows is an upgrade, not a failure.
  switch (field.kind) {
    case 'text': t.text(name); break;
    case 'date': t.date(name); break;
    case 'datetime': t.timestamp(name, { useTz: true }); break;
    case 'uuid': t.uuid(name); break;
    case 'integer': t.integer(name); break;
    case 'boolean': t.boolean(name); break;
    case 'decimal': t.decimal(name, field.decimal!.precision, field.decimal!.scale); break;
    case 'json': t.jsonb(name); break;
  }
  if (field.ref) {
    t.foreign(name, indexName(table, name, 'fk')).references('id').inTable(`${db.schema}.${refTable(registry, field.ref)}`).onDelete('RESTRICT');
  }
}

async function addIndexes(trx: Knex.Transaction, db: Database, table: string, field: FieldDefinition, existing: Set<string>): Promise<void> {
  if (field.unique && !existing.has(indexName(table, field.name, 'uniq'))) {
    await trx.schema.withSchema(db.schema).alterTable(table, (t) => t.unique([field.name], { indexName: indexName(table, field.name, 'uniq') }));
  } else if (field.index && !field.unique && !existing.has(indexName(table, field.name, 'idx'))) {
    await trx.schema.withSchema(db.schema).alterTable(table, (t) => t.index([field.name], indexName(table, field.name, 'idx')));
  }
}

export async function createEntityTable(trx: Knex.Transaction, db: Database, registry: EntityRegistry, entity: EntityDefinition): Promise<void> {
  await trx.schema.withSchema(db.schema).createTable(entity.table, (t) => {
    t.uuid('id').primary();
    t.integer('version').notNullable().defaultTo(1);
    t.timestamp('createdAt', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.timestamp('updatedAt', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.uuid('createdBy');
    t.uuid('updatedBy');
    for (const field of entity.fields.values()) addColumn(t, db, registry, entity.table, field);
    t.index(['createdAt', 'id'], indexName(entity.table, 'created', 'idx'));
  });
  for (const field of entity.fields.values()) await addIndexes(trx, db, entity.table, field, new Set());
}

/** What an upgrade would change in an existing table; empty when it already matches the schema. */
export interface TableDiff {
  entity: EntityDefinition;
  missingTable: boolean;
  addColumns: FieldDefinition[];
  addIndexes: FieldDefinition[];
}

export async function diffEntityTable(trx: Knex | Knex.Transaction, db: Database, entity: EntityDefinition): Promise<TableDiff> {
  const columns: { column_name: string; udt_name: string }[] = await trx('information_schema.columns')
    .where({ table_schema: db.schema, table_name: entity.table })
    .select('column_name', 'udt_name');
  if (columns.length === 0) return { entity, missingTable: true, addColumns: [], addIndexes: [] };
  const indexes = new Set<string>(await trx('pg_indexes').where({ schemaname: db.schema, tablename: entity.table }).pluck('indexname'));
  const have = new Map(columns.map((c) => [c.column_name, c.udt_name]));
  const diff: TableDiff = { entity, missingTable: false, addColumns: [], addIndexes: [] };
  for (const field of entity.fields.values()) {
    const udt = have.get(field.name);
    if (udt === undefined) {
      diff.addColumns.push(field);
    } else if (udt !== udtOf[field.kind]) {
      throw new KubikiError('incompatible-schema-change',
        `${entity.qualifiedName}.${field.name} is stored as ${udt} but the schema now says ${udtOf[field.kind]}; ` +
        'changing a field\'s type needs a hand-written migration in the plugin\'s migrations/ folder');
    } else if ((field.unique && !indexes.has(indexName(entity.table, field.name, 'uniq'))) ||
      (field.index && !field.unique && !indexes.has(indexName(entity.table, field.name, 'idx')))) {
      diff.addIndexes.push(field);
    }
  }
  return diff;
}

export const diffIsEmpty = (d: TableDiff): boolean => !d.missingTable && d.addColumns.length === 0 && d.addIndexes.length === 0;

/** Brings a table up to its schema: creates it, adds columns and indexes. Never drops anything. */
export async function applyTableDiff(trx: Knex.Transaction, db: Database, registry: EntityRegistry, diff: TableDiff): Promise<void> {
  const { entity } = diff;
  if (diff.missingTable) return createEntityTable(trx, db, registry, entity);
  if (diff.addColumns.length) {
    await trx.schema.withSchema(db.schema).alterTable(entity.table, (t) => {
      for (const field of diff.addColumns) addColumn(t, db, registry, entity.table, field);
    });
  }
  const existing = new Set<string>(await trx('pg_indexes').where({ schemaname: db.schema, tablename: entity.table }).pluck('indexname'));
  for (const field of [...diff.addColumns, ...diff.addIndexes]) await addIndexes(trx, db, entity.table, field, existing);
}
