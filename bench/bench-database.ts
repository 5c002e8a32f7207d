// The benchmark database: a fresh PostgreSQL database per run (dropped at the
// end), or an explicit BENCH_DATABASE_URL that we use as-is and never drop.
// A fresh database makes the "cold start" measurement include migrations.
import { execFileSync } from 'node:child_process';
import { installCleanupHandlers, onCleanup } from './cleanup.ts';
import { userInfo } from 'node:os';
import pg from 'pg';

export interface BenchDatabase {
  url: string;
  /** e.g. "PostgreSQL 15.20" */
  label: string;
  /** true when the harness created it (so it is empty and gets dropped). */
  fresh: boolean;
  drop(): Promise<void>;
}

function defaultAdminUrl(): string {
  // Local trust auth: connect as the current OS user unless PGUSER says otherwise.
  const user = process.env.PGUSER ?? userInfo().username;
  return `postgres://${encodeURIComponent(user)}@127.0.0.1:5432/postgres`;
}

async function serverVersion(url: string): Promise<string> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const result = await client.query<{ server_version: string }>('show server_version');
    const version = result.rows[0]?.server_version ?? '?';
    return `PostgreSQL ${version.split(' ')[0]}`;
  } finally {
    await client.end();
  }
}

export async function openBenchDatabase(): Promise<BenchDatabase> {
  const explicit = process.env.BENCH_DATABASE_URL;
  if (explicit) {
    return { url: explicit, label: await serverVersion(explicit), fresh: false, drop: async () => {} };
  }

  // BENCH_ADMIN_URL: any database we may run CREATE/DROP DATABASE from.
  const adminUrl = process.env.BENCH_ADMIN_URL ?? defaultAdminUrl();
  const name = `kubiki_bench_${process.pid}`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`drop database if exists ${name} with (force)`);
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;

  let dropped = false;
  return {
    url: url.toString(),
    label: await serverVersion(url.toString()),
    fresh: true,
    async drop() {
      if (dropped) return;
      dropped = true;
      const client = new pg.Client({ connectionString: adminUrl });
      await client.connect();
      try {
        // FORCE: a crashed server child may still hold connections.
        await client.query(`drop database if exists ${name} with (force)`);
      } finally {
        await client.end();
      }
    },
  };
}

/**
 * The start of every benchmark that runs Kubiki as `npm start` does: cleanup handlers, the esbuild
 * bundle built, and a fresh database dropped at the end.
 */
export async function prepareServerBench(repoRoot: string, log: (message: string) => void): Promise<BenchDatabase> {
  installCleanupHandlers();
  log('building dist/ (npm run build), as npm start does');
  execFileSync('npm', ['run', 'build', '--silent'], { cwd: repoRoot, stdio: 'inherit' });
  const database = await openBenchDatabase();
  onCleanup(() => database.drop());
  log(`database ${database.fresh ? 'created' : 'given'}: ${new URL(database.url).pathname.slice(1)}`);
  return database;
}
