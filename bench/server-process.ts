// Spawning a server under test, timing it to its first healthy response, and
// stopping it. Shared by the Kubiki and baseline servers so both are treated
// identically (same env hygiene, same health polling, same shutdown).
import { spawn, type ChildProcess } from 'node:child_process';
import { request } from 'node:http';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { onExitKill, shuttingDown } from './cleanup.ts';

const OUTPUT_TAIL_BYTES = 8192;
const HEALTH_POLL_MS = 10;

export interface ServerProcess {
  name: string;
  baseUrl: string;
  child: ChildProcess;
  /** performance.now() just before spawn(). */
  spawnedAt: number;
  /** Resolves with the exit code (or signal name) once the process is gone. */
  exited: Promise<string>;
  /** Last few KB of stdout+stderr, for error messages. */
  outputTail(): string;
}

export interface SpawnOptions {
  name: string;
  args: string[];
  port: number;
  cwd: string;
  env: Record<string, string>;
}

// Variables the servers read; never inherit them from the caller's shell, only
// pass what the harness sets explicitly.
const SCRUBBED_ENV = ['DATABASE_URL', 'KUBIKI_DATA_DIR', 'KUBIKI_ADMIN_TOKEN', 'LOG_LEVEL', 'PORT'];

export function spawnServer(options: SpawnOptions): ServerProcess {
  if (shuttingDown()) throw new Error(`not starting ${options.name}: interrupted`);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const key of SCRUBBED_ENV) delete env[key];
  Object.assign(env, options.env);

  let tail = '';
  const keep = (chunk: Buffer): void => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
  };

  const spawnedAt = performance.now();
  const child = spawn(process.execPath, options.args, {
    cwd: options.cwd,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // Always drain the pipes so a chatty server never blocks on a full pipe.
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);

  const forget = onExitKill(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const exited = new Promise<string>((resolve) => {
    child.once('error', (error) => {
      keep(Buffer.from(`spawn error: ${error.message}\n`));
      forget();
      resolve('spawn-error');
    });
    child.once('exit', (code, signal) => {
      forget();
      resolve(signal ?? String(code));
    });
  });

  return {
    name: options.name,
    baseUrl: `http://127.0.0.1:${options.port}`,
    child,
    spawnedAt,
    exited,
    outputTail: () => tail.trim(),
  };
}

function getStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(url, { method: 'GET', agent: false, timeout: 1000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0)); // not listening yet
    req.end();
  });
}

/** One line worth showing in the results table: the first error-looking line of the output. */
function summarize(output: string): string {
  const lines = output.split('\n').map((line) => line.trim()).filter(Boolean);
  return lines.find((line) => /error/i.test(line)) ?? lines[lines.length - 1] ?? '(no output)';
}

/** Poll /api/health every ~10 ms; returns ms from spawn to the first 200. */
export async function waitHealthy(server: ServerProcess, timeoutMs = 60_000): Promise<number> {
  let gone: string | undefined;
  void server.exited.then((how) => {
    gone = how;
  });
  const url = `${server.baseUrl}/api/health`;
  while (true) {
    const status = await getStatus(url);
    if (status === 200) return performance.now() - server.spawnedAt;
    if (gone !== undefined) {
      const output = server.outputTail();
      throw new Error(`${server.name} exited (${gone}) before becoming healthy: ${summarize(output)}\n${output}`);
    }
    if (performance.now() - server.spawnedAt > timeoutMs) {
      const output = server.outputTail();
      throw new Error(`${server.name} not healthy after ${timeoutMs} ms: ${summarize(output)}\n${output}`);
    }
    await sleep(HEALTH_POLL_MS);
  }
}

/** SIGTERM, wait for exit, SIGKILL if it takes longer than graceMs. */
export async function stopServer(server: ServerProcess, graceMs = 10_000): Promise<void> {
  const { child } = server;
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => {
    console.error(`${server.name} ignored SIGTERM for ${graceMs} ms, sending SIGKILL`);
    child.kill('SIGKILL');
  }, graceMs);
  await server.exited;
  clearTimeout(timer);
}
