import knexFactory, { type Knex } from 'knex';
import { PGlite, types } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import pg from 'pg';
import fs from 'node:fs';

export type { Knex };
/** A knex handle or an open transaction: repositories accept either. */
export type Executor = Knex | Knex.Transaction;

// Dates stay `YYYY-MM-DD` strings and numerics stay decimal strings: never JS Dates in local time
// nor floats. int8 (counts, audit ids) fits a JS number for any realistic table.
const keepText = (value: string) => value;
const pgTypes = {
  getTypeParser(oid: number, format?: string) {
    if (oid === 1082 || oid === 1700) return keepText;
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
  constructor(
    readonly knex: Knex,
    readonly schema: string,
    readonly kind: 'postgres' | 'pglite',
    private readonly owned: boolean,
  ) {}

  /** A query builder on `schema.table`, inside `trx` when given. */
  table(name: string, trx?: Executor): Knex.QueryBuilder {
    return (trx ?? this.knex).withSchema(this.schema).table(name);
  }

  /** `"schema"."table"` for the rare raw statement; identifiers still go through knex bindings. */
  ref(name: string): Knex.Raw {
    return this.knex.raw('??.??', [this.schema, name]);
  }

  async ensureSchema(): Promise<void> {
    await this.knex.raw('create schema if not exists ??', [this.schema]);
  }

  async close(): Promise<void> {
    if (this.owned) await this.knex.destroy();
  }
}

export function connectPostgres(url: string, poolMax = 10): Knex {
  return knexFactory({
    client: 'pg',
    connection: { connectionString: url, types: pgTypes },
    pool: { min: 0, max: poolMax },
  });
}

export function openPglite(dataDir: string): PGlite {
  const inMemory = dataDir.startsWith('memory://');
  if (!inMemory) fs.mkdirSync(dataDir, { recursive: true });
  return new PGlite({
    ...(inMemory ? {} : { dataDir }),
    parsers: { [types.DATE]: keepText, [types.NUMERIC]: keepText, [types.INT8]: (v: string) => Number(v) },
  });
}

export function connectPglite(instance: PGlite): Knex {
  // knex-pglite ships no types for handing over an instance; its contract is a function returning { pglite }.
  const config = { client: ClientPgLite, dialect: 'postgres', connection: () => ({ pglite: instance }) };
  return knexFactory(config as unknown as Knex.Config);
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
    db = new Database(options.knex, options.dbSchema, kind, false);
  } else if (options.databaseUrl) {
    db = new Database(connectPostgres(options.databaseUrl), options.dbSchema, 'postgres', true);
  } else {
    db = new Database(connectPglite(openPglite(options.dataDir)), options.dbSchema, 'pglite', true);
  }
  await db.ensureSchema();
  return db;
}
