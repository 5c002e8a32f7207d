import type { JsonSchema } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { companyProfileSchema } from '../../templates/company-profile.ts';
import { metadataSchema } from '../../templates/template-catalog.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { limit, page, timestamp, uuid, uuidParams } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';
import { versionNumber, versionedItemParams, versionedRoutes } from './versioned-routes.ts';

const MAX_SOURCE = 512 * 1024;
const ENTITY_NAME = '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$';

const metadata = metadataSchema as unknown as JsonSchema;
const company = companyProfileSchema as unknown as JsonSchema;

const templateRow: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'entity', 'title', 'publishedVersion', 'latestVersion', 'locale', 'paper'],
  properties: {
    id: { type: 'string', description: '<plugin>.<name>' }, entity: { type: 'string', description: 'The entity it prints, <plugin>.<plural>' },
    title: { type: 'string' }, publishedVersion: { type: ['integer', 'null'], minimum: 1, description: 'null while nothing is published' },
    latestVersion: versionNumber, locale: { type: 'string' }, paper: { enum: ['A4', 'A5', 'Letter'] },
  },
};

const templateSummary: JsonSchema = {
  ...templateRow,
  required: [...(templateRow.required as string[]), 'versions'],
  properties: { ...(templateRow.properties as JsonSchema), versions: { type: 'integer', minimum: 1, description: 'How many versions there are' } },
};

const storedDocument: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'template', 'templateVersion', 'entity', 'recordId', 'recordVersion', 'format', 'contentType', 'sha256', 'bytes', 'createdBy', 'createdAt'],
  properties: {
    id: uuid, template: { type: 'string', description: 'The template id' }, templateVersion: versionNumber,
    entity: { type: 'string', description: '<plugin>.<plural>' }, recordId: uuid, recordVersion: { type: 'integer', minimum: 1 },
    format: { enum: ['html', 'pdf'] }, contentType: { type: 'string' }, sha256: { type: 'string', pattern: '^[0-9a-f]{64}$', description: 'SHA-256 of the stored bytes' },
    bytes: { type: 'integer', minimum: 0 }, createdBy: { type: 'string', description: 'Username' }, createdAt: timestamp,
  },
};

const templateParams = versionedItemParams('base.invoice');
const documentParams = uuidParams('id', 'A stored document id (UUID)');

