import { createHash, randomUUID } from 'node:crypto';
import type { Database, Executor } from '../db/database.ts';
import { KubikiError, fieldError } from '../errors.ts';
import { requireGrant, type Principal } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import { isUuid } from '../entities/list-query.ts';
import { documentData, loadDocumentData, type DocumentDataDeps } from './document-data.ts';
import type { TemplateEngine } from './template-engine.ts';
import type { TemplateStore, TemplateVersion } from './template-store.ts';
import type { PdfRenderer } from './pdf-renderer.ts';

export type DocumentFormat = 'html' | 'pdf';

export interface StoredDocument {
  id: string;
  template: string;
  templateVersion: number;
  entity: string;
  recordId: string;
  recordVersion: number;
  format: DocumentFormat;
  contentType: string;
  sha256: string;
  bytes: number;
  createdBy: string;
  createdAt: string;
}

type Row = Record<string, unknown>;

const CONTENT_TYPES: Record<DocumentFormat, string> = { html: 'text/html; charset=utf-8', pdf: 'application/pdf' };

const toDocument = (r: Row): StoredDocument => ({
  id: String(r.id),
  template: String(r.template_id),
  templateVersion: Number(r.template_version),
  entity: String(r.entity),
  recordId: String(r.record_id),
  recordVersion: Number(r.record_version),
  format: r.format as DocumentFormat,
  contentType: String(r.content_type),
  sha256: String(r.sha256),
  bytes: Number(r.bytes),
  createdBy: String(r.created_by_name),
  createdAt: String(r.created_at),
});

