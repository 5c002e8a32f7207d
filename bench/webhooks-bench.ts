// `npm run bench:webhooks`: outgoing webhooks on PostgreSQL against a hostile local receiver.
//
// One fresh database (dropped at the end), Kubiki run from the bundle as `npm start` does, and a
// receiver in this process that fails 30% of requests at random (500) and is slow on 10%
// (100–500 ms before answering). It verifies every signature with the Standard Webhooks reference
// library and counts what it accepted by webhook-id.
//
//   1. throughput: an HTTP-only server (KUBIKI_WORKERS=off) gets one subscription
//      (base.organizations.*) and --events events (default 10,000: organizations created and each
//      renamed three times, 16 records at a time; their events wait in the outbox). Then a worker
//      server is started and delivers them all: deliveries/s from its first accepted delivery to
//      the last (and from its spawn, boot included), attempts/s.
//   2. latency: with the worker running, --latency-events more (default 2,000) at --latency-rate
//      events/s (default: half the deliveries/s phase 1 measured, so the figure is latency, not a
//      queue growing) through the worker server: event written (outbox created_at) → the receiver
//      accepted it, p50/p99 — retries and waiting behind a record's earlier events included.
//   After both: every event accepted exactly once (0 lost, 0 duplicates, by webhook-id and by
//   event), every signature valid, each record's events accepted in the order they happened, no
//   delivery failed. Anything else exits 1.
//
// The retry schedule is shortened (KUBIKI_WEBHOOK_RETRY_SCHEDULE, printed) so a 30% failure rate
// settles in seconds, not hours; the mechanism is the production one.
// Options: --events N, --latency-events N (0 skips), --latency-rate N, --concurrency N
//   (KUBIKI_WEBHOOK_CONCURRENCY, 32), --database-url URL (same as BENCH_DATABASE_URL).
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { Webhook } from 'standardwebhooks';
import { prepareServerBench } from './bench-database.ts';
import { errorText, onCleanup, runBenchmark } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { spawnServer, stopServer, waitHealthy, type ServerProcess } from './server-process.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const adminToken = `kubiki-bench-${randomBytes(16).toString('hex')}`;
const RETRY_SCHEDULE = '100ms,200ms,400ms,800ms,1s,2s,2s,2s,2s,2s,2s,2s,2s,2s,2s';
const FAIL_RATE = 0.3;
const SLOW_RATE = 0.1;
const SLOW_MS: [number, number] = [100, 500];
const RECORDS_IN_FLIGHT = 16;
const EVENTS_PER_RECORD = 4;
const STALL_MS = 60_000;

const log = (message: string): void => console.error(`[bench] ${message}`);

interface Options { events: number; latencyEvents: number; latencyRate?: number; concurrency: number }

