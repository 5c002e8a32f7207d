import { v7 as uuidv7 } from 'uuid';
import type { Database, Executor } from '../db/database.ts';
import { KubikiError, fieldError, isKubikiError } from '../errors.ts';
import { requireGrant, type Principal } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import type { EntityRepository } from '../entities/entity-repository.ts';
import type { ApiRecord } from '../entities/record-codec.ts';
import { isUuid } from '../entities/list-query.ts';

// Ids of records in other systems. A record may carry one id per source (`1c`, `bitrix24`,
// `shop`); an id is unique per entity and source. Stored in kubiki_external_ids beside the records,
// so every entity has them without a column of its own. `PUT …/by-external/{source}/{externalId}`
// creates or updates the record that id names through the entity's repository (validated,
// permission-checked, audited, evented) and is idempotent: sending the same body again changes
// nothing, and parallel PUTs of one id make one record.

export const SOURCE_PATTERN = '^[a-z0-9][a-z0-9._-]{0,63}$';
export const MAX_EXTERNAL_ID = 200;

export interface ExternalIdLink {
  source: string;
  externalId: string;
  createdAt: string;
}

export interface UpsertOptions {
  actor: Principal;
  requestId?: string;
  /** If-Match: the version the caller saw; a record at another version (or none yet) is 412. */
  expectedVersion?: number;
}

const isPlainObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** A 23505 on the one-id-per-source-and-record constraint, said in words. */
function translate(error: unknown, entity: string, source: string): unknown {
  if (isKubikiError(error)) return error;
  const e = error as { code?: string; constraint?: string };
  if (e?.code === '23505' && e.constraint?.startsWith('kubiki_external_ids')) {
    return fieldError('unique-violation', 'externalId', 'unique', `the ${entity} record already has another id from ${source}; one id per source and record`);
  }
  return error;
}

export class ExternalIds {
  constructor(
    private readonly db: Database,
    private readonly repository: (plugin: string, plural: string) => EntityRepository,
    /** Runs after a write committed here (wakes event delivery). */
    private readonly afterCommit: () => void,
  ) {}

  private table(trx?: Executor) {
    return this.db.table('kubiki_external_ids', trx);
  }

