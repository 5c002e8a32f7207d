// The route contract: every route the routers hold is in the OpenAPI document with request and
// response schemas; a malformed id on any `{id}` route never answers 5xx. (Every answer of a
// declared route is also checked against its schema by the test helper: checkResponses.)
import { validate, compileErrors } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

interface Operation {
  operationId?: string;
  parameters?: { name: string; in: string; schema?: { format?: string; enum?: string[] } }[];
  requestBody?: unknown;
  responses?: Record<string, { content?: Record<string, { schema?: unknown }> } | { $ref: string }>;
  'x-permission'?: string;
}
type Doc = { paths: Record<string, Record<string, Operation>>; 'x-error-codes': { code: string; status: number; title: string }[] };

let t: TestKubiki;
let doc: Doc;
beforeAll(async () => {
  t = await startKubiki({ enable: ['crm', 'finance'] });
  const res = await t.api<Doc>('GET', '/api/openapi.json');
  expect(res.status).toBe(200);
  doc = res.body;
});
afterAll(async () => t?.close());

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const operations = (): { path: string; method: string; op: Operation }[] =>
  Object.entries(doc.paths).flatMap(([path, item]) => METHODS.filter((m) => item[m]).map((method) => ({ path, method, op: item[method] })));

describe('OpenAPI covers every mounted route', () => {
  it('is a valid OpenAPI 3.1 document', async () => {
    const result = await validate(structuredClone(doc) as unknown as Parameters<typeof validate>[0]);
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
  });

  it('lists every error code: the core catalog and those the enabled plugins declare', async () => {
    expect(doc['x-error-codes']).toEqual(expect.arrayContaining([
      expect.objectContaining({ code: 'validation-failed', status: 400 }),
      expect.objectContaining({ code: 'finance.period-closed', status: 409, title: 'The fiscal period is closed' }),
    ]));
    // A plugin's declared code is what its problem responses carry.
    const period = await t.api('POST', '/api/finance/periods', { month: '2024-01' });
    expect((await t.api('POST', `/api/finance/periods/${period.body.id}/close`)).status).toBe(200);
    const refused = await t.api('POST', '/api/finance/entries', { date: '2024-01-10', lines: [{ account: '50', debit: '1.00' }, { account: '90.01', credit: '1.00' }] });
    expect(refused.body).toMatchObject({ status: 409, code: 'finance.period-closed', type: '/problems/finance.period-closed', field: 'date' });
  });

  it('lists every route the routers hold (core, plugins, entities)', () => {
    const missing = t.k.routeInventory()
      .map(({ method, path }) => ({ method: method.toLowerCase(), path: path.replace(/:([A-Za-z0-9_]+)/g, '{$1}') }))
      .filter(({ method, path }) => !doc.paths[path]?.[method])
      .map(({ method, path }) => `${method.toUpperCase()} ${path}`);
    expect([...new Set(missing)]).toEqual([]);
  });

  it('gives every operation an operationId, a permission and a response schema; bodies have schemas', () => {
    const ids = new Set<string>();
    const problems: string[] = [];
    for (const { path, method, op } of operations()) {
      const where = `${method.toUpperCase()} ${path}`;
      if (!op.operationId) problems.push(`${where}: no operationId`);
      else if (ids.has(op.operationId)) problems.push(`${where}: duplicate operationId ${op.operationId}`);
      else ids.add(op.operationId);
      const ok = Object.entries(op.responses ?? {}).filter(([status]) => Number(status) < 400);
      if (ok.length === 0) problems.push(`${where}: no success response`);
      for (const [status, response] of ok) {
        if ('$ref' in response || status === '204') continue;
        const content = response.content ?? {};
        if (Object.keys(content).length === 0) problems.push(`${where} ${status}: no content`);
        if (content['application/json'] && !content['application/json'].schema) problems.push(`${where} ${status}: no schema`);
      }
    }
    expect(problems).toEqual([]);
  });
});

describe('reports', () => {
  it('list their CSV as a text/csv answer of its own beside the JSON, not as a string branch of the JSON', async () => {
    const reports = operations().filter(({ path, op }) => path.includes('/reports/') && op.parameters?.some((p) => p.name === 'format' && p.schema?.enum?.includes('csv')));
    expect(reports.length).toBeGreaterThanOrEqual(7);
    for (const { path, op } of reports) {
      const ok = op.responses?.['200'] as { content?: Record<string, { schema?: { type?: string; anyOf?: unknown[] } }> };
      expect(Object.keys(ok.content ?? {}), path).toEqual(['application/json', 'text/csv']);
      expect(ok.content!['text/csv'].schema, path).toMatchObject({ type: 'string' });
      expect(ok.content!['application/json'].schema, path).toMatchObject({ type: 'object' });
    }
    // The answer with format=csv is still checked against (and passes) its declaration.
    const csv = await t.api('GET', '/api/finance/reports/trial-balance?format=csv');
    expect(csv.status).toBe(200);
  });
});

describe('malformed ids', () => {
  it('answer 404 or 400 on every route with an {id}, never 5xx', async () => {
    const failures: string[] = [];
    let tried = 0;
    for (const { path, method, op } of operations()) {
      const params = op.parameters?.filter((p) => p.in === 'path') ?? [];
      // Routes keyed by a record id; {plugin}/{entity} alone name an entity, not a record.
      if (!params.some((p) => p.name === 'id' || p.schema?.format === 'uuid')) continue;
      // urn:uuid:… passes ajv-formats' uuid but not a PostgreSQL uuid column (a fuzzer's find).
      for (const bad of ['0', 'not-a-uuid', "1'--", 'urn:uuid:01234567-89ab-7def-8123-456789abcdef']) {
        const url = path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
          const p = params.find((x) => x.name === name);
          if (name === 'id' || p?.schema?.format === 'uuid') return bad;
          if (p?.schema?.enum?.length) return p.schema.enum[0];
          return name === 'plugin' ? 'base' : name === 'entity' ? 'organizations' : 'x';
        });
        const res = await t.api(method.toUpperCase(), url, ['post', 'put', 'patch'].includes(method) ? {} : undefined);
        tried++;
        if (res.status >= 500) failures.push(`${method.toUpperCase()} ${url}: ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`);
        else if (res.status < 400) failures.push(`${method.toUpperCase()} ${url}: answered ${res.status}`);
      }
    }
    expect(tried).toBeGreaterThan(50);
    expect(failures).toEqual([]);
  });
});

describe('ids in bodies', () => {
  it('refuse the urn:uuid: form in a reference field with a 400 naming it, nothing written', async () => {
    const res = await t.api('POST', '/api/base/people', { firstName: 'Urn', lastName: 'Uuid', organization: 'urn:uuid:01234567-89ab-7def-8123-456789abcdef' });
    expect(res.status).toBe(400);
    expect(res.body.field).toBe('organization');
    expect((await t.api('GET', '/api/base/people?lastName=Uuid')).body.data).toEqual([]);
  });
});
