import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { INVOICE, fetchBytes, seedInvoice, sha256, startInvoiceKubiki } from './invoice-fixture.ts';

// What a template cannot do: let record data inject markup, reach prototypes (constructor,
// __proto__, Function), read the environment or files; and how a stored document is served.

let t: TestKubiki;
let orderId: string;
const SCRIPT = '<script>alert(1)</script>';
const IMG = '"><img src=x onerror=alert(document.cookie)>';

const PROBES: Record<string, string> = {
  constructor: '{{constructor}}',
  proto: '{{__proto__}}',
  recordConstructorName: '{{record.constructor.name}}',
  lookupProto: '{{lookup record "__proto__"}}',
  withProto: '{{#with record.__proto__}}{{toString}}{{/with}}',
  lookupLookup: '{{lookup (lookup this "constructor") "name"}}',
  functionConstructor: '{{this.constructor.constructor}}',
  stringConstructor: '{{record.number.constructor.name}}',
  arrayConstructor: '{{lookup (lookup record.lines "constructor") "name"}}',
  withConstructor: '{{#with (lookup record "constructor")}}{{name}}{{/with}}',
  eachConstructor: '{{#each record.constructor}}x{{/each}}',
  rootConstructor: '{{@root.constructor.name}}',
  protoMethod: '{{record.__defineGetter__}}',
  hasOwn: '{{record.hasOwnProperty}}',
  env: '{{process.env.HOME}}',
  rootProcess: '{{@root.process.pid}}',
  globalProcess: '{{global.process.version}}',
  require: '{{require}}',
};
const PROBE_SOURCE = `${Object.entries(PROBES).map(([name, expr]) => `[${name}:${expr}]`).join('\n')}\n<p>{{record.number}}</p>\n`;

beforeAll(async () => {
  t = await startInvoiceKubiki();
  orderId = await seedInvoice(t, { number: SCRIPT });
  const customer = (await t.api('GET', `/api/alpha/orders/${orderId}`)).body.customer as string;
  expect((await t.api('PATCH', `/api/base/organizations/${customer}`, { name: IMG })).status).toBe(200);
  const saved = await t.api('PUT', '/api/templates/alpha.probe', { source: PROBE_SOURCE, metadata: { title: 'Probe', entity: 'alpha.orders' } });
  expect(saved.status, JSON.stringify(saved.body)).toBe(200);
  expect((await t.api('POST', '/api/templates/alpha.probe/publish')).status).toBe(200);
});
afterAll(() => t?.close());

/** The values between the probe markers, by probe name. */
function probeValues(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of Object.keys(PROBES)) {
    const m = new RegExp(`\\[${name}:([^\\]]*)\\]`).exec(html);
    out[name] = m ? m[1] : '(marker missing)';
  }
  return out;
}

const EMPTY = Object.fromEntries(Object.keys(PROBES).map((k) => [k, '']));

