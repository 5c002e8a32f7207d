import type { Knex } from 'knex';
import type { Database, Executor } from '../db/database.ts';
import type { Principal } from '../auth/principal.ts';
import type { FieldChanges, WriteAction } from '../audit/audit-trail.ts';
import type { EntityDefinition } from './entity-definition.ts';
import { recordJsonSql, type Row } from './record-codec.ts';

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
 * Work that must commit in the same statement as an entity write, or not at all: the workflow
 * engine completes a step this way. `ctes` may refer to `written` (the written row); `select`
 * adds columns to the statement's result; `guard` is an expression that fails the whole
 * statement (e.g. a division by zero) when the companion could not do its part.
 */
export interface WriteCompanion {
  ctes: string;
  select: string;
  bindings: Knex.Value[];
  guard?: string;
}

/**
 * The audit row and the outbox event of one write, as two data-modifying CTEs. Being part of the
 * write's own statement (or transaction) they exist exactly when the write does, at the cost of
 * no extra round trip. With `fromWritten` they are taken from the `written` CTE, so a write that
 * matched no row (an optimistic update that lost) journals nothing.
 */
function journalCtes(db: Database, e: JournalEntry, fromWritten = false): { sql: string; bindings: Knex.Value[] } {
  const { plugin, plural, qualifiedName } = e.entity;
  const changes = JSON.stringify(e.changes);
  const source = fromWritten ? 'select ?::uuid, ?, ?, ?, ?, ?, ?::jsonb, ? from written' : 'values (?::uuid, ?, ?, ?, ?, ?, ?::jsonb, ?)';
  const event = fromWritten ? `select ?, ?, ?, ?, ?::jsonb, ?::uuid, ${e.heard ? 'null::timestamptz' : 'now()'} from written` : `values (?, ?, ?, ?, ?::jsonb, ?::uuid, ${e.heard ? 'null::timestamptz' : 'now()'})`;
  return {
    sql: `journal_audit as (insert into ?? (actor_id, actor, action, plugin, entity, record_id, changes, request_id) ${source}),
      journal_event as (insert into ?? (event, plugin, entity, record_id, payload, actor_id, dispatched_at) ${event})`,
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
  await trx.raw(`with ${j.sql} select ${e.heard ? "pg_notify(?, '')" : '1'}`, [...j.bindings, ...(e.heard ? [db.eventChannel] : [])]);
}

/**
 * Runs an INSERT or UPDATE … RETURNING * and its journal (and a companion, if given) as one
 * statement: atomic without a transaction. Resolves to the written row, or undefined when the
 * write matched no row; the companion's columns come back on the same row.
 */
export async function writeWithJournal(db: Database, executor: Executor, write: Knex.QueryBuilder, e: JournalEntry, companion?: WriteCompanion): Promise<Row | undefined> {
  const { sql, bindings } = write.toSQL();
  const j = journalCtes(db, e, true);
  // The companion may store the written record: `written_record(record)` builds it as the API shows it.
  const recordJson = companion ? recordJsonSql(e.entity, 'w') : undefined;
  const extraCtes = companion ? `, written_record as (select ${recordJson!.sql} as record from written w), ${companion.ctes}` : '';
  const extraSelect = companion ? `, ${companion.select}${companion.guard ? `, ${companion.guard} as kubiki_guard` : ''}` : '';
  // A heard event wakes every process's delivery at commit (identical notifications of one transaction are sent once).
  const notify = e.heard ? ", pg_notify(?, '') as kubiki_notified" : '';
  const result = (await db.prepared(executor, `with written as (${sql}), ${j.sql}${extraCtes} select written.*${extraSelect}${notify} from written`,
    [...bindings, ...j.bindings, ...(recordJson?.bindings ?? []), ...(companion?.bindings ?? []), ...(e.heard ? [db.eventChannel] : [])])) as { rows: Row[] };
  return result.rows[0];
}

/**
 * Runs a multi-row INSERT … RETURNING * with one audit row and one event per record, as one
 * statement (the journal rows come from a JSON array, so the statement's size does not grow with
 * the bindings of each).
 */
export async function writeManyWithJournal(db: Database, executor: Executor, write: Knex.QueryBuilder, entries: JournalEntry[]): Promise<Row[]> {
  const { sql, bindings } = write.toSQL();
  const audit = entries.map((e) => ({
    actor_id: e.actor.userId, actor: e.actor.username, action: e.action, plugin: e.entity.plugin, entity: e.entity.plural,
    record_id: e.recordId, changes: e.changes, request_id: e.requestId ?? null,
  }));
  const events = entries.map((e) => ({
    event: `${e.entity.qualifiedName}.${e.action}`, plugin: e.entity.plugin, entity: e.entity.plural, record_id: e.recordId,
    payload: { changes: e.changes, by: e.actor.username }, actor_id: e.actor.userId, heard: e.heard,
  }));
  const result = (await executor.raw(
    `with written as (${sql}),
      journal_audit as (insert into ?? (actor_id, actor, action, plugin, entity, record_id, changes, request_id)
        select x.actor_id, x.actor, x.action, x.plugin, x.entity, x.record_id, x.changes, x.request_id
        from jsonb_to_recordset(?::jsonb) as x(actor_id uuid, actor text, action text, plugin text, entity text, record_id text, changes jsonb, request_id text)),
      journal_event as (insert into ?? (event, plugin, entity, record_id, payload, actor_id, dispatched_at)
        select x.event, x.plugin, x.entity, x.record_id, x.payload, x.actor_id, case when x.heard then null else now() end
        from jsonb_to_recordset(?::jsonb) as x(event text, plugin text, entity text, record_id text, payload jsonb, actor_id uuid, heard boolean))
     select *${entries.some((e) => e.heard) ? ", pg_notify(?, '') as kubiki_notified" : ''} from written`,
    [...bindings, `${db.schema}.kubiki_audit`, JSON.stringify(audit), `${db.schema}.kubiki_outbox`, JSON.stringify(events), ...(entries.some((e) => e.heard) ? [db.eventChannel] : [])],
  )) as { rows: Row[] };
  return result.rows;
}
