import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

// Every failure a client can cause is a 4xx problem+json naming the field and the rule, and
// nothing is written: no record, no audit row, no outbox event.

let t: TestKubiki;
let widgetId: string;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'] });
  const w = await t.api('POST', '/api/alpha/widgets', { code: 'E-1', name: 'Existing', quantity: 1, price: '1.00' });
  expect(w.status).toBe(201);
  widgetId = w.body.id;
});
afterAll(() => t?.close());

const TABLES = ['alpha_widgets', 'alpha_parts', 'kubiki_audit', 'kubiki_outbox'] as const;

async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) out[table] = await t.count(table);
  return out;
}

/** Runs `request`, asserts the answer is the problem `code` with `status`, and that nothing was written. */
async function expectProblem(
  request: () => Promise<ApiResponse>,
  status: number,
  code: string,
  issue?: { field?: string; rule?: string },
): Promise<ApiResponse> {
  const before = await counts();
  const res = await request();
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ type: `/problems/${code}`, status, code });
  expect(typeof res.body.title).toBe('string');
  expect(typeof res.body.detail).toBe('string');
  if (issue) {
    expect(res.body).toMatchObject(issue);
    expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining(issue)]));
  }
  expect(await counts()).toEqual(before);
  return res;
}

const widget = (code: string, extra: Record<string, unknown> = {}) => ({ code, name: `Widget ${code}`, ...extra });

