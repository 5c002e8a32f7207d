import cors from '@koa/cors';
import type { Middleware } from 'koa';
import helmet from 'koa-helmet';

/**
 * Response headers that keep a browser from misusing what Kubiki answers: no MIME sniffing, no
 * framing, no referrer, HTTPS remembered, and a content policy that lets a rendered document use
 * its inline print styles and embedded images but run no script and load nothing from elsewhere.
 */
export function securityHeaders(): Middleware {
  return helmet({
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'none'"],
        styleSrc: ["'unsafe-inline'"],
        imgSrc: ['data:'],
        fontSrc: ['data:'],
        frameAncestors: ["'none'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
      },
    },
    crossOriginEmbedderPolicy: false,
    referrerPolicy: { policy: 'no-referrer' },
  });
}

/**
 * Cross-origin access is off unless KUBIKI_CORS_ORIGINS names the origins a browser client runs
 * on: then those origins (exactly) may call the API with a bearer token, and no other.
 */
export function crossOrigin(origins: string[]): Middleware {
  if (origins.length === 0) return (_ctx, next) => next();
  const allowed = new Set(origins);
  return cors({
    origin: (ctx) => (allowed.has(ctx.get('origin')) ? ctx.get('origin') : ''),
    allowMethods: ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'],
    allowHeaders: ['authorization', 'content-type', 'if-match', 'x-request-id'],
    exposeHeaders: ['etag', 'location', 'retry-after', 'x-request-id'],
    maxAge: 600,
  });
}
