import type { Context, Next } from 'koa';
import type { Database } from '../db/database.ts';
import { KubikiError, isKubikiError } from '../errors.ts';
import { stateOf } from '../http/request-context.ts';
import type { IntegrationClock } from './rate-limit.ts';

export interface LoginThrottleSettings {
  loginMaxFailuresPerUser: number;
  loginMaxFailuresPerAddress: number;
  loginWindowSeconds: number;
}

type Row = { key: string; failures: number; window_start: string };

/**
 * Failed logins counted per username and per client address in a fixed window, in the database
 * (so every process sees the same counts). Once either reaches its limit, logins for that user or
 * from that address are refused with 429 login-throttled until the window ends — a right
 * password too, so guessing cannot go on. A successful login clears its user's count. 0 turns a
 * limit off. The address is Koa's `ctx.ip` (X-Forwarded-For is trusted: run behind a proxy that sets it).
 */
export class LoginThrottle {
  clock: IntegrationClock = { now: () => new Date() };

  constructor(private readonly db: Database, private readonly settings: LoginThrottleSettings) {}

  private keys(username: string | undefined, address: string | undefined): { key: string; max: number }[] {
    const out: { key: string; max: number }[] = [];
    if (username && this.settings.loginMaxFailuresPerUser > 0) out.push({ key: `user:${username.slice(0, 100)}`, max: this.settings.loginMaxFailuresPerUser });
    if (address && this.settings.loginMaxFailuresPerAddress > 0) out.push({ key: `addr:${address.slice(0, 100)}`, max: this.settings.loginMaxFailuresPerAddress });
    return out;
  }

  /** Seconds until a login may be tried again, or undefined when it may be tried now. */
  async wait(username: string | undefined, address: string | undefined): Promise<{ seconds: number; by: 'user' | 'address' } | undefined> {
    const keys = this.keys(username, address);
    if (keys.length === 0) return undefined;
    const rows: Row[] = await this.db.table('kubiki_login_failures').whereIn('key', keys.map((k) => k.key));
    const now = this.clock.now().getTime();
    let worst: { seconds: number; by: 'user' | 'address' } | undefined;
    for (const row of rows) {
      const max = keys.find((k) => k.key === row.key)!.max;
      const ends = Date.parse(row.window_start) + this.settings.loginWindowSeconds * 1000;
      if (row.failures >= max && ends > now) {
        const seconds = Math.max(1, Math.ceil((ends - now) / 1000));
        if (!worst || seconds > worst.seconds) worst = { seconds, by: row.key.startsWith('user:') ? 'user' : 'address' };
      }
    }
    return worst;
  }

  async failed(username: string | undefined, address: string | undefined): Promise<void> {
    const keys = this.keys(username, address);
    if (keys.length === 0) return;
    const now = this.clock.now();
    const expired = new Date(now.getTime() - this.settings.loginWindowSeconds * 1000).toISOString();
    const table = this.db.ref('kubiki_login_failures');
    for (const { key } of keys) {
      await this.db.knex.raw(
        `insert into ? as f (key, failures, window_start) values (?, 1, ?::timestamptz)
         on conflict (key) do update set
           failures = case when f.window_start <= ?::timestamptz then 1 else f.failures + 1 end,
           window_start = case when f.window_start <= ?::timestamptz then excluded.window_start else f.window_start end`,
        [table, key, now.toISOString(), expired, expired],
      );
    }
    // Counts of windows long over are history.
    await this.db.table('kubiki_login_failures').where('window_start', '<', expired).delete();
  }

  async succeeded(username: string): Promise<void> {
    await this.db.table('kubiki_login_failures').where({ key: `user:${username.slice(0, 100)}` }).delete();
  }
}

/** Around POST /api/auth/login: refuses while throttled, counts invalid-credentials, clears on success. */
export function throttleLogins(throttle: LoginThrottle) {
  return async (ctx: Context, next: Next) => {
    if (ctx.method !== 'POST' || ctx.path !== '/api/auth/login') return next();
    const body = stateOf(ctx).body as { username?: unknown } | undefined;
    const username = typeof body?.username === 'string' ? body.username : undefined;
    const address = ctx.ip || undefined;
    const wait = await throttle.wait(username, address);
    if (wait) {
      ctx.set('Retry-After', String(wait.seconds));
      throw new KubikiError('login-throttled', `too many failed logins ${wait.by === 'user' ? 'for this user' : 'from this address'}; try again in ${wait.seconds} s`, { extra: { retryAfter: wait.seconds } });
    }
    try {
      await next();
    } catch (error) {
      if (isKubikiError(error) && error.code === 'invalid-credentials') await throttle.failed(username, address);
      throw error;
    }
    if (ctx.status === 200 && username) await throttle.succeeded(username);
  };
}
