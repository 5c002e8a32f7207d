import type { ParameterizedContext } from 'koa';
import { fieldError } from '../errors.ts';
import { DEFAULT_CSV_OPTIONS, toCsv, type CsvOptions, type CsvTable } from './csv-writer.ts';

type Query = Record<string, string | string[] | undefined>;

const DELIMITERS: Record<string, CsvOptions['delimiter']> = { ',': ',', comma: ',', ';': ';', semicolon: ';' };

function single(query: Query, name: string): string | undefined {
  const v = query[name];
  if (Array.isArray(v)) throw fieldError('bad-query', name, 'single', `${name} may be given once`);
  return v;
}

/** The CSV options of a request: `delimiter=,|;|comma|semicolon` (default `,`), `bom=true|false` (default true). */
export function csvOptionsFrom(query: Query): CsvOptions {
  const delimiter = single(query, 'delimiter');
  const bom = single(query, 'bom');
  if (delimiter !== undefined && !(delimiter in DELIMITERS)) {
    throw fieldError('bad-query', 'delimiter', 'enum', 'delimiter must be "," or ";" (also "comma", "semicolon")');
  }
  if (bom !== undefined && bom !== 'true' && bom !== 'false') throw fieldError('bad-query', 'bom', 'type', 'bom must be true or false');
  return {
    delimiter: delimiter === undefined ? DEFAULT_CSV_OPTIONS.delimiter : DELIMITERS[delimiter],
    bom: bom === undefined ? DEFAULT_CSV_OPTIONS.bom : bom === 'true',
  };
}

/** Answers with `table` as a CSV download named `<name>.csv`, written as the request's options say. */
export function sendCsv(http: ParameterizedContext, name: string, table: CsvTable): void {
  const options = csvOptionsFrom(http.query);
  // The name goes into a header: keep it to characters that need no quoting or encoding.
  const file = name.replace(/[^A-Za-z0-9._-]/g, '_') || 'export';
  http.type = 'text/csv; charset=utf-8';
  http.set('Content-Disposition', `attachment; filename="${file}.csv"`);
  http.body = toCsv(table, options);
}
