// npm run bench:stock — the warehouse's stock layer on PostgreSQL, each figure beside a baseline
// measured in the same run. Kubiki runs as `npm start` does (the bundle, a separate process), on a
// fresh database; every Kubiki figure goes through the REST API.
//
// 1. Post BENCH_MOVES (100,000) moves across BENCH_PRODUCTS (1,000) products and 5 locations
//    through POST /api/warehouse/moves/batch (1,000 moves a request, BENCH_CLIENTS = 4 clients,
//    each owning a quarter of the products and posting in date order): validation, balances,
//    availability checks, valuation, audit rows and outbox events. Baseline: a bare knex batch
//    insert of the same rows into a copy of warehouse_moves (same columns and indexes), same
//    batches and concurrency. Targets: ≥ 0.3× the bare insert and ≥ 1,000 moves/s.
// 2. Stock on hand for the 1,000 products (GET /api/warehouse/reports/stock-on-hand: 5,000 rows,
//    and ?byProduct=true: one row per product). Target < 50 ms.
// 3. Stock periods January–May closed, then one back-dated move (dated inside June, before the
//    product's later June moves) into this full ledger, against the same into a 1,000-row ledger
//    (a second installation in schema `small`). Target: ratio < 3×.
// 4. BENCH_RESERVE_CLIENTS (20) clients reserving 1 unit each of 100 products for
//    BENCH_RESERVE_SECONDS (30) s: reservations/s and the oversell count (must be 0). Baseline:
//    the same clients doing the bare race-free reservation (one conditional UPDATE) for 10 s.
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import knexFactory, { type Knex } from 'knex';
import { v7 as uuidv7 } from 'uuid';
import { prepareServerBench } from './bench-database.ts';
import { onCleanup, runBenchmark } from './cleanup.ts';
import { freePort } from './free-port.ts';
import { spawnServer, stopServer, waitHealthy, type ServerProcess } from './server-process.ts';
import { CUSTOMERS, SUPPLIERS, chunks, generateMoves, median, pool, type BenchMove } from './stock-moves.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const N = Number(process.env.BENCH_MOVES ?? 100_000);
const PRODUCTS = Number(process.env.BENCH_PRODUCTS ?? 1_000);
const CLIENTS = Number(process.env.BENCH_CLIENTS ?? 4);
const BATCH = 1000;
const RESERVE_CLIENTS = Number(process.env.BENCH_RESERVE_CLIENTS ?? 20);
const RESERVE_SECONDS = Number(process.env.BENCH_RESERVE_SECONDS ?? 30);
const BACKDATED = 15;
const token = `kbk_bench_${randomBytes(16).toString('hex')}`;

const log = (message: string) => console.error(`[bench:stock] ${message}`);
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const verdict = (ok: boolean, target: string) => (ok ? `OK (target ${target})` : `MISS (target ${target})`);

interface Api {
  base: string;
  call<T = any>(method: string, path: string, body?: unknown): Promise<{ status: number; body: T }>;
}

