import { createHash } from 'node:crypto';
import knexFactory, { type Knex } from 'knex';
import type { PGlite } from '@electric-sql/pglite';
import pg from 'pg';
import fs from 'node:fs';
import { lockDataDir } from './data-dir-lock.ts';

export type { Knex };
/** A knex handle or an open transaction: repositories accept either. */
export type Executor = Knex | Knex.Transaction;

// Dates stay `YYYY-MM-DD` strings and numerics stay decimal strings: never JS Dates in local time
// nor floats. int8 (counts, audit ids) fits a JS number for any realistic table.
const keepText = (value: string) => value;
const parseTimestampTz = pg.types.getTypeParser(1184) as (value: string) => Date;
const UTC_TIMESTAMP = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/;

/**
 * timestamptz → ISO 8601 UTC string, the API's format. Sessions run in UTC, so the common case is
 * a string rewrite; parsing into a Date and printing it again cost a fifth of a list request.
 */
export function isoTimestamp(value: string): string {
  const m = UTC_TIMESTAMP.exec(value);
  if (m) return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(3, '0').slice(0, 3)}Z`;
  return parseTimestampTz(value).toISOString();
}

const pgTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 1082 || oid === 1700) return keepText;
    if (oid === 1184) return isoTimestamp;
    if (oid === 20) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format === 'binary' ? 'binary' : 'text');
  },
};

/**
 * The database a Kubiki instance works in: a knex handle plus the PostgreSQL schema that holds its
 * tables. Every query names the schema explicitly, so several instances (tests, tenants) can share
 * one server or one embedded PGlite without touching the session's search_path.
 */
export class Database {
  /**
   * Changes whenever tables may have changed shape (plugin installs, custom fields): prepared
   * statements are named with it, so a `returning *` prepared before an ALTER TABLE is never reused.
   */
  epoch = 0;

  constructor(
    readonly knex: Knex,
    readonly schema: string,
    readonly kind: 'postgres' | 'pglite',
    private readonly owned: boolean,
    /** PostgreSQL connection string, when known: LISTEN needs a connection of its own. */
    readonly url?: string,
    /** Runs after the handle is closed (releases the PGlite folder's lock). */
    private readonly onClose: () => void = () => {},
  ) {}

  /** The channel on which writes with heard events notify every process of this schema. */
  get eventChannel(): string {
    return `kubiki_events_${this.schema}`.slice(0, 63);
  }

  /** A query builder on `schema.table`, inside `trx` when given. */
  table(name: string, trx?: Executor): Knex.QueryBuilder {
    return (trx ?? this.knex).withSchema(this.schema).table(name);
  }

  /** `"schema"."table"` for the rare raw statement; identifiers still go through knex bindings. */
  ref(name: string): Knex.Raw {
    return this.knex.raw('??.??', [this.schema, name]);
  }

  /**
   * A raw statement run as a named prepared statement on PostgreSQL, for the hot paths (entity
   * writes, workflow step completion, claims): the server parses it once per connection instead of
   * at every call — for the engine's multi-CTE statements parsing and planning cost more than
   * running them. Named after the statement's final text, so schemas never share a name.
   */
  prepared(exec: Executor, sql: string, bindings: readonly Knex.RawBinding[]): Knex.Raw {
    const raw = exec.raw(sql, bindings);
    // The name comes from the text before bindings: callers keep identifiers in the text, or bind
    // only this database's own table references, so schema + epoch + text fix the final statement.
    if (this.kind === 'postgres') raw.options({ name: `kubiki_${createHash('sha1').update(`${this.schema}|${this.epoch}|${sql}`).digest('hex').slice(0, 32)}` });
    return raw;
  }

  async ensureSchema(): Promise<void> {
    // PGlite has one session for everyone, so setting its time zone here covers every query.
    if (this.kind === 'pglite') await this.knex.raw("set time zone 'UTC'");
    await this.knex.raw('create schema if not exists ??', [this.schema]);
  }

  async close(): Promise<void> {
    try {
      if (this.owned) await this.knex.destroy();
    } finally {
      this.onClose();
    }
  }
}

export function connectPostgres(url: string, poolMax = 10): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, types: pgTypes, options: '-c TimeZone=UTC' },
    pool: { min: 0, max: poolMax },
  });
}

/** PGlite settings: where it keeps data (nothing for `memory://`) and Kubiki's type parsers. */
export function pgliteOptions(dataDir: string): { dataDir?: string; parsers: Record<number, (value: string) => unknown> } {
  const inMemory = dataDir.startsWith('memory://');
  if (!inMemory) fs.mkdirSync(dataDir, { recursive: true });
  // OIDs: date 1082, numeric 1700, int8 20, timestamptz 1184 (as for pg above).
  return { ...(inMemory ? {} : { dataDir }), parsers: { 1082: keepText, 1700: keepText, 20: (v: string) => Number(v), 1184: isoTimestamp } };
}

/** knex over one PGlite instance; knex-pglite's contract is a function returning { pglite }. */
export function knexOverPglite(client: unknown, instance: PGlite): Knex {
  return knexFactory({ client, dialect: 'postgres', connection: () => ({ pglite: instance }) } as unknown as Knex.Config);
}

// PGlite (a WASM PostgreSQL) is loaded only when used, so production starts on PostgreSQL don't pay for it.
async function connectPglite(dataDir: string): Promise<Knex> {
  const [{ PGlite }, { default: ClientPgLite }] = await Promise.all([import('@electric-sql/pglite'), import('knex-pglite')]);
  return knexOverPglite(ClientPgLite, new PGlite(pgliteOptions(dataDir)));
}

export interface DatabaseOptions {
  databaseUrl?: string;
  dataDir: string;
  dbSchema: string;
  /** An existing knex handle to share (tests: one embedded database per worker). Not closed by us. */
  knex?: Knex;
}

export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  let db: Database;
  if (options.knex) {
    const kind = options.knex.client.config.client === 'pg' ? 'postgres' : 'pglite';
    db = new Database(options.knex, options.dbSchema, kind, false, options.databaseUrl);
  } else if (options.databaseUrl) {
    db = new Database(connectPostgres(options.databaseUrl), options.dbSchema, 'postgres', true, options.databaseUrl);
  } else {
    const release = options.dataDir.startsWith('memory://') ? () => {} : lockDataDir(options.dataDir);
    try {
      db = new Database(await connectPglite(options.dataDir), options.dbSchema, 'pglite', true, undefined, release);
    } catch (error) {
      release();
      throw error;
    }
  }
  await db.ensureSchema();
  return db;
}
