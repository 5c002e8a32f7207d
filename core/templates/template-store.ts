import { createHash } from 'node:crypto';
import { createTwoFilesPatch } from 'diff';
import type { Database } from '../db/database.ts';
import { withMigrationLock } from '../db/core-migrations.ts';
import { KubikiError, fieldError } from '../errors.ts';
import { SYSTEM, type Principal } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import { checkMetadata, TEMPLATE_ID, type ShippedTemplate, type TemplateMetadata } from './template-catalog.ts';
import type { TemplateEngine } from './template-engine.ts';

export interface TemplateVersion {
  templateId: string;
  version: number;
  origin: 'default' | 'edit';
  source: string;
  metadata: TemplateMetadata;
  sourceHash: string;
  comment: string;
  createdBy: string;
  createdAt: string;
}

export interface TemplateSummary {
  id: string;
  entity: string;
  title: string;
  publishedVersion: number | null;
  latestVersion: number;
  locale: string;
  paper: string;
}

type Row = Record<string, unknown>;

const hashOf = (source: string, metadata: TemplateMetadata): string =>
  createHash('sha256').update(source).update('\0').update(JSON.stringify(metadata)).digest('hex');

const toVersion = (r: Row): TemplateVersion => ({
  templateId: String(r.template_id),
  version: Number(r.version),
  origin: r.origin as TemplateVersion['origin'],
  source: String(r.source),
  metadata: r.metadata as TemplateMetadata,
  sourceHash: String(r.source_hash),
  comment: String(r.comment),
  createdBy: String(r.created_by_name),
  createdAt: String(r.created_at),
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Template versions in the database. Every save is a new version; one version is published (what
 * documents are printed with). Shipped defaults are imported as versions too, so every document
 * names a version that can be read back, even after an upgrade changes the shipped file.
 */
export class TemplateStore {
  constructor(private readonly db: Database, private readonly engine: TemplateEngine) {}

  /**
   * Imports shipped defaults that changed since the last import. A new default is published only
   * while the template still prints with a default: an admin's published edit is never replaced.
   */
  async syncDefaults(shipped: ShippedTemplate[]): Promise<void> {
    if (shipped.length === 0) return;
    await withMigrationLock(this.db, async (trx) => {
      for (const t of shipped) {
        const hash = hashOf(t.source, t.metadata);
        const latestDefault: Row | undefined = await this.db.table('kubiki_template_versions', trx)
          .where({ template_id: t.id, origin: 'default' }).orderBy('version', 'desc').first();
        if (latestDefault?.source_hash === hash) continue;
        this.engine.check(t.source);
        const template: Row | undefined = await this.db.table('kubiki_templates', trx).where({ id: t.id }).first();
        if (!template) await this.db.table('kubiki_templates', trx).insert({ id: t.id, entity: t.metadata.entity });
        const version = await this.nextVersion(t.id, trx);
        await this.db.table('kubiki_template_versions', trx).insert({
          template_id: t.id, version, origin: 'default', source: t.source, metadata: JSON.stringify(t.metadata), source_hash: hash,
          comment: 'shipped default', created_by: null, created_by_name: SYSTEM.username,
        });
        const published = template?.published_version == null ? undefined
          : await this.db.table('kubiki_template_versions', trx).where({ template_id: t.id, version: template.published_version }).first('origin');
        if (!published || published.origin === 'default') {
          await this.db.table('kubiki_templates', trx).where({ id: t.id }).update({ published_version: version, entity: t.metadata.entity, updated_at: trx.fn.now() });
        }
      }
    });
  }

  private async nextVersion(id: string, trx?: Parameters<Database['table']>[1]): Promise<number> {
    const row = await this.db.table('kubiki_template_versions', trx).where({ template_id: id }).max<{ max: number | null }[]>({ max: 'version' });
    return Number(row[0]?.max ?? 0) + 1;
  }

  async list(): Promise<TemplateSummary[]> {
    const rows: Row[] = await this.db.table('kubiki_templates as t')
      .join(this.db.knex.raw('??.?? as v', [this.db.schema, 'kubiki_template_versions']), (j) => j.on('v.template_id', 't.id'))
      .groupBy('t.id', 't.entity', 't.published_version')
      .orderBy('t.id')
      .select('t.id', 't.entity', 't.published_version', this.db.knex.raw('max(v.version) as latest'));
    const out: TemplateSummary[] = [];
    for (const r of rows) {
      const shown = await this.version(String(r.id), r.published_version == null ? Number(r.latest) : Number(r.published_version));
      out.push({
        id: String(r.id), entity: String(r.entity), title: shown.metadata.title,
        publishedVersion: r.published_version == null ? null : Number(r.published_version), latestVersion: Number(r.latest),
        locale: shown.metadata.locale, paper: shown.metadata.paper,
      });
    }
    return out;
  }

  async summary(id: string): Promise<TemplateSummary & { versions: number }> {
    const t = await this.template(id);
    const latest = await this.nextVersion(id) - 1;
    const shown = await this.version(id, t.published_version == null ? latest : Number(t.published_version));
    return {
      id, entity: String(t.entity), title: shown.metadata.title,
      publishedVersion: t.published_version == null ? null : Number(t.published_version), latestVersion: latest, versions: latest,
      locale: shown.metadata.locale, paper: shown.metadata.paper,
    };
  }

  private async template(id: string): Promise<Row> {
    const t: Row | undefined = TEMPLATE_ID.test(id) ? await this.db.table('kubiki_templates').where({ id }).first() : undefined;
    if (!t) throw new KubikiError('not-found', `no template ${id}`);
    return t;
  }

  async version(id: string, version: number): Promise<TemplateVersion> {
    const row: Row | undefined = await this.db.table('kubiki_template_versions').where({ template_id: id, version }).first();
    if (!row) throw new KubikiError('not-found', `template ${id} has no version ${version}`, { issues: [{ field: 'version', rule: 'exists', message: `no version ${version}` }] });
    return toVersion(row);
  }

  async versions(id: string): Promise<Omit<TemplateVersion, 'source'>[]> {
    await this.template(id);
    const rows: Row[] = await this.db.table('kubiki_template_versions').where({ template_id: id }).orderBy('version', 'desc');
    return rows.map((r) => {
      const { source: _source, ...rest } = toVersion(r);
      return rest;
    });
  }

  /** The published version; templates never published (only drafts) answer 409. */
  async published(id: string): Promise<TemplateVersion> {
    const t = await this.template(id);
    if (t.published_version == null) throw new KubikiError('conflict', `template ${id} has no published version yet; publish one`);
    return this.version(id, Number(t.published_version));
  }

  /** Saves a new (unpublished) version after checking that it compiles. */
  async save(id: string, body: unknown, actor: Principal, requestId?: string): Promise<TemplateVersion> {
    if (!TEMPLATE_ID.test(id)) throw fieldError('validation-failed', 'id', 'pattern', 'template ids are <plugin>.<name>: lower-case letters, digits and dashes');
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    for (const key of Object.keys(body)) {
      if (!['source', 'metadata', 'comment'].includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (source, metadata, comment)`);
    }
    if (typeof body.source !== 'string' || body.source.length === 0) throw fieldError('validation-failed', 'source', 'required', 'source (the Handlebars text) is required');
    if (body.source.length > 512 * 1024) throw fieldError('validation-failed', 'source', 'maxLength', 'source is longer than 512 KiB');
    if (body.comment !== undefined && (typeof body.comment !== 'string' || body.comment.length > 500)) throw fieldError('validation-failed', 'comment', 'type', 'comment must be a string of at most 500 characters');
    this.engine.check(body.source);
    const existing: Row | undefined = await this.db.table('kubiki_templates').where({ id }).first();
    let metadata: TemplateMetadata;
    if (body.metadata !== undefined) metadata = checkMetadata(body.metadata, `template ${id}`);
    else if (existing) metadata = (await this.version(id, await this.nextVersion(id) - 1)).metadata;
    else throw fieldError('validation-failed', 'metadata', 'required', `template ${id} is new: give its metadata (title, entity, paper, locale)`);
    const source = body.source;
    return this.db.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`kubiki:template:${this.db.schema}:${id}`]);
      if (!(await this.db.table('kubiki_templates', trx).where({ id }).first())) {
        await this.db.table('kubiki_templates', trx).insert({ id, entity: metadata.entity });
      }
      const version = await this.nextVersion(id, trx);
      const [row] = await this.db.table('kubiki_template_versions', trx).insert({
        template_id: id, version, origin: 'edit', source, metadata: JSON.stringify(metadata), source_hash: hashOf(source, metadata),
        comment: body.comment ?? '', created_by: actor.userId, created_by_name: actor.username,
      }).returning('*');
      await writeAudit(this.db, trx, {
        actor, action: 'saved', plugin: 'core', entity: 'templates', recordId: id, requestId,
        changes: { version: { before: version - 1 || null, after: version } },
      });
      return toVersion(row);
    });
  }

  /** Publishes a version (the latest when none is named); rolling back is publishing an older one. */
  async publish(id: string, version: number | undefined, actor: Principal, action: 'published' | 'rolled-back', requestId?: string): Promise<TemplateSummary & { versions: number }> {
    const t = await this.template(id);
    const target = version ?? (await this.nextVersion(id)) - 1;
    await this.version(id, target);
    await this.db.knex.transaction(async (trx) => {
      await this.db.table('kubiki_templates', trx).where({ id }).update({ published_version: target, updated_at: trx.fn.now() });
      await writeAudit(this.db, trx, {
        actor, action, plugin: 'core', entity: 'templates', recordId: id, requestId,
        changes: { publishedVersion: { before: t.published_version ?? null, after: target } },
      });
    });
    return this.summary(id);
  }

  /** A unified diff of two versions' sources, followed by their metadata's when that changed too. */
  async diff(id: string, from: number, to: number): Promise<string> {
    const [a, b] = await Promise.all([this.version(id, from), this.version(id, to)]);
    const source = createTwoFilesPatch(`${id}@${from}.hbs`, `${id}@${to}.hbs`, a.source, b.source);
    const metaA = `${JSON.stringify(a.metadata, null, 2)}\n`;
    const metaB = `${JSON.stringify(b.metadata, null, 2)}\n`;
    return metaA === metaB ? source : source + createTwoFilesPatch(`${id}@${from}.json`, `${id}@${to}.json`, metaA, metaB);
  }
}
