// ISO 8601 durations (the schema's `duration`: PT15M, P3D, -P1D) added to instants. Years, months
// and days are calendar units in UTC (P1M from 31 January is 3 March, as PostgreSQL's interval
// arithmetic would clamp differently — Kubiki uses the plain calendar-overflow rule), hours and
// smaller are exact.

const DURATION = /^(-)?P(?!$)(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?=\d)(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

export interface DurationParts {
  sign: 1 | -1;
  years: number;
  months: number;
  days: number;
  seconds: number;
}

export function parseDuration(text: string): DurationParts {
  const m = DURATION.exec(text);
  if (!m) throw new Error(`"${text}" is not an ISO 8601 duration (e.g. PT15M, P3D, -P1D)`);
  const n = (i: number) => Number(m[i] ?? 0);
  return { sign: m[1] ? -1 : 1, years: n(2), months: n(3), days: n(4) * 7 + n(5), seconds: n(6) * 3600 + n(7) * 60 + n(8) };
}

export function addDuration(from: Date, text: string): Date {
  const d = parseDuration(text);
  const out = new Date(from.getTime());
  out.setUTCFullYear(out.getUTCFullYear() + d.sign * d.years, out.getUTCMonth() + d.sign * d.months, out.getUTCDate() + d.sign * d.days);
  return new Date(out.getTime() + d.sign * d.seconds * 1000);
}

/** Milliseconds of a duration measured from `from` (calendar units make it depend on the date: P1M). */
export function durationMs(text: string, from: Date): number {
  return addDuration(from, text).getTime() - from.getTime();
}
