import fs from 'node:fs';
import path from 'node:path';
import { KubikiError } from './errors.ts';
import { VAT_ROUNDINGS, type VatRounding } from './money/document-totals.ts';
import { DEFAULT_RETRY_SCHEDULE, parseSchedule } from './webhooks/retry-schedule.ts';

export interface KubikiConfig {
  /** PostgreSQL connection string; when absent Kubiki runs on embedded PGlite. */
  databaseUrl?: string;
  /** Folder of the embedded PGlite database (kept between runs); `memory://` keeps it in RAM. */
  dataDir: string;
  /** PostgreSQL schema holding every Kubiki table; tests isolate themselves with their own. */
  dbSchema: string;
  port: number;
  host: string;
  logLevel: string;
  /** Folders scanned for plugins, in order; a plugin name found twice is an error. */
  pluginDirs: string[];
  /** Chromium used for PDF documents; PDF output is refused (406) when it is not there. */
  chromiumPath: string;
  /** Folders of shipped document templates (`<plugin>/<name>.hbs`, `partials/`, `print.css`). */
  templateDirs: string[];
  /** Folders of cross-module workflow definitions (`*.yaml|json`; plugins ship theirs in plugins/<name>/workflows/). */
  workflowDirs: string[];
  /** Plugins to install and enable on first start (the `base` plugin always is). */
  enablePlugins: string[];
  adminToken?: string;
  /** How long a login session lasts. */
  sessionTtlSeconds: number;
  /** How often an instance re-reads plugin states and custom fields changed by other instances. */
  refreshIntervalMs: number;
  bodyLimitBytes: number;
  /** Origins a browser client may call the API from (KUBIKI_CORS_ORIGINS); empty: cross-origin access off. */
  corsOrigins: string[];
  /** SMTP server for email notifications (`smtp://user:pass@host:587`, `smtps://…`); unset: emails are held in the outbox. */
  smtpUrl?: string;
  /** The From address of notification emails. */
  smtpFrom: string;
  /** KUBIKI_WORKERS=off: serve HTTP only — no event delivery, workflow workers or schedules in this process. */
  workers: boolean;
  /** How often event delivery looks for events when no notification woke it (PostgreSQL notifies at once). */
  eventPollMs: number;
  /** Workflow instances one process works on at a time (steps wait on the database, not the CPU). */
  workflowConcurrency: number;
  workflowPollMs: number;
  /** How long a claimed step is a worker's before another may take it over (a crashed worker's steps resume after this). */
  workflowLeaseSeconds: number;
  /** Hosts the HTTP step may call (`api.example.com`, `*.example.com`); empty: none. */
  workflowHttpAllow: string[];
  /** Finished instances older than this many days are pruned with their history; 0 keeps them forever. */
  workflowRetentionDays: number;
  /** How often date-relative triggers look for records that came due. */
  workflowScanMs: number;
  /** Where document VAT is rounded: per line (the Russian invoice's way, default) or per rate group. */
  vatRounding: VatRounding;
  /** KUBIKI_CHECK_RESPONSES=1 (the test suite): every declared route's answer is checked against its schema; a mismatch is a 500. */
  checkResponses: boolean;
  /** Delays (ms) before the 2nd, 3rd, … attempt of a failed webhook delivery; after the last it has failed. */
  webhookRetrySchedule: number[];
  webhookTimeoutMs: number;
  /** Webhook deliveries one process sends at a time. */
  webhookConcurrency: number;
  webhookPollMs: number;
  /** A claimed delivery is the process's for this long; a crashed process's deliveries go out after it. */
  webhookLeaseSeconds: number;
  /** Finished webhook deliveries older than this many days are pruned; 0 keeps them. */
  webhookRetentionDays: number;
  /** Encrypts stored secrets (webhook signing secrets): 32 bytes in base64, or a passphrase. */
  secretKey?: string;
  /** Requests an API or session token may make per window (token bucket); undefined: no limit. */
  rateLimit?: { requests: number; seconds: number };
  /** Failed logins per username, and per client address, within the window before logins are refused (429). */
  loginMaxFailuresPerUser: number;
  loginMaxFailuresPerAddress: number;
  loginWindowSeconds: number;
}

