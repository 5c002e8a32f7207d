import type { Knex } from 'knex';
import { PGlite } from '@electric-sql/pglite';
import ClientPgLite from 'knex-pglite';
import { connectPostgres, knexOverPglite, pgliteOptions } from '../../core/db/database.ts';

let shared: Knex | undefined;

/**
 * The worker's database handle: PostgreSQL when DATABASE_URL is set, otherwise one in-memory PGlite
 * for every test file this worker runs (vitest runs with isolate: false, so this module is shared).
 */
export function sharedKnex(): Knex {
  shared ??= process.env.DATABASE_URL
    ? connectPostgres(process.env.DATABASE_URL, 6)
    : knexOverPglite(ClientPgLite, new PGlite(pgliteOptions('memory://')));
  return shared;
}

export const onPostgres = (): boolean => Boolean(process.env.DATABASE_URL);
