import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { INVOICE, TEMPLATE_DIRS, seedInvoice, startInvoiceKubiki } from './invoice-fixture.ts';

// Template versions: compile errors refused with their position, saving, publishing, rolling
// back, diffs, new templates and their metadata, the audit trail, permissions, previews, and the
// re-import of shipped defaults on the next start.

let t: TestKubiki;
let orderId: string;
let v1Source: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-templates-'));

const versionsOf = (id: string): Promise<number> => t.count('kubiki_item_versions', { kind: 'templates', item_id: id });
const templateAudit = (): Promise<number> => t.count('kubiki_audit', { plugin: 'core', entity: 'templates' });

beforeAll(async () => {
  t = await startInvoiceKubiki();
  orderId = await seedInvoice(t);
  v1Source = (await t.api('GET', `/api/templates/${INVOICE}`)).body.source;
});
afterAll(async () => {
  await t?.close();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('compile errors', () => {
  const cases: { name: string; source: string; line: number; column: number; says: RegExp }[] = [
    {
      name: 'an {{#if}} left open over several lines',
      source: '<h1>{{record.number}}</h1>\n<div>\n  {{#if record.customer}}\n    <p>{{record.customer.name}}</p>\n    <p>{{record.customer.inn}}</p>\n</div>\n',
      line: 3, column: 3, says: /\{\{#if\}\} is never closed/,
    },
    { name: 'an unterminated mustache', source: '<p>\n  hello {{name \n</p>\n', line: 2, column: 11, says: /Parse error/ },
    // Handlebars names the opening block (its helper name) for a mismatched close.
    { name: '{{#each}} closed by {{/if}}', source: '<table>\n{{#each record.lines}}\n  <tr><td>{{description}}</td></tr>\n{{/if}}\n</table>\n', line: 2, column: 4, says: /each doesn't match if/ },
    { name: 'an unknown helper', source: '<p>ok</p>\n  <i>{{readFile "/etc/passwd"}}</i>\n', line: 2, column: 6, says: /unknown helper readFile/ },
    { name: 'the log helper', source: '<p>ok</p>\nbb {{log "x"}}\n', line: 2, column: 4, says: /unknown helper log/ },
  ];

  it.each(cases)('refuses $name with its line and column, saving nothing', async ({ source, line, column, says }) => {
    const [versionsBefore, auditBefore] = [await versionsOf(INVOICE), await templateAudit()];
    const res = await t.api('PUT', `/api/templates/${INVOICE}`, { source, comment: 'broken' });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body).toMatchObject({ code: 'template-compile-error', line, column, field: 'source' });
    expect(res.body.message).toMatch(says);
    expect(res.body.detail).toContain(`line ${line}, column ${column}`);
    expect(await versionsOf(INVOICE)).toBe(versionsBefore);
    expect(await templateAudit()).toBe(auditBefore);
  });
});

describe('versions', () => {
  const v2Source = (): string => v1Source.replace('Счёт на оплату №', 'Счёт (редакция 2) №');

  it('saves an unpublished version 2 that render and preview do not use until published', async () => {
    const auditBefore = await templateAudit();
    const saved = await t.api('PUT', `/api/templates/${INVOICE}`, { source: v2Source(), comment: 'edition marker in the title' });
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    expect(saved.body).toMatchObject({ id: INVOICE, version: 2, origin: 'edit', comment: 'edition marker in the title', createdBy: 'admin' });
    expect(await templateAudit()).toBe(auditBefore + 1);

    const summary = await t.api('GET', `/api/templates/${INVOICE}`);
    expect(summary.body).toMatchObject({ publishedVersion: 1, latestVersion: 2, version: 1, origin: 'default' });
    const preview = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId });
    expect(preview.body.templateVersion).toBe(1);
    expect(preview.body.html).not.toContain('редакция 2');
    const rendered = await t.api('POST', `/api/templates/${INVOICE}/render`, { recordId: orderId });
    expect(rendered.status).toBe(201);
    expect(rendered.body.templateVersion).toBe(1);

    // A draft can be previewed by naming it.
    const draft = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId, version: 2 });
    expect(draft.status).toBe(200);
    expect(draft.body.templateVersion).toBe(2);
    expect(draft.body.html).toContain('Счёт (редакция 2) № INV-2026-0042');
  });

  it('publishes version 2, then rolls back to 1', async () => {
    const published = await t.api('POST', `/api/templates/${INVOICE}/publish`);
    expect(published.status, JSON.stringify(published.body)).toBe(200);
    expect(published.body).toMatchObject({ publishedVersion: 2, latestVersion: 2 });
    let preview = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId });
    expect(preview.body).toMatchObject({ templateVersion: 2 });
    expect(preview.body.html).toContain('Счёт (редакция 2) № INV-2026-0042');
    const rendered = await t.api('POST', `/api/templates/${INVOICE}/render`, { recordId: orderId });
    expect(rendered.body.templateVersion).toBe(2);

    const rolledBack = await t.api('POST', `/api/templates/${INVOICE}/rollback`, { version: 1 });
    expect(rolledBack.status).toBe(200);
    expect(rolledBack.body).toMatchObject({ publishedVersion: 1, latestVersion: 2 });
    preview = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId });
    expect(preview.body.templateVersion).toBe(1);
    expect(preview.body.html).toContain('Счёт на оплату № INV-2026-0042');
    expect((await t.api('POST', `/api/templates/${INVOICE}/render`, { recordId: orderId })).body.templateVersion).toBe(1);

    // Rollback needs a version; unknown versions are 404 and change nothing.
    const noVersion = await t.api('POST', `/api/templates/${INVOICE}/rollback`, {});
    expect(noVersion).toMatchObject({ status: 400, body: { field: 'version' } });
    expect((await t.api('POST', `/api/templates/${INVOICE}/publish`, { version: 99 })).status).toBe(404);
    expect((await t.api('POST', `/api/templates/${INVOICE}/publish`, { version: 'two' })).status).toBe(400);
    expect((await t.api('GET', `/api/templates/${INVOICE}`)).body.publishedVersion).toBe(1);
  });

  it('reads any version, lists versions newest first, and diffs two', async () => {
    const v2 = await t.api('GET', `/api/templates/${INVOICE}?version=2`);
    expect(v2.body).toMatchObject({ version: 2, publishedVersion: 1, origin: 'edit', source: v2Source(), comment: 'edition marker in the title', createdBy: 'admin' });
    expect((await t.api('GET', `/api/templates/${INVOICE}?version=1`)).body.source).toBe(v1Source);
    expect((await t.api('GET', `/api/templates/${INVOICE}?version=7`)).status).toBe(404);
    expect((await t.api('GET', `/api/templates/${INVOICE}?version=0`))).toMatchObject({ status: 400, body: { field: 'version' } });
    expect((await t.api('GET', '/api/templates/alpha.nothing')).status).toBe(404);

    const versions = await t.api('GET', `/api/templates/${INVOICE}/versions`);
    expect(versions.status).toBe(200);
    expect(versions.body.data.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect(versions.body.data[0]).toMatchObject({ origin: 'edit', createdBy: 'admin', comment: 'edition marker in the title' });
    expect(versions.body.data[1]).toMatchObject({ origin: 'default', createdBy: 'system', comment: 'shipped default' });
    expect(versions.body.data[0]).not.toHaveProperty('source');

    const json = await t.api('GET', `/api/templates/${INVOICE}/diff?from=1&to=2`);
    expect(json.status).toBe(200);
    expect(json.body).toMatchObject({ from: 1, to: 2 });
    const diff: string = json.body.diff;
    expect(diff).toContain(`--- ${INVOICE}@1.hbs`);
    expect(diff).toContain(`+++ ${INVOICE}@2.hbs`);
    expect(diff).toMatch(/^-<h1>Счёт на оплату № \{\{record\.number\}\}/m);
    expect(diff).toMatch(/^\+<h1>Счёт \(редакция 2\) № \{\{record\.number\}\}/m);
    // Only the changed line is marked; metadata did not change, so no metadata diff.
    expect(diff.split('\n').filter((l) => /^[-+][^-+]/.test(l))).toHaveLength(2);
    expect(diff).not.toContain('.json');

    const text = await t.api('GET', `/api/templates/${INVOICE}/diff?from=1&to=2`, undefined, { headers: { accept: 'text/plain' } });
    expect(text.headers.get('content-type')).toMatch(/^text\/plain/);
    expect(text.body).toBe(diff);
    expect((await t.api('GET', `/api/templates/${INVOICE}/diff?from=1`)).status).toBe(400);
    expect((await t.api('GET', `/api/templates/${INVOICE}/diff?from=1&to=9`)).status).toBe(404);
  });

  it('creates new templates only with valid metadata', async () => {
    const source = '<h1>{{record.number}}</h1>\n';
    const [versionsBefore, auditBefore] = [await t.count('kubiki_item_versions', { kind: 'templates' }), await templateAudit()];
    const noMeta = await t.api('PUT', '/api/templates/alpha.order-note', { source });
    expect(noMeta).toMatchObject({ status: 400, body: { code: 'validation-failed', field: 'metadata' } });
    const badEntity = await t.api('PUT', '/api/templates/alpha.order-note', { source, metadata: { title: 'Note', entity: 'Alpha Orders' } });
    expect(badEntity).toMatchObject({ status: 400, body: { field: 'metadata.entity' } });
    const badPaper = await t.api('PUT', '/api/templates/alpha.order-note', { source, metadata: { title: 'Note', entity: 'alpha.orders', paper: 'A3' } });
    expect(badPaper).toMatchObject({ status: 400, body: { field: 'metadata.paper' } });
    expect(badPaper.body.detail).toContain('metadata.paper');
    const badId = await t.api('PUT', '/api/templates/Alpha_Note', { source, metadata: { title: 'Note', entity: 'alpha.orders' } });
    // A malformed id in the path is a 404 naming it (the route contract), for PUT too: no template can live there.
    expect(badId).toMatchObject({ status: 404, body: { code: 'not-found', field: 'id' } });
    const unknownKey = await t.api('PUT', '/api/templates/alpha.order-note', { source, metadata: { title: 'Note', entity: 'alpha.orders' }, publish: true });
    expect(unknownKey).toMatchObject({ status: 400, body: { field: 'publish' } });
    expect(await t.count('kubiki_item_versions', { kind: 'templates' })).toBe(versionsBefore);
    expect(await templateAudit()).toBe(auditBefore);

    const created = await t.api('PUT', '/api/templates/alpha.order-note', { source, metadata: { title: 'Note', entity: 'alpha.orders', paper: 'A5' }, comment: 'new' });
    expect(created.status, JSON.stringify(created.body)).toBe(200);
    expect(created.body).toMatchObject({ version: 1, origin: 'edit', metadata: { title: 'Note', entity: 'alpha.orders', paper: 'A5', locale: 'ru-RU' } });
    const summary = await t.api('GET', '/api/templates/alpha.order-note');
    expect(summary.body).toMatchObject({ publishedVersion: null, latestVersion: 1, version: 1, paper: 'A5' });
    // Never published: rendering is a conflict; naming the draft previews it.
    expect((await t.api('POST', '/api/templates/alpha.order-note/render', { recordId: orderId })).status).toBe(409);
    const draft = await t.api('POST', '/api/templates/alpha.order-note/preview', { recordId: orderId, version: 1 });
    expect(draft.status).toBe(200);
    expect(draft.body.html).toContain('<h1>INV-2026-0042</h1>');
    expect(draft.body.html).toContain('@page { size: A5; }');
    // Later saves keep the metadata unless given.
    const second = await t.api('PUT', '/api/templates/alpha.order-note', { source: '<h2>{{record.number}}</h2>\n' });
    expect(second.body).toMatchObject({ version: 2, metadata: { paper: 'A5' } });
    expect((await t.api('POST', '/api/templates/alpha.order-note/publish')).body.publishedVersion).toBe(2);
    const list = await t.api('GET', '/api/templates');
    expect(list.body.data.find((x: { id: string }) => x.id === 'alpha.order-note')).toMatchObject({ publishedVersion: 2, latestVersion: 2, paper: 'A5' });
  });

  it('audits every save, publish and rollback; the trail needs core.audit.read', async () => {
    const rows = await t.k.db.table('kubiki_audit').where({ plugin: 'core', entity: 'templates', record_id: INVOICE }).orderBy('id');
    expect(rows.map((r: { action: string }) => r.action)).toEqual(['saved', 'published', 'rolled-back']);
    expect(rows[1].changes).toMatchObject({ publishedVersion: { before: 1, after: 2 } });
    expect(rows[2].changes).toMatchObject({ publishedVersion: { before: 2, after: 1 } });
    expect(rows.every((r: { actor: string }) => r.actor === 'admin')).toBe(true);

    const trail = await t.api('GET', '/api/audit?entity=core.templates');
    expect(trail.status).toBe(200);
    const actions = trail.body.data.map((e: { action: string; recordId: string }) => `${e.recordId}:${e.action}`);
    expect(actions).toEqual(expect.arrayContaining([`${INVOICE}:saved`, `${INVOICE}:published`, `${INVOICE}:rolled-back`, 'alpha.order-note:saved', 'alpha.order-note:published']));
    const reader = await t.userWith(['core.templates.read']);
    expect((await t.api('GET', '/api/audit?entity=core.templates', undefined, { token: reader.token })).status).toBe(403);
    const auditor = await t.userWith(['core.audit.read']);
    expect((await t.api('GET', '/api/audit?entity=core.templates', undefined, { token: auditor.token })).status).toBe(200);
  });
});

