// The import and export routes are declared (operationId, permission, schemas, OpenAPI) and the
// core checks their input before a handler runs: a malformed id or mapping name is a 404 naming it,
// an unknown query parameter a 400 naming it, an ill-typed mapping field a 400 naming it — nothing
// written.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { MALFORMED_IDS, call } from '../helpers/route-probes.ts';
import { startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';
import { shippedPlugins } from './import-helpers.ts';

type Spec = RouteSpec<unknown, unknown, unknown>;
const SAMPLE = '00000000-0000-7000-8000-000000000000';
const BAD_NAMES = ['Bad Name', '-starts-with-dash', 'UPPER', 'x'.repeat(101)];

let t: TestKubiki;
let specs: Spec[];
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [shippedPlugins()] });
  specs = t.k.coreRoutes.filter((r) => r.fullPath.startsWith('/api/imports') || r.fullPath.startsWith('/api/exports')).map((r) => r.spec);
}, 180_000);
afterAll(async () => t?.close());

const TABLES = ['kubiki_import_jobs', 'kubiki_import_files', 'kubiki_import_mappings', 'kubiki_audit'];
const counts = () => Promise.all(TABLES.map((table) => t.count(table)));
const urlOf = (spec: Spec, param?: string, bad?: string): string =>
  spec.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(name === param ? bad! : name === 'id' ? SAMPLE : name === 'name' ? 'some-mapping' : name === 'plugin' ? 'base' : 'organizations'));

async function expectRefused(request: () => Promise<ApiResponse>, status: number, code: string, issue: { field: string; rule?: string }): Promise<void> {
  const before = await counts();
  const res = await request();
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body).toMatchObject({ status, code });
  expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining(issue)]));
  expect(await counts()).toEqual(before);
}

describe('import routes', () => {
  it('are declared and listed in OpenAPI with their permission', async () => {
    expect(specs.map((s) => `${s.method.toUpperCase()} ${s.path}`).sort()).toEqual([
      'DELETE /api/imports/mappings/:name', 'GET /api/exports/:plugin/:entity', 'GET /api/imports', 'GET /api/imports/:id', 'GET /api/imports/:id/errors', 'GET /api/imports/:id/errors.csv',
      'GET /api/imports/mappings', 'GET /api/imports/mappings/:name', 'POST /api/imports', 'POST /api/imports/:id/cancel', 'POST /api/imports/:id/resume', 'POST /api/imports/:id/run', 'PUT /api/imports/mappings/:name',
    ]);
    const doc = (await t.api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, { operationId: string; 'x-permission': string }>> };
    for (const spec of specs) {
      const op = doc.paths[spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[spec.method];
      expect(op, spec.path).toMatchObject({ operationId: spec.operationId, 'x-permission': spec.permission });
    }
  });

  it('answer a malformed id or name with 404 naming it, a well-formed unknown one with the handler\'s 404', async () => {
    for (const spec of specs) {
      for (const param of [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1])) {
        const bad = param === 'id' ? [...MALFORMED_IDS, `${SAMPLE}0`] : param === 'name' ? BAD_NAMES : ['Base', '1x', 'a-b'];
        for (const value of bad) await expectRefused(() => call(t, spec, urlOf(spec, param, value), spec.method === 'put' ? { target: 'base.organizations' } : undefined), 404, 'not-found', { field: param });
      }
      if (spec.path.includes(':id') || (spec.path.includes(':name') && spec.method !== 'put')) {
        const res = await call(t, spec, urlOf(spec));
        expect(res.body, spec.path).toMatchObject({ status: 404, code: 'not-found' });
      }
    }
  });

  it('refuse an unknown query parameter and an ill-typed mapping, naming them', async () => {
    for (const spec of specs.filter((s) => s.method === 'get' && !s.path.startsWith('/api/exports'))) {
      await expectRefused(() => call(t, spec, `${urlOf(spec)}?colour=red`), 400, 'bad-query', { field: 'colour', rule: 'unknown-parameter' });
    }
    // An export's other parameters are list filters: an unknown field is a bad filter.
    await expectRefused(() => t.api('GET', '/api/exports/base/organizations?colour=red'), 400, 'bad-filter', { field: 'colour' });
    await expectRefused(() => t.api('GET', '/api/exports/base/organizations?format=pdf'), 400, 'bad-query', { field: 'format' });
    await expectRefused(() => t.api('POST', '/api/imports?colour=red', 'name\nx\n', { headers: { 'content-type': 'text/csv' } }), 400, 'bad-query', { field: 'colour' });
    await expectRefused(() => t.api('POST', '/api/imports?batchSize=0', 'name\nx\n', { headers: { 'content-type': 'text/csv' } }), 400, 'bad-query', { field: 'batchSize' });
    await expectRefused(() => t.api('POST', '/api/imports', 'name\nx\n', { headers: { 'content-type': 'text/csv' } }), 400, 'validation-failed', { field: 'entity', rule: 'required' });
    // A JSON body is not a file: 415, nothing stored.
    const jobs = await counts();
    expect((await t.api('POST', '/api/imports?entity=base.organizations', { name: 'x' })).body).toMatchObject({ status: 415, code: 'unsupported-media-type' });
    expect(await counts()).toEqual(jobs);
    const put = specs.find((s) => s.method === 'put')!;
    for (const [body, field] of [
      [{}, 'target'], [{ target: 'Base.Orgs' }, 'target'], [{ target: 'base.organizations', columns: { A: 5 } }, 'columns.A'],
      [{ target: 'base.organizations', columns: { A: { field: 'name', transform: ['reverse'] } } }, 'columns.A.transform.0'],
      [{ target: 'base.organizations', options: { headerRow: 0 } }, 'options.headerRow'], [{ target: 'base.organizations', colour: 'red' }, 'colour'],
    ] as [unknown, string][]) {
      await expectRefused(() => call(t, put, urlOf(put), body), 400, 'validation-failed', { field });
    }
    await expectRefused(() => call(t, put, urlOf(put), { target: 'base.nothings' }), 404, 'unknown-entity', { field: 'entity' });
  });
});
