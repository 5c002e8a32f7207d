/** A table to write as CSV: the header is `columns`, each row gives its cells by column name. */
export interface CsvTable {
  columns: readonly string[];
  rows: readonly Record<string, unknown>[];
}

export interface CsvOptions {
  /** `,` (RFC 4180) or `;`, which Excel expects where the decimal separator is a comma (ru-RU). */
  delimiter: ',' | ';';
  /** A leading UTF-8 byte order mark: without it Excel reads the file as cp1251 and Cyrillic turns to mojibake. */
  bom: boolean;
}

export const DEFAULT_CSV_OPTIONS: CsvOptions = { delimiter: ',', bom: true };

/** A plain decimal number as JSON and the reports give them ("-300.00", "1e3" is not one). */
const NUMBER = /^-?\d+(\.\d+)?$/;
/**
 * What Excel, LibreOffice and Google Sheets take for the start of a formula (OWASP's list). A text
 * cell starting so — `=HYPERLINK(…)`, `@SUM(…)`, `+7 495 …` — gets a leading apostrophe, which
 * spreadsheets treat as "this is text". Numbers are left alone, so "-300.00" stays a number: a
 * plain number cannot run anything.
 */
const FORMULA_START = /^[=+\-@\t\r]/;

function text(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean') return String(value);
  if (value instanceof Date) return value.toISOString();
  return JSON.stringify(value);
}

function cell(value: unknown, delimiter: string): string {
  let s = text(value);
  if (typeof value === 'string' && FORMULA_START.test(s) && !NUMBER.test(s)) s = `'${s}`;
  // RFC 4180: a field holding the delimiter, a quote or a line break is quoted, quotes doubled.
  return s.includes(delimiter) || /["\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

/** RFC 4180 CSV: a header line, CRLF line ends (also after the last row). */
export function toCsv(table: CsvTable, options: Partial<CsvOptions> = {}): string {
  const { delimiter, bom } = { ...DEFAULT_CSV_OPTIONS, ...options };
  const line = (cells: unknown[]) => cells.map((v) => cell(v, delimiter)).join(delimiter) + '\r\n';
  return (bom ? '\uFEFF' : '') + line([...table.columns]) + table.rows.map((r) => line(table.columns.map((c) => r[c]))).join('');
}
