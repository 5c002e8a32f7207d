import { Readable } from 'node:stream';
import { parse as parseCsv } from 'csv-parse';
import type ExcelJS from 'exceljs';
import iconv from 'iconv-lite';
import { KubikiError } from '../errors.ts';

// Streamed readers of the files an import takes: CSV (any delimiter; UTF-8 with or without a BOM,
// or Windows-1251 as 1C and Russian Excel write it) and XLSX (exceljs' streaming reader). Rows come
// one at a time with the line a person sees in a spreadsheet, so memory does not grow with the file.

export type ImportFormat = 'csv' | 'xlsx';

export interface SourceOptions {
  format: ImportFormat;
  /** CSV: `,`, `;` or a tab; detected from the header line when not given. */
  delimiter?: string;
  /** CSV: `utf-8` or `windows-1251`; detected (BOM, then whether the bytes are valid UTF-8) when not given. */
  encoding?: string;
  /** XLSX: the worksheet by name (the first one by default). */
  sheet?: string;
  /** The 1-based line (row) holding the column names; rows above it are skipped. */
  headerRow?: number;
}

export interface SourceRow {
  /** The line of the file (CSV, where the record starts) or the row number (XLSX). */
  line: number;
  /** Cell values by column index: strings (CSV) or strings, numbers, booleans, Dates (XLSX). */
  cells: unknown[];
  /** A problem with the row itself (a CSV quote out of place, more cells than columns). */
  problem?: string;
}

export interface Source {
  header: string[];
  /** The header's line. */
  headerLine: number;
  rows: AsyncIterator<SourceRow>;
  /** Bytes of the file consumed so far (progress). */
  bytesRead(): number;
  close(): void;
}

/** Counts the bytes that pass (what progress reports) and exposes the first chunk for sniffing. */
function counted(stream: Readable): { chunks: AsyncGenerator<Buffer>; bytes: () => number } {
  let bytes = 0;
  async function* chunks(): AsyncGenerator<Buffer> {
    for await (const chunk of stream) {
      const buffer = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as Uint8Array);
      bytes += buffer.length;
      yield buffer;
    }
  }
  return { chunks: chunks(), bytes: () => bytes };
}

/** `xlsx` when the bytes are a ZIP (an XLSX is one), else `csv`. */
export function sniffFormat(first: Buffer): ImportFormat {
  return first.length >= 4 && first[0] === 0x50 && first[1] === 0x4b && first[2] === 0x03 && first[3] === 0x04 ? 'xlsx' : 'csv';
}

/** The format a file name says, if it says one. */
export function formatOfName(name: string): ImportFormat | undefined {
  const ext = name.toLowerCase().split('.').pop();
  return ext === 'xlsx' ? 'xlsx' : ext === 'csv' || ext === 'txt' || ext === 'tsv' ? 'csv' : undefined;
}

function isUtf8(bytes: Buffer): boolean {
  // A chunk may end inside a character: leave up to three bytes out of the check.
  let end = bytes.length;
  for (let i = 0; i < 3 && end > 0 && (bytes[end - 1] & 0xc0) === 0x80; i++) end--;
  if (end > 0 && bytes[end - 1] >= 0xc0) end--;
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(0, end));
    return true;
  } catch {
    return false;
  }
}

function normalizeEncoding(raw: string): 'utf-8' | 'windows-1251' {
  const e = raw.toLowerCase().replace(/[^a-z0-9]/g, '');
  if (e === 'utf8') return 'utf-8';
  if (e === 'windows1251' || e === 'cp1251' || e === 'win1251') return 'windows-1251';
  throw new KubikiError('validation-failed', `encoding must be utf-8 or windows-1251, not ${raw}`, { issues: [{ field: 'encoding', rule: 'enum', message: 'encoding must be utf-8 or windows-1251' }] });
}

/** The delimiter of a header line: the most frequent of `;`, `,` and tab outside quotes. */
function sniffDelimiter(text: string): string {
  const firstLine = text.split(/\r?\n/, 1)[0] ?? '';
  let quoted = false;
  const counts: Record<string, number> = { ',': 0, ';': 0, '\t': 0 };
  for (const c of firstLine) {
    if (c === '"') quoted = !quoted;
    else if (!quoted && c in counts) counts[c]++;
  }
  const best = Object.entries(counts).sort((a, b) => b[1] - a[1])[0];
  return best[1] > 0 ? best[0] : ',';
}

