import { createHash, randomBytes } from 'node:crypto';
import os from 'node:os';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import type { Database } from '../db/database.ts';
import { SYSTEM, requireGrant, type Principal } from '../auth/principal.ts';
import type { AuthService } from '../auth/auth-service.ts';
import { KubikiError, isKubikiError } from '../errors.ts';
import { createAjv } from '../entities/ajv.ts';
import type { EntityRegistry } from '../entities/entity-registry.ts';
import type { EntityRepository } from '../entities/entity-repository.ts';
import type { ExtensionPoints } from '../plugins/extension-points.ts';
import { compileMapping, mappingHash, parseMapping, type CompiledMapping, type MappingDefinition, type MappingTarget } from './import-mapping.ts';
import { ImportRunner, LostJob, type ProgressState, type RunTarget } from './import-runner.ts';
import { openSource, sniffFormat, type ImportFormat, type Source } from './import-sources.ts';
import { ImportTargets } from './import-targets.ts';

// Import jobs: a row per run of a file into a target, holding the mapping, the checkpoint (the
// last line whose batch committed) and the counts; bad rows go to kubiki_import_errors in the same
// transactions. Files uploaded through the API are kept in the database in chunks, so any process
// can run or resume the job; the CLI reads its local file again on a resume (checked by SHA-256).

export const DEFAULT_BATCH = 1000;
const LEASE_SECONDS = 60;
const CHUNK_BYTES = 1024 * 1024;

export interface ImportDeps {
  db: Database;
  registry: EntityRegistry;
  auth: AuthService;
  logger: Logger;
  extensionPoints: ExtensionPoints;
  isEnabled(plugin: string): boolean;
  /** The repository behind /api/{plugin}/{entity}: 404 unless the plugin is enabled and has it. */
  entityRepository(plugin: string, plural: string): EntityRepository;
  /** Wakes event delivery after a committed batch. */
  kick(): void;
  env: NodeJS.ProcessEnv;
}

export type JobStatus = 'queued' | 'running' | 'completed' | 'failed' | 'cancelled';

export interface JobRow {
  id: string; target: string; status: JobStatus; dry_run: boolean; key: string | null; mapping_name: string | null;
  mapping: MappingDefinition; mapping_hash: string; file_id: string | null; file_name: string; format: ImportFormat;
  file_size: number; file_sha256: string; batch_size: number; checkpoint_line: number; bytes_read: number; rows_read: number;
  created: number; updated: number; unchanged: number; failed: number; batches: number; resumes: number;
  owner: string | null; lease_until: string | null; actor_id: string | null; actor: string;
  error: { code: string; message: string; issues?: unknown[] } | null; request_id: string | null; source_job: string | null;
  created_at: string; started_at: string | null; updated_at: string; finished_at: string | null;
}

export interface ErrorRow { line: number; column: string; field: string; rule: string; message: string; value?: string }

/** An import job as the API and CLI show it. */
export interface JobView {
  id: string;
  target: string;
  status: JobStatus;
  dryRun: boolean;
  key: string | null;
  mapping: string | null;
  file: { name: string; format: ImportFormat; size: number; sha256: string };
  progress: { rowsRead: number; bytesRead: number; totalBytes: number; percent: number; checkpointLine: number; batches: number };
  counts: { created: number; updated: number; unchanged: number; failed: number };
  /** Completed with no bad row (a dry run: would be). Null while not finished. */
  accepted: boolean | null;
  resumes: number;
  error?: { code: string; message: string; issues?: unknown[] };
  errors?: ErrorRow[];
  actor: string;
  sourceJob?: string;
  createdAt: string;
  startedAt?: string;
  finishedAt?: string;
}

export interface JobSpec {
  target: string;
  mapping: MappingDefinition;
  mappingName?: string;
  dryRun: boolean;
  key?: string;
  batchSize?: number;
  actor: Principal;
  requestId?: string;
  file: { id?: string; name: string; format: ImportFormat; size: number; sha256: string };
  sourceJob?: string;
}