/** Document templates (versioned, previewed, published), rendered documents, the company profile. */
export function templateRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  const { templates, documents } = k;
  return [
    ...versionedRoutes('/api/templates', templates, {
      name: 'Template', plural: 'Templates', noun: 'document template', example: 'base.invoice',
      permissions: { read: 'core.templates.read', manage: 'core.templates.manage' },
      listItem: templateRow, summary: templateSummary, metadata,
      saveBody: {
        type: 'object', required: ['source'],
        properties: {
          source: { type: 'string', minLength: 1, maxLength: MAX_SOURCE, description: 'The Handlebars text (at most 512 KiB)' },
          metadata: { ...metadata, description: 'title, entity, paper, locale, include…; required for a new template, else the latest version\'s is kept' },
          comment: { type: 'string', maxLength: 500 },
        },
      },
      saveDescription: 'Only a template that compiles is saved: otherwise 400 template-compile-error with line and column. The new version is not published.',
      saveErrors: ['template-compile-error'],
    }),

    defineRoute<{ id: string }, unknown, { recordId?: string; data?: Record<string, unknown>; version?: number }>({
      method: 'post', path: '/api/templates/:id/preview', operationId: 'previewTemplate', permission: 'core.templates.read',
      summary: 'Render a version for a stored record or sample data; stores nothing',
      description: 'Either `recordId` (with your read permission on it) or `data` (the record as the template sees it, or `{record, totals}`). The published version unless `version` names another. `missingFields` lists the paths the template used that the data lacked.',
      errors: ['not-found', 'conflict', 'forbidden', 'plugin-disabled', 'unknown-entity'],
      schemas: {
        params: templateParams,
        body: {
          type: 'object',
          properties: {
            recordId: { ...uuid, description: 'Preview with this stored record' },
            data: { type: 'object', description: 'Sample record fields (or {record, totals})' },
            version: { ...versionNumber, description: 'The version to render; the published one by default' },
          },
        },
        responses: {
          200: {
            type: 'object', additionalProperties: false, required: ['html', 'missingFields', 'templateVersion'],
            properties: { html: { type: 'string', description: 'The whole HTML page' }, missingFields: { type: 'array', items: { type: 'string' } }, templateVersion: versionNumber },
          },
        },
      },
      async handler({ params: { id }, body, principal }, http) {
        http.body = await documents.preview(id, body, principal);
      },
    }),

    defineRoute<{ id: string }, unknown, { recordId: string; format: 'html' | 'pdf' }>({
      method: 'post', path: '/api/templates/:id/render', operationId: 'renderTemplate', permission: 'core.documents.create',
      summary: 'Render the published version for a record and store the document',
      description: 'Needs read permission on the record too. The document keeps the template version, the record version, who rendered it and the SHA-256 of its bytes. PDF needs Chromium on the server (else 406 pdf-unavailable).',
      errors: ['not-found', 'conflict', 'forbidden', 'pdf-unavailable', 'plugin-disabled', 'unknown-entity'],
      schemas: {
        params: templateParams,
        body: {
          type: 'object', required: ['recordId'],
          properties: { recordId: { ...uuid, description: 'The record to print' }, format: { enum: ['html', 'pdf'], default: 'html' } },
        },
        responses: { 201: { description: 'The stored document', schema: storedDocument, headers: { Location: '/api/documents/{id}' } } },
      },
      async handler({ params: { id }, body, principal }, http) {
        const document = await documents.render(id, body, principal, stateOf(http).requestId);
        http.status = 201;
        http.set('Location', `/api/documents/${document.id}`);
        http.body = document;
      },
    }),

    defineRoute<unknown, { entity?: string; recordId?: string; limit: number }>({
      method: 'get', path: '/api/documents', operationId: 'listDocuments', permission: 'signed-in',
      summary: 'Stored documents, newest first',
      description: 'With `entity` and `recordId`: the documents of that record, for whoever may read it. Otherwise needs core.documents.read.',
      errors: ['forbidden', 'not-found', 'plugin-disabled', 'unknown-entity', 'unknown-plugin'],
      schemas: {
        query: {
          type: 'object',
          properties: {
            entity: { type: 'string', pattern: ENTITY_NAME, maxLength: 120, description: '<plugin>.<plural>, e.g. finance.invoices' },
            recordId: { ...uuid, description: 'A record id' },
            limit: limit(500, 50),
          },
        },
        responses: { 200: page(storedDocument) },
      },
      async handler({ query, principal }, http) {
        http.body = { data: await documents.list(query, principal), next: null };
      },
    }),

    defineRoute<{ id: string }>({
      method: 'get', path: '/api/documents/:id', operationId: 'getDocument', permission: 'signed-in',
      summary: 'Metadata of a stored document', description: 'For whoever may read the printed record, or holds core.documents.read.',
      errors: ['not-found'],
      schemas: { params: documentParams, responses: { 200: storedDocument } },
      async handler({ params: { id }, principal }, http) {
        http.body = await documents.get(id, principal);
      },
    }),

    defineRoute<{ id: string }>({
      method: 'get', path: '/api/documents/:id/content', operationId: 'getDocumentContent', permission: 'signed-in',
      summary: 'The stored bytes, exactly as rendered',
      description: 'text/html (HTML documents, served with `Content-Security-Policy: default-src \'none\'`) or application/pdf (PDF documents), inline with a file name.',
      errors: ['not-found'],
      schemas: {
        params: documentParams,
        responses: {
          // One status, two content types (HTML or PDF, as the document was rendered): the contract
          // declares one, so the main one is declared, with no schema (binary).
          200: {
            description: 'The document: text/html; charset=utf-8, or application/pdf for a PDF document',
            contentType: 'text/html',
            headers: { ETag: '"<sha256>" of the bytes', 'Content-Disposition': 'inline; filename="<template>-<recordId>.<html|pdf>"', 'Content-Security-Policy': "default-src 'none'; …" },
          },
        },
      },
      async handler({ params: { id }, principal }, http) {
        const { document, content } = await documents.content(id, principal);
        http.type = document.contentType;
        http.set('ETag', `"${document.sha256}"`);
        http.set('X-Content-Type-Options', 'nosniff');
        // A stored document is shown, never run: no scripts, nothing fetched from elsewhere.
        http.set('Content-Security-Policy', "default-src 'none'; img-src data:; style-src 'unsafe-inline'; font-src data:");
        http.set('Content-Disposition', `inline; filename="${document.template}-${document.recordId}.${document.format}"`);
        http.body = content;
      },
    }),

    defineRoute({
      method: 'get', path: '/api/settings/company', operationId: 'getCompanyProfile', permission: 'signed-in',
      summary: 'The company profile printed on documents (letterhead, legal ids, bank details)',
      schemas: { responses: { 200: company } },
      async handler(_input, http) {
        http.body = await k.company.get();
      },
    }),

    defineRoute<unknown, unknown, Record<string, unknown>>({
      method: 'put', path: '/api/settings/company', operationId: 'putCompanyProfile', permission: 'core.settings.manage',
      summary: 'Replace the company profile (audited)', description: 'PUT semantics: the profile becomes the body; fields left out are removed.',
      schemas: { body: company, responses: { 200: company } },
      async handler({ body, principal }, http) {
        http.body = await k.company.put(body, principal, stateOf(http).requestId);
      },
    }),
  ];
}
