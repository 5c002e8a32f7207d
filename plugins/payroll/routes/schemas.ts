import type { RouterContext } from '@koa/router';
import { sendCsv } from 'kubiki/plugin';
import type { Report } from '../reports.ts';

// JSON Schemas the payroll routes declare (validated before a handler runs, published in OpenAPI).

type Schema = Record<string, unknown>;

export const uuid = (description?: string): Schema => ({ type: 'string', format: 'uuid', ...(description ? { description } : {}) });
export const date = (description?: string): Schema => ({ type: 'string', format: 'date', ...(description ? { description } : {}) });
export const period: Schema = { type: 'string', pattern: '^[0-9]{4}-(0[1-9]|1[0-2])$', 'x-format-hint': 'a month as YYYY-MM, e.g. 2026-03', description: 'A month, YYYY-MM' };
export const hours: Schema = { type: 'string', pattern: '^([0-9]|1[0-9]|2[0-4])(\\.[0-9]{1,2})?$', 'x-format-hint': 'hours from 0 to 24 as a decimal string, e.g. "7.5"' };
export const entryKind: Schema = { enum: ['work', 'overtime', 'night', 'holiday', 'sick', 'vacation', 'absence'] };

/** Query parameters of report routes: output format and CSV options. */
export const csvQuery: Schema = {
  format: { enum: ['json', 'csv'], default: 'json', description: 'json (default) or csv (also with Accept: text/csv)' },
  delimiter: { enum: [',', ';', 'comma', 'semicolon'], description: 'CSV delimiter (";" for Excel set to Russian)' },
  bom: { enum: ['true', 'false'], description: 'CSV: a UTF-8 byte order mark (default true)' },
};

/** A report: JSON with columns and rows (or, with format=csv, the rows as CSV text). */
export const report = (meta: Schema = {}): Schema => ({
  description: 'The report (application/json), or CSV with format=csv or Accept: text/csv',
  schema: { type: 'object', required: ['report', 'columns', 'rows'], properties: { report: { type: 'string' }, columns: { type: 'array', items: { type: 'string' } }, rows: { type: 'array', items: { type: 'object' } }, ...meta } },
  alternatives: { 'text/csv': { type: 'string', description: 'CSV text: the header line is `columns`, then one line per row' } },
});

export const requestIdOf = (http: RouterContext): string | undefined => (http.state as { requestId?: string }).requestId;

/** A report as JSON, or CSV with format=csv or Accept: text/csv. */
export function respond(http: RouterContext, data: Report, format: string | undefined): void {
  if (format === 'csv' || (format === undefined && http.get('accept').includes('text/csv'))) sendCsv(http, data.report, { columns: data.columns, rows: data.rows });
  else http.body = data;
}
