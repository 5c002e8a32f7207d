import fs from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { configFromEnv } from '../../core/config.ts';
import { Kubiki } from '../../core/kernel.ts';
import { KubikiError, type ErrorCode } from '../../core/errors.ts';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS } from '../helpers/test-kubiki.ts';
import { entitySchema, manifest, tempPlugins, type TempPlugins } from './temp-plugins.ts';

// Every case writes its own plugin folder; boot must fail with a named KubikiError during discovery,
// before any database is opened (the embedded database folder must not even be created).
let dirs: TempPlugins[] = [];
afterEach(() => {
  for (const d of dirs) d.remove();
  dirs = [];
});

function plugins(): TempPlugins {
  const d = tempPlugins();
  dirs.push(d);
  return d;
}

async function bootError(pluginDirs: string[]): Promise<KubikiError> {
  // A folder without plugin.json inside the temp plugin root: ignored by discovery, removed with the root.
  const dataDir = path.join(pluginDirs[pluginDirs.length - 1], 'db');
  const config = configFromEnv({}, { pluginDirs, dataDir, dbSchema: 'boot_errors', logLevel: 'silent', adminToken: 'kbk_unused' });
  let error: unknown;
  try {
    const k = await Kubiki.create({ config, background: false, logger: pino({ level: 'silent' }), env: {} });
    await k.close();
  } catch (e) {
    error = e;
  } finally {
    const touched = fs.existsSync(dataDir);
    fs.rmSync(dataDir, { recursive: true, force: true });
    expect(touched, 'boot errors must come before the database is opened').toBe(false);
  }
  expect(error, 'Kubiki.create should have failed').toBeInstanceOf(KubikiError);
  return error as KubikiError;
}

async function expectBootError(pluginDirs: string[], code: ErrorCode, ...mentions: (string | RegExp)[]): Promise<KubikiError> {
  const error = await bootError(pluginDirs);
  expect({ code: error.code, message: error.message }).toMatchObject({ code });
  for (const m of mentions) expect(error.message).toMatch(m);
  return error;
}

