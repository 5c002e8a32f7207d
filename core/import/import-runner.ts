import type { Knex } from 'knex';
import type { ValidateFunction } from 'ajv';
import type { Database } from '../db/database.ts';
import { requireGrant, type Principal } from '../auth/principal.ts';
import { KubikiError, isKubikiError, type FieldIssue } from '../errors.ts';
import { toFieldIssues } from '../entities/ajv.ts';
import type { EntityDefinition } from '../entities/entity-definition.ts';
import type { EntityRegistry } from '../entities/entity-registry.ts';
import type { EntityRepository } from '../entities/entity-repository.ts';
import { normalizeFields, rowToRecord, type Row } from '../entities/record-codec.ts';
import { EXTERNAL_ID, rowIssueOf, type CompiledMapping, type MappedRow, type RowIssue } from './import-mapping.ts';
import type { Source } from './import-sources.ts';
import type { ImportRow, PluginTarget } from './import-targets.ts';

// One pass over a file: rows are read, mapped and checked a batch at a time; each batch is one
// transaction that writes its good rows (through the repository or the plugin target), its bad
// rows' errors and the job's checkpoint together. A crash loses at most the batch in flight, and
// the next run starts after the last checkpoint: no row is written twice, none is skipped. A dry
// run takes the very same path and rolls the writes back inside the batch (errors and progress
// are kept).

export interface BatchCounts {
  created: number;
  updated: number;
  unchanged: number;
  failed: number;
}

/** What the runner needs about the target. */
export type RunTarget =
  | { kind: 'entity'; entity: EntityDefinition; repository: EntityRepository }
  | { kind: 'plugin'; target: PluginTarget; validate: ValidateFunction };

export interface RunJob {
  id: string;
  dryRun: boolean;
  checkpointLine: number;
  batchSize: number;
  owner: string;
}

export interface ProgressState extends BatchCounts {
  rowsRead: number;
  bytesRead: number;
  checkpointLine: number;
  batches: number;
}

export interface RunDeps {
  db: Database;
  registry: EntityRegistry;
  leaseSeconds: number;
  /** Batches written at once (each its own transaction and connection); 1 keeps them strictly in order. */
  concurrency: number;
  /** After each committed batch: wake event delivery, draw progress. */
  afterBatch(state: ProgressState): void;
  /** Checked between batches: stop (the job stays resumable). */
  shouldStop(): boolean;
}

class DryRunRollback extends Error {}
/** The job's row no longer says this process runs it (cancelled, or taken over after a lost lease). */
export class LostJob extends Error {}

const chunk = <T>(items: T[], size: number): T[][] => {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
};

/** Issues whose field starts with a record index (`3.inn`, from createMany) by index. */
function indexedIssues(error: unknown): Map<number, FieldIssue[]> | undefined {
  if (!isKubikiError(error) || error.issues.length === 0) return undefined;
  const out = new Map<number, FieldIssue[]>();
  for (const issue of error.issues) {
    const m = /^(\d+)(?:\.(.*))?$/.exec(issue.field);
    if (!m) return undefined;
    const i = Number(m[1]);
    out.set(i, [...(out.get(i) ?? []), { ...issue, field: m[2] ?? '', message: issue.message.replace(/^record \d+: /, '') }]);
  }
  return out;
}

/** A refused write → field issues (a refusal without issues names no field). */
function issuesOf(error: unknown): FieldIssue[] {
  if (!isKubikiError(error)) throw error;
  if (error.issues.length) return error.issues;
  return [{ field: '', rule: error.code, message: error.message }];
}

/** Line ranges of batches that committed: what a resumed run skips. */
export interface LineRange { first: number; last: number }

interface InFlight {
  seq: number;
  last: number;
  keys: Set<string>;
  done: Promise<void>;
  committed: boolean;
}

export class ImportRunner {
  private readonly counts: BatchCounts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
  private rowsRead = 0;
  private batches = 0;
  private seq = 0;
  private readonly inFlight: InFlight[] = [];
  private failure: unknown;
  /** Batches of this run in start order, to know the committed prefix (the checkpoint line shown). */
  private readonly started: InFlight[] = [];

