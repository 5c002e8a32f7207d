import type { RouterContext } from '@koa/router';
import { sendCsv } from 'kubiki/plugin';
import type { StockService } from '../stock-service.ts';
import type { StockPeriods } from '../periods.ts';
import type { StockCounts } from '../counts.ts';
import type { StockReports, Report } from '../reports.ts';

/** What the routes (and workflow actions) work through. */
export interface Services {
  stock: StockService;
  periods: StockPeriods;
  counts: StockCounts;
  reports: StockReports;
}

export const requestIdOf = (http: RouterContext): string | undefined => (http.state as { requestId?: string }).requestId;

/** A report as JSON, or CSV with format=csv or Accept: text/csv. */
export function respond(http: RouterContext, report: Report, format: string | undefined): void {
  if (format === 'csv' || (format === undefined && http.get('accept').includes('text/csv'))) sendCsv(http, report.report, report);
  else http.body = report;
}
