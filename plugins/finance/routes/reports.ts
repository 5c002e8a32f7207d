import { defineRoute, sendCsv, type PluginContext } from 'kubiki/plugin';
import type { Report, Reports, RangeQuery } from '../reports.ts';
import { columns, day, limit, money, nullable, reportFormat, reportResponse, row, uuid, type JsonSchema } from '../schemas.ts';
import type { Http } from './http.ts';

interface FormatQuery { format?: 'json' | 'csv'; bom?: boolean; delimiter?: string }

const query = (properties: Record<string, JsonSchema>, required: string[] = []): JsonSchema => ({
  type: 'object', additionalProperties: false, ...(required.length ? { required } : {}), properties: { ...properties, ...reportFormat },
});
const range = {
  from: day('Movements from this day (default: from the first posting)'),
  to: day('Up to and including this day (default: asOf, else today)'),
  asOf: day('Same as to, when to is not given'),
};
const report = (name: string): JsonSchema => ({ const: name });
const accountType = { enum: ['asset', 'liability', 'equity', 'income', 'expense'] };

const TB_COLUMNS = ['account', 'name', 'type', 'openingDebit', 'openingCredit', 'debit', 'credit', 'closingDebit', 'closingCredit'];
const TB_AMOUNTS = Object.fromEntries(TB_COLUMNS.slice(3).map((c) => [c, money]));
const trialBalance: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['report', 'from', 'to', 'columns', 'rows', 'totals', 'balanced'],
  properties: {
    report: report('trial-balance'), from: nullable(day('null: from the first posting')), to: day('The last day'), columns: columns(TB_COLUMNS),
    rows: { type: 'array', description: 'One per account with movements, by code', items: row({ account: { type: 'string' }, name: { type: 'string' }, type: accountType, ...TB_AMOUNTS }) },
    totals: row(TB_AMOUNTS),
    balanced: { type: 'boolean', description: 'Debits equal credits, in the period and closing' },
  },
};

const GL_COLUMNS = ['date', 'entry', 'memo', 'source', 'organization', 'debit', 'credit', 'balance'];
const generalLedger: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['report', 'account', 'from', 'to', 'columns', 'rows', 'opening', 'debit', 'credit', 'closing', 'lineCount', 'truncated'],
  properties: {
    report: report('general-ledger'),
    account: row({ id: uuid('Account id'), code: { type: 'string' }, name: { type: 'string' }, type: accountType }),
    from: nullable(day('null: from the first posting')), to: day('The last day'), columns: columns(GL_COLUMNS),
    rows: {
      type: 'array', description: 'The account\'s lines in date order, with the running balance (debit − credit)',
      items: row({
        date: day('The posting date'), entry: uuid('The journal entry'), memo: { type: 'string' },
        source: { type: 'string', description: '<entity>/<id> of the source document, or empty' },
        organization: { type: 'string', description: 'The line\'s base.organizations id, or empty' }, debit: money, credit: money, balance: money,
      }),
    },
    opening: money, debit: money, credit: money, closing: money,
    lineCount: { type: 'integer', minimum: 0, description: 'Lines in the range' },
    truncated: { type: 'boolean', description: 'More lines than `limit`: rows holds the first ones, the sums are over all' },
  },
};

const SECTION_COLUMNS = ['section', 'account', 'name', 'amount'];
const profitAndLoss: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['report', 'from', 'to', 'columns', 'rows', 'income', 'expenses', 'netProfit'],
  properties: {
    report: report('profit-and-loss'), from: nullable(day('null: from the first posting')), to: day('The last day'), columns: columns(SECTION_COLUMNS),
    rows: { type: 'array', description: 'Income accounts, then expense accounts, by code', items: row({ section: { enum: ['income', 'expense'] }, account: { type: 'string' }, name: { type: 'string' }, amount: money }) },
    income: money, expenses: money, netProfit: { ...money, description: 'income − expenses' },
  },
};

const balanceSheet: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['report', 'asOf', 'columns', 'rows', 'assets', 'liabilities', 'equity', 'liabilitiesAndEquity', 'balanced'],
  properties: {
    report: report('balance-sheet'), asOf: day('The day of the balances'), columns: columns(SECTION_COLUMNS),
    rows: {
      type: 'array', description: 'Assets, liabilities, equity; the result not yet closed is an equity row with an empty account',
      items: row({ section: { enum: ['asset', 'liability', 'equity'] }, account: { type: 'string' }, name: { type: 'string' }, amount: money }),
    },
    assets: money, liabilities: money, equity: money, liabilitiesAndEquity: money,
    balanced: { type: 'boolean', description: 'assets = liabilities + equity' },
  },
};

