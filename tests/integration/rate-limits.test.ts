// Rate limits per token (429 problem+json with Retry-After) and login throttling per user and per
// address, through REST. Time is a hand-moved clock; nothing sleeps.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { HandClock } from '../webhooks/webhook-helpers.ts';

let t: TestKubiki;
let clock: HandClock;
beforeAll(async () => {
  t = await startKubiki({ config: { rateLimit: { requests: 5, seconds: 60 }, loginMaxFailuresPerUser: 3, loginMaxFailuresPerAddress: 6, loginWindowSeconds: 600 } });
  clock = new HandClock();
  t.k.rateLimiter.clock = clock;
  t.k.loginThrottle.clock = clock;
});
afterAll(async () => t?.close());

describe('rate limit per token', () => {
  it('answers 429 rate-limited with Retry-After once a token used its allowance; other tokens go on; it refills', async () => {
    // The admin's token has a bucket too: each setup call of three requests gets a full one.
    const a = await t.userWith(['base.*.read']);
    clock.advance(60_000);
    const b = await t.userWith(['base.*.read']);
    clock.advance(60_000);
    for (let i = 0; i < 5; i++) expect((await t.api('GET', '/api/base/organizations', undefined, { token: a.token })).status).toBe(200);
    const limited = await t.api('GET', '/api/base/organizations', undefined, { token: a.token });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(limited.headers.get('retry-after')).toBe('12');
    expect(limited.body).toMatchObject({ status: 429, code: 'rate-limited', retryAfter: 12 });
    // Writes are refused the same way, before anything is done.
    const before = await t.count('base_organizations');
    expect((await t.api('POST', '/api/base/organizations', { name: 'Limited' }, { token: a.token })).status).toBe(429);
    expect(await t.count('base_organizations')).toBe(before);
    expect((await t.api('GET', '/api/base/organizations', undefined, { token: b.token })).status).toBe(200);
    clock.advance(11_000);
    expect((await t.api('GET', '/api/auth/me', undefined, { token: a.token })).status).toBe(429);
    clock.advance(1_000);
    expect((await t.api('GET', '/api/auth/me', undefined, { token: a.token })).status).toBe(200);
    // Health needs no token and has no bucket.
    for (let i = 0; i < 8; i++) expect((await t.api('GET', '/api/health', undefined, { token: null })).status).toBe(200);
  });
});

describe('login throttling', () => {
  const login = (username: string, password: string, address: string) =>
    t.api('POST', '/api/auth/login', { username, password }, { token: null, headers: { 'x-forwarded-for': address } });

  it('refuses a user\'s logins after 3 failures, the right password too, until the window ends; success clears the count', async () => {
    clock.advance(3600_000);
    const user = await t.api('POST', '/api/users', { username: 'throttled', password: 'right password 1' });
    expect(user.status).toBe(201);
    for (let i = 0; i < 3; i++) expect((await login('throttled', 'wrong password', `10.0.0.${i + 1}`)).body).toMatchObject({ status: 401, code: 'invalid-credentials' });
    const refused = await login('throttled', 'right password 1', '10.0.0.9');
    expect(refused.status).toBe(429);
    expect(refused.body).toMatchObject({ code: 'login-throttled', retryAfter: 600 });
    expect(refused.headers.get('retry-after')).toBe('600');
    expect(refused.body.detail).toMatch(/for this user/);
    expect(await t.count('kubiki_tokens', { user_id: user.body.id })).toBe(0);
    clock.advance(599_000);
    expect((await login('throttled', 'right password 1', '10.0.0.9')).body).toMatchObject({ status: 429, retryAfter: 1 });
    clock.advance(1_000);
    expect((await login('throttled', 'right password 1', '10.0.0.9')).status).toBe(200);
    // The success cleared the count: two more failures do not lock the user out.
    await login('throttled', 'wrong password', '10.0.0.9');
    await login('throttled', 'wrong password', '10.0.0.9');
    expect((await login('throttled', 'right password 1', '10.0.0.9')).status).toBe(200);
  });

  it('refuses logins from an address after 6 failures, whichever users they tried; other addresses go on', async () => {
    clock.advance(3600_000);
    await t.api('POST', '/api/users', { username: 'victim', password: 'right password 2' });
    for (let i = 0; i < 6; i++) expect((await login(`guess${i}`, 'nope nope nope', '192.0.2.7')).status).toBe(401);
    const refused = await login('victim', 'right password 2', '192.0.2.7');
    expect(refused.body).toMatchObject({ status: 429, code: 'login-throttled' });
    expect(refused.body.detail).toMatch(/from this address/);
    expect((await login('victim', 'right password 2', '192.0.2.8')).status).toBe(200);
  });
});
