// `npm run bench:workflow`: the workflow engine on PostgreSQL against a bare SKIP LOCKED queue.
//
// Order (one fresh database, dropped at the end):
//   0. build dist/ as `npm start` does; Kubiki runs from the bundle (`node dist/main.js start`).
//   1. baseline, alone on the database: 10 pg clients looping
//      `delete … where id = (select id … for update skip locked) returning *` on bench_queue,
//      BENCH_WARMUP s (default 2) unmeasured, then BENCH_DURATION s (default 10) → rows/s.
//   2. throughput: a loader server with KUBIKI_WORKERS=off publishes workflows.bench-onboarding
//      (condition → updateRecord → createRecord) over REST and creates N organizations
//      (10 requests in flight). Their `created` events wait in the outbox; nothing runs them.
//      Then the worker servers (default two, workers on, same database) are spawned together and
//      the database is polled every 100 ms until all N instances finished. Elapsed time is taken
//      from the database: first instance created_at → last instance finished_at. That excludes
//      the workers' boot (not the engine's work, and it would make the figure depend on N) but
//      includes event delivery, since an instance is created by delivering its trigger event.
//      The wall time from spawning the workers is printed next to it.
//      instances/s = completed / elapsed; steps/s = done step rows / elapsed.
//   3. latency, with the workers still running: organizations created at a steady rate (open
//      loop), first through the worker servers (round-robin; the deployment where every process
//      serves HTTP and runs workers, so a write wakes its own process's event delivery), then
//      through the HTTP-only loader (the event is seen by the workers' polling only).
//      trigger-to-completion = instance finished_at − outbox created_at, p50/p99.
//   After each phase: every instance completed, one instance per event, no failed step, no step
//   with attempts > 1, exactly one contact person per organization, every organization marked.
//   Anything else is an anomaly and makes the exit code 1; a missed target only prints MISS.
//
// Options: --instances N (5000), --workers N (2), --concurrency N (KUBIKI_WORKFLOW_CONCURRENCY
//   of each worker, 32, the engine's default), --poll-ms N (KUBIKI_WORKFLOW_POLL_MS, 500), --latency-instances N (1000
//   per latency run, 0 skips them), --latency-rate N (organizations/s, 100),
//   --database-url URL (use this database instead of a fresh one; same as BENCH_DATABASE_URL).
// Env: BENCH_DURATION, BENCH_WARMUP (baseline seconds), BENCH_DATABASE_URL, BENCH_ADMIN_URL.
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { prepareServerBench } from './bench-database.ts';
import { errorText, onCleanup, runBenchmark } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { runQueueBaseline } from './queue-baseline.ts';
import { spawnServer, stopServer, waitHealthy, type ServerProcess } from './server-process.ts';
import { WorkflowBenchDb, anomalyCount, describeAnomalies, type Phase } from './workflow-db.ts';
import { WORKFLOW_ID, OrganizationFactory, createBacklog, createPaced, publishWorkflow, type Api } from './workflow-load.ts';
import { formatWorkflowReport, type WorkflowReport } from './workflow-report.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const adminToken = `kubiki-bench-${randomBytes(16).toString('hex')}`;

const BASELINE_CLIENTS = 10;
const BASELINE_INITIAL_ROWS = 100_000;
const BACKLOG_IN_FLIGHT = 10;
const POLL_MS = 100;
/** No instance started or finished for this long: the engine is stuck (or absent). */
const STALL_MS = 60_000;


function log(message: string): void {
  // Progress goes to stderr so stdout is just the results table.
  console.error(`[bench] ${message}`);
}

// --- options ---------------------------------------------------------------

interface Options {
  instances: number;
  workers: number;
  concurrency: number;
  pollMs: number;
  latencyInstances: number;
  latencyRate: number;
  warmupSec: number;
  durationSec: number;
}

