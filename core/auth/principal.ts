import { KubikiError } from '../errors.ts';
import { PermissionSet, type Grant } from './permissions.ts';

/** Who is acting: a signed-in user, an API token's user, or the system itself (plugins, seeds). */
export interface Principal {
  userId: string | null;
  username: string;
  displayName: string;
  roles: string[];
  permissions: PermissionSet;
}

export const SYSTEM: Principal = {
  userId: null,
  username: 'system',
  displayName: 'System',
  roles: [],
  permissions: new PermissionSet(['*']),
};

/** Throws 403 unless the principal holds `permission` (fully, or for own records when `allowOwn`). */
export function requireGrant(principal: Principal, permission: string, allowOwn = false): Grant {
  const grant = principal.permissions.grant(permission);
  if (grant === 'all' || (grant === 'own' && allowOwn)) return grant;
  throw new KubikiError('forbidden', grant === 'own'
    ? `${principal.username} may use ${permission} only on their own records`
    : `${principal.username} lacks the permission ${permission}`, { extra: { permission } });
}
