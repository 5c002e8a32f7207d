// When a failed delivery is tried again. The default follows the Standard Webhooks / Svix
// schedule: at once, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h more until about three
// days have passed; each delay is spread by ±20% so receivers coming back are not hit by every
// sender at the same instant. A receiver's Retry-After (on 429 and 503) replaces the delay.

export const DEFAULT_RETRY_SCHEDULE = '5s,5m,30m,2h,5h,10h,10h,10h,10h,10h,10h';
export const JITTER = 0.2;
/** Retry-After beyond this is capped (a receiver asking for a week is treated as asking for a day). */
export const MAX_RETRY_AFTER_MS = 24 * 3600 * 1000;

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `5s,5m,2h` → milliseconds; undefined when the text is not such a list. */
export function parseSchedule(text: string): number[] | undefined {
  const parts = text.split(',').map((p) => p.trim()).filter(Boolean);
  const out: number[] = [];
  for (const part of parts) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/.exec(part);
    if (!m) return undefined;
    out.push(Math.round(Number(m[1]) * UNITS[m[2]]));
  }
  return out;
}

/** The delay before attempt `attempt + 1` after `attempt` failed (1-based), or undefined: give up. */
export function retryDelay(schedule: readonly number[], attempt: number, random: () => number = Math.random): number | undefined {
  const base = schedule[attempt - 1];
  if (base === undefined) return undefined;
  return Math.max(0, Math.round(base * (1 - JITTER + 2 * JITTER * random())));
}

/** Retry-After as seconds or an HTTP date → milliseconds from `now` (capped), or undefined. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  const text = header.trim();
  let ms: number | undefined;
  if (/^\d{1,10}$/.test(text)) ms = Number(text) * 1000;
  else {
    const at = Date.parse(text);
    if (!Number.isNaN(at)) ms = Math.max(0, at - now);
  }
  return ms === undefined ? undefined : Math.min(ms, MAX_RETRY_AFTER_MS);
}