  constructor(private readonly deps: RunDeps, private readonly job: RunJob, private readonly actor: Principal,
    private readonly target: RunTarget, private readonly mapping: CompiledMapping) {}

  /**
   * Reads `source` to its end (or until told to stop); returns false when it stopped early. Lines
   * in `done` (batches an earlier run committed) are skipped.
   */
  async run(source: Source, done: LineRange[] = []): Promise<boolean> {
    const { key } = this.mapping;
    const skip = [...done].sort((a, b) => a.first - b.first);
    let skipAt = 0;
    let batch: MappedRow[] = [];
    let keys = new Set<string>();
    let lastLine = this.job.checkpointLine;
    let firstLine = 0;
    const start = async () => {
      // Let the event loop breathe between batches: on PGlite every query is in-process, so without
      // this an import would keep the HTTP server from answering (its own progress included).
      await new Promise((resolve) => setImmediate(resolve));
      await this.launch(batch, firstLine, lastLine, keys, source);
      batch = [];
      keys = new Set();
    };
    for (;;) {
      if (this.failure) break;
      const next = await source.rows.next();
      if (next.done) break;
      const row = next.value;
      // Lines an earlier run (or this one) committed are skipped.
      if (row.line <= this.job.checkpointLine) continue;
      while (skipAt < skip.length && skip[skipAt].last < row.line) skipAt++;
      if (skipAt < skip.length && skip[skipAt].first <= row.line) continue;
      this.rowsRead++;
      const mapped = this.mapping.map(row);
      const keyValue = key ? this.keyValue(mapped, key) : undefined;
      // The same key twice in one batch: the earlier row is written first, so the later one updates it.
      if (keyValue !== undefined && keys.has(keyValue)) {
        await start();
        if (this.deps.shouldStop()) break;
      }
      if (batch.length === 0) firstLine = row.line;
      batch.push(mapped);
      if (keyValue !== undefined) keys.add(keyValue);
      lastLine = Math.max(lastLine, row.line);
      if (batch.length >= this.job.batchSize) {
        await start();
        if (this.deps.shouldStop()) break;
      }
    }
    const stopped = this.deps.shouldStop() || this.failure !== undefined;
    if (!stopped && batch.length) await start();
    await Promise.allSettled(this.inFlight.map((f) => f.done));
    if (this.failure) throw this.failure;
    if (stopped) return false;
    // An empty file (or one a resumed run had nothing left of) still ends with a checkpoint.
    if (this.batches === 0) await this.flush([], 0, lastLine, source, undefined);
    return true;
  }

  private keyValue(row: MappedRow, key: string): string | undefined {
    if (key === EXTERNAL_ID) return row.externalId;
    const v = row.fields[key];
    return v === undefined ? undefined : JSON.stringify(v);
  }

  /**
   * Starts a batch once a slot is free and no batch in flight holds one of its keys (a later row
   * with the key must see the earlier one written).
   */
  private async launch(batch: MappedRow[], firstLine: number, lastLine: number, keys: Set<string>, source: Source): Promise<void> {
    const conflicts = () => this.inFlight.filter((f) => [...keys].some((k) => f.keys.has(k)));
    while (!this.failure && (this.inFlight.length >= this.deps.concurrency || conflicts().length)) {
      await Promise.race(this.inFlight.map((f) => f.done));
    }
    if (this.failure) return;
    const flight: InFlight = { seq: this.seq++, last: lastLine, keys, committed: false, done: Promise.resolve() };
    flight.done = this.flush(batch, firstLine, lastLine, source, flight).then(
      () => { flight.committed = true; },
      (error: unknown) => { this.failure ??= error; },
    ).finally(() => this.inFlight.splice(this.inFlight.indexOf(flight), 1));
    this.inFlight.push(flight);
    this.started.push(flight);
  }

  /** The last line up to which every batch of this run has committed, counting `current` as committed. */
  private committedPrefix(current: InFlight | undefined): number {
    let line = this.job.checkpointLine;
    for (const f of this.started) {
      if (!(f.committed || f === current)) break;
      line = Math.max(line, f.last);
    }
    return line;
  }

