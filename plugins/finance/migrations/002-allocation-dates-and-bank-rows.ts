import type { MigrationContext } from 'kubiki/plugin';

/**
 * 1. Allocations get their own date (the payment's date when allocated at posting; the allocation's
 *    date when an advance is allocated later), so ageing as of a past date sees only what was paid then.
 * 2. Fingerprints of imported bank statement rows, unique: a statement imported twice (or two
 *    overlapping statements, or two imports at once) never creates a payment twice.
 */
export async function up({ trx, schema, schemaBuilder }: MigrationContext): Promise<void> {
  await schemaBuilder().alterTable('finance_allocations', (t) => {
    t.date('date');
  });
  await trx.raw(`update ??.finance_allocations a set date = p.date from ??.finance_payments p where p.id = a.payment_id`, [schema, schema]);
  await trx.raw(`update ??.finance_allocations set date = current_date where date is null`, [schema]);
  await trx.raw(`alter table ??.finance_allocations alter column date set not null`, [schema]);
  await schemaBuilder().alterTable('finance_allocations', (t) => {
    t.index(['invoice_id', 'date'], 'finance_allocations_invoice_date_idx');
  });
  await schemaBuilder().createTable('finance_bank_rows', (t) => {
    t.text('fingerprint').primary();
    // A deleted draft keeps its fingerprint: re-importing the statement does not bring it back.
    t.uuid('payment_id').references('id').inTable(`${schema}.finance_payments`).onDelete('SET NULL');
    t.integer('line').notNullable();
    t.timestamp('imported_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.index(['payment_id'], 'finance_bank_rows_payment_idx');
  });
}
