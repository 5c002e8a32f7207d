// npm run bench:import — data import throughput and memory on PostgreSQL.
//
// 1. Writes CSV files of BENCH_ROWS (default 100,000) and BENCH_SMALL_ROWS (default 10,000)
//    organizations with valid INNs (check digits computed), KPP, e-mail, phone, address and roles.
// 2. For each file, a child process of its own (so its peak RSS is the import's) opens Kubiki on a
//    fresh schema and runs the file through the import path exactly as `kubiki import` does: a dry
//    run, then the real import (read → map → validate with the entity's validator → createMany:
//    rows + audit rows + outbox events in one statement per 1,000 → errors and checkpoint, one
//    transaction per batch). It reports the times, the rows written and its peak RSS.
// 3. In the large file's child, after the import: a bare knex batch insert of the same rows (the
//    same CSV read with csv-parse, 1,000 rows per INSERT into a copy of base_organizations with the
//    same columns and indexes; no validation, no audit, no events, no checkpoint).
// Targets: real import of 100,000 rows under 10 s, at least 0.3× the bare insert's rate, and a peak
// RSS that does not grow with the file (10,000 vs 100,000 rows).
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parse } from 'csv-parse';
import { pino } from 'pino';
import { v7 as uuidv7 } from 'uuid';
import { configFromEnv, repoRoot } from '../core/config.ts';
import { Kubiki } from '../core/kernel.ts';
import { SYSTEM } from '../core/auth/principal.ts';
import { completeInn } from '../core/entities/russian-tax-ids.ts';
import { openBenchDatabase } from './bench-database.ts';
import { installCleanupHandlers, onCleanup } from './cleanup.ts';

const ROWS = Number(process.env.BENCH_ROWS ?? 100_000);
const SMALL = Number(process.env.BENCH_SMALL_ROWS ?? 10_000);

interface ChildResult {
  rows: number;
  dryMs: number;
  realMs: number;
  created: number;
  failed: number;
  wouldCreate: number;
  auditRows: number;
  outboxRows: number;
  peakRssMb: number;
  /** The largest live heap after a forced GC, sampled every few batches (what stays allocated). */
  liveHeapMb: number;
  writePathMs?: number;
  baselineMs?: number;
  baselineRows?: number;
}

function writeFile(file: string, rows: number): void {
  const fd = fs.openSync(file, 'w');
  const roles = ['customer', 'supplier', 'customer;supplier', 'partner'];
  let buffer = 'name,legalName,inn,kpp,email,phone,legalAddress,roles\n';
  for (let i = 0; i < rows; i++) {
    const inn = completeInn(`77${String(i).padStart(7, '0')}`);
    buffer += `Organization ${i},"Limited Liability Company ""Organization ${i}""",${inn},7701${String(i % 100).padStart(2, '0')}001,org${i}@example.com,+7 495 ${String(1000000 + i).slice(-7)},"Moscow, Tverskaya st. ${i % 200}, office ${i % 50}",${roles[i % roles.length]}\n`;
    if (buffer.length > 1 << 20) {
      fs.writeSync(fd, buffer);
      buffer = '';
    }
  }
  fs.writeSync(fd, buffer);
  fs.closeSync(fd);
}

const sha256 = (file: string): string => createHash('sha256').update(fs.readFileSync(file)).digest('hex');