const iso = (v: unknown): string | undefined => (v === null || v === undefined ? undefined : v instanceof Date ? v.toISOString() : String(v));

export function jobView(row: JobRow, errors?: ErrorRow[]): JobView {
  const total = Number(row.file_size);
  const done = row.status === 'completed';
  const bytes = done ? total : Math.min(Number(row.bytes_read), total);
  return {
    id: row.id, target: row.target, status: row.status, dryRun: row.dry_run, key: row.key, mapping: row.mapping_name,
    file: { name: row.file_name, format: row.format, size: total, sha256: row.file_sha256 },
    progress: {
      rowsRead: row.rows_read, bytesRead: bytes, totalBytes: total, percent: done ? 100 : total > 0 ? Math.min(99, Math.floor((bytes / total) * 100)) : 0,
      checkpointLine: row.checkpoint_line, batches: row.batches,
    },
    counts: { created: row.created, updated: row.updated, unchanged: row.unchanged, failed: row.failed },
    accepted: done ? row.failed === 0 : row.status === 'queued' || row.status === 'running' ? null : false,
    resumes: row.resumes,
    ...(row.error ? { error: row.error } : {}),
    ...(errors ? { errors } : {}),
    actor: row.actor,
    ...(row.source_job ? { sourceJob: row.source_job } : {}),
    createdAt: iso(row.created_at)!,
    ...(row.started_at ? { startedAt: iso(row.started_at) } : {}),
    ...(row.finished_at ? { finishedAt: iso(row.finished_at) } : {}),
  };
}

/** `host:pid:nonce`: who runs a job. A process on this host that is gone left its jobs to be taken over. */
const ownerId = (): string => `${os.hostname()}:${process.pid}:${randomBytes(4).toString('hex')}`;

