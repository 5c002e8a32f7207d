import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { configFromEnv, repoRoot, type KubikiConfig } from '../../core/config.ts';
import { Kubiki } from '../../core/kernel.ts';
import type { Clock } from '../../core/workflows/engine/clock.ts';
import { sharedKnex } from './shared-database.ts';

export const FIXTURE_PLUGINS = path.join(repoRoot, 'tests/fixtures/plugins');
export const SHIPPED_PLUGINS = path.join(repoRoot, 'plugins');

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface TestKubiki {
  k: Kubiki;
  url: string;
  schema: string;
  adminToken: string;
  /** Calls the API as admin (or with `token`); `body` is JSON-encoded unless it is a string. */
  api<T = any>(method: string, path: string, body?: unknown, options?: { token?: string | null; headers?: Record<string, string> }): Promise<ApiResponse<T>>;
  /** Rows of a table in this instance's schema. */
  count(table: string, where?: Record<string, unknown>): Promise<number>;
  /** Creates a user with a role holding `permissions`; returns their API token and id. */
  userWith(permissions: string[], name?: string): Promise<{ token: string; id: string }>;
  /** Stops the instance and drops its schema, unless `keepSchema` (another instance will reopen it). */
  close(options?: { keepSchema?: boolean }): Promise<void>;
}

export const newSchemaName = (): string => `t_${randomBytes(6).toString('hex')}`;

/**
 * A real Kubiki on the worker's shared database, in a fresh schema, listening on a free port.
 * Background timers are off: tests drive event delivery with `k.dispatcher.drainAll()`.
 */
export async function startKubiki(options: {
  pluginDirs?: string[]; enable?: string[]; schema?: string; config?: Partial<KubikiConfig>; env?: NodeJS.ProcessEnv;
  /** The admin token to call the API with; pass the first instance's when reopening its `schema` (the admin exists already). */
  adminToken?: string;
  /** The workflow engine's clock: a ManualClock lets a test move time instead of sleeping. */
  clock?: Clock;
  /** Where the instance logs (default: silent, or TEST_LOG_LEVEL to stdout). */
  logger?: Logger;
} = {}): Promise<TestKubiki> {
  const schema = options.schema ?? newSchemaName();
  const adminToken = options.adminToken ?? `kbk_test_${randomBytes(16).toString('hex')}`;
  const config = configFromEnv({}, {
    dbSchema: schema,
    pluginDirs: options.pluginDirs ?? [SHIPPED_PLUGINS],
    enablePlugins: options.enable ?? [],
    adminToken,
    logLevel: 'silent',
    // Every declared route's answer is checked against its schema: a mismatch fails the test (a 500).
    checkResponses: true,
    ...options.config,
  });
  const knex = sharedKnex();
  const k = await Kubiki.create({ config, knex, background: false, logger: options.logger ?? pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }), env: options.env ?? {}, clock: options.clock });
  const server = await k.listen(0, '127.0.0.1');
  const address = server.address();
  const url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const t: TestKubiki = {
    k, url, schema, adminToken,
    async api(method, p, body, opts = {}) {
      const token = opts.token === undefined ? adminToken : opts.token;
      const headers: Record<string, string> = { ...(token ? { authorization: `Bearer ${token}` } : {}), ...opts.headers };
      if (body !== undefined && !headers['content-type']) headers['content-type'] = 'application/json';
      const res = await fetch(url + p, { method, headers, body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body) });
      const text = await res.text();
      let parsed: unknown = text;
      try { parsed = text ? JSON.parse(text) : undefined; } catch { /* CSV and other bodies stay text */ }
      return { status: res.status, headers: res.headers, body: parsed as any };
    },
    async count(table, where = {}) {
      const [{ count }] = await k.db.table(table).where(where).count<{ count: number | string }[]>({ count: '*' });
      return Number(count);
    },
    async userWith(permissions, name = `u${randomBytes(4).toString('hex')}`) {
      const role = `r${randomBytes(4).toString('hex')}`;
      const put = await t.api('PUT', `/api/roles/${role}`, { permissions });
      if (put.status !== 200) throw new Error(`role: ${JSON.stringify(put.body)}`);
      const user = await t.api('POST', '/api/users', { username: name, roles: [role] });
      if (user.status !== 201) throw new Error(`user: ${JSON.stringify(user.body)}`);
      const token = await t.api('POST', `/api/users/${user.body.id}/tokens`, { name: 'test' });
      return { token: token.body.token as string, id: user.body.id as string };
    },
    async close(closeOptions = {}) {
      await k.close();
      if (!closeOptions.keepSchema) await knex.raw('drop schema if exists ?? cascade', [schema]);
    },
  };
  return t;
}