const header = (cells: unknown[]): string[] => cells.map((c) => cellText(c).trim());

/** A cell as text (formulas give their result, rich text its characters). */
export function cellText(value: unknown): string {
  if (value === null || value === undefined) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'object') {
    const o = value as Record<string, unknown>;
    if (Array.isArray(o.richText)) return (o.richText as { text?: string }[]).map((r) => r.text ?? '').join('');
    if ('result' in o) return cellText(o.result);
    if (typeof o.text === 'string') return o.text;
    if ('error' in o) return String(o.error);
  }
  return String(value);
}

/** exceljs cell values → plain values: formulas by their result, rich text and links as text. */
function plainCell(value: unknown): unknown {
  if (value === null || value === undefined) return undefined;
  if (typeof value === 'object' && !(value instanceof Date)) {
    const o = value as Record<string, unknown>;
    if ('result' in o) return plainCell(o.result);
    if ('error' in o) return undefined;
    return cellText(value);
  }
  return value;
}

async function openCsv(input: Readable, options: SourceOptions): Promise<Source> {
  const { chunks, bytes } = counted(input);
  const first = await chunks.next();
  const firstChunk = first.done ? Buffer.alloc(0) : first.value;
  const bom = firstChunk.length >= 3 && firstChunk[0] === 0xef && firstChunk[1] === 0xbb && firstChunk[2] === 0xbf;
  const encoding = options.encoding ? normalizeEncoding(options.encoding) : bom || isUtf8(firstChunk) ? 'utf-8' : 'windows-1251';
  const decode = (b: Buffer): string => (encoding === 'utf-8' ? b.toString('utf8') : iconv.decode(b, 'win1251'));
  const delimiter = options.delimiter === 'tab' ? '\t' : options.delimiter === 'semicolon' ? ';' : options.delimiter ?? sniffDelimiter(decode(firstChunk).replace(/^\uFEFF/, ''));
  if (![',', ';', '\t', '|'].includes(delimiter)) {
    throw new KubikiError('validation-failed', `delimiter must be one of , ; | or tab, not ${JSON.stringify(delimiter)}`, { issues: [{ field: 'delimiter', rule: 'enum', message: 'delimiter must be , ; | or tab' }] });
  }
  async function* text(): AsyncGenerator<Buffer | string> {
    if (!first.done) yield encoding === 'utf-8' ? firstChunk : decode(firstChunk);
    // Windows-1251 is one byte a character, so chunks decode on their own.
    for await (const chunk of chunks) yield encoding === 'utf-8' ? chunk : decode(chunk);
  }
  const skipped: { line: number; message: string }[] = [];
  const parser = Readable.from(text()).pipe(parseCsv({
    delimiter, bom: true, info: true, relax_column_count: true, relax_quotes: true, skip_empty_lines: true, skip_records_with_error: true,
    on_skip: (error) => { skipped.push({ line: Number(error?.lines ?? 0), message: error?.message ?? 'unreadable line' }); return undefined; },
  }));
  const records = parser[Symbol.asyncIterator]() as AsyncIterator<{ record: string[]; info: { lines: number } }>;
  const headerRow = options.headerRow ?? 1;
  let head: { record: string[]; line: number } | undefined;
  while (!head) {
    const next = await records.next();
    if (next.done) break;
    const line = next.value.info.lines - next.value.record.reduce((n, c) => n + (c.match(/\n/g)?.length ?? 0), 0);
    if (line >= headerRow) head = { record: next.value.record, line };
  }
  if (!head) throw new KubikiError('import-file-invalid', 'the file has no header line (the first line names the columns)', { issues: [{ field: 'file', rule: 'header', message: 'no header line' }] });
  const columns = header(head.record);
  async function* rows(): AsyncGenerator<SourceRow> {
    for (;;) {
      const next = await records.next();
      while (skipped.length) {
        const s = skipped.shift()!;
        yield { line: s.line, cells: [], problem: s.message };
      }
      if (next.done) return;
      const { record, info } = next.value;
      const line = info.lines - record.reduce((n, c) => n + (c.match(/\n/g)?.length ?? 0), 0);
      const extra = record.length > columns.length && record.slice(columns.length).some((c) => c.trim() !== '');
      yield { line, cells: record, ...(extra ? { problem: `the line has ${record.length} cells but the header names ${columns.length} columns` } : {}) };
    }
  }
  return { header: columns, headerLine: head.line, rows: rows(), bytesRead: bytes, close: () => { input.destroy(); parser.destroy(); } };
}

