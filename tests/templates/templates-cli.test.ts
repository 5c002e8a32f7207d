import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';

// `kubiki templates` end to end, as child processes on their own database (a PGlite folder, or a
// fresh schema of DATABASE_URL's database). Every spawn boots Kubiki, so they are few.

interface Run { code: number | null; stdout: string; stderr: string }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-templates-cli-'));
const schema = `tcli_${randomBytes(6).toString('hex')}`;

function env(): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('KUBIKI_') && key !== 'DATABASE_URL' && key !== 'PORT' && key !== 'HOST' && key !== 'EDITOR' && key !== 'VISUAL') out[key] = value;
  }
  out.LOG_LEVEL = 'warn';
  if (process.env.DATABASE_URL) {
    out.DATABASE_URL = process.env.DATABASE_URL;
    out.KUBIKI_DB_SCHEMA = schema;
  } else {
    out.KUBIKI_DATA_DIR = path.join(tmp, 'data');
  }
  return out;
}

function kubiki(args: string[]): Promise<Run> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'core/cli/main.ts', ...args], { cwd: repoRoot, env: env(), stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`kubiki ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, 60_000);
    child.on('error', reject);
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

async function ok(args: string[]): Promise<string> {
  const run = await kubiki(args);
  expect(run.code, `kubiki ${args.join(' ')}\n${run.stdout}\n${run.stderr}`).toBe(0);
  return run.stdout;
}

afterAll(async () => {
  if (process.env.DATABASE_URL) {
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query(`drop schema if exists "${schema}" cascade`);
    } finally {
      await client.end();
    }
  }
  fs.rmSync(tmp, { recursive: true, force: true });
});

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
