import { createHash } from 'node:crypto';
import path from 'node:path';
import { expect } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import type { KubikiConfig } from '../../core/config.ts';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

// What the document-template tests share: Kubiki with the fixture plugin alpha and its invoice
// template, a company profile, and one order (INV-2026-0042, 1 234,50 ₽) to print.

export const TEMPLATE_DIRS = [path.join(repoRoot, 'templates'), path.join(repoRoot, 'tests/fixtures/templates')];
export const INVOICE = 'alpha.order-invoice';

export const sha256 = (data: Buffer | string): string => createHash('sha256').update(data).digest('hex');

export const COMPANY = {
  name: 'ООО «Кубики»', inn: '7707083893', kpp: '770701001', address: 'Москва, ул. Примерная, 1',
  bank: { name: 'ПАО Банк', bik: '044525225', account: '40702810400000000001', correspondentAccount: '30101810400000000225' }, director: 'Иванов И. И.',
};

export function startInvoiceKubiki(options: { schema?: string; adminToken?: string; config?: Partial<KubikiConfig>; templateDirs?: string[] } = {}): Promise<TestKubiki> {
  return startKubiki({
    pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'], schema: options.schema, adminToken: options.adminToken,
    config: { templateDirs: options.templateDirs ?? TEMPLATE_DIRS, ...options.config },
  });
}

/** Seeds the company profile and an order with a customer, a product line and a free line; returns the order id. */
export async function seedInvoice(t: TestKubiki, order: Record<string, unknown> = {}): Promise<string> {
  expect((await t.api('PUT', '/api/settings/company', COMPANY)).status).toBe(200);
  const customer = await t.api('POST', '/api/base/organizations', { name: 'ООО «Ромашка»', inn: '7701234560', kpp: '770101001' });
  expect(customer.status).toBe(201);
  const product = await t.api('POST', '/api/base/products', { sku: 'KB-1', name: 'Кубик деревянный', price: '1000.00' });
  expect(product.status).toBe(201);
  const created = await t.api('POST', '/api/alpha/orders', {
    number: 'INV-2026-0042', customer: customer.body.id, issuedOn: '2026-11-27', total: '1234.50',
    lines: [
      { product: product.body.id, description: 'Кубик', quantity: '1', price: '1000.00', amount: '1000.00', vatRate: '20' },
      { description: 'Доставка', quantity: '1', price: '234.50', amount: '234.50', vatRate: '20' },
    ],
    ...order,
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  return created.body.id as string;
}

/** GET as bytes (the stored document's content). */
export async function fetchBytes(t: TestKubiki, p: string, token: string | null = t.adminToken): Promise<{ status: number; headers: Headers; bytes: Buffer }> {
  const res = await fetch(t.url + p, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  return { status: res.status, headers: res.headers, bytes: Buffer.from(await res.arrayBuffer()) };
}
