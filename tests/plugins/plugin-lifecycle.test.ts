import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, newSchemaName, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { sharedKnex } from '../helpers/shared-database.ts';
import { entitySchema, manifest, tempPlugins } from './temp-plugins.ts';

type Status = { name: string; state: string; version: string; installedVersion: string | null };

async function states(t: TestKubiki, token?: string): Promise<Record<string, Status>> {
  const r = await t.api<{ data: Status[] }>('GET', '/api/plugins', undefined, { token });
  expect(r.status).toBe(200);
  return Object.fromEntries(r.body.data.map((p) => [p.name, p]));
}

async function tables(t: TestKubiki): Promise<string[]> {
  return t.k.db.knex('information_schema.tables').where({ table_schema: t.schema }).orderBy('table_name').pluck('table_name');
}

async function columns(t: TestKubiki, table: string): Promise<Record<string, string>> {
  const rows: { column_name: string; udt_name: string }[] = await t.k.db.knex('information_schema.columns')
    .where({ table_schema: t.schema, table_name: table }).select('column_name', 'udt_name');
  return Object.fromEntries(rows.map((r) => [r.column_name, r.udt_name]));
}

const pluginAudit = (t: TestKubiki, name: string, action?: string) =>
  t.k.db.table('kubiki_audit').where({ plugin: 'core', entity: 'plugins', record_id: name, ...(action ? { action } : {}) }).orderBy('id').select();

