// The results table of `npm run bench:workflow`. A missed target prints MISS (as the API bench
// does) and never fails the run; errors and anomalies do.
import type { QueueBaselineResult } from './queue-baseline.ts';
import type { LatencyFigures, ThroughputFigures } from './workflow-db.ts';

export const STEPS_RATIO_TARGET = 0.3;

export interface ThroughputResult {
  figures: ThroughputFigures;
  /** From spawning the worker processes to the last instance finishing, as seen by the poll. */
  wallSeconds: number;
  /** Rate at which the backlog was created through the HTTP-only server (for context). */
  createdPerSec: number;
}

export interface LatencyResult {
  label: string;
  figures: LatencyFigures;
  offeredPerSec: number;
  sentPerSec: number;
  via: string;
}

export interface WorkflowReport {
  title: string;
  settings: string;
  baseline?: QueueBaselineResult;
  baselineError?: string;
  throughput?: ThroughputResult;
  latency: LatencyResult[];
  /** Per phase: "none" or what went wrong (must be none). */
  anomalies: { phase: string; text: string }[];
  errors: string[];
}

const fmt = (value: number, digits = 0): string =>
  Number.isFinite(value) ? value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits }) : '-';

function row(name: string, value: string, note = ''): string {
  return `${name.padEnd(28)} ${value.padEnd(20)} ${note}`.trimEnd();
}

export function formatWorkflowReport(report: WorkflowReport): string {
  const lines = [report.title, report.settings, row('measure', 'value', 'detail')];
  const base = report.baseline;
  if (base) {
    lines.push(row('baseline', `${fmt(base.rowsPerSec)} rows/s`, `${base.clients} clients, DELETE … FOR UPDATE SKIP LOCKED … RETURNING, ${fmt(base.rows)} rows in ${fmt(base.seconds, 1)} s`));
  } else {
    lines.push(row('baseline', '-', report.baselineError ? `FAILED: ${report.baselineError.split('\n')[0]}` : 'not run'));
  }

  const t = report.throughput;
  if (t && t.figures.seconds > 0) {
    const f = t.figures;
    const instancesPerSec = f.completed / f.seconds;
    const stepsPerSec = f.doneSteps / f.seconds;
    lines.push(row('throughput', `${fmt(instancesPerSec)} instances/s`, `${fmt(f.completed)} completed in ${fmt(f.seconds, 2)} s (first instance created → last finished); ${fmt(t.wallSeconds, 2)} s from worker spawn`));
    lines.push(row('steps', `${fmt(stepsPerSec)} steps/s`, `${fmt(f.doneSteps)} done step rows, ${fmt(f.completed > 0 ? f.doneSteps / f.completed : NaN, 2)} steps/instance`));
    if (base && base.rowsPerSec > 0) {
      const ratio = stepsPerSec / base.rowsPerSec;
      lines.push(row('ratio', fmt(ratio, 2), `steps/s ÷ baseline rows/s (target >= ${STEPS_RATIO_TARGET}) ${ratio >= STEPS_RATIO_TARGET ? 'PASS' : 'MISS'}`));
    } else {
      lines.push(row('ratio', '-', 'no baseline'));
    }
    lines.push(row('backlog creation', `${fmt(t.createdPerSec)} orgs/s`, 'POST /api/base/organizations on the HTTP-only server, before the workers started (context only)'));
  } else {
    lines.push(row('throughput', '-', 'not measured'));
  }

  for (const l of report.latency) {
    const f = l.figures;
    lines.push(
      row(l.label, `p50 ${fmt(f.p50Ms)} ms`, `p99 ${fmt(f.p99Ms)} ms, max ${fmt(f.maxMs)} ms; ${fmt(f.count)} instances, ${fmt(l.offeredPerSec)}/s offered (${fmt(l.sentPerSec)}/s sent) ${l.via}`),
    );
  }

  for (const a of report.anomalies) lines.push(row(`anomalies ${a.phase}`, a.text === 'none' ? '0' : 'FAILED', a.text === 'none' ? '' : a.text));
  for (const error of report.errors) lines.push(row('error', '', error.split('\n')[0] ?? ''));
  return lines.join('\n');
}
