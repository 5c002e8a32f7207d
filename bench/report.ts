// Rendering of the final results table. Targets live here because they are
// only used to print PASS/MISS; a missed target never fails the run.
import type { LoadResult } from './load-run.ts';

export type Scenario = 'create' | 'list-50';
export type ServerKind = 'baseline' | 'kubiki';
export type StartupDb = 'postgres' | 'pglite';

/** A load result, or why there is none (server did not start, autocannon failed...). */
export type Measurement = { ok: true; result: LoadResult } | { ok: false; error: string };

export interface StartupTimes {
  cold?: number;
  warm?: number;
  error?: string;
}

export interface Report {
  title: string;
  load: Record<Scenario, Partial<Record<ServerKind, Measurement>>>;
  startup: Record<StartupDb, StartupTimes>;
}

const RATIO_TARGET: Record<Scenario, number> = { create: 0.5, 'list-50': 0.6 };
const STARTUP_TARGET_MS: Partial<Record<StartupDb, number>> = { postgres: 1500 };

const verdict = (pass: boolean): string => (pass ? 'PASS' : 'MISS');

function row(cells: string[]): string {
  const widths = [10, 10, 10, 8, 8];
  return cells
    .map((cell, i) => (i < widths.length ? cell.padEnd(widths[i]) : cell))
    .join(' ')
    .trimEnd();
}

function loadLine(scenario: Scenario, server: ServerKind, report: Report): string {
  const measurement = report.load[scenario][server];
  if (!measurement) return row([scenario, server, '-', '-', '-', 'not run']);
  if (!measurement.ok) return row([scenario, server, '-', '-', '-', `FAILED: ${measurement.error.split('\n')[0]}`]);
  const { result } = measurement;
  const cells = [scenario, server, result.reqPerSec.toFixed(0), String(result.p99Ms), String(result.failures)];
  if (result.failures > 0) return row([...cells, `INVALID: ${result.failureDetail}`]);
  if (server === 'kubiki') {
    const base = report.load[scenario].baseline;
    if (base?.ok && base.result.failures === 0 && base.result.reqPerSec > 0) {
      const ratio = result.reqPerSec / base.result.reqPerSec;
      const target = RATIO_TARGET[scenario];
      cells.push(`ratio ${ratio.toFixed(2)} (target >= ${target}) ${verdict(ratio >= target)}`);
    }
  }
  return row(cells);
}

function startupLine(db: StartupDb, times: StartupTimes): string {
  const ms = (value: number | undefined): string => (value === undefined ? '-' : `${value.toFixed(0)} ms`);
  let text = `${db.padEnd(10)} cold ${ms(times.cold)}  warm ${ms(times.warm)}`;
  const target = STARTUP_TARGET_MS[db];
  if (target !== undefined && (times.cold !== undefined || times.warm !== undefined)) {
    const parts: string[] = [];
    if (times.cold !== undefined) parts.push(`cold ${verdict(times.cold < target)}`);
    if (times.warm !== undefined) parts.push(`warm ${verdict(times.warm < target)}`);
    text += `  (target < ${target} ms: ${parts.join(', ')})`;
  }
  if (times.error) text += `  FAILED: ${times.error.split('\n')[0]}`;
  return `${'startup'.padEnd(10)} ${text}`;
}

export function formatReport(report: Report): string {
  const lines = [report.title, row(['scenario', 'server', 'req/s', 'p99 ms', 'errors'])];
  for (const scenario of ['create', 'list-50'] as const) {
    for (const server of ['baseline', 'kubiki'] as const) lines.push(loadLine(scenario, server, report));
  }
  lines.push(startupLine('postgres', report.startup.postgres));
  lines.push(startupLine('pglite', report.startup.pglite));
  return lines.join('\n');
}

/** Anything that makes the numbers untrustworthy: failed starts, failed runs, non-2xx. */
export function hasFailures(report: Report): boolean {
  const loads = (['create', 'list-50'] as const).flatMap((scenario) =>
    (['baseline', 'kubiki'] as const).map((server) => report.load[scenario][server]),
  );
  return (
    loads.some((m) => m === undefined || !m.ok || m.result.failures > 0) ||
    Object.values(report.startup).some((s) => s.error !== undefined)
  );
}
