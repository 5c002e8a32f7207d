import type { Knex } from 'knex';
import { KubikiError, isKubikiError, fieldError, lazyValidator, toFieldIssues, SYSTEM, type PluginContext, type Principal, type ApiRecord } from 'kubiki/plugin';
import { entryInput } from './schemas.ts';
import { Decimal, elevated, isUuid, money } from './util.ts';

export interface LineInput { account: string; debit?: string; credit?: string; organization?: string }
export interface EntryInput { date: string; memo?: string; source?: { entity: string; id: string }; lines: LineInput[] }

export interface ParsedLine { account: string; debit: Decimal; credit: Decimal; organization?: string }
export interface ParsedEntry {
  date: string;
  memo?: string;
  sourceEntity?: string;
  sourceId?: string;
  /** Idempotency key: a second posting with the same key is refused (unique) or skipped by callers. */
  sourceKey?: string;
  reverses?: string;
  lines: ParsedLine[];
  total: Decimal;
  /** Prefix of field names in errors (`entries.3.` in a batch). */
  prefix: string;
}

export interface PostedLine { account: string; accountId: string; debit: string; credit: string; organization?: string }
export interface PostedEntry {
  id: string; version: number; date: string; memo?: string; period: string; source?: { entity: string; id: string }; sourceKey?: string;
  reverses?: string; reversedBy?: string; total: string; lines: PostedLine[]; createdAt?: string; createdBy?: string;
}

/** Grants the posting service needs on top of the route's own permission. */
export const LEDGER_WRITES = ['finance.entries.create', 'finance.periods.create'];

/**
 * An entry of the shape `entryInput` (schemas.ts) declares — checked by the route, or by
 * `checkEntryShape` for entries posting rules produce — turned into amounts, with the checks no
 * schema can make: each line has either a debit or a credit, and the debits equal the credits.
 * Errors name the field (`prefix` is `entries.3.` in a batch).
 */
export function parseEntry(body: EntryInput, prefix = ''): ParsedEntry {
  const lines: ParsedLine[] = [];
  let debits = new Decimal(0);
  let credits = new Decimal(0);
  body.lines.forEach((l, i) => {
    const at = `${prefix}lines.${i}`;
    const debit = new Decimal(l.debit ?? 0);
    const credit = new Decimal(l.credit ?? 0);
    if (debit.isZero() === credit.isZero()) {
      const field = debit.isZero() ? `${at}.debit` : `${at}.credit`;
      throw fieldError('validation-failed', field, 'one-side', `${at} must have either a debit or a credit greater than zero, not ${debit.isZero() ? 'neither' : 'both'}`);
    }
    debits = debits.plus(debit);
    credits = credits.plus(credit);
    lines.push({ account: l.account, debit, credit, organization: l.organization });
  });
  if (!debits.equals(credits)) {
    const last = body.lines.length - 1;
    throw new KubikiError('validation-failed', `${prefix}lines do not balance: debits ${money(debits)} ≠ credits ${money(credits)} (difference ${money(debits.minus(credits).abs())})`, {
      issues: [{ field: `${prefix}lines`, rule: 'balanced', message: `debits ${money(debits)} must equal credits ${money(credits)}; the entry is off by ${money(debits.minus(credits).abs())} (last line: ${prefix}lines.${last})` }],
      extra: { debits: money(debits), credits: money(credits) },
    });
  }
  return { date: body.date, memo: body.memo, sourceEntity: body.source?.entity, sourceId: body.source?.id, lines, total: debits, prefix };
}

const entryShape = lazyValidator<EntryInput>(entryInput);

/**
 * Checks an entry that did not come through a route (a posting rule's) against the same schema
 * POST /api/finance/entries declares; 400 naming the field under `prefix`.
 */
export function checkEntryShape(value: unknown, prefix: string): EntryInput {
  const validate = entryShape();
  if (validate(value)) return value;
  const issues = toFieldIssues(validate.errors).map((i) => ({ ...i, field: i.field ? prefix + i.field : prefix.replace(/\.$/, ''), message: `${prefix}${i.message}` }));
  throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues });
}

interface AccountRow { id: string; code: string; type: string; active: boolean }

/**
 * The posting service: every journal entry (manual, invoice, payment, posting rule, bench) goes
 * through `post`. One call, one transaction: open periods locked FOR SHARE (closing one waits for
 * postings in flight), accounts and organizations resolved in one query each, a header per entry
 * through the entity repository (one statement per thousand: rows + audit + events) and the lines
 * in inserts of 5,000.
 */
export class Ledger {
  constructor(private readonly ctx: PluginContext) {}