const escapeHtml = (s: string): string => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The page every document body is printed on: charset, title, paper size, print stylesheet. */
export function htmlPage(version: TemplateVersion, body: string, printCss: string): string {
  const { paper, landscape, locale, title } = version.metadata;
  const lang = locale.slice(0, 2);
  return `<!doctype html>
<html lang="${lang}">
<head>
<meta charset="utf-8">
<title>${escapeHtml(title)}</title>
<style>@page { size: ${paper}${landscape ? ' landscape' : ''}; }
${printCss}</style>
</head>
<body>
${body}
</body>
</html>
`;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export interface DocumentServiceDeps extends DocumentDataDeps {
  db: Database;
  engine: TemplateEngine;
  store: TemplateStore;
  pdf: PdfRenderer;
  printCss: string;
}

/** Previews, renders and keeps documents: what was printed, from which versions, byte for byte. */
export class DocumentService {
  constructor(private readonly deps: DocumentServiceDeps) {}

  private async pickVersion(templateId: string, version: unknown): Promise<TemplateVersion> {
    if (version === undefined) return this.deps.store.published(templateId);
    if (!Number.isInteger(version) || (version as number) < 1) throw fieldError('validation-failed', 'version', 'type', 'version must be a positive integer');
    return this.deps.store.version(templateId, version as number);
  }

  /**
   * Renders a version (the published one unless named) for a record or for sample data, stores
   * nothing, and lists the fields the template used that the data lacked.
   */
  async preview(templateId: string, body: unknown, actor: Principal): Promise<{ html: string; missingFields: string[]; templateVersion: number }> {
    const input = body === undefined ? {} : body;
    if (!isObject(input)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    for (const key of Object.keys(input)) {
      if (!['recordId', 'data', 'version'].includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (recordId, data, version)`);
    }
    if ((input.recordId === undefined) === (input.data === undefined)) {
      throw fieldError('validation-failed', 'recordId', 'oneOf', 'give either recordId (preview with a stored record) or data (sample record fields)');
    }
    const version = await this.pickVersion(templateId, input.version);
    const ctx = { templateId, templateVersion: version.version, metadata: version.metadata };
    let data: Record<string, unknown>;
    if (input.recordId !== undefined) {
      if (typeof input.recordId !== 'string') throw fieldError('validation-failed', 'recordId', 'type', 'recordId must be a string');
      data = (await loadDocumentData(this.deps, ctx, input.recordId, actor)).data;
    } else {
      if (!isObject(input.data)) throw fieldError('validation-failed', 'data', 'type', 'data must be an object: the record as the template sees it');
      const sample = input.data;
      data = documentData(ctx, isObject(sample.record) ? sample.record : sample, await this.deps.company(), isObject(sample.totals) ? sample.totals : {}, this.deps.vatRounding);
    }
    const { html, missingFields } = this.deps.engine.renderTracked(this.deps.engine.compile(version.source), data);
    return { html: htmlPage(version, html, this.deps.printCss), missingFields, templateVersion: version.version };
  }

  /** Renders the published version for a record and stores the output with what produced it. */
  async render(templateId: string, body: unknown, actor: Principal, requestId?: string): Promise<StoredDocument> {
    requireGrant(actor, 'core.documents.create');
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    for (const key of Object.keys(body)) {
      if (!['recordId', 'format'].includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (recordId, format)`);
    }
    if (typeof body.recordId !== 'string') throw fieldError('validation-failed', 'recordId', 'required', 'recordId is required');
    const format = body.format ?? 'html';
    if (format !== 'html' && format !== 'pdf') throw fieldError('validation-failed', 'format', 'enum', 'format must be html or pdf');
    return this.renderRecord(templateId, body.recordId, format, actor, requestId);
  }

  /** The plugin action behind rendering (`ctx.renderDocument`). */
  async renderRecord(templateId: string, recordId: string, format: DocumentFormat, actor: Principal, requestId?: string): Promise<StoredDocument> {
    const rendered = await this.produce(templateId, recordId, format, actor, requestId);
    return this.deps.db.knex.transaction((trx) => rendered.store(trx));
  }

  /**
   * Renders now and stores later, in the caller's transaction: a workflow step commits the
   * document together with its own completion, and holds no transaction while Chromium works.
   */
  async produce(templateId: string, recordId: string, format: DocumentFormat, actor: Principal, requestId?: string): Promise<{ store(trx: Executor): Promise<StoredDocument> }> {
    if (format === 'pdf' && !this.deps.pdf.available()) {
      throw new KubikiError('pdf-unavailable', 'PDF needs Chromium: install it with "apt-get install -y chromium" (or set KUBIKI_CHROMIUM to its path); format "html" works now');
    }
    const version = await this.deps.store.published(templateId);
    const ctx = { templateId, templateVersion: version.version, metadata: version.metadata };
    const { data, record } = await loadDocumentData(this.deps, ctx, recordId, actor);
    const html = htmlPage(version, this.deps.engine.render(this.deps.engine.compile(version.source), data), this.deps.printCss);
    const content = format === 'pdf'
      ? await this.deps.pdf.render(html, { paper: version.metadata.paper, landscape: version.metadata.landscape })
      : Buffer.from(html, 'utf8');
    const id = randomUUID();
    const sha256 = createHash('sha256').update(content).digest('hex');
    const store = async (trx: Executor) => {
      const inserted = await this.deps.db.table('kubiki_documents', trx).insert({
        id, template_id: templateId, template_version: version.version, entity: version.metadata.entity, record_id: record.id,
        record_version: record.version, format, content_type: CONTENT_TYPES[format], content, sha256, bytes: content.length,
        created_by: actor.userId, created_by_name: actor.username,
      }).returning(['id', 'template_id', 'template_version', 'entity', 'record_id', 'record_version', 'format', 'content_type', 'sha256', 'bytes', 'created_by_name', 'created_at']);
      await writeAudit(this.deps.db, trx, {
        actor, action: 'rendered', plugin: 'core', entity: 'documents', recordId: id, requestId,
        changes: { template: { before: null, after: `${templateId}@${version.version}` }, record: { before: null, after: `${version.metadata.entity}/${record.id}@${record.version}` }, sha256: { before: null, after: sha256 } },
      });
      return toDocument((inserted as Row[])[0]);
    };
    return { store };
  }

  private async readable(row: Row | undefined, id: string, actor: Principal): Promise<Row> {
    if (!row) throw new KubikiError('not-found', `no document ${id}`);
    // Whoever may read the printed record may read what was printed from it.
    if (actor.permissions.grant('core.documents.read') !== 'all') await this.deps.repository(String(row.entity)).get(String(row.record_id), { actor });
    return row;
  }

  async get(id: string, actor: Principal): Promise<StoredDocument> {
    const row = isUuid(id) ? await this.deps.db.table('kubiki_documents').where({ id }).first(['id', 'template_id', 'template_version', 'entity', 'record_id', 'record_version', 'format', 'content_type', 'sha256', 'bytes', 'created_by_name', 'created_at']) : undefined;
    return toDocument(await this.readable(row, id, actor));
  }

  async content(id: string, actor: Principal): Promise<{ document: StoredDocument; content: Buffer }> {
    const row = isUuid(id) ? await this.deps.db.table('kubiki_documents').where({ id }).first() : undefined;
    const readable = await this.readable(row, id, actor);
    return { document: toDocument(readable), content: Buffer.from(readable.content as Uint8Array) };
  }

  async list(query: { entity?: string; recordId?: string; limit: number }, actor: Principal): Promise<StoredDocument[]> {
    if (query.entity && query.recordId) {
      await this.deps.repository(query.entity).get(query.recordId, { actor });
    } else {
      requireGrant(actor, 'core.documents.read');
    }
    const qb = this.deps.db.table('kubiki_documents').orderBy('created_at', 'desc').limit(query.limit)
      .select(['id', 'template_id', 'template_version', 'entity', 'record_id', 'record_version', 'format', 'content_type', 'sha256', 'bytes', 'created_by_name', 'created_at']);
    if (query.entity) qb.where({ entity: query.entity });
    if (query.recordId) {
      if (!isUuid(query.recordId)) throw fieldError('bad-query', 'recordId', 'format', 'recordId must be a UUID');
      qb.where({ record_id: query.recordId });
    }
    return (await qb).map(toDocument);
  }
}
