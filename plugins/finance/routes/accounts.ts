import { KubikiError, defineRoute, type PluginContext } from 'kubiki/plugin';
import { recordParams } from '../schemas.ts';
import { ifMatch, noContent, requestIdOf } from './http.ts';

const accountParams = recordParams('finance.accounts');

/** Accounts: the generic entity REST, but an account with postings is never deleted. */
export function accountRoutes(ctx: PluginContext): void {
  ctx.route(defineRoute<{ id: string }>({
    method: 'delete', path: '/accounts/:id', operationId: 'deleteAccount', permission: 'finance.accounts.delete',
    summary: 'Delete an account without journal lines', description: 'An account with postings answers 409 referenced: deactivate it (active: false) instead. If-Match: the version you read.',
    errors: ['not-found', 'referenced', 'version-mismatch', 'precondition-malformed'],
    schemas: { params: accountParams, responses: { 204: noContent } },
    async handler({ params: { id }, principal }, http) {
      if (await ctx.table('finance_entry_lines').where({ account_id: id }).first('id')) {
        throw new KubikiError('referenced', `account ${id} has journal lines; deactivate it (active: false) instead`, { extra: { referrers: [{ entity: 'finance.entries', field: 'lines.account' }] } });
      }
      await ctx.repository('finance.accounts').delete(id, { actor: principal, requestId: requestIdOf(http), expectedVersion: ifMatch(http) });
      http.status = 204;
    },
  }));
}