  async post(entries: ParsedEntry[], options: { actor: Principal; trx?: Knex.Transaction; requestId?: string }): Promise<PostedEntry[]> {
    if (entries.length === 0) return [];
    if (!options.trx) return this.ctx.transaction((trx) => this.post(entries, { ...options, trx }));
    const trx = options.trx;
    const writer = options.actor === SYSTEM ? SYSTEM : elevated(options.actor, LEDGER_WRITES);
    await this.lockOpenPeriods(entries.map((e) => ({ month: e.date.slice(0, 7), field: `${e.prefix}date` })), trx);
    const accounts = await this.resolveAccounts(entries, trx);
    await this.checkOrganizations(entries, trx);

    // Headers through the repository (validated, audited, evented), a thousand per statement.
    const headers: ApiRecord[] = [];
    const repo = this.ctx.repository('finance.entries');
    for (let i = 0; i < entries.length; i += 1000) {
      headers.push(...await repo.createMany(entries.slice(i, i + 1000).map((e) => ({
        date: e.date, memo: e.memo, period: e.date.slice(0, 7), sourceEntity: e.sourceEntity, sourceId: e.sourceId, sourceKey: e.sourceKey,
        reverses: e.reverses, total: money(e.total), lineCount: e.lines.length,
      })), { actor: writer, trx, requestId: options.requestId }));
    }
    const rows = entries.flatMap((e, i) => e.lines.map((l, n) => ({
      entry_id: headers[i].id, line_no: n + 1, date: e.date, account_id: accounts.get(l.account)!.id,
      debit: l.debit.toFixed(2), credit: l.credit.toFixed(2), organization_id: l.organization ?? null,
    })));
    // Every line with its audit row (who posted it), in the posting's transaction.
    await this.ctx.journalRows('finance_entry_lines', 'entryLines').insert(rows, { actor: writer, trx, requestId: options.requestId });
    return entries.map((e, i) => ({
      id: headers[i].id, version: headers[i].version as number, date: e.date, ...(e.memo ? { memo: e.memo } : {}), period: e.date.slice(0, 7),
      ...(e.sourceEntity ? { source: { entity: e.sourceEntity, id: e.sourceId! } } : {}),
      ...(e.sourceKey ? { sourceKey: e.sourceKey } : {}), ...(e.reverses ? { reverses: e.reverses } : {}),
      total: money(e.total),
      lines: e.lines.map((l) => {
        const a = accounts.get(l.account)!;
        return { account: a.code, accountId: a.id, debit: l.debit.toFixed(2), credit: l.credit.toFixed(2), ...(l.organization ? { organization: l.organization } : {}) };
      }),
      createdAt: headers[i].createdAt as string, ...(typeof headers[i].createdBy === 'string' ? { createdBy: headers[i].createdBy as string } : {}),
    }));
  }

  /**
   * Locks the periods of `months` FOR SHARE and refuses (409) when one is closed. A month without a
   * period gets an open one (audited, as the system), created in a savepoint so a concurrent posting
   * creating the same month makes this one wait and then see its row.
   */
  async lockOpenPeriods(wanted: { month: string; field: string }[], trx: Knex.Transaction): Promise<void> {
    // Sorted: concurrent postings create missing months in one order, so they never deadlock.
    const months = [...new Set(wanted.map((w) => w.month))].sort();
    const read = async () => (await this.ctx.table('finance_periods', trx).whereIn('month', months).forShare().select('month', 'status')) as { month: string; status: string }[];
    let rows = await read();
    const missing = months.filter((m) => !rows.some((r) => r.month === m));
    if (missing.length) {
      for (const month of missing) {
        try {
          await trx.transaction((sp) => this.ctx.repository('finance.periods').create({ month, status: 'open' }, { actor: SYSTEM, trx: sp }));
        } catch (error) {
          if (!(isKubikiError(error) && error.code === 'unique-violation')) throw error;
        }
      }
      rows = await read();
    }
    const closed = rows.find((r) => r.status === 'closed');
    if (closed) {
      const w = wanted.find((x) => x.month === closed.month)!;
      throw this.ctx.error('period-closed', `the fiscal period ${closed.month} is closed: nothing can be posted on ${w.field} in it (reopen it with POST /api/finance/periods/{id}/reopen, or use a date in an open period)`, {
        issues: [{ field: w.field, rule: 'period-open', message: `period ${closed.month} is closed` }], extra: { period: closed.month },
      });
    }
  }

  private async resolveAccounts(entries: ParsedEntry[], trx: Knex.Transaction): Promise<Map<string, AccountRow>> {
    const refs = [...new Set(entries.flatMap((e) => e.lines.map((l) => l.account)))];
    const ids = refs.filter(isUuid);
    const rows: AccountRow[] = await this.ctx.table('finance_accounts', trx)
      .where((q) => { q.whereIn('code', refs); if (ids.length) q.orWhereIn('id', ids); })
      .select('id', 'code', 'type', 'active');
    const found = new Map<string, AccountRow>();
    for (const r of rows) { found.set(r.code, r); found.set(r.id, r); }
    for (const e of entries) {
      e.lines.forEach((l, i) => {
        const a = found.get(l.account);
        if (!a) throw fieldError('validation-failed', `${e.prefix}lines.${i}.account`, 'exists', `${e.prefix}lines.${i}.account: no account with code or id "${l.account}" in the chart of accounts`);
        if (!a.active) throw fieldError('validation-failed', `${e.prefix}lines.${i}.account`, 'active', `${e.prefix}lines.${i}.account: account ${a.code} is inactive`);
      });
    }
    return found;
  }

