import type { Context, Next } from 'koa';
import { hashToken } from '../auth/secrets.ts';
import { KubikiError } from '../errors.ts';
import { stateOf } from '../http/request-context.ts';

/** The time rate limits and login throttling read; tests swap in one they move by hand. */
export interface IntegrationClock {
  now(): Date;
}

/** Buckets kept before full (idle) ones are forgotten. */
const SWEEP_AT = 10_000;

/**
 * Requests per token: a token bucket of `requests` that refills over `seconds`, so a client may
 * burst up to the whole allowance and then goes at its rate. Per process (several processes
 * behind one address allow each their own). Only authenticated tokens have buckets, so unknown
 * tokens cannot fill memory.
 */
export class TokenRateLimiter {
  clock: IntegrationClock = { now: () => new Date() };
  private readonly buckets = new Map<string, { tokens: number; at: number }>();

  constructor(readonly limit: { requests: number; seconds: number } | undefined) {}

  /** Takes one request from `key`'s bucket: undefined when allowed, else the seconds to wait. */
  take(key: string): number | undefined {
    if (!this.limit) return undefined;
    const { requests, seconds } = this.limit;
    const rate = requests / (seconds * 1000);
    const now = this.clock.now().getTime();
    const bucket = this.buckets.get(key) ?? { tokens: requests, at: now };
    bucket.tokens = Math.min(requests, bucket.tokens + Math.max(0, now - bucket.at) * rate);
    bucket.at = now;
    if (!this.buckets.has(key)) {
      if (this.buckets.size >= SWEEP_AT) this.sweep(now, rate, requests);
      this.buckets.set(key, bucket);
    }
    if (bucket.tokens >= 1) {
      bucket.tokens -= 1;
      return undefined;
    }
    return Math.max(1, Math.ceil((1 - bucket.tokens) / rate / 1000));
  }

  private sweep(now: number, rate: number, requests: number): void {
    for (const [key, b] of this.buckets) if (b.tokens + (now - b.at) * rate >= requests) this.buckets.delete(key);
  }
}

/** 429 rate-limited with Retry-After once a token used up its allowance (after authentication). */
export function rateLimitPerToken(limiter: TokenRateLimiter) {
  return async (ctx: Context, next: Next) => {
    if (limiter.limit && stateOf(ctx).principal) {
      const token = ctx.get('authorization').replace(/^Bearer\s+/i, '');
      const wait = limiter.take(hashToken(token));
      if (wait !== undefined) {
        ctx.set('Retry-After', String(wait));
        throw new KubikiError('rate-limited', `this token made more than ${limiter.limit.requests} requests in ${limiter.limit.seconds} s (KUBIKI_RATE_LIMIT); try again in ${wait} s`, { extra: { retryAfter: wait } });
      }
    }
    await next();
  };
}
