import getRawBody from 'raw-body';
import type { Context } from 'koa';
import { KubikiError } from '../errors.ts';

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
    const e = error as { type?: string; status?: number };
    if (e.type === 'entity.too.large') throw new KubikiError('payload-too-large', `the body is larger than ${limitBytes} bytes`, { extra: { limit: limitBytes } });
    if (e.status && e.status < 500) throw new KubikiError('malformed-json', `the body could not be read: ${(error as Error).message}`);
    throw error;
  }
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text);
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
}
