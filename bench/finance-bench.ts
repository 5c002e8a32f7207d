// npm run bench:finance — posting throughput of the finance ledger and report latency on PostgreSQL.
//
// Everything finance does goes through its public REST API over HTTP, as a client's would.
// 1. Posts BENCH_ENTRIES (default 100,000) journal entries of 2–6 lines with POST
//    /api/finance/entries/batch: BENCH_BATCH entries (default 500) per request and transaction,
//    BENCH_CONCURRENCY (default 4) requests at a time. Each goes through the route's schema check,
//    the posting service's domain checks, the open-period lock, account resolution, the entity
//    repository header with audit row + outbox event, and one multi-row line insert with audit rows.
// 2. Posts BENCH_SINGLE (default 2,000) more entries with POST /api/finance/entries, one per request
//    and transaction, 8 at a time.
// 3. Baseline: the same rows as (1) with a bare knex batch insert into copies of the two tables
//    (same columns and indexes, no HTTP, no validation, no audit, no event), same batching and concurrency.
// 4. Times GET /api/finance/reports/trial-balance and /profit-and-loss over HTTP (target < 1 s).
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { configFromEnv } from '../core/config.ts';
import { Kubiki } from '../core/kernel.ts';
import { openBenchDatabase } from './bench-database.ts';

const N = Number(process.env.BENCH_ENTRIES ?? 100_000);
const BATCH = Number(process.env.BENCH_BATCH ?? 500);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 4);
const SINGLE = Number(process.env.BENCH_SINGLE ?? 2_000);
const ACCOUNTS = ['01', '10', '19', '41', '44', '50', '51', '60', '62', '68.02', '76', '80', '90.01', '90.02', '91.01', '91.02'];

let seed = 7;
const rnd = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
function makeEntry(): { date: string; memo: string; lines: { account: string; debit?: string; credit?: string }[] } {
  const n = 2 + Math.floor(rnd() * 5);
  const lines: { account: string; debit?: string; credit?: string }[] = [];
  let cents = 0;
  for (let j = 0; j < n - 1; j++) {
    const c = 1 + Math.floor(rnd() * 10_000_000);
    cents += c;
    lines.push({ account: ACCOUNTS[Math.floor(rnd() * ACCOUNTS.length)], debit: (c / 100).toFixed(2) });
  }
  lines.push({ account: ACCOUNTS[Math.floor(rnd() * ACCOUNTS.length)], credit: (cents / 100).toFixed(2) });
  const month = Math.floor(rnd() * 24);
  const date = `${2025 + Math.floor(month / 12)}-${String((month % 12) + 1).padStart(2, '0')}-${String(1 + Math.floor(rnd() * 28)).padStart(2, '0')}`;
  return { date, memo: `bench ${Math.floor(rnd() * 1e9)}`, lines };
}

async function pool<T>(items: T[], concurrency: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < items.length) await work(items[next++]);
  }));
}