/**
 * The Kubiki checkout or install: the nearest folder above this code whose package.json is
 * Kubiki's. Searched rather than fixed, so the same code works from core/ (tsx) and from the
 * bundle in dist/ (`npm start`).
 */
function findRepoRoot(from: string): string {
  for (let dir = from; ; dir = path.dirname(dir)) {
    const manifest = path.join(dir, 'package.json');
    if (fs.existsSync(manifest) && (JSON.parse(fs.readFileSync(manifest, 'utf8')) as { name?: string }).name === 'kubiki') return dir;
    if (path.dirname(dir) === dir) throw new Error(`no Kubiki package.json above ${from}`);
  }
}

export const repoRoot = findRepoRoot(import.meta.dirname);

function intEnv(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) throw new KubikiError('config-invalid', `${name} must be a non-negative integer, got "${raw}"`);
  return n;
}

const list = (raw: string | undefined): string[] => (raw ?? '').split(',').map((s) => s.trim()).filter(Boolean);

function smtpUrl(raw: string | undefined): string | undefined {
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new KubikiError('config-invalid', 'KUBIKI_SMTP_URL must be a URL like smtp://user:pass@host:587');
  }
  if (url.protocol !== 'smtp:' && url.protocol !== 'smtps:') throw new KubikiError('config-invalid', `KUBIKI_SMTP_URL must start with smtp:// or smtps://, got ${url.protocol}//`);
  return raw;
}

function retrySchedule(raw: string | undefined): number[] {
  const text = raw === undefined || raw === '' ? DEFAULT_RETRY_SCHEDULE : raw;
  const schedule = parseSchedule(text);
  if (!schedule) throw new KubikiError('config-invalid', `KUBIKI_WEBHOOK_RETRY_SCHEDULE must be a comma list of delays such as 5s,5m,2h (units ms, s, m, h, d), got "${raw}"`);
  return schedule;
}

function rateLimit(raw: string | undefined): KubikiConfig['rateLimit'] {
  if (raw === 'off' || raw === '0') return undefined;
  const m = /^(\d{1,9})\/(\d{1,6})$/.exec(raw === undefined || raw === '' ? '100000/60' : raw);
  if (!m || Number(m[1]) === 0 || Number(m[2]) === 0) throw new KubikiError('config-invalid', `KUBIKI_RATE_LIMIT must be <requests>/<seconds> (e.g. 600/60) or off, got "${raw}"`);
  return { requests: Number(m[1]), seconds: Number(m[2]) };
}

function vatRounding(raw: string | undefined): VatRounding {
  if (raw === undefined || raw === '') return 'line';
  if ((VAT_ROUNDINGS as readonly string[]).includes(raw)) return raw as VatRounding;
  throw new KubikiError('config-invalid', `KUBIKI_VAT_ROUNDING must be one of ${VAT_ROUNDINGS.join(', ')}, got "${raw}"`);
}

