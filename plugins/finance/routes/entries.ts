import { defineRoute, fieldError, KubikiError, optionalBody, type PluginContext } from 'kubiki/plugin';
import { parseEntry, type EntryInput, type Ledger } from '../ledger.ts';
import { cursor, day, entryInput, ENTITY_NAME, limit, postedEntry, recordParams, type JsonSchema } from '../schemas.ts';
import { isUuid, today } from '../util.ts';
import { anyBody, never, requestIdOf } from './http.ts';

const entryParams = recordParams('finance.entries');
const MAX_BATCH = 1000;

interface ListQuery { from?: string; to?: string; account?: string; sourceEntity?: string; sourceId?: string; limit: number; cursor?: string }

const listQuery: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    from: day('Entries dated on or after this day'),
    to: day('Entries dated on or before this day'),
    account: { type: 'string', minLength: 1, maxLength: 40, description: 'Only entries with a line on this account (a code such as 62, or an id)' },
    sourceEntity: { type: 'string', pattern: ENTITY_NAME, maxLength: 100, 'x-format-hint': 'an entity as <plugin>.<plural>, e.g. finance.invoices', description: 'Only entries of documents of this entity, e.g. finance.invoices' },
    sourceId: { type: 'string', minLength: 1, maxLength: 100, description: 'Only entries of this source record' },
    limit: limit(500, 50),
    cursor,
  },
};

const created = (entry: { id: string }) => `/api/finance/entries/${entry.id}`;

