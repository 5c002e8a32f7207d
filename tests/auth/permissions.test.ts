import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
let widgetsTable: string;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'] });
  widgetsTable = t.k.registry.get('alpha.widgets').table;
});
afterAll(() => t?.close());

let seq = 0;
const code = (prefix: string) => `${prefix}-${++seq}`;
const widget = (prefix: string) => ({ code: code(prefix), name: `Widget ${prefix}` });

function expectProblem(res: ApiResponse, status: number, problemCode: string): void {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({ status, code: problemCode, type: `/problems/${problemCode}` });
}

const expectForbidden = (res: ApiResponse, permission: string) => {
  expectProblem(res, 403, 'forbidden');
  expect(res.body.permission).toBe(permission);
  expect(res.body.detail).toContain(permission);
};

/** Rows written anywhere a refused write could have left a trace. */
const traces = async () => ({ widgets: await t.count(widgetsTable), audit: await t.count('kubiki_audit'), outbox: await t.count('kubiki_outbox') });

describe('role grants on entity records', () => {
  it('a reader lists and gets, and every write is refused with 403 naming the permission, writing nothing', async () => {
    const existing = await t.api('POST', '/api/alpha/widgets', widget('RD'));
    expect(existing.status).toBe(201);
    const reader = await t.userWith(['alpha.widgets.read']);

    const list = await t.api('GET', '/api/alpha/widgets', undefined, { token: reader.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((w: { id: string }) => w.id)).toContain(existing.body.id);
    const one = await t.api('GET', `/api/alpha/widgets/${existing.body.id}`, undefined, { token: reader.token });
    expect(one.status).toBe(200);
    expect(one.body.code).toBe(existing.body.code);

    const before = await traces();
    expectForbidden(await t.api('POST', '/api/alpha/widgets', widget('RD'), { token: reader.token }), 'alpha.widgets.create');
    expectForbidden(await t.api('PATCH', `/api/alpha/widgets/${existing.body.id}`, { name: 'changed' }, { token: reader.token }), 'alpha.widgets.update');
    expectForbidden(await t.api('DELETE', `/api/alpha/widgets/${existing.body.id}`, undefined, { token: reader.token }), 'alpha.widgets.delete');
    expect(await traces()).toEqual(before);
    const unchanged = await t.api('GET', `/api/alpha/widgets/${existing.body.id}`);
    expect(unchanged.body).toMatchObject({ version: 1, name: existing.body.name });

    // Reading another entity of the same plugin is not covered.
    expectForbidden(await t.api('GET', '/api/alpha/parts', undefined, { token: reader.token }), 'alpha.parts.read');
  });

  it('a creator creates (and owns the record) but may not read, update or delete', async () => {
    const creator = await t.userWith(['alpha.widgets.create']);
    const created = await t.api('POST', '/api/alpha/widgets', widget('CR'), { token: creator.token });
    expect(created.status).toBe(201);
    expect(created.body.createdBy).toBe(creator.id);
    expectForbidden(await t.api('GET', `/api/alpha/widgets/${created.body.id}`, undefined, { token: creator.token }), 'alpha.widgets.read');
    expectForbidden(await t.api('PATCH', `/api/alpha/widgets/${created.body.id}`, { name: 'x' }, { token: creator.token }), 'alpha.widgets.update');
    expectForbidden(await t.api('DELETE', `/api/alpha/widgets/${created.body.id}`, undefined, { token: creator.token }), 'alpha.widgets.delete');
  });

  it('a permission given later takes effect at once, and taking it away too', async () => {
    const role = `late${Date.now() % 100000}`;
    expect((await t.api('PUT', `/api/roles/${role}`, { permissions: [] })).status).toBe(200);
    const user = await t.api('POST', '/api/users', { username: `late${seq++}`, roles: [role] });
    const token = (await t.api('POST', `/api/users/${user.body.id}/tokens`, {})).body.token as string;
    expectForbidden(await t.api('GET', '/api/alpha/widgets', undefined, { token }), 'alpha.widgets.read');
    expect((await t.api('PUT', `/api/roles/${role}`, { permissions: ['alpha.widgets.read'] })).status).toBe(200);
    expect((await t.api('GET', '/api/alpha/widgets', undefined, { token })).status).toBe(200);
    expect((await t.api('PUT', `/api/roles/${role}`, { permissions: [] })).status).toBe(200);
    expect((await t.api('GET', '/api/alpha/widgets', undefined, { token })).status).toBe(403);
  });
});

describe('own-records grants (":own", owner = createdBy)', () => {
  let a: { token: string; id: string };
  let b: { token: string; id: string };
  let aWidget: string;
  let bWidget: string;
  let adminWidget: string;

  beforeAll(async () => {
    a = await t.userWith(['alpha.widgets.*:own']);
    b = await t.userWith(['alpha.widgets.*:own']);
    const ra = await t.api('POST', '/api/alpha/widgets', widget('OWN-A'), { token: a.token });
    expect(ra.status, JSON.stringify(ra.body)).toBe(201);
    aWidget = ra.body.id;
    const rb = await t.api('POST', '/api/alpha/widgets', widget('OWN-B'), { token: b.token });
    expect(rb.status, JSON.stringify(rb.body)).toBe(201);
    bWidget = rb.body.id;
    adminWidget = (await t.api('POST', '/api/alpha/widgets', widget('OWN-ADM'))).body.id;
  });

  it('lists only the records the user created, with a matching total', async () => {
    const list = await t.api('GET', '/api/alpha/widgets?withTotal=true&limit=100', undefined, { token: a.token });
    expect(list.status).toBe(200);
    expect(list.body.data.map((w: { id: string }) => w.id)).toEqual([aWidget]);
    expect(list.body.total).toBe(1);
    // A filter cannot widen the view.
    const filtered = await t.api('GET', `/api/alpha/widgets?id=${bWidget}`, undefined, { token: a.token });
    expect(filtered.status).toBe(200);
    expect(filtered.body.data).toEqual([]);
    const all = await t.api('GET', '/api/alpha/widgets?withTotal=true&limit=100');
    expect(all.body.total).toBeGreaterThanOrEqual(3);
  });

  it("answers 404 for someone else's record, as if it did not exist", async () => {
    expect((await t.api('GET', `/api/alpha/widgets/${aWidget}`, undefined, { token: a.token })).status).toBe(200);
    for (const id of [bWidget, adminWidget]) {
      const res = await t.api('GET', `/api/alpha/widgets/${id}`, undefined, { token: a.token });
      expectProblem(res, 404, 'not-found');
    }
  });

  it("cannot update or delete someone else's record (404: the user may not even see it), and nothing changes", async () => {
    const before = await traces();
    expectProblem(await t.api('PATCH', `/api/alpha/widgets/${bWidget}`, { name: 'stolen' }, { token: a.token }), 404, 'not-found');
    expectProblem(await t.api('DELETE', `/api/alpha/widgets/${bWidget}`, undefined, { token: a.token }), 404, 'not-found');
    expectProblem(await t.api('DELETE', `/api/alpha/widgets/${adminWidget}`, undefined, { token: a.token }), 404, 'not-found');
    expect(await traces()).toEqual(before);
    expect((await t.api('GET', `/api/alpha/widgets/${bWidget}`)).body).toMatchObject({ version: 1, name: 'Widget OWN-B' });
  });

  it('gets 403 instead when the user may read every record but change only their own', async () => {
    const c = await t.userWith(['alpha.widgets.read', 'alpha.widgets.update:own', 'alpha.widgets.delete:own']);
    expect((await t.api('GET', `/api/alpha/widgets/${bWidget}`, undefined, { token: c.token })).status).toBe(200);
    const before = await traces();
    expectProblem(await t.api('PATCH', `/api/alpha/widgets/${bWidget}`, { name: 'stolen' }, { token: c.token }), 403, 'forbidden');
    expectProblem(await t.api('DELETE', `/api/alpha/widgets/${bWidget}`, undefined, { token: c.token }), 403, 'forbidden');
    expect(await traces()).toEqual(before);
    // Creating needs alpha.widgets.create, which c lacks.
    expectForbidden(await t.api('POST', '/api/alpha/widgets', widget('C'), { token: c.token }), 'alpha.widgets.create');
  });

  it('updates and deletes their own record', async () => {
    const patched = await t.api('PATCH', `/api/alpha/widgets/${aWidget}`, { name: 'Mine' }, { token: a.token, headers: { 'if-match': '"1"' } });
    expect(patched.status, JSON.stringify(patched.body)).toBe(200);
    expect(patched.body).toMatchObject({ version: 2, name: 'Mine', createdBy: a.id, updatedBy: a.id });
    // createdBy is system-managed: an owner cannot hand the record to someone else through the API.
    const handOver = await t.api('PATCH', `/api/alpha/widgets/${aWidget}`, { createdBy: b.id }, { token: a.token });
    expect(handOver.status).toBe(200);
    expect(handOver.body.createdBy).toBe(a.id);

    const extra = await t.api('POST', '/api/alpha/widgets', widget('OWN-A2'), { token: a.token });
    expect(extra.status).toBe(201);
    expect((await t.api('DELETE', `/api/alpha/widgets/${extra.body.id}`, undefined, { token: a.token })).status).toBe(204);
    expect((await t.api('GET', `/api/alpha/widgets/${extra.body.id}`)).status).toBe(404);
  });

  it('":own" grants do not reach other entities or plugins', async () => {
    expectForbidden(await t.api('GET', '/api/alpha/parts', undefined, { token: a.token }), 'alpha.parts.read');
    expectForbidden(await t.api('GET', '/api/base/organizations', undefined, { token: a.token }), 'base.organizations.read');
  });
});

describe('wildcards', () => {
  it('"alpha.*" covers every alpha entity and plugin route, but not base', async () => {
    const u = await t.userWith(['alpha.*']);
    const w = await t.api('POST', '/api/alpha/widgets', widget('WC'), { token: u.token });
    expect(w.status).toBe(201);
    const p = await t.api('POST', '/api/alpha/parts', { label: 'bolt', widget: w.body.id }, { token: u.token });
    expect(p.status).toBe(201);
    expect((await t.api('GET', '/api/alpha/parts', undefined, { token: u.token })).status).toBe(200);
    expect((await t.api('PATCH', `/api/alpha/parts/${p.body.id}`, { label: 'nut' }, { token: u.token })).status).toBe(200);
    expect((await t.api('DELETE', `/api/alpha/parts/${p.body.id}`, undefined, { token: u.token })).status).toBe(204);
    expect((await t.api('GET', '/api/alpha/stats', undefined, { token: u.token })).status).toBe(200);

    expectForbidden(await t.api('GET', '/api/base/organizations', undefined, { token: u.token }), 'base.organizations.read');
    expectForbidden(await t.api('POST', '/api/base/organizations', { name: 'Nope' }, { token: u.token }), 'base.organizations.create');
    expectForbidden(await t.api('GET', '/api/users', undefined, { token: u.token }), 'core.users.read');
  });

  it('"alpha.*.read" reads every alpha entity and writes none; "*" is everything', async () => {
    const r = await t.userWith(['alpha.*.read']);
    expect((await t.api('GET', '/api/alpha/widgets', undefined, { token: r.token })).status).toBe(200);
    expect((await t.api('GET', '/api/alpha/parts', undefined, { token: r.token })).status).toBe(200);
    expectForbidden(await t.api('POST', '/api/alpha/widgets', widget('WR'), { token: r.token }), 'alpha.widgets.create');
    expectForbidden(await t.api('GET', '/api/base/units', undefined, { token: r.token }), 'base.units.read');

    const star = await t.userWith(['*']);
    expect((await t.api('GET', '/api/base/units', undefined, { token: star.token })).status).toBe(200);
    expect((await t.api('GET', '/api/users', undefined, { token: star.token })).status).toBe(200);
  });

  it('a full grant beside an ":own" grant wins', async () => {
    const u = await t.userWith(['alpha.widgets.*:own', 'alpha.widgets.read']);
    const all = await t.api('GET', '/api/alpha/widgets?withTotal=true', undefined, { token: u.token });
    expect(all.body.total).toBeGreaterThan(1);
  });
});

describe('authentication', () => {
  it.each([
    ['no Authorization header', undefined],
    ['a Basic header', 'Basic YWRtaW46YWRtaW4='],
    ['a Bearer header without a token', 'Bearer'],
    ['a Bearer header with two words', 'Bearer a b'],
    ['an unknown token', 'Bearer kbk_not-a-real-token'],
    ['an empty-ish token', 'Bearer    '],
  ])('answers 401 with %s', async (_label, header) => {
    const res = await t.api('GET', '/api/alpha/widgets', undefined, { token: null, headers: header === undefined ? {} : { authorization: header } });
    expectProblem(res, 401, 'unauthenticated');
  });

  it('asks for a bearer token when none is sent', async () => {
    const res = await t.api('GET', '/api/users', undefined, { token: null });
    expect(res.headers.get('www-authenticate')).toBe('Bearer');
  });

  it('answers /api/health without a token', async () => {
    const res = await t.api('GET', '/api/health', undefined, { token: null });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: 'ok' });
    expect(res.body.plugins).toEqual(expect.arrayContaining(['base', 'alpha']));
  });
});