async function openXlsx(input: Readable, options: SourceOptions): Promise<Source> {
  const { chunks, bytes } = counted(input);
  // Loaded when an XLSX comes: exceljs costs half a second of start-up that CSV imports and every other command need not pay.
  const { default: excel } = await import('exceljs');
  const reader = new excel.stream.xlsx.WorkbookReader(Readable.from(chunks), { sharedStrings: 'cache', styles: 'cache', hyperlinks: 'ignore', worksheets: 'emit', entries: 'ignore' });
  const sheets = reader[Symbol.asyncIterator]() as AsyncIterator<ExcelJS.stream.xlsx.WorksheetReader & { name?: string }>;
  let sheet: (ExcelJS.stream.xlsx.WorksheetReader & { name?: string }) | undefined;
  const seen: string[] = [];
  for (;;) {
    let next: IteratorResult<ExcelJS.stream.xlsx.WorksheetReader & { name?: string }>;
    try {
      next = await sheets.next();
    } catch (error) {
      throw new KubikiError('import-file-invalid', `the file is not a readable XLSX workbook: ${(error as Error).message}`, { issues: [{ field: 'file', rule: 'xlsx', message: 'not a readable XLSX workbook' }] });
    }
    if (next.done) break;
    const name = next.value.name ?? '';
    seen.push(name);
    if (!options.sheet || name === options.sheet) {
      sheet = next.value;
      break;
    }
    // Rows of a sheet not wanted still have to be read past.
    for await (const _row of next.value) { /* skipped */ }
  }
  if (!sheet) {
    throw new KubikiError('import-file-invalid', options.sheet ? `the workbook has no sheet "${options.sheet}" (it has: ${seen.join(', ') || 'none'})` : 'the workbook has no worksheet', { issues: [{ field: 'sheet', rule: 'exists', message: 'no such sheet' }] });
  }
  const rowsOf = sheet[Symbol.asyncIterator]() as AsyncIterator<ExcelJS.Row>;
  const headerRow = options.headerRow ?? 1;
  let head: { cells: unknown[]; line: number } | undefined;
  while (!head) {
    const next = await rowsOf.next();
    if (next.done) break;
    const values = (next.value.values as unknown[]).slice(1).map(plainCell);
    if (next.value.number >= headerRow && values.some((v) => v !== undefined && cellText(v).trim() !== '')) head = { cells: values, line: next.value.number };
  }
  if (!head) throw new KubikiError('import-file-invalid', 'the worksheet has no header row (the first row names the columns)', { issues: [{ field: 'file', rule: 'header', message: 'no header row' }] });
  const columns = header(head.cells);
  async function* rows(): AsyncGenerator<SourceRow> {
    for (;;) {
      const next = await rowsOf.next();
      if (next.done) return;
      const cells = (next.value.values as unknown[]).slice(1).map(plainCell);
      if (cells.every((c) => c === undefined || (typeof c === 'string' && c.trim() === ''))) continue;
      const extra = cells.length > columns.length && cells.slice(columns.length).some((c) => c !== undefined && cellText(c).trim() !== '');
      yield { line: next.value.number, cells, ...(extra ? { problem: `the row has values beyond the ${columns.length} named columns` } : {}) };
    }
  }
  return { header: columns, headerLine: head.line, rows: rows(), bytesRead: bytes, close: () => input.destroy() };
}

/** Opens a file's rows; the header is read before this resolves. */
export async function openSource(input: Readable, options: SourceOptions): Promise<Source> {
  return options.format === 'xlsx' ? openXlsx(input, options) : openCsv(input, options);
}
