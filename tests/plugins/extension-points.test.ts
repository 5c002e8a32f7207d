// Typed extension points: an owner hears contributions made before it starts and after (a plugin
// enabled later) at once, with no timer; a malformed contribution is refused at boot naming the
// plugin, the point and the field; only plugins that depend on or enhance the owner may contribute.
import { afterEach, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { manifest, tempPlugins, type TempPlugins } from './temp-plugins.ts';

let dirs: TempPlugins[] = [];
let t: TestKubiki | undefined;
afterEach(async () => {
  await t?.close();
  t = undefined;
  for (const d of dirs) d.remove();
  dirs = [];
});

const RULE_SCHEMA = {
  type: 'object', required: ['name', 'apply'], additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z-]+$' },
    apply: { 'x-function': true, tsType: '(price: string) => string' },
  },
};

/** `owner` declares pricing rules and records, in order, what it heard and when. */
function pluginsWith(contributor: { name: string; manifest?: Record<string, unknown>; rule: string }): TempPlugins {
  const d = tempPlugins();
  dirs.push(d);
  d.write('owner', {
    'plugin.json': manifest('owner', { extensionPoints: [{ name: 'pricingRules', description: 'Price rules', schema: RULE_SCHEMA }] }),
    'index.ts': `import { definePlugin } from 'kubiki/plugin';
export default definePlugin({
  async setup(ctx) {
    const heard: string[] = [];
    await ctx.onContribution<{ name: string; apply(p: string): string }>('pricingRules', (rule, from) => { heard.push(from + ':' + rule.name + '=' + rule.apply('10')); });
    ctx.route({ method: 'get', path: '/heard', operationId: 'heard', summary: 'What the owner heard', permission: 'signed-in',
      schemas: { responses: { 200: { type: 'object', required: ['heard', 'listed'], properties: { heard: { type: 'array', items: { type: 'string' } }, listed: { type: 'array', items: { type: 'string' } } } } } },
      handler(_input, http) { http.body = { heard, listed: ctx.contributions<{ name: string }>('pricingRules').map((r) => r.name) }; } });
  },
});
`,
  });
  d.write(contributor.name, {
    'plugin.json': manifest(contributor.name, contributor.manifest ?? { enhances: ['owner'] }),
    'index.ts': `import { definePlugin } from 'kubiki/plugin';
export default definePlugin({ async setup(ctx) { await ctx.contribute('owner.pricingRules', ${contributor.rule}); } });
`,
  });
  return d;
}

describe('extension points', () => {
  it('the owner hears a contribution made before it started, and one from a plugin enabled later, at once', async () => {
    const d = pluginsWith({ name: 'early', rule: `{ name: 'double', apply: (p) => String(Number(p) * 2) }` });
    d.write('late', {
      'plugin.json': manifest('late', { enhances: ['owner'] }),
      'index.ts': `import { definePlugin } from 'kubiki/plugin';
export default definePlugin({ async setup(ctx) { await ctx.contribute('owner.pricingRules', { name: 'plus-one', apply: (p) => String(Number(p) + 1) }); } });
`,
    });
    t = await startKubiki({ pluginDirs: [d.root], enable: ['owner', 'early'] });
    expect((await t.api('GET', '/api/owner/heard')).body).toEqual({ heard: ['early:double=20'], listed: ['double'] });
    for (const action of ['install', 'enable']) expect((await t.api('POST', `/api/plugins/late/${action}`)).status).toBe(200);
    // Heard within the enable call: no timer, no polling.
    expect((await t.api('GET', '/api/owner/heard')).body).toEqual({ heard: ['early:double=20', 'late:plus-one=11'], listed: ['double', 'plus-one'] });
    expect((await t.api('POST', '/api/plugins/late/disable')).status).toBe(200);
    expect((await t.api('GET', '/api/owner/heard')).body.listed).toEqual(['double']);
  });

  it('refuses a malformed contribution at boot, naming the plugin, the point and the field', async () => {
    const d = pluginsWith({ name: 'sloppy', rule: `{ name: 'Bad Name', apply: 'not a function' }` });
    const error = await startKubiki({ pluginDirs: [d.root], enable: ['owner', 'sloppy'] }).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalid-contribution', extra: { plugin: 'sloppy', point: 'owner.pricingRules' } });
    const message = (error as Error).message;
    expect(message).toContain('sloppy');
    expect(message).toContain('owner.pricingRules');
    expect(message).toMatch(/name: .*pattern|name/);
    expect(message).toContain('apply');
  });

  it('refuses a contribution from a plugin that neither depends on nor enhances the owner', async () => {
    const d = pluginsWith({ name: 'stranger', manifest: {}, rule: `{ name: 'free', apply: (p) => p }` });
    const error = await startKubiki({ pluginDirs: [d.root], enable: ['owner', 'stranger'] }).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalid-contribution', extra: { plugin: 'stranger', point: 'owner.pricingRules' } });
    expect((error as Error).message).toMatch(/neither depends on nor enhances owner/);
  });

  it('lets a plugin enhance one that is not installed at all, and still refuses a misspelt point of one that is', async () => {
    const d = tempPlugins();
    dirs.push(d);
    d.write('owner', { 'plugin.json': manifest('owner', { extensionPoints: [{ name: 'pricingRules', schema: RULE_SCHEMA }] }) });
    // enhances an absent plugin "crm": its contribution goes nowhere, the plugin starts.
    d.write('lonely', {
      'plugin.json': manifest('lonely', { enhances: ['crm', 'owner'] }),
      'index.ts': `import { definePlugin } from 'kubiki/plugin';\nexport default definePlugin({ async setup(ctx) { await ctx.contribute('crm.customerFacts', { name: 'x' }); } });\n`,
    });
    t = await startKubiki({ pluginDirs: [d.root], enable: ['owner', 'lonely'] });
    expect((await t.api('GET', '/api/plugins')).body.data.find((p: { name: string }) => p.name === 'lonely')).toMatchObject({ state: 'enabled' });
    await t.close();
    t = undefined;
    // (A new plugin name: the module of "lonely" is cached by this process.)
    d.write('typo', {
      'plugin.json': manifest('typo', { enhances: ['crm', 'owner'] }),
      'index.ts': `import { definePlugin } from 'kubiki/plugin';\nexport default definePlugin({ async setup(ctx) { await ctx.contribute('owner.pricingRule', { name: 'x' }); } });\n`,
    });
    const error = await startKubiki({ pluginDirs: [d.root], enable: ['owner', 'typo'] }).then(() => undefined, (e: unknown) => e);
    expect(error).toMatchObject({ code: 'invalid-contribution' });
    expect((error as Error).message).toMatch(/owner\.pricingRule, which no plugin declares/);
  }, 120_000);
});