function whole(name: string, raw: string | undefined, fallback: number, min: number): number {
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}, got "${raw}"`);
  return value;
}

function parseOptions(): Options | undefined {
  const { values } = parseArgs({
    options: {
      events: { type: 'string' }, 'latency-events': { type: 'string' }, 'latency-rate': { type: 'string' },
      concurrency: { type: 'string' }, 'database-url': { type: 'string' }, help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log('usage: npm run bench:webhooks -- [--events N] [--latency-events N] [--latency-rate N (default: half the measured deliveries/s)] [--concurrency N] [--database-url URL]');
    return undefined;
  }
  if (values['database-url']) process.env.BENCH_DATABASE_URL = values['database-url'];
  const round = (n: number) => Math.max(EVENTS_PER_RECORD, Math.round(n / EVENTS_PER_RECORD) * EVENTS_PER_RECORD);
  return {
    events: round(whole('--events', values.events, 10_000, 1)),
    latencyEvents: whole('--latency-events', values['latency-events'], 2000, 0) === 0 ? 0 : round(whole('--latency-events', values['latency-events'], 2000, 0)),
    latencyRate: values['latency-rate'] === undefined ? undefined : whole('--latency-rate', values['latency-rate'], 100, 1),
    concurrency: whole('--concurrency', values.concurrency, 32, 1),
  };
}

// Settings of the caller's shell that would change what the servers do.
for (const key of Object.keys(process.env)) {
  if (key === 'KUBIKI_WORKERS' || key === 'KUBIKI_DB_SCHEMA' || key.startsWith('KUBIKI_WEBHOOK_') || key === 'KUBIKI_RATE_LIMIT' || key === 'KUBIKI_WORKFLOW_HTTP_ALLOW') delete process.env[key];
}

// --- the receiver ----------------------------------------------------------------

interface Accepted { messageId: string; eventId: number; recordId: string; at: number; eventAt: number }

class Receiver {
  url = '';
  requests = 0;
  failed = 0;
  slow = 0;
  badSignatures = 0;
  readonly accepted: Accepted[] = [];
  readonly acceptedById = new Map<string, number>();
  private server?: Server;
  private verifier?: Webhook;

  set secret(secret: string) {
    this.verifier = new Webhook(secret);
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.requests++;
        const body = Buffer.concat(chunks).toString('utf8');
        let payload: { timestamp: string; data: { id: string; eventId: number } };
        try {
          payload = this.verifier!.verify(body, req.headers as Record<string, string>) as typeof payload;
        } catch {
          this.badSignatures++;
          res.writeHead(400).end('bad signature');
          return;
        }
        const answer = () => {
          if (Math.random() < FAIL_RATE) {
            this.failed++;
            res.writeHead(500).end('random failure');
            return;
          }
          const id = String(req.headers['webhook-id']);
          this.acceptedById.set(id, (this.acceptedById.get(id) ?? 0) + 1);
          this.accepted.push({ messageId: id, eventId: payload.data.eventId, recordId: payload.data.id, at: Date.now(), eventAt: Date.parse(payload.timestamp) });
          res.writeHead(204).end();
        };
        if (Math.random() < SLOW_RATE) {
          this.slow++;
          setTimeout(answer, SLOW_MS[0] + Math.random() * (SLOW_MS[1] - SLOW_MS[0]));
        } else answer();
      });
    });
    this.server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', () => resolve()));
    const address = this.server.address();
    this.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (server) await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
  }
}

// --- servers and load ----------------------------------------------------------

interface Api { baseUrl: string; headers: Record<string, string> }

function spawnKubiki(name: string, databaseUrl: string, workers: boolean, options: Options, port: number): { server: ServerProcess; api: Api } {
  const server = spawnServer({
    name, args: ['dist/main.js', 'start', '--port', String(port)], port, cwd: repoRoot,
    env: {
      DATABASE_URL: databaseUrl, KUBIKI_ADMIN_TOKEN: adminToken, LOG_LEVEL: 'warn', KUBIKI_WORKERS: workers ? 'on' : 'off',
      KUBIKI_WORKFLOW_HTTP_ALLOW: '127.0.0.1', KUBIKI_WEBHOOK_RETRY_SCHEDULE: RETRY_SCHEDULE, KUBIKI_WEBHOOK_CONCURRENCY: String(options.concurrency),
      KUBIKI_WEBHOOK_TIMEOUT_MS: '5000', KUBIKI_WEBHOOK_POLL_MS: '100', KUBIKI_EVENT_POLL_MS: '200',
    },
  });
  onCleanup(() => stopServer(server));
  return { server, api: { baseUrl: server.baseUrl, headers: { Authorization: `Bearer ${adminToken}`, 'Content-Type': 'application/json' } } };
}

async function call(api: Api, method: string, path: string, body?: unknown): Promise<any> {
  const response = await fetch(`${api.baseUrl}${path}`, { method, headers: api.headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await response.text();
  if (response.status >= 300) throw new Error(`${method} ${path} -> ${response.status} ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : undefined;
}

let records = 0;
/** One record's events, one after another: created, then renamed three times. */
async function recordChain(api: Api, tag: string): Promise<void> {
  const n = ++records;
  const made = await call(api, 'POST', '/api/base/organizations', { name: `${tag} ${n}` });
  for (let v = 2; v <= EVENTS_PER_RECORD; v++) await call(api, 'PATCH', `/api/base/organizations/${made.id}`, { name: `${tag} ${n} v${v}` });
}

/** As fast as RECORDS_IN_FLIGHT chains allow. */
async function backlog(api: Api, events: number): Promise<number> {
  const started = performance.now();
  let left = events / EVENTS_PER_RECORD;
  await Promise.all(Array.from({ length: RECORDS_IN_FLIGHT }, async () => {
    while (left-- > 0) await recordChain(api, 'Backlog');
  }));
  return (performance.now() - started) / 1000;
}

/** Chains started at a steady rate (open loop): `rate` events/s in all. */
async function paced(api: Api, events: number, rate: number): Promise<void> {
  const chains = events / EVENTS_PER_RECORD;
  const everyMs = 1000 * EVENTS_PER_RECORD / rate;
  const started = performance.now();
  const running: Promise<void>[] = [];
  for (let i = 0; i < chains; i++) {
    const due = started + i * everyMs;
    const wait = due - performance.now();
    if (wait > 0) await sleep(wait);
    running.push(recordChain(api, 'Paced'));
  }
  await Promise.all(running);
}