function api(base: string): Api {
  return {
    base,
    async call(method, path, body) {
      const res = await fetch(base + path, {
        method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await res.text();
      return { status: res.status, body: text ? JSON.parse(text) : undefined };
    },
  };
}

async function must<T = any>(a: Api, method: string, path: string, body?: unknown, status = [200, 201]): Promise<T> {
  const res = await a.call<T>(method, path, body);
  if (!status.includes(res.status)) throw new Error(`${method} ${path} → ${res.status} ${JSON.stringify(res.body).slice(0, 400)}`);
  return res.body;
}

async function startServer(databaseUrl: string, schema: string): Promise<{ server: ServerProcess; api: Api }> {
  const port = await freePort();
  const server = spawnServer({
    name: `kubiki (${schema})`, args: ['dist/main.js', 'start', '--port', String(port)], port, cwd: repoRoot,
    env: { DATABASE_URL: databaseUrl, KUBIKI_DB_SCHEMA: schema, KUBIKI_ADMIN_TOKEN: token, KUBIKI_ENABLE_PLUGINS: 'warehouse', LOG_LEVEL: 'warn' },
  });
  onCleanup(() => stopServer(server));
  await waitHealthy(server, 120_000);
  return { server, api: api(server.baseUrl) };
}

/** A warehouse with 5 bins, and `count` catalogue products. */
async function setUp(a: Api, count: number): Promise<{ warehouse: string; root: string; bins: string[]; products: string[] }> {
  const w = await must(a, 'POST', '/api/warehouse/warehouses', { code: 'BENCH', name: 'Bench warehouse' });
  const zone = await must(a, 'POST', '/api/warehouse/locations', { code: 'BENCH-Z', name: 'Zone', type: 'internal', level: 'zone', parent: w.location });
  const bins: string[] = [];
  for (let i = 0; i < 5; i++) bins.push((await must(a, 'POST', '/api/warehouse/locations', { code: `BENCH-B${i}`, name: `Bin ${i}`, type: 'internal', level: 'bin', parent: zone.id })).id);
  const products: string[] = new Array(count);
  await pool(Array.from({ length: count }, (_, i) => i), 16, async (i) => {
    products[i] = (await must(a, 'POST', '/api/base/products', { sku: `BENCH-${String(i).padStart(5, '0')}`, name: `Bench product ${i}` })).id;
  });
  return { warehouse: w.id, root: w.location, bins, products };
}

async function postAll(a: Api, perClient: BenchMove[][]): Promise<number> {
  const t0 = performance.now();
  await Promise.all(perClient.map(async (moves) => {
    for (const batch of chunks(moves, BATCH)) await must(a, 'POST', '/api/warehouse/moves/batch', { moves: batch }, [201]);
  }));
  return performance.now() - t0;
}

async function bareInsert(knex: Knex, schema: string, perClient: BenchMove[][]): Promise<number> {
  // A copy of the ledger table: the same columns and indexes (no foreign keys), the same row shape.
  await knex.raw('create table ??.bench_moves (like ??.warehouse_moves including all)', [schema, schema]);
  const [{ id: posting }] = await knex.withSchema(schema).table('warehouse_postings').limit(1).select('id');
  const rows = perClient.map((moves) => moves.map((m) => ({
    id: uuidv7(), kind: m.kind, status: 'done', date: m.date, product: m.product, quantity: m.quantity, enteredQuantity: null, enteredUnit: null,
    fromLocation: m.fromLocation, toLocation: m.toLocation, lot: null, serials: null, valuation: m.kind === 'receipt' ? 'in' : m.kind === 'shipment' ? 'out' : 'none',
    unitCost: m.unitCost ?? null, value: m.unitCost ? (Number(m.unitCost) * Number(m.quantity)).toFixed(2) : null, reservation: null, reverses: null, planned: null,
    posting, sourceEntity: null, sourceId: null, sourceLine: null, memo: null, createdBy: null,
  })));
  const t0 = performance.now();
  await Promise.all(rows.map(async (list) => {
    for (const batch of chunks(list, BATCH)) await knex.withSchema(schema).table('bench_moves').insert(batch);
  }));
  const ms = performance.now() - t0;
  await knex.raw('drop table ??.bench_moves', [schema]);
  return ms;
}

async function timed(times: number, work: () => Promise<void>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await work();
    out.push(performance.now() - t0);
  }
  return out;
}

/** One back-dated receipt per product (dated `date`), each timed. */
async function backdated(a: Api, products: string[], bin: string, date: string): Promise<number[]> {
  const out: number[] = [];
  for (const product of products) {
    const t0 = performance.now();
    await must(a, 'POST', '/api/warehouse/moves', { kind: 'receipt', product, quantity: '1', fromLocation: SUPPLIERS, toLocation: bin, unitCost: '50.00', date }, [201]);
    out.push(performance.now() - t0);
  }
  return out;
}

async function main(): Promise<number> {
  const database = await prepareServerBench(repoRoot, log);
  const knex = knexFactory({ client: 'pg', connection: database.url, pool: { min: 0, max: RESERVE_CLIENTS + 2 } });
  onCleanup(() => knex.destroy());
  const failures: string[] = [];
  const lines: string[] = [];
  const print = (line: string) => { lines.push(line); console.log(line); };

  log('starting Kubiki (schema public)');
  const { api: big } = await startServer(database.url, 'public');
  log(`setting up a warehouse with 5 bins and ${fmt(PRODUCTS)} products`);
  const place = await setUp(big, PRODUCTS);
  const perClient = Array.from({ length: CLIENTS }, (_, c) => generateMoves({
    count: Math.floor(N / CLIENTS), products: place.products.filter((_, i) => i % CLIENTS === c), locations: place.bins, start: '2026-01-01', days: 181, seed: 11 + c,
  }));
  const total = perClient.reduce((n, l) => n + l.length, 0);
  print(`stock bench on ${database.label}: ${fmt(total)} moves, ${fmt(PRODUCTS)} products, 5 locations, batches of ${BATCH}, ${CLIENTS} clients`);

  // 1. Moves through the API vs a bare batch insert.
  log('posting moves through POST /api/warehouse/moves/batch');
  const apiMs = await postAll(big, perClient);
  log('bare knex batch insert of the same rows');
  const bareMs = await bareInsert(knex, 'public', perClient);
  const apiRate = total / (apiMs / 1000);
  const bareRate = total / (bareMs / 1000);
  const [{ count: ledgerRows }] = (await knex.withSchema('public').table('warehouse_moves').count({ count: '*' })) as { count: string }[];
  print(`moves through the API         : ${fmt(apiRate)} moves/s (${(apiMs / 1000).toFixed(1)} s; ledger ${fmt(Number(ledgerRows))} rows) ${verdict(apiRate >= 1000, '≥ 1,000/s')}`);
  print(`bare knex batch insert        : ${fmt(bareRate)} rows/s (${(bareMs / 1000).toFixed(1)} s)`);
  print(`ratio API/bare                : ${(apiRate / bareRate).toFixed(2)}× ${verdict(apiRate / bareRate >= 0.3, '≥ 0.3×')}`);

  // 2. Stock on hand for the 1,000 products.
  await must(big, 'GET', '/api/warehouse/reports/stock-on-hand');
  let rows = 0;
  const soh = await timed(15, async () => { rows = (await must(big, 'GET', '/api/warehouse/reports/stock-on-hand')).rows.length; });
  let productRows = 0;
  const sohByProduct = await timed(15, async () => { productRows = (await must(big, 'GET', '/api/warehouse/reports/stock-on-hand?byProduct=true')).rows.length; });
  const one = await timed(15, async () => { await must(big, 'GET', `/api/warehouse/availability?product=${place.products[7]}&warehouse=${place.warehouse}`); });
  print(`stock on hand, ${fmt(rows)} rows        : median ${median(soh).toFixed(1)} ms ${verdict(median(soh) < 50, '< 50 ms')}`);
  print(`stock on hand by product (${fmt(productRows)}) : median ${median(sohByProduct).toFixed(1)} ms ${verdict(median(sohByProduct) < 50, '< 50 ms')}`);
  print(`availability of one product   : median ${median(one).toFixed(1)} ms`);

  // 3. Periods, then back-dated moves into the full ledger and into a 1,000-row one.
  const closeTimes: string[] = [];
  for (const date of ['2026-01-31', '2026-02-28', '2026-03-31', '2026-04-30', '2026-05-31']) {
    const t0 = performance.now();
    const period = await must(big, 'POST', '/api/warehouse/periods', { date });
    closeTimes.push(`${date.slice(5, 7)}: ${((performance.now() - t0) / 1000).toFixed(2)} s (${fmt(period.rows)} rows)`);
  }
  print(`closing periods Jan–May       : ${closeTimes.join(', ')}`);
  // Products with June moves after the 2nd: the back-dated receipt re-values their later issues.
  const june: { product: string }[] = await knex.withSchema('public').table('warehouse_moves').where('date', '>', '2026-06-20').where({ kind: 'shipment' }).distinct('product').limit(BACKDATED);
  const full = await backdated(big, june.map((r) => r.product), place.bins[0], '2026-06-02');
  const [{ count: revaluations }] = (await knex.withSchema('public').table('warehouse_revaluations').count({ count: '*' })) as { count: string }[];

  log('starting a second installation (schema small) for the 1,000-row ledger');
  const { api: small, server: smallServer } = await startServer(database.url, 'small');
  const smallPlace = await setUp(small, PRODUCTS);
  const oneEach = smallPlace.products.map((product, i) => ({ kind: 'receipt' as const, date: '2026-06-10', product, quantity: '10', fromLocation: SUPPLIERS, toLocation: smallPlace.bins[i % 5], unitCost: '10.00' }));
  for (const batch of chunks(oneEach, BATCH)) await must(small, 'POST', '/api/warehouse/moves/batch', { moves: batch }, [201]);
  await must(small, 'POST', '/api/warehouse/moves/batch', { moves: smallPlace.products.slice(0, BACKDATED).map((product, i) => ({ kind: 'shipment', date: '2026-06-25', product, quantity: '1', fromLocation: smallPlace.bins[i % 5], toLocation: CUSTOMERS })) }, [201]);
  await must(small, 'POST', '/api/warehouse/periods', { date: '2026-05-31' });
  const [{ count: smallRows }] = (await knex.withSchema('small').table('warehouse_moves').count({ count: '*' })) as { count: string }[];
  const smallTimes = await backdated(small, smallPlace.products.slice(0, BACKDATED), smallPlace.bins[0], '2026-06-02');
  await stopServer(smallServer);
  const ratio = median(full) / median(smallTimes);
  print(`back-dated move, full ledger  : median ${median(full).toFixed(1)} ms over ${fmt(Number(ledgerRows))} rows (${revaluations} issues revalued by ${full.length} moves)`);
  print(`back-dated move, ${fmt(Number(smallRows))}-row ledger: median ${median(smallTimes).toFixed(1)} ms`);
  print(`ratio full/small              : ${ratio.toFixed(2)}× ${verdict(ratio < 3, '< 3×')}`);

  // 4. Reservations: 20 clients, 1 unit each, 100 products with what stock they have.
  const targets = place.products.slice(0, 100);
  const counts = { reserved: 0, refused: 0, errors: 0 };
  const until = performance.now() + RESERVE_SECONDS * 1000;
  log(`reserving for ${RESERVE_SECONDS} s with ${RESERVE_CLIENTS} clients`);
  await Promise.all(Array.from({ length: RESERVE_CLIENTS }, async (_, c) => {
    let i = 0;
    let seed = 97 + c;
    while (performance.now() < until) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      const res = await big.call('POST', '/api/warehouse/reservations', { product: targets[seed % targets.length], warehouse: place.warehouse, quantity: '1', demand: { entity: 'bench.orders', id: `${c}-${i++}` } });
      if (res.status === 201) counts.reserved++;
      else if (res.status === 409) counts.refused++;
      else { counts.errors++; if (counts.errors < 5) log(`reservation error ${res.status} ${JSON.stringify(res.body).slice(0, 300)}`); }
    }
  }));
  const attempts = counts.reserved + counts.refused + counts.errors;
  // Oversell: a product whose reservations hold more than the warehouse has.
  const { rows: oversold } = await knex.raw(
    `select b.product_id, sum(b.on_hand) as on_hand, sum(b.reserved) as reserved, (select coalesce(sum(r.reserved - r.consumed - r.released), 0) from public.warehouse_reservations r where r.product = b.product_id and r.status = 'active') as held
     from public.warehouse_balances b where b.root_id = ? group by b.product_id having sum(b.reserved) > sum(b.on_hand) or sum(b.reserved) <> (select coalesce(sum(r.reserved - r.consumed - r.released), 0) from public.warehouse_reservations r where r.product = b.product_id and r.status = 'active')`,
    [place.root],
  );
  // Baseline: the bare race-free reservation, one conditional UPDATE per request.
  await knex.raw('create table public.bench_stock (product uuid primary key, on_hand numeric(18,3) not null, reserved numeric(18,3) not null)');
  await knex.raw(`insert into public.bench_stock select product_id, sum(on_hand), 0 from public.warehouse_balances where product_id = any(?::uuid[]) group by product_id`, [targets]);
  let bare = 0;
  const bareUntil = performance.now() + 10_000;
  await Promise.all(Array.from({ length: RESERVE_CLIENTS }, async (_, c) => {
    let seed = 31 + c;
    while (performance.now() < bareUntil) {
      seed = (seed * 1103515245 + 12345) % 2147483648;
      await knex.raw('update public.bench_stock set reserved = reserved + 1 where product = ? and on_hand - reserved >= 1', [targets[seed % targets.length]]);
      bare++;
    }
  }));
  await knex.raw('drop table public.bench_stock');
  const rate = attempts / RESERVE_SECONDS;
  print(`reservations, ${RESERVE_CLIENTS} clients, ${RESERVE_SECONDS} s : ${fmt(rate)} requests/s (${fmt(counts.reserved)} reserved, ${fmt(counts.refused)} refused: stock gone, ${counts.errors} errors)`);
  print(`bare conditional UPDATE       : ${fmt(bare / 10)} updates/s (ratio ${(rate / (bare / 10)).toFixed(2)}×)`);
  print(`oversell                      : ${oversold.length} products ${oversold.length === 0 ? 'OK (must be 0)' : 'FAIL (must be 0)'}`);
  if (oversold.length) failures.push(`oversell on ${oversold.length} products: ${JSON.stringify(oversold.slice(0, 3))}`);
  if (counts.errors) failures.push(`${counts.errors} reservation requests failed`);
  for (const f of failures) console.error(`FAIL: ${f}`);
  return failures.length ? 1 : 0;
}

void runBenchmark('stock', main);