describe('permissions', () => {
  it('lets core.templates.read list, read, diff and preview, but not change anything', async () => {
    const { token } = await t.userWith(['core.templates.read', 'alpha.orders.read', 'base.organizations.read', 'base.products.read']);
    const as = { token };
    expect((await t.api('GET', '/api/templates', undefined, as)).status).toBe(200);
    expect((await t.api('GET', `/api/templates/${INVOICE}`, undefined, as)).status).toBe(200);
    expect((await t.api('GET', `/api/templates/${INVOICE}/versions`, undefined, as)).status).toBe(200);
    expect((await t.api('GET', `/api/templates/${INVOICE}/diff?from=1&to=2`, undefined, as)).status).toBe(200);
    const preview = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId }, as);
    expect(preview.status).toBe(200);
    expect(preview.body.html).toContain('INV-2026-0042');

    const [versionsBefore, auditBefore] = [await versionsOf(INVOICE), await templateAudit()];
    const put = await t.api('PUT', `/api/templates/${INVOICE}`, { source: '<p>mine</p>' }, as);
    expect(put).toMatchObject({ status: 403, body: { code: 'forbidden', permission: 'core.templates.manage' } });
    expect((await t.api('POST', `/api/templates/${INVOICE}/publish`, { version: 2 }, as)).status).toBe(403);
    expect((await t.api('POST', `/api/templates/${INVOICE}/rollback`, { version: 1 }, as)).status).toBe(403);
    // Reading templates does not include printing documents.
    expect((await t.api('POST', `/api/templates/${INVOICE}/render`, { recordId: orderId }, as))).toMatchObject({ status: 403, body: { permission: 'core.documents.create' } });
    expect(await versionsOf(INVOICE)).toBe(versionsBefore);
    expect(await templateAudit()).toBe(auditBefore);

    const nobody = await t.userWith([]);
    expect((await t.api('GET', '/api/templates', undefined, { token: nobody.token })).status).toBe(403);
    expect((await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: {} }, { token: nobody.token })).status).toBe(403);
    expect((await t.api('GET', '/api/templates', undefined, { token: null })).status).toBe(401);
  });
});

