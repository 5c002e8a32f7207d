import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';

// `kubiki workflow validate|diagram` as a child process, on its own database (a PGlite folder or a
// fresh schema of DATABASE_URL's database). `validate` boots Kubiki, so spawns are few.

interface Run { code: number | null; stdout: string; stderr: string }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-wf-cli-'));
const schema = `wfcli_${randomBytes(6).toString('hex')}`;

function kubiki(args: string[]): Promise<Run> {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('KUBIKI_') && key !== 'DATABASE_URL') env[key] = value;
  }
  env.LOG_LEVEL = 'warn';
  if (process.env.DATABASE_URL) {
    env.DATABASE_URL = process.env.DATABASE_URL;
    env.KUBIKI_DB_SCHEMA = schema;
  } else {
    env.KUBIKI_DATA_DIR = path.join(tmp, 'data');
  }
  const child = spawn(process.execPath, ['--import', 'tsx', 'core/cli/main.ts', ...args], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
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

describe('kubiki workflow', { timeout: 120_000 }, () => {
  it('validate prints every error as path: message and exits 1; a sound definition prints "valid"', async () => {
    const bad = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(bad, [
      'id: workflows.bad',
      'title: Bad',
      'kind: automation',
      'trigger: { type: event, entity: crm.deals }',
      'start: a',
      'steps:',
      '  a: { type: condition, if: "record.x >", then: b, else: ghost }',
      '  b: { type: nope }',
      '  c: { type: approval, assignees: { role: pirates }, approved: a, rejected: a }',
      '',
    ].join('\n'));
    const failed = await kubiki(['workflow', 'validate', bad]);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    const lines = failed.stdout.split('\n');
    expect(lines).toContain('/steps/b/type: unknown step type "nope"; use one of condition, switch, set, createRecord, updateRecord, queryRecords, callAction, notify, http, wait, approval, parallel, join, subWorkflow, renderDocument, end');
    expect(lines).toContain('/steps/a/else: step "a" goes to "ghost", but there is no step with that id');
    expect(lines.some((l) => l.startsWith('/trigger/entity: there is no entity crm.deals'))).toBe(true);
    expect(lines.some((l) => l.startsWith('/steps/c/assignees/role: there is no role "pirates"'))).toBe(true);
    expect(lines.some((l) => /^\/steps\/a\/if: the expression has a syntax error at line 1, column \d+/.test(l))).toBe(true);

    const good = await kubiki(['workflow', 'validate', 'workflows/examples/product-lifecycle.yaml']);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout.trim().split('\n').at(-1)).toBe('valid');
  });

  it('diagram prints Mermaid without a database', async () => {
    const run = await kubiki(['workflow', 'diagram', 'workflows/examples/organization-onboarding.yaml']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^flowchart TD\n/);
    expect(run.stdout).toContain('s_check_inn -->|"yes"| s_remember_contact');
  });
});
