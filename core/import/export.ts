import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { KubikiError, fieldError } from '../errors.ts';
import { toCsv, type CsvOptions } from '../csv/csv-writer.ts';
import type { Principal } from '../auth/principal.ts';
import type { EntityRepository, ListResult } from '../entities/entity-repository.ts';
import type { EntityDefinition } from '../entities/entity-definition.ts';
import type { ApiRecord } from '../entities/record-codec.ts';

// Export of an entity's records — declared and custom fields — as CSV or XLSX, a page at a time
// (keyset pagination), so a large table streams out in flat memory. Columns are field names, so
// the file imports back as it is (arrays as `a;b`, the CSV formula guard read back by the importer).

export type ExportFormat = 'csv' | 'xlsx';

export interface ExportOptions {
  format: ExportFormat;
  /** Only these fields (id always comes first). */
  fields?: string[];
  /** List filters as the list API takes them (`status=active`, `createdAt[gte]=…`, `q=`). */
  filters: Record<string, string>;
  csv: CsvOptions;
}

const PAGE = 500;
const SYSTEM_COLUMNS = ['version', 'createdAt', 'updatedAt', 'createdBy', 'updatedBy'];

/** The columns of an export: id, the entity's fields (custom ones included), then the system fields. */
export function exportColumns(entity: EntityDefinition, fields?: string[]): string[] {
  if (fields) {
    for (const f of fields) {
      if (f !== 'id' && !entity.fields.has(f) && !SYSTEM_COLUMNS.includes(f)) throw fieldError('bad-query', 'fields', 'exists', `fields: ${f} is not a field of ${entity.qualifiedName}`);
    }
    return ['id', ...fields.filter((f) => f !== 'id')];
  }
  return ['id', ...entity.fields.keys(), ...SYSTEM_COLUMNS];
}

/** A value as a CSV cell: arrays of scalars as `a;b` (what the importer splits), objects as JSON. */
function csvValue(value: unknown): unknown {
  if (Array.isArray(value) && value.every((v) => typeof v !== 'object' || v === null)) return value.join(';');
  if (typeof value === 'object' && value !== null) return JSON.stringify(value);
  return value;
}

const isDay = (v: unknown): v is string => typeof v === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(v);

function xlsxValue(entity: EntityDefinition, name: string, value: unknown): unknown {
  if (value === undefined || value === null) return null;
  const field = entity.fields.get(name);
  if (field?.kind === 'date' && isDay(value)) return new Date(`${value}T00:00:00Z`);
  // Decimals as numbers while a double holds them exactly (15 significant digits), else as text.
  if (field?.kind === 'decimal' && typeof value === 'string' && value.replace(/[-.]/g, '').replace(/^0+/, '').length <= 15) return Number(value);
  return csvValue(value);
}

async function write(out: Writable, chunk: string | Buffer): Promise<void> {
  if (!out.write(chunk)) await once(out, 'drain');
}

/** The first page, read before anything is sent: bad filters and missing permissions answer as problems. */
export async function firstPage(repo: EntityRepository, actor: Principal, options: ExportOptions): Promise<ListResult> {
  for (const name of ['limit', 'cursor', 'fields', 'expand', 'sort', 'withTotal']) {
    if (name in options.filters) throw fieldError('bad-query', name, 'unknown-parameter', `${name} is not a parameter of an export (it reads every matching record, oldest first)`);
  }
  return repo.listFromQuery({ ...options.filters, sort: 'createdAt', limit: String(PAGE) }, { actor });
}

/** Writes every matching record; resolves with how many. `out` is ended. */
export async function writeExport(repo: EntityRepository, actor: Principal, options: ExportOptions, out: Writable, first?: ListResult): Promise<number> {
  const entity = repo.entity;
  const columns = exportColumns(entity, options.fields);
  let page = first ?? await firstPage(repo, actor, options);
  let count = 0;
  const pages = async function* (): AsyncGenerator<ApiRecord[]> {
    for (;;) {
      yield page.data;
      if (!page.next) return;
      page = await repo.listFromQuery({ ...options.filters, sort: 'createdAt', limit: String(PAGE), cursor: page.next }, { actor });
    }
  };
  if (options.format === 'csv') {
    const header = toCsv({ columns, rows: [] }, { ...options.csv, bom: false });
    await write(out, (options.csv.bom ? '\uFEFF' : '') + header);
    for await (const records of pages()) {
      if (records.length === 0) continue;
      const rows = records.map((r) => Object.fromEntries(columns.map((c) => [c, csvValue(r[c])])));
      await write(out, toCsv({ columns, rows }, { ...options.csv, bom: false }).slice(header.length));
      count += records.length;
    }
    out.end();
    return count;
  }
  const { default: excel } = await import('exceljs');
  const workbook = new excel.stream.xlsx.WorkbookWriter({ stream: out, useStyles: true, useSharedStrings: false });
  const sheet = workbook.addWorksheet(entity.plural);
  sheet.columns = columns.map((c) => {
    const kind = entity.fields.get(c)?.kind;
    return { header: c, key: c, width: Math.min(60, Math.max(12, c.length + 2)), ...(kind === 'date' ? { style: { numFmt: 'yyyy-mm-dd' } } : {}) };
  });
  sheet.getRow(1).font = { bold: true };
  sheet.getRow(1).commit();
  for await (const records of pages()) {
    for (const r of records) sheet.addRow(columns.map((c) => xlsxValue(entity, c, r[c]))).commit();
    count += records.length;
  }
  sheet.commit();
  await workbook.commit();
  return count;
}

export function exportFormat(raw: unknown): ExportFormat {
  if (raw === undefined || raw === 'csv') return 'csv';
  if (raw === 'xlsx') return 'xlsx';
  throw new KubikiError('bad-query', `format must be csv or xlsx, not ${String(raw)}`, { issues: [{ field: 'format', rule: 'enum', message: 'format must be csv or xlsx' }] });
}