describe('preview', () => {
  it('lists the fields sample data lacks', async () => {
    // Money without a currency still previews (the amount alone) and the currency is listed as missing.
    const noCurrency = await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: { number: 'S-0', total: '10.00' } });
    expect(noCurrency.status, JSON.stringify(noCurrency.body)).toBe(200);
    expect(noCurrency.body.html).toContain('10,00');
    expect(noCurrency.body.missingFields).toContain('record.currency');
    // A malformed amount is the data's fault: 400 naming the helper.
    const badAmount = await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: { number: 'S-0', total: '10,00', currency: 'RUB' } });
    expect(badAmount).toMatchObject({ status: 400, body: { code: 'validation-failed', field: 'data' } });
    expect(badAmount.body.detail).toContain('money');
    const sample = await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: { record: { number: 'S-1', total: '10.00', currency: 'RUB', customer: { inn: '7701234567' } } } });
    expect(sample.status, JSON.stringify(sample.body)).toBe(200);
    expect(sample.body.templateVersion).toBe(1);
    expect(sample.body.html).toContain('Счёт на оплату № S-1');
    expect(sample.body.missingFields).toEqual(expect.arrayContaining(['record.customer.name', 'record.customer.kpp', 'record.lines', 'record.issuedOn', 'totals.lineCount']));
    expect(sample.body.missingFields).not.toContain('record.number');
    expect(sample.body.missingFields).not.toContain('record.customer.inn');
    // Given fields are not missing; the lines' own fields are listed under record.lines[].
    const withLines = await t.api('POST', `/api/templates/${INVOICE}/preview`, {
      data: { number: 'S-2', total: '1.00', currency: 'RUB', customer: { name: 'X' }, lines: [{ description: 'd', quantity: '1', price: '1.00', amount: '1.00', vatRate: '20' }] },
    });
    expect(withLines.status, JSON.stringify(withLines.body)).toBe(200);
    expect(withLines.body.missingFields).not.toContain('record.lines');
    expect(withLines.body.missingFields).not.toContain('record.customer.name');
    expect(withLines.body.missingFields).toContain('record.lines[].product');
  });

  it('wants exactly one of recordId and data, and previews a draft by version', async () => {
    const both = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId, data: { number: 'x' } });
    expect(both).toMatchObject({ status: 400, body: { code: 'validation-failed', field: 'recordId' } });
    const neither = await t.api('POST', `/api/templates/${INVOICE}/preview`, {});
    expect(neither).toMatchObject({ status: 400, body: { field: 'recordId' } });
    expect((await t.api('POST', `/api/templates/${INVOICE}/preview`)).status).toBe(400);
    expect((await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: 'x' })).body.field).toBe('data');
    expect((await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: {}, version: 0 })).body.field).toBe('version');
    expect((await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: {}, extra: 1 })).body.field).toBe('extra');

    const draft = await t.api('POST', `/api/templates/${INVOICE}/preview`, { data: { number: 'S-3' }, version: 2 });
    expect(draft.status).toBe(200);
    expect(draft.body.templateVersion).toBe(2);
    expect(draft.body.html).toContain('Счёт (редакция 2) № S-3');
    expect((await t.api('GET', `/api/templates/${INVOICE}`)).body.publishedVersion).toBe(1);
  });
});

