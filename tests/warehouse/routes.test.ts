// Every warehouse route is declared as data: in OpenAPI with its schemas, refusing malformed input
// before its handler (a malformed id is a 404 naming it, an unknown query parameter or a body field
// of the wrong type a 400 naming it) with nothing written; the plugin's roles work as shipped;
// disabling the plugin hides its routes and keeps every row.
import { validate, compileErrors } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { MALFORMED_IDS, bodyProperties, bodyWith, call, requiredQuery, urlOf, wrongValue } from '../helpers/route-probes.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { CUSTOMERS, SUPPLIERS, ok, product, receive, snapshot, warehouse, type Place } from './helpers.ts';

type Spec = RouteSpec<unknown, unknown, unknown>;
let t: TestKubiki;
let specs: Spec[];
let w: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  specs = (t.k.plugins.routes.get('warehouse') ?? []).filter((r): r is Spec => 'schemas' in r);
  w = await warehouse(t);
}, 180_000);
afterAll(() => t?.close());

/** A plugin route's path is relative to /api/warehouse. */
const under = (url: string) => `/api/warehouse${url}`;

describe('declared routes', () => {
  it('are all in the OpenAPI document, which is valid', async () => {
    const doc = ok(await t.api('GET', '/api/openapi.json'));
    const missing = specs.filter((s) => !doc.paths[`/api/warehouse${s.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`]?.[s.method]).map((s) => `${s.method} ${s.path}`);
    expect(missing).toEqual([]);
    expect(specs.length).toBeGreaterThanOrEqual(30);
    expect(doc['x-error-codes']).toEqual(expect.arrayContaining([
      expect.objectContaining({ code: 'warehouse.insufficient-stock', status: 409 }),
      expect.objectContaining({ code: 'warehouse.period-closed', status: 409 }),
      expect.objectContaining({ code: 'warehouse.serial-in-stock', status: 409 }),
    ]));
    const result = await validate(structuredClone(doc));
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
  });

  it('answer a malformed id with 404 naming it, never 5xx', async () => {
    const before = await snapshot(t);
    const wrong: string[] = [];
    for (const spec of specs.filter((s) => s.path.includes(':id'))) {
      for (const bad of MALFORMED_IDS) {
        const url = under(urlOf(spec, bad));
        const res = await call(t, spec, url);
        if (res.status !== 404 || res.body?.field !== 'id' || !String(res.headers.get('content-type')).startsWith('application/problem+json')) wrong.push(`${spec.method} ${url}: ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`);
      }
    }
    expect(wrong).toEqual([]);
    expect(await snapshot(t)).toEqual(before);
  });

  it('refuse an unknown query parameter with 400 naming it', async () => {
    const withQuery = specs.filter((s) => s.schemas.query);
    expect(withQuery.length).toBeGreaterThanOrEqual(8);
    for (const spec of withQuery) {
      const query = requiredQuery(spec);
      query.set('colour', 'red');
      const res = await call(t, spec, `${under(urlOf(spec))}?${query}`);
      expect(res.body, spec.operationId).toMatchObject({ status: 400, code: 'bad-query', field: 'colour', rule: 'unknown-parameter' });
    }
    expect((await t.api('GET', '/api/warehouse/reports/stock-on-hand?asOf=2026-13-01')).body).toMatchObject({ status: 400, field: 'asOf' });
    expect((await t.api('GET', '/api/warehouse/reports/slow-movers?days=0')).body).toMatchObject({ status: 400, field: 'days' });
    expect((await t.api('GET', '/api/warehouse/reports/stock-ledger')).body).toMatchObject({ status: 400, field: 'product' });
    expect((await t.api('GET', '/api/warehouse/reports/movements?kind=teleport')).body).toMatchObject({ status: 400, field: 'kind', rule: 'enum' });
    expect((await t.api('GET', '/api/warehouse/reports/valuation?format=xml')).body).toMatchObject({ status: 400, field: 'format' });
  });

  it('refuse a body field of the wrong type with 400 naming it, writing nothing', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '5', '1.00');
    const before = await snapshot(t);
    const withBody = specs.filter((s) => Object.keys(bodyProperties(s)).length > 0);
    expect(withBody.length).toBeGreaterThanOrEqual(9);
    const wrong: string[] = [];
    for (const spec of withBody) {
      for (const [field, schema] of Object.entries(bodyProperties(spec))) {
        const value = wrongValue(schema);
        if (value === undefined) continue;
        const res = await call(t, spec, under(urlOf(spec)), bodyWith(spec, field, value));
        // The sample values of the other required fields may fail too: the probed field is among the errors.
        const named = res.body?.field === field || (res.body?.errors ?? []).some((e: { field: string }) => e.field === field);
        if (res.status !== 400 || !named) wrong.push(`${spec.operationId} ${field}: ${res.status} ${JSON.stringify(res.body).slice(0, 160)}`);
      }
    }
    expect(wrong).toEqual([]);
    // Deeper: items of a batch, quantities, dates, unknown fields, a body where none is taken.
    const good = { kind: 'shipment', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: CUSTOMERS };
    const cases: [string, string, unknown, string, string?][] = [
      ['POST', '/api/warehouse/moves', { ...good, quantity: '0' }, 'quantity', 'pattern'],
      ['POST', '/api/warehouse/moves', { ...good, quantity: '-1' }, 'quantity', 'pattern'],
      ['POST', '/api/warehouse/moves', { ...good, quantity: 1 }, 'quantity', 'type'],
      ['POST', '/api/warehouse/moves', { ...good, quantity: '1.0001' }, 'quantity', 'pattern'],
      ['POST', '/api/warehouse/moves', { ...good, date: '2026-02-30' }, 'date', 'format'],
      ['POST', '/api/warehouse/moves', { ...good, kind: 'teleport' }, 'kind', 'enum'],
      ['POST', '/api/warehouse/moves', { ...good, colour: 'red' }, 'colour'],
      ['POST', '/api/warehouse/moves', { ...good, product: 'P-1' }, 'product', 'format'],
      ['POST', '/api/warehouse/moves', { ...good, serials: ['a', 'a'] }, 'serials', 'uniqueItems'],
      ['POST', '/api/warehouse/moves', { ...good, source: { entity: 'Orders', id: '1' } }, 'source.entity', 'pattern'],
      ['POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '1', fromLocation: w.bins[0] }, 'toLocation', 'required'],
      ['POST', '/api/warehouse/moves/batch', { moves: [good, { ...good, quantity: 'lots' }] }, 'moves.1.quantity', 'pattern'],
      ['POST', '/api/warehouse/moves/batch', { moves: [] }, 'moves', 'minItems'],
      ['POST', '/api/warehouse/reservations', { product: p, warehouse: w.id, quantity: '1' }, 'demand', 'required'],
      ['POST', '/api/warehouse/reservations', { product: p, warehouse: w.id, quantity: '1', demand: { entity: 'sales.orders' } }, 'demand.id', 'required'],
      ['POST', '/api/warehouse/reservations/batch', { reservations: [{ product: p, quantity: 'x', demand: { entity: 'a.b', id: '1' } }] }, 'reservations.0.quantity', 'pattern'],
      ['POST', '/api/warehouse/periods', { date: 'yesterday' }, 'date', 'format'],
      ['POST', '/api/warehouse/periods', { date: '2099-01-01' }, 'date', 'past'],
      ['POST', '/api/warehouse/warehouses', { code: 7, name: 'x' }, 'code', 'type'],
      ['POST', '/api/warehouse/warehouses', { code: 'W', name: 'x', reservationPolicy: 'maybe' }, 'reservationPolicy', 'enum'],
      ['POST', '/api/warehouse/warehouses', { code: 'W', name: 'x', location: w.root }, 'location', 'read-only'],
      ['POST', '/api/warehouse/products', { product: p, tracking: 'dna' }, 'tracking', 'enum'],
      ['POST', '/api/warehouse/products', { product: p, purchaseFactor: 12 }, 'purchaseFactor', 'type'],
      ['POST', '/api/warehouse/locations', { code: 'X', name: 'x', type: 'warp', parent: w.root }, 'type', 'enum'],
      ['POST', '/api/warehouse/lots', { product: p }, 'number', 'required'],
      ['POST', `/api/warehouse/counts/${w.root}/lines`, { lines: [{ product: p, counted: '-1' }] }, 'lines.0.counted', 'pattern'],
      ['POST', `/api/warehouse/moves/${w.root}/cancel`, { force: true }, 'force'],
    ];
    for (const [method, path, body, field, rule] of cases) {
      const res = await t.api(method, path, body);
      expect(res.status, `${path} ${JSON.stringify(body)} → ${JSON.stringify(res.body)}`).toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(res.body, `${path} ${field}`).toMatchObject({ field, ...(rule ? { rule } : {}) });
    }
    expect(await snapshot(t)).toEqual(before);
  });
});

