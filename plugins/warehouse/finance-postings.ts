import { SYSTEM, isKubikiError, type ApiRecord, type KubikiEvent, type PluginContext } from 'kubiki/plugin';
import { Decimal, ZERO, dec, money, tableRef, rawOf } from './util.ts';

// When finance is enabled, every done move that enters or leaves valued stock posts its value
// through finance's postingRules extension point (one journal entry per move, from the created
// event of the posting record the moves were written under): receipts Dr inventory / Cr goods received not
// invoiced, shipments Dr cost of goods sold / Cr inventory, losses and scrap to other expenses,
// surpluses to other income. A back-dated move also posts the revaluations it caused (later
// issues whose cost changed). Finance posts each event once (its idempotency key); the rule also
// refuses a move that already has entries, so a move is posted once whatever is redelivered.
// Accounts: KUBIKI_WAREHOUSE_INVENTORY_ACCOUNT (41), _GRNI_ACCOUNT (60), _COGS_ACCOUNT (90.02),
// _LOSS_ACCOUNT (91.02), _GAIN_ACCOUNT (91.01).

interface EntryInput { date: string; memo?: string; source?: { entity: string; id: string }; lines: ({ account: string; debit: string } | { account: string; credit: string })[] }

export function postingAccounts(config: Readonly<Record<string, string>>) {
  return {
    inventory: config.inventory_account ?? '41',
    grni: config.grni_account ?? '60',
    cogs: config.cogs_account ?? '90.02',
    loss: config.loss_account ?? '91.02',
    gain: config.gain_account ?? '91.01',
  };
}

/** The account on the other side of inventory for a move between valued stock and `type`. */
function counterAccount(accounts: ReturnType<typeof postingAccounts>, type: string, direction: 'in' | 'out'): string {
  switch (type) {
    case 'supplier': return accounts.grni;
    case 'customer': return accounts.cogs;
    case 'inventory-loss': return direction === 'in' ? accounts.gain : accounts.loss;
    case 'scrap': return accounts.loss;
    default: return accounts.grni;
  }
}

/** A two-line entry moving `value` into (in) or out of inventory against `counter`. */
function entry(date: string, memo: string, source: { entity: string; id: string }, inventory: string, counter: string, value: Decimal, intoInventory: boolean): EntryInput {
  const amount = money(value.abs());
  const toInventory = value.gt(0) === intoInventory;
  return {
    date, memo, source,
    lines: toInventory ? [{ account: inventory, debit: amount }, { account: counter, credit: amount }] : [{ account: counter, debit: amount }, { account: inventory, credit: amount }],
  };
}

export function movePostingRule(ctx: PluginContext) {
  const accounts = postingAccounts(ctx.config);
  const moves = tableRef(ctx, 'warehouse_moves');
  const locations = tableRef(ctx, 'warehouse_locations');
  return {
    name: 'warehouse-moves',
    // One posting record per call of the stock layer: its created event carries all its moves.
    entity: 'warehouse.postings',
    async when(event: KubikiEvent, record: ApiRecord): Promise<boolean> {
      if (!event.type.endsWith('.created') || (Number(record.valued ?? 0) === 0 && Number(record.revalued ?? 0) === 0)) return false;
      // Once per move, whatever is redelivered: not when its first valued move has entries already.
      const first = await ctx.table('warehouse_moves').where({ posting: record.id }).whereNot('valuation', 'none').orderBy('seq').first('id');
      if (!first) return Number(record.revalued ?? 0) > 0;
      try {
        const posted = await ctx.repository('finance.entries').listFromQuery({ sourceEntity: 'warehouse.moves', sourceId: first.id, limit: '1', fields: 'id' }, { actor: SYSTEM });
        return posted.data.length === 0;
      } catch (error) {
        if (isKubikiError(error)) return false;
        throw error;
      }
    },
    async entries(record: ApiRecord): Promise<EntryInput[]> {
      const out: EntryInput[] = [];
      const rows: { id: string; date: string; kind: string; quantity: string; memo: string | null; valuation: string; value: string | null; from_type: string; to_type: string }[] = (await rawOf(ctx)(
        `select m.id, m.date::text as date, m.kind, m.quantity, m.memo, m.valuation, m.value, lf.type as from_type, lt.type as to_type
         from ${moves} m join ${locations} lf on lf.id = m."fromLocation" join ${locations} lt on lt.id = m."toLocation"
         where m.posting = ? and m.valuation <> 'none' order by m.seq`,
        [record.id],
      )).rows;
      for (const m of rows) {
        const value = dec(m.value);
        if (value.isZero()) continue;
        const direction = m.valuation === 'in' ? 'in' : 'out';
        const other = direction === 'in' ? m.from_type : m.to_type;
        out.push(entry(m.date, `Stock ${m.kind} ${m.quantity}${m.memo ? `: ${m.memo}` : ''}`, { entity: 'warehouse.moves', id: m.id }, accounts.inventory, counterAccount(accounts, other, direction), value, direction === 'in'));
      }
      // Revaluations the posting's (back-dated) moves caused, per causing move, date and account.
      const revals: { caused_by: string; date: string; valuation: string; other: string; delta: string }[] = (await rawOf(ctx)(
        `select r.caused_by, r.date::text as date, m.valuation, case when m.valuation = 'in' then lf.type else lt.type end as other, sum(r.delta) as delta
         from ${tableRef(ctx, 'warehouse_revaluations')} r join ${moves} m on m.id = r.move_id
         join ${locations} lf on lf.id = m."fromLocation" join ${locations} lt on lt.id = m."toLocation"
         where r.caused_by in (select id from ${moves} where posting = ?) group by r.caused_by, r.date, m.valuation, 4 order by r.date`,
        [record.id],
      )).rows;
      for (const r of revals) {
        const delta = dec(r.delta);
        if (delta.eq(ZERO)) continue;
        const dir = r.valuation === 'in' ? 'in' : 'out';
        // An issue that costs more takes more out of inventory; an entry that is worth more puts more in.
        out.push(entry(r.date, 'Stock revaluation after a back-dated move', { entity: 'warehouse.moves', id: r.caused_by }, accounts.inventory, counterAccount(accounts, r.other, dir), delta, dir === 'in'));
      }
      return out;
    },
  };
}
