// `npm run bench:templates`: document rendering through Kubiki's render path vs bare Handlebars,
// in one process, on the same template, partials and data. Data loading is excluded: the
// invoices are built in memory and shaped by documentData() before anything is timed.
//
//   kubiki:   engine.render(engine.compile(source), data) wrapped by htmlPage(), exactly what
//             DocumentService.renderRecord does per document (compile is a sha256 + cache hit).
//   baseline: Handlebars.create() with the same helpers and partials, template compiled once
//             before timing (hbs.compile, default options) and called per document.
//   kubiki (body only): engine.render(engine.compile(...)) without the page, for attribution.
//
// Order: build data; render every invoice once both ways and compare (outputs must match);
// warm up each path; then BENCH_ROUNDS rounds, each rendering all invoices through every path,
// interleaved in chunks of BENCH_CHUNK documents (rotating order) so a busy machine slows all
// paths alike. Medians of the per-round rates are reported.
//
// Env: BENCH_DOCS (default 1000), BENCH_LINES (20), BENCH_ROUNDS (5), BENCH_WARMUP (200 docs),
//      BENCH_CHUNK (50 docs).
// Exits 1 only when rendering throws or the outputs differ; a missed target prints MISS.
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import Handlebars from 'handlebars';
import { registerDocumentHelpers } from '../core/templates/document-helpers.ts';
import { documentData, type DocumentContext } from '../core/templates/document-data.ts';
import { htmlPage } from '../core/templates/document-service.ts';
import { discoverTemplates } from '../core/templates/template-catalog.ts';
import { TemplateEngine } from '../core/templates/template-engine.ts';
import type { TemplateVersion } from '../core/templates/template-store.ts';
import { BENCH_COMPANY, buildInvoices } from './invoice-data.ts';

const repoRoot = fileURLToPath(new URL('..', import.meta.url));
const TEMPLATE_ID = 'alpha.order-invoice';
const RATIO_TARGET = 0.8;