export function configFromEnv(env: NodeJS.ProcessEnv = process.env, overrides: Partial<KubikiConfig> = {}): KubikiConfig {
  const dbSchema = env.KUBIKI_DB_SCHEMA || 'public';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(dbSchema)) {
    throw new KubikiError('config-invalid', `KUBIKI_DB_SCHEMA must be a lower-case SQL identifier, got "${dbSchema}"`);
  }
  return {
    databaseUrl: env.DATABASE_URL || undefined,
    dataDir: env.KUBIKI_DATA_DIR || path.resolve('.kubiki/data'),
    dbSchema,
    port: intEnv(env, 'PORT', 3000),
    host: env.HOST || '0.0.0.0',
    logLevel: env.LOG_LEVEL || 'info',
    pluginDirs: env.KUBIKI_PLUGIN_DIRS ? list(env.KUBIKI_PLUGIN_DIRS).map((d) => path.resolve(d)) : [path.join(repoRoot, 'plugins')],
    chromiumPath: env.KUBIKI_CHROMIUM || '/usr/bin/chromium',
    templateDirs: env.KUBIKI_TEMPLATE_DIRS ? list(env.KUBIKI_TEMPLATE_DIRS).map((d) => path.resolve(d)) : [path.join(repoRoot, 'templates')],
    workflowDirs: env.KUBIKI_WORKFLOW_DIRS ? list(env.KUBIKI_WORKFLOW_DIRS).map((d) => path.resolve(d)) : [path.join(repoRoot, 'workflows')],
    enablePlugins: list(env.KUBIKI_ENABLE_PLUGINS),
    adminToken: env.KUBIKI_ADMIN_TOKEN || undefined,
    sessionTtlSeconds: intEnv(env, 'KUBIKI_SESSION_TTL', 12 * 3600),
    refreshIntervalMs: intEnv(env, 'KUBIKI_REFRESH_MS', 2000),
    bodyLimitBytes: intEnv(env, 'KUBIKI_BODY_LIMIT', 1024 * 1024),
    corsOrigins: list(env.KUBIKI_CORS_ORIGINS),
    smtpUrl: smtpUrl(env.KUBIKI_SMTP_URL),
    smtpFrom: env.KUBIKI_SMTP_FROM || 'kubiki@localhost',
    workers: env.KUBIKI_WORKERS !== 'off',
    eventPollMs: intEnv(env, 'KUBIKI_EVENT_POLL_MS', 1000),
    workflowConcurrency: intEnv(env, 'KUBIKI_WORKFLOW_CONCURRENCY', 32),
    workflowPollMs: intEnv(env, 'KUBIKI_WORKFLOW_POLL_MS', 500),
    workflowLeaseSeconds: intEnv(env, 'KUBIKI_WORKFLOW_LEASE_SECONDS', 60),
    workflowHttpAllow: list(env.KUBIKI_WORKFLOW_HTTP_ALLOW).map((h) => h.toLowerCase()),
    workflowRetentionDays: intEnv(env, 'KUBIKI_WORKFLOW_RETENTION_DAYS', 90),
    workflowScanMs: intEnv(env, 'KUBIKI_WORKFLOW_SCAN_MS', 60_000),
    vatRounding: vatRounding(env.KUBIKI_VAT_ROUNDING),
    checkResponses: env.KUBIKI_CHECK_RESPONSES === '1',
    webhookRetrySchedule: retrySchedule(env.KUBIKI_WEBHOOK_RETRY_SCHEDULE),
    webhookTimeoutMs: intEnv(env, 'KUBIKI_WEBHOOK_TIMEOUT_MS', 15_000),
    webhookConcurrency: intEnv(env, 'KUBIKI_WEBHOOK_CONCURRENCY', 16),
    webhookPollMs: intEnv(env, 'KUBIKI_WEBHOOK_POLL_MS', 500),
    webhookLeaseSeconds: intEnv(env, 'KUBIKI_WEBHOOK_LEASE_SECONDS', 60),
    webhookRetentionDays: intEnv(env, 'KUBIKI_WEBHOOK_RETENTION_DAYS', 30),
    secretKey: env.KUBIKI_SECRET_KEY || undefined,
    rateLimit: rateLimit(env.KUBIKI_RATE_LIMIT),
    loginMaxFailuresPerUser: intEnv(env, 'KUBIKI_LOGIN_MAX_FAILURES', 10),
    loginMaxFailuresPerAddress: intEnv(env, 'KUBIKI_LOGIN_MAX_FAILURES_PER_ADDRESS', 100),
    loginWindowSeconds: intEnv(env, 'KUBIKI_LOGIN_WINDOW_SECONDS', 900),
    ...overrides,
  };
}
