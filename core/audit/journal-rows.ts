import type { Database, Executor } from '../db/database.ts';
import type { Principal } from '../auth/principal.ts';

// Rows a plugin keeps in its own tables that carry money or history (journal lines, payment
// allocations) are written through here: the rows and one audit row each, in one statement, so
// the trail shows who wrote every ledger row and none is written without it.

export interface JournalRowsOptions {
  actor: Principal;
  trx?: Executor;
  requestId?: string;
}

export interface JournalRows {
  /** Inserts `rows` (column → value) and their audit rows; answers the rows as stored. */
  insert(rows: Record<string, unknown>[], options: JournalRowsOptions): Promise<Record<string, unknown>[]>;
}

/** Rows of `plugin`'s own `table` (with an `id` column), audited under the name `entity` (`entryLines`). */
export function journalRows(db: Database, plugin: string, table: string, entity: string): JournalRows {
  return {
    async insert(rows, options) {
      if (rows.length === 0) return [];
      const exec = options.trx ?? db.knex;
      const columns = Object.keys(rows[0]);
      const out: Record<string, unknown>[] = [];
      // 65,535 bind parameters per statement: chunks keep even wide rows well under it.
      const chunk = Math.max(1, Math.floor(20_000 / Math.max(1, columns.length)));
      for (let i = 0; i < rows.length; i += chunk) {
        const part = rows.slice(i, i + chunk);
        const values = exec.raw(part.map(() => `(${columns.map(() => '?').join(', ')})`).join(', '), part.flatMap((r) => columns.map((c) => r[c] ?? null)) as never[]);
        const result = await exec.raw(
          `with ins as (insert into ? (${columns.map(() => '??').join(', ')}) values ? returning *),
           audit as (insert into ? (actor_id, actor, action, plugin, entity, record_id, changes, request_id)
             select ?, ?, 'created', ?, ?, ins.id::text, (select jsonb_object_agg(key, jsonb_build_object('before', null, 'after', value)) from jsonb_each(to_jsonb(ins) - 'id')), ? from ins)
           select * from ins`,
          [db.ref(table), ...columns, values, db.ref('kubiki_audit'), options.actor.userId, options.actor.username, plugin, entity, options.requestId ?? null],
        );
        out.push(...(result.rows as Record<string, unknown>[]));
      }
      return out;
    },
  };
}
