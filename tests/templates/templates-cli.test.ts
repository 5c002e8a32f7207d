import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { CliSandbox } from '../helpers/cli-sandbox.ts';

// `kubiki templates` end to end, as child processes on their own database (a PGlite folder, or a
// fresh schema of DATABASE_URL's database). Every spawn boots Kubiki, so they are few.

const cli = new CliSandbox('tcli');
const tmp = cli.tmp;
const kubiki = (args: string[]) => cli.run(args);
const ok = (args: string[]) => cli.ok(args);

afterAll(() => cli.cleanup());

const CARD = 'base.organization-card';

describe('kubiki templates', { timeout: 120_000 }, () => {
  it('lists, refuses a broken edit with its position, saves and publishes, diffs and shows', async () => {
    fs.mkdirSync(path.join(tmp, 'data'), { recursive: true });
    const listed = await ok(['templates', 'list']);
    const row = listed.split('\n').find((l) => l.split(/\s+/)[0] === CARD);
    expect(row, listed).toBeDefined();
    // template, entity, published, latest, locale, title
    expect(row!.split(/\s+/).slice(0, 5)).toEqual([CARD, 'base.organizations', '1', '1', 'ru-RU']);

    const shipped = fs.readFileSync(path.join(repoRoot, 'templates/base/organization-card.hbs'), 'utf8');
    const broken = path.join(tmp, 'broken.hbs');
    fs.writeFileSync(broken, shipped.replace('<h1>Карточка контрагента</h1>', '<h1>Карточка контрагента</h1>\n{{#if record.inn}}'));
    const refused = await kubiki(['templates', 'edit', CARD, '--file', broken, '--comment', 'broken']);
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/template-compile-error/);
    expect(refused.stderr).toContain('line 3, column 1');
    expect(refused.stdout).not.toContain('saved');

    const edited = path.join(tmp, 'card.hbs');
    fs.writeFileSync(edited, shipped.replace('<h1>Карточка контрагента</h1>', '<h1>Карточка организации</h1>'));
    const out = await ok(['templates', 'edit', CARD, '--file', edited, '--comment', 'x', '--publish']);
    expect(out).toContain(`saved ${CARD} version 2`);
    expect(out).toContain(`published ${CARD} version 2`);

    const diff = await ok(['templates', 'diff', CARD, '1', '2']);
    expect(diff).toContain(`--- ${CARD}@1.hbs`);
    expect(diff).toContain(`+++ ${CARD}@2.hbs`);
    expect(diff).toMatch(/^-<h1>Карточка контрагента<\/h1>$/m);
    expect(diff).toMatch(/^\+<h1>Карточка организации<\/h1>$/m);
    expect(diff).toMatch(/^@@ -\d+,\d+ \+\d+,\d+ @@/m);

    const shown = await ok(['templates', 'show', CARD]);
    expect(shown).toBe(fs.readFileSync(edited, 'utf8'));
    const old = await ok(['templates', 'show', CARD, '--version', '1']);
    expect(old).toBe(shipped);
  });
});
