// Security headers on every answer, cross-origin access off unless configured, and credentials
// (passwords, tokens, webhook secrets) never written to the log or the audit trail.
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../core/logger.ts';
import { startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

const logLines: string[] = [];
const capture = new Writable({ write(chunk, _enc, done) { logLines.push(String(chunk)); done(); } });

let t: TestKubiki;
let withCors: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ enable: ['crm'], logger: createLogger('trace', capture), config: { workflowHttpAllow: ['hooks.example.test'] } });
  withCors = await startKubiki({ config: { corsOrigins: ['https://app.example.test'] } });
}, 120_000);
afterAll(async () => { await t?.close(); await withCors?.close(); });

const expectSecurityHeaders = (res: ApiResponse) => {
  expect(res.headers.get('x-content-type-options')).toBe('nosniff');
  expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
  expect(res.headers.get('referrer-policy')).toBe('no-referrer');
  expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
  const csp = res.headers.get('content-security-policy') ?? '';
  expect(csp).toContain("default-src 'none'");
  expect(csp).toContain("frame-ancestors 'none'");
  expect(csp).not.toContain('script-src');
  expect(res.headers.get('x-powered-by')).toBeNull();
};

describe('security headers', () => {
  it('are on a JSON answer, a problem answer, an unauthenticated one and an unknown route', async () => {
    expectSecurityHeaders(await t.api('GET', '/api/auth/me'));
    expectSecurityHeaders(await t.api('POST', '/api/crm/leads', { nonsense: 1 }));
    expectSecurityHeaders(await t.api('GET', '/api/crm/leads', undefined, { token: null }));
    expectSecurityHeaders(await t.api('GET', '/api/no/such/route'));
    expectSecurityHeaders(await t.api('GET', '/api/health'));
  });
});

describe('cross-origin access', () => {
  it('is off by default: no CORS headers for any origin, a preflight is not granted', async () => {
    const res = await t.api('GET', '/api/auth/me', undefined, { headers: { origin: 'https://evil.example.test' } });
    expect(res.status).toBe(200);
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
    const preflight = await fetch(`${t.url}/api/crm/leads`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'POST' } });
    expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    expect(preflight.headers.get('access-control-allow-methods')).toBeNull();
  });

  it('grants exactly the configured origins (KUBIKI_CORS_ORIGINS), with the bearer header allowed', async () => {
    const preflight = await fetch(`${withCors.url}/api/users`, { method: 'OPTIONS', headers: { origin: 'https://app.example.test', 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
    expect(preflight.headers.get('access-control-allow-headers')).toContain('authorization');
    const allowed = await withCors.api('GET', '/api/auth/me', undefined, { headers: { origin: 'https://app.example.test' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.test');
    const other = await withCors.api('GET', '/api/auth/me', undefined, { headers: { origin: 'https://evil.example.test' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
    const otherPreflight = await fetch(`${withCors.url}/api/users`, { method: 'OPTIONS', headers: { origin: 'https://evil.example.test', 'access-control-request-method': 'POST' } });
    expect(otherPreflight.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('credentials never logged', () => {
  it('keeps passwords, session and API tokens and webhook secrets out of the log (at trace level) and the audit trail', async () => {
    const password = 'Correct-Horse-9f3a1c7e';
    const user = await t.api('POST', '/api/users', { username: 'log-probe', password, roles: [] });
    expect(user.status, JSON.stringify(user.body)).toBe(201);
    const login = await t.api('POST', '/api/auth/login', { username: 'log-probe', password }, { token: null });
    expect(login.status).toBe(200);
    const session: string = login.body.token;
    expect((await t.api('POST', '/api/auth/login', { username: 'log-probe', password: `${password}-wrong` }, { token: null })).status).toBe(401);
    expect((await t.api('GET', '/api/auth/me', undefined, { token: session })).status).toBe(200);
    const issued = await t.api('POST', `/api/users/${user.body.id}/tokens`, { name: 'probe' });
    expect(issued.status).toBe(201);
    const apiToken: string = issued.body.token;
    expect((await t.api('GET', '/api/auth/me', undefined, { token: apiToken })).status).toBe(200);
    // A token in a query string (where a careless client puts it) and a wrong one in the header.
    await t.api('GET', `/api/crm/leads?access_token=${apiToken}`, undefined, { token: apiToken });
    expect((await t.api('GET', '/api/auth/me', undefined, { token: `${apiToken}x` })).status).toBe(401);
    const hook = await t.api('POST', '/api/webhooks', { url: 'https://hooks.example.test/in', eventTypes: ['crm.*'] });
    expect(hook.status, JSON.stringify(hook.body)).toBe(201);
    const secret: string = hook.body.secret;
    const rotated = await t.api('POST', `/api/webhooks/${hook.body.id}/rotate-secret`, {});
    const secrets = [password, session, apiToken, secret, t.adminToken, ...(rotated.status < 300 && rotated.body.secret ? [rotated.body.secret as string] : [])];
    expect(secret).toMatch(/^whsec_/);

    const log = logLines.join('');
    expect(log.length).toBeGreaterThan(1000); // the log did record these requests
    expect(log).toContain('log-probe');
    for (const s of secrets) expect(log.includes(s), `a credential (${s.slice(0, 6)}…) is in the log`).toBe(false);
    const audit = JSON.stringify(await t.k.db.table('kubiki_audit').select('changes', 'entity', 'action'));
    for (const s of secrets) expect(audit.includes(s), `a credential (${s.slice(0, 6)}…) is in the audit trail`).toBe(false);
    // The secret part of a token (after its prefix) is not stored either, only its hash.
    const stored = JSON.stringify(await t.k.db.table('kubiki_tokens').select());
    expect(stored.includes(apiToken)).toBe(false);
  });
});
