// `npm run bench:api`: Kubiki vs a bare Koa+knex baseline on the same fresh
// PostgreSQL database, plus Kubiki startup time on PostgreSQL and PGlite.
//
// Order (documented in the README section too):
//   0. build dist/ as `npm start` does; Kubiki runs from the bundle (`node dist/main.js start`).
//   1. startup: Kubiki on PostgreSQL cold (empty db, runs migrations) then warm,
//      then on PGlite cold (fresh dir) then warm. Done first, on an idle machine.
//   2. load: baseline alone (create, then list-50), stopped; then Kubiki alone
//      (create, then list-50), stopped. Only one server runs while loading, each
//      scenario gets BENCH_WARMUP seconds of unmeasured load first.
// Load comes from autocannon in a separate process, 10 connections.
//
// Env: BENCH_DURATION (s, default 10), BENCH_WARMUP (s, default 2),
//      BENCH_DATABASE_URL (use this db instead of creating kubiki_bench_<pid>),
//      BENCH_ADMIN_URL (db to CREATE/DROP DATABASE from, default local postgres).
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { prepareServerBench } from './bench-database.ts';
import { errorText, onCleanup, runBenchmark } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { CONNECTIONS, runLoad } from './load-run.ts';
import { CREATE_BODY, LIST_LIMIT, createOne, ensureRows, listPageSize, type Endpoint } from './api-client.ts';
import { formatReport, hasFailures, type Measurement, type Report, type ServerKind, type StartupTimes } from './report.ts';
import { spawnServer, stopServer, waitHealthy, type ServerProcess } from './server-process.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));

function secondsFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a whole number of seconds >= 1, got "${raw}"`);
  return value;
}

// Set in main() so a bad value is reported like any other failure.
let durationSec = 10;
let warmupSec = 2;
const adminToken = `kubiki-bench-${randomBytes(16).toString('hex')}`;


// --- servers -------------------------------------------------------------

interface StartedServer {
  process: ServerProcess;
  startupMs: number;
  endpoint: Endpoint;
}

type KubikiDb = { databaseUrl: string } | { dataDir: string };

async function startKubiki(db: KubikiDb): Promise<StartedServer> {
  const port = await freePort();
  const env: Record<string, string> = { KUBIKI_ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn' };
  if ('databaseUrl' in db) env.DATABASE_URL = db.databaseUrl;
  else env.KUBIKI_DATA_DIR = db.dataDir;
  const server = spawnServer({
    name: 'kubiki',
    // What `npm start` runs: the bundle `npm run build` writes (built once at the top of main()).
    args: ['dist/main.js', 'start', '--port', String(port)],
    port,
    cwd: repoRoot,
    env,
  });
  return finishStart(server, {
    collectionUrl: `${server.baseUrl}/api/base/organizations`,
    headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' },
  });
}

async function startBaseline(databaseUrl: string): Promise<StartedServer> {
  const port = await freePort();
  const server = spawnServer({
    name: 'baseline',
    args: ['--import', 'tsx', 'bench/baseline-server.ts'],
    port,
    cwd: repoRoot,
    env: { PORT: String(port), DATABASE_URL: databaseUrl },
  });
  // Same route and headers as Kubiki: identical request bytes on the wire.
  return finishStart(server, {
    collectionUrl: `${server.baseUrl}/api/base/organizations`,
    headers: { 'Content-Type': 'application/json' },
  });
}

async function finishStart(server: ServerProcess, endpoint: Endpoint): Promise<StartedServer> {
  onCleanup(() => stopServer(server));
  try {
    const startupMs = await waitHealthy(server);
    return { process: server, startupMs, endpoint };
  } catch (error) {
    await stopServer(server);
    throw error;
  }
}

/** Start, record time to first healthy /api/health, stop. */
async function timeStartup(db: KubikiDb): Promise<number> {
  const started = await startKubiki(db);
  await stopServer(started.process);
  return started.startupMs;
}

async function measureStartup(label: string, db: KubikiDb): Promise<StartupTimes> {
  const times: StartupTimes = {};
  try {
    log(`startup ${label}: cold`);
    times.cold = await timeStartup(db);
    log(`startup ${label}: warm`);
    times.warm = await timeStartup(db);
  } catch (error) {
    times.error = errorText(error);
    log(`startup ${label} failed: ${times.error}`);
  }
  return times;
}

// --- load ----------------------------------------------------------------

async function measure(kind: ServerKind, endpoint: Endpoint, scenario: 'create' | 'list-50'): Promise<Measurement> {
  const load =
    scenario === 'create'
      ? { url: endpoint.collectionUrl, method: 'POST' as const, headers: endpoint.headers, body: CREATE_BODY }
      : { url: `${endpoint.collectionUrl}?limit=${LIST_LIMIT}`, method: 'GET' as const, headers: endpoint.headers };
  try {
    log(`${scenario} ${kind}: warm-up ${warmupSec} s`);
    const warm = await runLoad({ ...load, durationSec: warmupSec });
    log(`${scenario} ${kind}: measuring ${durationSec} s`);
    const result = await runLoad({ ...load, durationSec });
    // Errors during warm-up invalidate the measurement as well; still show the numbers.
    if (warm.failures > 0) {
      const detail = [`warm-up: ${warm.failureDetail}`, result.failureDetail].filter(Boolean).join('; ');
      return { ok: true, result: { ...result, failures: result.failures + warm.failures, failureDetail: detail } };
    }
    return { ok: true, result };
  } catch (error) {
    return { ok: false, error: errorText(error) };
  }
}

async function loadServer(kind: ServerKind, start: () => Promise<StartedServer>, report: Report): Promise<void> {
  let started: StartedServer;
  try {
    log(`starting ${kind} for load`);
    started = await start();
    // Smoke check: a wrong token or route must fail here, not as 100% non-2xx.
    await createOne(started.endpoint);
    await listPageSize(started.endpoint);
  } catch (error) {
    const failed: Measurement = { ok: false, error: `${kind} did not start: ${errorText(error)}` };
    report.load.create[kind] = failed;
    report.load['list-50'][kind] = failed;
    log(failed.error);
    return;
  }
  try {
    report.load.create[kind] = await measure(kind, started.endpoint, 'create');
    try {
      await ensureRows(started.endpoint);
      report.load['list-50'][kind] = await measure(kind, started.endpoint, 'list-50');
    } catch (error) {
      report.load['list-50'][kind] = { ok: false, error: errorText(error) };
    }
  } finally {
    await stopServer(started.process);
  }
}

function log(message: string): void {
  // Progress goes to stderr so stdout is just the results table.
  console.error(`[bench] ${message}`);
}

// --- main ----------------------------------------------------------------

async function main(): Promise<number> {
  durationSec = secondsFromEnv('BENCH_DURATION', 10);
  warmupSec = secondsFromEnv('BENCH_WARMUP', 2);
  const database = await prepareServerBench(repoRoot, log);

  const pgliteDir = await mkdtemp(join(tmpdir(), 'kubiki-bench-pglite-'));
  onCleanup(() => rm(pgliteDir, { recursive: true, force: true }));

  const report: Report = {
    title:
      `Kubiki API benchmark (${database.label}, ${CONNECTIONS} connections, ${durationSec} s each ` +
      `after ${warmupSec} s warm-up; baseline then kubiki, one server at a time)`,
    load: { create: {}, 'list-50': {} },
    startup: { postgres: {}, pglite: {} },
  };

  report.startup.postgres = await measureStartup('postgres', { databaseUrl: database.url });
  if (!database.fresh && report.startup.postgres.cold !== undefined) {
    log('note: BENCH_DATABASE_URL given, so the "cold" PostgreSQL start may not include migrations');
  }
  report.startup.pglite = await measureStartup('pglite', { dataDir: pgliteDir });

  await loadServer('baseline', () => startBaseline(database.url), report);
  await loadServer('kubiki', () => startKubiki({ databaseUrl: database.url }), report);

  console.log(formatReport(report));
  return hasFailures(report) ? 1 : 0;
}

await runBenchmark('api', main);
