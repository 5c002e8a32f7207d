import { randomUUID } from 'node:crypto';
import type { Context, Next } from 'koa';
import type { Logger } from 'pino';
import { KubikiError, isKubikiError, fieldError } from '../errors.ts';
import type { AuthService } from '../auth/auth-service.ts';
import { readJsonBody } from './json-body.ts';
import { stateOf } from './request-context.ts';

const REQUEST_ID = /^[A-Za-z0-9._:-]{1,100}$/;

/** Request id, structured access log, and every error rendered as problem+json. */
export function requestLifecycle(logger: Logger) {
  return async (ctx: Context, next: Next) => {
    const incoming = ctx.get('x-request-id');
    const requestId = REQUEST_ID.test(incoming) ? incoming : randomUUID();
    const log = logger.child({ requestId });
    ctx.state.requestId = requestId;
    ctx.state.log = log;
    ctx.set('X-Request-Id', requestId);
    const started = process.hrtime.bigint();
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) throw new KubikiError('route-not-found', `no route ${ctx.method} ${ctx.path}`);
    } catch (error) {
      const known = isKubikiError(error) ? error : undefined;
      if (!known) log.error({ err: error, method: ctx.method, path: ctx.path }, 'request failed');
      const problem = known
        ? known.toProblem(ctx.path)
        : { type: '/problems/internal', title: 'Internal error', status: 500, detail: `unexpected error; quote request id ${requestId} when reporting it`, code: 'internal', requestId };
      ctx.status = known?.status ?? 500;
      ctx.body = problem;
      ctx.type = 'application/problem+json';
    }
    if (log.isLevelEnabled('info')) {
      log.info({ method: ctx.method, path: ctx.path, status: ctx.status, ms: Number(process.hrtime.bigint() - started) / 1e6, user: stateOf(ctx).principal?.username }, 'request');
    }
  };
}

export function jsonBody(limitBytes: number) {
  return async (ctx: Context, next: Next) => {
    if (ctx.method === 'POST' || ctx.method === 'PUT' || ctx.method === 'PATCH') {
      ctx.state.body = await readJsonBody(ctx, limitBytes);
    }
    await next();
  };
}

/**
 * PostgreSQL text cannot hold U+0000, so a NUL in the path or query string could only end in a
 * database error (a 500). Refused up front, naming the parameter.
 */
export function rejectNulCharacters() {
  return async (ctx: Context, next: Next) => {
    if (/%00/.test(ctx.url)) {
      const param = Object.entries(ctx.query).find(([key, value]) => key.includes('\u0000') || [value ?? ''].flat().some((v) => v.includes('\u0000')))?.[0];
      const field = param === undefined ? 'path' : param.replaceAll('\u0000', '');
      throw fieldError('bad-query', field, 'nul-character', `${param === undefined ? 'the path' : `query parameter ${field}`} contains a NUL character (%00)`);
    }
    await next();
  };
}

const PUBLIC = new Set(['GET /api/health', 'POST /api/auth/login']);
// Webhooks authenticate by their signature (checked by the route), not by a bearer token.
const WEBHOOK = /^\/api\/workflows\/[^/]+\/webhook$/;

/** Resolves the bearer token; every route but health and login needs one. */
export function authenticate(auth: AuthService) {
  return async (ctx: Context, next: Next) => {
    const header = ctx.get('authorization');
    if (header) {
      const m = /^Bearer\s+(\S+)$/i.exec(header);
      if (!m) throw new KubikiError('unauthenticated', 'the Authorization header must be "Bearer <token>"');
      const principal = await auth.authenticate(m[1]);
      if (!principal) throw new KubikiError('unauthenticated', 'the token is unknown, expired or revoked');
      ctx.state.principal = principal;
    } else if (!PUBLIC.has(`${ctx.method} ${ctx.path}`) && !(ctx.method === 'POST' && WEBHOOK.test(ctx.path))) {
      ctx.set('WWW-Authenticate', 'Bearer');
      throw new KubikiError('unauthenticated', 'send Authorization: Bearer <token> (log in with POST /api/auth/login, or use an API token)');
    }
    await next();
  };
}
