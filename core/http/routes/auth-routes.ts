import { requireGrant, type Principal } from '../../auth/principal.ts';
import type { JsonSchema } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { noContent, timestamp, uuid, uuidParams } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';

// The same rules AuthService applies (it keeps them for the CLI and other callers that bypass HTTP).
const USERNAME = '^[a-zA-Z0-9][a-zA-Z0-9._@-]{1,63}$';
const GRANT = '^(\\*|[a-z][a-zA-Z0-9]*)(\\.(\\*|[a-zA-Z][a-zA-Z0-9]*)){0,2}(:own)?$';

const nullableString = (maxLength: number, description?: string): JsonSchema => ({
  anyOf: [{ type: 'string', maxLength }, { type: 'null' }], ...(description ? { description } : {}),
});

// ── Schemas ────────────────────────────────────────────────────────────────────────────────────

const user: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'username', 'displayName', 'email', 'roles', 'active', 'createdAt', 'updatedAt'],
  properties: {
    id: uuid, username: { type: 'string' }, displayName: { type: 'string' }, email: { type: ['string', 'null'] },
    roles: { type: 'array', items: { type: 'string' } }, active: { type: 'boolean' }, createdAt: timestamp, updatedAt: timestamp,
  },
};

const tokenProperties = {
  id: uuid, kind: { enum: ['session', 'api'] }, name: { type: 'string' },
  expiresAt: { type: ['string', 'null'], format: 'date-time', description: 'null: an API token, valid until revoked' },
};
/** A token as listed: never its secret. */
const tokenSummary: JsonSchema = { type: 'object', additionalProperties: false, required: ['id', 'kind', 'name', 'expiresAt'], properties: tokenProperties };
/** A token just issued: the secret is shown this once. */
const issuedToken: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['id', 'token', 'kind', 'name', 'expiresAt'],
  properties: { ...tokenProperties, token: { type: 'string', pattern: '^kbk_', description: 'The bearer token; shown only in this answer' } },
};

const role: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['name', 'description', 'permissions'],
  properties: { name: { type: 'string' }, description: { type: 'string' }, permissions: { type: 'array', items: { type: 'string' } } },
};

/** `{ data: [...], next: null }`: the whole list in one answer. */
const everything = (items: JsonSchema): JsonSchema => ({
  type: 'object', additionalProperties: false, required: ['data', 'next'],
  properties: { data: { type: 'array', items }, next: { type: 'null', description: 'Always null: the whole list comes in one answer' } },
});

const password: JsonSchema = { type: 'string', minLength: 10, maxLength: 200, description: '10 to 200 characters; stored as a scrypt hash' };
const roleNames: JsonSchema = { type: 'array', maxItems: 100, items: { type: 'string', maxLength: 100 }, description: 'Names of existing roles' };

const roleParams: JsonSchema = {
  type: 'object', required: ['name'],
  properties: { name: { type: 'string', minLength: 1, maxLength: 100, description: 'A role name: 2–40 characters, a lower-case letter first, then letters, digits, "_" and "-"' } },
};
const tokenParams: JsonSchema = {
  type: 'object', required: ['id', 'tokenId'],
  properties: { id: { ...uuid, description: 'A user id (UUID)' }, tokenId: { ...uuid, description: 'A token id (UUID)' } },
};

interface LoginBody { username: string; password: string }
interface CreateUserBody { username: string; displayName?: string | null; email?: string | null; password?: string; roles?: string[] }
interface UpdateUserBody { displayName?: string | null; email?: string | null; password?: string; roles?: string[]; active?: boolean }
interface IssueTokenBody { name?: string | null }
interface PutRoleBody { description?: string | null; permissions: string[] }

/** Users manage their own API tokens; core.users.update manages anyone's. */
const tokenGuard = (principal: Principal, userId: string): void => {
  if (principal.userId !== userId) requireGrant(principal, 'core.users.update');
};

