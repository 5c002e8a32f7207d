import type { RouterContext } from '@koa/router';
import type { Knex } from 'knex';
import { definePlugin, KubikiError, isKubikiError, fieldError, SYSTEM, type PluginContext, type Principal, type ApiRecord, type KubikiEvent, type GuardedWrite } from 'kubiki/plugin';
import { Ledger, parseEntry, type EntryInput, type ParsedEntry } from './ledger.ts';
import { Documents, INVOICE_COMPUTED, PAYMENT_COMPUTED, invoiceTotals } from './documents.ts';
import { Reports, toCsv, type Report } from './reports.ts';
import { importStatement } from './bank.ts';
import { Decimal, bodyObject, dateField, elevated, isObject, isUuid, queryDate, refuseUnknown, today } from './util.ts';

/**
 * A posting rule other plugins contribute to `finance.postingRules`: when a record of `entity` is
 * created or updated and `when` says so, `entries` gives the journal entries to post (account codes,
 * decimal strings). Finance posts them once per event (idempotent on the event id), as the system,
 * with the record as their source.
 */
export interface PostingRule {
  name: string;
  entity: string;
  when(event: KubikiEvent, record: ApiRecord): boolean | Promise<boolean>;
  entries(record: ApiRecord, event: KubikiEvent): EntryInput[] | Promise<EntryInput[]>;
}

/** The ledgers of running instances, newest last (the benchmark posts through them in-process). */
export const ledgers: { ctx: PluginContext; ledger: Ledger }[] = [];

const requestIdOf = (http: RouterContext): string | undefined => (http.state as { requestId?: string }).requestId;
const bodyOf = (http: RouterContext): unknown => (http.state as { body?: unknown }).body;

function ifMatch(http: RouterContext): number | undefined {
  const h = http.get('if-match');
  if (!h) return undefined;
  const m = /^(?:W\/)?"?([0-9]+)"?$/.exec(h.trim());
  if (!m) throw new KubikiError('precondition-malformed', 'If-Match must be a record version such as "3"');
  return Number(m[1]);
}

function created(http: RouterContext, path: string, record: ApiRecord): void {
  http.status = 201;
  http.set('Location', `/api/finance/${path}/${record.id}`);
  if (record.version !== undefined) http.set('ETag', `"${record.version}"`);
  http.body = record;
}

function respond(http: RouterContext, report: Report): void {
  if (http.query.format === 'csv') {
    http.type = 'text/csv; charset=utf-8';
    http.set('Content-Disposition', `attachment; filename="${report.report}.csv"`);
    http.body = toCsv(report);
  } else if (http.query.format === undefined || http.query.format === 'json') {
    http.body = report;
  } else {
    throw fieldError('bad-query', 'format', 'enum', 'format must be json or csv');
  }
}

/** Refuses writes of computed fields (status, number, totals…) unless they keep the stored value. */
function refuseComputed(body: Record<string, unknown>, computed: string[], current: Record<string, unknown> | undefined, allowDraft: boolean): void {
  for (const f of computed) {
    if (!(f in body)) continue;
    if (allowDraft && f === 'status' && body.status === 'draft' && (!current || current.status === 'draft')) continue;
    if (current && body[f] === current[f]) continue;
    throw fieldError('validation-failed', f, 'read-only', f === 'status'
      ? 'status changes only through POST …/post and …/cancel (and payments); a draft is created and edited as a draft'
      : `${f} is computed by finance and cannot be written`);
  }
}