// --- checks and figures ------------------------------------------------------------

interface Expected { eventIds: number[]; byRecord: Map<string, number[]> }

async function expectedEvents(db: pg.Client, afterId: number): Promise<Expected> {
  const { rows } = await db.query<{ id: string; record_id: string }>("select id, record_id from kubiki_outbox where id > $1 and event like 'base.organizations.%' order by id", [afterId]);
  const byRecord = new Map<string, number[]>();
  for (const r of rows) byRecord.set(r.record_id, [...(byRecord.get(r.record_id) ?? []), Number(r.id)]);
  return { eventIds: rows.map((r) => Number(r.id)), byRecord };
}

async function waitAccepted(receiver: Receiver, expected: Set<number>, watched: ServerProcess[]): Promise<void> {
  let seen = -1;
  let changed = performance.now();
  let logged = 0;
  for (;;) {
    for (const s of watched) if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`${s.name} exited during the run:\n${s.outputTail().split('\n').slice(-20).join('\n')}`);
    const got = new Set(receiver.accepted.map((a) => a.eventId).filter((id) => expected.has(id))).size;
    if (got >= expected.size) return;
    const now = performance.now();
    if (got !== seen) { seen = got; changed = now; } else if (now - changed > STALL_MS) throw new Error(`no delivery accepted for ${STALL_MS / 1000} s: ${got} of ${expected.size}`);
    if (now - logged > 2000) { logged = now; log(`${got}/${expected.size} accepted, ${receiver.requests} requests so far`); }
    await sleep(50);
  }
}

const percentile = (sorted: number[], p: number): number => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

function anomalies(receiver: Receiver, expected: Expected): string[] {
  const out: string[] = [];
  const accepted = new Map<number, number>();
  for (const a of receiver.accepted) accepted.set(a.eventId, (accepted.get(a.eventId) ?? 0) + 1);
  const lost = expected.eventIds.filter((id) => !accepted.has(id)).length;
  const duplicateIds = [...receiver.acceptedById.values()].filter((n) => n > 1).length;
  const duplicateEvents = [...accepted.values()].filter((n) => n > 1).length;
  if (lost) out.push(`${lost} events never accepted (lost)`);
  if (duplicateIds) out.push(`${duplicateIds} webhook-ids accepted more than once`);
  if (duplicateEvents) out.push(`${duplicateEvents} events accepted more than once`);
  if (receiver.badSignatures) out.push(`${receiver.badSignatures} requests with a bad signature`);
  const gotByRecord = new Map<string, number[]>();
  for (const a of receiver.accepted) gotByRecord.set(a.recordId, [...(gotByRecord.get(a.recordId) ?? []), a.eventId]);
  let outOfOrder = 0;
  for (const [recordId, ids] of expected.byRecord) if ((gotByRecord.get(recordId) ?? []).join() !== ids.join()) outOfOrder++;
  if (outOfOrder) out.push(`${outOfOrder} records whose events were accepted out of order`);
  return out;
}

// --- main ---------------------------------------------------------------------------