/** The child: one file through the import path (dry run, then real), then the bare baseline if asked. */
async function child(url: string, schema: string, file: string, pluginDir: string, withBaseline: boolean): Promise<void> {
  const config = configFromEnv({ DATABASE_URL: url, KUBIKI_DB_SCHEMA: schema, KUBIKI_PLUGIN_DIRS: pluginDir, LOG_LEVEL: 'warn' });
  const k = await Kubiki.create({ config, background: false, logger: pino({ level: 'warn' }), env: process.env });
  const facts = { name: path.basename(file), format: 'csv' as const, size: fs.statSync(file).size, sha256: sha256(file) };
  let liveHeap = 0;
  let batches = 0;
  const gc = (globalThis as { gc?: () => void }).gc;
  const runOnce = async (dryRun: boolean) => {
    const job = await k.imports.createJob({ target: 'base.organizations', mapping: { target: 'base.organizations' }, dryRun, actor: SYSTEM, file: facts });
    const started = performance.now();
    const done = await k.imports.run(await k.imports.claim(job.id), () => fs.createReadStream(file), {
      onProgress: () => {
        if (gc && ++batches % 10 === 0) {
          gc();
          liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed);
        }
      },
    }, SYSTEM);
    const ms = performance.now() - started;
    if (gc) {
      gc();
      liveHeap = Math.max(liveHeap, process.memoryUsage().heapUsed);
    }
    return { ms, job: done };
  };
  const dry = await runOnce(true);
  const real = await runOnce(false);
  const peakRssMb = process.resourceUsage().maxRSS / 1024;
  const count = async (table: string, where: Record<string, unknown> = {}) => Number((await k.db.table(table).where(where).count<{ c: string }[]>({ c: '*' }))[0].c);
  const result: ChildResult = {
    rows: real.job.rows_read, dryMs: dry.ms, realMs: real.ms, created: real.job.created, failed: real.job.failed, wouldCreate: dry.job.created,
    auditRows: await count('kubiki_audit', { entity: 'organizations' }), outboxRows: await count('kubiki_outbox', { entity: 'organizations' }), peakRssMb,
    liveHeapMb: liveHeap / 1e6,
  };
  if (withBaseline) {
    // The same rows, bare: a copy of the table (columns, indexes, unique INN), knex batch inserts.
    const knex = k.db.knex;
    await knex.raw('create table ??.bare_organizations (like ??.base_organizations including all)', [schema, schema]);
    const started = performance.now();
    const parser = fs.createReadStream(file).pipe(parse({ columns: true }));
    let batch: Record<string, unknown>[] = [];
    let rows = 0;
    const flush = async () => {
      if (batch.length) await knex.withSchema(schema).table('bare_organizations').insert(batch);
      rows += batch.length;
      batch = [];
    };
    for await (const r of parser as AsyncIterable<Record<string, string>>) {
      batch.push({ id: uuidv7(), name: r.name, legalName: r.legalName, inn: r.inn, kpp: r.kpp, email: r.email, phone: r.phone, legalAddress: r.legalAddress, kind: 'company', roles: JSON.stringify(r.roles.split(';')) });
      if (batch.length === 1000) await flush();
    }
    await flush();
    result.baselineMs = performance.now() - started;
    result.baselineRows = rows;
    // The write path alone: the same rows through repository.createMany (validation, audit rows,
    // events), 1,000 per call, one after the other — what the import is built on, without reading,
    // mapping, checkpoints or batches in parallel.
    const other = await Kubiki.create({ config: { ...config, dbSchema: `${schema}_wp` }, background: false, logger: pino({ level: 'warn' }), env: {} });
    const repo = other.repository('base.organizations');
    const wpStarted = performance.now();
    let records: Record<string, unknown>[] = [];
    for await (const r of fs.createReadStream(file).pipe(parse({ columns: true })) as AsyncIterable<Record<string, string>>) {
      records.push({ ...r, roles: r.roles.split(';') });
      if (records.length === 1000) {
        await repo.createMany(records, { actor: SYSTEM });
        records = [];
      }
    }
    if (records.length) await repo.createMany(records, { actor: SYSTEM });
    result.writePathMs = performance.now() - wpStarted;
    await other.close();
  }
  await k.close();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

function runChild(url: string, schema: string, file: string, pluginDir: string, withBaseline: boolean): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', path.join(repoRoot, 'bench/import-bench.ts'), '--child', url, schema, file, pluginDir, String(withBaseline)], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      if (code !== 0 || !line) reject(new Error(`bench child exited ${code}:\n${out}`));
      else resolve(JSON.parse(line.slice(7)) as ChildResult);
    });
  });
}

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');

