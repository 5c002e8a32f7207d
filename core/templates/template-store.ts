import type { Database } from '../db/database.ts';
import { fieldError } from '../errors.ts';
import type { Principal } from '../auth/principal.ts';
import { VersionedStore, type ItemVersion } from '../versioning/versioned-store.ts';
import { checkMetadata, TEMPLATE_ID, type ShippedTemplate, type TemplateMetadata } from './template-catalog.ts';
import type { TemplateEngine } from './template-engine.ts';

export type TemplateVersion = ItemVersion<TemplateMetadata>;

export interface TemplateSummary {
  id: string;
  entity: string;
  title: string;
  publishedVersion: number | null;
  latestVersion: number;
  locale: string;
  paper: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Document templates: versioned Handlebars sources with their metadata; only compiling ones are saved. */
export class TemplateStore {
  private readonly store: VersionedStore<TemplateMetadata>;

  constructor(db: Database, private readonly engine: TemplateEngine) {
    this.store = new VersionedStore(db, { kind: 'templates', noun: 'template', extension: 'hbs', entityOf: (m) => m.entity });
  }

  async syncDefaults(shipped: ShippedTemplate[]): Promise<void> {
    for (const t of shipped) this.engine.check(t.source);
    await this.store.syncDefaults(shipped);
  }

  private describe(s: Awaited<ReturnType<VersionedStore<TemplateMetadata>['summary']>>): TemplateSummary {
    return {
      id: s.id, entity: s.shown.metadata.entity, title: s.shown.metadata.title, publishedVersion: s.publishedVersion,
      latestVersion: s.latestVersion, locale: s.shown.metadata.locale, paper: s.shown.metadata.paper,
    };
  }

  async list(): Promise<TemplateSummary[]> {
    return (await this.store.list()).map((s) => this.describe(s));
  }

  async summary(id: string): Promise<TemplateSummary & { versions: number }> {
    const s = this.describe(await this.store.summary(id));
    return { ...s, versions: s.latestVersion };
  }

  version(id: string, version: number): Promise<TemplateVersion> {
    return this.store.version(id, version);
  }

  versions(id: string): Promise<Omit<TemplateVersion, 'source'>[]> {
    return this.store.versions(id);
  }

  published(id: string): Promise<TemplateVersion> {
    return this.store.published(id);
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
    const metadata = body.metadata !== undefined ? checkMetadata(body.metadata, `template ${id}`) : await this.store.latestMetadata(id);
    if (!metadata) throw fieldError('validation-failed', 'metadata', 'required', `template ${id} is new: give its metadata (title, entity, paper, locale)`);
    return this.store.save(id, { source: body.source, metadata, comment: body.comment }, actor, requestId);
  }

  async publish(id: string, version: number | undefined, actor: Principal, action: 'published' | 'rolled-back', requestId?: string): Promise<TemplateSummary & { versions: number }> {
    await this.store.publish(id, version, actor, action, requestId);
    return this.summary(id);
  }

  diff(id: string, from: number, to: number): Promise<string> {
    return this.store.diff(id, from, to);
  }
}
