import type { MigrationContext } from 'kubiki/plugin';

/** Per-series counters of the order documents' numbers (PO-2026-000123): gapless, taken in the numbering transaction. */
export async function up({ schemaBuilder }: MigrationContext): Promise<void> {
  await schemaBuilder().createTable('warehouse_counters', (t) => {
    t.text('key').primary();
    t.bigInteger('value').notNullable();
  });
}
