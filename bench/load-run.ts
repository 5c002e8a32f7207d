// One autocannon run in its own Node process, so the load generator shares an
// event loop with neither the servers nor the harness. We use the autocannon
// CLI with --json and narrow its output from `unknown` to the few numbers we
// report.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { onExitKill, shuttingDown } from './cleanup.ts';

export const CONNECTIONS = 10;

const autocannonCli = createRequire(import.meta.url).resolve('autocannon/autocannon.js');

export interface LoadRequest {
  url: string;
  method: 'GET' | 'POST';
  headers: Record<string, string>;
  body?: string;
  durationSec: number;
}

export interface LoadResult {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  total2xx: number;
  /** Non-2xx responses + socket errors + timeouts: anything > 0 invalidates the run. */
  failures: number;
  failureDetail: string;
}

function field(value: unknown, ...path: string[]): number {
  let current: unknown = value;
  for (const key of path) {
    if (typeof current !== 'object' || current === null || !(key in current)) {
      throw new Error(`autocannon output lacks ${path.join('.')}`);
    }
    current = (current as Record<string, unknown>)[key];
  }
  if (typeof current !== 'number') throw new Error(`autocannon ${path.join('.')} is not a number`);
  return current;
}

function statusCodes(value: unknown): string {
  if (typeof value !== 'object' || value === null || !('statusCodeStats' in value)) return '';
  const stats = value.statusCodeStats;
  if (typeof stats !== 'object' || stats === null) return '';
  return Object.entries(stats)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, entry]) => `${code}x${field(entry, 'count')}`)
    .join(' ');
}

function parseResult(json: unknown): LoadResult {
  const non2xx = field(json, 'non2xx');
  const errors = field(json, 'errors');
  const timeouts = field(json, 'timeouts');
  const detail = [
    non2xx ? `non-2xx ${non2xx} (${statusCodes(json)})` : '',
    errors ? `socket errors ${errors}` : '',
    timeouts ? `timeouts ${timeouts}` : '',
  ].filter(Boolean);
  return {
    // Mean of autocannon's per-second samples.
    reqPerSec: field(json, 'requests', 'average'),
    p50Ms: field(json, 'latency', 'p50'),
    p99Ms: field(json, 'latency', 'p99'),
    total2xx: field(json, '2xx'),
    failures: non2xx + errors + timeouts,
    failureDetail: detail.join(', '),
  };
}

export function runLoad(load: LoadRequest): Promise<LoadResult> {
  const args = [autocannonCli, '--json', '-c', String(CONNECTIONS), '-d', String(load.durationSec), '-m', load.method];
  for (const [key, value] of Object.entries(load.headers)) args.push('-H', `${key}=${value}`);
  if (load.body !== undefined) args.push('-b', load.body);
  args.push(load.url);

  if (shuttingDown()) return Promise.reject(new Error('not starting autocannon: interrupted'));
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const forget = onExitKill(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      forget();
      if (code !== 0) {
        reject(new Error(`autocannon exited ${code ?? signal}: ${stderr.trim()}`));
        return;
      }
      try {
        resolve(parseResult(JSON.parse(stdout)));
      } catch (error) {
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    });
  });
}
