import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { once } from 'node:events';
import { PassThrough, type Writable } from 'node:stream';
import type { Command } from 'commander';
import YAML from 'yaml';
import { KubikiError } from '../errors.ts';
import { SYSTEM, type Principal } from '../auth/principal.ts';
import type { Kubiki } from '../kernel.ts';
import { csvOptionsFrom } from '../csv/csv-response.ts';
import { parseMapping, type MappingDefinition } from './import-mapping.ts';
import { formatOfName, sniffFormat, type ImportFormat } from './import-sources.ts';
import { DEFAULT_BATCH, jobView, type JobRow, type JobView } from './import-service.ts';
import { exportColumns, exportFormat, firstPage, writeExport } from './export.ts';
import { errorsCsvHeader, errorsCsvRows } from './import-routes.ts';

// `kubiki import <entity> <file>` and `kubiki export <entity>`: the same import jobs as the API
// (checkpointed batches, resumed after a crash by running the same command again), with a
// progress bar on stderr.

type WithKubiki = <T>(work: (k: Kubiki) => Promise<T>) => Promise<T>;

interface ImportOptions {
  mapping?: string; saveMapping?: string; dryRun?: boolean; key?: string; as?: string; batchSize?: string;
  format?: string; delimiter?: string; sheet?: string; encoding?: string; errors?: string; again?: boolean; quiet?: boolean;
}

async function fileFacts(file: string): Promise<{ size: number; sha256: string; format: ImportFormat }> {
  const stat = fs.statSync(file, { throwIfNoEntry: false });
  if (!stat?.isFile()) throw new KubikiError('not-found', `no file ${file}`);
  const hash = createHash('sha256');
  let first: Buffer | undefined;
  for await (const chunk of fs.createReadStream(file)) {
    first ??= chunk as Buffer;
    hash.update(chunk as Buffer);
  }
  return { size: stat.size, sha256: hash.digest('hex'), format: formatOfName(file) ?? sniffFormat(first ?? Buffer.alloc(0)) };
}

async function actorNamed(k: Kubiki, username?: string): Promise<Principal> {
  if (!username) return SYSTEM;
  const user = await k.auth.findUserByName(username);
  if (!user) throw new KubikiError('not-found', `no user ${username}`);
  return k.auth.principalForUser(user.id);
}

/** A saved mapping by name, or a mapping file (JSON or YAML). */
async function loadMapping(k: Kubiki, target: string, ref: string | undefined): Promise<{ definition: MappingDefinition; name?: string }> {
  if (!ref) return { definition: { target } };
  if (fs.existsSync(ref) && fs.statSync(ref).isFile()) {
    const text = fs.readFileSync(ref, 'utf8');
    const raw = /\.ya?ml$/i.test(ref) ? YAML.parse(text) : JSON.parse(text);
    const definition = parseMapping(typeof raw === 'object' && raw !== null && !('target' in raw) ? { ...raw, target } : raw);
    return { definition };
  }
  const saved = await k.imports.getMapping(ref);
  return { definition: saved.definition, name: ref };
}

const n = (v: number): string => v.toLocaleString('en-US');

/** The progress bar: redrawn in place on a terminal, a line at most every half second otherwise. */
function progressPrinter(quiet: boolean): { update(p: { rowsRead: number; bytesRead: number; totalBytes: number; created: number; updated: number; unchanged: number; failed: number }): void; done(): void } {
  const tty = process.stderr.isTTY === true;
  const started = Date.now();
  let last = 0;
  let drawn = false;
  return {
    update(p) {
      if (quiet) return;
      const now = Date.now();
      if (!tty && now - last < 500) return;
      last = now;
      const ratio = p.totalBytes ? Math.min(1, p.bytesRead / p.totalBytes) : 0;
      const rate = Math.round(p.rowsRead / Math.max(0.001, (now - started) / 1000));
      const stats = `${n(p.rowsRead)} rows · ${n(p.created)} created · ${n(p.updated)} updated · ${n(p.unchanged)} unchanged · ${n(p.failed)} bad · ${n(rate)} rows/s`;
      if (tty) {
        const width = 30;
        const filled = Math.round(ratio * width);
        process.stderr.write(`\r[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.floor(ratio * 100)).padStart(3)}% ${stats}\x1b[K`);
        drawn = true;
      } else {
        process.stderr.write(`progress: ${Math.floor(ratio * 100)}% ${stats}\n`);
      }
    },
    done() {
      if (drawn) process.stderr.write('\n');
    },
  };
}

function summary(view: JobView): string {
  const c = view.counts;
  const verb = view.dryRun ? 'dry run (nothing written)' : 'import';
  const would = view.dryRun ? 'would be ' : '';
  return `${verb} ${view.id} into ${view.target}: ${view.status}; ${n(view.progress.rowsRead)} rows: ${n(c.created)} ${would}created, ${n(c.updated)} ${would}updated, ${n(c.unchanged)} unchanged, ${n(c.failed)} bad\n`;
}

