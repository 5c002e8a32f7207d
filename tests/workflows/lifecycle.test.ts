import { compileErrors, validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { exampleWorkflow, instancesOf, publishWorkflow, trail } from '../helpers/workflow-helpers.ts';

let t: TestKubiki;
let clerk: { token: string; id: string };

beforeAll(async () => {
  t = await startKubiki();
  await publishWorkflow(t, exampleWorkflow('product-lifecycle.yaml'));
  // A clerk may read and edit products but holds no role the transitions name.
  clerk = await t.userWith(['base.products.*']);
});
afterAll(async () => t?.close());

const product = async (fields: Record<string, unknown> = {}) => {
  const res = await t.api('POST', '/api/base/products', { sku: `SKU-${Math.random().toString(36).slice(2, 10)}`, name: 'Chair', ...fields });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body as { id: string; status: string; version: number };
};
const take = (id: string, name: string, body?: unknown, token?: string) => t.api('POST', `/api/base/products/${id}/transitions/${name}`, body, { token });

describe('document lifecycle', () => {
  it('starts new records in the initial state and refuses unknown states', async () => {
    expect((await product()).status).toBe('draft');
    const bad = await t.api('POST', '/api/base/products', { sku: 'X-BAD', name: 'Bad', status: 'sold' });
    expect(bad.status).toBe(400);
    expect(bad.body.field).toBe('status');
    // Data migrated in may arrive in any declared state.
    expect((await product({ status: 'active' })).status).toBe('active');
  });

  it('changes the state only through transitions', async () => {
    const p = await product();
    const patch = await t.api('PATCH', `/api/base/products/${p.id}`, { status: 'active' });
    expect(patch.status).toBe(409);
    expect(patch.body).toMatchObject({ type: '/problems/transition-required', field: 'status' });
    expect(patch.body.detail).toContain('activate');
    // Other fields stay editable.
    expect((await t.api('PATCH', `/api/base/products/${p.id}`, { name: 'Armchair' })).status).toBe(200);
  });

  it('lists the transitions with whether the caller may take them', async () => {
    const p = await product();
    const asAdmin = await t.api('GET', `/api/base/products/${p.id}/transitions`);
    expect(asAdmin.status).toBe(200);
    expect(asAdmin.body.state).toBe('draft');
    const byName = Object.fromEntries(asAdmin.body.transitions.map((x: { name: string }) => [x.name, x]));
    expect(byName.activate.allowed).toBe(true);
    expect(byName.withdraw).toMatchObject({ allowed: false });
    expect(byName.withdraw.reason).toContain('"active"');
    const asClerk = await t.api('GET', `/api/base/products/${p.id}/transitions`, undefined, { token: clerk.token });
    expect(asClerk.body.transitions.find((x: { name: string }) => x.name === 'activate')).toMatchObject({ allowed: false });
  });

  it('guards transitions by role (403), state (409) and condition (409), saying why', async () => {
    const p = await product();
    const byClerk = await take(p.id, 'activate', undefined, clerk.token);
    expect(byClerk.status).toBe(403);
    expect(byClerk.body.detail).toContain('admin');
    const noPrice = await take(p.id, 'activate');
    expect(noPrice.status).toBe(409);
    expect(noPrice.body.type).toBe('/problems/transition-condition-failed');
    expect(noPrice.body.detail).toContain('record.price');
    expect((await t.api('PATCH', `/api/base/products/${p.id}`, { price: '990.00' })).status).toBe(200);
    const ok = await take(p.id, 'activate');
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ transition: 'activate', from: 'draft', to: 'active', instanceId: null });
    expect(ok.body.record.status).toBe('active');
    const again = await take(p.id, 'activate');
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ type: '/problems/transition-not-allowed', state: 'active' });
    // The state change is audited as the user's.
    const audit = await t.k.db.table('kubiki_audit').where({ entity: 'products', record_id: p.id, action: 'updated' }).orderBy('id', 'desc').first();
    expect(audit.actor).toBe('admin');
    expect(audit.changes.status).toEqual({ before: 'draft', after: 'active' });
  });

  it('runs a transition\'s steps as an instance started with the state change', async () => {
    const p = await product({ price: '10.00' });
    const res = await take(p.id, 'archive');
    expect(res.status).toBe(200);
    expect(res.body.instanceId).toMatch(/^[0-9a-f-]{36}$/);
    await t.k.workflowRuntime.settle();
    const [instance] = (await instancesOf(t, 'base.product-lifecycle')).filter((i) => i.id === res.body.instanceId);
    expect(instance.status).toBe('completed');
    expect(trail(instance)).toEqual(['announce-archive:done']);
    expect(instance.steps[0].input).toMatchObject({ kind: 'notify', to: 'catalogue@example.com', subject: `Product archived: ${(await t.api('GET', `/api/base/products/${p.id}`)).body.sku}` });
    // Archived is final: "*" does not leave it.
    expect((await take(p.id, 'archive')).status).toBe(409);
  });

  it('rejects bad requests with problem+json naming the field', async () => {
    const p = await product();
    expect((await take(p.id, 'fly')).body).toMatchObject({ status: 404, field: 'transition' });
    expect((await take(p.id, 'withdraw', { reason: 'x' })).body).toMatchObject({ status: 400, field: 'reason' });
    expect((await take(p.id, 'activate', { input: { a: 1 } })).body).toMatchObject({ status: 400, field: 'input' });
    expect((await take(p.id, 'activate', { version: 'one' })).body).toMatchObject({ status: 400, field: 'version' });
    expect((await take('00000000-0000-7000-8000-000000000000', 'activate')).status).toBe(404);
    expect((await t.api('POST', `/api/base/units/${p.id}/transitions/activate`)).body).toMatchObject({ status: 404 });
  });

  it('lets one of two concurrent transitions from the same state through', async () => {
    const p = await product({ price: '5.00' });
    const results = await Promise.all([take(p.id, 'activate'), take(p.id, 'activate'), take(p.id, 'activate')]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409, 409]);
    expect(results.filter((r) => r.status === 409).every((r) => r.body.type === '/problems/transition-not-allowed')).toBe(true);
    expect((await t.api('GET', `/api/base/products/${p.id}`)).body.status).toBe('active');
    expect(await t.count('kubiki_audit', { entity: 'products', record_id: p.id, action: 'updated' })).toBe(1);
  });

  it('documents the transition routes of entities with a lifecycle in OpenAPI', async () => {
    const doc = (await t.api('GET', '/api/openapi.json')).body;
    expect(doc.paths['/api/base/products/{id}/transitions/{name}'].post.operationId).toBeTruthy();
    expect(doc.paths['/api/base/products/{id}/transitions']).toBeDefined();
    expect(doc.paths['/api/base/organizations/{id}/transitions']).toBeUndefined();
    expect(doc.paths['/api/tasks/{id}/approve']).toBeDefined();
    const result = await validate(structuredClone(doc));
    expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
  });
});
