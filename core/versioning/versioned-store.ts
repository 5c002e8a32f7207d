import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import type { Database, Executor } from '../db/database.ts';
import { withMigrationLock } from '../db/core-migrations.ts';
import { KubikiError } from '../errors.ts';
import { SYSTEM, type Principal } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';

/** One saved version of a template, a workflow definition…: source text plus structured metadata. */
export interface ItemVersion<M> {
  id: string;
  version: number;
  origin: 'default' | 'edit';
  source: string;
  metadata: M;
  sourceHash: string;
  comment: string;
  createdBy: string;
  createdAt: string;
}

export interface ItemSummary {
  id: string;
  entity: string | null;
  publishedVersion: number | null;
  latestVersion: number;
}

/** What a kind of versioned item tells the store about itself. */
export interface ItemKind<M> {
  /** Stored in the `kind` column and used as the audit entity (`core.templates`). */
  kind: 'templates' | 'workflows';
  /** The word used in messages: "template", "workflow". */
  noun: string;
  /** The entity an item is about, for listing by entity. */
  entityOf(metadata: M): string | null;
  /** File extension of the source, for diffs. */
  extension: string;
}

type Row = Record<string, unknown>;

const hashOf = (source: string, metadata: unknown): string =>
  createHash('sha256').update(source).update('\0').update(JSON.stringify(metadata)).digest('hex');

/**
 * Versioned items in the database (document templates, workflow definitions). Every save is a new
 * version; one version is published. Shipped defaults are imported as versions too, so anything
 * that names a version can read it back after an upgrade changed the shipped file.
 */
export class VersionedStore<M> {
  constructor(private readonly db: Database, private readonly item: ItemKind<M>) {}

  private items(trx?: Executor) {
    return this.db.table('kubiki_versioned_items', trx).where({ kind: this.item.kind });
  }

  private versionsTable(trx?: Executor) {
    return this.db.table('kubiki_item_versions', trx).where({ kind: this.item.kind });
  }

  private toVersion(r: Row): ItemVersion<M> {
    return {
      id: String(r.item_id),
      version: Number(r.version),
      origin: r.origin as ItemVersion<M>['origin'],
      source: String(r.source),
      metadata: r.metadata as M,
      sourceHash: String(r.source_hash),
      comment: String(r.comment),
      createdBy: String(r.created_by_name),
      createdAt: String(r.created_at),
    };
  }

  /**
   * Imports shipped defaults that changed since their last import. A new default is published
   * only while the item still uses a default: an admin's published edit is never replaced.
   */
  async syncDefaults(shipped: { id: string; source: string; metadata: M }[]): Promise<void> {
    if (shipped.length === 0) return;
    await withMigrationLock(this.db, async (trx) => {
      for (const s of shipped) {
        const hash = hashOf(s.source, s.metadata);
        const latestDefault: Row | undefined = await this.versionsTable(trx).where({ item_id: s.id, origin: 'default' }).orderBy('version', 'desc').first();
        if (latestDefault?.source_hash === hash) continue;
        const existing: Row | undefined = await this.items(trx).where({ item_id: s.id }).first();
        if (!existing) await this.db.table('kubiki_versioned_items', trx).insert({ kind: this.item.kind, item_id: s.id, entity: this.item.entityOf(s.metadata) });
        const version = await this.nextVersion(s.id, trx);
        await this.db.table('kubiki_item_versions', trx).insert({
          kind: this.item.kind, item_id: s.id, version, origin: 'default', source: s.source, metadata: JSON.stringify(s.metadata), source_hash: hash,
          comment: 'shipped default', created_by: null, created_by_name: SYSTEM.username,
        });
        const published = existing?.published_version == null ? undefined
          : await this.versionsTable(trx).where({ item_id: s.id, version: existing.published_version }).first('origin');
        if (!existing?.withdrawn && (!published || published.origin === 'default')) {
          await this.items(trx).where({ item_id: s.id }).update({ published_version: version, entity: this.item.entityOf(s.metadata), updated_at: trx.fn.now() });
        }
      }
    });
  }

  private async nextVersion(id: string, trx?: Executor): Promise<number> {
    const row = await this.versionsTable(trx).where({ item_id: id }).max<{ max: number | null }[]>({ max: 'version' });
    return Number(row[0]?.max ?? 0) + 1;
  }

  async exists(id: string): Promise<boolean> {
    return Boolean(await this.items().where({ item_id: id }).first('item_id'));
  }

  async list(): Promise<(ItemSummary & { shown: ItemVersion<M> })[]> {
    const rows: Row[] = await this.items().orderBy('item_id').select();
    const out: (ItemSummary & { shown: ItemVersion<M> })[] = [];
    for (const r of rows) out.push(await this.summaryOf(r));
    return out;
  }

  private async summaryOf(r: Row): Promise<ItemSummary & { shown: ItemVersion<M> }> {
    const id = String(r.item_id);
    const latest = (await this.nextVersion(id)) - 1;
    const published = r.published_version == null ? null : Number(r.published_version);
    return { id, entity: (r.entity as string | null) ?? null, publishedVersion: published, latestVersion: latest, shown: await this.version(id, published ?? latest) };
  }