const chunks = <T>(list: T[], size: number): T[][] => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, i * size + size));
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  const database = await openBenchDatabase();
  const adminToken = `kbk_bench_${randomBytes(16).toString('hex')}`;
  const k = await Kubiki.create({
    config: configFromEnv({}, { databaseUrl: database.url, enablePlugins: ['base', 'finance'], adminToken, logLevel: 'silent' }),
    background: false, logger: pino({ level: 'silent' }), env: {},
  });
  try {
    const server = await k.listen(0, '127.0.0.1');
    const address = server.address();
    const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
    const api = async (method: string, path: string, body?: unknown): Promise<unknown> => {
      const res = await fetch(`${base}${path}`, {
        method, headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const answer = await res.json() as unknown;
      if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer).slice(0, 1000)}`);
      return answer;
    };
    console.log(`finance bench on ${database.label}: ${fmt(N)} entries of 2–6 lines, batches of ${BATCH}, concurrency ${CONCURRENCY}, over HTTP`);
    const raw = Array.from({ length: N }, makeEntry);
    const lineCount = raw.reduce((s, e) => s + e.lines.length, 0);

    // (1) the posting service, batched: POST /api/finance/entries/batch
    let t0 = performance.now();
    await pool(chunks(raw, BATCH), CONCURRENCY, async (batch) => { await api('POST', '/api/finance/entries/batch', { entries: batch }); });
    const serviceMs = performance.now() - t0;

    // (2) one entry per request and transaction: POST /api/finance/entries
    const singles = Array.from({ length: SINGLE }, makeEntry);
    t0 = performance.now();
    await pool(singles, 8, async (e) => { await api('POST', '/api/finance/entries', e); });
    const singleMs = performance.now() - t0;

    // (3) bare knex baseline into copies of the tables (same columns and indexes)
    const knex = k.db.knex;
    const s = k.db.schema;
    await knex.raw('create table ??.bench_entries (like ??.finance_entries including all)', [s, s]);
    await knex.raw('create table ??.bench_entry_lines (like ??.finance_entry_lines including all)', [s, s]);
    const chart = await api('GET', '/api/finance/accounts?limit=500&fields=id,code') as { data: { id: string; code: string }[] };
    const accounts = new Map(chart.data.map((a) => [a.code, a.id]));
    let n = 0;
    t0 = performance.now();
    await pool(chunks(raw, BATCH), CONCURRENCY, async (batch) => {
      await knex.transaction(async (trx) => {
        const headers = batch.map((e) => ({ date: e.date, memo: e.memo, period: e.date.slice(0, 7), total: e.lines.reduce((x, l) => x + Number(l.debit ?? 0), 0).toFixed(2), lineCount: e.lines.length }));
        const ids: { id: string }[] = await k.db.table('bench_entries', trx).insert(headers.map((h) => ({ ...h, id: `00000000-0000-7000-8000-${String(++n).padStart(12, '0')}` }))).returning('id');
        const rows = batch.flatMap((e, i) => e.lines.map((l, j) => ({ entry_id: ids[i].id, line_no: j + 1, date: e.date, account_id: accounts.get(l.account), debit: l.debit ?? '0', credit: l.credit ?? '0' })));
        for (const part of chunks(rows, 5000)) await k.db.table('bench_entry_lines', trx).insert(part);
      });
    });
    const baselineMs = performance.now() - t0;
    await knex.raw('drop table ??.bench_entry_lines, ??.bench_entries', [s, s]);
    await knex.raw('analyze ??.finance_entry_lines', [s]);

    const serviceRate = N / (serviceMs / 1000);
    const baselineRate = N / (baselineMs / 1000);
    console.log(`POST /entries/batch      : ${fmt(serviceRate)} entries/s (${fmt(lineCount / (serviceMs / 1000))} lines/s, ${(serviceMs / 1000).toFixed(1)} s)`);
    console.log(`bare knex batch insert   : ${fmt(baselineRate)} entries/s (${(baselineMs / 1000).toFixed(1)} s)`);
    console.log(`ratio service/baseline   : ${(serviceRate / baselineRate).toFixed(2)}×`);
    console.log(`POST /entries, 1/trx     : ${fmt(SINGLE / (singleMs / 1000))} entries/s (${fmt(SINGLE)} entries, 8 concurrent)`);

    // (4) reports over HTTP
    const [{ count }] = await k.db.table('finance_entry_lines').count({ count: '*' });
    for (const report of ['trial-balance?from=2026-01-01&to=2026-12-31', 'profit-and-loss?from=2025-01-01&to=2026-12-31']) {
      const times: number[] = [];
      let body: Record<string, unknown> = {};
      for (let i = 0; i < 5; i++) {
        const t = performance.now();
        const res = await fetch(`${base}/api/finance/reports/${report}`, { headers: { authorization: `Bearer ${adminToken}` } });
        body = await res.json() as Record<string, unknown>;
        if (res.status !== 200) throw new Error(`${report}: ${res.status} ${JSON.stringify(body)}`);
        times.push(performance.now() - t);
      }
      times.sort((a, b) => a - b);
      const median = times[2];
      console.log(`${report.split('?')[0].padEnd(24)} : median ${median.toFixed(0)} ms, best ${times[0].toFixed(0)} ms over ${fmt(Number(count))} lines ${median < 1000 ? 'OK' : 'MISS (target < 1 s)'}${'balanced' in body ? `, balanced: ${body.balanced}` : ''}`);
    }
  } finally {
    await k.close();
    await database.drop();
  }
}

main().catch((error) => { console.error(error); process.exit(1); });
