import type { Knex } from 'knex';
import type { Database, Executor } from '../db/database.ts';
import type { Principal } from '../auth/principal.ts';
import type { FieldChanges, WriteAction } from '../audit/audit-trail.ts';
import type { EntityDefinition } from './entity-definition.ts';
import type { Row } from './record-codec.ts';

export interface JournalEntry {
  entity: EntityDefinition;
  action: WriteAction;
  recordId: string;
  changes: FieldChanges;
  actor: Principal;
  requestId?: string;
  /** False when no enabled subscriber listens: the event is kept as history, not queued. */
  heard: boolean;
}

/**
 * The audit row and the outbox event of one write, as two data-modifying CTEs. Being part of the
 * write's own statement (or transaction) they exist exactly when the write does, at the cost of
 * no extra round trip.
 */
function journalCtes(db: Database, e: JournalEntry): { sql: string; bindings: Knex.Value[] } {
  const { plugin, plural, qualifiedName } = e.entity;
  const changes = JSON.stringify(e.changes);
  return {
    sql: `journal_audit as (insert into ?? (actor_id, actor, action, plugin, entity, record_id, changes, request_id) values (?, ?, ?, ?, ?, ?, ?::jsonb, ?)),
      journal_event as (insert into ?? (event, plugin, entity, record_id, payload, actor_id, dispatched_at) values (?, ?, ?, ?, ?::jsonb, ?, ${e.heard ? 'null' : 'now()'}))`,
    bindings: [
      `${db.schema}.kubiki_audit`, e.actor.userId, e.actor.username, e.action, plugin, plural, e.recordId, changes, e.requestId ?? null,
      // Events carry the changes and who made them (`by`: a username, `workflow:<id>` for workflow
      // steps); subscribers that need the whole record read it (it may have moved on).
      `${db.schema}.kubiki_outbox`, `${qualifiedName}.${e.action}`, plugin, plural, e.recordId, JSON.stringify({ changes: e.changes, by: e.actor.username }), e.actor.userId,
    ],
  };
}

/** Journals a write that already happened in `trx`. */
export async function writeJournal(db: Database, trx: Executor, e: JournalEntry): Promise<void> {
  const j = journalCtes(db, e);
  await trx.raw(`with ${j.sql} select 1`, j.bindings);
}

/** Runs an INSERT … RETURNING * and its journal as one statement: atomic without a transaction. */
export async function insertWithJournal(db: Database, executor: Executor, insert: Knex.QueryBuilder, e: JournalEntry): Promise<Row> {
  const { sql, bindings } = insert.toSQL();
  const j = journalCtes(db, e);
  const result = (await executor.raw(`with written as (${sql}), ${j.sql} select * from written`, [...bindings, ...j.bindings])) as { rows: Row[] };
  return result.rows[0];
}
