import { definePlugin, isKubikiError, SYSTEM, type ApiRecord, type ComputeRequest, type DocumentLine, type KubikiEvent, type ListResult, type PluginContext } from 'kubiki/plugin';
import type { Knex } from 'knex';
import { customerRoutes } from './routes/customers.ts';
import { leadRoutes } from './routes/leads.ts';
import { quoteRoutes } from './routes/quotes.ts';
import { taskRoutes } from './routes/tasks.ts';
import { reportRoutes } from './routes/reports.ts';
import { mailingRoutes } from './routes/mailings.ts';

type Changes = Record<string, { before?: unknown; after?: unknown }>;
const changesOf = (event: KubikiEvent): Changes => (event.payload.changes ?? {}) as Changes;
const after = (event: KubikiEvent, field: string): unknown => changesOf(event)[field]?.after;

/**
 * Runs `work` once per outbox event: events arrive at least once, so the mark and the work commit
 * together and a redelivered event finds its mark and does nothing.
 */
async function once(ctx: PluginContext, event: KubikiEvent, work: (trx: Knex.Transaction) => Promise<void>): Promise<void> {
  await ctx.transaction(async (trx) => {
    const marked = await ctx.table('crm_event_marks', trx).insert({ event_id: event.id }).onConflict('event_id').ignore().returning('event_id');
    if (marked.length === 0) return;
    await work(trx);
  });
}

/** Document lines as stored (validated by the entity schema before any computation sees them). */
const linesOf = (lines: unknown): DocumentLine[] => (Array.isArray(lines) ? (lines as DocumentLine[]) : []);

/** A user id for the activity's owner, when the event was caused by a user. */
const ownerOf = (event: KubikiEvent): Record<string, string> => (event.actorId ? { owner: event.actorId } : {});

async function recordOrNull(ctx: PluginContext, entity: string, id: string, trx?: Knex | Knex.Transaction): Promise<ApiRecord | null> {
  try {
    return await ctx.repository(entity).get(id, { actor: SYSTEM, trx });
  } catch (error) {
    if (isKubikiError(error) && error.code === 'not-found') return null;
    throw error;
  }
}