describe('roles', () => {
  it('a storekeeper posts and reserves; a stock-viewer only reads; neither closes periods', async () => {
    const keeper = await t.userWith(['warehouse.*.read', 'warehouse.moves.post', 'warehouse.reservations.reserve', 'warehouse.reports.read', 'base.products.read']);
    const viewer = await t.userWith(['warehouse.*.read', 'warehouse.reports.read']);
    const p = await product(t);
    const r = await t.api('POST', '/api/warehouse/moves', { kind: 'receipt', product: p, quantity: '2', fromLocation: SUPPLIERS, toLocation: w.bins[0], unitCost: '1.00' }, { token: keeper.token });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    // The audit trail names who posted it.
    const audit = await t.k.db.table('kubiki_audit').where({ plugin: 'warehouse', entity: 'moves', record_id: r.body.id }).first('actor_id');
    expect(audit.actor_id).toBe(keeper.id);
    expect((await t.api('POST', '/api/warehouse/reservations', { product: p, warehouse: w.id, quantity: '1', demand: { entity: 'sales.orders', id: 'R-1' } }, { token: keeper.token })).status).toBe(201);
    expect((await t.api('POST', '/api/warehouse/moves', { kind: 'shipment', product: p, quantity: '1', fromLocation: w.bins[0], toLocation: CUSTOMERS }, { token: viewer.token })).body).toMatchObject({ status: 403, permission: 'warehouse.moves.post' });
    expect((await t.api('POST', '/api/warehouse/periods', { date: '2026-01-31' }, { token: keeper.token })).status).toBe(403);
    expect((await t.api('GET', '/api/warehouse/reports/stock-on-hand', undefined, { token: viewer.token })).status).toBe(200);
    const roles = ok(await t.api('GET', '/api/roles')).data.map((x: { name: string }) => x.name);
    expect(roles).toEqual(expect.arrayContaining(['storekeeper', 'stock-manager', 'stock-viewer']));
  });
});