describe('plugin boot errors', () => {
  it('names a missing dependency', async () => {
    const p = plugins();
    p.write('gamma', { 'plugin.json': manifest('gamma', { dependsOn: ['nosuchplugin'] }) });
    await expectBootError([SHIPPED_PLUGINS, p.root], 'missing-dependency', /plugin gamma\b/, /nosuchplugin/);
  });

  it('names a dependency cycle, showing the cycle', async () => {
    const p = plugins();
    p.write('aaa', { 'plugin.json': manifest('aaa', { dependsOn: ['bbb'] }) });
    p.write('bbb', { 'plugin.json': manifest('bbb', { dependsOn: ['aaa'] }) });
    const error = await expectBootError([SHIPPED_PLUGINS, p.root], 'dependency-cycle');
    expect(error.message).toContain('aaa → bbb → aaa');
  });

  it('names a longer cycle through a plugin that is not itself in it', async () => {
    const p = plugins();
    p.write('ccc', { 'plugin.json': manifest('ccc', { dependsOn: ['ddd'] }) });
    p.write('ddd', { 'plugin.json': manifest('ddd', { dependsOn: ['eee'] }) });
    p.write('eee', { 'plugin.json': manifest('eee', { dependsOn: ['fff'] }) });
    p.write('fff', { 'plugin.json': manifest('fff', { dependsOn: ['ddd'] }) });
    const error = await expectBootError([SHIPPED_PLUGINS, p.root], 'dependency-cycle');
    expect(error.message).toContain('ddd → eee → fff → ddd');
    expect(error.message).not.toContain('ccc');
  });

  it('refuses a plugin that does not support this core version', async () => {
    const p = plugins();
    p.write('gamma', { 'plugin.json': manifest('gamma', { core: '>=2.0.0' }) });
    await expectBootError([SHIPPED_PLUGINS, p.root], 'unsupported-core-version', /plugin gamma\b/, />=2\.0\.0/, /0\.1\.0/);
  });

  it('refuses a core range that is not semver', async () => {
    const p = plugins();
    p.write('gamma', { 'plugin.json': manifest('gamma', { core: 'latest and greatest' }) });
    await expectBootError([SHIPPED_PLUGINS, p.root], 'invalid-manifest', /plugin gamma\b/);
  });

  describe('invalid manifests', () => {
    it('a bad name', async () => {
      const p = plugins();
      p.write('Bad_Name', { 'plugin.json': manifest('Bad_Name') });
      await expectBootError([p.root], 'invalid-manifest', /Bad_Name/, /\/name/);
    });

    it('a missing version', async () => {
      const p = plugins();
      const { version: _, ...noVersion } = manifest('gamma');
      p.write('gamma', { 'plugin.json': noVersion });
      await expectBootError([p.root], 'invalid-manifest', /gamma/, /version/);
    });

    it('an unknown key, named in the message', async () => {
      const p = plugins();
      p.write('gamma', { 'plugin.json': manifest('gamma', { dependOn: ['base'] }) });
      await expectBootError([p.root], 'invalid-manifest', /gamma/, /dependOn/);
    });

    it('a manifest that is not JSON', async () => {
      const p = plugins();
      p.write('gamma', { 'plugin.json': '{ "name": "gamma", ' });
      await expectBootError([p.root], 'invalid-manifest', /gamma/);
    });

    it('a folder not named after the plugin', async () => {
      const p = plugins();
      p.write('gamma', { 'plugin.json': manifest('delta') });
      await expectBootError([p.root], 'invalid-manifest', /delta/, /gamma/);
    });

    it('the same plugin found twice', async () => {
      const p = plugins();
      p.copy(path.join(FIXTURE_PLUGINS, 'alpha'));
      await expectBootError([SHIPPED_PLUGINS, FIXTURE_PLUGINS, p.root], 'invalid-manifest', /alpha/, /twice/);
    });

    for (const reserved of ['users', 'plugins', 'api']) {
      it(`a name reserved for the core API ("${reserved}")`, async () => {
        const p = plugins();
        p.write(reserved, { 'plugin.json': manifest(reserved) });
        await expectBootError([p.root], 'invalid-manifest', new RegExp(`"${reserved}"`), /reserved/);
      });
    }
  });

  describe('invalid entity schemas', () => {
    const withEntity = (schema: unknown, extra: Record<string, unknown> = {}): TempPlugins => {
      const p = plugins();
      p.write('gamma', { 'plugin.json': manifest('gamma', { entities: ['thing'], ...extra }), 'entities/thing.schema.json': schema as object });
      return p;
    };

    it('"type": "number"', async () => {
      const p = withEntity(entitySchema('things', { weight: { type: 'number' } }));
      await expectBootError([SHIPPED_PLUGINS, p.root], 'invalid-entity-schema', /plugin gamma\b/, /weight/, /number/);
    });

    it('a missing x-plural', async () => {
      const { 'x-plural': _, ...schema } = entitySchema('things');
      const p = withEntity(schema);
      await expectBootError([SHIPPED_PLUGINS, p.root], 'invalid-entity-schema', /plugin gamma\b/, /x-plural/);
    });

    for (const name of ['id', 'version', 'createdAt', 'sort']) {
      it(`a reserved field name ("${name}")`, async () => {
        const p = withEntity(entitySchema('things', { [name]: { type: 'string' } }));
        await expectBootError([SHIPPED_PLUGINS, p.root], 'invalid-entity-schema', /plugin gamma\b/, new RegExp(`"${name}" is reserved`));
      });
    }

    it('a keyword JSON Schema does not know (a typo) or a broken pattern', async () => {
      const typo = withEntity(entitySchema('things', { label: { type: 'string', maxLenght: 5 } }));
      await expectBootError([SHIPPED_PLUGINS, typo.root], 'invalid-entity-schema', /plugin gamma, entity thing/, /maxLenght/);
      const pattern = withEntity(entitySchema('things', { label: { type: 'string', pattern: '([' } }));
      await expectBootError([SHIPPED_PLUGINS, pattern.root], 'invalid-entity-schema', /plugin gamma, entity thing/);
    });

    it('an entity listed in the manifest without its file', async () => {
      const p = plugins();
      p.write('gamma', { 'plugin.json': manifest('gamma', { entities: ['ghost'] }) });
      await expectBootError([SHIPPED_PLUGINS, p.root], 'invalid-entity-schema', /plugin gamma\b/, /ghost/);
    });

    it('an entity file that is not JSON', async () => {
      const p = withEntity('{"type": "object",');
      await expectBootError([SHIPPED_PLUGINS, p.root], 'invalid-entity-schema', /gamma/);
    });

    it('x-ref to an entity of a plugin it does not depend on is a missing dependency', async () => {
      const p = withEntity(entitySchema('things', { widget: { type: 'string', 'x-ref': 'alpha.widgets' } }));
      await expectBootError([SHIPPED_PLUGINS, FIXTURE_PLUGINS, p.root], 'missing-dependency', /plugin gamma\b/, /alpha\.widgets/, /does not depend on alpha/);
    });

    it('x-ref to a plugin that does not exist is a missing dependency', async () => {
      const p = withEntity(entitySchema('things', { widget: { type: 'string', 'x-ref': 'nowhere.widgets' } }));
      await expectBootError([SHIPPED_PLUGINS, p.root], 'missing-dependency', /plugin gamma\b/, /nowhere/);
    });

    it('x-ref is accepted through a transitive dependency and to the always-enabled base', async () => {
      const p = withEntity(entitySchema('things', {
        widget: { type: 'string', 'x-ref': 'alpha.widgets' },
        organization: { type: 'string', 'x-ref': 'base.organizations' },
      }), { dependsOn: ['beta'] });
      // Proves the schema itself is fine: the only error left is the deliberately missing folder of a
      // plugin the fixture needs (so that the boot still stops before the database).
      p.write('zeta', { 'plugin.json': manifest('zeta', { dependsOn: ['omega'] }) });
      await expectBootError([SHIPPED_PLUGINS, FIXTURE_PLUGINS, p.root], 'missing-dependency', /plugin zeta\b/, /omega/);
    });
  });
});
