import { hostAllowed } from '../workflows/engine/http-request.ts';
import { signatureHeader } from './signing.ts';

/** Bytes of a receiver's answer kept in the delivery log. */
const KEPT_RESPONSE = 1024;
/** Bytes read at most (the rest is dropped unread). */
const MAX_READ = 64 * 1024;

export interface SendRequest {
  url: string;
  messageId: string;
  payload: string;
  secrets: string[];
  timeoutMs: number;
  allow: string[];
}

export interface SendResult {
  /** The HTTP status, or null when none came (timeout, refused connection, not allowed). */
  status: number | null;
  retryAfter: string | null;
  error: string | null;
  response: string | null;
  durationMs: number;
}

async function readSome(response: Response): Promise<string | null> {
  const reader = response.body?.getReader();
  if (!reader) return null;
  const chunks: Uint8Array[] = [];
  let size = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      size += value.byteLength;
      if (size >= MAX_READ) {
        await reader.cancel();
        break;
      }
    }
  } catch {
    // A receiver that hangs up mid-answer: its status already said what it had to.
  }
  const text = Buffer.concat(chunks).toString('utf8');
  return text ? text.slice(0, KEPT_RESPONSE) : null;
}

/**
 * One signed POST: Standard Webhooks headers (webhook-id, webhook-timestamp — the wall clock, as
 * receivers check it against theirs — and webhook-signature), a hard timeout, no redirects
 * followed (a redirect could leave the allow-list), the host checked against the allow-list again
 * (it may have changed since the subscription was made).
 */
export async function sendWebhook(request: SendRequest): Promise<SendResult> {
  const started = performance.now();
  const done = (partial: Omit<SendResult, 'durationMs'>): SendResult => ({ ...partial, durationMs: performance.now() - started });
  let url: URL;
  try {
    url = new URL(request.url);
  } catch {
    return done({ status: null, retryAfter: null, error: `${request.url} is not a URL`, response: null });
  }
  if (!hostAllowed(url.hostname, request.allow)) {
    return done({ status: null, retryAfter: null, error: `${url.hostname} is not on the HTTP allow-list (KUBIKI_WORKFLOW_HTTP_ALLOW) any more`, response: null });
  }
  const timestamp = Math.floor(Date.now() / 1000);
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      redirect: 'manual',
      signal: AbortSignal.timeout(request.timeoutMs),
      headers: {
        'content-type': 'application/json',
        'user-agent': 'Kubiki-Webhooks/1',
        'webhook-id': request.messageId,
        'webhook-timestamp': String(timestamp),
        'webhook-signature': signatureHeader(request.secrets, request.messageId, timestamp, request.payload),
      },
      body: request.payload,
    });
  } catch (error) {
    const e = error as Error;
    const why = e.name === 'TimeoutError' ? `no answer within ${request.timeoutMs} ms` : `request failed: ${(e.cause as Error | undefined)?.message ?? e.message}`;
    return done({ status: null, retryAfter: null, error: why, response: null });
  }
  const body = await readSome(response);
  const ok = response.status >= 200 && response.status < 300;
  return done({
    status: response.status,
    retryAfter: response.headers.get('retry-after'),
    error: ok ? null : `${url.host} answered ${response.status}${response.status >= 300 && response.status < 400 ? ' (redirects are not followed)' : ''}`,
    response: body,
  });
}