describe('plugin lifecycle', () => {
  it('disabling warehouse hides its routes and keeps its data; enabling it again brings both back', async () => {
    const p = await product(t);
    const moved = await receive(t, p, w.bins[0], '3', '2.00');
    const before = await snapshot(t);
    ok(await t.api('POST', '/api/plugins/warehouse/disable'));
    for (const [method, path] of [['GET', '/api/warehouse/moves'], ['POST', '/api/warehouse/moves'], ['GET', '/api/warehouse/reports/stock-on-hand'], ['GET', `/api/warehouse/moves/${moved.id}`], ['POST', '/api/warehouse/reservations']]) {
      const res = await t.api(method, path, method === 'POST' ? {} : undefined);
      expect(res.status, `${method} ${path}`).toBe(404);
    }
    const doc = ok(await t.api('GET', '/api/openapi.json'));
    expect(Object.keys(doc.paths).filter((k) => k.startsWith('/api/warehouse/'))).toEqual([]);
    const after = await snapshot(t);
    // Disabling is audited; nothing of the warehouse's went.
    expect({ ...after, kubiki_audit: before.kubiki_audit }).toEqual(before);
    ok(await t.api('POST', '/api/plugins/warehouse/enable'));
    expect(ok(await t.api('GET', `/api/warehouse/moves/${moved.id}`)).quantity).toBe('3.000');
    expect(ok(await t.api('GET', `/api/warehouse/availability?product=${p}&location=${w.root}`)).onHand).toBe('3.000');
  });
});