export default definePlugin({
  setup(ctx) {
    const ledger = new Ledger(ctx);
    const docs = new Documents(ctx, ledger);
    const reports = new Reports(ctx);
    ledgers.push({ ctx, ledger });

    // ── Posting rules (extension point) ────────────────────────────────────────────────────────
    const subscribed = new Set<string>();
    const handle = async (event: KubikiEvent) => {
      const entity = `${event.plugin}.${event.entity}`;
      const rules = ctx.contributions<PostingRule>('postingRules').filter((r) => r.entity === entity);
      if (rules.length === 0) return;
      let record: ApiRecord;
      try {
        record = await ctx.repository(entity).get(event.recordId, { actor: SYSTEM });
      } catch (error) {
        if (isKubikiError(error) && error.code === 'not-found') return;
        throw error;
      }
      for (const rule of rules) {
        if (!(await rule.when(event, record))) continue;
        const produced = await rule.entries(record, event);
        const parsed: ParsedEntry[] = produced.map((e, i) => {
          const p = parseEntry(e, `postingRules.${rule.name}.entries.${i}.`);
          return { ...p, sourceEntity: p.sourceEntity ?? entity, sourceId: p.sourceId ?? event.recordId, sourceKey: `rule:${rule.name}:${event.id}:${i}` };
        });
        if (parsed.length === 0) continue;
        const done = await ctx.table('finance_entries').whereIn('sourceKey', parsed.map((p) => p.sourceKey!)).pluck('sourceKey');
        await ledger.post(parsed.filter((p) => !done.includes(p.sourceKey)), { actor: SYSTEM });
      }
    };
    const syncRules = () => {
      for (const rule of ctx.contributions<PostingRule>('postingRules')) {
        if (!rule || typeof rule.entity !== 'string' || subscribed.has(rule.entity)) continue;
        subscribed.add(rule.entity);
        ctx.on(`${rule.entity}.created`, handle);
        ctx.on(`${rule.entity}.updated`, handle);
      }
    };
    // Contributors are set up after finance (they depend on or enhance it): subscribe once they have.
    setImmediate(syncRules);
    setInterval(syncRules, 2000).unref();

    const route = (method: 'get' | 'post' | 'patch' | 'delete', path: string, permission: string, handler: (http: RouterContext, p: Principal) => Promise<void>) =>
      ctx.route({ method, path, permission, handler: async (http, p) => { syncRules(); await handler(http, p); } });

    route('get', '/posting-rules', 'finance.entries.read', async (http) => {
      http.body = { data: ctx.contributions<PostingRule>('postingRules').map((r) => ({ name: r.name, entity: r.entity, subscribed: subscribed.has(r.entity) })) };
    });

    // ── Journal entries ────────────────────────────────────────────────────────────────────────
    route('post', '/entries', 'finance.entries.post', async (http, p) => {
      const [entry] = await ledger.post([parseEntry(bodyOf(http))], { actor: p, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', `/api/finance/entries/${entry.id}`);
      http.body = entry;
    });
    route('get', '/entries', 'finance.entries.read', async (http) => {
      const q = http.query as Record<string, string | undefined>;
      for (const key of Object.keys(q)) if (!['from', 'to', 'account', 'sourceEntity', 'sourceId', 'limit', 'cursor'].includes(key)) throw fieldError('bad-query', key, 'unknown', `unknown parameter ${key} (from, to, account, sourceEntity, sourceId, limit, cursor)`);
      const from = queryDate(q, 'from');
      const to = queryDate(q, 'to');
      const limit = q.limit === undefined ? 50 : Number(q.limit);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw fieldError('bad-query', 'limit', 'range', 'limit must be an integer 1–500');
      const query = ctx.table('finance_entries');
      if (from) query.where('date', '>=', from);
      if (to) query.where('date', '<=', to);
      if (q.sourceEntity) query.where('sourceEntity', q.sourceEntity);
      if (q.sourceId) query.where('sourceId', q.sourceId);
      if (q.account) {
        const account = await ctx.table('finance_accounts').where((w) => { w.where('code', q.account!); if (isUuid(q.account)) w.orWhere('id', q.account!); }).first('id');
        if (!account) throw fieldError('bad-query', 'account', 'exists', `no account ${q.account}`);
        query.whereIn('id', ctx.table('finance_entry_lines').where('account_id', account.id).select('entry_id'));
      }
      if (q.cursor) {
        let c: unknown;
        try { c = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')); } catch { c = undefined; }
        if (!Array.isArray(c) || typeof c[0] !== 'string' || !isUuid(c[1])) throw fieldError('bad-query', 'cursor', 'format', 'cursor must be a previous answer\'s next');
        query.where((w) => { w.where('date', '<', c[0]).orWhere((x) => x.where('date', c[0]).andWhere('id', '<', c[1])); });
      }
      query.orderBy([{ column: 'date', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(limit + 1);
      const data = await ledger.readMany(query);
      const more = data.length > limit;
      if (more) data.pop();
      const last = data[data.length - 1];
      http.body = { data, next: more && last ? Buffer.from(JSON.stringify([last.date, last.id])).toString('base64url') : null };
    });
    route('get', '/entries/:id', 'finance.entries.read', async (http) => {
      const entry = await ledger.read(http.params.id);
      if (!entry) throw new KubikiError('not-found', `finance.entries ${http.params.id} does not exist`, { extra: { entity: 'finance.entries', id: http.params.id } });
      http.body = entry;
    });
    route('post', '/entries/:id/reverse', 'finance.entries.post', async (http, p) => {
      const b = bodyObject(bodyOf(http), '{"date": "2026-01-31", "memo": "…"}');
      refuseUnknown(b, ['date', 'memo']);
      const date = dateField(b, 'date', false) ?? today();
      if (b.memo !== undefined && (typeof b.memo !== 'string' || b.memo.length > 1000)) throw fieldError('validation-failed', 'memo', 'type', 'memo must be a string of at most 1000 characters');
      const entry = await ledger.reverse(http.params.id, { date, memo: b.memo as string | undefined }, { actor: p, requestId: requestIdOf(http) });
      http.status = 201;
      http.body = entry;
    });
    const immutable = async () => {
      throw new KubikiError('conflict', 'posted journal entries are immutable: correct one with POST /api/finance/entries/{id}/reverse', { issues: [{ field: 'id', rule: 'immutable', message: 'reverse the entry instead' }] });
    };
    route('patch', '/entries/:id', 'finance.entries.read', immutable);
    route('delete', '/entries/:id', 'finance.entries.read', immutable);

    // ── Fiscal periods ─────────────────────────────────────────────────────────────────────────
    const setPeriod = (status: 'open' | 'closed') => async (http: RouterContext, p: Principal) => {
      refuseUnknown(bodyObject(bodyOf(http), '{}'), []);
      http.body = await ctx.transaction(async (trx) => {
        const row = isUuid(http.params.id) ? await ctx.table('finance_periods', trx).where({ id: http.params.id }).forUpdate().first() : undefined;
        if (!row) throw new KubikiError('not-found', `finance.periods ${http.params.id} does not exist`, { extra: { entity: 'finance.periods', id: http.params.id } });
        if (row.status === status) throw new KubikiError('conflict', `period ${row.month} is already ${status}`, { issues: [{ field: 'status', rule: status === 'closed' ? 'open' : 'closed', message: `the period is ${row.status}` }] });
        return ctx.repository('finance.periods').update(row.id, status === 'closed'
          ? { status, closedAt: new Date().toISOString(), closedBy: p.userId }
          : { status, closedAt: null, closedBy: null }, { actor: elevated(p, ['finance.periods.update']), trx, requestId: requestIdOf(http), viaTransition: true });
      });
    };
    route('post', '/periods/:id/close', 'finance.periods.close', setPeriod('closed'));
    route('post', '/periods/:id/reopen', 'finance.periods.close', setPeriod('open'));
    route('patch', '/periods/:id', 'finance.periods.update', async () => {
      throw fieldError('validation-failed', 'status', 'read-only', 'a period changes only through POST /api/finance/periods/{id}/close and /reopen');
    });
    route('delete', '/periods/:id', 'finance.periods.delete', async (http, p) => {
      const row = isUuid(http.params.id) ? await ctx.table('finance_periods').where({ id: http.params.id }).first() : undefined;
      if (row && (row.status === 'closed' || await ctx.table('finance_entries').where({ period: row.month }).first('id'))) {
        throw new KubikiError('conflict', `period ${row.month} is closed or has entries; it cannot be deleted`, { issues: [{ field: 'id', rule: 'unused', message: 'only an open, empty period can be deleted' }] });
      }
      await ctx.repository('finance.periods').delete(http.params.id, { actor: p, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      http.status = 204;
    });

    // ── Accounts: generic REST, but an account with postings is never deleted ──────────────────
    route('delete', '/accounts/:id', 'finance.accounts.delete', async (http, p) => {
      if (isUuid(http.params.id) && await ctx.table('finance_entry_lines').where({ account_id: http.params.id }).first('id')) {
        throw new KubikiError('referenced', `account ${http.params.id} has journal lines; deactivate it (active: false) instead`, { extra: { referrers: [{ entity: 'finance.entries', field: 'lines.account' }] } });
      }
      await ctx.repository('finance.accounts').delete(http.params.id, { actor: p, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      http.status = 204;
    });

    // ── Invoices and payments change state only through finance's own code, whoever writes them:
    // REST, a workflow step, another plugin. Drafts stay editable; computed fields are finance's.
    const guardDocument = (computed: string[], noun: string) => ({ action, fields, current, trusted }: GuardedWrite) => {
      if (trusted) return;
      if (action === 'update' && current && current.status !== 'draft') {
        throw new KubikiError('conflict', `a ${String(current.status)} ${noun} is not edited; finance's post, cancel and payment routes change it`, { issues: [{ field: 'status', rule: 'draft', message: `the ${noun} is ${String(current.status)}` }] });
      }
      for (const f of computed) {
        if (f in fields && !(f === 'status' && fields.status === 'draft')) {
          throw fieldError('validation-failed', f, 'read-only', f === 'status' ? `a ${noun} is created as a draft; POST …/post changes its status` : `${f} is computed by finance and cannot be written`);
        }
      }
    };
    ctx.guardWrites('finance.invoices', guardDocument(INVOICE_COMPUTED, 'invoice'));
    // A draft's totals follow its lines in every write; posting fixes them with the entry it writes.
    ctx.computeFields('finance.invoices', ({ fields }) => {
      if (fields.status !== 'draft') return {};
      if (!Array.isArray(fields.lines) || fields.lines.length === 0) return { subtotal: null, vatTotal: null, total: null };
      const t = invoiceTotals(ctx, fields);
      return { subtotal: t.subtotal, vatTotal: t.vatTotal, total: t.total };
    });
    ctx.guardWrites('finance.payments', guardDocument(PAYMENT_COMPUTED, 'payment'));

    // ── Invoices ───────────────────────────────────────────────────────────────────────────────
    route('post', '/invoices', 'finance.invoices.create', async (http, p) => {
      const b = bodyObject(bodyOf(http), '{"kind": "customer", "organization": "…", "lines": [...]}');
      refuseComputed(b, INVOICE_COMPUTED, undefined, true);
      // Trusted: the body was checked above; the totals are computed in the write.
      const record = await ctx.repository('finance.invoices').create(b, { actor: p, requestId: requestIdOf(http), viaTransition: true });
      created(http, 'invoices', record);
    });
    route('patch', '/invoices/:id', 'finance.invoices.update', async (http, p) => {
      const b = bodyObject(bodyOf(http), '{"lines": [...]}');
      const record = await ctx.transaction(async (trx) => {
        const row = await docs.lock('finance_invoices', http.params.id, trx);
        if (row.status !== 'draft') throw new KubikiError('conflict', `invoice ${row.number ?? row.id} is ${row.status}: only drafts are edited (cancel a posted invoice and issue a new one)`, { issues: [{ field: 'status', rule: 'draft', message: `the invoice is ${row.status}` }] });
        refuseComputed(b, INVOICE_COMPUTED, row, true);
        return ctx.repository('finance.invoices').update(row.id, b, { actor: p, trx, requestId: requestIdOf(http), expectedVersion: ifMatch(http), viaTransition: true });
      });
      http.set('ETag', `"${record.version}"`);
      http.body = record;
    });
    route('delete', '/invoices/:id', 'finance.invoices.delete', async (http, p) => {
      await ctx.transaction(async (trx) => {
        const row = await docs.lock('finance_invoices', http.params.id, trx);
        if (row.entry) throw new KubikiError('conflict', `invoice ${row.number} was posted; cancel it instead of deleting it`, { issues: [{ field: 'status', rule: 'draft', message: `the invoice is ${row.status}` }] });
        await ctx.repository('finance.invoices').delete(row.id, { actor: p, trx, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      });
      http.status = 204;
    });
    route('post', '/invoices/:id/post', 'finance.invoices.post', async (http, p) => {
      refuseUnknown(bodyObject(bodyOf(http), '{}'), []);
      http.body = await docs.postInvoice(http.params.id, p, requestIdOf(http));
    });
    route('post', '/invoices/:id/cancel', 'finance.invoices.post', async (http, p) => {
      http.body = await docs.cancelInvoice(http.params.id, bodyOf(http), p, requestIdOf(http));
    });

    // ── Payments ───────────────────────────────────────────────────────────────────────────────
    route('post', '/payments', 'finance.payments.create', async (http, p) => {
      const b = bodyObject(bodyOf(http), '{"direction": "in", "amount": "100.00", …}');
      refuseComputed(b, PAYMENT_COMPUTED, undefined, true);
      if (b.allocations !== undefined && b.allocations !== null) docs.parseAllocations(b.allocations);
      created(http, 'payments', await ctx.repository('finance.payments').create(b, { actor: p, requestId: requestIdOf(http) }));
    });
    route('patch', '/payments/:id', 'finance.payments.update', async (http, p) => {
      const b = bodyObject(bodyOf(http), '{"amount": "100.00"}');
      const record = await ctx.transaction(async (trx) => {
        const row = await docs.lock('finance_payments', http.params.id, trx);
        if (row.status !== 'draft') throw new KubikiError('conflict', 'a posted payment is not edited', { issues: [{ field: 'status', rule: 'draft', message: `the payment is ${row.status}` }] });
        refuseComputed(b, PAYMENT_COMPUTED, row, true);
        if (b.allocations !== undefined && b.allocations !== null) docs.parseAllocations(b.allocations);
        return ctx.repository('finance.payments').update(row.id, b, { actor: p, trx, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      });
      http.set('ETag', `"${record.version}"`);
      http.body = record;
    });
    route('delete', '/payments/:id', 'finance.payments.delete', async (http, p) => {
      await ctx.transaction(async (trx) => {
        const row = await docs.lock('finance_payments', http.params.id, trx);
        if (row.status !== 'draft') throw new KubikiError('conflict', 'a posted payment is not deleted', { issues: [{ field: 'status', rule: 'draft', message: `the payment is ${row.status}` }] });
        await ctx.repository('finance.payments').delete(row.id, { actor: p, trx, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      });
      http.status = 204;
    });
    route('post', '/payments/:id/post', 'finance.payments.post', async (http, p) => {
      http.body = await docs.postPayment(http.params.id, bodyOf(http), p, requestIdOf(http));
    });
    route('post', '/payments/:id/allocate', 'finance.payments.post', async (http, p) => {
      http.body = await docs.allocatePayment(http.params.id, bodyOf(http), p, requestIdOf(http));
    });

    // ── Bank statements ────────────────────────────────────────────────────────────────────────
    route('post', '/bank-statements', 'finance.bankStatements.import', async (http, p) => {
      const result = await importStatement(ctx, bodyOf(http), http.request.type, p, requestIdOf(http));
      // 201 when payments were created; 200 when every row had been imported before.
      http.status = result.created > 0 ? 201 : 200;
      http.body = result;
    });

    // ── Reports ────────────────────────────────────────────────────────────────────────────────
    const q = (http: RouterContext) => http.query as Record<string, unknown>;
    route('get', '/reports/trial-balance', 'finance.reports.read', async (http) => respond(http, await reports.trialBalance(q(http))));
    route('get', '/reports/general-ledger', 'finance.reports.read', async (http) => respond(http, await reports.generalLedger(q(http))));
    route('get', '/reports/profit-and-loss', 'finance.reports.read', async (http) => respond(http, await reports.profitAndLoss(q(http))));
    route('get', '/reports/balance-sheet', 'finance.reports.read', async (http) => respond(http, await reports.balanceSheet(q(http))));
    route('get', '/reports/receivables-ageing', 'finance.reports.read', async (http) => respond(http, await reports.ageing('customer', q(http))));
    route('get', '/reports/payables-ageing', 'finance.reports.read', async (http) => respond(http, await reports.ageing('supplier', q(http))));
    route('get', '/reports/budget', 'finance.reports.read', async (http) => respond(http, await reports.budget(q(http))));

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

    // ── The customer's balance on the CRM customer card (when CRM is there: its extension point) ──
    try {
      ctx.contribute('crm.customerFacts', {
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
    } catch (error) {
      // No CRM plugin in this installation: nobody to show the balance to.
      if (!isKubikiError(error)) throw error;
    }

    // ── Workflow action: post an invoice from a workflow step (e.g. after a CRM deal is won) ──
    ctx.workflowAction('postInvoice', {
      description: 'Posts a draft finance invoice ({invoice: id}); returns its number and total',
      async handler(input, { trx }) {
        if (!isUuid(input.invoice)) throw fieldError('validation-failed', 'invoice', 'format', 'invoice must be a finance.invoices id');
        // In the step's transaction: the posting commits exactly once, with the step.
        const { invoice } = await docs.postInvoice(String(input.invoice), SYSTEM, undefined, trx as Knex.Transaction);
        return { invoice: invoice.id, number: invoice.number, total: invoice.total };
      },
    });
  },
});

const sub = (a: string, b: string) => new Decimal(a).minus(b).toFixed(2);