/** The journal: posting, batches, reading, reversing; entries are never patched or deleted. */
export function entryRoutes(ctx: PluginContext, ledger: Ledger): void {
  ctx.route(defineRoute<unknown, unknown, EntryInput>({
    method: 'post', path: '/entries', operationId: 'postEntry', permission: 'finance.entries.post',
    summary: 'Post a balanced journal entry (in an open period)',
    description: 'Lines name accounts by code or id; each has a debit or a credit. The month of `date` must be an open period (one is opened when the month has none); a closed one answers 409 finance.period-closed. Unbalanced lines answer 400 rule `balanced`, an unknown or inactive account 400 naming `lines.N.account`.',
    errors: ['finance.period-closed', 'reference-not-found'],
    schemas: {
      body: entryInput,
      responses: { 201: { description: 'The posted entry', headers: { Location: '/api/finance/entries/{id}' }, schema: postedEntry } },
    },
    async handler({ body, principal }, http) {
      const [entry] = await ledger.post([parseEntry(body)], { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', created(entry));
      http.body = entry;
    },
  }));

  ctx.route(defineRoute<unknown, unknown, { entries: EntryInput[] }>({
    method: 'post', path: '/entries/batch', operationId: 'postEntries', permission: 'finance.entries.post',
    summary: `Post up to ${MAX_BATCH} journal entries in one transaction: all or none`,
    description: 'For imports (opening balances, another ledger\'s journal): every entry is checked as POST /api/finance/entries checks one, errors name `entries.N.…`, and one bad entry posts none.',
    errors: ['finance.period-closed', 'reference-not-found'],
    schemas: {
      body: { type: 'object', required: ['entries'], properties: { entries: { type: 'array', minItems: 1, maxItems: MAX_BATCH, items: entryInput } } },
      responses: {
        201: {
          description: 'The posted entries, in the order given',
          schema: { type: 'object', additionalProperties: false, required: ['data'], properties: { data: { type: 'array', items: postedEntry } } },
        },
      },
    },
    async handler({ body, principal }, http) {
      const data = await ledger.post(body.entries.map((e, i) => parseEntry(e, `entries.${i}.`)), { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.body = { data };
    },
  }));

  ctx.route(defineRoute<unknown, ListQuery>({
    method: 'get', path: '/entries', operationId: 'listEntries', permission: 'finance.entries.read',
    summary: 'Journal entries with their lines, newest first',
    description: 'Filters by date range, account, and source document; keyset pagination with `cursor` (the previous page\'s `next`).',
    schemas: {
      query: listQuery,
      responses: {
        200: {
          type: 'object', additionalProperties: false, required: ['data', 'next'],
          properties: { data: { type: 'array', items: postedEntry }, next: { type: ['string', 'null'], description: 'The cursor of the next page; null on the last' } },
        },
      },
    },
    async handler({ query: q }, http) {
      const query = ctx.table('finance_entries');
      if (q.from) query.where('date', '>=', q.from);
      if (q.to) query.where('date', '<=', q.to);
      if (q.sourceEntity) query.where('sourceEntity', q.sourceEntity);
      if (q.sourceId) query.where('sourceId', q.sourceId);
      if (q.account) {
        const ref = q.account;
        const account = await ctx.table('finance_accounts').where((w) => { w.where('code', ref); if (isUuid(ref)) w.orWhere('id', ref); }).first('id');
        if (!account) throw fieldError('bad-query', 'account', 'exists', `no account ${ref}`);
        query.whereIn('id', ctx.table('finance_entry_lines').where('account_id', account.id).select('entry_id'));
      }
      if (q.cursor) {
        let c: unknown;
        try { c = JSON.parse(Buffer.from(q.cursor, 'base64url').toString('utf8')); } catch { c = undefined; }
        if (!Array.isArray(c) || typeof c[0] !== 'string' || !isUuid(c[1])) throw fieldError('bad-query', 'cursor', 'format', 'cursor must be a previous answer\'s next');
        query.where((w) => { w.where('date', '<', c[0]).orWhere((x) => x.where('date', c[0]).andWhere('id', '<', c[1])); });
      }
      query.orderBy([{ column: 'date', order: 'desc' }, { column: 'id', order: 'desc' }]).limit(q.limit + 1);
      const data = await ledger.readMany(query);
      const more = data.length > q.limit;
      if (more) data.pop();
      const last = data[data.length - 1];
      http.body = { data, next: more && last ? Buffer.from(JSON.stringify([last.date, last.id])).toString('base64url') : null };
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'get', path: '/entries/:id', operationId: 'getEntry', permission: 'finance.entries.read',
    summary: 'One journal entry with its lines (and the entry reversing it, if any)', errors: ['not-found'],
    schemas: { params: entryParams, responses: { 200: postedEntry } },
    async handler({ params: { id } }, http) {
      const entry = await ledger.read(id);
      if (!entry) throw new KubikiError('not-found', `finance.entries ${id} does not exist`, { extra: { entity: 'finance.entries', id } });
      http.body = entry;
    },
  }));

  ctx.route(defineRoute<{ id: string }, unknown, { date?: string; memo?: string } | undefined>({
    method: 'post', path: '/entries/:id/reverse', operationId: 'reverseEntry', permission: 'finance.entries.post',
    summary: 'Correct an entry: post its mirror image (debits become credits), once',
    description: 'Dated `date` (default today) in an open period; an entry already reversed answers 409.',
    errors: ['not-found', 'conflict', 'finance.period-closed'],
    schemas: {
      params: entryParams,
      body: optionalBody({
        type: 'object',
        properties: { date: day('The reversal\'s date (default today)'), memo: { type: 'string', maxLength: 1000, description: 'Default "Reversal of <memo>"' } },
      }),
      responses: { 201: postedEntry },
    },
    async handler({ params: { id }, body, principal }, http) {
      const entry = await ledger.reverse(id, { date: body?.date ?? today(), memo: body?.memo }, { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.body = entry;
    },
  }));

  const immutable = (): never => {
    throw new KubikiError('conflict', 'posted journal entries are immutable: correct one with POST /api/finance/entries/{id}/reverse', { issues: [{ field: 'id', rule: 'immutable', message: 'reverse the entry instead' }] });
  };
  for (const method of ['patch', 'delete'] as const) {
    ctx.route(defineRoute<{ id: string }>({
      method, path: '/entries/:id', operationId: method === 'patch' ? 'updateEntry' : 'deleteEntry', permission: 'finance.entries.read',
      summary: `Refused: a posted entry is never ${method === 'patch' ? 'changed' : 'deleted'} (409; reverse it instead)`,
      description: 'Journal entries are immutable: correct one with POST /api/finance/entries/{id}/reverse.',
      errors: ['conflict'],
      schemas: {
        params: entryParams,
        ...(method === 'patch' ? { body: anyBody } : {}),
        responses: { 204: never('the call answers 409 conflict (rule immutable)') },
      },
      handler: immutable,
    }));
  }
}