  private async checkOrganizations(entries: ParsedEntry[], trx: Knex.Transaction): Promise<void> {
    const ids = [...new Set(entries.flatMap((e) => e.lines.map((l) => l.organization).filter((o): o is string => !!o)))];
    if (ids.length === 0) return;
    const found = new Set<string>();
    for (let i = 0; i < ids.length; i += 500) {
      const page = await this.ctx.repository('base.organizations').listFromQuery({ 'id[in]': ids.slice(i, i + 500).join(','), limit: '500', fields: 'id' }, { actor: SYSTEM, trx });
      for (const r of page.data) found.add(r.id);
    }
    for (const e of entries) {
      e.lines.forEach((l, i) => {
        if (l.organization && !found.has(l.organization)) throw fieldError('reference-not-found', `${e.prefix}lines.${i}.organization`, 'x-ref', `${e.prefix}lines.${i}.organization: no base.organizations record ${l.organization}`);
      });
    }
  }

  /** Posts the mirror image of entry `id` (debits become credits) dated `date`; an entry is reversed once. */
  async reverse(id: string, input: { date: string; memo?: string; sourceKey?: string }, options: { actor: Principal; trx?: Knex.Transaction; requestId?: string; field?: string }): Promise<PostedEntry> {
    if (!options.trx) return this.ctx.transaction((trx) => this.reverse(id, input, { ...options, trx }));
    const trx = options.trx;
    const original = await this.read(id, trx);
    if (!original) throw new KubikiError('not-found', `finance.entries ${id} does not exist`, { extra: { entity: 'finance.entries', id } });
    if (original.reversedBy) {
      throw new KubikiError('conflict', `entry ${id} was already reversed by entry ${original.reversedBy}`, { issues: [{ field: 'id', rule: 'reversed-once', message: 'an entry is reversed at most once' }], extra: { reversedBy: original.reversedBy } });
    }
    const [posted] = await this.post([{
      date: input.date, memo: input.memo ?? `Reversal of ${original.memo ?? id}`, sourceEntity: original.source?.entity, sourceId: original.source?.id,
      sourceKey: input.sourceKey, reverses: id, total: new Decimal(original.total), prefix: '',
      lines: original.lines.map((l) => ({ account: l.accountId, debit: new Decimal(l.credit), credit: new Decimal(l.debit), organization: l.organization })),
    }], { ...options, trx });
    return posted;
  }

  /** One entry with its lines (and the entry reversing it, if any). */
  async read(id: string, trx?: Knex.Transaction): Promise<PostedEntry | undefined> {
    const [entry] = await this.readMany(this.ctx.table('finance_entries', trx).where({ id }), trx);
    return entry;
  }

  /** Headers from `query` (a finance_entries query) with their lines, two statements. */
  async readMany(query: Knex.QueryBuilder, trx?: Knex.Transaction): Promise<PostedEntry[]> {
    const headers: Record<string, any>[] = await query.select('finance_entries.*');
    if (headers.length === 0) return [];
    const ids = headers.map((h) => h.id as string);
    const lines: Record<string, any>[] = await this.ctx.table('finance_entry_lines', trx).join('finance_accounts as a', 'a.id', 'finance_entry_lines.account_id')
      .whereIn('entry_id', ids).orderBy(['entry_id', 'line_no'])
      .select('entry_id', 'account_id', 'a.code', 'debit', 'credit', 'organization_id');
    const reversals: { id: string; reverses: string }[] = await this.ctx.table('finance_entries', trx).whereIn('reverses', ids).select('id', 'reverses');
    const byEntry = new Map<string, PostedLine[]>();
    for (const l of lines) {
      const list = byEntry.get(l.entry_id) ?? [];
      list.push({ account: l.code, accountId: l.account_id, debit: money(l.debit), credit: money(l.credit), ...(l.organization_id ? { organization: l.organization_id } : {}) });
      byEntry.set(l.entry_id, list);
    }
    const reversedBy = new Map(reversals.map((r) => [r.reverses, r.id]));
    return headers.map((h) => ({
      id: h.id, version: Number(h.version), date: h.date, ...(h.memo ? { memo: h.memo } : {}), period: h.period,
      ...(h.sourceEntity ? { source: { entity: h.sourceEntity, id: h.sourceId } } : {}),
      ...(h.sourceKey ? { sourceKey: h.sourceKey } : {}), ...(h.reverses ? { reverses: h.reverses } : {}),
      ...(reversedBy.has(h.id) ? { reversedBy: reversedBy.get(h.id) } : {}),
      total: money(h.total ?? 0), lines: byEntry.get(h.id) ?? [],
      createdAt: h.createdAt instanceof Date ? h.createdAt.toISOString() : h.createdAt, ...(h.createdBy ? { createdBy: h.createdBy } : {}),
    }));
  }
}