describe('request bodies', () => {
  it('rejects malformed JSON with the position', async () => {
    const res = await expectProblem(() => t.api('POST', '/api/alpha/widgets', '{"code": "M-1", "name": '), 400, 'malformed-json', { field: '', rule: 'json' });
    expect(res.body.detail).toMatch(/not valid JSON/);
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', "{'code': 'M-1'}"), 400, 'malformed-json');
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, '{"name": "x",}'), 400, 'malformed-json');
  });

  it('rejects an unknown field, naming it', async () => {
    const res = await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('UF-1', { bogus: 1 })), 400, 'validation-failed', { field: 'bogus', rule: 'unknown-field' });
    expect(res.body.errors).toHaveLength(1);
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { bogus: 'x' }), 400, 'validation-failed', { field: 'bogus', rule: 'unknown-field' });
  });

  it('rejects a value of the wrong type', async () => {
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('WT-1', { quantity: '3' })), 400, 'validation-failed', { field: 'quantity', rule: 'type' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('WT-2', { active: 'yes' })), 400, 'validation-failed', { field: 'active', rule: 'type' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('WT-3', { tags: 'a,b' })), 400, 'validation-failed', { field: 'tags', rule: 'type' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('WT-4', { tags: ['a', 7] })), 400, 'validation-failed', { field: 'tags.1', rule: 'type' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('WT-5', { quantity: 1.5 })), 400, 'validation-failed', { field: 'quantity', rule: 'type' });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { name: 42 }), 400, 'validation-failed', { field: 'name', rule: 'type' });
  });

  it('rejects a missing required field, naming it', async () => {
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', { code: 'RQ-1' }), 400, 'validation-failed', { field: 'name', rule: 'required' });
    const both = await expectProblem(() => t.api('POST', '/api/alpha/widgets', {}), 400, 'validation-failed');
    expect(both.body.errors).toEqual(expect.arrayContaining([
      expect.objectContaining({ field: 'code', rule: 'required' }),
      expect.objectContaining({ field: 'name', rule: 'required' }),
    ]));
    // null means "absent" on create, and PATCH null clears: a required field cannot be cleared.
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', { code: 'RQ-2', name: null }), 400, 'validation-failed', { field: 'name', rule: 'required' });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { name: null }), 400, 'validation-failed', { field: 'name', rule: 'required' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets'), 400, 'validation-failed', { field: '', rule: 'type' });
  });

  it('rejects a body over 1 MiB with 413', async () => {
    const big = JSON.stringify(widget('BIG-1', { name: 'x'.repeat(1_200_000) }));
    expect(big.length).toBeGreaterThan(1024 * 1024);
    const res = await expectProblem(() => t.api('POST', '/api/alpha/widgets', big), 413, 'payload-too-large');
    expect(res.body.limit).toBe(1024 * 1024);
    // Without Content-Length (chunked), the limit is enforced while reading.
    const before = await counts();
    const chunks = [big.slice(0, 600_000), big.slice(600_000)];
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        const next = chunks.shift();
        if (next === undefined) controller.close();
        else controller.enqueue(new TextEncoder().encode(next));
      },
    });
    const chunked = await fetch(`${t.url}/api/alpha/widgets`, {
      method: 'POST', body: stream, duplex: 'half', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
    } as RequestInit & { duplex: 'half' }).catch((error: unknown) => error);
    // The server may close the connection before the whole body is sent; if an answer arrives, it is a 413.
    if (chunked instanceof Response) {
      expect(chunked.status).toBe(413);
      expect(((await chunked.json()) as { code: string }).code).toBe('payload-too-large');
    }
    expect(await counts()).toEqual(before);
    // The connection that carried the refused body is not left hanging for the next request.
    const next = await Promise.race([t.api('GET', '/api/alpha/widgets?limit=1'), new Promise<string>((resolve) => setTimeout(() => resolve('timed out'), 5000))]);
    expect(typeof next === 'string' ? next : next.status).toBe(200);
  });

  it('rejects a body that is not JSON with 415', async () => {
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', 'code=X-1&name=x', { headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, 'unsupported-media-type');
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', JSON.stringify(widget('CT-1')), { headers: { 'content-type': 'text/plain' } }), 415, 'unsupported-media-type');
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, '<name>x</name>', { headers: { 'content-type': 'application/xml' } }), 415, 'unsupported-media-type');
  });

  it('rejects a decimal with too many fraction digits, an enum violation and an out-of-range integer', async () => {
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DV-1', { price: '1.234' })), 400, 'validation-failed', { field: 'price', rule: 'x-decimal' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DV-2', { price: '12,50' })), 400, 'validation-failed', { field: 'price', rule: 'x-decimal' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('EN-1', { color: 'purple' })), 400, 'validation-failed', { field: 'color', rule: 'enum' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('IR-1', { quantity: 3_000_000_000 })), 400, 'validation-failed', { field: 'quantity', rule: 'maximum' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('IR-2', { quantity: -1 })), 400, 'validation-failed', { field: 'quantity', rule: 'minimum' });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { quantity: 3_000_000_000 }), 400, 'validation-failed', { field: 'quantity', rule: 'maximum' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('bad code')), 400, 'validation-failed', { field: 'code', rule: 'pattern' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DT-1', { releasedOn: '2026-02-30' })), 400, 'validation-failed', { field: 'releasedOn', rule: 'format' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DT-2', { inspectedAt: 'yesterday' })), 400, 'validation-failed', { field: 'inspectedAt', rule: 'format' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('TG-1', { tags: Array.from({ length: 11 }, (_, i) => `t${i}`) })), 400, 'validation-failed', { field: 'tags', rule: 'maxItems' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('ORG-1', { organization: 'not-a-uuid' })), 400, 'validation-failed', { field: 'organization', rule: 'format' });
  });

  it('rejects a PATCH body that is an array or changes the id', async () => {
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, [{ name: 'x' }]), 400, 'validation-failed', { field: '', rule: 'type' });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, 'null'), 400, 'validation-failed', { field: '', rule: 'type' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', [widget('AR-1')]), 400, 'validation-failed', { field: '', rule: 'type' });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { id: '00000000-0000-4000-8000-000000000000', name: 'x' }), 400, 'validation-failed', { field: 'id', rule: 'const' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('ID-1', { id: 'nope' })), 400, 'validation-failed', { field: 'id', rule: 'format' });
    const read = await t.api('GET', `/api/alpha/widgets/${widgetId}`);
    expect(read.body).toMatchObject({ id: widgetId, version: 1, name: 'Existing' });
  });

  it('rejects a malformed If-Match header', async () => {
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { name: 'x' }, { headers: { 'if-match': 'banana' } }), 400, 'precondition-malformed', { field: 'If-Match', rule: 'etag' });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { name: 'x' }, { headers: { 'if-match': '"99999999999"' } }), 400, 'precondition-malformed');
    await expectProblem(() => t.api('DELETE', `/api/alpha/widgets/${widgetId}`, undefined, { headers: { 'if-match': '"1", "2"' } }), 400, 'precondition-malformed', { field: 'If-Match', rule: 'etag' });
    // A well-formed but stale one is a 412, still writing nothing.
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { name: 'x' }, { headers: { 'if-match': '"7"' } }), 412, 'version-mismatch');
    await expectProblem(() => t.api('DELETE', `/api/alpha/widgets/${widgetId}`, undefined, { headers: { 'if-match': '"7"' } }), 412, 'version-mismatch');
  });
});