async function main(): Promise<void> {
  installCleanupHandlers();
  const database = await openBenchDatabase();
  onCleanup(() => database.drop());
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-import-bench-'));
  onCleanup(() => fs.rmSync(tmp, { recursive: true, force: true }));
  // Only the base plugin (organizations live there): a half-written plugin elsewhere cannot stop the run.
  const pluginDir = path.join(tmp, 'plugins');
  fs.cpSync(path.join(repoRoot, 'plugins/base'), path.join(pluginDir, 'base'), { recursive: true });
  console.log(`import bench on ${database.label}, ${os.cpus().length} cores, load ${os.loadavg()[0].toFixed(1)}`);
  const small = path.join(tmp, 'small.csv');
  const large = path.join(tmp, 'large.csv');
  writeFile(small, SMALL);
  writeFile(large, ROWS);
  console.log(`files: ${fmt(SMALL)} rows (${(fs.statSync(small).size / 1e6).toFixed(1)} MB), ${fmt(ROWS)} rows (${(fs.statSync(large).size / 1e6).toFixed(1)} MB)`);
  const s = await runChild(database.url, 'imp_small', small, pluginDir, false);
  const l = await runChild(database.url, 'imp_large', large, pluginDir, true);
  const rate = (rows: number, ms: number) => rows / (ms / 1000);
  const ratio = rate(l.created, l.realMs) / rate(l.baselineRows!, l.baselineMs!);
  const table = [
    ['', `${fmt(SMALL)} rows`, `${fmt(ROWS)} rows`],
    ['dry run', `${(s.dryMs / 1000).toFixed(2)} s`, `${(l.dryMs / 1000).toFixed(2)} s (${fmt(rate(l.rows, l.dryMs))} rows/s)`],
    ['real import', `${(s.realMs / 1000).toFixed(2)} s`, `${(l.realMs / 1000).toFixed(2)} s (${fmt(rate(l.created, l.realMs))} rows/s)`],
    ['rows created / audit / events', `${fmt(s.created)} / ${fmt(s.auditRows)} / ${fmt(s.outboxRows)}`, `${fmt(l.created)} / ${fmt(l.auditRows)} / ${fmt(l.outboxRows)}`],
    ['peak RSS of the import process', `${s.peakRssMb.toFixed(0)} MB`, `${l.peakRssMb.toFixed(0)} MB`],
    ['live heap after GC (max)', `${s.liveHeapMb.toFixed(0)} MB`, `${l.liveHeapMb.toFixed(0)} MB`],
    ['repository.createMany alone', '', `${(l.writePathMs! / 1000).toFixed(2)} s (${fmt(rate(l.created, l.writePathMs!))} rows/s)`],
    ['bare knex batch insert', '', `${(l.baselineMs! / 1000).toFixed(2)} s (${fmt(rate(l.baselineRows!, l.baselineMs!))} rows/s)`],
  ];
  const widths = table[0].map((_c, i) => Math.max(...table.map((r) => r[i].length)));
  for (const r of table) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
  console.log(`import / bare insert: ${ratio.toFixed(2)}× (target ≥ 0.30); createMany alone / bare insert: ${(rate(l.created, l.writePathMs!) / rate(l.baselineRows!, l.baselineMs!)).toFixed(2)}×; real import ${l.realMs < 10_000 ? 'under' : 'OVER'} 10 s; RSS ${l.peakRssMb <= s.peakRssMb * 1.25 + 20 ? 'flat' : 'GROWS'} (${s.peakRssMb.toFixed(0)} → ${l.peakRssMb.toFixed(0)} MB)`);
  if (s.failed || l.failed || s.created !== SMALL || l.created !== ROWS || l.auditRows !== ROWS) throw new Error(`rows lost or refused: ${JSON.stringify({ s, l })}`);
}

if (process.argv[2] === '--child') {
  const [url, schema, file, pluginDir, baseline] = process.argv.slice(3);
  child(url, schema, file, pluginDir, baseline === 'true').then(() => process.exit(0), (error: unknown) => { console.error(error); process.exit(1); });
} else {
  main().then(() => process.exit(0), (error: unknown) => { console.error(error); process.exit(1); });
}
