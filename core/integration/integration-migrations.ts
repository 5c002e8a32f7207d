import type { Knex } from 'knex';
import type { Database } from '../db/database.ts';
import { withMigrationLock } from '../db/core-migrations.ts';

// Tables of the integration layer: outgoing webhooks and their deliveries, external ids and login
// throttling. Applied after the core migrations, recorded in kubiki_plugin_migrations under
// `core.integration` (no plugin can have that name). Append only, like the core's.

interface Migration {
  name: string;
  up(db: Database, trx: Knex.Transaction): Promise<void>;
}

const OWNER = 'core.integration';

const migrations: Migration[] = [
  {
    name: '001-webhooks-external-ids-login-throttle',
    async up(db, trx) {
      const s = () => trx.schema.withSchema(db.schema);
      // A subscription: where to send which events. The secret is kept encrypted (AES-256-GCM,
      // core/webhooks/secret-box.ts); during a rotation the previous one signs too until it expires.
      await s().createTable('kubiki_webhooks', (t) => {
        t.uuid('id').primary();
        t.text('url').notNullable();
        t.jsonb('event_types').notNullable();
        // The event types as one PostgreSQL regular expression (the delivery claim orders by it).
        t.text('event_regex').notNullable();
        t.text('description').notNullable().defaultTo('');
        t.boolean('active').notNullable().defaultTo(true);
        t.text('disabled_reason');
        t.timestamp('disabled_at', { useTz: true });
        t.text('secret').notNullable();
        t.text('previous_secret');
        t.timestamp('previous_secret_expires_at', { useTz: true });
        t.timestamp('secret_rotated_at', { useTz: true });
        t.uuid('created_by');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
      });
      // One row per message to one subscription: the queue (status + due_at + lease) and the log.
      await s().createTable('kubiki_webhook_deliveries', (t) => {
        t.uuid('id').primary();
        t.uuid('webhook_id').notNullable().references('id').inTable(`${db.schema}.kubiki_webhooks`).onDelete('CASCADE');
        // webhook-id: the same on every attempt and on replays, so a receiver can deduplicate.
        t.text('message_id').notNullable();
        t.bigInteger('event_id').notNullable();
        t.text('event_type').notNullable();
        t.text('entity').notNullable();
        t.text('record_id').notNullable();
        // The exact bytes sent (and signed), fixed when the delivery is made.
        t.text('payload').notNullable();
        t.text('status').notNullable();
        t.timestamp('due_at', { useTz: true });
        t.uuid('lease_token');
        t.integer('attempts').notNullable().defaultTo(0);
        t.integer('last_status');
        t.text('last_error');
        t.uuid('replay_of');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.timestamp('delivered_at', { useTz: true });
        t.index(['webhook_id', 'id']);
      });
      await trx.raw("alter table ??.kubiki_webhook_deliveries add constraint kubiki_webhook_deliveries_status check (status in ('queued', 'pending', 'sending', 'delivered', 'failed'))", [db.schema]);
      // An outbox event makes at most one delivery per subscription (replays are extra rows).
      await trx.raw('create unique index kubiki_webhook_deliveries_event on ??.kubiki_webhook_deliveries (webhook_id, event_id) where replay_of is null', [db.schema]);
      await trx.raw("create index kubiki_webhook_deliveries_due on ??.kubiki_webhook_deliveries (due_at) where status in ('pending', 'sending')", [db.schema]);
      // Order per record: one open delivery per subscription and record is pending or sending, the
      // ones after it are queued (promoted one by one as the one before finishes).
      await trx.raw("create index kubiki_webhook_deliveries_chain on ??.kubiki_webhook_deliveries (webhook_id, record_id, event_id) where status in ('queued', 'pending', 'sending')", [db.schema]);
      await trx.raw('alter table ??.kubiki_webhook_deliveries set (fillfactor = 80)', [db.schema]);
      // …and for events of that record still in the outbox (another process may be fanning them out).
      await trx.raw('create index kubiki_outbox_pending_record on ??.kubiki_outbox (record_id, id) where dispatched_at is null', [db.schema]);
      await s().createTable('kubiki_webhook_attempts', (t) => {
        t.bigIncrements('id').primary();
        t.uuid('delivery_id').notNullable().references('id').inTable(`${db.schema}.kubiki_webhook_deliveries`).onDelete('CASCADE');
        t.integer('attempt').notNullable();
        t.timestamp('at', { useTz: true }).notNullable();
        t.integer('status');
        t.integer('duration_ms').notNullable();
        t.text('error');
        t.text('response');
        t.index(['delivery_id', 'id']);
      });
      // Ids of records in other systems: unique per entity and source, one per record and source.
      await s().createTable('kubiki_external_ids', (t) => {
        t.text('entity').notNullable();
        t.text('source').notNullable();
        t.text('external_id').notNullable();
        t.uuid('record_id').notNullable();
        t.uuid('created_by');
        t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
        t.primary(['entity', 'source', 'external_id']);
        t.unique(['entity', 'record_id', 'source']);
      });
      // Failed logins per user and per address in the current window.
      await s().createTable('kubiki_login_failures', (t) => {
        t.text('key').primary();
        t.integer('failures').notNullable();
        t.timestamp('window_start', { useTz: true }).notNullable();
      });
    },
  },
];

export async function runIntegrationMigrations(db: Database): Promise<void> {
  await withMigrationLock(db, async (trx) => {
    const applied = new Set<string>(await db.table('kubiki_plugin_migrations', trx).where({ plugin: OWNER }).pluck('name'));
    for (const migration of migrations) {
      if (applied.has(migration.name)) continue;
      await migration.up(db, trx);
      await db.table('kubiki_plugin_migrations', trx).insert({ plugin: OWNER, name: migration.name });
    }
  });
}
