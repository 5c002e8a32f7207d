import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSchemaName, startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki();
});
afterAll(() => t?.close());

let seq = 0;
const uniqueName = (prefix: string) => `${prefix}${Date.now().toString(36)}${++seq}`;
const PASSWORD = 'correct horse battery';

function expectProblem(res: ApiResponse, status: number, code: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code });
}

const me = (token: string) => t.api('GET', '/api/auth/me', undefined, { token });

async function createUser(body: Record<string, unknown> = {}): Promise<{ id: string; username: string }> {
  const username = uniqueName('user');
  const res = await t.api('POST', '/api/users', { username, password: PASSWORD, ...body });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id, username };
}

describe('users, passwords and sessions', () => {
  it('creates a user with a password; login gives a session token that works, logout revokes it', async () => {
    const { id, username } = await createUser({ displayName: 'Ana Petrova', email: 'ana@example.com' });
    const got = await t.api('GET', `/api/users/${id}`);
    expect(got.body).toMatchObject({ id, username, displayName: 'Ana Petrova', email: 'ana@example.com', roles: [], active: true });
    expect(got.body).not.toHaveProperty('password');
    expect(got.body).not.toHaveProperty('passwordHash');
    expect(JSON.stringify(got.body)).not.toContain('scrypt');

    const login = await t.api('POST', '/api/auth/login', { username, password: PASSWORD }, { token: null });
    expect(login.status, JSON.stringify(login.body)).toBe(200);
    expect(login.body).toMatchObject({ kind: 'session', user: { id, username } });
    expect(login.body.token).toMatch(/^kbk_/);
    expect(Date.parse(login.body.expiresAt)).toBeGreaterThan(Date.now());
    const session = login.body.token as string;

    const who = await me(session);
    expect(who.status).toBe(200);
    expect(who.body).toMatchObject({ id, username, roles: [], permissions: [] });

    const out = await t.api('POST', '/api/auth/logout', undefined, { token: session });
    expect(out.status).toBe(204);
    expect(await t.count('kubiki_audit', { plugin: 'core', entity: 'tokens', action: 'revoked', actor: username })).toBe(1);
    expectProblem(await me(session), 401, 'unauthenticated');
    expectProblem(await t.api('POST', '/api/auth/logout', undefined, { token: session }), 401, 'unauthenticated');
  });

  it('answers 401 invalid-credentials alike for a wrong password and an unknown user', async () => {
    const { username } = await createUser();
    const wrong = await t.api('POST', '/api/auth/login', { username, password: 'not the password' }, { token: null });
    const unknown = await t.api('POST', '/api/auth/login', { username: uniqueName('ghost'), password: PASSWORD }, { token: null });
    expectProblem(wrong, 401, 'invalid-credentials');
    expectProblem(unknown, 401, 'invalid-credentials');
    expect(wrong.body.detail).toBe(unknown.body.detail);
    expect(wrong.body).not.toHaveProperty('token');
    // A user without a password cannot log in at all.
    const noPassword = await t.api('POST', '/api/users', { username: uniqueName('nopw') });
    expect(noPassword.status).toBe(201);
    expectProblem(await t.api('POST', '/api/auth/login', { username: noPassword.body.username, password: PASSWORD }, { token: null }), 401, 'invalid-credentials');
  });

  it('validates the login body and the password length', async () => {
    expectProblem(await t.api('POST', '/api/auth/login', { username: 'x' }, { token: null }), 400, 'validation-failed');
    const short = await t.api('POST', '/api/users', { username: uniqueName('short'), password: 'short' });
    expectProblem(short, 400, 'validation-failed');
    expect(short.body).toMatchObject({ field: 'password', rule: 'minLength' });
  });

  it('stores the password and the tokens hashed, never in clear', async () => {
    const { id, username } = await createUser();
    const row = await t.k.db.table('kubiki_users').where({ id }).first();
    expect(row.password_hash).toMatch(/^scrypt\$/);
    expect(row.password_hash).not.toContain(PASSWORD);

    const login = await t.api('POST', '/api/auth/login', { username, password: PASSWORD }, { token: null });
    const api = await t.api('POST', `/api/users/${id}/tokens`, { name: 'ci' });
    for (const issued of [login.body, api.body]) {
      const stored = await t.k.db.table('kubiki_tokens').where({ id: issued.id }).first();
      expect(stored.token_hash).not.toBe(issued.token);
      expect(stored.token_hash).not.toContain(issued.token);
      expect(stored.token_hash).toMatch(/^[0-9a-f]{64}$/);
    }
    // The admin token given at first start is stored hashed as well.
    expect(await t.count('kubiki_tokens', { token_hash: t.adminToken })).toBe(0);
  });

  it('changing a password makes the old one fail and the new one work', async () => {
    const { id, username } = await createUser();
    const newPassword = 'a brand new passphrase';
    expect((await t.api('PATCH', `/api/users/${id}`, { password: newPassword })).status).toBe(200);
    expectProblem(await t.api('POST', '/api/auth/login', { username, password: PASSWORD }, { token: null }), 401, 'invalid-credentials');
    expect((await t.api('POST', '/api/auth/login', { username, password: newPassword }, { token: null })).status).toBe(200);
  });
});

