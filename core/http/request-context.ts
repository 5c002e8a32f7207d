import type { Context } from 'koa';
import type { Logger } from 'pino';
import type { Principal } from '../auth/principal.ts';
import { KubikiError } from '../errors.ts';

/** What the middleware chain attaches to every request. */
export interface KubikiState {
  requestId: string;
  log: Logger;
  principal?: Principal;
  body?: unknown;
  /** The body as received (UTF-8 text), when there was one. */
  rawBody?: string;
}

export const stateOf = (ctx: Context): KubikiState => ctx.state as KubikiState;

/** The authenticated principal; routes run after the auth middleware, so absence is a 401. */
export function principalOf(ctx: Context): Principal {
  const principal = stateOf(ctx).principal;
  if (!principal) throw new KubikiError('unauthenticated', 'send Authorization: Bearer <token>');
  return principal;
}