  /**
   * Creates the record `source`/`externalId` names, or updates it with the fields given (a merge,
   * as PATCH: fields left out stay, null clears one). One transaction: the id's row and the
   * record's write commit together, so a refused write leaves no id behind.
   */
  async upsert(plugin: string, plural: string, source: string, externalId: string, body: unknown, options: UpsertOptions): Promise<{ record: ApiRecord; created: boolean }> {
    const repo = this.repository(plugin, plural);
    const entity = repo.entity.qualifiedName;
    if (!isPlainObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    const givenId = body.id;
    if (givenId !== undefined && (typeof givenId !== 'string' || !isUuid(givenId))) throw fieldError('validation-failed', 'id', 'format', 'id must be a UUID when given');
    const write = { actor: options.actor, requestId: options.requestId };
    let result: { record: ApiRecord; created: boolean };
    try {
      result = await this.db.knex.transaction(async (trx) => {
        const create = async (): Promise<{ record: ApiRecord; created: boolean } | undefined> => {
          const id = givenId === undefined ? uuidv7() : givenId.toLowerCase();
          // Parallel upserts of one id wait here for the first to commit, then find its row.
          const inserted: unknown[] = await this.table(trx).insert({ entity, source, external_id: externalId, record_id: id, created_by: options.actor.userId })
            .onConflict(['entity', 'source', 'external_id']).ignore().returning('record_id');
          if (inserted.length === 0) return undefined;
          // Rolls the id's row back with the transaction.
          if (options.expectedVersion !== undefined) throw new KubikiError('version-mismatch', `no ${entity} record has ${source} id ${externalId} yet, so it has no version ${options.expectedVersion}`);
          const record = await repo.create({ ...body, id }, { ...write, trx });
          await writeAudit(this.db, trx, { actor: options.actor, action: 'linked', plugin, entity: plural, recordId: id, changes: { [`externalIds.${source}`]: { before: null, after: externalId } }, requestId: options.requestId });
          return { record, created: true };
        };
        const made = await create();
        if (made) return made;
        const row: { record_id: string } = await this.table(trx).where({ entity, source, external_id: externalId }).forUpdate().first('record_id');
        const recordId = String(row.record_id);
        if (givenId !== undefined && givenId.toLowerCase() !== recordId) {
          throw fieldError('validation-failed', 'id', 'const', `${source} id ${externalId} belongs to ${entity} ${recordId}; id cannot be changed`);
        }
        const patch = { ...body };
        delete patch.id;
        try {
          return { record: await repo.update(recordId, patch, { ...write, trx, expectedVersion: options.expectedVersion }), created: false };
        } catch (error) {
          // The record was deleted around its id (ids go with their records; this is a leftover).
          if (!isKubikiError(error) || error.code !== 'not-found' || await repo.get(recordId, { actor: options.actor, trx }).then(() => true, () => false)) throw error;
          await this.table(trx).where({ entity, source, external_id: externalId }).delete();
          const again = await create();
          if (!again) throw error;
          return again;
        }
      });
    } catch (error) {
      throw translate(error, entity, source);
    }
    this.afterCommit();
    return result;
  }

  /** The record's ids in other systems (needs read permission on it). */
  async linksOf(plugin: string, plural: string, id: string, actor: Principal): Promise<ExternalIdLink[]> {
    const repo = this.repository(plugin, plural);
    await repo.get(id, { actor });
    const rows: Record<string, unknown>[] = await this.table().where({ entity: repo.entity.qualifiedName, record_id: id }).orderBy('source');
    return rows.map((r) => ({ source: String(r.source), externalId: String(r.external_id), createdAt: String(r.created_at) }));
  }

  /** Gives an existing record its id from `source` (replacing the one it had); needs update permission. */
  async link(plugin: string, plural: string, id: string, source: string, externalId: string, actor: Principal, requestId?: string): Promise<ExternalIdLink> {
    const repo = this.repository(plugin, plural);
    const entity = repo.entity.qualifiedName;
    requireGrant(actor, `${entity}.update`);
    await repo.get(id, { actor });
    try {
      return await this.db.knex.transaction(async (trx) => {
        const taken: { record_id: string } | undefined = await this.table(trx).where({ entity, source, external_id: externalId }).first('record_id');
        if (taken && String(taken.record_id) !== id) {
          throw fieldError('unique-violation', 'externalId', 'unique', `${source} id ${externalId} already names ${entity} ${taken.record_id}`);
        }
        const before: { external_id: string } | undefined = await this.table(trx).where({ entity, source, record_id: id }).forUpdate().first('external_id');
        if (before?.external_id !== externalId) {
          if (before) await this.table(trx).where({ entity, source, record_id: id }).delete();
          await this.table(trx).insert({ entity, source, external_id: externalId, record_id: id, created_by: actor.userId });
          await writeAudit(this.db, trx, { actor, action: 'linked', plugin, entity: plural, recordId: id, changes: { [`externalIds.${source}`]: { before: before?.external_id ?? null, after: externalId } }, requestId });
        }
        const row: Record<string, unknown> = await this.table(trx).where({ entity, source, record_id: id }).first();
        return { source, externalId, createdAt: String(row.created_at) };
      });
    } catch (error) {
      throw translate(error, entity, source);
    }
  }

  async unlink(plugin: string, plural: string, id: string, source: string, actor: Principal, requestId?: string): Promise<void> {
    const repo = this.repository(plugin, plural);
    const entity = repo.entity.qualifiedName;
    requireGrant(actor, `${entity}.update`);
    await repo.get(id, { actor });
    await this.db.knex.transaction(async (trx) => {
      const [row]: { external_id: string }[] = await this.table(trx).where({ entity, source, record_id: id }).delete().returning('external_id');
      if (!row) throw new KubikiError('not-found', `${entity} ${id} has no id from ${source}`, { extra: { id, source } });
      await writeAudit(this.db, trx, { actor, action: 'unlinked', plugin, entity: plural, recordId: id, changes: { [`externalIds.${source}`]: { before: row.external_id, after: null } }, requestId });
    });
  }
}
