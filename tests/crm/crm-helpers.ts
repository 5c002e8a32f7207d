import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'vitest';
import { SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

const HERE = path.dirname(new URL(import.meta.url).pathname);
export const CRM_FIXTURES = path.join(HERE, 'fixtures/plugins');
const TMP = path.join(HERE, '.tmp');

/**
 * A plugin folder holding only base and crm (symlinks to the shipped ones), plus `extra` fixture
 * plugins: CRM must work with no other module present, and the tests must not depend on plugins
 * other people are building next to it.
 */
function pluginDir(extra: string[]): string {
  // Inside the repository, so plugin code still resolves the `kubiki/plugin` package.
  fs.mkdirSync(TMP, { recursive: true });
  const dir = fs.mkdtempSync(path.join(TMP, 'plugins-'));
  // Plugin discovery wants real folders; their contents may be links (code resolves to its real path).
  const link = (from: string, name: string) => {
    fs.mkdirSync(path.join(dir, name));
    for (const entry of fs.readdirSync(from)) fs.symlinkSync(path.join(from, entry), path.join(dir, name, entry));
  };
  for (const name of ['base', 'crm']) link(path.join(SHIPPED_PLUGINS, name), name);
  for (const name of extra) link(path.join(CRM_FIXTURES, name), name);
  return dir;
}

export async function startCrm(options: { extra?: string[]; enable?: string[] } = {}): Promise<TestKubiki> {
  const dir = pluginDir(options.extra ?? []);
  const t = await startKubiki({ pluginDirs: [dir], enable: ['crm', ...(options.enable ?? [])] });
  const close = t.close.bind(t);
  t.close = async (o) => {
    try { await close(o); } finally { fs.rmSync(dir, { recursive: true, force: true }); }
  };
  return t;
}

/** A user holding `roles` (existing roles, e.g. the plugin's sales role); returns their token and id. */
export async function userWithRoles(t: TestKubiki, roles: string[], extra: { email?: string } = {}): Promise<{ token: string; id: string; username: string }> {
  const username = `u${Math.random().toString(36).slice(2, 10)}`;
  const user = await t.api('POST', '/api/users', { username, roles, ...extra });
  if (user.status !== 201) throw new Error(`user: ${JSON.stringify(user.body)}`);
  const token = await t.api('POST', `/api/users/${user.body.id}/tokens`, { name: 'test' });
  return { token: token.body.token as string, id: user.body.id as string, username };
}

export async function created<T = any>(t: TestKubiki, url: string, body: unknown, token?: string): Promise<T> {
  const res = await t.api('POST', url, body, { token });
  expect(res.status, `${url}: ${JSON.stringify(res.body)}`).toBe(201);
  return res.body as T;
}

export const organization = (t: TestKubiki, fields: Record<string, unknown> = {}) =>
  created(t, '/api/base/organizations', { name: `Org ${Math.random().toString(36).slice(2, 8)}`, ...fields });

/** Rows of the crm tables (and a few others), to show a refused request wrote nothing. */
export async function counts(t: TestKubiki): Promise<Record<string, number>> {
  const tables = ['crm_customers', 'crm_activities', 'crm_deals', 'crm_leads', 'crm_quotes', 'crm_tasks', 'crm_segments', 'crm_mailings', 'crm_mailing_recipients', 'base_organizations', 'base_people', 'kubiki_notifications'];
  const out: Record<string, number> = {};
  for (const table of tables) out[table] = await t.count(table);
  return out;
}