  async summary(id: string): Promise<ItemSummary & { shown: ItemVersion<M> }> {
    return this.summaryOf(await this.row(id));
  }

  private async row(id: string): Promise<Row> {
    const r: Row | undefined = await this.items().where({ item_id: id }).first();
    if (!r) throw new KubikiError('not-found', `no ${this.item.noun} ${id}`);
    return r;
  }

  async version(id: string, version: number): Promise<ItemVersion<M>> {
    const r: Row | undefined = await this.versionsTable().where({ item_id: id, version }).first();
    if (!r) throw new KubikiError('not-found', `${this.item.noun} ${id} has no version ${version}`, { issues: [{ field: 'version', rule: 'exists', message: `no version ${version}` }] });
    return this.toVersion(r);
  }

  async versions(id: string): Promise<Omit<ItemVersion<M>, 'source'>[]> {
    await this.row(id);
    const rows: Row[] = await this.versionsTable().where({ item_id: id }).orderBy('version', 'desc');
    return rows.map((r) => {
      const { source: _source, ...rest } = this.toVersion(r);
      return rest;
    });
  }

  /** The published version; an item with only drafts answers 409. */
  async published(id: string): Promise<ItemVersion<M>> {
    const r = await this.row(id);
    if (r.published_version == null) throw new KubikiError('conflict', `${this.item.noun} ${id} has no published version yet; publish one`);
    return this.version(id, Number(r.published_version));
  }

  /** The metadata of the latest version, or undefined for an item that does not exist yet. */
  async latestMetadata(id: string): Promise<M | undefined> {
    if (!(await this.exists(id))) return undefined;
    return (await this.version(id, (await this.nextVersion(id)) - 1)).metadata;
  }

  /** Saves a new, unpublished version; the caller has checked source and metadata. */
  async save(id: string, input: { source: string; metadata: M; comment?: string }, actor: Principal, requestId?: string): Promise<ItemVersion<M>> {
    return this.db.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`kubiki:${this.item.kind}:${this.db.schema}:${id}`]);
      if (!(await this.items(trx).where({ item_id: id }).first())) {
        await this.db.table('kubiki_versioned_items', trx).insert({ kind: this.item.kind, item_id: id, entity: this.item.entityOf(input.metadata) });
      }
      const version = await this.nextVersion(id, trx);
      const [row] = await this.db.table('kubiki_item_versions', trx).insert({
        kind: this.item.kind, item_id: id, version, origin: 'edit', source: input.source, metadata: JSON.stringify(input.metadata),
        source_hash: hashOf(input.source, input.metadata), comment: input.comment ?? '', created_by: actor.userId, created_by_name: actor.username,
      }).returning('*');
      await writeAudit(this.db, trx, {
        actor, action: 'saved', plugin: 'core', entity: this.item.kind, recordId: id, requestId,
        changes: { version: { before: version - 1 || null, after: version } },
      });
      return this.toVersion(row);
    });
  }

  /** Publishes a version (the latest when none is named); rolling back is publishing an older one. */
  async publish(id: string, version: number | undefined, actor: Principal, action: 'published' | 'rolled-back', requestId?: string): Promise<ItemSummary & { shown: ItemVersion<M> }> {
    const r = await this.row(id);
    const target = version ?? (await this.nextVersion(id)) - 1;
    await this.version(id, target);
    await this.db.knex.transaction(async (trx) => {
      await this.items(trx).where({ item_id: id }).update({ published_version: target, withdrawn: false, updated_at: trx.fn.now() });
      await writeAudit(this.db, trx, {
        actor, action, plugin: 'core', entity: this.item.kind, recordId: id, requestId,
        changes: { publishedVersion: { before: r.published_version ?? null, after: target } },
      });
    });
    return this.summary(id);
  }

  /** Takes the published version out of use (until one is published again); shipped updates respect it. */
  async withdraw(id: string, actor: Principal, requestId?: string): Promise<ItemSummary & { shown: ItemVersion<M> }> {
    const r = await this.row(id);
    if (r.published_version == null) throw new KubikiError('conflict', `${this.item.noun} ${id} is not published`);
    await this.db.knex.transaction(async (trx) => {
      await this.items(trx).where({ item_id: id }).update({ published_version: null, withdrawn: true, updated_at: trx.fn.now() });
      await writeAudit(this.db, trx, {
        actor, action: 'unpublished', plugin: 'core', entity: this.item.kind, recordId: id, requestId,
        changes: { publishedVersion: { before: r.published_version, after: null } },
      });
    });
    return this.summary(id);
  }

  /** A unified diff of two versions' sources, followed by their metadata's when that changed too. */
  async diff(id: string, from: number, to: number): Promise<string> {
    const [a, b] = await Promise.all([this.version(id, from), this.version(id, to)]);
    const ext = this.item.extension;
    const source = createTwoFilesPatch(`${id}@${from}.${ext}`, `${id}@${to}.${ext}`, a.source, b.source);
    const metaA = `${JSON.stringify(a.metadata, null, 2)}\n`;
    const metaB = `${JSON.stringify(b.metadata, null, 2)}\n`;
    return metaA === metaB ? source : source + createTwoFilesPatch(`${id}@${from}.json`, `${id}@${to}.json`, metaA, metaB);
  }
}
