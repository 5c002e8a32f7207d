// The baseline of `npm run bench:workflow`: the fastest a job queue on this PostgreSQL can go,
// a bare loop of clients each claiming (and consuming) one row per statement with
//   delete … where id = (select id … order by id limit 1 for update skip locked) returning *
// Every workflow step costs at least one such claim, so steps/s is compared with these rows/s.
//
// Each statement is its own transaction (autocommit), so every claim pays a commit like a step
// does. The queue is filled before timing; after the warm-up the clients stop, the queue is
// topped up to comfortably more than the measured period needs at the warm-up rate (a fixed
// size would run dry on a fast machine and waste minutes of inserts on a slow one), and the
// clients start again for the measured period. A claim that finds the queue empty makes the
// measurement invalid (reported as an error), since an empty queue is faster than a full one.
import { performance } from 'node:perf_hooks';
import pg from 'pg';

export const QUEUE_TABLE = 'bench_queue';

export interface QueueBaselineOptions {
  clients: number;
  warmupSec: number;
  durationSec: number;
  /** Rows in the queue before the warm-up. */
  initialRows: number;
  log(message: string): void;
}

export interface QueueBaselineResult {
  rowsPerSec: number;
  rows: number;
  seconds: number;
  clients: number;
}

const CLAIM = `delete from ${QUEUE_TABLE} where id = (select id from ${QUEUE_TABLE} order by id limit 1 for update skip locked) returning *`;

async function fill(client: pg.Client, rows: number): Promise<void> {
  // A payload about the size of a small event, so RETURNING * moves some bytes.
  await client.query(
    `insert into ${QUEUE_TABLE} (payload)
       select jsonb_build_object('n', g, 'event', 'base.organizations.created', 'recordId', gen_random_uuid()) from generate_series(1, $1::int) g`,
    [rows],
  );
}

interface Round {
  rows: number;
  seconds: number;
  /** Claims that found nothing to claim. */
  empty: number;
}

/** Every client claims rows back to back until `seconds` have passed; returns the rows claimed. */
async function round(clients: pg.Client[], seconds: number): Promise<Round> {
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let rows = 0;
  let empty = 0;
  await Promise.all(
    clients.map(async (client) => {
      while (performance.now() < deadline) {
        const result = await client.query(CLAIM);
        if (result.rowCount) rows += result.rowCount;
        else empty++;
      }
    }),
  );
  // Until the last client's last claim returned: every claim counted lies inside this span.
  return { rows, seconds: (performance.now() - start) / 1000, empty };
}

export async function runQueueBaseline(databaseUrl: string, options: QueueBaselineOptions): Promise<QueueBaselineResult> {
  const admin = new pg.Client({ connectionString: databaseUrl });
  await admin.connect();
  const clients: pg.Client[] = [];
  try {
    await admin.query(`drop table if exists ${QUEUE_TABLE}`);
    await admin.query(`create table ${QUEUE_TABLE} (id bigserial primary key, payload jsonb not null)`);
    await fill(admin, options.initialRows);
    await admin.query(`vacuum analyze ${QUEUE_TABLE}`);

    for (let i = 0; i < options.clients; i++) {
      const client = new pg.Client({ connectionString: databaseUrl });
      clients.push(client);
      await client.connect();
    }

    options.log(`baseline: warm-up ${options.warmupSec} s, ${options.clients} clients`);
    const warm = await round(clients, options.warmupSec);
    if (warm.empty > 0) throw new Error(`the queue ran dry during the warm-up (${options.initialRows} rows); raise the initial fill`);

    const warmRate = warm.rows / warm.seconds;
    const needed = Math.ceil(warmRate * options.durationSec * 2) + 10_000;
    const { rows } = await admin.query<{ left: string }>(`select count(*) as left from ${QUEUE_TABLE}`);
    const left = Number(rows[0]?.left ?? 0);
    if (left < needed) {
      options.log(`baseline: topping the queue up by ${needed - left} rows (warm-up ran ${warmRate.toFixed(0)} rows/s)`);
      await fill(admin, needed - left);
    }

    options.log(`baseline: measuring ${options.durationSec} s`);
    const measured = await round(clients, options.durationSec);
    if (measured.empty > 0) throw new Error(`the queue ran dry while measuring (${measured.empty} empty claims): the figure would be too high`);
    return { rowsPerSec: measured.rows / measured.seconds, rows: measured.rows, seconds: measured.seconds, clients: options.clients };
  } finally {
    await Promise.allSettled(clients.map((client) => client.end()));
    try {
      await admin.query(`drop table if exists ${QUEUE_TABLE}`);
    } finally {
      await admin.end();
    }
  }
}
