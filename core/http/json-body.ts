import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { KubikiError, fieldError } from '../errors.ts';

/**
 * Reads a JSON request body: 415 for another media type, 413 past the limit (checked while reading,
 * not after buffering everything), 400 naming line and column of malformed JSON.
 * An empty body reads as `undefined`.
 */
export async function readJsonBody(ctx: Context, limitBytes: number): Promise<unknown> {
  const length = ctx.request.length;
  const chunked = ctx.get('transfer-encoding') !== '';
  if (!length && !chunked) return undefined;
  const type = ctx.request.type;
  if (type && type !== 'application/json' && !type.endsWith('+json')) {
    throw new KubikiError('unsupported-media-type', `send the body as application/json, not ${type}`);
  }
  let text: string;
  try {
    text = await getRawBody(ctx.req, { length, limit: limitBytes, encoding: 'utf8' });
  } catch (error) {
    // The rest of the body stays unread on the socket; a client reusing the connection would hang.
    ctx.set('Connection', 'close');
    const e = error as { type?: string; status?: number };
    if (e.type === 'entity.too.large') throw new KubikiError('payload-too-large', `the body is larger than ${limitBytes} bytes`, { extra: { limit: limitBytes } });
    if (e.status && e.status < 500) throw new KubikiError('malformed-json', `the body could not be read: ${(error as Error).message}`);
    throw error;
  }
  // Kept for routes that check a signature over the exact bytes (webhooks).
  ctx.state.rawBody = text;
  if (text.trim() === '') return undefined;
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    const at = /position (\d+)/.exec(message);
    let where = '';
    if (at) {
      const before = text.slice(0, Number(at[1]));
      const line = before.split('\n').length;
      where = ` at line ${line}, column ${Number(at[1]) - before.lastIndexOf('\n')}`;
    }
    throw new KubikiError('malformed-json', `the body is not valid JSON${where}: ${message}`, { issues: [{ field: '', rule: 'json', message }] });
  }
  const bad = unstorableTextAt(body);
  if (bad) {
    const field = bad.path || 'body';
    throw bad.rule === 'nul-character'
      ? fieldError('validation-failed', bad.path, bad.rule, `${field} contains a NUL character (\\u0000), which cannot be stored`)
      : fieldError('validation-failed', bad.path, bad.rule, `${field} contains a lone UTF-16 surrogate (e.g. \\ud800), which is not valid Unicode`);
  }
  return body;
}

const problemIn = (text: string): 'nul-character' | 'unicode' | undefined =>
  text.includes('\u0000') ? 'nul-character' : !text.isWellFormed() ? 'unicode' : undefined;

/**
 * The first string (or key) PostgreSQL text and jsonb would reject: one holding U+0000 or a lone
 * surrogate. Iterative: a body may nest thousands of levels deep.
 */
function unstorableTextAt(body: unknown): { path: string; rule: 'nul-character' | 'unicode' } | undefined {
  const stack: [unknown, string][] = [[body, '']];
  while (stack.length) {
    const [value, path] = stack.pop()!;
    if (typeof value === 'string') {
      const rule = problemIn(value);
      if (rule) return { path, rule };
    } else if (typeof value === 'object' && value !== null) {
      const entries = Object.entries(value);
      for (let i = entries.length - 1; i >= 0; i--) {
        const [key, child] = entries[i];
        const at = path ? `${path}.${key}` : key;
        const rule = problemIn(key);
        if (rule) return { path: at, rule };
        stack.push([child, at]);
      }
    }
  }
  return undefined;
}