  /** One batch, one transaction: good rows, bad rows' errors, the batch's line range, the job's counts. */
  private async flush(batch: MappedRow[], firstLine: number, lastLine: number, source: Source, flight: InFlight | undefined): Promise<void> {
    const { db } = this.deps;
    const counts: BatchCounts = { created: 0, updated: 0, unchanged: 0, failed: 0 };
    await db.knex.transaction(async (trx) => {
      const issues = batch.length ? await this.processBatch(batch, trx, counts) : [];
      if (issues.length) {
        for (const part of chunk(issues, 500)) {
          await db.table('kubiki_import_errors', trx).insert(part.map((i) => ({
            job_id: this.job.id, line: i.line, column_name: i.column, field: i.field, rule: i.rule, message: i.message.slice(0, 2000), value: i.value === undefined ? null : i.value.slice(0, 500),
          })));
        }
      }
      if (batch.length) await db.table('kubiki_import_batches', trx).insert({ job_id: this.job.id, first_line: firstLine, last_line: lastLine, rows: batch.length });
      // Last, so the job row is locked only for the moment before the commit (batches in flight queue here, not on their inserts).
      const written: unknown[] = await db.table('kubiki_import_jobs', trx).where({ id: this.job.id, owner: this.job.owner, status: 'running' }).update({
        checkpoint_line: trx.raw('greatest(checkpoint_line, ?)', [this.committedPrefix(flight)]),
        rows_read: trx.raw('rows_read + ?', [batch.length]),
        bytes_read: source.bytesRead(),
        created: trx.raw('created + ?', [counts.created]),
        updated: trx.raw('updated + ?', [counts.updated]),
        unchanged: trx.raw('unchanged + ?', [counts.unchanged]),
        failed: trx.raw('failed + ?', [counts.failed]),
        batches: trx.raw('batches + 1'),
        lease_until: trx.raw(`now() + make_interval(secs => ?)`, [this.deps.leaseSeconds]),
        updated_at: trx.fn.now(),
      }).returning('id');
      if (written.length === 0) throw new LostJob(`import job ${this.job.id} is no longer run by this process (cancelled or taken over)`);
    });
    this.batches++;
    for (const k of Object.keys(counts) as (keyof BatchCounts)[]) this.counts[k] += counts[k];
    this.deps.afterBatch({ ...this.counts, rowsRead: this.rowsRead, bytesRead: source.bytesRead(), checkpointLine: this.committedPrefix(flight), batches: this.batches });
  }

  /** Checks and writes one batch in `trx`; returns the bad rows' issues. */
  private async processBatch(batch: MappedRow[], trx: Knex.Transaction, counts: BatchCounts): Promise<RowIssue[]> {
    const issues: RowIssue[] = [];
    const bad = new Set<MappedRow>();
    const fail = (row: MappedRow, rowIssues: RowIssue[]) => {
      if (!bad.has(row)) {
        bad.add(row);
        counts.failed++;
      }
      issues.push(...rowIssues);
    };
    for (const row of batch) if (row.issues.length) fail(row, row.issues);
    await this.resolveRefs(batch.filter((r) => !bad.has(r)), trx, fail);
    const good = batch.filter((r) => !bad.has(r));
    try {
      await trx.transaction(async (sp) => {
        if (this.target.kind === 'entity') await this.writeEntityRows(good, sp, counts, fail);
        else await this.writeTargetRows(good, sp, counts, fail);
        if (this.job.dryRun) throw new DryRunRollback();
      });
    } catch (error) {
      if (!(error instanceof DryRunRollback)) throw error;
    }
    issues.sort((a, b) => a.line - b.line);
    return issues;
  }

  // ── References ────────────────────────────────────────────────────────────────────────────