describe('plugin lifecycle over REST', () => {
  let t: TestKubiki;
  beforeAll(async () => {
    t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS] });
  });
  afterAll(() => t?.close());

  const post = (name: string, action: string, token?: string) => t.api('POST', `/api/plugins/${name}/${action}`, undefined, { token });

  it('lists plugins: base enabled, the fixtures available', async () => {
    const s = await states(t);
    expect(s.base).toMatchObject({ state: 'enabled', installedVersion: '0.1.0' });
    expect(s.alpha).toMatchObject({ state: 'available', version: '1.0.0', installedVersion: null });
    expect(s.beta).toMatchObject({ state: 'available', installedVersion: null, dependsOn: ['alpha'] });
    expect(await tables(t)).not.toContain('alpha_widgets');
    expect((await t.api('GET', '/api/alpha/widgets')).status).toBe(404);
  });

  it('answers 404 for an unknown plugin and an unknown action', async () => {
    for (const action of ['install', 'enable', 'disable']) {
      const r = await post('nosuchplugin', action);
      expect(r.status).toBe(404);
      expect(r.body).toMatchObject({ code: 'unknown-plugin' });
    }
    expect((await post('alpha', 'explode')).status).toBe(404);
    expect((await states(t)).alpha.state).toBe('available');
  });

  it('needs core.plugins.manage to change a state (403) and core.plugins.read to list', async () => {
    const reader = await t.userWith(['core.plugins.read', 'alpha.widgets.read']);
    expect((await t.api('GET', '/api/plugins', undefined, { token: reader.token })).status).toBe(200);
    for (const action of ['install', 'enable', 'disable']) {
      const r = await post('alpha', action, reader.token);
      expect(r.status).toBe(403);
      expect(r.body.code).toBe('forbidden');
    }
    const nobody = await t.userWith(['base.organizations.read']);
    expect((await t.api('GET', '/api/plugins', undefined, { token: nobody.token })).status).toBe(403);
    expect((await post('alpha', 'install', null as unknown as string)).status).toBe(401);
    expect((await states(t)).alpha.state).toBe('available');
    expect(await pluginAudit(t, 'alpha')).toHaveLength(0);
  });

  it('refuses to install beta before its dependency alpha is installed', async () => {
    const r = await post('beta', 'install');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('lifecycle-conflict');
    expect(r.body.detail).toContain('alpha');
    expect(await tables(t)).not.toContain('beta_gadgets');
    expect(await t.count('kubiki_plugins', { name: 'beta' })).toBe(0);
  });

  it('refuses to enable a plugin that is not installed', async () => {
    const r = await post('alpha', 'enable');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('lifecycle-conflict');
  });

  it('installs alpha: tables, its hand-written migration, a kubiki_plugins row and an audit row', async () => {
    const r = await post('alpha', 'install');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'alpha', state: 'installed', installedVersion: '1.0.0' });
    expect(await tables(t)).toEqual(expect.arrayContaining(['alpha_widgets', 'alpha_parts', 'alpha_widget_stats']));
    expect(await columns(t, 'alpha_widgets')).toMatchObject({ code: 'text', price: 'numeric', quantity: 'int4', tags: 'jsonb', organization: 'uuid' });
    expect(await t.k.db.table('kubiki_plugin_migrations').where({ plugin: 'alpha' }).pluck('name')).toEqual(['001-widget-stats.ts']);
    expect(await t.k.db.table('kubiki_plugins').where({ name: 'alpha' }).first('version', 'state')).toEqual({ version: '1.0.0', state: 'installed' });
    const audit = await pluginAudit(t, 'alpha');
    expect(audit).toHaveLength(1);
    // The role the plugin offers exists now, and its creation is audited.
    const roles = (await t.api('GET', '/api/roles')).body as { name: string; permissions: string[] }[] | { data: { name: string; permissions: string[] }[] };
    const list = Array.isArray(roles) ? roles : roles.data;
    expect(list.find((r) => r.name === 'widget-clerk')?.permissions).toEqual(['alpha.widgets.*', 'base.organizations.read']);
    expect(await t.count('kubiki_audit', { entity: 'roles', record_id: 'widget-clerk', action: 'created' })).toBe(1);
    expect(audit[0]).toMatchObject({ action: 'installed', actor: 'admin', changes: { state: { before: 'available', after: 'installed' } } });
    // Installed is not enabled: the API stays hidden.
    expect((await t.api('GET', '/api/alpha/widgets')).status).toBe(404);
    expect((await t.api('GET', '/api/alpha/stats')).status).toBe(404);

    const again = await post('alpha', 'install');
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('lifecycle-conflict');
  });

  it('refuses to enable beta while alpha is not enabled, naming alpha', async () => {
    expect((await post('beta', 'install')).status).toBe(200);
    expect(await tables(t)).toContain('beta_gadgets');
    const r = await post('beta', 'enable');
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'lifecycle-conflict', plugin: 'beta', dependencies: ['alpha'] });
    expect(r.body.detail).toContain('alpha');
    expect((await states(t)).beta.state).toBe('installed');
    expect(await pluginAudit(t, 'beta', 'enabled')).toHaveLength(0);
  });

  it('enables alpha then beta; their APIs appear', async () => {
    const a = await post('alpha', 'enable');
    expect(a.status).toBe(200);
    expect(a.body.state).toBe('enabled');
    expect((await post('beta', 'enable')).body.state).toBe('enabled');
    expect(await pluginAudit(t, 'alpha', 'enabled')).toHaveLength(1);
    expect((await t.api('GET', '/api/alpha/widgets')).status).toBe(200);
    expect((await t.api('GET', '/api/beta/gadgets')).status).toBe(200);
    const stats = await t.api('GET', '/api/alpha/stats');
    expect(stats.status).toBe(200);
    expect(stats.body).toEqual({ created: 0, pricingRules: ['beta-discount'] });
    const s = await states(t);
    expect([s.alpha.state, s.beta.state]).toEqual(['enabled', 'enabled']);
    // Enabling an enabled plugin changes nothing and audits nothing.
    expect((await post('alpha', 'enable')).status).toBe(200);
    expect(await pluginAudit(t, 'alpha', 'enabled')).toHaveLength(1);
  });

  it('refuses to disable alpha while beta (enabled) depends on it, naming beta', async () => {
    const r = await post('alpha', 'disable');
    expect(r.status).toBe(409);
    expect(r.body).toMatchObject({ code: 'lifecycle-conflict', plugin: 'alpha', dependents: ['beta'] });
    expect(r.body.detail).toContain('beta');
    expect((await states(t)).alpha.state).toBe('enabled');
  });

  it('never disables base', async () => {
    const r = await post('base', 'disable');
    expect(r.status).toBe(409);
    expect(r.body.code).toBe('lifecycle-conflict');
    expect((await states(t)).base.state).toBe('enabled');
    expect((await t.api('GET', '/api/base/organizations')).status).toBe(200);
  });

  it('disabling keeps every row and hides /api/alpha/* (custom routes too) until enabled again', async () => {
    const w = await t.api('POST', '/api/alpha/widgets', { code: 'KEEP-1', name: 'Kept' });
    expect(w.status).toBe(201);
    const part = await t.api('POST', '/api/alpha/parts', { label: 'bolt', widget: w.body.id });
    expect(part.status).toBe(201);
    const g = await t.api('POST', '/api/beta/gadgets', { title: 'G', widget: w.body.id });
    expect(g.status).toBe(201);
    await t.k.dispatcher.drainAll();
    expect((await t.api('GET', '/api/alpha/stats')).body.created).toBe(1);

    expect((await post('beta', 'disable')).body.state).toBe('disabled');
    expect((await post('alpha', 'disable')).body.state).toBe('disabled');
    expect(await pluginAudit(t, 'alpha', 'disabled')).toHaveLength(1);
    expect(await t.k.db.table('kubiki_plugins').where({ name: 'alpha' }).first('state')).toEqual({ state: 'disabled' });

    for (const [method, p] of [
      ['GET', '/api/alpha/widgets'], ['GET', `/api/alpha/widgets/${w.body.id}`], ['GET', '/api/alpha/stats'],
      ['GET', '/api/beta/gadgets'], ['PATCH', `/api/alpha/widgets/${w.body.id}`], ['DELETE', `/api/alpha/widgets/${w.body.id}`],
    ] as const) {
      const r = await t.api(method, p, method === 'PATCH' ? { name: 'x' } : undefined);
      expect(r.status, `${method} ${p}`).toBe(404);
    }
    expect((await t.api('POST', '/api/alpha/widgets', { code: 'OFF-1', name: 'Off' })).status).toBe(404);
    expect(await t.count('alpha_widgets')).toBe(1);
    expect(await t.count('alpha_parts')).toBe(1);
    expect(await t.count('beta_gadgets')).toBe(1);
    expect(await t.count('alpha_widget_stats')).toBe(1);
    // Its entities leave the OpenAPI document while disabled.
    expect(Object.keys((await t.api('GET', '/api/openapi.json')).body.paths)).not.toContain('/api/alpha/widgets');

    // Disabling twice is a conflict; beta cannot come back before alpha.
    expect((await post('alpha', 'disable')).status).toBe(409);
    expect((await post('beta', 'enable')).status).toBe(409);

    expect((await post('alpha', 'enable')).status).toBe(200);
    const back = await t.api('GET', `/api/alpha/widgets/${w.body.id}`);
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ code: 'KEEP-1', name: 'Kept', version: 1 });
    expect((await t.api('GET', `/api/alpha/parts/${part.body.id}`)).body).toMatchObject({ label: 'bolt' });
    expect((await t.api('GET', '/api/alpha/stats')).body).toEqual({ created: 1, pricingRules: [] });
    expect((await t.api('GET', '/api/beta/gadgets')).status).toBe(404);
    expect((await post('beta', 'enable')).status).toBe(200);
    expect((await t.api('GET', `/api/beta/gadgets/${g.body.id}`)).body).toMatchObject({ title: 'G' });
    // Re-enabling did not re-run migrations.
    expect(await t.k.db.table('kubiki_plugin_migrations').where({ plugin: 'alpha' }).count({ n: '*' })).toEqual([{ n: 1 }]);
  });

  it('keeps states in the database: a second instance on the same schema sees them and its changes reach the first', async () => {
    expect((await post('beta', 'disable')).status).toBe(200);
    const t2 = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], schema: t.schema, adminToken: t.adminToken });
    try {
      const s = await states(t2);
      expect(s.base.state).toBe('enabled');
      expect(s.alpha).toMatchObject({ state: 'enabled', installedVersion: '1.0.0' });
      expect(s.beta).toMatchObject({ state: 'disabled', installedVersion: '1.0.0' });
      expect((await t2.api('GET', '/api/alpha/widgets?code=KEEP-1')).body.data).toHaveLength(1);
      expect((await t2.api('GET', '/api/beta/gadgets')).status).toBe(404);

      // Enabled on the second instance; the first learns of it on refresh.
      expect((await t2.api('POST', '/api/plugins/beta/enable')).status).toBe(200);
      expect((await t2.api('GET', '/api/beta/gadgets')).status).toBe(200);
      expect((await states(t)).beta.state).toBe('disabled');
      await t.k.refresh();
      expect((await states(t)).beta.state).toBe('enabled');
      expect((await t.api('GET', '/api/beta/gadgets')).status).toBe(200);
    } finally {
      await t2.close({ keepSchema: true });
    }
    // The second instance closed without dropping the schema: the first still works on it.
    expect((await t.api('GET', '/api/alpha/widgets?code=KEEP-1')).body.data).toHaveLength(1);
  });
});

