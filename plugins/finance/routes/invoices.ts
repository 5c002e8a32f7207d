import { defineRoute, entityInput, entityRecord, KubikiError, optionalBody, type PluginContext } from 'kubiki/plugin';
import type { PostedEntry } from '../ledger.ts';
import { createdRecord, changedRecord, day, postedEntry, recordParams } from '../schemas.ts';
import { changed, created, ifMatch, noContent, patchBody, requestIdOf } from './http.ts';

const invoiceParams = recordParams('finance.invoices');
const invoice = entityRecord('finance.invoices');

/** The answer of a transition's finance action, or a clear refusal when an edited lifecycle dropped it. */
function outputOf<T>(result: { output?: unknown; transition: string }, action: string): T {
  if (result.output === undefined || result.output === null) {
    throw new KubikiError('config-invalid', `the published finance.invoice-lifecycle's "${result.transition}" transition no longer runs ${action}`);
  }
  return result.output as T;
}

/**
 * Invoices: drafts are created and edited through these routes (the generic entity routes read
 * them). Their states are the lifecycle finance.invoice-lifecycle: posting (numbers a draft, writes
 * its journal entry) and cancelling (reverses it) are its transitions, taken here as
 * POST …/transitions/{name} takes them, so an analyst's edit of the lifecycle applies to both.
 */
export function invoiceRoutes(ctx: PluginContext): void {
  ctx.route(defineRoute<unknown, unknown, Record<string, unknown> | undefined>({
    method: 'post', path: '/invoices', operationId: 'createInvoice', permission: 'finance.invoices.create',
    summary: 'Create a draft invoice; its totals follow its lines',
    description: 'number, subtotal, vatTotal, total, paidAmount and entry are computed (400 rule read-only); an invoice starts as a draft (status "posted" and the like answer 409 transition-required).',
    errors: ['reference-not-found', 'transition-required'],
    schemas: { body: optionalBody(entityInput('finance.invoices')), responses: { 201: createdRecord('finance.invoices', 'The draft') } },
    async handler({ body = {}, principal }, http) {
      // The repository refuses computed fields and a locked status; the totals are computed in the write.
      created(http, 'invoices', await ctx.repository('finance.invoices').create(body, { actor: principal, requestId: requestIdOf(http) }));
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, Record<string, unknown> | undefined>({
    method: 'patch', path: '/invoices/:id', operationId: 'updateInvoice', permission: 'finance.invoices.update',
    summary: 'Change a draft invoice', description: 'A posted or paid invoice keeps only dueDate and notes open, a cancelled one nothing: other fields answer 409 document-locked naming the field (cancel it and issue a new one); status answers 409 transition-required. If-Match: the version you read.',
    errors: ['not-found', 'document-locked', 'transition-required', 'version-mismatch', 'precondition-malformed', 'reference-not-found'],
    schemas: { params: invoiceParams, body: optionalBody(patchBody('finance.invoices')), responses: { 200: changedRecord('finance.invoices', 'The draft as changed') } },
    async handler({ params: { id }, body = {}, principal }, http) {
      changed(http, await ctx.repository('finance.invoices').update(id, body, { actor: principal, requestId: requestIdOf(http), expectedVersion: ifMatch(http) }));
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'delete', path: '/invoices/:id', operationId: 'deleteInvoice', permission: 'finance.invoices.delete',
    summary: 'Delete a draft invoice', description: 'A posted, paid or cancelled invoice answers 409 document-locked: cancel a posted one instead. If-Match: the version you read.',
    errors: ['not-found', 'document-locked', 'version-mismatch', 'precondition-malformed'],
    schemas: { params: invoiceParams, responses: { 204: noContent } },
    async handler({ params: { id }, principal }, http) {
      await ctx.repository('finance.invoices').delete(id, { actor: principal, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      http.status = 204;
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'post', path: '/invoices/:id/post', operationId: 'postInvoice', permission: 'finance.invoices.post',
    summary: 'Post a draft: totals, number (INV-/SINV-<year>-…), journal entry, in one transaction',
    description: 'The post transition of finance.invoice-lifecycle (as POST …/transitions/post). Customer invoices: Dr 62 / Cr 90.01 and 68.02; supplier invoices: Dr 41 and 19 / Cr 60. A draft without organization, date or lines answers 400 naming the field; a closed period 409 finance.period-closed; an invoice that is not a draft 409 transition-not-allowed.',
    errors: ['not-found', 'transition-not-allowed', 'transition-condition-failed', 'finance.period-closed'],
    schemas: {
      params: invoiceParams,
      responses: { 200: { type: 'object', additionalProperties: false, required: ['invoice', 'entry'], properties: { invoice, entry: postedEntry } } },
    },
    async handler({ params: { id }, principal }, http) {
      const result = await ctx.transition('finance.invoices', id, 'post', { actor: principal, requestId: requestIdOf(http) });
      http.body = { invoice: result.record, entry: outputOf<{ entry: PostedEntry }>(result, 'finance.postInvoice').entry };
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, { date?: string; reason?: string } | undefined>({
    method: 'post', path: '/invoices/:id/cancel', operationId: 'cancelInvoice', permission: 'finance.invoices.post',
    summary: 'Cancel a draft, or a posted unpaid invoice with a reversal entry',
    description: 'The cancel transition of finance.invoice-lifecycle (as POST …/transitions/cancel with this body as its input). The reversal is dated `date` (default today); a paid, partly paid or cancelled invoice answers 409 transition-not-allowed.',
    errors: ['not-found', 'conflict', 'transition-not-allowed', 'transition-condition-failed', 'finance.period-closed'],
    schemas: {
      params: invoiceParams,
      body: optionalBody({
        type: 'object',
        properties: { date: day('The reversal\'s date (default today)'), reason: { type: 'string', maxLength: 1000, description: 'Goes into the reversal\'s memo' } },
      }),
      responses: {
        200: {
          type: 'object', additionalProperties: false, required: ['invoice'],
          properties: { invoice, reversal: { ...postedEntry, description: 'The reversal entry (only when a posted invoice was cancelled)' } },
        },
      },
    },
    async handler({ params: { id }, body, principal }, http) {
      const result = await ctx.transition('finance.invoices', id, 'cancel', { actor: principal, input: body ?? {}, requestId: requestIdOf(http) });
      const { reversal } = outputOf<{ reversal?: PostedEntry }>(result, 'finance.cancelInvoice');
      http.body = { invoice: result.record, ...(reversal ? { reversal } : {}) };
    },
  }));
}
