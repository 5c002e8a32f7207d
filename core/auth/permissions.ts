import { KubikiError } from '../errors.ts';

export type Action = 'read' | 'create' | 'update' | 'delete';
/** What a principal may do with a permission: everything, only records it owns, or nothing. */
export type Grant = 'all' | 'own' | 'none';

const GRANT = /^(\*|[a-z][a-zA-Z0-9]*)(\.(\*|[a-zA-Z][a-zA-Z0-9]*)){0,2}(:own)?$/;

export function checkGrantSyntax(grant: string, field: string): void {
  if (!GRANT.test(grant)) {
    throw new KubikiError('validation-failed', `"${grant}" is not a permission`, {
      issues: [{ field, rule: 'pattern', message: `"${grant}" is not a permission: use <plugin>.<entity>.<action>, "*" wildcards, and ":own" for own records only (e.g. "crm.deals.update:own")` }],
    });
  }
}

function matches(pattern: string[], permission: string[]): boolean {
  if (pattern.length === 1 && pattern[0] === '*') return true;
  if (pattern.length > permission.length) return false;
  // "base.*" covers everything below base; "base.*.read" covers read on every base entity.
  for (let i = 0; i < pattern.length; i++) {
    if (pattern[i] !== '*' && pattern[i] !== permission[i]) return false;
  }
  return pattern.length === permission.length || pattern[pattern.length - 1] === '*';
}

/** The union of a user's role grants, answering "may they do X?" for permission strings. */
export class PermissionSet {
  private readonly grants: { pattern: string[]; own: boolean }[];
  private readonly cache = new Map<string, Grant>();

  constructor(readonly raw: readonly string[]) {
    this.grants = raw.map((g) => {
      const own = g.endsWith(':own');
      return { pattern: (own ? g.slice(0, -4) : g).split('.'), own };
    });
  }

  grant(permission: string): Grant {
    let result = this.cache.get(permission);
    if (result) return result;
    const parts = permission.split('.');
    result = 'none';
    for (const g of this.grants) {
      if (!matches(g.pattern, parts)) continue;
      if (!g.own) { result = 'all'; break; }
      result = 'own';
    }
    this.cache.set(permission, result);
    return result;
  }

  has(permission: string): boolean {
    return this.grant(permission) === 'all';
  }
}
