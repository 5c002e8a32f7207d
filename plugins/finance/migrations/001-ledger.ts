import type { MigrationContext } from 'kubiki/plugin';

/**
 * The ledger's own tables. Entry headers are the `finance.entries` entity (audited, evented);
 * their lines live here, denormalised with the entry date so reports aggregate one table.
 */
export async function up({ trx, schema, schemaBuilder }: MigrationContext): Promise<void> {
  await schemaBuilder().createTable('finance_entry_lines', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('entry_id').notNullable().references('id').inTable(`${schema}.finance_entries`);
    t.smallint('line_no').notNullable();
    t.date('date').notNullable();
    t.uuid('account_id').notNullable().references('id').inTable(`${schema}.finance_accounts`);
    t.decimal('debit', 18, 2).notNullable().defaultTo(0);
    t.decimal('credit', 18, 2).notNullable().defaultTo(0);
    t.uuid('organization_id');
    t.index(['account_id', 'date'], 'finance_entry_lines_account_date_idx');
    t.index(['date'], 'finance_entry_lines_date_idx');
    t.index(['entry_id'], 'finance_entry_lines_entry_idx');
    t.index(['organization_id'], 'finance_entry_lines_org_idx');
  });
  await trx.raw(`alter table ??.finance_entry_lines add constraint finance_entry_lines_amounts_chk
    check (debit >= 0 and credit >= 0 and (debit = 0) <> (credit = 0))`, [schema]);
  // Per-key counters for document numbers (INV-2026-000123): gapless, taken inside the posting transaction.
  await schemaBuilder().createTable('finance_counters', (t) => {
    t.text('key').primary();
    t.bigInteger('value').notNullable();
  });
  // Allocations of posted payments to invoices (also copied onto the payment record).
  await schemaBuilder().createTable('finance_allocations', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('payment_id').notNullable().references('id').inTable(`${schema}.finance_payments`);
    t.uuid('invoice_id').notNullable().references('id').inTable(`${schema}.finance_invoices`);
    t.decimal('amount', 18, 2).notNullable();
    t.index(['invoice_id'], 'finance_allocations_invoice_idx');
    t.index(['payment_id'], 'finance_allocations_payment_idx');
  });
  await trx.raw(`alter table ??.finance_allocations add constraint finance_allocations_amount_chk check (amount > 0)`, [schema]);
}
