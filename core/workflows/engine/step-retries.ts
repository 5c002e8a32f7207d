import { isKubikiError } from '../../errors.ts';
import type { Step } from '../workflow-definition.ts';
import { durationMs } from './durations.ts';
import { RetryableHttpError } from './http-request.ts';

// When a failed step is tried again. Steps without side effects fail the same way however often
// they run: no retries for them.
const DETERMINISTIC = new Set(['condition', 'switch', 'set', 'join', 'end', 'wait', 'approval', 'parallel', 'subWorkflow']);
const DEFAULT_RETRY = { max: 5, backoff: 'PT10S' };
const MAX_BACKOFF_MS = 3_600_000;

export function errorText(error: unknown): string {
  if (error instanceof Error) return error.message.slice(0, 4000);
  return String(error).slice(0, 4000);
}

/**
 * Errors a retry cannot fix: bad data, refused permissions, expression failures, and a record in
 * the wrong state (409: posting a paid invoice fails the same way every time). A record changed
 * under an optimistic write (412), a lock (423) and a rate limit (429) pass, so they are retried.
 */
function isPermanent(error: unknown): boolean {
  if (error instanceof RetryableHttpError) return false;
  if (isKubikiError(error)) return error.status < 500 && ![412, 423, 429].includes(error.status);
  return false;
}

/**
 * Milliseconds until the step's next attempt (`retry: {max, backoff}`, the back-off doubling each
 * attempt), or undefined when the step has failed for good.
 */
export function retryDelay(step: Step | undefined, attempts: number, error: unknown, now: Date): number | undefined {
  const retry = step && 'retry' in step && step.retry ? { ...DEFAULT_RETRY, ...step.retry } : DEFAULT_RETRY;
  if (step === undefined || DETERMINISTIC.has(step.type) || isPermanent(error) || attempts > retry.max) return undefined;
  // A record that changed under an optimistic write is simply read again: no back-off.
  if (isKubikiError(error) && error.code === 'version-mismatch') return 0;
  return Math.min(MAX_BACKOFF_MS, durationMs(retry.backoff, now) * 2 ** (attempts - 1));
}