describe('shipped defaults on the next start', () => {
  it('adds no version for an unchanged default', async () => {
    const [card, invoice] = [await versionsOf('base.organization-card'), await versionsOf(INVOICE)];
    const again = await startInvoiceKubiki({ schema: t.schema, adminToken: t.adminToken });
    try {
      expect(await versionsOf('base.organization-card')).toBe(card);
      expect(await versionsOf(INVOICE)).toBe(invoice);
      expect((await again.api('GET', '/api/templates/base.organization-card')).body).toMatchObject({ publishedVersion: 1, latestVersion: 1 });
    } finally {
      await again.close({ keepSchema: true });
    }
  });

  it('imports a changed default, publishing it only where a default is still published', async () => {
    // The invoice prints with the admin's edit; the organization card with its default.
    expect((await t.api('POST', `/api/templates/${INVOICE}/publish`, { version: 2 })).status).toBe(200);
    const [rootDir, fixtureDir] = TEMPLATE_DIRS;
    const dirs = [path.join(tmp, 'shipped'), path.join(tmp, 'fixtures')];
    fs.cpSync(rootDir, dirs[0], { recursive: true });
    fs.cpSync(fixtureDir, dirs[1], { recursive: true });
    fs.appendFileSync(path.join(dirs[0], 'base/organization-card.hbs'), '<p class="upgrade">new default</p>\n');
    fs.appendFileSync(path.join(dirs[1], 'alpha/order-invoice.hbs'), '<p class="upgrade">new default</p>\n');
    const latestInvoice = (await t.api('GET', `/api/templates/${INVOICE}`)).body.latestVersion as number;

    const upgraded = await startInvoiceKubiki({ schema: t.schema, adminToken: t.adminToken, templateDirs: dirs });
    try {
      const card = await upgraded.api('GET', '/api/templates/base.organization-card');
      expect(card.body).toMatchObject({ publishedVersion: 2, latestVersion: 2, origin: 'default' });
      expect(card.body.source).toContain('new default');
      const invoice = await upgraded.api('GET', `/api/templates/${INVOICE}`);
      expect(invoice.body).toMatchObject({ publishedVersion: 2, latestVersion: latestInvoice + 1 });
      const imported = await upgraded.api('GET', `/api/templates/${INVOICE}?version=${latestInvoice + 1}`);
      expect(imported.body).toMatchObject({ origin: 'default', comment: 'shipped default' });
    } finally {
      await upgraded.close({ keepSchema: true });
    }
  });
});