function expectNothingLeaked(html: string): void {
  expect(probeValues(html)).toEqual(EMPTY);
  const output = html.replace(/\[[a-zA-Z]+:/g, '[');
  for (const leak of ['Object', 'Function', 'function', '[native code]', 'process', `pid`, process.version]) expect(output).not.toContain(leak);
  if (process.env.HOME) expect(html).not.toContain(`:${process.env.HOME}]`);
}

describe('record data is escaped', () => {
  it('in previews and in stored documents', async () => {
    const preview = await t.api('POST', `/api/templates/${INVOICE}/preview`, { recordId: orderId });
    expect(preview.status).toBe(200);
    const rendered = await t.api('POST', `/api/templates/${INVOICE}/render`, { recordId: orderId });
    expect(rendered.status).toBe(201);
    const stored = await fetchBytes(t, `/api/documents/${rendered.body.id}/content`);
    expect(sha256(stored.bytes)).toBe(rendered.body.sha256);
    for (const html of [preview.body.html as string, stored.bytes.toString('utf8')]) {
      expect(html).not.toContain('<script');
      expect(html).not.toContain('<img');
      expect(html).not.toMatch(/"\s*>\s*<img/);
      expect(html).toContain('Счёт на оплату № &lt;script&gt;alert(1)&lt;/script&gt;');
      expect(html).toContain('&quot;&gt;&lt;img src&#x3D;x onerror&#x3D;alert(document.cookie)&gt;');
    }
  });

  it('in sample data of a preview, nested in lines too', async () => {
    const preview = await t.api('POST', `/api/templates/${INVOICE}/preview`, {
      data: { number: SCRIPT, currency: 'RUB', total: '1.00', customer: { name: IMG }, lines: [{ description: IMG, quantity: '1', price: '1.00', amount: '1.00', vatRate: 'none' }] },
    });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    expect(preview.body.html).not.toContain('<script');
    expect(preview.body.html).not.toContain('<img');
    expect(preview.body.html.match(/&lt;img src&#x3D;x/g)).toHaveLength(2);
  });
});

describe('templates cannot reach prototypes, the environment or files', () => {
  it('renders prototype and environment lookups empty in a preview of a record', async () => {
    const preview = await t.api('POST', '/api/templates/alpha.probe/preview', { recordId: orderId });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    expectNothingLeaked(preview.body.html);
    expect(preview.body.html).toContain('<p>&lt;script&gt;alert(1)&lt;/script&gt;</p>');
  });

  it('and in a preview of sample data (the field-tracking path)', async () => {
    const preview = await t.api('POST', '/api/templates/alpha.probe/preview', { data: { number: 'N-1', lines: [{ description: 'x' }], constructor: 'shadow?' } });
    expect(preview.status, JSON.stringify(preview.body)).toBe(200);
    // An own "constructor" field of the sample record is data, not the prototype: still not Object.
    const values = probeValues(preview.body.html);
    expect({ ...values, recordConstructorName: '' }).toEqual(EMPTY);
    expect(values.recordConstructorName).toBe('');
    expectNothingLeaked(preview.body.html.replace('shadow?', ''));
    // Prototype lookups are reported as missing fields, not resolved.
    expect(preview.body.missingFields).toEqual(expect.arrayContaining(['constructor', 'record.__defineGetter__', 'process']));
  });

  it('and in a stored document', async () => {
    const rendered = await t.api('POST', '/api/templates/alpha.probe/render', { recordId: orderId });
    expect(rendered.status).toBe(201);
    const stored = await fetchBytes(t, `/api/documents/${rendered.body.id}/content`);
    expectNothingLeaked(stored.bytes.toString('utf8'));
  });

  it('cannot call anything but the document helpers', async () => {
    for (const source of ['{{readFile "/etc/passwd"}}', '{{log "x"}}', '{{#with (require "fs")}}{{/with}}', '{{> (lookup . "x")}}{{eval "1"}}']) {
      const res = await t.api('PUT', '/api/templates/alpha.probe', { source });
      expect(res.status, `${source}: ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.body.code).toBe('template-compile-error');
    }
    expect((await t.api('GET', '/api/templates/alpha.probe')).body.latestVersion).toBe(1);
  });
});

describe('serving a stored document', () => {
  it('sends a CSP that allows nothing to run or load, and nosniff', async () => {
    const rendered = await t.api('POST', `/api/templates/${INVOICE}/render`, { recordId: orderId });
    const res = await fetchBytes(t, `/api/documents/${rendered.body.id}/content`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toMatch(/(^|;\s*)default-src 'none'(;|$)/);
    expect(csp).not.toMatch(/script-src|unsafe-eval|connect-src|https?:/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(res.headers.get('content-disposition')).toMatch(/^inline; filename="alpha\.order-invoice-[0-9a-f-]{36}\.html"$/);
    expect(res.headers.get('etag')).toBe(`"${rendered.body.sha256}"`);
    expect((await fetchBytes(t, `/api/documents/${rendered.body.id}/content`, null)).status).toBe(401);
  });
});
