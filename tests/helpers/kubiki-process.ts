import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { repoRoot } from '../../core/config.ts';
import type { CliSandbox } from './cli-sandbox.ts';
import { freePort } from './free-port.ts';

const OUTPUT_TAIL = 16_384;

/** `kubiki start` as an OS process of its own (tsx, as the CLI tests run it), on a sandbox's database. */
export interface KubikiProcess {
  name: string;
  url: string;
  child: ChildProcess;
  /** Resolves with the exit code or the signal name once the process is gone. */
  exited: Promise<string>;
  alive(): boolean;
  /** The last few KB of its stdout and stderr. */
  output(): string;
  /** Calls its API as admin; the body is JSON-encoded. */
  api<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Waits until /api/health answers 200 (throws if the process exits first). */
  healthy(timeoutMs?: number): Promise<void>;
  /** SIGKILL, then waits for the exit. */
  kill(): Promise<void>;
  /** SIGTERM (a graceful shutdown), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

// The last resort if the test process exits without afterAll (a crash, a hard timeout).
const live = new Set<ChildProcess>();
let exitHook = false;
function track(child: ChildProcess): void {
  if (!exitHook) {
    exitHook = true;
    process.on('exit', () => { for (const c of live) c.kill('SIGKILL'); });
  }
  live.add(child);
}

/**
 * `bundle`: the folder of a build made by `npm run build` (see buildBundle) — the process then runs
 * `node <bundle>/main.js start` exactly as `npm start` does, instead of the sources through tsx.
 */
export async function spawnKubiki(sandbox: CliSandbox, name: string, adminToken: string, env: Record<string, string> = {}, options: { bundle?: string } = {}): Promise<KubikiProcess> {
  const port = await freePort();
  const entry = options.bundle ? [path.join(options.bundle, 'main.js')] : ['--import', 'tsx', 'core/cli/main.ts'];
  const child = spawn(process.execPath, [...entry, 'start', '--port', String(port)], {
    cwd: repoRoot, env: sandbox.env({ KUBIKI_ADMIN_TOKEN: adminToken, ...env }), stdio: ['ignore', 'pipe', 'pipe'],
  });
  track(child);
  let tail = '';
  const keep = (d: Buffer) => { tail = (tail + d.toString()).slice(-OUTPUT_TAIL); };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => { keep(Buffer.from(`spawn error: ${error.message}\n`)); live.delete(child); resolve('spawn-error'); });
    child.once('exit', (code, signal) => { live.delete(child); resolve(signal ?? String(code)); });
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  const url = `http://127.0.0.1:${port}`;
  const p: KubikiProcess = {
    name, url, child, exited, alive,
    output: () => tail,
    async api(method, path, body) {
      const res = await fetch(url + path, {
        method,
        headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
      return { status: res.status, body: parsed as any };
    },
    async healthy(timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        if (!alive()) throw new Error(`${name} exited (${await exited}) before it was healthy:\n${tail}`);
        const status = await fetch(`${url}/api/health`).then((r) => r.status, () => 0);
        if (status === 200) return;
        if (Date.now() > until) throw new Error(`${name} not healthy after ${timeoutMs} ms:\n${tail}`);
        await sleep(50);
      }
    },
    async kill() {
      if (alive()) child.kill('SIGKILL');
      await exited;
    },
    async stop(graceMs = 10_000) {
      if (!alive()) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await exited;
      clearTimeout(timer);
    },
  };
  return p;
}

/**
 * Builds the bundle `npm start` runs (`npm run build`, the same script) into a folder of its own
 * inside the repository (so its bare imports find node_modules); returns the folder.
 */
export function buildBundle(): string {
  const dir = path.join(repoRoot, '.kubiki', `test-bundle-${process.pid}-${Date.now()}`);
  execFileSync('npm', ['run', 'build', '--silent', '--', `--outdir=${dir}`], { cwd: repoRoot, stdio: 'pipe' });
  return dir;
}

export const removeBundle = (dir: string): void => fs.rmSync(dir, { recursive: true, force: true });
