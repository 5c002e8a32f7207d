// Posting rules without polling: finance hears every contribution to finance.postingRules through
// ctx.onContribution — one made by a plugin enabled after finance started included — and subscribes
// to its entity's events there and then. The rule is the README's example, taken from README.md.
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { entitySchema, manifest, tempPlugins, type TempPlugins } from '../plugins/temp-plugins.ts';

/** The object README.md's plugin example passes to ctx.contribute('finance.postingRules', …). */
function readmeRule(): string {
  const readme = fs.readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const call = "ctx.contribute('finance.postingRules', ";
  const start = readme.indexOf(call);
  expect(start, 'README.md has a finance.postingRules example').toBeGreaterThan(0);
  const open = start + call.length;
  expect(readme[open]).toBe('{');
  let depth = 0;
  for (let i = open; i < readme.length; i++) {
    if (readme[i] === '{') depth++;
    else if (readme[i] === '}' && --depth === 0) return readme.slice(open, i + 1);
  }
  throw new Error('the README example\'s rule never closes');
}

let dirs: TempPlugins;
let t: TestKubiki;
beforeAll(async () => {
  dirs = tempPlugins();
  // The README's `stock` plugin: stock.moves with a kind, a date and a value; it enhances finance to contribute.
  dirs.write('stock', {
    'plugin.json': manifest('stock', { enhances: ['finance'], entities: ['move'] }),
    'entities/move.schema.json': entitySchema('moves', {
      kind: { type: 'string', enum: ['receipt', 'issue'] },
      date: { type: 'string', format: 'date' },
      value: { type: 'string', 'x-decimal': { precision: 18, scale: 2 } },
    }),
    'index.ts': `import { definePlugin } from 'kubiki/plugin';
export default definePlugin({
  async setup(ctx) {
    await ctx.contribute('finance.postingRules', ${readmeRule()});
  },
});
`,
  });
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, dirs.root], enable: ['base', 'finance'] });
});
afterAll(async () => {
  await t?.close();
  dirs?.remove();
});

describe('posting rules', () => {
  it('the README example\'s rule, contributed by a plugin enabled after finance started, posts at once', async () => {
    expect((await t.api('GET', '/api/finance/posting-rules')).body).toEqual({ data: [] });
    for (const action of ['install', 'enable']) {
      const r = await t.api('POST', `/api/plugins/stock/${action}`);
      expect(r.status, JSON.stringify(r.body)).toBe(200);
    }
    // No finance request, no timer in between: the contribution subscribed finance when it was made.
    const move = await t.api('POST', '/api/stock/moves', { title: 'M-1', kind: 'receipt', date: '2026-06-03', value: '1500.00' });
    expect(move.status, JSON.stringify(move.body)).toBe(201);
    const issue = await t.api('POST', '/api/stock/moves', { title: 'M-2', kind: 'issue', date: '2026-06-04', value: '10.00' });
    expect(issue.status).toBe(201);
    await t.k.dispatcher.drainAll();
    const entries = await t.api('GET', `/api/finance/entries?sourceEntity=stock.moves&sourceId=${move.body.id}`);
    expect(entries.body.data).toHaveLength(1);
    expect(entries.body.data[0]).toMatchObject({
      date: '2026-06-03', source: { entity: 'stock.moves', id: move.body.id }, sourceKey: expect.stringMatching(/^rule:stock-receipt:/),
      lines: [{ account: '41', debit: '1500.00' }, { account: '60', credit: '1500.00' }],
    });
    // `when` said no to the issue; an update is not a creation for this rule.
    expect((await t.api('GET', `/api/finance/entries?sourceEntity=stock.moves&sourceId=${issue.body.id}`)).body.data).toEqual([]);
    await t.api('PATCH', `/api/stock/moves/${move.body.id}`, { title: 'M-1 (checked)' });
    await t.k.dispatcher.drainAll();
    expect((await t.api('GET', '/api/finance/entries?sourceEntity=stock.moves')).body.data).toHaveLength(1);
    expect((await t.api('GET', '/api/finance/posting-rules')).body).toEqual({ data: [{ name: 'stock-receipt', entity: 'stock.moves', subscribed: true }] });
  });

  it('a disabled contributor\'s rule no longer posts or lists', async () => {
    expect((await t.api('POST', '/api/plugins/stock/disable')).status).toBe(200);
    expect((await t.api('GET', '/api/finance/posting-rules')).body).toEqual({ data: [] });
  });

  it('refuses a rule whose entries break the entry schema, naming the rule and the field; nothing posted', async () => {
    const d = tempPlugins();
    try {
      d.write('sloppy', {
        'plugin.json': manifest('sloppy', { enhances: ['finance'], entities: ['thing'] }),
        'entities/thing.schema.json': entitySchema('things'),
        'index.ts': `import { definePlugin } from 'kubiki/plugin';
export default definePlugin({
  async setup(ctx) {
    await ctx.contribute('finance.postingRules', { name: 'sloppy-thing', entity: 'sloppy.things', when: () => true,
      entries: () => [{ date: '2026-06-05', lines: [{ account: '50', debit: 5 }, { account: '80', credit: '5.00' }] }] });
  },
});
`,
      });
      const s = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, d.root], enable: ['base', 'finance', 'sloppy'] });
      try {
        const thing = await s.api('POST', '/api/sloppy/things', { title: 'x' });
        expect(thing.status).toBe(201);
        await s.k.dispatcher.drainAll();
        const [row] = await s.k.db.table('kubiki_outbox').where({ event: 'sloppy.things.created' }).select('dispatched_at', 'last_error');
        expect(row.dispatched_at).toBeNull();
        expect(row.last_error).toContain('postingRules.sloppy-thing.entries.0.lines.0.debit');
        expect(await s.count('finance_entries')).toBe(0);
      } finally {
        await s.close();
      }
    } finally {
      d.remove();
    }
  });
});
