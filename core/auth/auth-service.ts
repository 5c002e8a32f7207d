import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Database } from '../db/database.ts';
import { KubikiError, fieldError } from '../errors.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import { PermissionSet, checkGrantSyntax } from './permissions.ts';
import type { Principal } from './principal.ts';
import { hashPassword, hashToken, newToken, verifyPassword } from './secrets.ts';

export interface UserView {
  id: string;
  username: string;
  displayName: string;
  email: string | null;
  roles: string[];
  active: boolean;
  createdAt: string;
  updatedAt: string;
}

export interface RoleView {
  name: string;
  description: string;
  permissions: string[];
}

export interface IssuedToken {
  id: string;
  token: string;
  kind: 'session' | 'api';
  name: string;
  expiresAt: string | null;
}

type Row = Record<string, unknown>;

const ADMIN_ROLE = 'admin';
const USERNAME = /^[a-zA-Z0-9][a-zA-Z0-9._@-]{1,63}$/;
const ROLE_NAME = /^[a-z][a-zA-Z0-9_-]{1,39}$/;
// A short-lived cache keeps token checks off the hot path; revocations made on this instance take
// effect at once, on other instances within this many milliseconds.
const PRINCIPAL_TTL_MS = 5000;

const toUser = (r: Row): UserView => ({
  id: String(r.id),
  username: String(r.username),
  displayName: String(r.display_name),
  email: (r.email as string | null) ?? null,
  roles: r.roles as string[],
  active: Boolean(r.active),
  createdAt: String(r.created_at),
  updatedAt: String(r.updated_at),
});

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function onlyKeys(body: Record<string, unknown>, allowed: string[]): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted here (allowed: ${allowed.join(', ')})`);
  }
}

function optionalString(body: Record<string, unknown>, key: string, max: number): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string' || v.length > max) throw fieldError('validation-failed', key, 'type', `${key} must be a string of at most ${max} characters`);
  return v;
}

function passwordOf(body: Record<string, unknown>): string | undefined {
  const v = body.password;
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length < 10 || v.length > 200) throw fieldError('validation-failed', 'password', 'minLength', 'password must be 10 to 200 characters');
  return v;
}

/** Users, roles and tokens: who may call Kubiki and what they may do. */
export class AuthService {
  private readonly cache = new Map<string, { principal: Principal | null; until: number }>();

  constructor(private readonly db: Database, private readonly sessionTtlSeconds: number) {}

  /** The principal behind a bearer token, or null when the token is unknown, expired or revoked. */
  async authenticate(token: string): Promise<Principal | null> {
    const hash = hashToken(token);
    const cached = this.cache.get(hash);
    if (cached && cached.until > Date.now()) return cached.principal;
    const row: Row | undefined = await this.db.table('kubiki_tokens as t')
      .join(this.db.knex.raw('??.?? as u', [this.db.schema, 'kubiki_users']), 'u.id', 't.user_id')
      .where('t.token_hash', hash)
      .whereNull('t.revoked_at')
      .where((w) => w.whereNull('t.expires_at').orWhere('t.expires_at', '>', this.db.knex.fn.now()))
      .where('u.active', true)
      .first('u.id', 'u.username', 'u.display_name', 'u.roles');
    const principal = row ? await this.principalOf(row) : null;
    if (this.cache.size > 10_000) this.cache.clear();
    this.cache.set(hash, { principal, until: Date.now() + PRINCIPAL_TTL_MS });
    return principal;
  }

  private async principalOf(user: Row): Promise<Principal> {
    const roles = user.roles as string[];
    const rows: { permissions: string[] }[] = roles.length ? await this.db.table('kubiki_roles').whereIn('name', roles).select('permissions') : [];
    return {
      userId: String(user.id),
      username: String(user.username),
      displayName: String(user.display_name),
      roles,
      permissions: new PermissionSet(rows.flatMap((r) => r.permissions)),
    };
  }

  async principalForUser(userId: string): Promise<Principal> {
    const row = await this.db.table('kubiki_users').where({ id: userId }).first();
    if (!row) throw new KubikiError('not-found', `no user ${userId}`);
    return this.principalOf(row);
  }

  async login(body: unknown, requestId?: string): Promise<IssuedToken & { user: UserView }> {
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    onlyKeys(body, ['username', 'password']);
    if (typeof body.username !== 'string') throw fieldError('validation-failed', 'username', 'required', 'username is required');
    if (typeof body.password !== 'string') throw fieldError('validation-failed', 'password', 'required', 'password is required');
    const row: Row | undefined = await this.db.table('kubiki_users').where({ username: body.username, active: true }).first();
    // Hash even for unknown users so response time does not reveal which usernames exist.
    const ok = await verifyPassword(body.password, (row?.password_hash as string | undefined) ?? 'scrypt$32768$8$1$AAAAAAAAAAAAAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA');
    if (!row || !ok || !row.password_hash) throw new KubikiError('invalid-credentials', 'the username or password is wrong');
    const principal = await this.principalOf(row);
    const token = await this.db.knex.transaction((trx) => this.issue(trx, principal, String(row.id), 'session', 'login', requestId));
    return { ...token, user: toUser(row) };
  }

  async logout(actor: Principal, token: string, requestId?: string): Promise<void> {
    const hash = hashToken(token);
    await this.db.knex.transaction(async (trx) => {
      const [row] = await this.db.table('kubiki_tokens', trx).where({ token_hash: hash }).whereNull('revoked_at').update({ revoked_at: trx.fn.now() }).returning('id');
      if (row) await writeAudit(this.db, trx, { actor, action: 'revoked', plugin: 'core', entity: 'tokens', recordId: String(row.id), changes: { reason: { before: null, after: 'logout' } }, requestId });
    });
    this.cache.delete(hash);
  }

  private async issue(trx: Knex.Transaction, actor: Principal, userId: string, kind: 'session' | 'api', name: string, requestId?: string, presetToken?: string): Promise<IssuedToken> {
    const token = presetToken ?? newToken();
    const id = randomUUID();
    const expiresAt = kind === 'session' ? new Date(Date.now() + this.sessionTtlSeconds * 1000) : null;
    await this.db.table('kubiki_tokens', trx).insert({ id, user_id: userId, kind, name, token_hash: hashToken(token), expires_at: expiresAt });
    await writeAudit(this.db, trx, {
      actor, action: 'created', plugin: 'core', entity: 'tokens', recordId: id,
      changes: { user: { before: null, after: userId }, kind: { before: null, after: kind }, name: { before: null, after: name } }, requestId,
    });
    return { id, token, kind, name, expiresAt: expiresAt?.toISOString() ?? null };
  }

  async issueApiToken(actor: Principal, userId: string, body: unknown, requestId?: string): Promise<IssuedToken> {
    const input = isObject(body) ? body : {};
    onlyKeys(input, ['name']);
    const name = optionalString(input, 'name', 100) ?? 'api';
    await this.getUser(userId);
    return this.db.knex.transaction((trx) => this.issue(trx, actor, userId, 'api', name, requestId));
  }

  async revokeToken(actor: Principal, userId: string, tokenId: string, requestId?: string): Promise<void> {
    const hash = await this.db.knex.transaction(async (trx) => {
      const row = await this.db.table('kubiki_tokens', trx).where({ id: tokenId, user_id: userId }).whereNull('revoked_at').first();
      if (!row) throw new KubikiError('not-found', `user ${userId} has no active token ${tokenId}`);
      await this.db.table('kubiki_tokens', trx).where({ id: tokenId }).update({ revoked_at: trx.fn.now() });
      await writeAudit(this.db, trx, { actor, action: 'revoked', plugin: 'core', entity: 'tokens', recordId: tokenId, changes: {}, requestId });
      return String(row.token_hash);
    });
    // After the commit: a request authenticated meanwhile could otherwise re-cache the token as valid.
    this.cache.delete(hash);
  }

  async listTokens(userId: string): Promise<Omit<IssuedToken, 'token'>[]> {
    const rows: Row[] = await this.db.table('kubiki_tokens').where({ user_id: userId }).whereNull('revoked_at').orderBy('created_at');
    return rows.map((r) => ({ id: String(r.id), kind: r.kind as 'session' | 'api', name: String(r.name), expiresAt: (r.expires_at as string | null) ?? null }));
  }

  async listUsers(): Promise<UserView[]> {
    return (await this.db.table('kubiki_users').orderBy('username')).map(toUser);
  }

  async getUser(id: string): Promise<UserView> {
    const row = /^[0-9a-f-]{36}$/i.test(id) ? await this.db.table('kubiki_users').where({ id }).first() : undefined;
    if (!row) throw new KubikiError('not-found', `no user ${id}`);
    return toUser(row);
  }

  async findUserByName(username: string): Promise<UserView | undefined> {
    const row = await this.db.table('kubiki_users').where({ username }).first();
    return row ? toUser(row) : undefined;
  }

  private async checkRoles(trx: Knex.Transaction, roles: unknown): Promise<string[]> {
    if (!Array.isArray(roles) || roles.some((r) => typeof r !== 'string')) throw fieldError('validation-failed', 'roles', 'type', 'roles must be an array of role names');
    const known = new Set<string>(await this.db.table('kubiki_roles', trx).whereIn('name', roles).pluck('name'));
    const unknown = roles.filter((r) => !known.has(r));
    if (unknown.length) throw fieldError('validation-failed', 'roles', 'exists', `no such role: ${unknown.join(', ')}`);
    return [...new Set(roles as string[])];
  }

  async createUser(actor: Principal, body: unknown, requestId?: string): Promise<UserView> {
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    onlyKeys(body, ['username', 'displayName', 'email', 'password', 'roles']);
    if (typeof body.username !== 'string') throw fieldError('validation-failed', 'username', 'required', 'username is required');
    if (!USERNAME.test(body.username)) throw fieldError('validation-failed', 'username', 'pattern', 'username: 2-64 letters, digits, ".", "_", "@", "-"');
    const password = passwordOf(body);
    const displayName = optionalString(body, 'displayName', 200) ?? body.username;
    const email = optionalString(body, 'email', 320);
    const hash = password ? await hashPassword(password) : null;
    return this.db.knex.transaction(async (trx) => {
      const roles = await this.checkRoles(trx, body.roles ?? []);
      if (await this.db.table('kubiki_users', trx).where({ username: body.username }).first()) {
        throw fieldError('unique-violation', 'username', 'unique', `a user named ${body.username} already exists`);
      }
      const id = randomUUID();
      const [row] = await this.db.table('kubiki_users', trx)
        .insert({ id, username: body.username, display_name: displayName, email: email ?? null, password_hash: hash, roles: JSON.stringify(roles) })
        .returning('*');
      await writeAudit(this.db, trx, {
        actor, action: 'created', plugin: 'core', entity: 'users', recordId: id, requestId,
        changes: { username: { before: null, after: body.username }, roles: { before: null, after: roles }, ...(password ? { password: { before: null, after: '(set)' } } : {}) },
      });
      return toUser(row);
    });
  }

  async updateUser(actor: Principal, id: string, body: unknown, requestId?: string): Promise<UserView> {
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    onlyKeys(body, ['displayName', 'email', 'password', 'roles', 'active']);
    const before = await this.getUser(id);
    const password = passwordOf(body);
    const hash = password ? await hashPassword(password) : undefined;
    if (body.active !== undefined && typeof body.active !== 'boolean') throw fieldError('validation-failed', 'active', 'type', 'active must be true or false');
    const updated = await this.db.knex.transaction(async (trx) => {
      const patch: Row = { updated_at: trx.fn.now() };
      const changes: Record<string, { before: unknown; after: unknown }> = {};
      const displayName = optionalString(body, 'displayName', 200);
      if (displayName !== undefined) { patch.display_name = displayName; changes.displayName = { before: before.displayName, after: displayName }; }
      if ('email' in body) { const email = optionalString(body, 'email', 320) ?? null; patch.email = email; changes.email = { before: before.email, after: email }; }
      if (body.roles !== undefined) { const roles = await this.checkRoles(trx, body.roles); patch.roles = JSON.stringify(roles); changes.roles = { before: before.roles, after: roles }; }
      if (body.active !== undefined) { patch.active = body.active; changes.active = { before: before.active, after: body.active }; }
      if (hash) { patch.password_hash = hash; changes.password = { before: '(hidden)', after: '(changed)' }; }
      const [row] = await this.db.table('kubiki_users', trx).where({ id }).update(patch).returning('*');
      await writeAudit(this.db, trx, { actor, action: 'updated', plugin: 'core', entity: 'users', recordId: id, changes, requestId });
      return toUser(row);
    });
    this.cache.clear();
    return updated;
  }

  /** Who a user is and how to reach them (active users only): what plugin code may know of a user. */
  async contact(id: string): Promise<{ id: string; username: string; displayName: string; email: string | null } | undefined> {
    if (!/^[0-9a-f-]{36}$/i.test(id)) return undefined;
    const row: { id: string; username: string; display_name: string; email: string | null } | undefined = await this.db.table('kubiki_users').where({ id, active: true }).first('id', 'username', 'display_name', 'email');
    return row ? { id: row.id, username: row.username, displayName: row.display_name, email: row.email ?? null } : undefined;
  }

  async listRoles(): Promise<RoleView[]> {
    const rows: Row[] = await this.db.table('kubiki_roles').orderBy('name');
    return rows.map((r) => ({ name: String(r.name), description: String(r.description), permissions: r.permissions as string[] }));
  }

  /** Creates or replaces a role. */
  async putRole(actor: Principal, name: string, body: unknown, requestId?: string): Promise<RoleView> {
    if (!ROLE_NAME.test(name)) throw fieldError('validation-failed', 'name', 'pattern', 'role names: 2-40 characters, lower-case first letter, letters, digits, "_" and "-"');
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    onlyKeys(body, ['description', 'permissions']);
    if (!Array.isArray(body.permissions) || body.permissions.some((p) => typeof p !== 'string')) {
      throw fieldError('validation-failed', 'permissions', 'type', 'permissions must be an array of permission strings');
    }
    // Checked before de-duplication so the field names the position in the request.
    (body.permissions as string[]).forEach((p, i) => checkGrantSyntax(p, `permissions.${i}`));
    const permissions = [...new Set(body.permissions as string[])];
    if (name === ADMIN_ROLE && !permissions.includes('*')) throw fieldError('validation-failed', 'permissions', 'admin', 'the admin role keeps "*"');
    const description = optionalString(body, 'description', 500) ?? '';
    const role = await this.db.knex.transaction(async (trx) => {
      const before = await this.db.table('kubiki_roles', trx).where({ name }).first();
      await this.db.table('kubiki_roles', trx)
        .insert({ name, description, permissions: JSON.stringify(permissions) })
        .onConflict('name').merge({ description, permissions: JSON.stringify(permissions), updated_at: trx.fn.now() });
      await writeAudit(this.db, trx, {
        actor, action: before ? 'updated' : 'created', plugin: 'core', entity: 'roles', recordId: name, requestId,
        changes: { permissions: { before: before?.permissions ?? null, after: permissions } },
      });
      return { name, description, permissions };
    });
    this.cache.clear();
    return role;
  }

  async deleteRole(actor: Principal, name: string, requestId?: string): Promise<void> {
    if (name === ADMIN_ROLE) throw new KubikiError('conflict', 'the admin role cannot be deleted');
    await this.db.knex.transaction(async (trx) => {
      const before = await this.db.table('kubiki_roles', trx).where({ name }).first();
      if (!before) throw new KubikiError('not-found', `no role ${name}`);
      const holders: string[] = await this.db.table('kubiki_users', trx).whereRaw('roles \\? ?', [name]).pluck('username');
      if (holders.length) throw new KubikiError('conflict', `role ${name} is held by ${holders.join(', ')}; take it from them first`, { extra: { users: holders } });
      await this.db.table('kubiki_roles', trx).where({ name }).delete();
      await writeAudit(this.db, trx, { actor, action: 'deleted', plugin: 'core', entity: 'roles', recordId: name, changes: { permissions: { before: before.permissions, after: null } }, requestId });
    });
    this.cache.clear();
  }

  /**
   * First start on an empty database: an `admin` role and user whose API token is `presetToken`
   * (KUBIKI_ADMIN_TOKEN) or a generated one. Returns the token only when it was generated.
   */
  async bootstrapAdmin(system: Principal, presetToken?: string): Promise<string | undefined> {
    return this.db.knex.transaction(async (trx) => {
      await trx.raw('select pg_advisory_xact_lock(hashtext(?))', [`kubiki:bootstrap:${this.db.schema}`]);
      const any = await this.db.table('kubiki_users', trx).first('id');
      if (any) return undefined;
      await this.db.table('kubiki_roles', trx).insert({ name: ADMIN_ROLE, description: 'Everything', permissions: JSON.stringify(['*']) }).onConflict('name').ignore();
      const id = randomUUID();
      await this.db.table('kubiki_users', trx).insert({ id, username: 'admin', display_name: 'Administrator', roles: JSON.stringify([ADMIN_ROLE]) });
      await writeAudit(this.db, trx, { actor: system, action: 'created', plugin: 'core', entity: 'users', recordId: id, changes: { username: { before: null, after: 'admin' } } });
      const issued = await this.issue(trx, system, id, 'api', 'bootstrap', undefined, presetToken);
      return presetToken ? undefined : issued.token;
    });
  }
}