export default definePlugin({
  setup(ctx) {
    const activities = ctx.repository('crm.activities');

    // ---- timeline entries for the CRM's own deals and quotes -----------------------------------
    ctx.on('crm.deals.created', (event) => once(ctx, event, async (trx) => {
      const stage = String(after(event, 'stage') ?? 'new');
      await ctx.table('crm_deal_stages', trx).insert({ event_id: event.id, deal_id: event.recordId, stage, previous: null, entered_at: event.createdAt });
      const amount = after(event, 'amount');
      await activities.create({
        organization: after(event, 'organization'), deal: event.recordId, kind: 'deal',
        subject: `Deal created: ${String(after(event, 'title'))}`, occurredAt: event.createdAt, outcome: stage,
        ...(amount != null ? { amount } : {}), ...(after(event, 'currency') ? { currency: after(event, 'currency') } : {}),
        ...(after(event, 'contact') ? { person: after(event, 'contact') } : {}),
        sourceEntity: 'crm.deals', sourceId: event.recordId, ...ownerOf(event),
      }, { actor: SYSTEM, trx });
    }));

    ctx.on('crm.deals.updated', async (event) => {
      const stage = changesOf(event).stage;
      if (!stage) return;
      await once(ctx, event, async (trx) => {
        await ctx.table('crm_deal_stages', trx).insert({ event_id: event.id, deal_id: event.recordId, stage: String(stage.after), previous: stage.before == null ? null : String(stage.before), entered_at: event.createdAt });
        const deal = await recordOrNull(ctx, 'crm.deals', event.recordId, trx);
        if (!deal) return;
        await activities.create({
          organization: deal.organization, deal: deal.id, kind: 'deal',
          subject: `Deal "${String(deal.title)}": ${String(stage.before ?? '—')} → ${String(stage.after)}`,
          occurredAt: event.createdAt, outcome: String(stage.after),
          ...(deal.amount != null ? { amount: deal.amount } : {}), ...(deal.currency ? { currency: deal.currency } : {}),
          sourceEntity: 'crm.deals', sourceId: deal.id, ...ownerOf(event),
        }, { actor: SYSTEM, trx });
      });
    });

    // Quote totals are computed in every write of the quote (the core's money module, the same
    // computation invoices use); a deal on a quote carries the quote's total as its amount.
    const quoteFields = ({ fields }: ComputeRequest) => {
      const t = ctx.money.totals(linesOf(fields.lines), { pricesIncludeVat: fields.pricesIncludeVat === true });
      return { subtotal: t.subtotal, vatTotal: t.vatTotal, total: t.total };
    };
    ctx.computeFields('crm.quotes', quoteFields);
    ctx.computeFields('crm.deals', async ({ fields, exec }) => {
      if (typeof fields.quote !== 'string') return {};
      const quote = await recordOrNull(ctx, 'crm.quotes', fields.quote, exec);
      return quote ? { amount: quote.total ?? null, ...(quote.currency ? { currency: quote.currency } : {}) } : {};
    });
    const quoteActivity = async (event: KubikiEvent, subject: (q: ApiRecord) => string) => once(ctx, event, async (trx) => {
      const quote = await recordOrNull(ctx, 'crm.quotes', event.recordId, trx);
      if (!quote?.organization) return;
      const deal = typeof quote.deal === 'string' && (await recordOrNull(ctx, 'crm.deals', quote.deal, trx)) ? { deal: quote.deal } : {};
      await activities.create({
        organization: quote.organization, kind: 'quote', subject: subject(quote), occurredAt: event.createdAt, outcome: String(quote.status ?? 'draft'),
        amount: quote.total ?? '0.00', ...(quote.currency ? { currency: quote.currency } : {}), ...(quote.contact ? { person: quote.contact } : {}), ...deal,
        sourceEntity: 'crm.quotes', sourceId: quote.id, ...ownerOf(event),
      }, { actor: SYSTEM, trx });
    });
    ctx.on('crm.quotes.created', async (event) => {
      await quoteActivity(event, (q) => `Quote ${String(q.number ?? '')} created`.replace('  ', ' '));
    });
    ctx.on('crm.quotes.updated', async (event) => {
      const changes = changesOf(event);
      // Deals on the quote take its new total (their computation reads the quote).
      if (changes.total || changes.currency) {
        const deals = ctx.repository('crm.deals');
        let cursor: string | null = null;
        do {
          const page: ListResult = await deals.listFromQuery({ quote: event.recordId, limit: '500', fields: 'id', ...(cursor ? { cursor } : {}) }, { actor: SYSTEM });
          for (const deal of page.data) await deals.update(deal.id, {}, { actor: SYSTEM });
          cursor = page.next;
        } while (cursor);
      }
      if (changes.status) await quoteActivity(event, (q) => `Quote ${String(q.number ?? '')} ${String(changes.status.before ?? '')} → ${String(changes.status.after)}`.replace('  ', ' '));
    });

    // Tasks are reminded at remindAt = dueAt − 1 hour (unless the same write set remindAt itself).
    const remind = async (event: KubikiEvent) => {
      const changes = changesOf(event);
      if (!changes.dueAt || changes.remindAt) return;
      const task = await recordOrNull(ctx, 'crm.tasks', event.recordId);
      if (!task) return;
      const remindAt = typeof task.dueAt === 'string' ? new Date(Date.parse(task.dueAt) - 3600_000).toISOString() : null;
      if ((task.remindAt ?? null) === remindAt || (typeof task.remindAt === 'string' && remindAt && Date.parse(task.remindAt) === Date.parse(remindAt))) return;
      await ctx.repository('crm.tasks').update(task.id, { remindAt }, { actor: SYSTEM });
    };
    ctx.on('crm.tasks.created', remind);
    ctx.on('crm.tasks.updated', remind);

    // The reminder goes to the owner's e-mail: taken from their user when the owner is set or
    // changes (unless the same write gave ownerEmail itself).
    const addressOwner = async (event: KubikiEvent) => {
      const changes = changesOf(event);
      if (!changes.owner || changes.ownerEmail) return;
      const task = await recordOrNull(ctx, 'crm.tasks', event.recordId);
      if (!task || typeof task.owner !== 'string') return;
      const email = (await ctx.userContact(task.owner))?.email;
      if (email && email !== task.ownerEmail) await ctx.repository('crm.tasks').update(task.id, { ownerEmail: email }, { actor: SYSTEM });
    };
    ctx.on('crm.tasks.created', addressOwner);
    ctx.on('crm.tasks.updated', addressOwner);

    // Printed quotes: line amounts, VAT by rate and totals computed from the lines, never stale.
    ctx.documentTotals('crm.quotes', ({ record }) => {
      const lines = linesOf(record.lines);
      const t = ctx.money.totals(lines, { pricesIncludeVat: record.pricesIncludeVat === true });
      return { ...t, lines: lines.map((l, i) => ({ ...l, ...t.lines[i] })) };
    });

    customerRoutes(ctx);
    leadRoutes(ctx);
    quoteRoutes(ctx);
    taskRoutes(ctx);
    reportRoutes(ctx);
    mailingRoutes(ctx);
  },
});

