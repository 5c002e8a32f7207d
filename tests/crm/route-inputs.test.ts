import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { MALFORMED_IDS, bodyProperties, call, wrongValue } from '../helpers/route-probes.ts';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';
import { counts, created, organization, startCrm } from './crm-helpers.ts';

// Every CRM route is declared (method, path, operationId, schemas) and the core checks its input
// before the handler runs: a malformed id is a 404 naming the parameter, an unknown or malformed
// query parameter a 400 bad-query naming it, an unknown or ill-typed body field a 400
// validation-failed naming it, and nothing is written. Driven by the routes' own declarations.

type Spec = RouteSpec<unknown, unknown, unknown>;

let t: TestKubiki;
let specs: Spec[];
const SAMPLE = '00000000-0000-7000-8000-000000000000';

beforeAll(async () => {
  t = await startCrm();
  specs = (t.k.plugins.routes.get('crm') ?? []) as Spec[];
});
afterAll(async () => t?.close());

const paramsOf = (spec: Spec): string[] => [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
/** The route's URL with every path parameter `SAMPLE`, or `bad` in `param`. */
const urlOf = (spec: Spec, param?: string, bad?: string): string =>
  `/api/crm${spec.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(name === param ? bad! : SAMPLE))}`;

async function expectRefused(request: () => Promise<ApiResponse>, status: number, code: string, issue: { field: string; rule?: string }): Promise<void> {
  const before = await counts(t);
  const res = await request();
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, ...issue });
  expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining(issue)]));
  expect(await counts(t)).toEqual(before);
}

