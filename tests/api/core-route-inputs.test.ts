import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

// The declared auth, metadata and notification routes check their input before the handler runs:
// a malformed path parameter is a 404 naming it (never a 5xx: `GET /api/users/0/tokens` used to be
// a 500), an unknown query parameter or a body field of the wrong type a 400 naming it, and
// nothing is written.

let t: TestKubiki;
let userId: string;
let tokenId: string;
let notificationId: string;
beforeAll(async () => {
  t = await startKubiki();
  const user = await t.api('POST', '/api/users', { username: `inputs${Date.now().toString(36)}`, password: 'long enough password' });
  expect(user.status, JSON.stringify(user.body)).toBe(201);
  userId = user.body.id;
  const token = await t.api('POST', `/api/users/${userId}/tokens`, { name: 'inputs' });
  expect(token.status, JSON.stringify(token.body)).toBe(201);
  tokenId = token.body.id;
  const sent = await t.api('POST', '/api/notifications', { channel: 'email', to: 'inputs@example.com', body: 'x', idempotencyKey: `inputs-${Date.now()}` });
  expect(sent.status, JSON.stringify(sent.body)).toBe(201);
  notificationId = sent.body.id;
});
afterAll(() => t?.close());

const TABLES = ['kubiki_users', 'kubiki_tokens', 'kubiki_roles', 'kubiki_notifications', 'kubiki_custom_fields', 'kubiki_audit'] as const;
async function counts(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const table of TABLES) out[table] = await t.count(table);
  return out;
}

async function expectProblem(request: () => Promise<ApiResponse>, status: number, code: string, issue: { field: string; rule?: string }): Promise<ApiResponse> {
  const before = await counts();
  const res = await request();
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code, ...issue });
  expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining(issue)]));
  expect(await counts()).toEqual(before);
  return res;
}

const UUID = '00000000-0000-4000-8000-000000000000';
const BAD_IDS = ['0', 'not-a-uuid', "1'--", `${UUID}0`];

describe('a malformed id answers 404 naming the parameter', () => {
  // [method, path with {bad} where the malformed value goes, body, parameter]
  const routes: [string, string, unknown, string][] = [
    ['GET', '/api/users/{bad}', undefined, 'id'],
    ['PATCH', '/api/users/{bad}', { displayName: 'x' }, 'id'],
    ['GET', '/api/users/{bad}/tokens', undefined, 'id'],
    ['POST', '/api/users/{bad}/tokens', { name: 'x' }, 'id'],
    ['DELETE', '/api/users/{bad}/tokens/{token}', undefined, 'id'],
    ['DELETE', '/api/users/{user}/tokens/{bad}', undefined, 'tokenId'],
    ['GET', '/api/notifications/{bad}', undefined, 'id'],
    ['POST', '/api/notifications/{bad}/retry', undefined, 'id'],
  ];
  const cases = routes.flatMap(([method, path, body, param]) => BAD_IDS.map((bad) => ({ method, path, body, param, bad })));

  it.each(cases)('$method $path with $bad', async ({ method, path, body, param, bad }) => {
    const url = path.replace('{bad}', encodeURIComponent(bad)).replace('{token}', tokenId).replace('{user}', userId);
    await expectProblem(() => t.api(method, url, body), 404, 'not-found', { field: param });
  });

  it('also for a caller without permissions, before the handler decides who may call', async () => {
    const nobody = await t.userWith([]);
    await expectProblem(() => t.api('GET', '/api/users/0/tokens', undefined, { token: nobody.token }), 404, 'not-found', { field: 'id' });
    await expectProblem(() => t.api('GET', '/api/users/0', undefined, { token: nobody.token }), 404, 'not-found', { field: 'id' });
  });

  it('a malformed plugin, entity or custom field name on the metadata routes', async () => {
    await expectProblem(() => t.api('GET', '/api/meta/entities/Base/organizations'), 404, 'not-found', { field: 'plugin' });
    await expectProblem(() => t.api('GET', '/api/meta/entities/base/organi-zations'), 404, 'not-found', { field: 'entity' });
    await expectProblem(() => t.api('POST', '/api/meta/entities/base/1x/fields', { name: 'x_a', schema: { type: 'string' } }), 404, 'not-found', { field: 'entity' });
    await expectProblem(() => t.api('DELETE', '/api/meta/entities/base/organizations/fields/notCustom'), 404, 'not-found', { field: 'name' });
    // Well-formed but unknown: the lookup's own 404s.
    expect((await t.api('GET', '/api/meta/entities/base/nothings')).body).toMatchObject({ status: 404, code: 'unknown-entity' });
    expect((await t.api('GET', '/api/meta/entities/nosuch/things')).body).toMatchObject({ status: 404, code: 'unknown-plugin' });
  });

  it('well-formed but unknown ids are the handlers\' 404s', async () => {
    expect((await t.api('GET', `/api/users/${UUID}`)).body).toMatchObject({ status: 404, code: 'not-found' });
    expect((await t.api('GET', `/api/notifications/${UUID}`)).body).toMatchObject({ status: 404, code: 'not-found' });
    expect((await t.api('DELETE', `/api/users/${userId}/tokens/${UUID}`)).body).toMatchObject({ status: 404, code: 'not-found' });
    expect((await t.api('GET', `/api/users/${UUID}/tokens`)).body).toEqual({ data: [], next: null });
  });
});