async function writeErrorsCsv(k: Kubiki, jobId: string, file: string): Promise<void> {
  const out = fs.createWriteStream(file);
  out.write(errorsCsvHeader());
  for await (const page of k.imports.allErrors(jobId)) out.write(errorsCsvRows(page));
  await new Promise<void>((resolve, reject) => out.end((error?: Error | null) => (error ? reject(error) : resolve())));
}

export function importCommands(program: Command, withKubiki: WithKubiki): void {
  program.command('import <entity> <file>')
    .description('import a CSV or XLSX file into an entity (base.organizations) or a plugin import target: mapped, validated, audited, in checkpointed batches; run it again after a crash to resume')
    .option('--mapping <name|file>', 'a saved mapping, or a mapping file (JSON or YAML): column → field, constants, transforms, key')
    .option('--save-mapping <name>', 'save the mapping used under this name (for --mapping <name> and the API)')
    .option('--dry-run', 'check every row on the same path as the real import and write nothing')
    .option('--key <field>', 'upsert: a field (inn, sku, email…), $externalId or id that finds the record to update')
    .option('--as <username>', 'run as this user (their create/update grants apply); default: the system')
    .option('--batch-size <n>', `rows per transaction and checkpoint (1–1000, default ${DEFAULT_BATCH})`)
    .option('--format <format>', 'csv or xlsx (default: from the file name, else its bytes)')
    .option('--delimiter <char>', 'CSV delimiter: , ; tab (default: detected)')
    .option('--encoding <name>', 'CSV encoding: utf-8 or windows-1251 (default: detected)')
    .option('--sheet <name>', 'XLSX worksheet (default: the first)')
    .option('--errors <file>', 'write the bad rows (line, column, field, rule, message, value) to this CSV file')
    .option('--again', 'import a file that was already imported completely (without a key that creates its rows again)')
    .option('--quiet', 'no progress bar')
    .action((entity: string, file: string, opts: ImportOptions) => withKubiki(async (k) => {
      const facts = await fileFacts(file);
      const actor = await actorNamed(k, opts.as);
      const loaded = await loadMapping(k, entity, opts.mapping);
      let definition = loaded.definition;
      if (definition.target !== entity) throw new KubikiError('import-mapping-invalid', `the mapping is for ${definition.target}, not ${entity}`, { issues: [{ field: 'mapping.target', rule: 'target', message: `mapping for ${definition.target}` }] });
      const fileOptions = { ...(opts.delimiter ? { delimiter: opts.delimiter === '\\t' ? 'tab' : opts.delimiter } : {}), ...(opts.encoding ? { encoding: opts.encoding } : {}), ...(opts.sheet ? { sheet: opts.sheet } : {}) };
      if (Object.keys(fileOptions).length) definition = parseMapping({ ...definition, options: { ...definition.options, ...fileOptions } });
      let mappingName = loaded.name;
      if (opts.saveMapping) {
        if (actor !== SYSTEM && actor.permissions.grant('core.imports.manage') !== 'all') throw new KubikiError('forbidden', `${actor.username} lacks the permission core.imports.manage`, { extra: { permission: 'core.imports.manage' } });
        const saved = await k.imports.saveMapping(opts.saveMapping, definition, actor);
        mappingName = opts.saveMapping;
        process.stdout.write(`saved mapping ${saved.name} (version ${saved.version})\n`);
      }
      const batchSize = opts.batchSize === undefined ? DEFAULT_BATCH : Number(opts.batchSize);
      if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > 1000) throw new KubikiError('validation-failed', `--batch-size must be 1-1000, got ${opts.batchSize}`);
      const format = (opts.format as ImportFormat | undefined) ?? facts.format;
      if (format !== 'csv' && format !== 'xlsx') throw new KubikiError('validation-failed', `--format must be csv or xlsx, got ${opts.format}`);
      const key = opts.key ?? definition.key;
      const target = k.imports.resolveTarget(entity);
      k.imports.checkPermissions(target, actor, key);

      const spec = { target: entity, sha256: facts.sha256, mapping: definition, key, dryRun: opts.dryRun === true, actor };
      let job: JobRow | undefined = await k.imports.findResumable(spec);
      if (job) {
        job = await k.imports.claim(job.id);
        // Batches commit out of order, so rows can be done while the unbroken prefix (the checkpoint) is still line 0.
        process.stderr.write(`resuming import ${job.id}${job.checkpoint_line ? ` after line ${job.checkpoint_line}` : ''} (${n(job.rows_read)} rows done)\n`);
      } else {
        if (!spec.dryRun && !key && !opts.again) {
          const done = await k.imports.findCompleted(spec);
          if (done) {
            throw new KubikiError('conflict', `this file was imported into ${entity} completely by job ${done.id}; importing it again would create its rows again — give --key <field> to update them instead, or --again to import it anyway`, { extra: { job: done.id } });
          }
        }
        job = await k.imports.claim((await k.imports.createJob({
          target: entity, mapping: definition, mappingName, dryRun: spec.dryRun, key, batchSize, actor,
          file: { name: path.basename(file), format, size: facts.size, sha256: facts.sha256 },
        })).id);
      }
      const progress = progressPrinter(opts.quiet === true);
      let finished: JobRow;
      try {
        finished = await k.imports.run(job, () => fs.createReadStream(file), {
          onStart: (info) => { if (info.unmappedColumns.length && !opts.quiet) process.stderr.write(`columns no field reads (ignored): ${info.unmappedColumns.join(', ')}\n`); },
          onProgress: (p) => progress.update(p),
        }, actor);
      } finally {
        progress.done();
      }
      const view = jobView(finished, await k.imports.errorRows(finished.id, { limit: 20 }));
      process.stdout.write(summary(view));
      for (const e of view.errors ?? []) process.stdout.write(`  line ${e.line}${e.column ? `, column ${e.column}` : ''}: ${e.message}${e.value !== undefined ? ` (value: ${e.value})` : ''} [${e.rule}]\n`);
      if (view.counts.failed > (view.errors?.length ?? 0)) process.stdout.write(`  … ${n(view.counts.failed - (view.errors?.length ?? 0))} more bad rows${opts.errors ? '' : ' (--errors <file> writes them all)'}\n`);
      if (opts.errors) {
        await writeErrorsCsv(k, finished.id, opts.errors);
        process.stdout.write(`bad rows written to ${opts.errors}\n`);
      }
      if (view.status !== 'completed') process.exitCode = 1;
      else if (view.counts.failed > 0) process.exitCode = 2;
    }));

  program.command('imports [job]').description('import jobs (newest first), or one job with its bad rows')
    .action((id: string | undefined) => withKubiki(async (k) => {
      if (id) {
        const view = await k.imports.view(id, SYSTEM, { errors: 100 });
        process.stdout.write(summary(view));
        for (const e of view.errors ?? []) process.stdout.write(`  line ${e.line}${e.column ? `, column ${e.column}` : ''}: ${e.message} [${e.rule}]\n`);
        return;
      }
      const { data } = await k.imports.list(SYSTEM, { limit: 50 });
      for (const v of data) process.stdout.write(`${v.id}  ${v.target}  ${v.status}${v.dryRun ? ' (dry run)' : ''}  ${v.file.name}  ${n(v.progress.rowsRead)} rows, ${n(v.counts.failed)} bad\n`);
      if (data.length === 0) process.stdout.write('(none)\n');
    }));

  program.command('export <entity>')
    .description('export an entity\'s records with their custom fields as CSV or XLSX (columns are field names: the file imports back)')
    .option('--format <format>', 'csv or xlsx', 'csv')
    .option('--out <file>', 'write to this file (default: stdout)')
    .option('--delimiter <char>', 'CSV delimiter: , or ; (Russian Excel)', ',')
    .option('--no-bom', 'leave out the UTF-8 byte order mark')
    .option('--fields <list>', 'comma-separated fields (id comes first)')
    .option('--filter <field=value...>', 'list filters as the API takes them: status=active, createdAt[gte]=2026-01-01, q=acme')
    .option('--as <username>', 'export as this user (their read grants apply); default: the system')
    .action((entity: string, opts: { format: string; out?: string; delimiter: string; bom: boolean; fields?: string; filter?: string[]; as?: string }) => withKubiki(async (k) => {
      const m = /^([a-z][a-z0-9]*)\.([a-z][a-zA-Z0-9]*)$/.exec(entity);
      if (!m) throw new KubikiError('unknown-entity', `name the entity as <plugin>.<plural>, e.g. base.organizations, not ${entity}`);
      const repo = k.httpRepository(m[1], m[2]);
      const actor = await actorNamed(k, opts.as);
      const format = exportFormat(opts.format);
      if (format === 'xlsx' && !opts.out && process.stdout.isTTY) throw new KubikiError('validation-failed', 'an XLSX export is binary: give --out <file> (or redirect stdout)');
      const filters: Record<string, string> = {};
      for (const f of opts.filter ?? []) {
        const i = f.indexOf('=');
        if (i < 1) throw new KubikiError('bad-filter', `--filter takes field=value, got ${f}`);
        filters[f.slice(0, i)] = f.slice(i + 1);
      }
      const fields = opts.fields?.split(',').map((s) => s.trim()).filter(Boolean);
      exportColumns(repo.entity, fields);
      const options = { format, fields, filters, csv: csvOptionsFrom({ delimiter: opts.delimiter, bom: String(opts.bom !== false) }) };
      const first = await firstPage(repo, actor, options);
      let out: Writable;
      let done: Promise<unknown>;
      if (opts.out) {
        out = fs.createWriteStream(opts.out);
        done = once(out, 'finish');
      } else {
        // stdout itself is never ended: the export ends a pass-through piped into it.
        const pass = new PassThrough();
        pass.pipe(process.stdout, { end: false });
        out = pass;
        done = once(pass, 'end');
      }
      const count = await writeExport(repo, actor, options, out, first);
      await done;
      if (opts.out) process.stderr.write(`exported ${n(count)} ${entity} records to ${opts.out}\n`);
    }));
}

