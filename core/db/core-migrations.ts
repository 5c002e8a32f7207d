import type { Knex } from 'knex';
import type { Database } from './database.ts';

interface CoreMigration {
  name: string;
  up(db: Database, trx: Knex.Transaction): Promise<void>;
}

// Append only: a released migration is never edited, a new one is added below it.
const migrations: CoreMigration[] = [
  {
    name: '001-system-tables',
    async up(db, trx) {
      const s = () => trx.schema.withSchema(db.schema);
      await s().createTable('kubiki_meta', (t) => {
        t.text('key').primary();
        t.jsonb('value').notNullable();
      });
      await s().createTable('kubiki_plugin_migrations', (t) => {
        t.text('plugin').notNullable();
        t.text('name').notNullable();
        t.timestamp('applied_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.primary(['plugin', 'name']);
      });
      await s().createTable('kubiki_plugins', (t) => {
        t.text('name').primary();
        t.text('version').notNullable();
        t.text('state').notNullable();
        t.timestamp('installed_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
      });
      await s().createTable('kubiki_custom_fields', (t) => {
        t.text('plugin').notNullable();
        t.text('entity').notNullable();
        t.text('name').notNullable();
        t.jsonb('schema').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.uuid('created_by');
        t.primary(['plugin', 'entity', 'name']);
      });
      await s().createTable('kubiki_roles', (t) => {
        t.text('name').primary();
        t.text('description').notNullable().defaultTo('');
        t.jsonb('permissions').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
      });
      await s().createTable('kubiki_users', (t) => {
        t.uuid('id').primary();
        t.text('username').notNullable().unique();
        t.text('display_name').notNullable();
        t.text('email');
        t.text('password_hash');
        t.jsonb('roles').notNullable();
        t.boolean('active').notNullable().defaultTo(true);
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
      });
      await s().createTable('kubiki_tokens', (t) => {
        t.uuid('id').primary();
        t.uuid('user_id').notNullable().references('id').inTable(`${db.schema}.kubiki_users`).onDelete('CASCADE');
        t.text('kind').notNullable();
        t.text('name').notNullable();
        t.text('token_hash').notNullable().unique();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('expires_at', { useTz: true });
        t.timestamp('revoked_at', { useTz: true });
      });
      await s().createTable('kubiki_audit', (t) => {
        t.bigIncrements('id').primary();
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.uuid('actor_id');
        t.text('actor').notNullable();
        t.text('action').notNullable();
        t.text('plugin').notNullable();
        t.text('entity').notNullable();
        t.text('record_id').notNullable();
        t.jsonb('changes').notNullable();
        t.text('request_id');
        t.index(['plugin', 'entity', 'record_id', 'id']);
      });
      await s().createTable('kubiki_outbox', (t) => {
        t.bigIncrements('id').primary();
        t.text('event').notNullable();
        t.text('plugin').notNullable();
        t.text('entity').notNullable();
        t.text('record_id').notNullable();
        t.jsonb('payload').notNullable();
        t.uuid('actor_id');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('dispatched_at', { useTz: true });
        t.integer('attempts').notNullable().defaultTo(0);
        t.timestamp('next_attempt_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.text('last_error');
      });
      await trx.raw('create index kubiki_outbox_pending on ??.kubiki_outbox (next_attempt_at, id) where dispatched_at is null', [db.schema]);
      await db.table('kubiki_meta', trx).insert({ key: 'generation', value: JSON.stringify(1) });
    },
  },
  {
    name: '002-versioned-items-documents-settings',
    async up(db, trx) {
      const s = () => trx.schema.withSchema(db.schema);
      await s().createTable('kubiki_settings', (t) => {
        t.text('key').primary();
        t.jsonb('value').notNullable();
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.uuid('updated_by');
      });
      // Versioned items: document templates and workflow definitions share one history.
      await s().createTable('kubiki_versioned_items', (t) => {
        t.text('kind').notNullable();
        t.text('item_id').notNullable();
        t.text('entity');
        t.integer('published_version');
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.primary(['kind', 'item_id']);
      });
      await s().createTable('kubiki_item_versions', (t) => {
        t.text('kind').notNullable();
        t.text('item_id').notNullable();
        t.integer('version').notNullable();
        t.text('origin').notNullable();
        t.text('source').notNullable();
        t.jsonb('metadata').notNullable();
        t.text('source_hash').notNullable();
        t.text('comment').notNullable().defaultTo('');
        t.uuid('created_by');
        t.text('created_by_name').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.primary(['kind', 'item_id', 'version']);
        t.foreign(['kind', 'item_id']).references(['kind', 'item_id']).inTable(`${db.schema}.kubiki_versioned_items`).onDelete('CASCADE');
      });
      await s().createTable('kubiki_documents', (t) => {
        t.uuid('id').primary();
        t.text('template_id').notNullable();
        t.integer('template_version').notNullable();
        t.text('entity').notNullable();
        t.uuid('record_id').notNullable();
        t.integer('record_version').notNullable();
        t.text('format').notNullable();
        t.text('content_type').notNullable();
        t.binary('content').notNullable();
        t.text('sha256').notNullable();
        t.integer('bytes').notNullable();
        t.uuid('created_by');
        t.text('created_by_name').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.index(['entity', 'record_id', 'created_at']);
      });
    },
  },
  {
    name: '003-notifications',
    async up(db, trx) {
      // The notification outbox: every email/SMS is a row first; 'held' = no transport configured.
      await trx.schema.withSchema(db.schema).createTable('kubiki_notifications', (t) => {
        t.uuid('id').primary();
        t.text('channel').notNullable();
        t.text('recipient').notNullable();
        t.text('subject');
        t.text('body').notNullable();
        t.jsonb('attachments').notNullable().defaultTo('[]');
        t.text('idempotency_key').notNullable().unique();
        t.text('status').notNullable();
        t.integer('attempts').notNullable().defaultTo(0);
        t.text('last_error');
        t.text('provider_message_id');
        t.uuid('created_by');
        t.text('created_by_name').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('sent_at', { useTz: true });
        t.index(['status', 'created_at']);
      });
      await trx.raw("alter table ??.kubiki_notifications add constraint kubiki_notifications_channel check (channel in ('email', 'sms')), add constraint kubiki_notifications_status check (status in ('queued', 'sent', 'failed', 'held'))", [db.schema]);
    },
  },
  {
    name: '004-workflow-engine',
    async up(db, trx) {
      const s = () => trx.schema.withSchema(db.schema);
      // One row per running process instance; dedupe_key makes a trigger (event, cron slot,
      // webhook delivery, date) start at most one instance however many engines see it.
      await s().createTable('kubiki_wf_instances', (t) => {
        t.uuid('id').primary();
        t.text('workflow_id').notNullable();
        t.integer('version').notNullable();
        t.text('kind').notNullable();
        t.text('status').notNullable();
        t.text('dedupe_key').unique();
        t.jsonb('trigger').notNullable();
        t.text('entity');
        t.text('record_id');
        t.jsonb('input');
        t.jsonb('vars').notNullable().defaultTo('{}');
        t.jsonb('outputs').notNullable().defaultTo('{}');
        t.uuid('parent_id').references('id').inTable(`${db.schema}.kubiki_wf_instances`).onDelete('CASCADE');
        t.bigInteger('parent_step_id');
        t.text('error');
        t.text('failed_step');
        t.uuid('started_by');
        t.text('started_by_name').notNullable();
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('finished_at', { useTz: true });
        t.index(['status', 'created_at']);
        t.index(['workflow_id', 'created_at']);
        t.index(['entity', 'record_id']);
        t.index(['parent_id']);
      });
      // One row per step execution: the queue (status + due_at + lease) and the history at once.
      await s().createTable('kubiki_wf_steps', (t) => {
        t.bigIncrements('id').primary();
        t.uuid('instance_id').notNullable().references('id').inTable(`${db.schema}.kubiki_wf_instances`).onDelete('CASCADE');
        t.text('step_key').notNullable();
        t.text('step_type').notNullable();
        t.text('scope').notNullable().defaultTo('');
        t.bigInteger('join_of');
        t.integer('arrived').notNullable().defaultTo(0);
        t.text('status').notNullable();
        t.timestamp('due_at', { useTz: true });
        t.uuid('lease_token');
        t.integer('attempts').notNullable().defaultTo(0);
        t.jsonb('input');
        t.jsonb('output');
        t.text('error');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('started_at', { useTz: true });
        t.timestamp('finished_at', { useTz: true });
        t.index(['instance_id', 'id']);
      });
      // Only join rows have join_of: a partial index costs ordinary step rows nothing.
      await trx.raw('create unique index kubiki_wf_steps_join on ??.kubiki_wf_steps (instance_id, join_of) where join_of is not null', [db.schema]);
      // Rows are updated as steps complete: room on each page keeps those updates HOT (no index churn).
      await trx.raw('alter table ??.kubiki_wf_steps set (fillfactor = 80)', [db.schema]);
      await trx.raw('alter table ??.kubiki_wf_instances set (fillfactor = 70)', [db.schema]);
      await trx.raw("create index kubiki_wf_steps_due on ??.kubiki_wf_steps (due_at) where status in ('pending', 'running', 'waiting') and due_at is not null", [db.schema]);
      await trx.raw("alter table ??.kubiki_wf_instances add constraint kubiki_wf_instances_status check (status in ('running', 'waiting', 'completed', 'failed', 'cancelled'))", [db.schema]);
      await trx.raw("alter table ??.kubiki_wf_steps add constraint kubiki_wf_steps_status check (status in ('pending', 'running', 'waiting', 'done', 'failed', 'cancelled'))", [db.schema]);
      // Approvals: a human task per approval step execution, and one decision per user.
      await s().createTable('kubiki_wf_tasks', (t) => {
        t.uuid('id').primary();
        t.uuid('instance_id').notNullable().references('id').inTable(`${db.schema}.kubiki_wf_instances`).onDelete('CASCADE');
        t.bigInteger('step_id').notNullable().references('id').inTable(`${db.schema}.kubiki_wf_steps`).onDelete('CASCADE');
        t.text('workflow_id').notNullable();
        t.text('step_key').notNullable();
        t.text('subject').notNullable();
        t.text('mode').notNullable();
        t.integer('required').notNullable();
        t.jsonb('eligible').notNullable();
        t.text('status').notNullable();
        t.timestamp('deadline_at', { useTz: true });
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('decided_at', { useTz: true });
        t.index(['status', 'created_at']);
        t.index(['step_id']);
      });
      await s().createTable('kubiki_wf_decisions', (t) => {
        t.uuid('task_id').notNullable().references('id').inTable(`${db.schema}.kubiki_wf_tasks`).onDelete('CASCADE');
        t.uuid('user_id').notNullable();
        t.text('username').notNullable();
        t.text('decision').notNullable();
        t.text('comment').notNullable().defaultTo('');
        t.timestamp('at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.primary(['task_id', 'user_id']);
      });
    },
  },
  {
    name: '005-notification-queued-at',
    async up(db, trx) {
      // When a row last became `queued`: a row queued long ago was left by a process that stopped mid-send.
      await trx.raw('alter table ??.kubiki_notifications add column queued_at timestamptz not null default now()', [db.schema]);
    },
  },
  {
    name: '006-outbox-created-at',
    async up(db, trx) {
      // A newly published automation looks back a few minutes of events; BRIN suits an append-only
      // timestamp and costs writes almost nothing.
      await trx.raw('create index kubiki_outbox_created_at on ??.kubiki_outbox using brin (created_at)', [db.schema]);
    },
  },
  {
    name: '007-versioned-items-withdrawn',
    async up(db, trx) {
      // An admin took the item out of use (a workflow unpublished): shipped updates do not put it back.
      await trx.raw('alter table ??.kubiki_versioned_items add column withdrawn boolean not null default false', [db.schema]);
    },
  },
];

/** Serializes boot-time DDL across instances that start together on one database. */
export async function withMigrationLock<T>(db: Database, work: (trx: Knex.Transaction) => Promise<T>): Promise<T> {
  return db.knex.transaction(async (trx) => {
    await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`kubiki:migrate:${db.schema}`]);
    return work(trx);
  });
}

export async function runCoreMigrations(db: Database): Promise<void> {
  await withMigrationLock(db, async (trx) => {
    const exists = await trx.schema.withSchema(db.schema).hasTable('kubiki_plugin_migrations');
    const applied = new Set<string>(
      exists ? (await db.table('kubiki_plugin_migrations', trx).where({ plugin: 'core' }).pluck('name')) : [],
    );
    for (const migration of migrations) {
      if (applied.has(migration.name)) continue;
      await migration.up(db, trx);
      await db.table('kubiki_plugin_migrations', trx).insert({ plugin: 'core', name: migration.name });
    }
  });
}

/** Bumped whenever plugin states or custom fields change, so other instances know to reload. */
export async function bumpGeneration(db: Database, trx: Knex.Transaction): Promise<void> {
  db.epoch++;
  await db.table('kubiki_meta', trx).where({ key: 'generation' }).update({ value: trx.raw("to_jsonb((value #>> '{}')::int + 1)") });
}

export async function readGeneration(db: Database): Promise<number> {
  const row = await db.table('kubiki_meta').where({ key: 'generation' }).first('value');
  return Number(row?.value ?? 0);
}
