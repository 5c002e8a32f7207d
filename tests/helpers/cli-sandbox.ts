import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { expect } from 'vitest';
import { repoRoot } from '../../core/config.ts';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * The `kubiki` command as a child process on a database of its own: a PGlite folder, or a fresh
 * schema of DATABASE_URL's database (dropped by `cleanup`). Every spawn boots Kubiki (1–4 s), so
 * tests keep them few. The parent's KUBIKI_*, PORT, HOST and editor settings never leak in.
 */
export class CliSandbox {
  readonly tmp: string;
  readonly schema: string;

  constructor(prefix: string) {
    this.tmp = fs.mkdtempSync(path.join(os.tmpdir(), `kubiki-${prefix}-`));
    this.schema = `${prefix.replace(/[^a-z]/g, '')}_${randomBytes(6).toString('hex')}`;
    fs.mkdirSync(path.join(this.tmp, 'data'), { recursive: true });
  }

  env(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {};
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('KUBIKI_') && !['DATABASE_URL', 'PORT', 'HOST', 'EDITOR', 'VISUAL'].includes(key)) env[key] = value;
    }
    env.LOG_LEVEL = 'warn';
    if (process.env.DATABASE_URL) {
      env.DATABASE_URL = process.env.DATABASE_URL;
      env.KUBIKI_DB_SCHEMA = this.schema;
    } else {
      env.KUBIKI_DATA_DIR = path.join(this.tmp, 'data');
    }
    return { ...env, ...extra };
  }

  run(args: string[], extra: Record<string, string> = {}, timeoutMs = 60_000): Promise<CliRun> & { child: ChildProcess } {
    const child = spawn(process.execPath, ['--import', 'tsx', 'core/cli/main.ts', ...args], { cwd: repoRoot, env: this.env(extra), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d: Buffer) => { stdout += d.toString(); });
    child.stderr!.on('data', (d: Buffer) => { stderr += d.toString(); });
    const done = new Promise<CliRun>((resolve, reject) => {
      const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`kubiki ${args.join(' ')} timed out\n${stdout}\n${stderr}`)); }, timeoutMs);
      child.on('error', reject);
      child.on('close', (code, signal) => { clearTimeout(timer); resolve({ code, signal, stdout, stderr }); });
    });
    return Object.assign(done, { child });
  }

  /** Runs a command that must succeed; shows its output when it does not. */
  async ok(args: string[], extra: Record<string, string> = {}): Promise<string> {
    const run = await this.run(args, extra);
    expect(run.code, `kubiki ${args.join(' ')}\n${run.stdout}\n${run.stderr}`).toBe(0);
    return run.stdout;
  }

  async cleanup(): Promise<void> {
    if (process.env.DATABASE_URL) {
      const client = new pg.Client({ connectionString: process.env.DATABASE_URL });
      await client.connect();
      try {
        await client.query(`drop schema if exists "${this.schema}" cascade`);
      } finally {
        await client.end();
      }
    }
    fs.rmSync(this.tmp, { recursive: true, force: true });
  }
}
