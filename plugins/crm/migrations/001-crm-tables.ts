import type { MigrationContext } from 'kubiki/plugin';

export async function up({ schemaBuilder, trx }: MigrationContext): Promise<void> {
  // Outbox events already turned into timeline entries: event handlers run at least once, so the
  // entry and its mark commit together and a redelivery adds nothing.
  await schemaBuilder().createTable('crm_event_marks', (t) => {
    t.bigInteger('event_id').primary();
    t.timestamp('handled_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
  });
  // Every stage a deal entered (from its created/updated events): the conversion funnel.
  await schemaBuilder().createTable('crm_deal_stages', (t) => {
    t.bigInteger('event_id').primary();
    t.uuid('deal_id').notNullable().index('crm_deal_stages_deal_idx');
    t.text('stage').notNullable();
    t.text('previous');
    t.timestamp('entered_at', { useTz: true }).notNullable();
  });
  // One row per mailing and customer: what was sent to whom, through which notification.
  await schemaBuilder().createTable('crm_mailing_recipients', (t) => {
    t.uuid('mailing_id').notNullable();
    t.uuid('customer_id').notNullable();
    t.uuid('organization_id').notNullable();
    t.text('name');
    t.text('address');
    t.text('status').notNullable(); // sent | held | queued | failed | skipped
    t.text('reason');
    t.uuid('notification_id');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.primary(['mailing_id', 'customer_id']);
  });
}