describe('addressing', () => {
  it('answers 404 for an unknown plugin, entity, disabled plugin and route', async () => {
    await expectProblem(() => t.api('GET', '/api/nosuch/things'), 404, 'unknown-plugin', { field: 'name', rule: 'exists' });
    await expectProblem(() => t.api('POST', '/api/nosuch/things', { a: 1 }), 404, 'unknown-plugin');
    await expectProblem(() => t.api('GET', '/api/alpha/nothings'), 404, 'unknown-entity', { field: 'entity', rule: 'exists' });
    await expectProblem(() => t.api('POST', '/api/alpha/nothings', widget('UE-1')), 404, 'unknown-entity');
    await expectProblem(() => t.api('GET', `/api/alpha/nothings/${widgetId}`), 404, 'unknown-entity');
    // beta is shipped (available) but not installed/enabled.
    await expectProblem(() => t.api('GET', '/api/beta/gadgets'), 404, 'plugin-disabled');
    await expectProblem(() => t.api('POST', '/api/beta/gadgets', { title: 'g' }), 404, 'plugin-disabled');
    await expectProblem(() => t.api('GET', '/api/nowhere'), 404, 'route-not-found');
    await expectProblem(() => t.api('GET', '/nowhere'), 404, 'route-not-found');
    await expectProblem(() => t.api('GET', `/api/alpha/widgets/${widgetId}/extra/segments`), 404, 'route-not-found');
    await expectProblem(() => t.api('PUT', '/api/alpha/widgets', widget('PUT-1')), 404, 'route-not-found');
  });

  it('answers 404 not-found for an unknown id on GET, PATCH and DELETE, UUID or not', async () => {
    for (const id of ['00000000-0000-4000-8000-000000000000', 'not-a-uuid', '123', "1' or '1'='1"]) {
      const path = `/api/alpha/widgets/${encodeURIComponent(id)}`;
      await expectProblem(() => t.api('GET', path), 404, 'not-found');
      await expectProblem(() => t.api('PATCH', path, { name: 'x' }), 404, 'not-found');
      await expectProblem(() => t.api('DELETE', path), 404, 'not-found');
    }
  });
});

describe('list queries', () => {
  it('rejects a filter on an unknown field, a bad value or a bad operator', async () => {
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?bogus=1'), 400, 'bad-filter', { field: 'bogus', rule: 'unknown-field' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?quantity=abc'), 400, 'bad-filter', { field: 'quantity', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?quantity[gt]=1.5'), 400, 'bad-filter', { field: 'quantity', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?id=not-a-uuid'), 400, 'bad-filter', { field: 'id', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?releasedOn=2026-13-45'), 400, 'bad-filter', { field: 'releasedOn', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?inspectedAt[gte]=tomorrow'), 400, 'bad-filter', { field: 'inspectedAt', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?active=yes'), 400, 'bad-filter', { field: 'active', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?price[lt]=1.234'), 400, 'bad-filter', { field: 'price', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?organization=xyz'), 400, 'bad-filter', { field: 'organization', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?code[in]=A,B&quantity[in]=1,x'), 400, 'bad-filter', { field: 'quantity', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?tags=a'), 400, 'bad-filter', { field: 'tags', rule: 'filterable' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?quantity[like]=1'), 400, 'bad-filter', { field: 'quantity', rule: 'operator' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?quantity[contains]=1'), 400, 'bad-filter', { field: 'quantity', rule: 'operator' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?active[gt]=true'), 400, 'bad-filter', { field: 'active', rule: 'operator' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?color[null]=maybe'), 400, 'bad-filter', { field: 'color', rule: 'type' });
  });

  it('rejects a bad sort, limit, cursor or parameter', async () => {
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?sort=bogus'), 400, 'bad-sort', { field: 'bogus', rule: 'unknown-field' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?sort=-name,-bogus'), 400, 'bad-sort', { field: 'bogus', rule: 'unknown-field' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?sort=tags'), 400, 'bad-sort', { field: 'tags', rule: 'sortable' });
    for (const limit of ['0', '-1', 'ten', '501', '1.5', '']) {
      await expectProblem(() => t.api('GET', `/api/alpha/widgets?limit=${limit}`), 400, 'bad-query', { field: 'limit', rule: 'range' });
    }
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?limit=1&limit=2'), 400, 'bad-query', { field: 'limit', rule: 'single' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?cursor=garbage'), 400, 'bad-query', { field: 'cursor', rule: 'cursor' });
    const forged = Buffer.from(JSON.stringify({ s: '', v: [], id: 'x' })).toString('base64url');
    await expectProblem(() => t.api('GET', `/api/alpha/widgets?cursor=${forged}`), 400, 'bad-query', { field: 'cursor', rule: 'cursor' });
    // A real cursor used with another sort order.
    await t.api('POST', '/api/alpha/widgets', widget('E-2'));
    const page = await t.api('GET', '/api/alpha/widgets?sort=code&limit=1');
    expect(page.body.next).toEqual(expect.any(String));
    await expectProblem(() => t.api('GET', `/api/alpha/widgets?sort=-code&limit=1&cursor=${page.body.next}`), 400, 'bad-query', { field: 'cursor', rule: 'cursor' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?withTotal=yes'), 400, 'bad-query', { field: 'withTotal', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?fields=code,bogus'), 400, 'bad-query', { field: 'bogus', rule: 'unknown-field' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?expand=name'), 400, 'bad-query', { field: 'name', rule: 'expandable' });
    await expectProblem(() => t.api('GET', `/api/alpha/widgets/${widgetId}?bogus=1`), 400, 'bad-query', { field: 'bogus', rule: 'unknown-parameter' });
  });
});