const BUCKETS = ['notDue', 'days0to30', 'days31to60', 'days61to90', 'days90plus', 'total'];
const BUCKET_AMOUNTS = Object.fromEntries(BUCKETS.map((c) => [c, money]));
const ageing = (name: string): JsonSchema => ({
  type: 'object', additionalProperties: false, required: ['report', 'asOf', 'columns', 'rows', 'totals'],
  properties: {
    report: report(name), asOf: day('The day outstanding amounts are aged at'), columns: columns(['organization', 'name', 'invoices', ...BUCKETS]),
    rows: {
      type: 'array', description: 'One per organization with an amount outstanding, by name; buckets are days past the due date (the invoice date without one)',
      items: row({ organization: uuid('A base.organizations id'), name: { type: 'string' }, invoices: { type: 'integer', minimum: 1 }, ...BUCKET_AMOUNTS }),
    },
    totals: row(BUCKET_AMOUNTS),
  },
});

const budget: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['report', 'budget', 'columns', 'rows', 'planned', 'actual', 'variance'],
  properties: {
    report: report('budget'), budget: { type: 'string' }, columns: columns(['account', 'name', 'month', 'planned', 'actual', 'variance']),
    rows: {
      type: 'array', description: 'One per account and month of the budget',
      items: row({ account: { type: 'string' }, name: { type: 'string' }, month: { type: 'string' }, planned: money, actual: money, variance: { ...money, description: 'actual − planned' } }),
    },
    planned: money, actual: money, variance: money,
  },
};

/** JSON, or the report's rows as CSV with the request's CSV options. */
function respond(http: Http, q: FormatQuery, result: Report): void {
  if (q.format === 'csv') sendCsv(http, result.report, result);
  else http.body = result;
}

/** The financial reports: every sum a GROUP BY in the database; JSON or CSV. */
export function reportRoutes(ctx: PluginContext, reports: Reports): void {
  const route = <Q extends FormatQuery>(path: string, spec: { operationId: string; summary: string; description?: string; query: JsonSchema; schema: JsonSchema; errors?: ('not-found')[]; build(q: Q): Promise<Report> }) => {
    ctx.route(defineRoute<unknown, Q>({
      method: 'get', path: `/reports/${path}`, operationId: spec.operationId, permission: 'finance.reports.read',
      summary: spec.summary, description: `${spec.description ? `${spec.description} ` : ''}format=csv answers the rows as text/csv (bom=false drops the UTF-8 BOM, delimiter=; for Russian Excel).`,
      ...(spec.errors ? { errors: spec.errors } : {}),
      schemas: { query: spec.query, responses: { 200: reportResponse(spec.schema, path) } },
      async handler({ query: q }, http) { respond(http, q, await spec.build(q)); },
    }));
  };

  route<RangeQuery & FormatQuery>('trial-balance', {
    operationId: 'trialBalance', summary: 'Trial balance: opening, turnover and closing per account',
    description: 'Opening balances before `from`, debit and credit turnover from..to, closing balances; `from` after `to` answers 400.',
    query: query(range), schema: trialBalance, build: (q) => reports.trialBalance(q),
  });
  route<RangeQuery & FormatQuery & { account: string; limit: number }>('general-ledger', {
    operationId: 'generalLedger', summary: 'General ledger of one account: its lines with the running balance',
    description: 'An unknown account answers 400 naming `account`.',
    query: query({ account: { type: 'string', minLength: 1, maxLength: 40, description: 'The account: a code (e.g. 51) or id' }, ...range, limit: limit(10000, 1000) }, ['account']),
    schema: generalLedger, build: (q) => reports.generalLedger(q),
  });
  route<RangeQuery & FormatQuery>('profit-and-loss', {
    operationId: 'profitAndLoss', summary: 'Profit and loss: income and expense accounts\' turnover, net profit',
    query: query(range), schema: profitAndLoss, build: (q) => reports.profitAndLoss(q),
  });
  route<{ asOf?: string; to?: string } & FormatQuery>('balance-sheet', {
    operationId: 'balanceSheet', summary: 'Balance sheet as of a day: assets = liabilities + equity',
    query: query({ asOf: day('The day of the balances (default: to, else today)'), to: day('Same as asOf, when asOf is not given') }),
    schema: balanceSheet, build: (q) => reports.balanceSheet(q),
  });
  for (const [path, kind, who] of [['receivables-ageing', 'customer', 'customers owe'], ['payables-ageing', 'supplier', 'we owe suppliers']] as const) {
    route<{ asOf?: string } & FormatQuery>(path, {
      operationId: kind === 'customer' ? 'receivablesAgeing' : 'payablesAgeing', summary: `Ageing: what ${who}, by days past due, per organization`,
      description: 'As of `asOf` (default today): invoices dated by then, allocations dated by then.',
      query: query({ asOf: day('The day to age at (default today)') }), schema: ageing(path), build: (q) => reports.ageing(kind, q),
    });
  }
  route<{ budget: string } & FormatQuery>('budget', {
    operationId: 'budgetReport', summary: 'Budget against actual movements, per account and month',
    description: 'A budget without lines answers 404.', errors: ['not-found'],
    query: query({ budget: { type: 'string', minLength: 1, maxLength: 100, description: 'The budget name (finance.budgets `budget`)' } }, ['budget']),
    schema: budget, build: (q) => reports.budget(q),
  });
}
