import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RouteSpec } from '../../core/http/route-contract.ts';
import { workflowDryRunRoutes } from '../../core/http/routes/workflow-dry-run-routes.ts';
import { workflowRoutes } from '../../core/http/routes/workflow-routes.ts';
import { workflowRunRoutes } from '../../core/http/routes/workflow-run-routes.ts';
import { MALFORMED_IDS, bodyProperties, bodyWith, call, requiredQuery, urlOf, wrongValue } from '../helpers/route-probes.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

// The declared workflow routes (definitions, instances, runs, webhooks, tasks, transitions, dry
// runs) refuse malformed input before their handlers run, through REST: a malformed id is a 404
// naming it, an unknown query parameter and a body field of the wrong type are 400s naming them.

let t: TestKubiki;
let specs: RouteSpec<unknown, unknown, unknown>[];
beforeAll(async () => {
  t = await startKubiki();
  specs = [...workflowRunRoutes(t.k), ...workflowRoutes(t.k), ...workflowDryRunRoutes(t.k)];
});
afterAll(() => t?.close());

describe('workflow routes', () => {
  it('are all mounted as declared routes, instances before the definitions\' /:id', () => {
    const mounted = t.k.coreRoutes.map((r) => r.spec.operationId);
    expect(specs.map((s) => s.operationId).filter((id) => !mounted.includes(id))).toEqual([]);
    expect(mounted.indexOf('listWorkflowInstances')).toBeLessThan(mounted.indexOf('getWorkflow'));
    expect(mounted.indexOf('workflowSchema')).toBeLessThan(mounted.indexOf('getWorkflow'));
  });

  it('answer a malformed id with 404 naming it on every :id route, never 5xx', async () => {
    const withId = specs.filter((s) => s.path.includes(':id'));
    expect(withId.length).toBe(19);
    const wrong: string[] = [];
    for (const spec of withId) {
      for (const bad of MALFORMED_IDS) {
        const res = await call(t, spec, urlOf(spec, bad));
        if (res.status !== 404 || res.body?.code !== 'not-found' || res.body?.field !== 'id') wrong.push(`${spec.method} ${urlOf(spec, bad)}: ${res.status} ${JSON.stringify(res.body).slice(0, 200)}`);
      }
    }
    expect(wrong).toEqual([]);
    // The webhook too, without a token; and a malformed transition name.
    expect((await t.api('POST', '/api/workflows/not-an-id/webhook', {}, { token: null })).body).toMatchObject({ status: 404, field: 'id' });
    expect((await t.api('POST', '/api/base/products/00000000-0000-7000-8000-000000000000/transitions/Not%20one')).body).toMatchObject({ status: 404, field: 'name' });
  });

  it('refuse an unknown query parameter with 400 naming it', async () => {
    const withQuery = specs.filter((s) => s.schemas.query);
    expect(withQuery.map((s) => s.operationId).sort()).toEqual(['diffWorkflow', 'getWorkflow', 'listMyTasks', 'listWorkflowInstances', 'workflowDiagram']);
    for (const spec of withQuery) {
      const query = requiredQuery(spec);
      query.set('colour', 'red');
      const res = await call(t, spec, `${urlOf(spec)}?${query}`);
      expect(res.body, spec.operationId).toMatchObject({ status: 400, code: 'bad-query', field: 'colour', rule: 'unknown-parameter' });
    }
  });

  it('refuse typed query parameters out of range, naming them', async () => {
    for (const [query, field] of [['limit=201', 'limit'], ['status=running,done', 'status'], ['recordId=42', 'recordId'], ['workflow=Not%20one', 'workflow'], ['status=failed&status=running', 'status']]) {
      expect((await t.api('GET', `/api/workflows/instances?${query}`)).body, query).toMatchObject({ status: 400, code: 'bad-query', field });
    }
    expect((await t.api('GET', '/api/workflows/instances?status=failed,running&limit=200')).status).toBe(200);
    expect((await t.api('GET', '/api/workflows/workflows.nope/diagram?version=one')).body).toMatchObject({ status: 400, field: 'version' });
    expect((await t.api('GET', '/api/workflows/workflows.nope/diff?from=1')).body).toMatchObject({ status: 400, field: 'to' });
  });

  it('refuse a body field of the wrong type with 400 naming it, writing nothing', async () => {
    const withBody = specs.filter((s) => Object.keys(bodyProperties(s)).length > 0);
    expect(withBody.map((s) => s.operationId).sort()).toEqual([
      'approveTask', 'dryRunWorkflow', 'publishWorkflow', 'rejectTask', 'rollbackWorkflow', 'runWorkflow', 'saveWorkflow', 'takeTransition', 'validateWorkflow',
    ]);
    const audit = await t.count('kubiki_audit');
    let tried = 0;
    for (const spec of withBody) {
      for (const [field, schema] of Object.entries(bodyProperties(spec))) {
        const value = wrongValue(schema);
        if (value === undefined) continue;
        const res = await call(t, spec, urlOf(spec), bodyWith(spec, field, value));
        expect(res.body, `${spec.operationId} ${field}`).toMatchObject({ status: 400, code: 'validation-failed', field });
        tried++;
      }
    }
    expect(tried).toBeGreaterThan(15);
    expect(await t.count('kubiki_audit')).toBe(audit);
  });

  it('let an optional body be left out, and refuse what is not an object', async () => {
    // No body: the same as {} (here: no such workflow / task, found only after the body check).
    expect((await t.api('POST', '/api/workflows/workflows.nope/run')).status).toBe(404);
    expect((await t.api('POST', '/api/workflows/workflows.nope/dry-run')).status).toBe(404);
    expect((await t.api('POST', '/api/tasks/00000000-0000-7000-8000-000000000000/approve')).status).toBe(404);
    for (const path of ['/api/workflows/workflows.nope/run', '/api/workflows/workflows.nope/dry-run', '/api/tasks/00000000-0000-7000-8000-000000000000/approve', '/api/workflows/validate']) {
      expect((await t.api('POST', path, '[1]')).body, path).toMatchObject({ status: 400, code: 'validation-failed', field: '' });
    }
    // Reject needs its comment: a body is required.
    expect((await t.api('POST', '/api/tasks/00000000-0000-7000-8000-000000000000/reject')).body).toMatchObject({ status: 400, field: '' });
    expect((await t.api('POST', '/api/tasks/00000000-0000-7000-8000-000000000000/reject', {})).body).toMatchObject({ status: 400, field: 'comment' });
    // Routes that take no body refuse one.
    expect((await t.api('POST', '/api/workflows/instances/00000000-0000-7000-8000-000000000000/retry', { force: true })).body).toMatchObject({ status: 400, field: 'force' });
  });
});