  /** Looks up every reference of the batch: one query per referenced entity and lookup field. */
  private async resolveRefs(rows: MappedRow[], trx: Knex.Transaction, fail: (row: MappedRow, issues: RowIssue[]) => void): Promise<void> {
    const groups = new Map<string, { target: string; by: string; values: Set<string> }>();
    for (const row of rows) {
      for (const ref of row.refs) {
        const id = `${ref.target}|${ref.by}`;
        const g = groups.get(id) ?? { target: ref.target, by: ref.by, values: new Set<string>() };
        g.values.add(ref.by === 'id' ? ref.raw.toLowerCase() : ref.raw);
        groups.set(id, g);
      }
    }
    const found = new Map<string, Map<string, string[]>>();
    for (const [id, g] of groups) found.set(id, await this.lookup(g.target, g.by, [...g.values], trx));
    for (const row of rows) {
      const rowIssues: RowIssue[] = [];
      for (const ref of row.refs) {
        const ids = found.get(`${ref.target}|${ref.by}`)!.get(ref.by === 'id' ? ref.raw.toLowerCase() : ref.raw) ?? [];
        const how = ref.by === 'id' ? 'id' : ref.by === EXTERNAL_ID ? `external id (source ${this.mapping.source})` : ref.by;
        if (ids.length === 1) row.fields[ref.field] = ids[0];
        else if (ids.length === 0) rowIssues.push({ line: row.line, column: ref.column, field: ref.field, rule: 'reference-not-found', message: `${ref.field}: no ${ref.target} record has ${how} ${ref.raw}`, value: ref.raw });
        else rowIssues.push({ line: row.line, column: ref.column, field: ref.field, rule: 'ambiguous-reference', message: `${ref.field}: ${ids.length} ${ref.target} records have ${how} ${ref.raw}; use a unique key, an id or an external id`, value: ref.raw });
      }
      if (rowIssues.length) fail(row, rowIssues);
    }
  }

  /** value → ids of `target` records whose `by` is that value (readable by the actor). */
  private async lookup(target: string, by: string, values: string[], trx: Knex.Transaction): Promise<Map<string, string[]>> {
    const { db, registry } = this.deps;
    const entity = registry.get(target);
    const grant = requireGrant(this.actor, `${target}.read`, true);
    const out = new Map<string, string[]>();
    const add = (value: string, id: string) => out.set(value, [...(out.get(value) ?? []), id]);
    for (const part of chunk(values, 1000)) {
      if (by === EXTERNAL_ID) {
        const q = db.table('kubiki_external_ids as k', trx).join(db.knex.raw('??.?? as t', [db.schema, entity.table]), 't.id', 'k.record_id')
          .where({ 'k.entity': target, 'k.source': this.mapping.source }).whereIn('k.external_id', part).select('k.external_id as value', 't.id as id');
        if (grant === 'own') q.where(`t.${entity.ownerField ?? 'createdBy'}`, this.actor.userId);
        for (const r of await q as { value: string; id: string }[]) add(r.value, r.id);
      } else {
        const q = db.table(entity.table, trx).whereIn(by, part).select(`${by} as value`, 'id');
        if (grant === 'own') q.where(entity.ownerField ?? 'createdBy', this.actor.userId);
        for (const r of await q as { value: unknown; id: string }[]) add(String(r.value), String(r.id));
      }
    }
    return out;
  }

  // ── Entity rows ───────────────────────────────────────────────────────────────────────────

