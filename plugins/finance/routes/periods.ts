import { KubikiError, defineRoute, entityRecord, fieldError, type PluginContext } from 'kubiki/plugin';
import { recordParams } from '../schemas.ts';
import { elevated } from '../util.ts';
import { anyBody, ifMatch, never, noContent, requestIdOf } from './http.ts';

const periodParams = recordParams('finance.periods');

/** Fiscal periods change state only by closing and reopening; the generic entity routes list, read and create them. */
export function periodRoutes(ctx: PluginContext): void {
  for (const status of ['closed', 'open'] as const) {
    const verb = status === 'closed' ? 'close' : 'reopen';
    ctx.route(defineRoute<{ id: string }>({
      method: 'post', path: `/periods/:id/${verb}`, operationId: `${verb}Period`, permission: 'finance.periods.close',
      summary: status === 'closed' ? 'Close a fiscal period: nothing is posted into it any more' : 'Reopen a closed fiscal period',
      description: status === 'closed'
        ? 'Waits for postings in flight (they hold the period FOR SHARE); a period already closed answers 409. Audited.'
        : 'A period already open answers 409. Audited.',
      errors: ['not-found', 'conflict'],
      schemas: { params: periodParams, responses: { 200: entityRecord('finance.periods') } },
      async handler({ params: { id }, principal }, http) {
        http.body = await ctx.transaction(async (trx) => {
          const row = await ctx.table('finance_periods', trx).where({ id }).forUpdate().first();
          if (!row) throw new KubikiError('not-found', `finance.periods ${id} does not exist`, { extra: { entity: 'finance.periods', id } });
          if (row.status === status) throw new KubikiError('conflict', `period ${row.month} is already ${status}`, { issues: [{ field: 'status', rule: status === 'closed' ? 'open' : 'closed', message: `the period is ${row.status}` }] });
          return ctx.repository('finance.periods').update(row.id, status === 'closed'
            ? { status, closedAt: new Date().toISOString(), closedBy: principal.userId }
            : { status, closedAt: null, closedBy: null }, { actor: elevated(principal, ['finance.periods.update']), trx, requestId: requestIdOf(http), viaTransition: true });
        });
      },
    }));
  }

  ctx.route(defineRoute<{ id: string }>({
    method: 'patch', path: '/periods/:id', operationId: 'updatePeriod', permission: 'finance.periods.update',
    summary: 'Refused: a period changes only through …/close and …/reopen (400 read-only)',
    errors: ['validation-failed'],
    schemas: { params: periodParams, body: anyBody, responses: { 204: never('the call answers 400 validation-failed (field status, rule read-only)') } },
    handler() {
      throw fieldError('validation-failed', 'status', 'read-only', 'a period changes only through POST /api/finance/periods/{id}/close and /reopen');
    },
  }));

  ctx.route(defineRoute<{ id: string }>({
    method: 'delete', path: '/periods/:id', operationId: 'deletePeriod', permission: 'finance.periods.delete',
    summary: 'Delete an open period without entries', description: 'A closed period, or one with entries, answers 409. If-Match: the version you read.',
    errors: ['not-found', 'conflict', 'version-mismatch', 'precondition-malformed'],
    schemas: { params: periodParams, responses: { 204: noContent } },
    async handler({ params: { id }, principal }, http) {
      const row = await ctx.table('finance_periods').where({ id }).first();
      if (row && (row.status === 'closed' || await ctx.table('finance_entries').where({ period: row.month }).first('id'))) {
        throw new KubikiError('conflict', `period ${row.month} is closed or has entries; it cannot be deleted`, { issues: [{ field: 'id', rule: 'unused', message: 'only an open, empty period can be deleted' }] });
      }
      await ctx.repository('finance.periods').delete(id, { actor: principal, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      http.status = 204;
    },
  }));
}