describe('query parameters', () => {
  it('an unknown query parameter answers 400 naming it', async () => {
    await expectProblem(() => t.api('GET', '/api/notifications?bogus=1'), 400, 'bad-query', { field: 'bogus', rule: 'unknown-parameter' });
    await expectProblem(() => t.api('GET', '/api/notifications?status=held&Limit=5'), 400, 'bad-query', { field: 'Limit', rule: 'unknown-parameter' });
  });

  it('typed and bounded: limit 1–500, status and channel from their lists', async () => {
    for (const bad of ['0', '501', '2.5', 'ten']) await expectProblem(() => t.api('GET', `/api/notifications?limit=${bad}`), 400, 'bad-query', { field: 'limit' });
    await expectProblem(() => t.api('GET', '/api/notifications?channel=fax'), 400, 'bad-query', { field: 'channel', rule: 'enum' });
    await expectProblem(() => t.api('GET', '/api/notifications?status=lost'), 400, 'bad-query', { field: 'status', rule: 'enum' });
    const one = await t.api('GET', '/api/notifications?limit=1&status=held&channel=email');
    expect(one.status, JSON.stringify(one.body)).toBe(200);
    expect(one.body.data).toHaveLength(1);
    expect(one.body.data[0]).not.toHaveProperty('body');
  });
});

