import type { MigrationContext } from 'kubiki/plugin';

/**
 * The stock layer's own tables beside its entities. Moves (the ledger) are the warehouse.moves
 * entity; here is what is derived from them and read often — balances, per-product cost state,
 * serial numbers in stock — plus the revaluation journal and the period snapshots.
 */
export async function up({ trx, schema, schemaBuilder }: MigrationContext): Promise<void> {
  const q = (name: string) => `"${schema}"."${name}"`;
  const ref = (table: string) => `${schema}.${table}`;
  // The ledger: done moves only, written once (with an audit row each, ctx.journalRows) and never
  // changed. Columns are named as the API names the fields. Ledger order: date, then seq — the
  // order moves were posted in (under the product's cost-row lock). A product's ledger (replays,
  // the stock ledger report) is read along (product, date, seq).
  await schemaBuilder().createTable('warehouse_moves', (t) => {
    t.uuid('id').primary();
    t.bigIncrements('seq', { primaryKey: false });
    t.text('kind').notNullable();
    t.text('status').notNullable().defaultTo('done');
    t.date('date').notNullable();
    t.uuid('product').notNullable().references('id').inTable(ref('base_products'));
    t.decimal('quantity', 18, 3).notNullable();
    t.decimal('enteredQuantity', 18, 3);
    t.uuid('enteredUnit').references('id').inTable(ref('base_units'));
    t.uuid('fromLocation').notNullable().references('id').inTable(ref('warehouse_locations'));
    t.uuid('toLocation').notNullable().references('id').inTable(ref('warehouse_locations'));
    t.uuid('lot').references('id').inTable(ref('warehouse_lots'));
    t.jsonb('serials');
    t.text('valuation').notNullable();
    t.decimal('unitCost', 18, 4);
    t.decimal('value', 18, 2);
    t.uuid('reservation').references('id').inTable(ref('warehouse_reservations'));
    t.uuid('reverses').unique({ indexName: 'warehouse_moves_reverses_uniq' }).references('id').inTable(ref('warehouse_moves'));
    t.uuid('planned').references('id').inTable(ref('warehouse_planned_moves'));
    t.uuid('posting').notNullable().references('id').inTable(ref('warehouse_postings'));
    t.text('sourceEntity');
    t.text('sourceId');
    t.text('sourceLine');
    t.text('memo');
    t.timestamp('createdAt', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.uuid('createdBy');
    t.index(['product', 'date', 'seq'], 'warehouse_moves_product_date_idx');
    t.index(['date'], 'warehouse_moves_date_idx');
    t.index(['fromLocation'], 'warehouse_moves_from_idx');
    t.index(['toLocation'], 'warehouse_moves_to_idx');
    t.index(['sourceId'], 'warehouse_moves_source_idx');
    t.index(['posting'], 'warehouse_moves_posting_idx');
  });
  await trx.raw(`alter table ${q('warehouse_moves')} add constraint warehouse_moves_quantity_chk check (quantity > 0 and status = 'done')`);
  await trx.raw(`create unique index warehouse_lots_product_number_uniq on ${q('warehouse_lots')} ("product", "number")`);
  // One active reservation per demand line: reserving it again answers the one it has.
  await trx.raw(`create unique index warehouse_reservations_demand_uniq on ${q('warehouse_reservations')} ("demandEntity", "demandId", coalesce("demandLine", '')) where status = 'active'`);

  // Balances per product × location × lot (lot_id is the nil UUID for untracked stock). One row per
  // key (the primary key is the upsert's conflict target); root_id is the top of the location's tree,
  // and the row (product, root, nil lot) is the lock every writer of that product in that tree takes.
  await schemaBuilder().createTable('warehouse_balances', (t) => {
    t.uuid('product_id').notNullable();
    t.uuid('location_id').notNullable();
    t.uuid('lot_id').notNullable();
    t.uuid('root_id').notNullable();
    t.decimal('on_hand', 18, 3).notNullable().defaultTo(0);
    t.decimal('reserved', 18, 3).notNullable().defaultTo(0);
    t.decimal('incoming', 18, 3).notNullable().defaultTo(0);
    t.decimal('outgoing', 18, 3).notNullable().defaultTo(0);
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.primary(['product_id', 'location_id', 'lot_id']);
    t.index(['product_id', 'root_id'], 'warehouse_balances_product_root_idx');
    t.index(['location_id'], 'warehouse_balances_location_idx');
  });
  await trx.raw(`alter table ${q('warehouse_balances')} add column available numeric(18,3) generated always as (on_hand - reserved) stored`);
  // No CHECK on the quantities: PostgreSQL checks the row an upsert proposes (which carries the
  // deltas, negative ones too) before it finds the conflict; the stock service checks instead.

  // The cost state of each product after its last move: valued quantity and value, the moving
  // average or the FIFO layers still in stock. Locked (in product order) by every valued posting.
  await schemaBuilder().createTable('warehouse_costs', (t) => {
    t.uuid('product_id').primary();
    t.text('method').notNullable();
    t.decimal('quantity', 18, 3).notNullable().defaultTo(0);
    t.decimal('value', 18, 2).notNullable().defaultTo(0);
    t.decimal('unit_cost', 18, 4).notNullable().defaultTo(0);
    t.jsonb('layers').notNullable().defaultTo('[]');
    t.date('last_date');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
  });

  // Revaluations: a back-dated move changes the cost of later issues; the moves stay as posted and
  // the change is journaled here (audited rows), dated as the move it revalues.
  await schemaBuilder().createTable('warehouse_revaluations', (t) => {
    t.bigIncrements('id').primary();
    t.uuid('move_id').notNullable().references('id').inTable(`${schema}.warehouse_moves`);
    t.uuid('caused_by').notNullable().references('id').inTable(`${schema}.warehouse_moves`);
    t.uuid('product_id').notNullable();
    t.date('date').notNullable();
    t.decimal('delta', 18, 2).notNullable();
    t.decimal('stock_delta', 18, 2).notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.index(['product_id', 'date'], 'warehouse_revaluations_product_date_idx');
    t.index(['move_id'], 'warehouse_revaluations_move_idx');
    t.index(['caused_by'], 'warehouse_revaluations_caused_idx');
  });

  // Serial numbers: where each one is (location_id null: not in stock). A serial is in stock once.
  await schemaBuilder().createTable('warehouse_serials', (t) => {
    t.uuid('product_id').notNullable();
    t.text('serial').notNullable();
    t.uuid('location_id');
    t.uuid('lot_id');
    t.uuid('last_move');
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(trx.fn.now());
    t.primary(['product_id', 'serial']);
    t.index(['location_id'], 'warehouse_serials_location_idx');
  });

  // Closed periods' snapshots: quantity and value per product × location × lot, and the cost state
  // per product (what a back-dated move's recomputation starts from).
  await schemaBuilder().createTable('warehouse_period_quantities', (t) => {
    t.uuid('period_id').notNullable().references('id').inTable(`${schema}.warehouse_periods`).onDelete('CASCADE');
    t.uuid('product_id').notNullable();
    t.uuid('location_id').notNullable();
    t.uuid('lot_id').notNullable();
    t.decimal('quantity', 18, 3).notNullable();
    t.decimal('value', 18, 2).notNullable();
    t.primary(['period_id', 'product_id', 'location_id', 'lot_id']);
  });
  await schemaBuilder().createTable('warehouse_period_costs', (t) => {
    t.uuid('period_id').notNullable().references('id').inTable(`${schema}.warehouse_periods`).onDelete('CASCADE');
    t.uuid('product_id').notNullable();
    t.text('method').notNullable();
    t.decimal('quantity', 18, 3).notNullable();
    t.decimal('value', 18, 2).notNullable();
    t.decimal('unit_cost', 18, 4).notNullable();
    t.jsonb('layers').notNullable().defaultTo('[]');
    t.primary(['period_id', 'product_id']);
  });
}