  private async writeEntityRows(rows: MappedRow[], trx: Knex.Transaction, counts: BatchCounts, fail: (row: MappedRow, issues: RowIssue[]) => void): Promise<void> {
    if (this.target.kind !== 'entity') return;
    const { entity, repository } = this.target;
    const validate = this.deps.registry.validator(entity);
    const existing = this.mapping.key ? await this.existingByKey(rows, trx) : new Map<MappedRow, Row>();
    const creates: MappedRow[] = [];
    const updates: { row: MappedRow; current: Row }[] = [];
    for (const row of rows) {
      const current = existing.get(row);
      if (current) {
        updates.push({ row, current });
        continue;
      }
      if (this.mapping.key && this.mapping.key !== 'id' && this.keyValue(row, this.mapping.key) === undefined) {
        const column = this.mapping.key === EXTERNAL_ID ? this.mapping.columnOfField.get(EXTERNAL_ID) ?? '' : this.mapping.columnOfField.get(this.mapping.key) ?? '';
        fail(row, [{ line: row.line, column, field: this.mapping.key, rule: 'key-required', message: `the key ${this.mapping.key} is empty: every row needs one to be matched on a re-run` }]);
        continue;
      }
      // Checked here with the entity's own validator (the one createMany runs again), so every bad
      // row of the batch is reported at once with all its fields, not only the first one found.
      const copy = structuredClone(row.fields);
      delete copy.id;
      if (!validate(copy)) {
        fail(row, toFieldIssues(validate.errors).map((i) => rowIssueOf(row.line, i, this.mapping, row.fields)));
        continue;
      }
      creates.push(row);
    }
    const createdIds = await this.createMany(creates, trx, fail);
    counts.created += createdIds.size;
    for (const { row, current } of updates) {
      const outcome = await this.updateOne(row, current, trx, fail);
      if (outcome === 'updated') counts.updated++;
      else if (outcome === 'unchanged') counts.unchanged++;
    }
    await this.linkExternalIds(entity, [...createdIds].filter(([row]) => row.externalId).map(([row, id]) => ({ externalId: row.externalId!, id }))
      .concat(updates.filter((u) => u.row.externalId && !this.failedRows.has(u.row)).map((u) => ({ externalId: u.row.externalId!, id: String(u.current.id) }))), trx);
  }

  /**
   * Records the rows' external ids as the records' ids in the source system — the same links
   * `/api/{plugin}/{entity}/by-external/{source}/{id}` reads (one id per record and source; a new
   * id replaces the record's old one), each link audited — for re-runs and later references.
   */
  private async linkExternalIds(entity: EntityDefinition, links: { externalId: string; id: string }[], trx: Knex.Transaction): Promise<void> {
    if (links.length === 0) return;
    const { db } = this.deps;
    const source = this.mapping.source;
    // The last row of an id wins (one INSERT … ON CONFLICT may not touch a row twice).
    const byRecord = new Map<string, string>();
    const byExternal = new Map<string, string>();
    for (const l of links) {
      const old = byExternal.get(l.externalId);
      if (old) byRecord.delete(old);
      byExternal.set(l.externalId, l.id);
      byRecord.set(l.id, l.externalId);
    }
    const rows = [...byRecord].map(([record_id, external_id]) => ({ record_id, external_id }));
    for (const part of chunk(rows, 1000)) {
      const json = JSON.stringify(part);
      const table = `${db.schema}.kubiki_external_ids`;
      const given = 'select * from jsonb_to_recordset(?::jsonb) as x(record_id uuid, external_id text)';
      // Three statements: one that deleted and re-inserted the same key would touch a row twice.
      const before = await trx.raw(`select k.record_id::text as record_id, k.external_id from ?? k join (${given}) g on g.record_id = k.record_id where k.entity = ? and k.source = ?`, [table, json, entity.qualifiedName, source]) as { rows: { record_id: string; external_id: string }[] };
      const had = new Map(before.rows.map((r) => [r.record_id, r.external_id]));
      await trx.raw(`delete from ?? k using (${given}) g where k.entity = ? and k.source = ? and ((k.record_id = g.record_id and k.external_id <> g.external_id) or (k.external_id = g.external_id and k.record_id <> g.record_id))`, [table, json, entity.qualifiedName, source]);
      const fresh = part.filter((r) => had.get(r.record_id) !== r.external_id);
      if (fresh.length) {
        await trx.raw(`insert into ?? (entity, source, external_id, record_id, created_by) select ?, ?, g.external_id, g.record_id, ?::uuid from (${given}) g on conflict do nothing`, [table, entity.qualifiedName, source, this.actor.userId, JSON.stringify(fresh)]);
      }
      const changed = { rows: fresh.map((r) => ({ record_id: r.record_id, external_id: r.external_id, before: had.get(r.record_id) ?? null })) };
      if (changed.rows.length === 0) continue;
      const audit = changed.rows.map((r) => ({
        actor_id: this.actor.userId, actor: this.actor.username, action: 'linked', plugin: entity.plugin, entity: entity.plural, record_id: r.record_id,
        changes: { [`externalIds.${source}`]: { before: r.before ?? null, after: r.external_id } }, request_id: null,
      }));
      await trx.raw(`insert into ?? (actor_id, actor, action, plugin, entity, record_id, changes, request_id)
        select x.actor_id, x.actor, x.action, x.plugin, x.entity, x.record_id, x.changes, x.request_id
        from jsonb_to_recordset(?::jsonb) as x(actor_id uuid, actor text, action text, plugin text, entity text, record_id text, changes jsonb, request_id text)`, [`${db.schema}.kubiki_audit`, JSON.stringify(audit)]);
    }
  }