describe('install is all-or-nothing', () => {
  const dirs = tempPlugins();
  let t: TestKubiki;
  beforeAll(async () => {
    const plugin = (name: string, migration: string) => dirs.write(name, {
      'plugin.json': manifest(name, { entities: ['thing'] }),
      'entities/thing.schema.json': entitySchema('things', { amount: { type: 'string', 'x-decimal': { precision: 10, scale: 2 } } }),
      'migrations/001-scratch.ts': `export async function up({ schemaBuilder }) {\n  await schemaBuilder().createTable('${name}_scratch', (t) => { t.text('key').primary(); });\n}\n`,
      'migrations/002-bad.ts': migration,
    });
    plugin('throws', `export async function up({ schemaBuilder }) {\n  await schemaBuilder().createTable('throws_more', (t) => { t.text('key'); });\n  throw new Error('migration 002 fails on purpose');\n}\n`);
    plugin('badsql', `export async function up({ trx, table }) {\n  await table('badsql_scratch').insert({ key: 'a' });\n  await trx.raw('select * from no_such_table_anywhere');\n}\n`);
    dirs.write('noup', { 'plugin.json': manifest('noup', { entities: ['thing'] }), 'entities/thing.schema.json': entitySchema('things'), 'migrations/001-empty.ts': 'export const down = 1;\n' });
    dirs.write('badseed', {
      'plugin.json': manifest('badseed', { entities: ['thing'], seeds: ['seeds/things.json'] }),
      'entities/thing.schema.json': entitySchema('things'),
      'seeds/things.json': { entity: 'things', records: [{ title: 'fine' }, { title: 42 }] },
    });
    t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, dirs.root] });
  });
  afterAll(async () => {
    await t?.close();
    dirs.remove();
  });

  for (const [name, why] of [['throws', /fails on purpose/], ['badsql', /no_such_table_anywhere/], ['noup', /exports no up\(\)/], ['badseed', /title/]] as const) {
    it(`a failing migration (${name}) leaves no table, no plugin row, no migration record and no audit row`, async () => {
      const auditBefore = await t.count('kubiki_audit');
      const r = await t.api('POST', `/api/plugins/${name}/install`);
      expect(r.status).toBe(500);
      expect(r.body.code).toBe('migration-failed');
      expect(r.body.detail).toMatch(why);
      expect(r.body.detail).toContain(name);
      expect((await tables(t)).filter((n) => n.startsWith(`${name}_`))).toEqual([]);
      expect(await t.count('kubiki_plugins', { name })).toBe(0);
      expect(await t.count('kubiki_plugin_migrations', { plugin: name })).toBe(0);
      expect(await t.count('kubiki_audit')).toBe(auditBefore);
      expect((await states(t))[name]).toMatchObject({ state: 'available', installedVersion: null });
      expect((await t.api('POST', `/api/plugins/${name}/enable`)).status).toBe(409);
    });
  }
});