async function main(): Promise<number> {
  const options = parseOptions();
  if (!options) return 0;
  const database = await prepareServerBench(repoRoot, log);
  const receiver = new Receiver();
  await receiver.start();
  onCleanup(() => receiver.stop());
  const lines: string[] = [];
  const problems: string[] = [];
  try {
    const loader = spawnKubiki('loader', database.url, false, options, await freePort());
    await waitHealthy(loader.server);
    const db = new pg.Client({ connectionString: database.url });
    await db.connect();
    onCleanup(() => db.end());
    const hook = await call(loader.api, 'POST', '/api/webhooks', { url: receiver.url, eventTypes: ['base.organizations.*'] });
    receiver.secret = hook.secret;
    const start = Number((await db.query<{ id: string | null }>('select max(id) as id from kubiki_outbox')).rows[0].id ?? 0);

    log(`throughput: ${options.events} events through the HTTP-only server (${RECORDS_IN_FLIGHT} records at a time)`);
    const loadSeconds = await backlog(loader.api, options.events);
    const phase1 = await expectedEvents(db, start);
    if (phase1.eventIds.length !== options.events) throw new Error(`${phase1.eventIds.length} outbox events for ${options.events} writes`);
    log(`throughput: written in ${loadSeconds.toFixed(1)} s; starting the worker server`);
    const spawnedAt = Date.now();
    const worker = spawnKubiki('worker', database.url, true, options, await freePort());
    await waitHealthy(worker.server);
    const requestsBefore = receiver.requests;
    await waitAccepted(receiver, new Set(phase1.eventIds), [worker.server, loader.server]);
    const done = Date.now();
    const first = Math.min(...receiver.accepted.map((a) => a.at));
    const attempts = receiver.requests - requestsBefore;
    const deliveriesPerSec = options.events / ((done - first) / 1000);
    lines.push(
      `throughput  ${options.events} events: ${deliveriesPerSec.toFixed(0)} deliveries/s (first to last accepted, ${((done - first) / 1000).toFixed(1)} s); `
        + `${(options.events / ((done - spawnedAt) / 1000)).toFixed(0)}/s from the worker's spawn; ${attempts} attempts (${(attempts / ((done - first) / 1000)).toFixed(0)}/s)`,
    );

    const all: Expected = { eventIds: [...phase1.eventIds], byRecord: new Map(phase1.byRecord) };
    if (options.latencyEvents > 0) {
      const mark = phase1.eventIds[phase1.eventIds.length - 1];
      const acceptedBefore = receiver.accepted.length;
      const rate = options.latencyRate ?? Math.max(4, Math.round(deliveriesPerSec / 2));
      log(`latency: ${options.latencyEvents} events at ${rate}/s through the worker server`);
      await paced(worker.api, options.latencyEvents, rate);
      const phase2 = await expectedEvents(db, mark);
      await waitAccepted(receiver, new Set(phase2.eventIds), [worker.server, loader.server]);
      const inPhase = new Set(phase2.eventIds);
      const { rows } = await db.query<{ id: string; ms: string }>('select id, (extract(epoch from created_at) * 1000)::float8 as ms from kubiki_outbox where id > $1', [mark]);
      const createdAt = new Map(rows.map((r) => [Number(r.id), Number(r.ms)]));
      const latencies = receiver.accepted.slice(acceptedBefore).filter((a) => inPhase.has(a.eventId)).map((a) => a.at - createdAt.get(a.eventId)!).sort((a, b) => a - b);
      lines.push(`latency     ${phase2.eventIds.length} events at ${rate}/s${options.latencyRate ? '' : ' (half the throughput)'}: end-to-end (written → accepted) p50 ${percentile(latencies, 50).toFixed(0)} ms, p99 ${percentile(latencies, 99).toFixed(0)} ms, max ${latencies[latencies.length - 1].toFixed(0)} ms`);
      for (const id of phase2.eventIds) all.eventIds.push(id);
      for (const [k, v] of phase2.byRecord) all.byRecord.set(k, v);
    }
    // Anything still sent after the last accepted one would be a duplicate: give it a moment.
    await sleep(2000);
    const { rows: failed } = await db.query<{ n: string }>("select count(*) as n from kubiki_webhook_deliveries where status <> 'delivered'");
    if (Number(failed[0].n) > 0) problems.push(`${failed[0].n} deliveries not delivered`);
    problems.push(...anomalies(receiver, all));
    const acceptedEvents = new Set(receiver.accepted.map((a) => a.eventId));
    const lost = all.eventIds.filter((id) => !acceptedEvents.has(id)).length;
    const duplicates = [...receiver.acceptedById.values()].filter((n) => n > 1).length;
    lines.push(`receiver    ${receiver.requests} requests, ${receiver.failed} failed at random (${((100 * receiver.failed) / receiver.requests).toFixed(1)}%), ${receiver.slow} slow; `
      + `accepted ${receiver.accepted.length} for ${all.eventIds.length} events: ${lost} lost, ${duplicates} duplicates (by webhook-id), ${receiver.badSignatures} bad signatures`);
  } catch (error) {
    problems.push(errorText(error));
  }
  console.log(`Kubiki webhook benchmark (${database.label}${database.fresh ? ', fresh database' : ''}; ${availableParallelism()} CPU cores)`);
  console.log(`settings: receiver fails ${FAIL_RATE * 100}% at random, slow (${SLOW_MS[0]}–${SLOW_MS[1]} ms) on ${SLOW_RATE * 100}%; one worker process, KUBIKI_WEBHOOK_CONCURRENCY=${options.concurrency}; `
    + `KUBIKI_WEBHOOK_RETRY_SCHEDULE=${RETRY_SCHEDULE} (shortened; ±20% jitter)`);
  for (const line of lines) console.log(line);
  console.log(problems.length ? `ANOMALIES:\n  ${problems.join('\n  ')}` : 'checks      every event accepted once, in order per record, every signature valid, no delivery failed');
  return problems.length ? 1 : 0;
}

await runBenchmark('webhooks', main);