describe('API tokens', () => {
  it('issues API tokens that work, lists them without the secret, and revoking stops them at once', async () => {
    const { id, username } = await createUser();
    const issued = await t.api('POST', `/api/users/${id}/tokens`, { name: 'integration' });
    expect(issued.status).toBe(201);
    expect(issued.body).toMatchObject({ kind: 'api', name: 'integration', expiresAt: null });
    const token = issued.body.token as string;

    // Warm the principal cache, then revoke: the very next request must fail.
    expect((await me(token)).body.username).toBe(username);
    expect((await me(token)).status).toBe(200);

    const listed = await t.api('GET', `/api/users/${id}/tokens`);
    expect(listed.body.data).toEqual([expect.objectContaining({ id: issued.body.id, name: 'integration', kind: 'api' })]);
    expect(JSON.stringify(listed.body)).not.toContain(token);

    const revoked = await t.api('DELETE', `/api/users/${id}/tokens/${issued.body.id}`);
    expect(revoked.status).toBe(204);
    expectProblem(await me(token), 401, 'unauthenticated');
    expect((await t.api('GET', `/api/users/${id}/tokens`)).body.data).toEqual([]);
    expectProblem(await t.api('DELETE', `/api/users/${id}/tokens/${issued.body.id}`), 404, 'not-found');
  });

  it("revoking needs the token's own user in the path", async () => {
    const a = await createUser();
    const b = await createUser();
    const issued = await t.api('POST', `/api/users/${a.id}/tokens`, {});
    expectProblem(await t.api('DELETE', `/api/users/${b.id}/tokens/${issued.body.id}`), 404, 'not-found');
    expect((await me(issued.body.token)).status).toBe(200);
  });

  it('deactivating a user stops their tokens and logins at once; reactivating restores the tokens', async () => {
    const { id, username } = await createUser();
    const api = (await t.api('POST', `/api/users/${id}/tokens`, {})).body.token as string;
    const session = (await t.api('POST', '/api/auth/login', { username, password: PASSWORD }, { token: null })).body.token as string;
    expect((await me(api)).status).toBe(200);
    expect((await me(session)).status).toBe(200);

    const off = await t.api('PATCH', `/api/users/${id}`, { active: false });
    expect(off.status).toBe(200);
    expect(off.body.active).toBe(false);
    expectProblem(await me(api), 401, 'unauthenticated');
    expectProblem(await me(session), 401, 'unauthenticated');
    expectProblem(await t.api('POST', '/api/auth/login', { username, password: PASSWORD }, { token: null }), 401, 'invalid-credentials');

    expect((await t.api('PATCH', `/api/users/${id}`, { active: true })).status).toBe(200);
    expect((await me(api)).status).toBe(200);
  });

  it('changing a user\'s roles changes what their cached token may do at once', async () => {
    const reader = `reader${seq++}`;
    expect((await t.api('PUT', `/api/roles/${reader}`, { permissions: ['core.users.read'] })).status).toBe(200);
    const { id } = await createUser();
    const token = (await t.api('POST', `/api/users/${id}/tokens`, {})).body.token as string;
    expect((await t.api('GET', '/api/users', undefined, { token })).status).toBe(403);
    expect((await t.api('PATCH', `/api/users/${id}`, { roles: [reader] })).status).toBe(200);
    expect((await t.api('GET', '/api/users', undefined, { token })).status).toBe(200);
    expect((await t.api('PATCH', `/api/users/${id}`, { roles: [] })).status).toBe(200);
    expect((await t.api('GET', '/api/users', undefined, { token })).status).toBe(403);
  });
});

