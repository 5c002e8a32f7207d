// The webhook routes are declared and the core checks their input before a handler runs: a
// malformed id is a 404 naming it, an unknown query parameter a 400 bad-query, an ill-typed body
// field a 400 validation-failed naming it — and nothing is written. Driven by the declarations.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { MALFORMED_IDS, bodyProperties, bodyWith, call, wrongValue } from '../helpers/route-probes.ts';
import { startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

type Spec = RouteSpec<unknown, unknown, unknown>;
const SAMPLE = '00000000-0000-7000-8000-000000000000';

let t: TestKubiki;
let specs: Spec[];
beforeAll(async () => {
  t = await startKubiki({ config: { workflowHttpAllow: ['127.0.0.1'] } });
  specs = t.k.coreRoutes.filter((r) => r.fullPath.startsWith('/api/webhooks')).map((r) => r.spec);
});
afterAll(async () => t?.close());

const paramsOf = (spec: Spec): string[] => [...spec.path.matchAll(/:([A-Za-z0-9_]+)/g)].map((m) => m[1]);
const urlOf = (spec: Spec, param?: string, bad?: string): string =>
  spec.path.replace(/:([A-Za-z0-9_]+)/g, (_m, name: string) => encodeURIComponent(name === param ? bad! : SAMPLE));

const TABLES = ['kubiki_webhooks', 'kubiki_webhook_deliveries', 'kubiki_webhook_attempts', 'kubiki_audit'];
async function counts(): Promise<number[]> {
  return Promise.all(TABLES.map((table) => t.count(table)));
}

async function expectRefused(request: () => Promise<ApiResponse>, status: number, code: string, issue: { field: string; rule?: string }): Promise<void> {
  const before = await counts();
  const res = await request();
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code });
  expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining(issue)]));
  expect(await counts()).toEqual(before);
}

describe('webhook routes', () => {
  it('are declared with operationId, permission and schemas, and listed in OpenAPI', async () => {
    expect(specs.map((s) => `${s.method.toUpperCase()} ${s.path}`).sort()).toEqual([
      'DELETE /api/webhooks/:id', 'GET /api/webhooks', 'GET /api/webhooks/:id', 'GET /api/webhooks/:id/deliveries', 'GET /api/webhooks/:id/deliveries/:deliveryId',
      'PATCH /api/webhooks/:id', 'POST /api/webhooks', 'POST /api/webhooks/:id/deliveries/:deliveryId/replay', 'POST /api/webhooks/:id/replay', 'POST /api/webhooks/:id/rotate-secret',
    ]);
    const doc = (await t.api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, { operationId: string; 'x-permission': string }>> };
    for (const spec of specs) {
      expect(spec.permission, spec.path).toMatch(/^core\.webhooks\.(read|manage)$/);
      const op = doc.paths[spec.path.replace(/:([A-Za-z0-9_]+)/g, '{$1}')]?.[spec.method];
      expect(op, spec.path).toMatchObject({ operationId: spec.operationId, 'x-permission': spec.permission });
    }
  });

  it('answer a malformed id with 404 naming it; a well-formed unknown one with the handler\'s 404', async () => {
    for (const spec of specs.filter((s) => paramsOf(s).length > 0)) {
      for (const param of paramsOf(spec)) {
        for (const bad of [...MALFORMED_IDS, `${SAMPLE}0`]) {
          await expectRefused(() => call(t, spec, urlOf(spec, param, bad), spec.schemas.body ? bodyWith(spec, 'x', undefined) : undefined), 404, 'not-found', { field: param });
        }
      }
      if (spec.method !== 'post' || !spec.schemas.body || spec.path.endsWith('rotate-secret')) {
        const res = await call(t, spec, urlOf(spec), spec.path.endsWith('/replay') && !spec.path.includes('deliveries') ? { deliveryIds: [SAMPLE] } : spec.method === 'patch' ? { active: true } : undefined);
        expect(res.body, spec.path).toMatchObject({ status: 404, code: 'not-found' });
      }
    }
  });

  it('refuse an unknown query parameter and ill-typed body fields, naming them', async () => {
    for (const spec of specs.filter((s) => s.method === 'get')) {
      await expectRefused(() => call(t, spec, `${urlOf(spec)}?colour=red`), 400, 'bad-query', { field: 'colour', rule: 'unknown-parameter' });
    }
    for (const spec of specs.filter((s) => s.schemas.body)) {
      for (const [field, schema] of Object.entries(bodyProperties(spec))) {
        const wrong = wrongValue(schema);
        if (wrong === undefined) continue;
        await expectRefused(() => call(t, spec, urlOf(spec), bodyWith(spec, field, wrong)), 400, 'validation-failed', { field });
      }
      await expectRefused(() => call(t, spec, urlOf(spec), bodyWith(spec, 'colour', 'red')), 400, 'validation-failed', { field: 'colour' });
    }
  });
});