describe('every core route needs a token and its permission', () => {
  let nobody: { token: string; id: string };
  let other: string;
  beforeAll(async () => {
    nobody = await t.userWith([]);
    other = (await t.userWith([])).id;
  });

  // [method, path, body, permission] — permission null: any signed-in user may call it.
  const routes: [string, string, unknown, string | null][] = [
    ['GET', '/api/plugins', undefined, 'core.plugins.read'],
    ['POST', '/api/plugins/alpha/disable', {}, 'core.plugins.manage'],
    ['POST', '/api/plugins/alpha/install', {}, 'core.plugins.manage'],
    ['POST', '/api/plugins/beta/enable', {}, 'core.plugins.manage'],
    ['GET', '/api/users', undefined, 'core.users.read'],
    ['POST', '/api/users', { username: 'intruder', password: 'long-enough-pw' }, 'core.users.create'],
    ['GET', '/api/users/{other}', undefined, 'core.users.read'],
    ['PATCH', '/api/users/{other}', { active: false }, 'core.users.update'],
    ['PATCH', '/api/users/{self}', { roles: ['admin'] }, 'core.users.update'],
    ['GET', '/api/users/{other}/tokens', undefined, 'core.users.update'],
    ['POST', '/api/users/{other}/tokens', {}, 'core.users.update'],
    ['DELETE', '/api/users/{other}/tokens/00000000-0000-0000-0000-000000000000', undefined, 'core.users.update'],
    ['GET', '/api/roles', undefined, 'core.roles.read'],
    ['PUT', '/api/roles/admin', { permissions: ['*'] }, 'core.roles.manage'],
    ['PUT', '/api/roles/sneaky', { permissions: ['*'] }, 'core.roles.manage'],
    ['DELETE', '/api/roles/sneaky', undefined, 'core.roles.manage'],
    ['GET', '/api/audit', undefined, 'core.audit.read'],
    ['GET', '/api/audit?entity=core.users', undefined, 'core.audit.read'],
    ['GET', '/api/audit?entity=alpha.widgets', undefined, 'core.audit.read'],
    ['POST', '/api/meta/entities/alpha/widgets/fields', { name: 'extra', schema: { type: 'string' } }, 'core.customFields.manage'],
    ['DELETE', '/api/meta/entities/alpha/widgets/fields/extra', undefined, 'core.customFields.manage'],
    ['GET', '/api/alpha/stats', undefined, 'alpha.widgets.read'],
    ['GET', '/api/base/organizations', undefined, 'base.organizations.read'],
    ['GET', '/api/meta/entities', undefined, null],
    ['GET', '/api/meta/entities/alpha/widgets', undefined, null],
    ['GET', '/api/openapi.json', undefined, null],
    ['GET', '/api/auth/me', undefined, null],
  ];
  const fill = (p: string) => p.replace('{other}', other).replace('{self}', nobody.id);
  const cases = routes.map(([method, path, body, permission]) => ({ method, path, body, permission, needs: permission ?? '(any signed-in user)' }));

  it.each(cases)('$method $path answers 401 without a token', async ({ method, path, body }) => {
    const res = await t.api(method, fill(path), body, { token: null });
    expectProblem(res, 401, 'unauthenticated');
  });

  it.each(cases)('$method $path needs $needs: 403 without it, nothing written', async ({ method, path, body, permission }) => {
    const before = { audit: await t.count('kubiki_audit'), users: await t.count('kubiki_users'), roles: await t.count('kubiki_roles'), plugins: await t.count('kubiki_plugins') };
    const res = await t.api(method, fill(path), body, { token: nobody.token });
    if (permission === null) {
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    } else {
      expectForbidden(res, permission);
    }
    expect({ audit: await t.count('kubiki_audit'), users: await t.count('kubiki_users'), roles: await t.count('kubiki_roles'), plugins: await t.count('kubiki_plugins') }).toEqual(before);
  });

  it('a user reads their own profile and manages their own tokens without core permissions', async () => {
    const me = await t.api('GET', `/api/users/${nobody.id}`, undefined, { token: nobody.token });
    expect(me.status).toBe(200);
    const issued = await t.api('POST', `/api/users/${nobody.id}/tokens`, { name: 'mine' }, { token: nobody.token });
    expect(issued.status).toBe(201);
    expect((await t.api('GET', '/api/auth/me', undefined, { token: issued.body.token })).body.username).toBe(me.body.username);
    expect((await t.api('DELETE', `/api/users/${nobody.id}/tokens/${issued.body.id}`, undefined, { token: nobody.token })).status).toBe(204);
    expect((await t.api('GET', '/api/auth/me', undefined, { token: issued.body.token })).status).toBe(401);
  });

  it('the right permission opens the route', async () => {
    const ops = await t.userWith(['core.plugins.read', 'core.users.read', 'core.roles.read', 'core.audit.read']);
    for (const path of ['/api/plugins', '/api/users', `/api/users/${other}`, '/api/roles', '/api/audit?entity=core.users']) {
      expect((await t.api('GET', path, undefined, { token: ops.token })).status, path).toBe(200);
    }
    // Whoever reads every record of an entity may read its history without core.audit.read.
    const reader = await t.userWith(['alpha.widgets.read']);
    expect((await t.api('GET', '/api/audit?entity=alpha.widgets', undefined, { token: reader.token })).status).toBe(200);
    const ownReader = await t.userWith(['alpha.widgets.read:own']);
    expectForbidden(await t.api('GET', '/api/audit?entity=alpha.widgets', undefined, { token: ownReader.token }), 'core.audit.read');
  });
});