describe('roles', () => {
  it('rejects a permission with bad syntax, naming its position in the request', async () => {
    const role = `bad${seq++}`;
    const res = await t.api('PUT', `/api/roles/${role}`, { permissions: ['alpha.widgets.read', 'alpha.widgets.read', 'not a permission'] });
    expectProblem(res, 400, 'validation-failed');
    expect(res.body).toMatchObject({ field: 'permissions.2', rule: 'pattern' });
    for (const bad of ['Alpha.widgets', 'a.b.c.d', 'alpha..read', 'alpha.widgets.read:mine', '']) {
      const r = await t.api('PUT', `/api/roles/${role}`, { permissions: [bad] });
      expectProblem(r, 400, 'validation-failed');
      expect(r.body.field, bad).toBe('permissions.0');
    }
    expect(await t.count('kubiki_roles', { name: role })).toBe(0);
    for (const good of ['*', 'alpha.*', 'alpha.*.read', 'alpha.widgets.*:own', 'crm.deals.update:own', 'core.users.read']) {
      expect((await t.api('PUT', `/api/roles/${role}`, { permissions: [good] })).status, good).toBe(200);
    }
  });

  it('rejects an unknown role on a user', async () => {
    const res = await t.api('POST', '/api/users', { username: uniqueName('norole'), roles: ['no-such-role'] });
    expectProblem(res, 400, 'validation-failed');
    expect(res.body).toMatchObject({ field: 'roles', rule: 'exists' });
    expect(res.body.detail).toContain('no-such-role');
    const { id } = await createUser();
    const patch = await t.api('PATCH', `/api/users/${id}`, { roles: ['admin', 'no-such-role'] });
    expectProblem(patch, 400, 'validation-failed');
    expect((await t.api('GET', `/api/users/${id}`)).body.roles).toEqual([]);
  });

  it('refuses to delete a role a user holds (409), and deletes it once nobody does', async () => {
    const role = `held${seq++}`;
    expect((await t.api('PUT', `/api/roles/${role}`, { permissions: ['base.*.read'], description: 'Readers' })).status).toBe(200);
    const { id, username } = await createUser({ roles: [role] });
    const refused = await t.api('DELETE', `/api/roles/${role}`);
    expectProblem(refused, 409, 'conflict');
    expect(refused.body.users).toEqual([username]);
    expect(await t.count('kubiki_roles', { name: role })).toBe(1);

    expect((await t.api('PATCH', `/api/users/${id}`, { roles: [] })).status).toBe(200);
    expect((await t.api('DELETE', `/api/roles/${role}`)).status).toBe(204);
    expect((await t.api('GET', '/api/roles')).body.data.map((r: { name: string }) => r.name)).not.toContain(role);
    expectProblem(await t.api('DELETE', `/api/roles/${role}`), 404, 'not-found');
  });

  it("keeps the admin role: it cannot lose '*' nor be deleted", async () => {
    const lose = await t.api('PUT', '/api/roles/admin', { permissions: ['core.users.read'] });
    expectProblem(lose, 400, 'validation-failed');
    expect(lose.body).toMatchObject({ field: 'permissions', rule: 'admin' });
    expectProblem(await t.api('DELETE', '/api/roles/admin'), 409, 'conflict');
    const roles = await t.api('GET', '/api/roles');
    expect(roles.body.data.find((r: { name: string }) => r.name === 'admin').permissions).toEqual(['*']);
    expect((await me(t.adminToken)).status).toBe(200);
    // Adding to it is fine as long as '*' stays.
    expect((await t.api('PUT', '/api/roles/admin', { permissions: ['*', 'core.users.read'] })).status).toBe(200);
    expect((await t.api('PUT', '/api/roles/admin', { permissions: ['*'] })).status).toBe(200);
  });
});

