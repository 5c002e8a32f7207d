import type { Knex } from 'knex';
import { definePlugin, KubikiError, fieldError } from 'kubiki/plugin';
import { Ledger } from './ledger.ts';
import { Documents, invoiceTotals } from './documents.ts';
import { PostingRules } from './posting-rules.ts';
import { Reports } from './reports.ts';
import { Decimal, isUuid } from './util.ts';
import { accountRoutes } from './routes/accounts.ts';
import { bankRoutes } from './routes/bank.ts';
import { entryRoutes } from './routes/entries.ts';
import { invoiceRoutes } from './routes/invoices.ts';
import { paymentRoutes } from './routes/payments.ts';
import { periodRoutes } from './routes/periods.ts';
import { postingRuleRoutes } from './routes/posting-rules.ts';
import { reportRoutes } from './routes/reports.ts';

export type { PostingRule } from './posting-rules.ts';

export default definePlugin({
  async setup(ctx) {
    const ledger = new Ledger(ctx);
    const docs = new Documents(ctx, ledger);
    const rules = new PostingRules(ctx, ledger);

    // ── Posting rules (extension point): heard as they are contributed, before and after this setup ──
    await rules.start();

    // ── Routes (declared: params, query and body are checked before each handler) ─────────────
    entryRoutes(ctx, ledger);
    periodRoutes(ctx);
    accountRoutes(ctx);
    invoiceRoutes(ctx);
    paymentRoutes(ctx, docs);
    bankRoutes(ctx);
    reportRoutes(ctx, new Reports(ctx));
    postingRuleRoutes(ctx, rules);

    // ── Invoices and payments are documents: their states and transitions are the lifecycles in
    // workflows/ (invoice-lifecycle.yaml, payment-lifecycle.yaml), which lock posted documents from
    // people and refuse status writes; the fields finance computes are `readOnly` in the entity
    // schemas, so the repository refuses them on every untrusted write. A draft's totals follow
    // its lines; a draft has no number, entry or payments yet. Posting fixes them all.
    ctx.computeFields('finance.invoices', ({ fields }) => {
      if (fields.status !== undefined && fields.status !== 'draft') return {};
      const unposted = { number: null, paidAmount: null, entry: null };
      if (!Array.isArray(fields.lines) || fields.lines.length === 0) return { ...unposted, subtotal: null, vatTotal: null, total: null };
      const t = invoiceTotals(ctx, fields);
      return { ...unposted, subtotal: t.subtotal, vatTotal: t.vatTotal, total: t.total };
    });
    ctx.computeFields('finance.payments', ({ fields }) => (fields.status !== undefined && fields.status !== 'draft' ? {} : { unallocated: null, entry: null }));

    // ── Printing: computed values for templates/finance/invoice.hbs ────────────────────────────
    ctx.documentTotals('finance.invoices', ({ record }) => {
      const t = invoiceTotals(ctx, record);
      return {
        lines: t.lines, subtotal: t.subtotal, vatTotal: t.vatTotal, total: t.total,
        // Lines with their net amounts, for the taxLines helper (VAT on top, `included=false`).
        taxBase: t.lines.map((l) => ({ amount: l.net, vatRate: l.taxRate })),
        vatLines: t.vat.map((v) => ({ ...v, rate: v.rate === 'exempt' ? 'none' : v.rate })),
        due: record.total ? sub(String(record.total), String(record.paidAmount ?? '0')) : t.total,
      };
    });

    // ── The customer's balance on the CRM customer card (finance enhances crm: set up once crm's point exists) ──
    await ctx.contribute('crm.customerFacts', {
      name: 'finance',
      async facts(organizationId: string) {
        const open = ctx.table('finance_invoices').where({ organization: organizationId, kind: 'customer' }).whereIn('status', ['posted', 'partlyPaid']);
        const [row] = await open.select(
          ctx.table('finance_invoices').client.raw('coalesce(sum(total - coalesce("paidAmount", 0)), 0) as "openBalance"'),
          ctx.table('finance_invoices').client.raw('coalesce(sum(case when "dueDate" < current_date then total - coalesce("paidAmount", 0) end), 0) as overdue'),
          ctx.table('finance_invoices').client.raw('count(*)::int as "openInvoices"'),
        ) as { openBalance: string; overdue: string; openInvoices: number }[];
        return { openBalance: new Decimal(row.openBalance).toFixed(2), overdue: new Decimal(row.overdue).toFixed(2), openInvoices: row.openInvoices };
      },
    });

    // ── Document moments: the lifecycles' transitions run these in their own transaction, right
    // after the state change (POST …/transitions/{name}, and finance's …/post and …/cancel routes,
    // which take the same transitions). finance.postInvoice is also a workflow step's action.
    ctx.workflowAction('postInvoice', {
      description: 'Posts a draft finance invoice: the post transition of finance.invoice-lifecycle, or a callAction step ({invoice: id}); returns its number and total',
      async handler(input, { trx, actor, requestId }) {
        const moment = momentOf(input);
        if (moment) {
          const { invoice, entry } = await docs.invoicePosted(moment.id, actor, trx as Knex.Transaction, requestId);
          return { invoice: invoice.id, number: invoice.number, total: invoice.total, entry };
        }
        if (!isUuid(input.invoice)) throw fieldError('validation-failed', 'invoice', 'format', 'invoice must be a finance.invoices id');
        // In the step's transaction: the posting commits exactly once, with the step.
        const { invoice } = await docs.postInvoiceInStep(String(input.invoice), trx as Knex.Transaction);
        return { invoice: invoice.id, number: invoice.number, total: invoice.total };
      },
    });
    ctx.workflowAction('cancelInvoice', {
      description: 'The cancel transition of finance.invoice-lifecycle: reverses a posted invoice\'s entry ({date?, reason?})',
      async handler(input, { trx, actor, requestId }) {
        const moment = requireMoment(input, 'cancelInvoice', 'POST /api/finance/invoices/{id}/cancel');
        return docs.invoiceCancelled(moment.id, moment.from, moment.input as { date?: string; reason?: string }, actor, trx as Knex.Transaction, requestId);
      },
    });
    ctx.workflowAction('postPayment', {
      description: 'The post transition of finance.payment-lifecycle: writes the payment\'s entry and allocates it ({allocations?})',
      async handler(input, { trx, actor, requestId }) {
        const moment = requireMoment(input, 'postPayment', 'POST /api/finance/payments/{id}/post');
        const { entry, invoices } = await docs.paymentPosted(moment.id, moment.input as { allocations?: { invoice: string; amount: string }[] }, actor, trx as Knex.Transaction, requestId);
        return { entry, invoices };
      },
    });
  },
});

/** What a lifecycle transition hands its action: `{record, input, transition: {name, from, to}}`. */
interface Moment { id: string; from: string; input: Record<string, unknown> }
function momentOf(input: Record<string, unknown>): Moment | undefined {
  const record = input.record as { id?: unknown } | undefined;
  const transition = input.transition as { from?: unknown } | undefined;
  if (!record || typeof record !== 'object' || !isUuid(record.id) || !transition || typeof transition !== 'object') return undefined;
  return { id: record.id, from: String(transition.from), input: (input.input ?? {}) as Record<string, unknown> };
}
function requireMoment(input: Record<string, unknown>, action: string, route: string): Moment {
  const moment = momentOf(input);
  if (!moment) throw new KubikiError('validation-failed', `finance.${action} runs as a lifecycle transition's action; a workflow takes the transition (or calls ${route})`);
  return moment;
}

const sub = (a: string, b: string) => new Decimal(a).minus(b).toFixed(2);