function intFromEnv(name: string, fallback: number, min: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be a whole number >= ${min}, got "${raw}"`);
  return value;
}

const log = (message: string): void => {
  process.stderr.write(`[bench] ${message}\n`);
};

type Path = 'baseline' | 'kubiki' | 'kubiki-body';
type RenderOne = (data: Record<string, unknown>) => string;

/** Renders `inputs` once; returns milliseconds. `sink` keeps the work observable. */
function timeChunk(render: RenderOne, inputs: Record<string, unknown>[], sink: { chars: number }): number {
  const start = performance.now();
  let chars = 0;
  for (const data of inputs) chars += render(data).length;
  const ms = performance.now() - start;
  sink.chars += chars;
  return ms;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const fmt = (n: number): string => Math.round(n).toLocaleString('en-US');
const kib = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KiB`;

/** The body DocumentService puts inside the page, recovered by splitting on the page's own markers. */
function bodyOf(page: string): string | undefined {
  const open = page.indexOf('\n<body>\n');
  const close = page.lastIndexOf('\n</body>\n</html>\n');
  return open < 0 || close < open ? undefined : page.slice(open + '\n<body>\n'.length, close);
}

function firstDifference(a: string, b: string): string {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  const around = (s: string): string => JSON.stringify(s.slice(Math.max(0, i - 40), i + 40));
  return `at char ${i}: kubiki ${around(a)} vs baseline ${around(b)}`;
}

function main(): number {
  const docs = intFromEnv('BENCH_DOCS', 1000, 1);
  const linesPerDoc = intFromEnv('BENCH_LINES', 20, 1);
  const rounds = intFromEnv('BENCH_ROUNDS', 5, 1);
  const warmup = intFromEnv('BENCH_WARMUP', 200, 0);
  const chunkSize = intFromEnv('BENCH_CHUNK', 50, 1);

  // --- template, partials, page, data (not timed) ---------------------------
  const { partials } = discoverTemplates([join(repoRoot, 'templates')]);
  const fixture = discoverTemplates([join(repoRoot, 'tests/fixtures/templates')]).templates.find((t) => t.id === TEMPLATE_ID);
  if (!fixture) throw new Error(`${TEMPLATE_ID} not found under tests/fixtures/templates`);
  const printCss = readFileSync(join(repoRoot, 'templates/print.css'), 'utf8');
  const version: TemplateVersion = {
    id: fixture.id, version: 1, origin: 'default', source: fixture.source, metadata: fixture.metadata,
    sourceHash: '', comment: '', createdBy: 'bench', createdAt: new Date().toISOString(),
  };
  const ctx: DocumentContext = { templateId: fixture.id, templateVersion: version.version, metadata: fixture.metadata };

  log(`building ${docs} invoices × ${linesPerDoc} lines`);
  const inputs = buildInvoices(docs, linesPerDoc).map((record) => documentData(ctx, record, BENCH_COMPANY, { lineCount: record.lines.length }));

  // --- the two render paths -------------------------------------------------
  const engine = new TemplateEngine(partials);
  const source = version.source;
  const kubikiBody: RenderOne = (data) => engine.render(engine.compile(source), data);
  const kubiki: RenderOne = (data) => htmlPage(version, engine.render(engine.compile(source), data), printCss);

  const hbs = Handlebars.create();
  registerDocumentHelpers(hbs);
  for (const [name, partial] of Object.entries(partials)) hbs.registerPartial(name, partial);
  const template = hbs.compile(source);
  template(inputs[0]); // compile happens lazily on first call: from here on it is the precompiled function
  const baseline: RenderOne = (data) => template(data);

  // --- same output? (every document, not timed) -----------------------------
  log('checking outputs');
  let pageBytes = 0;
  let bodyBytes = 0;
  for (let i = 0; i < inputs.length; i++) {
    const page = kubiki(inputs[i]);
    const expected = baseline(inputs[i]);
    const body = bodyOf(page);
    if (body === undefined) {
      console.error(`FAILED: invoice ${i + 1}: Kubiki's output is not a page around a body`);
      return 1;
    }
    if (body !== expected) {
      console.error(`FAILED: invoice ${i + 1}: outputs differ ${firstDifference(body, expected)}`);
      return 1;
    }
    if (kubikiBody(inputs[i]) !== expected) {
      console.error(`FAILED: invoice ${i + 1}: Kubiki body-only output differs from the page's body`);
      return 1;
    }
    pageBytes += Buffer.byteLength(page, 'utf8');
    bodyBytes += Buffer.byteLength(expected, 'utf8');
  }

  // --- warm-up, then alternating rounds -------------------------------------
  const paths: Record<Path, RenderOne> = { baseline, kubiki, 'kubiki-body': kubikiBody };
  const order: Path[] = ['baseline', 'kubiki', 'kubiki-body'];
  const sink = { chars: 0 };
  if (warmup > 0) {
    log(`warm-up: ${warmup} documents per path`);
    const warmInputs = Array.from({ length: warmup }, (_, i) => inputs[i % inputs.length]);
    for (const path of order) timeChunk(paths[path], warmInputs, sink);
  }
  // The machine's load changes over seconds (other processes, GC, CPU frequency): a round does not
  // time one path over all documents and then the next, it interleaves them chunk by chunk, in a
  // rotating order, so every path sees the same conditions. A round's rate per path is all
  // documents over the sum of that path's chunk times.
  const chunks: Record<string, unknown>[][] = [];
  for (let i = 0; i < inputs.length; i += chunkSize) chunks.push(inputs.slice(i, i + chunkSize));
  const rates: Record<Path, number[]> = { baseline: [], kubiki: [], 'kubiki-body': [] };
  let turn = 0;
  for (let r = 0; r < rounds; r++) {
    const ms: Record<Path, number> = { baseline: 0, kubiki: 0, 'kubiki-body': 0 };
    for (const chunk of chunks) {
      for (let i = 0; i < order.length; i++) {
        const path = order[(i + turn) % order.length];
        ms[path] += timeChunk(paths[path], chunk, sink);
      }
      turn++;
    }
    for (const path of order) rates[path].push(inputs.length / (ms[path] / 1000));
    log(`round ${r + 1}/${rounds}: ${order.map((p) => `${p} ${fmt(rates[p][r])}/s`).join(', ')}, ratio ${(rates.kubiki[r] / rates.baseline[r]).toFixed(2)}`);
  }

  // --- report ---------------------------------------------------------------
  const base = median(rates.baseline);
  const kub = median(rates.kubiki);
  const body = median(rates['kubiki-body']);
  // Paired: each round's kubiki/baseline ratio comes from the same interleaved conditions, so
  // the median of those ratios is steadier than the ratio of the two medians (shown too).
  const ratio = median(rates.kubiki.map((k, r) => k / rates.baseline[r]));
  const bodyRatio = median(rates['kubiki-body'].map((k, r) => k / rates.baseline[r]));
  const spread = (p: Path): string => `${fmt(Math.min(...rates[p]))}–${fmt(Math.max(...rates[p]))}`;
  const row = (cells: string[]): string => [cells[0].padEnd(20), cells[1].padStart(12), cells[2].padStart(20), cells[3] ?? ''].join('  ').trimEnd();

  console.log(`Template rendering: ${TEMPLATE_ID}, ${docs} invoices × ${linesPerDoc} lines, ${rounds} rounds (median), interleaved in chunks of ${chunkSize}, warm-up ${warmup} docs/path, Node ${process.version}`);
  console.log('Data loading excluded: invoices built in memory and shaped by documentData() before timing.');
  console.log('Baseline: Handlebars.create() + the document helpers and shipped partials, template compiled once');
  console.log('  before timing with hbs.compile() and called per document (same runtime cost as hbs.precompile +');
  console.log('  hbs.template, without eval of the precompiled spec); default compile options.');
  console.log('Kubiki: engine.render(engine.compile(source), data) + htmlPage(), as DocumentService renders a document.');
  console.log('');
  console.log(row(['path', 'docs/s', 'range (docs/s)', 'kubiki/baseline: median of per-round ratios']));
  console.log(row(['baseline', fmt(base), spread('baseline')]));
  console.log(row(['kubiki', fmt(kub), spread('kubiki'), `${ratio.toFixed(2)}× baseline (target ≥ ${RATIO_TARGET}×) ${ratio >= RATIO_TARGET ? 'PASS' : 'MISS'}; ratio of medians ${(kub / base).toFixed(2)}`]));
  console.log(row(['kubiki (body only)', fmt(body), spread('kubiki-body'), `${bodyRatio.toFixed(2)}× baseline (no page wrapping; informational)`]));
  console.log('');
  console.log(`Output: body ${kib(bodyBytes / docs)}/doc avg (both paths, identical for all ${docs} invoices); Kubiki page ${kib(pageBytes / docs)}/doc avg`);
  console.log(`  (body + htmlPage: doctype, title, @page size, print.css ${kib(Buffer.byteLength(printCss, 'utf8'))}); totals ${kib(bodyBytes)} bodies, ${kib(pageBytes)} pages.`);
  if (sink.chars === 0) return 1; // never true; keeps the rendered strings observable
  return 0;
}

try {
  process.exitCode = main();
} catch (error) {
  console.error(`FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
  process.exitCode = 1;
}
