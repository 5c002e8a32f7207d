// `kubiki import` / `kubiki export` as child processes on a database of their own: the progress
// bar, bad rows reported with line and column, a saved mapping reused, acting as a user without
// the grant, CSV and XLSX out and back in, and an import SIGKILLed midway and run again — resumed
// after its last checkpoint with no row written twice and none missed.
import fs from 'node:fs';
import path from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { CliSandbox } from '../helpers/cli-sandbox.ts';
import { csvOf, innOf, shippedPlugins } from './import-helpers.ts';

const cli = new CliSandbox('imp');
const env = { KUBIKI_PLUGIN_DIRS: shippedPlugins() };
const run = (args: string[], timeoutMs = 120_000) => cli.run(args, env, timeoutMs);
const file = (name: string, text: string) => {
  const p = path.join(cli.tmp, name);
  fs.writeFileSync(p, text);
  return p;
};

/** A query on the sandbox's database once no CLI holds it (PGlite opened read-only-ish, or PostgreSQL). */
async function query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  if (process.env.DATABASE_URL) {
    const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
    await client.connect();
    try {
      await client.query(`set search_path to "${cli.schema}"`);
      return (await client.query(sql)).rows as T[];
    } finally {
      await client.end();
    }
  }
  const db = new PGlite(path.join(cli.tmp, 'data'));
  try {
    return (await db.query<T>(sql)).rows;
  } finally {
    await db.close();
  }
}

afterAll(() => cli.cleanup());

describe('kubiki import and export', { timeout: 300_000 }, () => {
  it('dry-runs and imports a file with bad rows, printing each with line and column, and saves the mapping', async () => {
    const orgs = file('orgs.csv', csvOf([
      ['Название', 'ИНН'],
      ['Alpha', innOf(1, 50)],
      ['Beta', '7707083894'],
      ['', innOf(3, 50)],
    ], ';'));
    const mapping = file('orgs.mapping.yaml', 'columns:\n  Название: name\n  ИНН: inn\nkey: inn\n');
    const dry = await run(['import', 'base.organizations', orgs, '--mapping', mapping, '--save-mapping', 'orgs', '--dry-run']);
    expect(dry.code, dry.stdout + dry.stderr).toBe(2);
    expect(dry.stdout).toContain('saved mapping orgs (version 1)');
    expect(dry.stdout).toMatch(/dry run \(nothing written\) [0-9a-f-]{36} into base\.organizations: completed; 3 rows: 1 would be created, 0 would be updated, 0 unchanged, 2 bad/);
    expect(dry.stdout).toContain('line 3, column ИНН: inn 7707083894 has a wrong check digit (value: 7707083894) [check-digit]');
    expect(dry.stdout).toContain('line 4, column Название: name is required [required]');
    expect(dry.stderr).toMatch(/progress: \d+% 3 rows/);

    const errors = path.join(cli.tmp, 'errors.csv');
    const real = await run(['import', 'base.organizations', orgs, '--mapping', 'orgs', '--errors', errors]);
    expect(real.code, real.stdout + real.stderr).toBe(2);
    expect(real.stdout).toMatch(/import [0-9a-f-]{36} into base\.organizations: completed; 3 rows: 1 created, 0 updated, 0 unchanged, 2 bad/);
    expect(fs.readFileSync(errors, 'utf8')).toContain('3,ИНН,inn,check-digit');
    // Idempotent: the same file again with the mapping's key changes nothing.
    const again = await run(['import', 'base.organizations', orgs, '--mapping', 'orgs']);
    expect(again.stdout).toContain('0 created, 0 updated, 1 unchanged, 2 bad');
  });

  it('acts as the user given with --as: their grants apply', async () => {
    expect((await run(['users', 'add', 'clerk', '--password', 'clerk-secret-pass'])).code).toBe(0);
    const refused = await run(['import', 'base.organizations', file('one.csv', 'name\nClerk Co\n'), '--as', 'clerk']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^kubiki: forbidden: clerk lacks the permission base\.organizations\.create/m);
  });

  it('exports CSV and XLSX with custom fields; both import back unchanged', async () => {
    const csv = await run(['export', 'base.organizations', '--fields', 'name,inn,kind,roles']);
    expect(csv.code, csv.stderr).toBe(0);
    const lines = csv.stdout.replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toBe('id,name,inn,kind,roles');
    expect(lines[1]).toMatch(new RegExp(`^[0-9a-f-]{36},Alpha,${innOf(1, 50)},company,$`));
    const out = path.join(cli.tmp, 'orgs.xlsx');
    const xlsx = await run(['export', 'base.organizations', '--format', 'xlsx', '--out', out]);
    expect(xlsx.stderr).toContain(`exported 1 base.organizations records to ${out}`);
    expect(fs.readFileSync(out).subarray(0, 2).toString()).toBe('PK');
    const back = await run(['import', 'base.organizations', out, '--key', 'id']);
    expect(back.code, back.stdout + back.stderr).toBe(0);
    expect(back.stdout).toContain('1 rows: 0 created, 0 updated, 1 unchanged, 0 bad');
  });

  it('resumes an import killed midway: no duplicates, no gaps', async () => {
    const N = 20_000;
    const rows: (string | number)[][] = [['name', 'inn']];
    for (let i = 0; i < N; i++) rows.push([`Org ${i}`, innOf(i, 40)]);
    const big = file('big.csv', csvOf(rows));
    const first = run(['import', 'base.organizations', big, '--batch-size', '200']);
    let killedAt = '';
    await new Promise<void>((resolve) => {
      let err = '';
      first.child.stderr!.on('data', (d: Buffer) => {
        err += d.toString();
        const m = /progress: \d+% ([\d,]+) rows/.exec(err);
        if (m && !killedAt) {
          killedAt = m[1];
          first.child.kill('SIGKILL');
          resolve();
        }
      });
      first.child.on('close', () => resolve());
    });
    const killed = await first;
    expect(killed.signal, `the import finished before it could be killed:\n${killed.stdout}${killed.stderr}`).toBe('SIGKILL');
    expect(Number(killedAt.replace(/,/g, ''))).toBeLessThan(N);

    const second = await run(['import', 'base.organizations', big, '--batch-size', '200']);
    expect(second.code, second.stdout + second.stderr).toBe(0);
    expect(second.stderr).toMatch(/resuming import [0-9a-f-]{36}( after line \d+)? \([\d,]+ rows done\)/);
    expect(second.stdout).toMatch(new RegExp(`completed; ${N.toLocaleString('en-US')} rows: ${N.toLocaleString('en-US')} created, 0 updated, 0 unchanged, 0 bad`));

    const [counts] = await query<{ orgs: number; distinct_inns: number; audit: number }>(
      "select (select count(*)::int from base_organizations where name like 'Org %') as orgs, (select count(distinct inn)::int from base_organizations where name like 'Org %') as distinct_inns, (select count(*)::int from kubiki_audit where entity = 'organizations' and action = 'created' and changes->'name'->>'after' like 'Org %') as audit",
    );
    expect(counts).toEqual({ orgs: N, distinct_inns: N, audit: N });
    const [job] = await query<{ resumes: number; failed: number; created: number; status: string }>("select resumes, failed, created, status from kubiki_import_jobs where file_name = 'big.csv'");
    expect(job).toEqual({ resumes: 1, failed: 0, created: N, status: 'completed' });
  });
});