  private readonly failedRows = new Set<MappedRow>();

  /** Existing records matched by the key (a field, `$externalId` or `id`). */
  private async existingByKey(rows: MappedRow[], trx: Knex.Transaction): Promise<Map<MappedRow, Row>> {
    if (this.target.kind !== 'entity') return new Map();
    const { entity } = this.target;
    const { db } = this.deps;
    const key = this.mapping.key!;
    const out = new Map<MappedRow, Row>();
    const byValue = new Map<string, Row[]>();
    const valueOf = (row: MappedRow): string | undefined => (key === EXTERNAL_ID ? row.externalId : key === 'id' ? (typeof row.fields.id === 'string' ? row.fields.id.toLowerCase() : undefined) : row.fields[key] === undefined ? undefined : String(row.fields[key]));
    const values = [...new Set(rows.map(valueOf).filter((v): v is string => v !== undefined))];
    for (const part of chunk(values, 1000)) {
      let found: (Row & { __key: string })[];
      if (key === EXTERNAL_ID) {
        found = await db.table(entity.table, trx).join(db.knex.raw('??.kubiki_external_ids as k', [db.schema]), 'k.record_id', `${entity.table}.id`)
          .where({ 'k.entity': entity.qualifiedName, 'k.source': this.mapping.source }).whereIn('k.external_id', part).select(`${entity.table}.*`, 'k.external_id as __key');
      } else if (key === 'id') {
        found = await db.table(entity.table, trx).whereIn('id', part.filter((v) => /^[0-9a-f-]{36}$/i.test(v))).select('*', db.knex.raw('id::text as __key'));
      } else {
        found = await db.table(entity.table, trx).whereIn(key, part).select('*', db.knex.raw('??::text as __key', [key]));
      }
      for (const r of found) byValue.set(String(r.__key), [...(byValue.get(String(r.__key)) ?? []), r]);
    }
    for (const row of rows) {
      const v = valueOf(row);
      const matches = v === undefined ? [] : byValue.get(v) ?? [];
      if (matches.length === 1) out.set(row, matches[0]);
      // A non-unique key matching several records is reported when the update is tried.
      else if (matches.length > 1) out.set(row, { ...matches[0], __ambiguous: matches.length });
    }
    return out;
  }

  /** createMany of the rows (one statement); a refused record is reported and the rest retried. */
  private async createMany(rows: MappedRow[], trx: Knex.Transaction, fail: (row: MappedRow, issues: RowIssue[]) => void): Promise<Map<MappedRow, string>> {
    if (this.target.kind !== 'entity' || rows.length === 0) return new Map();
    const { repository } = this.target;
    let pending = rows;
    for (let attempt = 0; attempt < 50 && pending.length; attempt++) {
      try {
        const records = await trx.transaction((sp) => repository.createMany(pending.map((r) => r.fields), { actor: this.actor, trx: sp }));
        return new Map(pending.map((r, i) => [r, records[i].id]));
      } catch (error) {
        const byIndex = indexedIssues(error);
        if (!byIndex) break; // a database refusal (a unique value taken): find the rows one by one
        for (const [i, rowIssues] of byIndex) fail(pending[i], rowIssues.map((issue) => rowIssueOf(pending[i].line, issue, this.mapping, pending[i].fields)));
        pending = pending.filter((_r, i) => !byIndex.has(i));
      }
    }
    const out = new Map<MappedRow, string>();
    for (const row of pending) {
      try {
        const record = await trx.transaction((sp) => repository.create(row.fields, { actor: this.actor, trx: sp }));
        out.set(row, record.id);
      } catch (error) {
        fail(row, issuesOf(error).map((issue) => rowIssueOf(row.line, issue, this.mapping, row.fields)));
      }
    }
    return out;
  }

