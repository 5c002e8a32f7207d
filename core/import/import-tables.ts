import type { Knex } from 'knex';
import type { Database } from '../db/database.ts';
import { withMigrationLock } from '../db/core-migrations.ts';

// The importer's own tables, migrated like the core's (recorded in kubiki_plugin_migrations under
// "core.import"), so the module keeps its schema next to its code. Append only.

interface ImportMigration {
  name: string;
  up(db: Database, trx: Knex.Transaction): Promise<void>;
}

const migrations: ImportMigration[] = [
  {
    name: '001-import-jobs',
    async up(db, trx) {
      const s = () => trx.schema.withSchema(db.schema);
      // Saved column mappings: column → field, constants, transforms; reused by name.
      await s().createTable('kubiki_import_mappings', (t) => {
        t.text('name').primary();
        t.text('target').notNullable();
        t.jsonb('definition').notNullable();
        t.integer('version').notNullable().defaultTo(1);
        t.uuid('created_by');
        t.uuid('updated_by');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
      });
      // Files uploaded through the API, in chunks: any instance can run (or resume) the job.
      await s().createTable('kubiki_import_files', (t) => {
        t.uuid('id').primary();
        t.text('name').notNullable();
        t.text('format').notNullable();
        t.bigInteger('size').notNullable();
        t.text('sha256').notNullable();
        t.uuid('created_by');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
      });
      await s().createTable('kubiki_import_file_chunks', (t) => {
        t.uuid('file_id').notNullable().references('id').inTable(`${db.schema}.kubiki_import_files`).onDelete('CASCADE');
        t.integer('seq').notNullable();
        t.binary('data').notNullable();
        t.primary(['file_id', 'seq']);
      });
      await s().createTable('kubiki_import_jobs', (t) => {
        t.uuid('id').primary();
        t.text('target').notNullable();
        t.text('status').notNullable();
        t.boolean('dry_run').notNullable();
        t.text('key');
        t.text('mapping_name');
        t.jsonb('mapping').notNullable();
        t.text('mapping_hash').notNullable();
        t.uuid('file_id').references('id').inTable(`${db.schema}.kubiki_import_files`).onDelete('SET NULL');
        t.text('file_name').notNullable();
        t.text('format').notNullable();
        t.bigInteger('file_size').notNullable();
        t.text('file_sha256').notNullable();
        t.integer('batch_size').notNullable();
        // The last source line whose batch committed (with its rows, audit, events and errors).
        t.integer('checkpoint_line').notNullable().defaultTo(0);
        t.bigInteger('bytes_read').notNullable().defaultTo(0);
        t.integer('rows_read').notNullable().defaultTo(0);
        t.integer('created').notNullable().defaultTo(0);
        t.integer('updated').notNullable().defaultTo(0);
        t.integer('unchanged').notNullable().defaultTo(0);
        t.integer('failed').notNullable().defaultTo(0);
        t.integer('batches').notNullable().defaultTo(0);
        t.integer('resumes').notNullable().defaultTo(0);
        t.text('owner');
        t.timestamp('lease_until', { useTz: true });
        t.uuid('actor_id');
        t.text('actor').notNullable();
        t.jsonb('error');
        t.text('request_id');
        t.uuid('source_job');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('started_at', { useTz: true });
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('finished_at', { useTz: true });
        t.index(['target', 'status']);
        t.index(['file_sha256']);
      });
      await s().createTable('kubiki_import_errors', (t) => {
        t.bigIncrements('id').primary();
        t.uuid('job_id').notNullable().references('id').inTable(`${db.schema}.kubiki_import_jobs`).onDelete('CASCADE');
        t.integer('line').notNullable();
        t.text('column_name').notNullable();
        t.text('field').notNullable();
        t.text('rule').notNullable();
        t.text('message').notNullable();
        t.text('value');
        t.index(['job_id', 'line']);
      });
    },
  },
  {
    name: '002-import-batches',
    async up(db, trx) {
      // The line range of every committed batch (in the batch's transaction): batches may commit
      // out of order when several run at once, and a resumed run skips exactly these lines.
      await trx.schema.withSchema(db.schema).createTable('kubiki_import_batches', (t) => {
        t.uuid('job_id').notNullable().references('id').inTable(`${db.schema}.kubiki_import_jobs`).onDelete('CASCADE');
        t.integer('first_line').notNullable();
        t.integer('last_line').notNullable();
        t.integer('rows').notNullable();
        t.primary(['job_id', 'first_line']);
      });
    },
  },
];

export async function runImportMigrations(db: Database): Promise<void> {
  await withMigrationLock(db, async (trx) => {
    const applied = new Set<string>(await db.table('kubiki_plugin_migrations', trx).where({ plugin: 'core.import' }).pluck('name'));
    for (const migration of migrations) {
      if (applied.has(migration.name)) continue;
      await migration.up(db, trx);
      await db.table('kubiki_plugin_migrations', trx).insert({ plugin: 'core.import', name: migration.name });
    }
  });
}
