import type { Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import type { Database, Executor } from '../db/database.ts';
import { KubikiError, isKubikiError, fieldError } from '../errors.ts';
import { requireGrant, type Principal } from '../auth/principal.ts';
import type { FieldChanges, WriteAction } from '../audit/audit-trail.ts';
import { writeManyWithJournal, writeWithJournal, writeJournal, type WriteCompanion } from './write-journal.ts';
import { toFieldIssues } from './ajv.ts';
import { applyComputed, refuseReadOnlyInput } from './computed-fields.ts';
import type { EntityDefinition } from './entity-definition.ts';
import type { EntityRegistry } from './entity-registry.ts';
import { refTable } from './entity-table.ts';
import { applyFilters, applyPage, encodeCursor, isUuid, parseListQuery, type ListSpec } from './list-query.ts';
import { diffFields, fieldsToColumns, normalizeFields, rowToFields, rowToRecord, type ApiRecord, type Row } from './record-codec.ts';
import { translateDbError } from './db-errors.ts';

export interface ReadOptions {
  actor: Principal;
  trx?: Executor;
}

export interface WriteOptions extends ReadOptions {
  requestId?: string;
  /** Optimistic concurrency: the write fails with 412 unless the record still has this version. */
  expectedVersion?: number;
  /**
   * A state machine's own write (a lifecycle transition, a plugin's posting code): it may change
   * fields the entity's guards keep from ordinary writes, such as a lifecycle's state field.
   */
  viaTransition?: boolean;
  /**
   * Work joined to the write's own statement (the workflow engine completes a step with it);
   * `receive` gets the written row with the companion's columns, or undefined when nothing was
   * written (an update that changed nothing). An update with a companion is optimistic.
   */
  companion?: WriteCompanion & { receive(row: Row | undefined): void };
  /** With a companion: the record as the caller read it, so an update need not read it again. */
  current?: ApiRecord;
}

export interface ListResult {
  data: ApiRecord[];
  next: string | null;
  total?: number;
}

export interface RepositoryHooks {
  /** Called after a write committed (not when it ran inside a caller's transaction). */
  afterCommit(): void;
  /** Whether an enabled subscriber listens to this event type; unheard events are journaled as delivered. */
  isHeard(eventType: string): boolean;
  /** Checks (and may complete) a write before validation: lifecycles guard their state field here. */
  guardWrite?(entity: EntityDefinition, action: 'create' | 'update' | 'delete', fields: Record<string, unknown>, options: WriteOptions, current?: Record<string, unknown>): void;
  /** The entity plugin's computed fields for the record as it will be written (undefined: none). */
  computeFields?(entity: EntityDefinition, write: ComputeRequest): Promise<Record<string, unknown> | undefined>;
}

export interface ComputeRequest {
  action: 'create' | 'update';
  /** Every field of the record as it will be written (validated), computed fields as they were. */
  fields: Readonly<Record<string, unknown>>;
  current?: Readonly<Record<string, unknown>>;
  actor: Principal;
  /** The write's transaction or connection: read other records in it. */
  exec: Executor;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
/** Records `createMany` takes in one call (one statement: PostgreSQL's bind-parameter limit is 65,535). */
const MAX_BATCH = 1000;
const SYSTEM_INPUT = new Set(['version', 'createdAt', 'updatedAt', 'createdBy', 'updatedBy']);

/**
 * The one write path for entity records: validate → permission → write → audit → outbox event, in
 * one transaction. Reads apply "own records only" grants. Everything else (HTTP, plugins, imports)
 * goes through here.
 */
export class EntityRepository {
  constructor(
    readonly entity: EntityDefinition,
    private readonly db: Database,
    private readonly registry: EntityRegistry,
    private readonly repositories: (qualifiedName: string) => EntityRepository,
    private readonly hooks: RepositoryHooks,
  ) {}

  private permission(action: 'read' | 'create' | 'update' | 'delete'): string {
    return `${this.entity.qualifiedName}.${action}`;
  }

  private get ownerColumn(): string {
    return this.entity.ownerField ?? 'createdBy';
  }

  private table(trx?: Executor): Knex.QueryBuilder {
    return this.db.table(this.entity.table, trx);
  }

  /** Parses HTTP-style query parameters and lists; see `parseListQuery` for the syntax. */
  async listFromQuery(query: Record<string, string | string[] | undefined>, options: ReadOptions): Promise<ListResult> {
    return this.list(parseListQuery(this.entity, query), options);
  }

  async list(spec: ListSpec, options: ReadOptions): Promise<ListResult> {
    const grant = requireGrant(options.actor, this.permission('read'), true);
    const base = this.table(options.trx);
    applyFilters(base, this.entity, spec);
    if (spec.externalIds) {
      const pairs = spec.externalIds.map((e) => [e.source, e.externalId]);
      base.whereIn('id', this.db.table('kubiki_external_ids', options.trx).where({ entity: this.entity.qualifiedName }).whereIn(['source', 'external_id'], pairs).select('record_id'));
    }
    if (grant === 'own') base.where(this.ownerColumn, options.actor.userId);
    const page = base.clone();
    applyPage(page, spec);
    if (spec.fields) page.select([...new Set(['id', 'version', ...spec.sort.map((s) => s.field), ...spec.fields])]);
    const rows: Row[] = await page;
    const more = rows.length > spec.limit;
    if (more) rows.pop();
    const only = spec.fields ? new Set(spec.fields) : undefined;
    const data = rows.map((r) => rowToRecord(this.entity, r, only));
    const last = rows[rows.length - 1];
    const next = more && last
      ? encodeCursor(spec.sort, spec.sort.map((k) => (last[k.field] instanceof Date ? (last[k.field] as Date).toISOString() : last[k.field] ?? null)), String(last.id))
      : null;
    await this.expand(data, spec.expand, options);
    const result: ListResult = { data, next };
    if (spec.total) {
      const [{ count }] = await base.clone().clearSelect().count<{ count: number | string }[]>({ count: '*' });
      result.total = Number(count);
    }
    return result;
  }

  async get(id: string, options: ReadOptions & { expand?: string[] }): Promise<ApiRecord> {
    const grant = requireGrant(options.actor, this.permission('read'), true);
    const row = await this.findRow(id, options.trx);
    // Records the user may not see are reported as missing, not as forbidden: no existence leak.
    if (!row || (grant === 'own' && row[this.ownerColumn] !== options.actor.userId)) throw this.notFound(id);
    const record = rowToRecord(this.entity, row);
    if (options.expand?.length) {
      for (const f of options.expand) {
        if (!this.entity.fields.get(f)?.ref) throw fieldError('bad-query', f, 'expandable', `expand: ${f} is not a reference field of ${this.entity.qualifiedName}`);
      }
      await this.expand([record], options.expand, options);
    }
    return record;
  }

  /** Several records by id in one query (ids not found, or not readable, are left out). */
  async getMany(ids: string[], options: ReadOptions): Promise<Map<string, ApiRecord>> {
    const grant = requireGrant(options.actor, this.permission('read'), true);
    const wanted = [...new Set(ids.filter(isUuid))];
    if (wanted.length === 0) return new Map();
    const q = this.table(options.trx).whereIn('id', wanted);
    if (grant === 'own') q.where(this.ownerColumn, options.actor.userId);
    const rows: Row[] = await q;
    return new Map(rows.map((r) => [String(r.id), rowToRecord(this.entity, r)]));
  }

  /** Checks one new record and makes its row: what `create` and `createMany` share. */
  private async prepareCreate(input: unknown, options: WriteOptions, grant: string): Promise<{ id: string; values: Record<string, unknown>; row: Row }> {
    if (!isPlainObject(input)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    const fields: Record<string, unknown> = {};
    let id: string = uuidv7();
    for (const [name, value] of Object.entries(input)) {
      if (name === 'id') {
        if (typeof value !== 'string' || !isUuid(value)) throw fieldError('validation-failed', 'id', 'format', 'id must be a UUID when given');
        id = value.toLowerCase();
      } else if (!SYSTEM_INPUT.has(name) && value !== null) {
        fields[name] = value;
      }
    }
    if (grant === 'own' && this.entity.ownerField && fields[this.entity.ownerField] !== options.actor.userId) {
      throw new KubikiError('forbidden', `${options.actor.username} may create only their own ${this.entity.qualifiedName} records: set ${this.entity.ownerField} to their user id`, { extra: { permission: this.permission('create') } });
    }
    this.hooks.guardWrite?.(this.entity, 'create', fields, options);
    const given = { ...fields };
    this.validate(fields);
    const computed = await this.hooks.computeFields?.(this.entity, { action: 'create', fields, actor: options.actor, exec: options.trx ?? this.db.knex });
    if (computed) {
      applyComputed(fields, computed);
      this.validate(fields);
    }
    if (!options.viaTransition) refuseReadOnlyInput(this.entity, given, fields);
    const values = normalizeFields(this.entity, fields);
    const actorId = options.actor.userId;
    return { id, values, row: { id, ...fieldsToColumns(this.entity, values), createdBy: actorId, updatedBy: actorId } };
  }

  async create(input: unknown, options: WriteOptions): Promise<ApiRecord> {
    // An ":own" create grant allows creating records the actor will own (createdBy is the actor).
    const grant = requireGrant(options.actor, this.permission('create'), true);
    const { id, values, row: columns } = await this.prepareCreate(input, options, grant);
    const insert = this.table(options.trx).insert(columns).returning('*');
    // One statement writes the record, its audit row and its event: no transaction round trips.
    const row = await this.inTransaction(options, () => writeWithJournal(this.db, options.trx ?? this.db.knex, insert, {
      heard: this.hooks.isHeard(`${this.entity.qualifiedName}.created`), entity: this.entity, action: 'created', recordId: id, changes: diffFields({}, values), actor: options.actor, requestId: options.requestId,
    }, options.companion), false);
    options.companion?.receive(row);
    return rowToRecord(this.entity, row!);
  }

  /**
   * Creates many records in one statement — the rows, their audit rows and their events — for
   * imports and batch postings. All or nothing: a bad record fails the call, its issues named by
   * index (`3.name`). Records come back in the order given.
   */
  async createMany(inputs: unknown[], options: WriteOptions): Promise<ApiRecord[]> {
    const grant = requireGrant(options.actor, this.permission('create'), true);
    if (!Array.isArray(inputs)) throw fieldError('validation-failed', '', 'type', 'give an array of records');
    if (inputs.length > MAX_BATCH) throw fieldError('validation-failed', '', 'maxItems', `at most ${MAX_BATCH} records at once`);
    if (inputs.length === 0) return [];
    const prepared = await Promise.all(inputs.map(async (input, i) => {
      try {
        return await this.prepareCreate(input, options, grant);
      } catch (error) {
        if (!isKubikiError(error)) throw error;
        const issues = error.issues.map((issue) => ({ ...issue, field: issue.field ? `${i}.${issue.field}` : String(i) }));
        throw new KubikiError(error.declared, `record ${i}: ${error.message}`, { issues, extra: error.extra });
      }
    }));
    const insert = this.table(options.trx).insert(prepared.map((p) => p.row)).returning('*');
    const heard = this.hooks.isHeard(`${this.entity.qualifiedName}.created`);
    const rows = await this.inTransaction(options, () => writeManyWithJournal(this.db, options.trx ?? this.db.knex, insert, prepared.map((p) => ({
      heard, entity: this.entity, action: 'created' as const, recordId: p.id, changes: diffFields({}, p.values), actor: options.actor, requestId: options.requestId,
    }))), false);
    const byId = new Map(rows.map((r) => [String(r.id), r]));
    return prepared.map((p) => rowToRecord(this.entity, byId.get(p.id)!));
  }

  async update(id: string, patch: unknown, options: WriteOptions): Promise<ApiRecord> {
    const grant = requireGrant(options.actor, this.permission('update'), true);
    if (!isPlainObject(patch)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    if (!isUuid(id)) throw this.notFound(id);
    let expectedVersion = options.expectedVersion;
    const requested: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(patch)) {
      if (name === 'version') {
        if (!Number.isInteger(value)) throw fieldError('validation-failed', 'version', 'type', 'version must be an integer');
        expectedVersion ??= value as number;
      } else if (name === 'id') {
        if (value !== id) throw fieldError('validation-failed', 'id', 'const', 'id cannot be changed');
      } else if (!SYSTEM_INPUT.has(name)) {
        requested[name] = value;
      }
    }
    if (options.companion && !options.trx) {
      // Optimistic, in one statement with the companion: the UPDATE matches only the version read
      // (or the version of the record the caller already holds: a stale one just loses).
      const row: Row | undefined = options.current?.id === id ? options.current : await this.findRow(id);
      if (!row) throw this.notFound(id);
      this.checkRow(row, id, grant, options, expectedVersion);
      return this.inTransaction(options, async (exec) => {
        const written = await this.applyUpdate(exec, row, requested, options, true);
        if (!written) throw new KubikiError('version-mismatch', `${this.entity.qualifiedName} ${id} changed while it was being updated; try again`);
        return written;
      }, false);
    }
    return this.inTransaction(options, async (trx) => {
      const row = await this.lockRow(id, trx, grant, options, expectedVersion);
      return (await this.applyUpdate(trx, row, requested, options, false))!;
    });
  }

  /** Merges, validates and writes a patch onto `row`; undefined when an optimistic write lost. */
  private async applyUpdate(exec: Executor, row: Row, requested: Record<string, unknown>, options: WriteOptions, optimistic: boolean): Promise<ApiRecord | undefined> {
    const before = rowToFields(this.entity, row);
    const merged: Record<string, unknown> = { ...before };
    for (const [name, value] of Object.entries(requested)) {
      if (value === null) delete merged[name];
      else merged[name] = value;
    }
    // Validated first (ajv may fill defaults), then normalized to what the database will hand back,
    // so the journal can be written in the UPDATE's own statement.
    this.validate(merged);
    const computed = await this.hooks.computeFields?.(this.entity, { action: 'update', fields: merged, current: before, actor: options.actor, exec });
    if (computed) {
      applyComputed(merged, computed);
      this.validate(merged);
    }
    if (!options.viaTransition) refuseReadOnlyInput(this.entity, requested, merged, before);
    const normalized = normalizeFields(this.entity, merged);
    const changes = diffFields(before, normalized);
    const changed = Object.fromEntries(Object.keys(changes).map((name) => [name, normalized[name] ?? null]));
    // Guards judge what the writer changed; computed fields are the entity plugin's own.
    const guarded = computed ? Object.fromEntries(Object.entries(changed).filter(([name]) => !(name in computed))) : changed;
    this.hooks.guardWrite?.(this.entity, 'update', guarded, options, before);
    if (Object.keys(changed).length === 0) {
      options.companion?.receive(undefined);
      return rowToRecord(this.entity, row);
    }
    const query = this.table(exec)
      .where({ id: row.id, ...(optimistic ? { version: row.version } : {}) })
      .update({ ...fieldsToColumns(this.entity, changed), version: exec.raw('?? + 1', ['version']), updatedAt: exec.fn.now(), updatedBy: options.actor.userId })
      .returning('*');
    const updated = await writeWithJournal(this.db, exec, query, {
      heard: this.hooks.isHeard(`${this.entity.qualifiedName}.updated`), entity: this.entity, action: 'updated', recordId: String(row.id), changes, actor: options.actor, requestId: options.requestId,
    }, options.companion);
    if (!updated) return undefined;
    options.companion?.receive(updated);
    return rowToRecord(this.entity, updated);
  }

  async delete(id: string, options: WriteOptions): Promise<void> {
    const grant = requireGrant(options.actor, this.permission('delete'), true);
    if (!isUuid(id)) throw this.notFound(id);
    await this.inTransaction(options, async (trx) => {
      const row = await this.lockRow(id, trx, grant, options, options.expectedVersion);
      this.hooks.guardWrite?.(this.entity, 'delete', {}, options, rowToFields(this.entity, row));
      await this.refuseIfReferenced(id, trx);
      await this.table(trx).where({ id }).delete();
      // Its ids in other systems go with it (core/integration/external-ids.ts).
      await this.db.table('kubiki_external_ids', trx).where({ entity: this.entity.qualifiedName, record_id: id }).delete();
      await this.journal(trx, 'deleted', row, diffFields(rowToFields(this.entity, row), {}), options);
    });
  }

  /**
   * The record's fields with its computed fields filled in, as a write would store them (the dry
   * run shows what the engine would write). `fields` must be valid; nothing is written.
   */
  async withComputedFields(fields: Record<string, unknown>, options: ReadOptions & { current?: Record<string, unknown> }): Promise<Record<string, unknown>> {
    const out = { ...fields };
    const computed = await this.hooks.computeFields?.(this.entity, { action: options.current ? 'update' : 'create', fields: out, current: options.current, actor: options.actor, exec: options.trx ?? this.db.knex });
    if (computed) applyComputed(out, computed);
    return out;
  }

  private validate(fields: Record<string, unknown>): void {
    const validate = this.registry.validator(this.entity);
    if (!validate(fields)) {
      const issues = toFieldIssues(validate.errors);
      throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues });
    }
  }

  /** Runs `work` in the caller's transaction, or a new one (or none, for a single statement). */
  private async inTransaction<T>(options: WriteOptions, work: (trx: Executor) => Promise<T>, needsTransaction = true): Promise<T> {
    try {
      if (options.trx) return await work(options.trx);
      const result = needsTransaction ? await this.db.knex.transaction(work) : await work(this.db.knex);
      if (['created', 'updated', 'deleted'].some((action) => this.hooks.isHeard(`${this.entity.qualifiedName}.${action}`))) this.hooks.afterCommit();
      return result;
    } catch (error) {
      throw translateDbError(error, this.entity);
    }
  }

  private async findRow(id: string, trx?: Executor): Promise<Row | undefined> {
    if (!isUuid(id)) return undefined;
    return this.table(trx).where({ id }).first();
  }

  private async lockRow(id: string, trx: Executor, grant: string, options: WriteOptions, expectedVersion?: number): Promise<Row> {
    const row: Row | undefined = await this.table(trx).where({ id }).forUpdate().first();
    if (!row) throw this.notFound(id);
    this.checkRow(row, id, grant, options, expectedVersion);
    return row;
  }

  /** "Own records only" and If-Match checks on a row about to change. */
  private checkRow(row: Row, id: string, grant: string, options: WriteOptions, expectedVersion?: number): void {
    if (grant === 'own' && row[this.ownerColumn] !== options.actor.userId) {
      const readable = options.actor.permissions.grant(this.permission('read')) === 'all';
      if (!readable) throw this.notFound(id);
      throw new KubikiError('forbidden', `${options.actor.username} may change only their own ${this.entity.qualifiedName} records`);
    }
    if (expectedVersion !== undefined && Number(row.version) !== expectedVersion) {
      throw new KubikiError('version-mismatch', `${this.entity.qualifiedName} ${id} is at version ${row.version}, not ${expectedVersion}; reload it and apply your change again`, {
        extra: { currentVersion: Number(row.version) },
      });
    }
  }

  private async refuseIfReferenced(id: string, trx: Executor): Promise<void> {
    const referrers: { entity: string; field: string; count: number; ids: string[] }[] = [];
    for (const { entity, field } of this.registry.referrersOf(this.entity.qualifiedName)) {
      const exists = await trx('information_schema.tables').where({ table_schema: this.db.schema, table_name: entity.table }).first();
      if (!exists) continue;
      const ids: string[] = await this.db.table(entity.table, trx).where(field.name, id).orderBy('id').limit(5).pluck('id');
      if (ids.length === 0) continue;
      const [{ count }] = await this.db.table(entity.table, trx).where(field.name, id).count<{ count: number | string }[]>({ count: '*' });
      referrers.push({ entity: entity.qualifiedName, field: field.name, count: Number(count), ids });
    }
    if (referrers.length) {
      const names = referrers.map((r) => `${r.count} ${r.entity} (${r.field})`).join(', ');
      throw new KubikiError('referenced', `${this.entity.qualifiedName} ${id} is referenced by ${names}; change or delete those first`, { extra: { referrers } });
    }
  }

  private async journal(trx: Executor, action: WriteAction, row: Row, changes: FieldChanges, options: WriteOptions): Promise<void> {
    await writeJournal(this.db, trx, { heard: this.hooks.isHeard(`${this.entity.qualifiedName}.${action}`), entity: this.entity, action, recordId: String(row.id), changes, actor: options.actor, requestId: options.requestId });
  }

  /** Replaces reference ids with the referenced records, one query per expanded field. */
  private async expand(records: ApiRecord[], fields: string[], options: ReadOptions): Promise<void> {
    for (const name of fields) {
      const ref = this.entity.fields.get(name)!.ref!;
      const ids = [...new Set(records.map((r) => r[name]).filter((v): v is string => typeof v === 'string'))];
      if (ids.length === 0) continue;
      const found = new Map<string, unknown>();
      if (ref === 'core.users') {
        requireGrant(options.actor, 'core.users.read');
        const users: Row[] = await this.db.table(refTable(this.registry, ref), options.trx).whereIn('id', ids).select('id', 'username', 'display_name');
        for (const u of users) found.set(String(u.id), { id: u.id, username: u.username, displayName: u.display_name });
      } else {
        const target = this.repositories(ref);
        const page = await target.list({ filters: [{ field: 'id', op: 'in', value: ids }], sort: [], limit: ids.length, expand: [], total: false }, options);
        for (const r of page.data) found.set(r.id, r);
      }
      for (const r of records) {
        const value = r[name];
        if (typeof value === 'string' && found.has(value)) r[name] = found.get(value);
      }
    }
  }

  private notFound(id: string): KubikiError {
    return new KubikiError('not-found', `${this.entity.qualifiedName} ${id} does not exist`, { extra: { entity: this.entity.qualifiedName, id } });
  }
}
