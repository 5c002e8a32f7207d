import { KubikiError } from '../../errors.ts';

const MAX_RESPONSE_BYTES = 1024 * 1024;

/** `api.example.com` matches itself; `*.example.com` matches its subdomains (not example.com). */
export function hostAllowed(host: string, allow: string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, '');
  return allow.some((pattern) => (pattern.startsWith('*.') ? h.endsWith(pattern.slice(1)) && h.length > pattern.length - 1 : h === pattern));
}

export interface HttpPlan {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: unknown;
  timeoutMs: number;
}

export interface HttpResult {
  status: number;
  headers: Record<string, string>;
  body: unknown;
}

/** Raised for answers worth trying again (timeouts, 5xx, 429, 408); other failures are final. */
export class RetryableHttpError extends Error {}

/**
 * The workflow HTTP step: only to allow-listed hosts over http(s), a hard timeout, redirects not
 * followed (a redirect could leave the allow-list), the response capped at 1 MiB, and an
 * Idempotency-Key header so a receiver can tell a retry from a new request.
 */
export async function workflowHttpRequest(plan: HttpPlan, allow: string[], idempotencyKey: string): Promise<HttpResult> {
  let url: URL;
  try {
    url = new URL(plan.url);
  } catch {
    throw new KubikiError('validation-failed', `the HTTP step's url "${plan.url}" is not a URL`, { issues: [{ field: 'url', rule: 'format', message: 'not a URL' }] });
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new KubikiError('validation-failed', `the HTTP step may call http or https URLs, not ${url.protocol}`, { issues: [{ field: 'url', rule: 'protocol', message: 'http or https only' }] });
  }
  if (url.username || url.password) throw new KubikiError('validation-failed', 'put credentials in headers, not in the URL', { issues: [{ field: 'url', rule: 'credentials', message: 'no credentials in URLs' }] });
  if (!hostAllowed(url.hostname, allow)) {
    throw new KubikiError('http-not-allowed', `${url.hostname} is not on the workflow HTTP allow-list (KUBIKI_WORKFLOW_HTTP_ALLOW${allow.length ? `: ${allow.join(', ')}` : ' is empty'})`, { extra: { host: url.hostname } });
  }
  const headers: Record<string, string> = { 'idempotency-key': idempotencyKey, 'user-agent': 'Kubiki-Workflow/1', ...plan.headers };
  let body: string | undefined;
  if (plan.body !== undefined && plan.method !== 'GET') {
    body = typeof plan.body === 'string' ? plan.body : JSON.stringify(plan.body);
    if (typeof plan.body !== 'string' && !Object.keys(headers).some((h) => h.toLowerCase() === 'content-type')) headers['content-type'] = 'application/json';
  }
  let response: Response;
  try {
    response = await fetch(url, { method: plan.method, headers, body, redirect: 'manual', signal: AbortSignal.timeout(plan.timeoutMs) });
  } catch (error) {
    const e = error as Error;
    throw new RetryableHttpError(e.name === 'TimeoutError' ? `no answer from ${url.host} within ${plan.timeoutMs} ms` : `request to ${url.host} failed: ${(e.cause as Error | undefined)?.message ?? e.message}`);
  }
  const reader = response.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > MAX_RESPONSE_BYTES) {
        await reader.cancel();
        throw new KubikiError('validation-failed', `the response from ${url.host} is larger than 1 MiB`, { issues: [{ field: 'body', rule: 'maxBytes', message: 'response over 1 MiB' }] });
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let parsed: unknown = text;
  if ((response.headers.get('content-type') ?? '').includes('json') && text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = text;
    }
  }
  const result: HttpResult = { status: response.status, headers: Object.fromEntries(response.headers), body: parsed };
  if (response.status >= 500 || response.status === 429 || response.status === 408) throw new RetryableHttpError(`${url.host} answered ${response.status}`);
  if (response.status >= 400) {
    throw new KubikiError('validation-failed', `${url.host} answered ${response.status}: ${text.slice(0, 200)}`, { issues: [{ field: 'status', rule: 'http-status', message: `HTTP ${response.status}` }], extra: { response: result } });
  }
  return result;
}