/** Login, users, roles and tokens. */
export function authRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  return [
    defineRoute<unknown, unknown, LoginBody>({
      method: 'post', path: '/api/auth/login', operationId: 'login', summary: 'Exchange username and password for a session token', permission: 'public',
      description: 'The session token expires after KUBIKI_SESSION_TTL; a wrong password and an unknown user answer alike (401 invalid-credentials). Too many failures for the user or from the address (KUBIKI_LOGIN_*) answer 429 login-throttled with Retry-After.',
      errors: ['invalid-credentials', 'login-throttled'],
      schemas: {
        body: {
          type: 'object', required: ['username', 'password'],
          properties: { username: { type: 'string', minLength: 1, maxLength: 64 }, password: { type: 'string', minLength: 1, maxLength: 200 } },
        },
        responses: { 200: { ...issuedToken, required: [...(issuedToken.required as string[]), 'user'], properties: { ...(issuedToken.properties as JsonSchema), kind: { const: 'session' }, user } } },
      },
      async handler({ body }, http) {
        http.body = await k.auth.login(body, stateOf(http).requestId);
      },
    }),
    defineRoute({
      method: 'post', path: '/api/auth/logout', operationId: 'logout', summary: 'Revoke the calling token', permission: 'signed-in',
      schemas: { responses: { 204: noContent } },
      async handler({ principal }, http) {
        await k.auth.logout(principal, http.get('authorization').replace(/^Bearer\s+/i, ''), stateOf(http).requestId);
        http.status = 204;
      },
    }),
    defineRoute({
      method: 'get', path: '/api/auth/me', operationId: 'me', summary: 'The calling user, their roles and permission grants', permission: 'signed-in',
      schemas: {
        responses: {
          200: {
            type: 'object', additionalProperties: false, required: ['id', 'username', 'displayName', 'roles', 'permissions'],
            properties: {
              id: uuid, username: { type: 'string' }, displayName: { type: 'string' }, roles: { type: 'array', items: { type: 'string' } },
              permissions: { type: 'array', items: { type: 'string' }, description: 'The grants of all their roles, e.g. "crm.deals.update:own"' },
            },
          },
        },
      },
      handler({ principal: p }, http) {
        http.body = { id: p.userId, username: p.username, displayName: p.displayName, roles: p.roles, permissions: p.permissions.raw };
      },
    }),
    defineRoute({
      method: 'get', path: '/api/users', operationId: 'listUsers', summary: 'Users, by username', permission: 'core.users.read',
      schemas: { responses: { 200: everything(user) } },
      async handler(_input, http) {
        http.body = { data: await k.auth.listUsers(), next: null };
      },
    }),
    defineRoute<unknown, unknown, CreateUserBody>({
      method: 'post', path: '/api/users', operationId: 'createUser', summary: 'Create a user', permission: 'core.users.create',
      description: 'Without a password the user cannot log in; give them an API token instead.',
      errors: ['unique-violation'],
      schemas: {
        body: {
          type: 'object', required: ['username'],
          properties: {
            username: { type: 'string', pattern: USERNAME, description: 'User name: 2–64 letters, digits, ".", "_", "@" or "-", a letter or digit first' },
            displayName: nullableString(200, 'Shown name; the username when absent'),
            email: nullableString(320),
            password,
            roles: roleNames,
          },
        },
        responses: { 201: user },
      },
      async handler({ body, principal }, http) {
        const created = await k.auth.createUser(principal, body, stateOf(http).requestId);
        http.status = 201;
        http.body = created;
      },
    }),
    defineRoute<{ id: string }>({
      method: 'get', path: '/api/users/:id', operationId: 'getUser', summary: 'One user', permission: 'signed-in',
      description: 'Anyone may read their own user; reading another needs core.users.read.',
      errors: ['forbidden', 'not-found'],
      schemas: { params: uuidParams('id', 'A user id (UUID)'), responses: { 200: user } },
      async handler({ params, principal }, http) {
        if (principal.userId !== params.id) requireGrant(principal, 'core.users.read');
        http.body = await k.auth.getUser(params.id);
      },
    }),
    defineRoute<{ id: string }, unknown, UpdateUserBody>({
      method: 'patch', path: '/api/users/:id', operationId: 'updateUser', summary: 'Change a user: the fields given', permission: 'core.users.update',
      description: 'email: null clears it; active: false stops the user\'s tokens and logins at once.',
      errors: ['not-found'],
      schemas: {
        params: uuidParams('id', 'A user id (UUID)'),
        body: {
          type: 'object',
          properties: { displayName: nullableString(200, 'null keeps it'), email: nullableString(320, 'null clears it'), password, roles: roleNames, active: { type: 'boolean' } },
        },
        responses: { 200: user },
      },
      async handler({ params, body, principal }, http) {
        http.body = await k.auth.updateUser(principal, params.id, body, stateOf(http).requestId);
      },
    }),
    defineRoute<{ id: string }>({
      method: 'get', path: '/api/users/:id/tokens', operationId: 'listUserTokens', summary: 'Active tokens of a user (without their secrets)', permission: 'signed-in',
      description: 'Users see their own tokens; another user\'s need core.users.update.',
      errors: ['forbidden'],
      schemas: { params: uuidParams('id', 'A user id (UUID)'), responses: { 200: everything(tokenSummary) } },
      async handler({ params, principal }, http) {
        tokenGuard(principal, params.id);
        http.body = { data: await k.auth.listTokens(params.id), next: null };
      },
    }),
    defineRoute<{ id: string }, unknown, IssueTokenBody>({
      method: 'post', path: '/api/users/:id/tokens', operationId: 'issueUserToken', summary: 'Issue an API token (its secret is shown once)', permission: 'signed-in',
      description: 'Users issue their own tokens; for another user it needs core.users.update.',
      errors: ['forbidden', 'not-found'],
      schemas: {
        params: uuidParams('id', 'A user id (UUID)'),
        body: { type: 'object', properties: { name: nullableString(100, 'What the token is for; "api" when absent') } },
        responses: { 201: { ...issuedToken, properties: { ...(issuedToken.properties as JsonSchema), kind: { const: 'api' } } } },
      },
      async handler({ params, body, principal }, http) {
        tokenGuard(principal, params.id);
        const issued = await k.auth.issueApiToken(principal, params.id, body, stateOf(http).requestId);
        http.status = 201;
        http.body = issued;
      },
    }),
    defineRoute<{ id: string; tokenId: string }>({
      method: 'delete', path: '/api/users/:id/tokens/:tokenId', operationId: 'revokeUserToken', summary: 'Revoke a token of a user; it stops working at once', permission: 'signed-in',
      description: 'Users revoke their own tokens; another user\'s need core.users.update. Other instances notice within 5 s.',
      errors: ['forbidden', 'not-found'],
      schemas: { params: tokenParams, responses: { 204: noContent } },
      async handler({ params, principal }, http) {
        tokenGuard(principal, params.id);
        await k.auth.revokeToken(principal, params.id, params.tokenId, stateOf(http).requestId);
        http.status = 204;
      },
    }),
    defineRoute({
      method: 'get', path: '/api/roles', operationId: 'listRoles', summary: 'Roles with their permission grants, by name', permission: 'core.roles.read',
      schemas: { responses: { 200: everything(role) } },
      async handler(_input, http) {
        http.body = { data: await k.auth.listRoles(), next: null };
      },
    }),
    defineRoute<{ name: string }, unknown, PutRoleBody>({
      method: 'put', path: '/api/roles/:name', operationId: 'putRole', summary: 'Create or replace a role', permission: 'core.roles.manage',
      description: 'Grants are <plugin>.<entity>.<read|create|update|delete>, with "*" wildcards and ":own" for own records only. The admin role keeps "*". A role name that breaks the naming rule answers 400 naming `name`.',
      schemas: {
        params: roleParams,
        body: {
          type: 'object', required: ['permissions'],
          properties: {
            description: nullableString(500),
            permissions: {
              type: 'array', maxItems: 500,
              items: { type: 'string', maxLength: 200, pattern: GRANT, description: 'Permission: <plugin>.<entity>.<action>, "*" wildcards, ":own" for own records only (e.g. "crm.deals.update:own")' },
            },
          },
        },
        responses: { 200: role },
      },
      async handler({ params, body, principal }, http) {
        http.body = await k.auth.putRole(principal, params.name, body, stateOf(http).requestId);
      },
    }),
    defineRoute<{ name: string }>({
      method: 'delete', path: '/api/roles/:name', operationId: 'deleteRole', summary: 'Delete a role no user holds', permission: 'core.roles.manage',
      description: 'Refused (409, naming the users) while a user holds it; the admin role is never deleted.',
      errors: ['not-found', 'conflict'],
      schemas: { params: roleParams, responses: { 204: noContent } },
      async handler({ params, principal }, http) {
        await k.auth.deleteRole(principal, params.name, stateOf(http).requestId);
        http.status = 204;
      },
    }),
  ];
}