  /** Updates an existing record with the row's fields, unless they are what it holds already. */
  private async updateOne(row: MappedRow, current: Row, trx: Knex.Transaction, fail: (row: MappedRow, issues: RowIssue[]) => void): Promise<'updated' | 'unchanged' | 'failed'> {
    if (this.target.kind !== 'entity') return 'failed';
    const { entity, repository } = this.target;
    const reject = (issues: FieldIssue[]) => {
      this.failedRows.add(row);
      fail(row, issues.map((issue) => rowIssueOf(row.line, issue, this.mapping, row.fields)));
      return 'failed' as const;
    };
    if (current.__ambiguous) {
      return reject([{ field: this.mapping.key!, rule: 'ambiguous-key', message: `${current.__ambiguous} ${entity.qualifiedName} records have this ${this.mapping.key}; the key must be unique` }]);
    }
    const patch = { ...row.fields };
    delete patch.id;
    const record = rowToRecord(entity, current);
    const normalized = normalizeFields(entity, patch);
    const same = Object.entries(normalized).every(([name, value]) => JSON.stringify(record[name] ?? null) === JSON.stringify(value ?? null));
    if (same) return 'unchanged';
    try {
      await trx.transaction((sp) => repository.update(String(current.id), patch, { actor: this.actor, trx: sp }));
      return 'updated';
    } catch (error) {
      return reject(issuesOf(error));
    }
  }

  // ── Plugin target rows ────────────────────────────────────────────────────────────────────

  private async writeTargetRows(rows: MappedRow[], trx: Knex.Transaction, counts: BatchCounts, fail: (row: MappedRow, issues: RowIssue[]) => void): Promise<void> {
    if (this.target.kind !== 'plugin') return;
    const { target, validate } = this.target;
    const valid: MappedRow[] = [];
    for (const row of rows) {
      const copy = structuredClone(row.fields);
      if (!validate(copy)) {
        fail(row, toFieldIssues(validate.errors).map((i) => rowIssueOf(row.line, i, this.mapping, row.fields)));
        continue;
      }
      row.fields = copy; // defaults filled in
      valid.push(row);
    }
    const ctx = {
      actor: this.actor, dryRun: this.job.dryRun, jobId: this.job.id,
      keyOf: (r: ImportRow) => `import-${this.job.id}-${r.line}`,
    };
    const asRows = (list: MappedRow[]): ImportRow[] => list.map((r) => ({ line: r.line, fields: r.fields, ...(r.externalId ? { externalId: r.externalId } : {}) }));
    let pending = valid;
    for (let attempt = 0; attempt < 50 && pending.length; attempt++) {
      try {
        await trx.transaction((sp) => target.contribution.write(asRows(pending), { ...ctx, trx: sp }));
        counts.created += pending.length;
        return;
      } catch (error) {
        const byIndex = indexedIssues(error);
        if (!byIndex) break;
        for (const [i, rowIssues] of byIndex) fail(pending[i], rowIssues.map((issue) => rowIssueOf(pending[i].line, issue, this.mapping, pending[i].fields)));
        pending = pending.filter((_r, i) => !byIndex.has(i));
      }
    }
    for (const row of pending) {
      try {
        await trx.transaction((sp) => target.contribution.write(asRows([row]), { ...ctx, trx: sp }));
        counts.created++;
      } catch (error) {
        const byIndex = indexedIssues(error);
        const issues = byIndex?.get(0) ?? issuesOf(error);
        fail(row, issues.map((issue) => rowIssueOf(row.line, issue, this.mapping, row.fields)));
      }
    }
  }
}