describe('CRM routes', () => {
  it('are all declared: operationId, summary, permission, schemas, and in OpenAPI', async () => {
    expect(specs.map((s) => `${s.method.toUpperCase()} ${s.path}`).sort()).toEqual([
      'GET /customers/:organizationId/card', 'GET /customers/:organizationId/timeline', 'GET /leads/:id/duplicates',
      'GET /mailings/:id/recipients', 'GET /my-day', 'GET /reports/activity', 'GET /reports/forecast', 'GET /reports/funnel',
      'GET /reports/pipeline', 'GET /reports/won-lost', 'POST /leads/:id/qualify', 'POST /mailings/:id/send', 'POST /quotes/:id/recalculate',
    ]);
    for (const spec of specs) {
      expect(spec, spec.path).toMatchObject({ operationId: expect.any(String), summary: expect.any(String), permission: expect.stringMatching(/^crm\./) });
      expect(spec.schemas.responses[200], spec.path).toBeDefined();
      // Every GET says which query parameters it takes (none refuses any).
      if (spec.method === 'get') expect(spec.schemas.query, spec.path).toBeDefined();
    }
    const doc = (await t.api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, { operationId: string; 'x-permission': string; tags: string[] }>> };
    for (const spec of specs) {
      const op = doc.paths[`/api/crm${spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')}`]?.[spec.method];
      expect(op, spec.path).toMatchObject({ tags: ['crm'], 'x-permission': spec.permission, operationId: expect.stringMatching(/^crm[A-Z]/) });
    }
  });

  it('answer a malformed path id with 404 naming it, writing nothing', async () => {
    const withParams = specs.filter((s) => paramsOf(s).length > 0);
    expect(withParams).toHaveLength(7);
    for (const spec of withParams) {
      for (const param of paramsOf(spec)) {
        for (const bad of [...MALFORMED_IDS, `urn:uuid:${SAMPLE}`, `${SAMPLE}0`]) {
          await expectRefused(() => call(t, spec, urlOf(spec, param, bad)), 404, 'not-found', { field: param });
        }
      }
    }
  });

  it('answer a well-formed id of no record with the handler\'s 404', async () => {
    for (const spec of specs.filter((s) => paramsOf(s).length > 0)) {
      const res = await call(t, spec, urlOf(spec));
      expect(res.body, spec.path).toMatchObject({ status: 404, code: 'not-found' });
    }
  });

  it('refuse an unknown query parameter with 400 bad-query naming it', async () => {
    for (const spec of specs.filter((s) => s.method === 'get')) {
      await expectRefused(() => call(t, spec, `${urlOf(spec)}?colour=red`), 400, 'bad-query', { field: 'colour', rule: 'unknown-parameter' });
    }
  });

  it('refuse a body on routes that take none, and an unknown body field on qualify, writing nothing', async () => {
    const lead = await created(t, '/api/crm/leads', { name: 'Body probe', company: 'Probe LLC' });
    const segment = await created(t, '/api/crm/segments', { name: `Probe ${Date.now()}`, segment: 'probe' });
    const mailing = await created(t, '/api/crm/mailings', { title: 'Probe', segment: segment.id, subject: 'Hi', body: 'Hi' });
    const org = await organization(t);
    const quote = await created(t, '/api/crm/quotes', { organization: org.id, lines: [{ description: 'x', quantity: '1', price: '1', vatRate: '22' }] });
    await t.k.workflowRuntime.settle();
    await expectRefused(() => t.api('POST', `/api/crm/mailings/${mailing.id}/send`, { now: true }), 400, 'validation-failed', { field: 'now', rule: 'unknown-field' });
    await expectRefused(() => t.api('POST', `/api/crm/quotes/${quote.id}/recalculate`, { force: 1 }), 400, 'validation-failed', { field: 'force', rule: 'unknown-field' });
    await expectRefused(() => t.api('POST', `/api/crm/leads/${lead.id}/qualify`, { dealTitle: 'x', stage: 'won' }), 400, 'validation-failed', { field: 'stage' });
    expect((await t.api('GET', `/api/crm/mailings/${mailing.id}`)).body.status).toBe('draft');
    expect((await t.api('GET', `/api/crm/leads/${lead.id}`)).body.status).toBe('new');
  });

  it('refuse a qualify body field of the wrong type naming it, before anything is written', async () => {
    const lead = await created(t, '/api/crm/leads', { name: 'Type probe', company: 'Types LLC' });
    const spec = specs.find((s) => s.operationId === 'qualifyLead')!;
    const fields = Object.entries(bodyProperties(spec));
    expect(fields.map(([name]) => name).sort()).toEqual(['amount', 'currency', 'dealTitle', 'expectedCloseDate', 'organization']);
    for (const [field, schema] of fields) {
      const value = wrongValue(schema);
      await expectRefused(() => t.api('POST', `/api/crm/leads/${lead.id}/qualify`, { [field]: value }), 400, 'validation-failed', { field });
    }
    // A well-formed organization id of no organization: the handler's check, still naming the field.
    await expectRefused(() => t.api('POST', `/api/crm/leads/${lead.id}/qualify`, { organization: SAMPLE }), 400, 'reference-not-found', { field: 'organization', rule: 'exists' });
    expect((await t.api('GET', `/api/crm/leads/${lead.id}`)).body.status).toBe('new');
  });

  it('refuse malformed query values with 400 bad-query naming the parameter', async () => {
    const cases: [string, string][] = [
      ['/api/crm/reports/pipeline?owner=urn:uuid:00000000-0000-7000-8000-000000000000', 'owner'],
      ['/api/crm/reports/pipeline?owner=a&owner=b', 'owner'],
      ['/api/crm/reports/funnel?to=2026-13-01', 'to'],
      ['/api/crm/reports/won-lost?from=01.02.2026', 'from'],
      ['/api/crm/reports/forecast?pipeline=x', 'pipeline'],
      ['/api/crm/reports/activity?owner=1', 'owner'],
      ['/api/crm/reports/activity?pipeline=00000000-0000-7000-8000-000000000000', 'pipeline'],
      ['/api/crm/my-day?date=today', 'date'],
      [`/api/crm/mailings/${SAMPLE}/recipients?limit=501`, 'limit'],
      [`/api/crm/mailings/${SAMPLE}/recipients?limit=ten`, 'limit'],
      [`/api/crm/mailings/${SAMPLE}/recipients?cursor=${encodeURIComponent('a b')}`, 'cursor'],
      [`/api/crm/customers/${SAMPLE}/timeline?cursor=`, 'cursor'],
    ];
    const manager = await t.userWith(['crm.*']);
    for (const [url, field] of cases) {
      await expectRefused(() => t.api('GET', url, undefined, { token: manager.token }), 400, 'bad-query', { field });
    }
  });

  it('take well-formed query values (an upper-case id, a leap day)', async () => {
    const upper = SAMPLE.toUpperCase();
    for (const url of [`/api/crm/reports/pipeline?owner=${upper}&from=2028-02-29`, `/api/crm/reports/activity?owner=${upper}&to=2028-02-29`, '/api/crm/my-day?date=2028-02-29']) {
      const res = await t.api('GET', url);
      expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(200);
    }
    expect((await t.api('GET', '/api/crm/my-day?date=2028-02-29')).body).toEqual({ date: '2028-02-29', overdue: [], dueToday: [], calls: [] });
  });
});
