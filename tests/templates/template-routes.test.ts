import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { templateRoutes } from '../../core/http/routes/template-routes.ts';
import { MALFORMED_IDS, bodyProperties, bodyWith, call, requiredQuery, urlOf, wrongValue } from '../helpers/route-probes.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

// The declared template, document and company-profile routes refuse malformed input before their
// handlers run, through REST: a malformed id is a 404 naming it, an unknown query parameter and a
// body field of the wrong type are 400s naming them. Driven by the routes' own declarations.

let t: TestKubiki;
let specs: RouteSpec<unknown, unknown, unknown>[];
beforeAll(async () => {
  t = await startKubiki();
  specs = templateRoutes(t.k);
});
afterAll(() => t?.close());

describe('template and document routes', () => {
  it('are all mounted as declared routes', () => {
    const mounted = new Set(t.k.coreRoutes.map((r) => r.spec.operationId));
    expect(specs.map((s) => s.operationId).filter((id) => !mounted.has(id))).toEqual([]);
    expect(specs.map((s) => s.operationId)).toEqual(expect.arrayContaining(['listTemplates', 'getTemplate', 'saveTemplate', 'previewTemplate', 'renderTemplate', 'getDocumentContent', 'putCompanyProfile']));
  });

  it('answer a malformed id with 404 naming it on every :id route, never 5xx', async () => {
    const withId = specs.filter((s) => s.path.includes(':id'));
    expect(withId.length).toBe(10);
    const wrong: string[] = [];
    for (const spec of withId) {
      for (const bad of MALFORMED_IDS) {
        const res = await call(t, spec, urlOf(spec, bad));
        if (res.status !== 404 || res.body?.code !== 'not-found' || res.body?.field !== 'id') wrong.push(`${spec.method} ${urlOf(spec, bad)}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }
    expect(wrong).toEqual([]);
  });

  it('refuse an unknown query parameter with 400 naming it', async () => {
    const withQuery = specs.filter((s) => s.schemas.query);
    expect(withQuery.map((s) => s.operationId).sort()).toEqual(['diffTemplate', 'getTemplate', 'listDocuments']);
    for (const spec of withQuery) {
      const query = requiredQuery(spec);
      query.set('colour', 'red');
      const res = await call(t, spec, `${urlOf(spec)}?${query}`);
      expect(res.body, spec.operationId).toMatchObject({ status: 400, code: 'bad-query', field: 'colour', rule: 'unknown-parameter' });
      expect(res.body.detail).toContain('colour');
    }
  });

  it('refuse typed query parameters out of range, naming them', async () => {
    expect((await t.api('GET', '/api/documents?limit=501')).body).toMatchObject({ status: 400, field: 'limit' });
    expect((await t.api('GET', '/api/documents?limit=ten')).body).toMatchObject({ status: 400, field: 'limit' });
    expect((await t.api('GET', '/api/documents?entity=Not%20an%20entity')).body).toMatchObject({ status: 400, field: 'entity' });
    expect((await t.api('GET', '/api/templates/base.organization-card?version=0')).body).toMatchObject({ status: 400, field: 'version' });
    expect((await t.api('GET', '/api/templates/base.organization-card/diff?from=1&to=x')).body).toMatchObject({ status: 400, field: 'to' });
  });

  it('refuse a body field of the wrong type with 400 naming it, writing nothing', async () => {
    const withBody = specs.filter((s) => Object.keys(bodyProperties(s)).length > 0);
    expect(withBody.map((s) => s.operationId).sort()).toEqual(['previewTemplate', 'publishTemplate', 'putCompanyProfile', 'renderTemplate', 'rollbackTemplate', 'saveTemplate']);
    const audit = await t.count('kubiki_audit');
    for (const spec of withBody) {
      for (const [field, schema] of Object.entries(bodyProperties(spec))) {
        const value = wrongValue(schema);
        if (value === undefined) continue;
        const res = await call(t, spec, urlOf(spec), bodyWith(spec, field, value));
        expect(res.body, `${spec.operationId} ${field}`).toMatchObject({ status: 400, code: 'validation-failed', field });
      }
    }
    expect(await t.count('kubiki_audit')).toBe(audit);
  });

  it('take no body where none is declared, and an optional one may be left out', async () => {
    const list = await t.api('GET', '/api/templates');
    expect(list.status).toBe(200);
    const id = list.body.data[0].id as string;
    // publish {version?}: no body publishes the latest version.
    expect((await t.api('POST', `/api/templates/${id}/publish`)).status).toBe(200);
    expect((await t.api('POST', `/api/templates/${id}/publish`, { version: 1, force: true })).body).toMatchObject({ status: 400, field: 'force' });
    expect((await t.api('POST', `/api/templates/${id}/publish`, '[1]')).body).toMatchObject({ status: 400, field: '' });
  });
});
