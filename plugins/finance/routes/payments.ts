import { defineRoute, entityInput, entityRecord, KubikiError, optionalBody, type ApiRecord, type PluginContext } from 'kubiki/plugin';
import type { Documents } from '../documents.ts';
import type { PostedEntry } from '../ledger.ts';
import { allocationsInput, changedRecord, createdRecord, day, postedEntry, recordParams } from '../schemas.ts';
import { changed, created, ifMatch, noContent, patchBody, requestIdOf } from './http.ts';

const paymentParams = recordParams('finance.payments');
const payment = entityRecord('finance.payments');
const invoices = { type: 'array', items: entityRecord('finance.invoices'), description: 'The invoices whose paidAmount and status changed' };

type Allocation = { invoice: string; amount: string };

/** A draft's proposed allocations are checked as posting will use them: each invoice once, amounts above zero. */
function checkProposal(docs: Documents, record: ApiRecord): void {
  if (Array.isArray(record.allocations)) docs.allocations(record.allocations as Allocation[]);
}

/**
 * Payments (states: the lifecycle finance.payment-lifecycle): drafts are created and edited here (or imported from a bank statement); posting
 * writes Dr 51 / Cr 62 (in) or Dr 60 / Cr 51 (out) and allocates; an advance is allocated later.
 */
export function paymentRoutes(ctx: PluginContext, docs: Documents): void {
  ctx.route(defineRoute<unknown, unknown, Record<string, unknown> | undefined>({
    method: 'post', path: '/payments', operationId: 'createPayment', permission: 'finance.payments.create',
    summary: 'Create a draft payment, optionally with its proposed allocations',
    description: 'unallocated and entry are computed (400 read-only); a payment starts as a draft (status "posted" answers 409 transition-required); allocations name each invoice once with an amount above zero.',
    errors: ['reference-not-found', 'transition-required'],
    schemas: { body: optionalBody(entityInput('finance.payments')), responses: { 201: createdRecord('finance.payments', 'The draft') } },
    async handler({ body = {}, principal }, http) {
      // The repository checks the shape; the proposal's domain rules are checked on what it wrote, before the commit.
      const record = await ctx.transaction(async (trx) => {
        const r = await ctx.repository('finance.payments').create(body, { actor: principal, trx, requestId: requestIdOf(http) });
        checkProposal(docs, r);
        return r;
      });
      created(http, 'payments', record);
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, Record<string, unknown> | undefined>({
    method: 'patch', path: '/payments/:id', operationId: 'updatePayment', permission: 'finance.payments.update',
    summary: 'Change a draft payment', description: 'A posted payment answers 409 document-locked, a status 409 transition-required. If-Match: the version you read.',
    errors: ['not-found', 'document-locked', 'transition-required', 'version-mismatch', 'precondition-malformed', 'reference-not-found'],
    schemas: { params: paymentParams, body: optionalBody(patchBody('finance.payments')), responses: { 200: changedRecord('finance.payments', 'The draft as changed') } },
    async handler({ params: { id }, body = {}, principal }, http) {
      const record = await ctx.transaction(async (trx) => {
        const r = await ctx.repository('finance.payments').update(id, body, { actor: principal, trx, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
        checkProposal(docs, r);
        return r;
      });
      changed(http, record);
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'delete', path: '/payments/:id', operationId: 'deletePayment', permission: 'finance.payments.delete',
    summary: 'Delete a draft payment', description: 'A posted payment answers 409 document-locked. If-Match: the version you read.',
    errors: ['not-found', 'document-locked', 'version-mismatch', 'precondition-malformed'],
    schemas: { params: paymentParams, responses: { 204: noContent } },
    async handler({ params: { id }, principal }, http) {
      await ctx.repository('finance.payments').delete(id, { actor: principal, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      http.status = 204;
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, { allocations?: Allocation[] } | undefined>({
    method: 'post', path: '/payments/:id/post', operationId: 'postPayment', permission: 'finance.payments.post',
    summary: 'Post a draft payment and allocate it to invoices, in one transaction',
    description: 'The post transition of finance.payment-lifecycle (as POST …/transitions/post with this body as its input). `allocations` (default: the draft\'s proposal) settle posted invoices of the payment\'s organization and kind; what is left is an advance (`unallocated`). An allocation above what is still due answers 409 naming it, never clipped; a payment already posted 409 transition-not-allowed.',
    errors: ['not-found', 'conflict', 'transition-not-allowed', 'transition-condition-failed', 'reference-not-found', 'finance.period-closed'],
    schemas: {
      params: paymentParams,
      body: optionalBody({ type: 'object', properties: { allocations: allocationsInput(0) } }),
      responses: { 200: { type: 'object', additionalProperties: false, required: ['payment', 'entry', 'invoices'], properties: { payment, entry: postedEntry, invoices } } },
    },
    async handler({ params: { id }, body, principal }, http) {
      const result = await ctx.transition('finance.payments', id, 'post', { actor: principal, input: body ?? {}, requestId: requestIdOf(http) });
      const output = result.output as { entry?: PostedEntry; invoices?: ApiRecord[] } | null | undefined;
      if (!output?.entry) throw new KubikiError('config-invalid', 'the published finance.payment-lifecycle\'s "post" transition no longer runs finance.postPayment');
      http.body = { payment: result.record, entry: output.entry, invoices: output.invoices ?? [] };
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, { allocations: Allocation[]; date?: string }>({
    method: 'post', path: '/payments/:id/allocate', operationId: 'allocatePayment', permission: 'finance.payments.post',
    summary: 'Allocate (part of) a posted payment\'s advance to invoices',
    description: 'No journal entry: the advance and the invoices are on the same account. Refused (409) above the payment\'s `unallocated` or what an invoice still owes; nothing is allocated then.',
    errors: ['not-found', 'conflict', 'reference-not-found'],
    schemas: {
      params: paymentParams,
      body: { type: 'object', required: ['allocations'], properties: { allocations: allocationsInput(1), date: day('The allocation\'s date (default today; not before the payment\'s)') } },
      responses: { 200: { type: 'object', additionalProperties: false, required: ['payment', 'invoices'], properties: { payment, invoices } } },
    },
    async handler({ params: { id }, body, principal }, http) {
      http.body = await docs.allocatePayment(id, body, principal, requestIdOf(http));
    },
  }));
}
