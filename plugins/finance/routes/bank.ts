import { defineRoute, type PluginContext } from 'kubiki/plugin';
import { importStatement } from '../bank.ts';
import { money, nullable, row, timestamp, uuid, type JsonSchema } from '../schemas.ts';
import { requestIdOf } from './http.ts';

const line: JsonSchema = { type: 'integer', minimum: 1, description: 'The line of the statement (the header is line 1)' };

const imported: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['created', 'matched', 'unmatched', 'duplicates'],
  properties: {
    created: { type: 'integer', minimum: 0, description: 'Draft payments created' },
    matched: {
      type: 'array', description: 'Rows matched to an open invoice, the payment proposing that allocation',
      items: row({
        line, payment: uuid('The draft payment'), invoice: uuid('The invoice'), number: { type: 'string' }, amount: money, allocated: money,
        by: { enum: ['reference', 'amount'], description: 'reference: the invoice number is in the reference; amount: the counterparty\'s only open invoice of that amount' },
      }),
    },
    unmatched: { type: 'array', description: 'Rows imported as payments without an allocation', items: row({ line, payment: uuid('The draft payment'), amount: money, reason: { type: 'string' } }) },
    duplicates: {
      type: 'array', description: 'Rows imported before (this statement or an overlapping one): skipped',
      items: row({
        line, payment: { ...nullable(uuid()), description: 'The payment made of it then; null when that draft was deleted' },
        importedLine: { ...nullable(line), description: 'Its line in the statement it came with' }, importedAt: nullable(timestamp),
      }),
    },
  },
};

/** Bank statement import: each row a draft payment, matched to open invoices where it can be. */
export function bankRoutes(ctx: PluginContext): void {
  ctx.route(defineRoute<unknown, unknown, { csv: string }>({
    method: 'post', path: '/bank-statements', operationId: 'importBankStatement', permission: 'finance.bankStatements.import',
    summary: 'Import a bank statement (CSV) as draft payments',
    description: 'The CSV has a header line naming at least date and amount (also reference/purpose, counterpartyInn/inn, counterpartyName/name, direction, id); `,` or `;` separated, dates YYYY-MM-DD or DD.MM.YYYY, amounts 1234.50 or -99,90. Every bad row is reported (csv.<line>.<column>) and then nothing is imported. Rows imported before are skipped as duplicates. 201 when payments were created, 200 when every row was a duplicate.',
    schemas: {
      body: {
        type: 'object', required: ['csv'],
        properties: { csv: { type: 'string', minLength: 1, description: 'The statement as CSV text with a header line; at most 5,000 rows' } },
      },
      responses: { 201: imported, 200: { description: 'Every row had been imported before: nothing created', schema: imported } },
    },
    async handler({ body, principal }, http) {
      const result = await importStatement(ctx, body.csv, principal, requestIdOf(http));
      http.status = result.created > 0 ? 201 : 200;
      http.body = result;
    },
  }));
}
