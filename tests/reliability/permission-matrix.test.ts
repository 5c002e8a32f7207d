// The role × route matrix, generated from the OpenAPI document with every shipped plugin enabled:
// for each operation behind a named permission, a user holding every other permission the document
// names — but not that one — is refused with 403 naming it, and nothing is written; the same
// request by a user holding just that permission gets past the permission check.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

interface Parameter { name: string; in: string; schema?: { enum?: unknown[] } }
interface Operation { operationId: string; parameters?: Parameter[]; 'x-permission'?: string }
interface Doc { paths: Record<string, Record<string, Operation>> }

const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
// Not permissions but audiences: anyone, or any signed-in user (checked in tests/auth).
const AUDIENCES = new Set(['public', 'signed-in']);

let t: TestKubiki;
let doc: Doc;
beforeAll(async () => {
  t = await startKubiki({ enable: ['crm', 'finance', 'warehouse', 'payroll'] });
  doc = (await t.api<Doc>('GET', '/api/openapi.json')).body;
}, 180_000);
afterAll(() => t?.close());

const guarded = () => Object.entries(doc.paths).flatMap(([path, item]) => METHODS
  .filter((m) => item[m]?.['x-permission'] && !AUDIENCES.has(item[m]['x-permission'] as string))
  .map((method) => ({ path, method, op: item[method], permission: item[method]['x-permission'] as string })));

const urlOf = (path: string, op: Operation) => path.replace(/\{([^}]+)\}/g, (_m, name: string) => {
  const p = op.parameters?.find((x) => x.name === name);
  return p?.schema?.enum?.length ? String(p.schema.enum[0]) : '01234567-89ab-7def-8123-456789abcdef';
});

const traces = async () => ({ audit: await t.count('kubiki_audit'), outbox: await t.count('kubiki_outbox') });

describe('role × route permission matrix', () => {
  it('refuses every guarded operation with 403 naming its permission to a role holding all the others, writing nothing', { timeout: 600_000 }, async () => {
    const routes = guarded();
    const permissions = [...new Set(routes.map((r) => r.permission))].sort();
    expect(routes.length).toBeGreaterThan(300);
    expect(permissions.length).toBeGreaterThan(150);
    const allBut = new Map<string, string>();
    const only = new Map<string, string>();
    for (const p of permissions) {
      allBut.set(p, (await t.userWith(permissions.filter((x) => x !== p))).token);
      only.set(p, (await t.userWith([p])).token);
    }
    console.log(`[permission-matrix] ${routes.length} guarded operations, ${permissions.length} permissions`);
    const failures: string[] = [];
    for (const { path, method, op, permission } of routes) {
      const url = urlOf(path, op);
      const body = ['post', 'put', 'patch'].includes(method) ? {} : undefined;
      const before = await traces();
      const refused = await t.api(method.toUpperCase(), url, body, { token: allBut.get(permission) });
      const where = `${method.toUpperCase()} ${path} (${permission})`;
      if (refused.status !== 403 || refused.body?.permission !== permission) failures.push(`${where}: without it answered ${refused.status} ${JSON.stringify(refused.body).slice(0, 200)}`);
      else if (JSON.stringify(await traces()) !== JSON.stringify(before)) failures.push(`${where}: a refused request wrote rows`);
      const allowed = await t.api(method.toUpperCase(), url, body, { token: only.get(permission) });
      if (allowed.status === 403 && allowed.body?.permission === permission) failures.push(`${where}: refused even with the permission`);
      if (allowed.status >= 500) failures.push(`${where}: with the permission answered ${allowed.status}`);
    }
    expect(failures).toEqual([]);
  });
});
