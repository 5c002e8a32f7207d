import fs from 'node:fs';
import path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { CliSandbox, type CliRun } from '../helpers/cli-sandbox.ts';
import { freePort } from '../helpers/free-port.ts';

// The `kubiki` command end to end, as a child process on its own database: a PGlite folder, or a
// fresh schema of DATABASE_URL's database. Every spawn boots Kubiki (1–4 s), so they are few.

const cli = new CliSandbox('cli');
const tmp = cli.tmp;
const kubiki = (args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) => cli.run(args, env, timeoutMs);
const ok = (args: string[], env: Record<string, string> = {}) => cli.ok(args, env);

const PLUGIN_DIRS = 'plugins,tests/fixtures/plugins';

/** The state column of one plugin in `kubiki plugins` output. */
function stateOf(listing: string, plugin: string): string | undefined {
  const line = listing.split('\n').find((l) => l.split(/\s+/)[0] === plugin);
  return line?.split(/\s+/)[3];
}

afterAll(() => cli.cleanup());

let anaToken = '';

describe('kubiki CLI', { timeout: 120_000 }, () => {
  it('lists plugins; enables and disables them in dependency order', async () => {
    const first = await ok(['plugins']);
    // The first start creates the admin and prints its generated token once.
    expect(first).toMatch(/First start: created user "admin"[\s\S]*kbk_/);
    expect(stateOf(first, 'base')).toBe('enabled');

    const refused = await kubiki(['enable', 'beta'], { KUBIKI_PLUGIN_DIRS: PLUGIN_DIRS });
    expect(refused.code, refused.stdout + refused.stderr).toBe(1);
    expect(refused.stderr).toMatch(/^kubiki: lifecycle-conflict: .*alpha/m);

    expect(await ok(['enable', 'alpha'], { KUBIKI_PLUGIN_DIRS: PLUGIN_DIRS })).toContain('alpha 1.0.0: enabled');
    const enabled = await ok(['plugins'], { KUBIKI_PLUGIN_DIRS: PLUGIN_DIRS });
    expect(enabled).not.toContain('First start');
    expect(stateOf(enabled, 'base')).toBe('enabled');
    expect(stateOf(enabled, 'alpha')).toBe('enabled');
    expect(stateOf(enabled, 'beta')).toBe('available');

    expect(await ok(['disable', 'alpha'], { KUBIKI_PLUGIN_DIRS: PLUGIN_DIRS })).toContain('alpha 1.0.0: disabled');
    const disabled = await ok(['plugins'], { KUBIKI_PLUGIN_DIRS: PLUGIN_DIRS });
    expect(stateOf(disabled, 'alpha')).toBe('disabled');
  });

  it('adds a user and issues an API token for them', async () => {
    const added = await ok(['users', 'add', 'ana', '--password', 'ana-secret-pass', '--roles', 'admin', '--display-name', 'Ana']);
    expect(added).toMatch(/created user ana \([0-9a-f-]{36}\) with roles \[admin\]/);
    const out = await ok(['users', 'token', 'ana']);
    anaToken = out.trim();
    expect(anaToken).toMatch(/^kbk_[A-Za-z0-9_-]{20,}$/);
  });

  it('writes TypeScript types that compile', async () => {
    const outDir = path.join(tmp, 'types');
    const out = await ok(['types', '--out', outDir]);
    expect(out).toContain('base.ts');
    const file = path.join(outDir, 'base.ts');
    const source = fs.readFileSync(file, 'utf8');
    expect(source).toContain('export interface Organization');
    expect(source).toContain('export interface OrganizationInput');

    const program = ts.createProgram([file], { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, types: [], skipLibCheck: true });
    const diagnostics = ts.getPreEmitDiagnostics(program).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    expect(diagnostics).toEqual([]);
  });

  it('writes the types of declared routes and of the extension points a plugin may contribute to', async () => {
    await ok(['enable', 'crm']);
    await ok(['enable', 'finance']);
    const outDir = path.join(tmp, 'types-all');
    const out = await ok(['types', '--out', outDir]);
    expect(out).toContain('core-routes.ts');
    expect(out).toContain('finance-extensions.ts');
    const extensions = fs.readFileSync(path.join(outDir, 'finance-extensions.ts'), 'utf8');
    // finance enhances crm: it gets crm's customerFacts type without importing crm's files.
    expect(extensions).toContain('export interface CrmCustomerFactsContribution');
    expect(extensions).toContain('facts: (organizationId: string) => Promise<Record<string, unknown>>');
    expect(fs.readFileSync(path.join(outDir, 'core-routes.ts'), 'utf8')).toContain('export interface HealthResponse200');
    // Warehouse and payroll enhance finance: they get the PostingRule type from finance's manifest, not its code.
    for (const contributor of ['warehouse', 'payroll']) {
      const types = fs.readFileSync(path.join(outDir, `${contributor}-extensions.ts`), 'utf8');
      expect(types).toContain('export interface FinancePostingRulesContribution');
      expect(types).toMatch(/when: \(\s*event: \{/);
    }
    const files = fs.readdirSync(outDir).map((f) => path.join(outDir, f));
    const program = ts.createProgram(files, { strict: true, noEmit: true, target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, types: [], skipLibCheck: true });
    expect(ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName}: ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`)).toEqual([]);
    await ok(['disable', 'finance']);
    await ok(['disable', 'crm']);
  });

  it('serves the API until SIGTERM, then exits 0', async () => {
    const port = await freePort();
    const server = kubiki(['start', '--port', String(port)], { HOST: '127.0.0.1' });
    let exited: CliRun | undefined;
    void server.then((r) => { exited = r; });
    try {
      const url = `http://127.0.0.1:${port}`;
      const deadline = Date.now() + 60_000;
      let health: Response | undefined;
      while (Date.now() < deadline && !exited) {
        health = await fetch(`${url}/api/health`).catch(() => undefined);
        if (health?.status === 200) break;
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(health?.status, exited ? `server exited: ${exited.stdout}\n${exited.stderr}` : 'no health').toBe(200);
      expect(await health!.json()).toMatchObject({ status: 'ok', database: process.env.DATABASE_URL ? 'postgres' : 'pglite' });

      // The token printed by `kubiki users token` works against the running server.
      if (anaToken) {
        const who = await fetch(`${url}/api/auth/me`, { headers: { authorization: `Bearer ${anaToken}` } });
        expect(who.status).toBe(200);
        expect(await who.json()).toMatchObject({ username: 'ana', roles: ['admin'] });
      }
      expect((await fetch(`${url}/api/users`)).status).toBe(401);

      if (!process.env.DATABASE_URL) {
        // A second process on the server's PGlite folder is refused in a sentence, not a WASM crash.
        const busy = await kubiki(['plugins']);
        expect(busy.code, busy.stdout + busy.stderr).toBe(1);
        expect(busy.stderr).toMatch(new RegExp(`^kubiki: database-in-use: .* in use by process ${server.child.pid} \\(kubiki start`, 'm'));
        expect(busy.stderr).not.toMatch(/RuntimeError|Aborted/);
      }

      server.child.kill('SIGTERM');
      const run = await server;
      expect(run.code, run.stdout + run.stderr).toBe(0);
      expect(run.signal).toBeNull();
    } finally {
      if (!exited && server.child.exitCode === null) server.child.kill('SIGKILL');
    }
  });

  it.skipIf(!!process.env.DATABASE_URL)('takes over the PGlite lock a killed process left behind', async () => {
    const lockFile = path.join(tmp, 'data', 'kubiki.lock');
    expect(fs.existsSync(lockFile)).toBe(false); // the server released it on SIGTERM
    const gone = kubiki(['--version']);
    await gone; // its pid now belongs to no process
    fs.writeFileSync(lockFile, JSON.stringify({ pid: gone.child.pid, command: 'start', startedAt: '2026-01-01T00:00:00Z' }));
    expect(stateOf(await ok(['plugins']), 'base')).toBe('enabled');
    expect(fs.existsSync(lockFile)).toBe(false);
  });

  it('exits 1 naming the error code when a plugin dependency is missing', async () => {
    const dir = path.join(tmp, 'broken-plugins');
    fs.mkdirSync(path.join(dir, 'gamma'), { recursive: true });
    fs.writeFileSync(path.join(dir, 'gamma', 'plugin.json'), JSON.stringify({ name: 'gamma', version: '1.0.0', core: '^0.1.0', dependsOn: ['nowhere'] }));
    const run = await kubiki(['plugins'], { KUBIKI_PLUGIN_DIRS: `plugins,${dir}` });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('missing-dependency');
    expect(run.stderr).toContain('nowhere');
    expect(run.stdout).toBe('');
  });
});
