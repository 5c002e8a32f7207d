import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'] });
});
afterAll(() => t?.close());

const widget = (code: string, extra: Record<string, unknown> = {}) => ({ code, name: `Widget ${code}`, ...extra });

describe('records over REST', () => {
  it('creates, reads, updates and deletes a record with every field kind', async () => {
    const org = await t.api('POST', '/api/base/organizations', { name: 'Acme', inn: '7707083893' });
    expect(org.status).toBe(201);
    const created = await t.api('POST', '/api/alpha/widgets', widget('W-1', {
      price: '1234.5', quantity: 3, releasedOn: '2026-01-31', inspectedAt: '2026-02-01T10:00:00+03:00', color: 'red', tags: ['a', 'b'], organization: org.body.id,
    }));
    expect(created.status).toBe(201);
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.headers.get('location')).toBe(`/api/alpha/widgets/${created.body.id}`);
    expect(created.body).toMatchObject({
      version: 1, code: 'W-1', price: '1234.50', quantity: 3, releasedOn: '2026-01-31', inspectedAt: '2026-02-01T07:00:00.000Z', active: true, tags: ['a', 'b'], organization: org.body.id,
    });

    // The audit trail and the event hold the values as stored ("1234.50", UTC), not as typed.
    const [audit] = (await t.api('GET', `/api/audit?entity=alpha.widgets&id=${created.body.id}`)).body.data;
    expect(audit.changes).toMatchObject({ price: { before: null, after: '1234.50' }, inspectedAt: { after: '2026-02-01T07:00:00.000Z' }, active: { after: true } });
    const [event] = await t.k.db.table('kubiki_outbox').where({ record_id: created.body.id });
    expect(event).toMatchObject({ event: 'alpha.widgets.created', payload: { changes: audit.changes } });

    const read = await t.api('GET', `/api/alpha/widgets/${created.body.id}?expand=organization`);
    expect(read.status).toBe(200);
    expect(read.body.organization).toMatchObject({ id: org.body.id, name: 'Acme' });

    const patched = await t.api('PATCH', `/api/alpha/widgets/${created.body.id}`, { price: '99.99', color: null }, { headers: { 'if-match': '"1"' } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ version: 2, price: '99.99' });
    expect(patched.body.color).toBeUndefined();

    const gone = await t.api('DELETE', `/api/alpha/widgets/${created.body.id}`);
    expect(gone.status).toBe(204);
    expect((await t.api('GET', `/api/alpha/widgets/${created.body.id}`)).status).toBe(404);
  });

  it('keeps decimals exact beyond float precision', async () => {
    const r = await t.api('POST', '/api/alpha/widgets', widget('W-BIG', { price: '9999999999.99' }));
    expect(r.body.price).toBe('9999999999.99');
    const over = await t.api('POST', '/api/alpha/widgets', widget('W-OVER', { price: '99999999999.00' }));
    expect(over.status).toBe(400);
    expect(over.body.errors[0]).toMatchObject({ field: 'price', rule: 'x-decimal' });
    const float = await t.api('POST', '/api/alpha/widgets', widget('W-FLT', { price: 1.1 }));
    expect(float.status).toBe(400);
    expect(float.body.errors[0]).toMatchObject({ field: 'price', rule: 'type' });
  });

  it('filters, sorts, searches, selects fields, counts and pages with a cursor', async () => {
    for (let i = 0; i < 12; i++) {
      const r = await t.api('POST', '/api/alpha/widgets', widget(`L-${String(i).padStart(2, '0')}`, { quantity: i, color: i % 2 ? 'green' : 'blue', price: `${i}.00` }));
      expect(r.status).toBe(201);
    }
    const green = await t.api('GET', '/api/alpha/widgets?color=green&quantity[gte]=5&sort=-quantity&withTotal=true');
    expect(green.status).toBe(200);
    expect(green.body.data.map((w: { quantity: number }) => w.quantity)).toEqual([11, 9, 7, 5]);
    expect(green.body.total).toBe(4);

    const inList = await t.api('GET', '/api/alpha/widgets?code[in]=L-01,L-02&fields=code');
    expect(inList.body.data.map((w: { code: string }) => w.code).sort()).toEqual(['L-01', 'L-02']);
    expect(Object.keys(inList.body.data[0]).sort()).toEqual(['code', 'id', 'version']);

    const search = await t.api('GET', '/api/alpha/widgets?q=widget%20l-1');
    expect(search.body.data.map((w: { code: string }) => w.code).sort()).toEqual(['L-10', 'L-11']);

    const priceRange = await t.api('GET', '/api/alpha/widgets?price[gt]=9.5&price[lte]=11&code[contains]=L-');
    expect(priceRange.body.data.map((w: { code: string }) => w.code).sort()).toEqual(['L-10', 'L-11']);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: { body: { data: { code: string }[]; next: string | null } } = await t.api('GET', `/api/alpha/widgets?code[contains]=L-&sort=-price&limit=5${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...page.body.data.map((w) => w.code));
      cursor = page.body.next;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(Array.from({ length: 12 }, (_, i) => `L-${String(11 - i).padStart(2, '0')}`));
  });

  it('pages correctly over null sort values', async () => {
    for (const [code, q] of [['N-1', 1], ['N-2', null], ['N-3', 2], ['N-4', null], ['N-5', 1]] as const) {
      await t.api('POST', '/api/alpha/widgets', widget(code, q === null ? {} : { quantity: q }));
    }
    for (const sort of ['quantity', '-quantity']) {
      const all = await t.api('GET', `/api/alpha/widgets?code[contains]=N-&sort=${sort}&limit=100`);
      const seen: string[] = [];
      let cursor: string | null = null;
      do {
        const page: { body: { data: { code: string }[]; next: string | null } } = await t.api('GET', `/api/alpha/widgets?code[contains]=N-&sort=${sort}&limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        seen.push(...page.body.data.map((w) => w.code));
        cursor = page.body.next;
      } while (cursor);
      expect(seen).toEqual(all.body.data.map((w: { code: string }) => w.code));
      expect(seen.slice(-2).sort()).toEqual(['N-2', 'N-4']);
    }
  });

  it('answers 412 to one of two PATCHes made with the same version', async () => {
    const w = await t.api('POST', '/api/alpha/widgets', widget('C-1', { quantity: 1 }));
    const [a, b] = await Promise.all([
      t.api('PATCH', `/api/alpha/widgets/${w.body.id}`, { quantity: 2 }, { headers: { 'if-match': '"1"' } }),
      t.api('PATCH', `/api/alpha/widgets/${w.body.id}`, { quantity: 3 }, { headers: { 'if-match': '"1"' } }),
    ]);
    expect([a.status, b.status].sort()).toEqual([200, 412]);
    const loser = a.status === 412 ? a : b;
    expect(loser.headers.get('content-type')).toContain('application/problem+json');
    expect(loser.body).toMatchObject({ code: 'version-mismatch', currentVersion: 2 });
    expect(await t.count('kubiki_audit', { entity: 'widgets', record_id: w.body.id, action: 'updated' })).toBe(1);
  });

  it('refuses to delete a record others reference, naming them', async () => {
    const w = await t.api('POST', '/api/alpha/widgets', widget('R-1'));
    const part = await t.api('POST', '/api/alpha/parts', { label: 'bolt', widget: w.body.id });
    expect(part.status).toBe(201);
    const del = await t.api('DELETE', `/api/alpha/widgets/${w.body.id}`);
    expect(del.status).toBe(409);
    expect(del.body.code).toBe('referenced');
    expect(del.body.referrers).toEqual([{ entity: 'alpha.parts', field: 'widget', count: 1, ids: [part.body.id] }]);
    expect((await t.api('GET', `/api/alpha/widgets/${w.body.id}`)).status).toBe(200);
  });

  it('reports a duplicate unique value and a dangling reference on the field', async () => {
    await t.api('POST', '/api/alpha/widgets', widget('U-1'));
    const dup = await t.api('POST', '/api/alpha/widgets', widget('U-1'));
    expect(dup.status).toBe(409);
    expect(dup.body).toMatchObject({ code: 'unique-violation', field: 'code' });
    const dangling = await t.api('POST', '/api/alpha/parts', { label: 'x', widget: '00000000-0000-4000-8000-000000000000' });
    expect(dangling.status).toBe(400);
    expect(dangling.body).toMatchObject({ code: 'reference-not-found', field: 'widget' });
  });
});