function ownerIsGone(owner: string): boolean {
  const [host, pid] = owner.split(':');
  if (host !== os.hostname() || !/^\d+$/.test(pid ?? '')) return false;
  if (Number(pid) === process.pid) return false;
  try {
    process.kill(Number(pid), 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

export interface RunHooks {
  onProgress?(view: ProgressState & { totalBytes: number }): void;
  /** Called once the header is read and the mapping compiled (columns no field reads, …). */
  onStart?(info: { header: string[]; unmappedColumns: string[]; resumedAfterLine: number }): void;
}

export class ImportService {
  readonly targets: ImportTargets;
  private readonly owner = ownerId();
  private readonly running = new Map<string, Promise<unknown>>();
  private stopping = false;
  private timer?: NodeJS.Timeout;
  private readonly targetAjv = createAjv();
  private readonly targetValidators = new Map<string, ReturnType<ReturnType<typeof createAjv>['compile']>>();
  /** Largest file the API takes (KUBIKI_IMPORT_MAX_BYTES, default 1 GiB). */
  readonly maxUploadBytes: number;
  /** Batches one job writes at once (KUBIKI_IMPORT_CONCURRENCY; default 2 on PostgreSQL, 1 on PGlite's single connection). */
  readonly concurrency: number;

  constructor(private readonly deps: ImportDeps) {
    this.targets = new ImportTargets(deps.extensionPoints, deps.isEnabled);
    const max = Number(deps.env.KUBIKI_IMPORT_MAX_BYTES);
    this.maxUploadBytes = Number.isInteger(max) && max > 0 ? max : 1024 * 1024 * 1024;
    const concurrency = Number(deps.env.KUBIKI_IMPORT_CONCURRENCY);
    this.concurrency = Number.isInteger(concurrency) && concurrency >= 1 && concurrency <= 8 ? concurrency : deps.db.kind === 'postgres' ? 2 : 1;
  }

  private get db(): Database {
    return this.deps.db;
  }

  // ── Targets ───────────────────────────────────────────────────────────────────────────────

  /** An entity (`base.organizations`, its plugin enabled) or a plugin's import target. */
  resolveTarget(name: string): RunTarget {
    const plugin = this.targets.get(name);
    if (plugin) {
      let validate = this.targetValidators.get(name);
      if (!validate) this.targetValidators.set(name, (validate = this.targetAjv.compile(plugin.rowSchema)));
      return { kind: 'plugin', target: plugin, validate };
    }
    const m = /^([a-z][a-z0-9]*)\.([a-z][a-zA-Z0-9]*)$/.exec(name);
    if (!m) throw new KubikiError('unknown-entity', `no entity or import target ${name} (name it as <plugin>.<plural>, e.g. base.organizations)`, { issues: [{ field: 'entity', rule: 'exists', message: `no entity ${name}` }] });
    const repository = this.deps.entityRepository(m[1], m[2]);
    return { kind: 'entity', entity: repository.entity, repository };
  }

  private mappingTarget(target: RunTarget): MappingTarget {
    const { registry } = this.deps;
    return {
      name: target.kind === 'entity' ? target.entity.qualifiedName : target.target.qualifiedName,
      fields: target.kind === 'entity' ? target.entity.fields : target.target.fields,
      naturalKey: (q) => {
        if (!registry.has(q)) return undefined;
        const fields = [...registry.get(q).fields.values()];
        return (fields.find((f) => f.unique && f.kind === 'text') ?? fields.find((f) => f.search === 'exact' && f.kind === 'text'))?.name;
      },
      hasField: (q, field) => registry.has(q) && registry.get(q).fields.has(field),
    };
  }

  /** Refuses (403) unless the actor may do what the import will: create (and update, with a key), read what references point to. */
  checkPermissions(target: RunTarget, actor: Principal, key: string | undefined, mapping?: CompiledMapping): void {
    if (target.kind === 'plugin') {
      requireGrant(actor, target.target.contribution.permission);
    } else {
      requireGrant(actor, `${target.entity.qualifiedName}.create`, true);
      if (key) requireGrant(actor, `${target.entity.qualifiedName}.update`, true);
    }
    for (const ref of mapping?.refFields.values() ?? []) requireGrant(actor, `${ref.target}.read`, true);
  }

  /** Compiles the mapping against the file's header: the problems a run would stop on, found before it is queued. */
  async precheck(spec: { target: string; mapping: MappingDefinition; key?: string; actor: Principal; format: ImportFormat }, open: () => Readable): Promise<{ header: string[]; unmappedColumns: string[] }> {
    const target = this.resolveTarget(spec.target);
    this.checkPermissions(target, spec.actor, spec.key ?? spec.mapping.key);
    const source = await openSource(open(), { format: spec.format, ...spec.mapping.options });
    try {
      const compiled = compileMapping(spec.mapping, this.mappingTarget(target), source.header, { key: spec.key });
      this.checkPermissions(target, spec.actor, compiled.key, compiled);
      return { header: source.header, unmappedColumns: compiled.unmappedColumns };
    } finally {
      source.close();
    }
  }

  // ── Mappings ──────────────────────────────────────────────────────────────────────────────

  async listMappings(): Promise<{ name: string; target: string; version: number; updatedAt: string }[]> {
    const rows: { name: string; target: string; version: number; updated_at: unknown }[] = await this.db.table('kubiki_import_mappings').orderBy('name').select('name', 'target', 'version', 'updated_at');
    return rows.map((r) => ({ name: r.name, target: r.target, version: r.version, updatedAt: iso(r.updated_at)! }));
  }

  async getMapping(name: string): Promise<{ name: string; version: number; definition: MappingDefinition; updatedAt: string }> {
    const row = await this.db.table('kubiki_import_mappings').where({ name }).first();
    if (!row) throw new KubikiError('not-found', `no saved import mapping ${name}`, { issues: [{ field: 'mapping', rule: 'exists', message: `no saved mapping ${name}` }] });
    return { name: row.name, version: row.version, definition: row.definition as MappingDefinition, updatedAt: iso(row.updated_at)! };
  }

  async saveMapping(name: string, value: unknown, actor: Principal): Promise<{ name: string; version: number; definition: MappingDefinition; updatedAt: string; created: boolean }> {
    const definition = parseMapping(value);
    this.resolveTarget(definition.target);
    const created = await this.db.knex.transaction(async (trx) => {
      const existing = await this.db.table('kubiki_import_mappings', trx).where({ name }).forUpdate().first();
      if (existing) {
        await this.db.table('kubiki_import_mappings', trx).where({ name }).update({ target: definition.target, definition: JSON.stringify(definition), version: trx.raw('version + 1'), updated_by: actor.userId, updated_at: trx.fn.now() });
        return false;
      }
      await this.db.table('kubiki_import_mappings', trx).insert({ name, target: definition.target, definition: JSON.stringify(definition), created_by: actor.userId, updated_by: actor.userId });
      return true;
    });
    return { ...(await this.getMapping(name)), created };
  }

  async deleteMapping(name: string): Promise<void> {
    const deleted: unknown[] = await this.db.table('kubiki_import_mappings').where({ name }).delete().returning('name');
    if (deleted.length === 0) throw new KubikiError('not-found', `no saved import mapping ${name}`);
  }

  // ── Files ─────────────────────────────────────────────────────────────────────────────────

  /** Stores an uploaded file in chunks while hashing it; 413 past the limit (nothing kept). */
  async storeUpload(stream: Readable, name: string, actor: Principal, format?: ImportFormat): Promise<{ id: string; name: string; format: ImportFormat; size: number; sha256: string }> {
    const id = uuidv7();
    // The stream may break (a client gone, a form cut off) before the loop below reads it: the loop
    // still sees that error, but until it starts an unheard 'error' would crash the process.
    stream.on('error', () => undefined);
    await this.db.table('kubiki_import_files').insert({ id, name, format: format ?? 'csv', size: 0, sha256: '', created_by: actor.userId });
    const hash = createHash('sha256');
    let size = 0;
    let seq = 0;
    let pending: Buffer[] = [];
    let pendingBytes = 0;
    let first: Buffer | undefined;
    const flush = async () => {
      if (pendingBytes === 0) return;
      const data = Buffer.concat(pending);
      pending = [];
      pendingBytes = 0;
      await this.db.table('kubiki_import_file_chunks').insert({ file_id: id, seq: seq++, data });
    };
    try {
      for await (const chunk of stream) {
        const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
        first ??= b;
        size += b.length;
        if (size > this.maxUploadBytes) throw new KubikiError('payload-too-large', `the file is larger than ${this.maxUploadBytes} bytes (KUBIKI_IMPORT_MAX_BYTES)`, { extra: { limit: this.maxUploadBytes } });
        hash.update(b);
        pending.push(b);
        pendingBytes += b.length;
        if (pendingBytes >= CHUNK_BYTES) await flush();
      }
      await flush();
      if (size === 0) throw new KubikiError('import-file-invalid', 'the file is empty', { issues: [{ field: 'file', rule: 'required', message: 'send the file as the request body (or a multipart part named file)' }] });
    } catch (error) {
      await this.db.table('kubiki_import_files').where({ id }).delete();
      throw error;
    }
    const detected = format ?? sniffFormat(first ?? Buffer.alloc(0));
    const sha256 = hash.digest('hex');
    await this.db.table('kubiki_import_files').where({ id }).update({ size, sha256, format: detected });
    return { id, name, format: detected, size, sha256 };
  }

  /** A stored file as a stream, one chunk (one query) at a time. */
  fileStream(fileId: string): Readable {
    const db = this.db;
    return Readable.from((async function* chunks() {
      for (let seq = 0; ; seq++) {
        const row = await db.table('kubiki_import_file_chunks').where({ file_id: fileId, seq }).first('data');
        if (!row) return;
        yield Buffer.from(row.data as Uint8Array);
      }
    })());
  }

  async deleteFile(fileId: string): Promise<void> {
    await this.db.table('kubiki_import_files').where({ id: fileId }).delete();
  }

  // ── Jobs ──────────────────────────────────────────────────────────────────────────────────

  async createJob(spec: JobSpec): Promise<JobRow> {
    const id = uuidv7();
    const [row] = await this.db.table('kubiki_import_jobs').insert({
      id, target: spec.target, status: 'queued', dry_run: spec.dryRun, key: spec.key ?? spec.mapping.key ?? null, mapping_name: spec.mappingName ?? null,
      mapping: JSON.stringify(spec.mapping), mapping_hash: mappingHash(spec.mapping), file_id: spec.file.id ?? null, file_name: spec.file.name,
      format: spec.file.format, file_size: spec.file.size, file_sha256: spec.file.sha256, batch_size: spec.batchSize ?? DEFAULT_BATCH,
      actor_id: spec.actor.userId, actor: spec.actor.username, request_id: spec.requestId ?? null, source_job: spec.sourceJob ?? null,
    }).returning('*');
    return row as JobRow;
  }

  /** An unfinished job of the same file, target, mapping, key and mode (the one to resume). */
  async findResumable(spec: { target: string; sha256: string; mapping: MappingDefinition; key?: string; dryRun: boolean; actor: Principal }): Promise<JobRow | undefined> {
    return this.db.table('kubiki_import_jobs')
      .where({ target: spec.target, file_sha256: spec.sha256, mapping_hash: mappingHash(spec.mapping), dry_run: spec.dryRun, key: spec.key ?? spec.mapping.key ?? null })
      .where((q) => (spec.actor.userId ? q.where('actor_id', spec.actor.userId) : q.whereNull('actor_id')))
      .whereIn('status', ['queued', 'running']).orderBy('created_at', 'desc').first();
  }

  /** The last completed real import of the same file into the same target with the same mapping. */
  async findCompleted(spec: { target: string; sha256: string; mapping: MappingDefinition }): Promise<JobRow | undefined> {
    return this.db.table('kubiki_import_jobs').where({ target: spec.target, file_sha256: spec.sha256, mapping_hash: mappingHash(spec.mapping), dry_run: false, status: 'completed' })
      .orderBy('created_at', 'desc').first();
  }

  async row(id: string): Promise<JobRow> {
    const row = /^[0-9a-f-]{36}$/i.test(id) ? await this.db.table('kubiki_import_jobs').where({ id }).first() : undefined;
    if (!row) throw new KubikiError('not-found', `import job ${id} does not exist`, { extra: { entity: 'core.imports', id } });
    return row as JobRow;
  }

  /** A job as `actor` may see it: their own, or any with core.imports.read. */
  async view(id: string, actor: Principal, options: { errors?: number } = {}): Promise<JobView> {
    const row = await this.row(id);
    this.checkVisible(row, actor);
    const errors = options.errors === 0 ? undefined : await this.errorRows(id, { limit: options.errors ?? 20 });
    return jobView(row, errors);
  }

  checkVisible(row: JobRow, actor: Principal): void {
    if (row.actor_id !== null && row.actor_id === actor.userId) return;
    if (actor.permissions.grant('core.imports.read') === 'all') return;
    throw new KubikiError('not-found', `import job ${row.id} does not exist`, { extra: { entity: 'core.imports', id: row.id } });
  }

  async list(actor: Principal, query: { target?: string; status?: JobStatus; limit?: number; before?: string }): Promise<{ data: JobView[]; next: string | null }> {
    const limit = query.limit ?? 50;
    const q = this.db.table('kubiki_import_jobs').orderBy('id', 'desc').limit(limit + 1);
    if (actor.permissions.grant('core.imports.read') !== 'all') q.where('actor_id', actor.userId);
    if (query.target) q.where('target', query.target);
    if (query.status) q.where('status', query.status);
    if (query.before) q.where('id', '<', query.before);
    const rows = (await q) as JobRow[];
    const more = rows.length > limit;
    if (more) rows.pop();
    return { data: rows.map((r) => jobView(r)), next: more ? rows[rows.length - 1].id : null };
  }

  async errorRows(jobId: string, options: { limit: number }): Promise<ErrorRow[]> {
    return (await this.errorRowsWithIds(jobId, options)).map(({ id: _id, ...r }) => r);
  }

  /** Bad rows in file order with their row ids (`after` is the previous page's last `line:id`). */
  async errorRowsWithIds(jobId: string, options: { limit: number; after?: { line: number; id: number } }): Promise<(ErrorRow & { id: number })[]> {
    const q = this.db.table('kubiki_import_errors').where({ job_id: jobId }).orderBy([{ column: 'line' }, { column: 'id' }]).limit(options.limit);
    if (options.after) q.whereRaw('(line, id) > (?, ?)', [options.after.line, options.after.id]);
    const rows: Record<string, unknown>[] = await q;
    return rows.map((r) => ({ id: Number(r.id), line: Number(r.line), column: String(r.column_name), field: String(r.field), rule: String(r.rule), message: String(r.message), ...(r.value !== null ? { value: String(r.value) } : {}) }));
  }

  /** Every error of a job in file order, a page at a time (the CSV download). */
  async *allErrors(jobId: string): AsyncGenerator<ErrorRow[]> {
    let after: { line: number; id: number } | undefined;
    for (;;) {
      const rows = await this.errorRowsWithIds(jobId, { limit: 1000, after });
      if (rows.length === 0) return;
      const last = rows[rows.length - 1];
      after = { line: last.line, id: last.id };
      yield rows.map(({ id: _id, ...r }) => r);
    }
  }

  async cancel(id: string, actor: Principal): Promise<JobView> {
    const row = await this.row(id);
    this.checkVisible(row, actor);
    if (row.status !== 'queued' && row.status !== 'running') {
      throw new KubikiError('conflict', `import job ${id} is ${row.status}; only a queued or running job can be cancelled`, { issues: [{ field: 'status', rule: 'state', message: `job is ${row.status}` }] });
    }
    // The runner's next checkpoint finds the row cancelled and rolls its batch back.
    await this.db.table('kubiki_import_jobs').where({ id }).whereIn('status', ['queued', 'running']).update({ status: 'cancelled', owner: null, lease_until: null, finished_at: this.db.knex.fn.now(), updated_at: this.db.knex.fn.now() });
    return jobView(await this.row(id));
  }

  /**
   * Claims a job for this process: queued, or running with its lease run out, or left by a process
   * of this host that is gone (SIGKILLed). 409 import-in-progress while another process runs it.
   */
  async claim(id: string): Promise<JobRow> {
    const current = await this.row(id);
    if (current.status !== 'queued' && current.status !== 'running') {
      throw new KubikiError('conflict', `import job ${id} is ${current.status}`, { extra: { status: current.status } });
    }
    const gone = current.owner && current.owner !== this.owner && ownerIsGone(current.owner) ? current.owner : null;
    const q = this.db.table('kubiki_import_jobs').where({ id }).whereIn('status', ['queued', 'running'])
      .where((w) => {
        w.whereNull('owner').orWhere('lease_until', '<', this.db.knex.fn.now()).orWhere('owner', this.owner);
        if (gone) w.orWhere('owner', gone);
      });
    const [row] = await q.update({
      owner: this.owner, status: 'running', lease_until: this.db.knex.raw('now() + make_interval(secs => ?)', [LEASE_SECONDS]),
      started_at: this.db.knex.raw('coalesce(started_at, now())'), updated_at: this.db.knex.fn.now(),
      // A resume is a run taking over committed batches; claiming again a job this process holds is none.
      resumes: this.db.knex.raw('resumes + (case when batches > 0 and owner is distinct from ? then 1 else 0 end)', [this.owner]),
    }).returning('*');
    if (!row) {
      throw new KubikiError('import-in-progress', `import job ${id} is being run by ${current.owner} (its lease runs until ${iso(current.lease_until)}); wait for it, or run again after that`, { extra: { owner: current.owner } });
    }
    return row as JobRow;
  }

  private async principalOf(row: JobRow): Promise<Principal> {
    if (row.actor_id === null) return SYSTEM;
    return this.deps.auth.principalForUser(row.actor_id);
  }

  /**
   * Runs a claimed job from its checkpoint to the end of `open()`'s stream. Resolves with the job
   * as it ends: completed, failed (a mapping that does not fit the header, an unreadable file), or
   * still running when this process was told to stop (resumable).
   */
  async run(claimed: JobRow, open: () => Readable, hooks: RunHooks = {}, actorOverride?: Principal): Promise<JobRow> {
    const id = claimed.id;
    let source: Source | undefined;
    try {
      const actor = actorOverride ?? await this.principalOf(claimed);
      const target = this.resolveTarget(claimed.target);
      this.checkPermissions(target, actor, claimed.key ?? undefined);
      source = await openSource(open(), { format: claimed.format, ...claimed.mapping.options });
      const compiled = compileMapping(claimed.mapping, this.mappingTarget(target), source.header, { key: claimed.key ?? undefined });
      this.checkPermissions(target, actor, compiled.key, compiled);
      hooks.onStart?.({ header: source.header, unmappedColumns: compiled.unmappedColumns, resumedAfterLine: claimed.checkpoint_line });
      const base = { created: claimed.created, updated: claimed.updated, unchanged: claimed.unchanged, failed: claimed.failed, rowsRead: claimed.rows_read, batches: claimed.batches };
      const runner = new ImportRunner({
        db: this.db, registry: this.deps.registry, leaseSeconds: LEASE_SECONDS, concurrency: this.concurrency,
        afterBatch: (state) => {
          this.deps.kick();
          hooks.onProgress?.({
            ...state, created: base.created + state.created, updated: base.updated + state.updated, unchanged: base.unchanged + state.unchanged,
            failed: base.failed + state.failed, rowsRead: base.rowsRead + state.rowsRead, batches: base.batches + state.batches, totalBytes: Number(claimed.file_size),
          });
        },
        shouldStop: () => this.stopping,
      }, { id, dryRun: claimed.dry_run, checkpointLine: claimed.checkpoint_line, batchSize: claimed.batch_size, owner: this.owner }, actor, target, compiled);
      const done: { first: number; last: number }[] = (await this.db.table('kubiki_import_batches').where({ job_id: id }).where('last_line', '>', claimed.checkpoint_line).select('first_line as first', 'last_line as last'));
      const finished = await runner.run(source, done);
      if (!finished) {
        // Stopping: hand the job back at once so another process can resume it.
        await this.db.table('kubiki_import_jobs').where({ id, owner: this.owner }).update({ owner: null, lease_until: null });
        return this.row(id);
      }
      await this.db.table('kubiki_import_jobs').where({ id, owner: this.owner, status: 'running' }).update({
        status: 'completed', owner: null, lease_until: null, bytes_read: claimed.file_size, finished_at: this.db.knex.fn.now(), updated_at: this.db.knex.fn.now(),
      });
      if (claimed.file_id && !claimed.dry_run) await this.releaseFile(claimed.file_id);
      return this.row(id);
    } catch (error) {
      if (error instanceof LostJob) return this.row(id);
      const known = isKubikiError(error) ? error : undefined;
      if (!known) this.deps.logger.error({ err: error, job: id }, 'import job failed');
      await this.db.table('kubiki_import_jobs').where({ id, owner: this.owner }).update({
        status: 'failed', owner: null, lease_until: null, finished_at: this.db.knex.fn.now(), updated_at: this.db.knex.fn.now(),
        error: JSON.stringify(known ? { code: known.code, message: known.message, ...(known.issues.length ? { issues: known.issues } : {}) } : { code: 'internal', message: (error as Error).message }),
      });
      throw error;
    } finally {
      source?.close();
    }
  }

  /** An uploaded file is kept while a dry run of it may still be run for real; dropped once nothing needs it. */
  private async releaseFile(fileId: string): Promise<void> {
    const open = await this.db.table('kubiki_import_jobs').where({ file_id: fileId }).whereIn('status', ['queued', 'running']).first('id');
    if (!open) await this.deleteFile(fileId);
  }

  /** Runs an API job (its file in the database) in the background of this process. */
  kick(id: string): Promise<JobRow | undefined> {
    const existing = this.running.get(id);
    if (existing) return existing as Promise<JobRow | undefined>;
    const work = (async () => {
      try {
        const claimed = await this.claim(id);
        if (!claimed.file_id) return claimed;
        return await this.run(claimed, () => this.fileStream(claimed.file_id!));
      } catch (error) {
        if (isKubikiError(error)) return undefined; // recorded on the job
        this.deps.logger.error({ err: error, job: id }, 'import job failed');
        return undefined;
      } finally {
        this.running.delete(id);
      }
    })();
    this.running.set(id, work);
    return work;
  }

  /** Resumes API jobs a crashed process left (their lease ran out). */
  start(intervalMs = 5000): void {
    this.timer = setInterval(() => void this.sweep().catch((error) => this.deps.logger.error({ err: error }, 'import sweep failed')), intervalMs);
    this.timer.unref();
  }

  async sweep(): Promise<void> {
    if (this.stopping) return;
    const rows: { id: string }[] = await this.db.table('kubiki_import_jobs').whereNotNull('file_id').whereIn('status', ['queued', 'running'])
      .where((w) => w.whereNull('lease_until').orWhere('lease_until', '<', this.db.knex.fn.now())).orderBy('created_at').limit(5).select('id');
    for (const r of rows) void this.kick(r.id);
    // Uploaded files no job needs any more (a dry run's, kept for POST …/run) go after a week.
    await this.db.table('kubiki_import_files as f').where('f.created_at', '<', this.db.knex.raw("now() - interval '7 days'"))
      .whereNotExists((q) => q.select(this.db.knex.raw('1')).from(this.db.knex.raw('??.kubiki_import_jobs as j', [this.db.schema])).whereRaw('j.file_id = f.id').whereIn('j.status', ['queued', 'running']))
      .delete();
  }

  /** Lets running jobs finish their batch and hands them back (resumable); waits for them. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.timer);
    await Promise.allSettled([...this.running.values()]);
  }

  /** Waits for the jobs this process runs (tests). */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.running.values()]);
  }

  // ── What go-live gates ask ────────────────────────────────────────────────────────────────

  /** Rows imported into a target by completed real imports (gates: "N rows of base.organizations imported"). */
  async imported(target: string): Promise<{ jobs: number; created: number; updated: number; unchanged: number; failed: number; lastJob: string | null }> {
    const [r] = await this.db.table('kubiki_import_jobs').where({ target, dry_run: false, status: 'completed' })
      .select(this.db.knex.raw('count(*)::int as jobs, coalesce(sum(created), 0)::int as created, coalesce(sum(updated), 0)::int as updated, coalesce(sum(unchanged), 0)::int as unchanged, coalesce(sum(failed), 0)::int as failed, max(id::text) as "lastJob"'));
    return { jobs: Number(r.jobs), created: Number(r.created), updated: Number(r.updated), unchanged: Number(r.unchanged), failed: Number(r.failed), lastJob: r.lastJob ?? null };
  }

  /** Whether job `id` ran for real to its end with every row accepted (gates: "every row of import X accepted"). */
  async fullyAccepted(id: string): Promise<boolean> {
    const row = await this.row(id);
    return row.status === 'completed' && !row.dry_run && row.failed === 0;
  }
}