describe('hostile input', () => {
  it('never answers 5xx and never writes on a rejected request', async () => {
    const NUL = '\u0000';
    const weirdStrings = [
      `a${NUL}b`, NUL, 'ö🙂日本語', '\ud800', '\uffff', "'; drop table alpha_widgets; --", '%00', '\\', '%', '_', '"', '\u202e', 'a'.repeat(10_000),
    ];
    const queries = [
      '?quantity=99999999999', '?quantity=9999999999', '?quantity=-9999999999', '?quantity[gt]=2147483648', '?quantity[in]=1,99999999999',
      '?version=99999999999', '?price=99999999999999999999999', '?price[gt]=-0', '?price=1e5',
      '?releasedOn=2026-02-30', '?releasedOn=0000-01-01', '?releasedOn=9999-99-99', '?releasedOn[lt]=2026-04-31',
      '?inspectedAt=0000-01-01T00:00:00Z', '?inspectedAt=9999-12-31T23:59:59Z', '?inspectedAt=2026-01-01T00:00:00+99:00', '?createdAt[gt]=1000-01-01',
      '?name=%00', '?name=a%00b', '?name[contains]=%00', '?q=%00', '?code[in]=%00,A', '?name[ne]=%00', '?sort=%00', '?fields=%00', '?expand=%00',
      '?name=%E0%A4%A', '?name=%ZZ', '?q=%25%5F%5C', '?%00=1', '?name[%00]=1', '?[gt]=1', '?name[]=1', '?name[gt][lt]=1', '?=1', '?&&&=&',
      `?q=${'x'.repeat(5000)}`, `?code[in]=${Array.from({ length: 501 }, (_, i) => `C${i}`).join(',')}`, '?sort=a,b,c,d,e,f', '?sort=,,,', '?sort=-',
      '?limit=99999999999999999999', '?limit=1e2', '?cursor=', '?cursor=%00', `?cursor=${Buffer.from('{"s":"","v":[],"id":"00000000-0000-4000-8000-000000000000"}').toString('base64url')}`,
      `?sort=quantity&cursor=${Buffer.from('{"s":"quantity","v":["abc"],"id":"00000000-0000-4000-8000-000000000000"}').toString('base64url')}`,
      `?sort=releasedOn&cursor=${Buffer.from('{"s":"releasedOn","v":[{"x":1}],"id":"00000000-0000-4000-8000-000000000000"}').toString('base64url')}`,
      `?sort=code&cursor=${Buffer.from(`{"s":"code","v":["a${NUL}"],"id":"00000000-0000-4000-8000-000000000000"}`).toString('base64url')}`,
      `?sort=inspectedAt&cursor=${Buffer.from('{"s":"inspectedAt","v":["0000-99-99"],"id":"00000000-0000-4000-8000-000000000000"}').toString('base64url')}`,
      `?sort=price&cursor=${Buffer.from('{"s":"price","v":[1e400],"id":"00000000-0000-4000-8000-000000000000"}').toString('base64url')}`,
    ];
    const bodies: unknown[] = [
      ...weirdStrings.map((s) => widget('H-1', { name: s })),
      ...weirdStrings.map((s) => widget(s)),
      widget('H-2', { tags: [`x${NUL}`] }),
      widget('H-5', { quantity: 2 ** 53 + 1 }), widget('H-6', { quantity: 1e-400 }),
      widget('H-7', { price: '-0' }), widget('H-8', { price: `1${'0'.repeat(5000)}` }), widget('H-9', { price: 1e21 }),
      widget('H-10', { releasedOn: '0000-01-01' }), widget('H-11', { releasedOn: '9999-12-31' }), widget('H-12', { releasedOn: '2024-02-29' }),
      widget('H-13', { inspectedAt: '0000-01-01T00:00:00Z' }), widget('H-14', { inspectedAt: '9999-12-31T23:59:59+00:00' }), widget('H-15', { inspectedAt: '2026-01-01T00:00:00-23:59' }),
      widget('H-16', { organization: '00000000-0000-4000-8000-000000000000' }),
      widget('H-17', { organization: 'ffffffff-ffff-ffff-ffff-ffffffffffff' }),
      widget('H-18', { active: null, color: null, tags: null }),
      widget('H-19', { __proto__: { polluted: true } }), JSON.parse('{"code": "H-20", "name": "x", "__proto__": {"polluted": true}}') as unknown,
      widget('H-21', { constructor: 'x' }), widget('H-22', { version: 'x' }), widget('H-23', { createdAt: 'x', createdBy: 'x' }),
      { code: 'H-24', name: { nested: true } }, { code: ['H-25'], name: 'x' }, 12, 'a string', true, null, [],
      widget('H-26', { id: '00000000-0000-0000-0000-000000000000' }),
    ];
    const rawBodies = [
      '{"code": "H-30", "name": "\\u0000"}', '{"code": "H-31", "name": "\\ud800"}', '{"code": "H-32", "name": "x", "name": "y"}',
      '{"code": "H-33", "name": "x", "quantity": 1' + '0'.repeat(400) + '}', '[' .repeat(10_000) + ']'.repeat(10_000), '"' + 'x'.repeat(1000),
      '\ufeff{"code": "H-34", "name": "x"}', '{"code": "H-35", "name": "x"}garbage', 'NaN', '{"a": Infinity}', '\u0000',
      '{"code": "H-36", "name": "x", "quantity": 1e400}', '{"code": "H-37", "name": "x", "quantity": -1e400}', '{"code": "H-38", "name": "x", "price": "1e5"}',
      '{"code": "H-39", "name": "x", "tags": {"\\u0000": 1}}',
    ];
    const headerCases: Record<string, string>[] = [
      { 'content-type': 'application/json; charset=latin1' }, { 'content-type': 'application/json; charset=utf-16' }, { 'content-type': 'application/vnd.api+json' },
      { 'content-type': 'multipart/form-data; boundary=x' }, { 'content-type': '' }, { 'content-type': '*/*' },
      { 'content-encoding': 'gzip' }, { 'content-encoding': 'br' }, { 'content-encoding': 'bogus' },
      { 'if-match': 'W/"1"' }, { 'if-match': '*' }, { 'if-match': '"-1"' }, { 'if-match': '"0"' }, { 'x-request-id': 'a'.repeat(500) },
    ];
    const paths = [
      '/api/alpha/widgets/%00', '/api/alpha/widgets/%E0%A4%A', '/api/alpha/widgets/%ZZ', '/api/%00/widgets', '/api/alpha/%00', '/api/ALPHA/widgets',
      '/api/alpha/widgets/' + 'f'.repeat(5000), '/api/alpha/widgets/..%2F..%2Fetc%2Fpasswd', '/api/alpha/widgets/00000000-0000-4000-8000-00000000000g',
      '/api/meta/entities/%00/widgets', '/api/meta/entities/alpha/%E0%A4%A', '/api/plugins/%00/enable', '/api/audit?entity=%00', '/api/audit?id=%00',
      '/api/audit?limit=99999999999999999999', '/api/audit?before=99999999999999999999', '/api/users/%00', '/api/users/not-a-uuid', '/api/roles/%00',
      `/api/alpha/widgets/${widgetId}?expand=%00`, `/api/alpha/widgets/${widgetId}?expand=organization,organization`,
    ];

    const before = await counts();
    const results: { what: string; status: number; body: unknown }[] = [];
    const record = (what: string, res: ApiResponse) => results.push({ what, status: res.status, body: res.body });

    for (const q of queries) record(`GET ${q}`, await t.api('GET', `/api/alpha/widgets${q}`));
    for (const q of queries.slice(0, 20)) record(`GET parts ${q}`, await t.api('GET', `/api/alpha/parts${q.replace(/quantity|releasedOn|inspectedAt|price|name/g, 'label')}`));
    for (const body of bodies) {
      record(`POST ${JSON.stringify(body)?.slice(0, 80)}`, await t.api('POST', '/api/alpha/widgets', body === null ? 'null' : body));
      if (body !== null && typeof body === 'object' && !Array.isArray(body)) {
        const { code: _code, ...patch } = body as Record<string, unknown>;
        record(`PATCH ${JSON.stringify(patch).slice(0, 80)}`, await t.api('PATCH', `/api/alpha/widgets/${widgetId}`, patch));
      }
    }
    for (const raw of rawBodies) {
      record(`POST raw ${raw.slice(0, 40)}`, await t.api('POST', '/api/alpha/widgets', raw));
      record(`PATCH raw ${raw.slice(0, 40)}`, await t.api('PATCH', `/api/alpha/widgets/${widgetId}`, raw));
    }
    for (const headers of headerCases) {
      record(`POST ${JSON.stringify(headers)}`, await t.api('POST', '/api/alpha/widgets', JSON.stringify(widget('HD-1', { name: 'x'.repeat(10) })), { headers }));
      record(`PATCH ${JSON.stringify(headers)}`, await t.api('PATCH', `/api/alpha/widgets/${widgetId}`, JSON.stringify({ quantity: 'x' }), { headers }));
    }
    for (const p of paths) {
      for (const method of ['GET', 'PATCH', 'DELETE', 'POST']) {
        record(`${method} ${p.slice(0, 80)}`, await t.api(method, p, method === 'PATCH' || method === 'POST' ? { bogus: `x${NUL}` } : undefined));
      }
    }
    for (const token of ['', 'x', 'Bearer', 'a'.repeat(10_000), '\u00ff\u00fe']) {
      record(`token ${token.slice(0, 20)}`, await t.api('GET', '/api/alpha/widgets', undefined, { token: null, headers: { authorization: `Bearer ${token}` } }));
    }
    record('login NUL', await t.api('POST', '/api/auth/login', { username: `admin${NUL}`, password: `x${NUL}` }, { token: null }));
    record('login types', await t.api('POST', '/api/auth/login', { username: 1, password: [] }, { token: null }));

    const fives = results.filter((r) => r.status >= 500);
    expect(fives, JSON.stringify(fives, null, 1).slice(0, 4000)).toEqual([]);
    expect(results.length).toBeGreaterThan(300);

    const all = await t.api('GET', '/api/alpha/widgets?limit=500&fields=code,name');
    const after = await counts();
    const ok = (pattern: RegExp, status: number) => results.filter((r) => pattern.test(r.what) && r.status === status).length;
    const accepted = results.filter((r) => /^(POST|PATCH|DELETE) /.test(r.what) && r.status < 300).length;
    // Exactly the accepted creates (201) and deletes (204; the hostile paths include a DELETE of a
    // real widget with junk query parameters, which is accepted) changed the widget count.
    expect(after.alpha_widgets - before.alpha_widgets).toBe(ok(/^POST /, 201) - ok(/^DELETE \/api\/alpha\/widgets/, 204));
    expect(after.alpha_parts).toBe(before.alpha_parts);
    // Each accepted write makes at most one audit row and one outbox event (none when a PATCH
    // changes nothing); rejected ones make none.
    expect(after.kubiki_audit - before.kubiki_audit).toBeLessThanOrEqual(accepted);
    expect(after.kubiki_audit - before.kubiki_audit).toBeGreaterThanOrEqual(ok(/^POST /, 201) + ok(/^DELETE /, 204));
    expect(after.kubiki_outbox - before.kubiki_outbox).toBe(after.kubiki_audit - before.kubiki_audit);
    // No stored name or code contains a NUL character.
    expect(all.body.data.length).toBe(after.alpha_widgets);
    for (const w of all.body.data as { code: string; name: string }[]) {
      expect(w.name.includes(NUL)).toBe(false);
      expect(w.code.includes(NUL)).toBe(false);
    }
  });

  it('answers 400 naming the field when a string holds a NUL character (PostgreSQL cannot store one)', async () => {
    const nul = { rule: 'nul-character' };
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('NUL-1', { name: 'a\u0000b' })), 400, 'validation-failed', { field: 'name', ...nul });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('NUL-2', { tags: ['ok', 'b\u0000'] })), 400, 'validation-failed', { field: 'tags.1', ...nul });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', '{"code": "NUL-3", "name": "\\u0000"}'), 400, 'validation-failed', { field: 'name', ...nul });
    await expectProblem(() => t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { name: '\u0000' }), 400, 'validation-failed', { field: 'name', ...nul });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?name=a%00'), 400, 'bad-query', { field: 'name', ...nul });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?q=%00'), 400, 'bad-query', { field: 'q', ...nul });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets/%00'), 400, 'bad-query', { field: 'path', ...nul });
    await expectProblem(() => t.api('POST', '/api/auth/login', { username: 'admin\u0000', password: 'x' }, { token: null }), 400, 'validation-failed', { field: 'username', ...nul });
  });

  it('refuses dates and filters PostgreSQL cannot hold as 400s', async () => {
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DR-1', { releasedOn: '0000-01-01' })), 400, 'validation-failed', { field: 'releasedOn', rule: 'format' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DR-2', { inspectedAt: '0000-06-01T00:00:00Z' })), 400, 'validation-failed', { field: 'inspectedAt', rule: 'format' });
    await expectProblem(() => t.api('POST', '/api/alpha/widgets', widget('DR-3', { inspectedAt: '2026-01-01T00:00:00-23:59' })), 400, 'validation-failed', { field: 'inspectedAt', rule: 'format' });
    const edge = await t.api('POST', '/api/alpha/widgets', widget('DR-4', { releasedOn: '0001-01-01', inspectedAt: '2026-01-01T00:00:00+14:00' }));
    expect(edge.status).toBe(201);
    expect(edge.body).toMatchObject({ releasedOn: '0001-01-01', inspectedAt: '2025-12-31T10:00:00.000Z' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?quantity=2147483648'), 400, 'bad-filter', { field: 'quantity', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?quantity[gte]=-2147483649'), 400, 'bad-filter', { field: 'quantity', rule: 'type' });
    expect((await t.api('GET', '/api/alpha/widgets?quantity[lte]=2147483647')).status).toBe(200);
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?releasedOn=2026-02-30'), 400, 'bad-filter', { field: 'releasedOn', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?releasedOn=0000-01-01'), 400, 'bad-filter', { field: 'releasedOn', rule: 'type' });
    await expectProblem(() => t.api('GET', '/api/alpha/widgets?inspectedAt[lt]=0000-01-01T00:00:00Z'), 400, 'bad-filter', { field: 'inspectedAt', rule: 'type' });
    const leap = await t.api('GET', '/api/alpha/widgets?releasedOn[gte]=2024-02-29&code=DR-4');
    expect(leap.status).toBe(200);
    expect(leap.body.data).toEqual([]);
    const forged = (s: string, v: unknown) => Buffer.from(JSON.stringify({ s, v: [v], id: '00000000-0000-4000-8000-000000000000' })).toString('base64url');
    for (const [sort, value] of [['quantity', 'abc'], ['quantity', 1e12], ['releasedOn', { x: 1 }], ['inspectedAt', '0000-99-99'], ['price', 'NaN'], ['code', 'a\u0000']] as const) {
      await expectProblem(() => t.api('GET', `/api/alpha/widgets?sort=${sort}&cursor=${forged(sort, value)}`), 400, 'bad-query', { field: 'cursor', rule: 'cursor' });
    }
  });
});