describe('upgrade', () => {
  const dirs = tempPlugins();
  const schema = newSchemaName();
  const boot = () => startKubiki({ pluginDirs: [SHIPPED_PLUGINS, dirs.root], enable: ['alpha'], schema, adminToken });
  let adminToken: string;
  let widgetId: string;
  beforeAll(() => {
    dirs.copy(path.join(FIXTURE_PLUGINS, 'alpha'));
  });
  afterAll(async () => {
    await (await sharedKnex()).raw('drop schema if exists ?? cascade', [schema]);
    dirs.remove();
  });

  it('starts alpha 1.0.0 and keeps a widget', async () => {
    const t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, dirs.root], enable: ['alpha'], schema });
    adminToken = t.adminToken;
    try {
      expect((await states(t)).alpha).toMatchObject({ state: 'enabled', installedVersion: '1.0.0' });
      const w = await t.api('POST', '/api/alpha/widgets', { code: 'OLD-1', name: 'Old', price: '10.50', quantity: 7 });
      expect(w.status).toBe(201);
      widgetId = w.body.id;
    } finally {
      await t.close({ keepSchema: true });
    }
  });

  it('upgrades to 1.1.0 on the next start: new column usable, new migration run, old rows intact, audited', async () => {
    dirs.editJson('alpha', 'plugin.json', (m) => { m.version = '1.1.0'; });
    dirs.editJson('alpha', 'entities/widget.schema.json', (s) => { s.properties.weight = { type: 'integer', minimum: 0 }; });
    dirs.write('alpha', {
      'migrations/002-widget-notes.ts': "export async function up({ schemaBuilder, table }) {\n  await schemaBuilder().createTable('alpha_widget_notes', (t) => { t.text('note'); });\n  await table('alpha_widget_notes').insert({ note: 'from 1.1.0' });\n}\n",
    });
    const t = await boot();
    try {
      expect((await states(t)).alpha).toMatchObject({ state: 'enabled', version: '1.1.0', installedVersion: '1.1.0' });
      expect(await t.k.db.table('kubiki_plugins').where({ name: 'alpha' }).first('version')).toEqual({ version: '1.1.0' });
      expect((await columns(t, 'alpha_widgets')).weight).toBe('int4');
      expect(await t.k.db.table('kubiki_plugin_migrations').where({ plugin: 'alpha' }).orderBy('name').pluck('name')).toEqual(['001-widget-stats.ts', '002-widget-notes.ts']);
      expect(await t.k.db.table('alpha_widget_notes').pluck('note')).toEqual(['from 1.1.0']);

      const old = await t.api('GET', `/api/alpha/widgets/${widgetId}`);
      expect(old.status).toBe(200);
      expect(old.body).toMatchObject({ code: 'OLD-1', name: 'Old', price: '10.50', quantity: 7, version: 1 });
      expect(old.body.weight).toBeUndefined();

      const patched = await t.api('PATCH', `/api/alpha/widgets/${widgetId}`, { weight: 3 });
      expect(patched.status).toBe(200);
      expect(patched.body).toMatchObject({ weight: 3, quantity: 7, version: 2 });
      const created = await t.api('POST', '/api/alpha/widgets', { code: 'NEW-1', name: 'New', weight: 5 });
      expect(created.status).toBe(201);
      expect((await t.api('GET', '/api/alpha/widgets?weight[gte]=4')).body.data.map((w: { code: string }) => w.code)).toEqual(['NEW-1']);
      expect((await t.api('POST', '/api/alpha/widgets', { code: 'NEW-2', name: 'Bad', weight: -1 })).status).toBe(400);

      const audit = await pluginAudit(t, 'alpha', 'upgraded');
      expect(audit).toHaveLength(1);
      expect(audit[0]).toMatchObject({ actor: 'system', changes: { version: { before: '1.0.0', after: '1.1.0' } } });
    } finally {
      await t.close({ keepSchema: true });
    }
  });

  it('starts again on the same version without upgrading twice', async () => {
    const t = await boot();
    try {
      expect(await pluginAudit(t, 'alpha', 'upgraded')).toHaveLength(1);
      expect((await t.api('GET', `/api/alpha/widgets/${widgetId}`)).body).toMatchObject({ weight: 3 });
    } finally {
      await t.close({ keepSchema: true });
    }
  });

  it('refuses to boot a plugin older than the installed one (plugin-downgrade)', async () => {
    dirs.editJson('alpha', 'plugin.json', (m) => { m.version = '1.0.9'; });
    const error = await boot().then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ name: 'KubikiError', code: 'plugin-downgrade' });
    expect((error as Error).message).toMatch(/plugin alpha 1\.0\.9 .*1\.1\.0/);
    expect(await (await sharedKnex()).withSchema(schema).table('kubiki_plugins').where({ name: 'alpha' }).first('version')).toEqual({ version: '1.1.0' });
  });

  it('refuses an upgrade that changes a field\'s type (incompatible-schema-change) and changes nothing', async () => {
    dirs.editJson('alpha', 'plugin.json', (m) => { m.version = '1.2.0'; });
    dirs.editJson('alpha', 'entities/widget.schema.json', (s) => {
      s.properties.quantity = { type: 'string' };
      s.properties.height = { type: 'integer' };
    });
    const error = await boot().then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ name: 'KubikiError', code: 'incompatible-schema-change' });
    expect((error as Error).message).toContain('alpha.widgets.quantity');
    const knex = await sharedKnex();
    expect(await knex.withSchema(schema).table('kubiki_plugins').where({ name: 'alpha' }).first('version')).toEqual({ version: '1.1.0' });
    const cols = await knex('information_schema.columns').where({ table_schema: schema, table_name: 'alpha_widgets' }).pluck('column_name');
    expect(cols).toContain('weight');
    expect(cols).not.toContain('height');
    expect(await knex.withSchema(schema).table('alpha_widgets').where({ id: widgetId }).first('quantity')).toEqual({ quantity: 7 });
  });
});