describe('bootstrap admin and the audit trail', () => {
  it('the first admin token is KUBIKI_ADMIN_TOKEN when given', async () => {
    expect(t.k.generatedAdminToken).toBeUndefined();
    const who = await me(t.adminToken);
    expect(who.status).toBe(200);
    expect(who.body).toMatchObject({ username: 'admin', roles: ['admin'], permissions: ['*'] });
    const admin = (await t.api('GET', '/api/users')).body.data.find((u: { username: string }) => u.username === 'admin');
    const tokens = await t.api('GET', `/api/users/${admin.id}/tokens`);
    expect(tokens.body.data).toEqual([expect.objectContaining({ kind: 'api', name: 'bootstrap' })]);
  });

  it('audits user management writes (plugin core, entity users)', async () => {
    const { id, username } = await createUser();
    expect((await t.api('PATCH', `/api/users/${id}`, { displayName: 'Renamed', password: 'another long password' })).status).toBe(200);
    const issued = await t.api('POST', `/api/users/${id}/tokens`, { name: 'audited' });
    await t.api('DELETE', `/api/users/${id}/tokens/${issued.body.id}`);
    const role = `aud${seq++}`;
    await t.api('PUT', `/api/roles/${role}`, { permissions: ['base.units.read'] });

    const users = await t.api('GET', `/api/audit?entity=core.users&id=${id}`);
    expect(users.status).toBe(200);
    const entries = users.body.data as { action: string; entity: string; actor: string; recordId: string; changes: Record<string, { before: unknown; after: unknown }> }[];
    expect(entries.map((e) => e.action)).toEqual(['updated', 'created']);
    for (const e of entries) expect(e).toMatchObject({ entity: 'core.users', actor: 'admin', recordId: id });
    expect(entries[1].changes.username).toEqual({ before: null, after: username });
    expect(entries[0].changes.displayName).toEqual({ before: username, after: 'Renamed' });
    // The audit trail never carries a password or its hash.
    expect(JSON.stringify(entries)).not.toContain('another long password');
    expect(JSON.stringify(entries)).not.toContain('scrypt');

    const tokens = await t.api('GET', `/api/audit?entity=core.tokens&id=${issued.body.id}`);
    expect(tokens.body.data.map((e: { action: string }) => e.action)).toEqual(['revoked', 'created']);
    expect(JSON.stringify(tokens.body)).not.toContain(issued.body.token);
    const roles = await t.api('GET', `/api/audit?entity=core.roles&id=${role}`);
    expect(roles.body.data).toEqual([expect.objectContaining({ action: 'created', entity: 'core.roles', changes: { permissions: { before: null, after: ['base.units.read'] } } })]);
    const rows = await t.count('kubiki_audit', { plugin: 'core', entity: 'users', record_id: id });
    expect(rows).toBe(2);
  });

  it('generates an admin token on the first start without KUBIKI_ADMIN_TOKEN, and not on the next start', async () => {
    const schema = newSchemaName();
    const first = await startKubiki({ schema, config: { adminToken: undefined } });
    let second: TestKubiki | undefined;
    try {
      const generated = first.k.generatedAdminToken;
      expect(generated).toMatch(/^kbk_/);
      const who = await first.api('GET', '/api/auth/me', undefined, { token: generated! });
      expect(who.status).toBe(200);
      expect(who.body).toMatchObject({ username: 'admin', permissions: ['*'] });
      // The harness's own token was never registered on this schema.
      expect((await first.api('GET', '/api/auth/me')).status).toBe(401);
      await first.close({ keepSchema: true });

      second = await startKubiki({ schema, adminToken: generated, config: { adminToken: undefined } });
      expect(second.k.generatedAdminToken).toBeUndefined();
      expect((await second.api('GET', '/api/auth/me')).body.username).toBe('admin');
      expect(await second.count('kubiki_users')).toBe(1);
      expect(await second.count('kubiki_tokens')).toBe(1);
    } finally {
      await (second ?? first).close();
    }
  });
});