describe('a body field of the wrong type answers 400 naming it', () => {
  // [method, path, body, field]
  const routes: [string, string, unknown, string][] = [
    ['POST', '/api/auth/login', { username: 7, password: 'x' }, 'username'],
    ['POST', '/api/auth/login', { username: 'admin', password: ['x'] }, 'password'],
    ['POST', '/api/users', { username: 'typed1', displayName: 5 }, 'displayName'],
    ['POST', '/api/users', { username: 'typed2', roles: 'admin' }, 'roles'],
    ['POST', '/api/users', { username: 'typed3', password: 1234567890 }, 'password'],
    ['PATCH', '/api/users/{user}', { active: 'yes' }, 'active'],
    ['PATCH', '/api/users/{user}', { email: 42 }, 'email'],
    ['PATCH', '/api/users/{user}', { roles: [1] }, 'roles.0'],
    ['POST', '/api/users/{user}/tokens', { name: 7 }, 'name'],
    ['PUT', '/api/roles/typed', { permissions: 'base.*' }, 'permissions'],
    ['PUT', '/api/roles/typed', { permissions: ['base.*'], description: false }, 'description'],
    ['POST', '/api/meta/entities/base/organizations/fields', { name: 'x_typed', schema: 'string' }, 'schema'],
    ['POST', '/api/meta/entities/base/organizations/fields', { name: 'x_typed', schema: { type: 'string' }, required: 'no' }, 'required'],
    ['POST', '/api/notifications', { channel: 'email', to: 'a@example.com', body: 'x', idempotencyKey: 12 }, 'idempotencyKey'],
    ['POST', '/api/notifications', { channel: 'email', to: 'a@example.com', body: 'x', idempotencyKey: 'k-typed', attachments: { documentId: UUID } }, 'attachments'],
  ];
  const cases = routes.map(([method, path, body, field]) => ({ method, path, body, field }));

  it.each(cases)('$method $path: $field', async ({ method, path, body, field }) => {
    const token = path === '/api/auth/login' ? { token: null } : {};
    await expectProblem(() => t.api(method, path.replace('{user}', userId), body, token), 400, 'validation-failed', { field });
  });

  it('a route that takes no body refuses one', async () => {
    await expectProblem(() => t.api('POST', `/api/notifications/${notificationId}/retry`, { force: true }), 400, 'validation-failed', { field: 'force' });
    const session = await t.api('POST', `/api/users/${userId}/tokens`, {});
    await expectProblem(() => t.api('POST', '/api/auth/logout', { everywhere: true }, { token: session.body.token }), 400, 'validation-failed', { field: 'everywhere' });
    // Refused before anything happened: the token still works.
    expect((await t.api('GET', '/api/auth/me', undefined, { token: session.body.token })).status).toBe(200);
  });

  it('the rules a schema cannot hold stay in the service, still naming the field', async () => {
    await expectProblem(() => t.api('POST', '/api/users', { username: 'rules1', roles: ['no-such-role'] }), 400, 'validation-failed', { field: 'roles', rule: 'exists' });
    await expectProblem(() => t.api('PUT', '/api/roles/admin', { permissions: ['base.*'] }), 400, 'validation-failed', { field: 'permissions', rule: 'admin' });
    await expectProblem(() => t.api('PUT', '/api/roles/Bad%20Name', { permissions: [] }), 400, 'validation-failed', { field: 'name', rule: 'pattern' });
    await expectProblem(() => t.api('POST', '/api/notifications', { channel: 'sms', to: 'a@example.com', body: 'x', idempotencyKey: 'k-rules' }), 400, 'validation-failed', { field: 'to' });
    await expectProblem(() => t.api('POST', '/api/notifications', { channel: 'email', to: 'a@example.com', body: '   ', idempotencyKey: 'k-rules' }), 400, 'validation-failed', { field: 'body' });
  });
});

describe('OpenAPI', () => {
  it('documents the declared routes with their ids, permissions and schemas', async () => {
    const doc = (await t.api('GET', '/api/openapi.json')).body as { paths: Record<string, Record<string, { operationId: string; 'x-permission': string; parameters: { name: string; in: string; schema: { format?: string } }[]; requestBody?: unknown }>> };
    expect(doc.paths['/api/auth/login'].post).toMatchObject({ operationId: 'login', 'x-permission': 'public', requestBody: expect.anything() });
    expect(doc.paths['/api/users/{id}/tokens/{tokenId}'].delete).toMatchObject({ operationId: 'revokeUserToken', 'x-permission': 'signed-in' });
    expect(doc.paths['/api/users/{id}/tokens/{tokenId}'].delete.parameters.map((p) => [p.name, p.schema.format])).toEqual([['id', 'uuid'], ['tokenId', 'uuid']]);
    expect(doc.paths['/api/notifications'].get.parameters.map((p) => `${p.in}:${p.name}`)).toEqual(['query:status', 'query:channel', 'query:limit']);
    expect(doc.paths['/api/meta/entities/{plugin}/{entity}/fields/{name}'].delete).toMatchObject({ operationId: 'removeCustomField', 'x-permission': 'core.customFields.manage' });
  });
});
