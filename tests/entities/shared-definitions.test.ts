import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverPlugins } from '../../core/plugins/plugin-manifest.ts';
import { SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startKubiki({ enable: ['crm', 'finance'] }); });
afterAll(async () => t?.close());

/** A throw-away plugin folder next to the shipped ones' definitions. */
function pluginDir(manifest: Record<string, unknown>, entity: Record<string, unknown>): string {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-shared-'));
  const dir = path.join(root, String(manifest.name));
  fs.mkdirSync(path.join(dir, 'entities'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'plugin.json'), JSON.stringify({ version: '1.0.0', core: '^0.1.0', entities: ['order'], ...manifest }));
  fs.writeFileSync(path.join(dir, 'entities', 'order.schema.json'), JSON.stringify({
    type: 'object', 'x-plural': 'orders', properties: { number: { type: 'string', 'x-title': true }, ...entity },
  }));
  return root;
}

describe('shared definitions', () => {
  it('give quotes and invoices one document line', async () => {
    const doc = (await t.api('GET', '/api/openapi.json')).body;
    const quote = doc.components.schemas.CrmQuoteInput.properties.lines;
    const invoice = doc.components.schemas.FinanceInvoiceInput.properties.lines;
    expect(quote.items).toEqual(invoice.items);
    expect(quote.items.required).toEqual(['description', 'quantity', 'price', 'vatRate']);
    expect(quote.description).toContain('Quote lines');
    expect(invoice.description).toContain('Invoice lines');
  });

  it('validate a line the same way wherever it is used', async () => {
    const bad = { description: 'Chair', quantity: '1', price: '10.00', vatRate: '18' };
    const quote = await t.api('POST', '/api/crm/quotes', { lines: [bad] });
    const invoice = await t.api('POST', '/api/finance/invoices', { kind: 'customer', lines: [bad] });
    for (const res of [quote, invoice]) {
      expect(res.status).toBe(400);
      expect(res.body.errors.map((e: { field: string }) => e.field)).toContain('lines.0.vatRate');
    }
  });

  it('are usable only from plugins that depend on the owner, and must exist', () => {
    const notDependent = pluginDir({ name: 'shop', dependsOn: [] }, { lines: { 'x-shared': 'base.document-lines' } });
    expect(() => discoverPlugins([SHIPPED_PLUGINS, notDependent])).toThrow(/x-shared.*base\.document-lines.*dependsOn/);
    const unknown = pluginDir({ name: 'shop', dependsOn: ['base'] }, { lines: { 'x-shared': 'base.no-such-thing' } });
    expect(() => discoverPlugins([SHIPPED_PLUGINS, unknown])).toThrow(/base\.no-such-thing/);
    const fine = pluginDir({ name: 'shop', dependsOn: ['base'] }, { lines: { 'x-shared': 'base.document-lines', maxItems: 20 } });
    const shop = discoverPlugins([SHIPPED_PLUGINS, fine]).find((p) => p.manifest.name === 'shop')!;
    const lines = shop.entities[0].fields.get('lines')!;
    expect(lines.kind).toBe('json');
    expect(lines.schema).toMatchObject({ type: 'array', maxItems: 20, items: { required: ['description', 'quantity', 'price', 'vatRate'] } });
  });
});