function whole(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}, got "${raw}"`);
  return value;
}

const USAGE = `usage: npm run bench:workflow -- [--instances N] [--workers N] [--concurrency N] [--poll-ms N]
                                  [--latency-instances N] [--latency-rate N] [--database-url URL]`;

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      instances: { type: 'string' },
      workers: { type: 'string' },
      concurrency: { type: 'string' },
      'poll-ms': { type: 'string' },
      'latency-instances': { type: 'string' },
      'latency-rate': { type: 'string' },
      'database-url': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(USAGE);
    return undefined;
  }
  // bench-database.ts reads it from the environment, as for the API bench.
  if (values['database-url']) process.env.BENCH_DATABASE_URL = values['database-url'];
  return {
    instances: whole('--instances', values.instances, 5000, 1),
    workers: whole('--workers', values.workers, 2, 1),
    concurrency: whole('--concurrency', values.concurrency, 32, 1),
    pollMs: whole('--poll-ms', values['poll-ms'], 500, 1),
    latencyInstances: whole('--latency-instances', values['latency-instances'], 1000, 0),
    latencyRate: whole('--latency-rate', values['latency-rate'], 100, 1),
    warmupSec: whole('BENCH_WARMUP', process.env.BENCH_WARMUP, 2, 1),
    durationSec: whole('BENCH_DURATION', process.env.BENCH_DURATION, 10, 1),
  };
}

// --- servers ---------------------------------------------------------------

// Settings of the caller's shell that would change what the servers do; the harness sets what
// it means to (server-process.ts already scrubs DATABASE_URL, PORT, the token and LOG_LEVEL).
for (const key of Object.keys(process.env)) {
  if (key === 'KUBIKI_WORKERS' || key === 'KUBIKI_DB_SCHEMA' || key.startsWith('KUBIKI_WORKFLOW_')) delete process.env[key];
}

interface Kubiki {
  server: ServerProcess;
  api: Api;
}

function spawnKubiki(name: string, databaseUrl: string, workers: boolean, options: Options, port: number): Kubiki {
  const server = spawnServer({
    name,
    args: ['dist/main.js', 'start', '--port', String(port)],
    port,
    cwd: repoRoot,
    env: {
      DATABASE_URL: databaseUrl,
      KUBIKI_ADMIN_TOKEN: adminToken,
      LOG_LEVEL: 'warn',
      KUBIKI_WORKERS: workers ? 'on' : 'off',
      KUBIKI_WORKFLOW_CONCURRENCY: String(options.concurrency),
      KUBIKI_WORKFLOW_POLL_MS: String(options.pollMs),
    },
  });
  onCleanup(() => stopServer(server));
  return { server, api: { baseUrl: server.baseUrl, headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' } } };
}

function exitedEarly(server: ServerProcess): string | undefined {
  const { child } = server;
  if (child.exitCode === null && child.signalCode === null) return undefined;
  const tail = server.outputTail().split('\n').slice(-20).join('\n');
  return `${server.name} exited (${child.signalCode ?? child.exitCode}) during the run:\n${tail}`;
}

// --- waiting for instances -----------------------------------------------------

/** Polls until every instance of the phase finished; returns ms from `since` to then. */
async function waitFinished(db: WorkflowBenchDb, phase: Phase, expected: number, watched: ServerProcess[], since: number): Promise<number> {
  let lastChange = performance.now();
  let lastSeen = '';
  let lastLog = 0;
  for (;;) {
    for (const server of watched) {
      const gone = exitedEarly(server);
      if (gone) throw new Error(gone);
    }
    const progress = await db.progress(phase);
    const now = performance.now();
    if (progress.finished >= expected) return now - since;
    const seen = `${progress.instances}/${progress.finished}`;
    if (seen !== lastSeen) {
      lastSeen = seen;
      lastChange = now;
    } else if (now - lastChange > STALL_MS) {
      throw new Error(
        `${phase}: no progress for ${STALL_MS / 1000} s: ${progress.instances} of ${expected} instances started, ` +
          `${progress.finished} finished (${JSON.stringify(progress.byStatus)})` +
          (progress.instances === 0 ? '; is the workflow engine running in the worker processes?' : ''),
      );
    }
    if (now - lastLog > 2000) {
      lastLog = now;
      log(`${phase}: ${progress.instances} instances started, ${progress.finished}/${expected} finished`);
    }
    await sleep(POLL_MS);
  }
}

/** The phase whose instances are running, so a failure can still show what became of them. */
let unchecked: Phase | undefined;

async function checkPhase(db: WorkflowBenchDb, phase: Phase, report: WorkflowReport): Promise<void> {
  unchecked = undefined;
  const anomalies = await db.anomalies(phase);
  report.anomalies.push({ phase, text: anomalyCount(anomalies) === 0 ? 'none' : describeAnomalies(anomalies) });
}

// --- phases ------------------------------------------------------------------

async function throughputPhase(db: WorkflowBenchDb, loader: Kubiki, options: Options, databaseUrl: string, factory: OrganizationFactory, report: WorkflowReport): Promise<Kubiki[]> {
  log(`throughput: creating ${options.instances} organizations through the HTTP-only server (${BACKLOG_IN_FLIGHT} in flight)`);
  const backlog = await createBacklog([loader.api], factory, options.instances, BACKLOG_IN_FLIGHT);
  const registered = await db.registerEvents('throughput', backlog.ids);
  if (registered !== options.instances) throw new Error(`found ${registered} base.organizations.created outbox events for ${options.instances} new organizations`);
  unchecked = 'throughput';
  const early = await db.progress('throughput');
  if (early.instances > 0) {
    throw new Error(`${early.instances} instances started before any worker ran: another Kubiki process with workers on uses this database`);
  }

  log(`throughput: starting ${options.workers} worker servers`);
  const ports = await Promise.all(Array.from({ length: options.workers }, () => freePort()));
  const spawnedAt = performance.now();
  const workers = ports.map((port, i) => spawnKubiki(`worker-${i + 1}`, databaseUrl, true, options, port));
  const healthy = await Promise.all(workers.map((w) => waitHealthy(w.server)));
  log(`throughput: workers healthy after ${healthy.map((ms) => `${ms.toFixed(0)} ms`).join(', ')}`);

  const wallMs = await waitFinished(db, 'throughput', options.instances, [...workers.map((w) => w.server), loader.server], spawnedAt);
  report.throughput = {
    figures: await db.throughput('throughput'),
    wallSeconds: wallMs / 1000,
    createdPerSec: options.instances / backlog.seconds,
  };
  await checkPhase(db, 'throughput', report);
  return workers;
}

async function latencyPhase(db: WorkflowBenchDb, phase: Phase, label: string, via: string, apis: Api[], watched: ServerProcess[], options: Options, factory: OrganizationFactory, report: WorkflowReport): Promise<void> {
  log(`${phase}: creating ${options.latencyInstances} organizations at ${options.latencyRate}/s ${via}`);
  const created = await createPaced(apis, factory, options.latencyInstances, options.latencyRate);
  const registered = await db.registerEvents(phase, created.ids);
  if (registered !== options.latencyInstances) throw new Error(`found ${registered} outbox events for ${options.latencyInstances} new organizations`);
  unchecked = phase;
  await waitFinished(db, phase, options.latencyInstances, watched, performance.now());
  report.latency.push({ label, via, figures: await db.latency(phase), offeredPerSec: options.latencyRate, sentPerSec: created.sentPerSec });
  await checkPhase(db, phase, report);
}

// --- main --------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions();
  if (!options) return 0;
  const database = await prepareServerBench(repoRoot, log);

  const cores = availableParallelism();
  const report: WorkflowReport = {
    title:
      `Kubiki workflow benchmark (${database.label}${database.fresh ? ', fresh database' : ''}; ` +
      `${options.instances} instances of ${WORKFLOW_ID}: condition → updateRecord → createRecord)`,
    settings:
      `settings: ${options.workers} worker processes, KUBIKI_WORKFLOW_CONCURRENCY=${options.concurrency}, ` +
      `KUBIKI_WORKFLOW_POLL_MS=${options.pollMs}, ${cores} CPU cores; baseline ${BASELINE_CLIENTS} clients, ` +
      `${options.durationSec} s after ${options.warmupSec} s warm-up`,
    latency: [],
    anomalies: [],
    errors: [],
  };

  try {
    report.baseline = await runQueueBaseline(database.url, {
      clients: BASELINE_CLIENTS,
      warmupSec: options.warmupSec,
      durationSec: options.durationSec,
      initialRows: BASELINE_INITIAL_ROWS,
      log,
    });
  } catch (error) {
    report.baselineError = errorText(error);
    report.errors.push(`baseline: ${report.baselineError}`);
  }

  let db: WorkflowBenchDb | undefined;
  try {
    log('starting the HTTP-only loader server (KUBIKI_WORKERS=off)');
    const loader = spawnKubiki('loader', database.url, false, options, await freePort());
    await waitHealthy(loader.server);
    db = await WorkflowBenchDb.open(database.url);
    const opened = db;
    onCleanup(() => opened.close());
    if (!(await db.hasEngineTables())) throw new Error('the database has no kubiki_wf_instances / kubiki_wf_steps tables: is the workflow engine built in?');
    await db.createEventsTable();
    if (!database.fresh) onCleanup(() => opened.dropEventsTable());
    const version = await publishWorkflow(loader.api);
    log(`published ${WORKFLOW_ID} version ${version}`);

    const factory = new OrganizationFactory();
    const workers = await throughputPhase(db, loader, options, database.url, factory, report);
    const watched = [...workers.map((w) => w.server), loader.server];
    if (options.latencyInstances > 0) {
      await latencyPhase(db, 'latency-workers', 'latency via workers', 'through the worker servers', workers.map((w) => w.api), watched, options, factory, report);
      await latencyPhase(db, 'latency-http-only', 'latency via HTTP-only', 'through the HTTP-only server', [loader.api], watched, options, factory, report);
    }
  } catch (error) {
    log(`failed: ${errorText(error)}`);
    report.errors.push(errorText(error));
    // Whatever the instances of the interrupted phase got to (e.g. the first step error).
    if (db && unchecked) await checkPhase(db, unchecked, report).catch(() => undefined);
  }

  console.log(formatWorkflowReport(report));
  const anomalous = report.anomalies.some((a) => a.text !== 'none');
  return report.errors.length > 0 || anomalous ? 1 : 0;
}

await runBenchmark('workflow', main);
