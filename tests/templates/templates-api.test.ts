import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

const TEMPLATE_DIRS = [path.join(repoRoot, 'templates'), path.join(repoRoot, 'tests/fixtures/templates')];
let t: TestKubiki;
let orderId: string;

beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'], config: { templateDirs: TEMPLATE_DIRS } });
  await t.api('PUT', '/api/settings/company', {
    name: 'ООО «Кубики»', inn: '7707083893', kpp: '770701001', address: 'Москва, ул. Примерная, 1',
    bank: { name: 'ПАО Банк', bik: '044525225', account: '40702810400000000001', correspondentAccount: '30101810400000000225' }, director: 'Иванов И. И.',
  });
  const customer = await t.api('POST', '/api/base/organizations', { name: 'ООО «Ромашка»', inn: '7701234560', kpp: '770101001' });
  const product = await t.api('POST', '/api/base/products', { sku: 'KB-1', name: 'Кубик деревянный', price: '1000.00' });
  const order = await t.api('POST', '/api/alpha/orders', {
    number: 'INV-2026-0042', customer: customer.body.id, issuedOn: '2026-11-27', total: '1234.50',
    lines: [
      { product: product.body.id, description: 'Кубик', quantity: '1', price: '1000.00', amount: '1000.00', vatRate: '20' },
      { description: 'Доставка', quantity: '1', price: '234.50', amount: '234.50', vatRate: '20' },
    ],
  });
  expect(order.status).toBe(201);
  orderId = order.body.id;
});
afterAll(() => t?.close());

describe('document templates', () => {
  it('lists shipped defaults as published versions', async () => {
    const list = await t.api('GET', '/api/templates');
    expect(list.status).toBe(200);
    const ids = list.body.data.map((x: { id: string }) => x.id);
    expect(ids).toEqual(expect.arrayContaining(['alpha.order-invoice', 'base.organization-card']));
    const invoice = await t.api('GET', '/api/templates/alpha.order-invoice');
    expect(invoice.body).toMatchObject({ publishedVersion: 1, version: 1, origin: 'default', metadata: { entity: 'alpha.orders', paper: 'A4', locale: 'ru-RU' } });
  });

  it('previews a record with references, lines, totals and the company profile', async () => {
    const preview = await t.api('POST', '/api/templates/alpha.order-invoice/preview', { recordId: orderId });
    expect(preview.status).toBe(200);
    const html: string = preview.body.html;
    expect(html).toContain('Счёт на оплату № INV-2026-0042');
    expect(html).toContain('ООО «Ромашка»');
    expect(html).toContain('Кубик деревянный (KB-1)');
    expect(html).toContain('1\u00a0234,50\u00a0₽');
    expect(html).toContain('Одна тысяча двести тридцать четыре рубля 50 копеек');
    expect(html).toContain('Всего наименований 2');
    expect(html).toContain('ИНН 7707083893');
    expect(html).toContain('@page { size: A4; }');
    expect(preview.body.missingFields).toEqual(expect.arrayContaining(['company.logo', 'company.ogrn']));
    expect(preview.body.missingFields).not.toContain('record.number');
  });

  it('renders and stores a document that reads back byte for byte', async () => {
    const rendered = await t.api('POST', '/api/templates/alpha.order-invoice/render', { recordId: orderId });
    expect(rendered.status).toBe(201);
    expect(rendered.body).toMatchObject({ template: 'alpha.order-invoice', templateVersion: 1, entity: 'alpha.orders', recordId: orderId, recordVersion: 1, format: 'html' });
    const content = await fetch(`${t.url}/api/documents/${rendered.body.id}/content`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    expect(content.headers.get('content-type')).toContain('text/html');
    expect(content.headers.get('content-security-policy')).toContain("default-src 'none'");
    const bytes = Buffer.from(await content.arrayBuffer());
    const { createHash } = await import('node:crypto');
    expect(createHash('sha256').update(bytes).digest('hex')).toBe(rendered.body.sha256);
    expect(bytes.toString('utf8')).toContain('INV-2026-0042');
  });
});
