import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { expect } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { completeInn } from '../../core/entities/russian-tax-ids.ts';
import type { ApiResponse, TestKubiki } from '../helpers/test-kubiki.ts';

/** The n-th valid organization INN of a series (check digit computed as the tax service does). */
export const innOf = (n: number, series = 77): string => completeInn(`${String(series).padStart(2, '0')}${String(n).padStart(7, '0')}`);

/** A CSV text from rows (first row the header); cells holding the delimiter, quotes or newlines are quoted. */
export function csvOf(rows: (string | number)[][], delimiter = ','): string {
  const cell = (v: string | number) => {
    const s = String(v);
    return s.includes(delimiter) || /["\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(delimiter)).join('\n') + '\n';
}

/** POST /api/imports with the file as the raw body. */
export async function upload(t: TestKubiki, query: Record<string, string | number | boolean>, body: string | Buffer, options: { contentType?: string; token?: string } = {}): Promise<ApiResponse> {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]): [string, string] => [k, String(v)]));
  const res = await fetch(`${t.url}/api/imports?${qs}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${options.token ?? t.adminToken}`, 'content-type': options.contentType ?? 'text/csv' },
    body,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed as any };
}

/** POST /api/imports as multipart/form-data: options as fields, the file as a part named file. */
export async function uploadForm(t: TestKubiki, fields: Record<string, string>, file: { name: string; data: string | Buffer; type: string }, token?: string): Promise<ApiResponse> {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append('file', new Blob([file.data], { type: file.type }), file.name);
  const res = await fetch(`${t.url}/api/imports`, { method: 'POST', headers: { authorization: `Bearer ${token ?? t.adminToken}` }, body: form });
  const text = await res.text();
  let parsed: unknown = text;
  try { parsed = text ? JSON.parse(text) : undefined; } catch { /* not JSON */ }
  return { status: res.status, headers: res.headers, body: parsed as any };
}

/** Polls GET /api/imports/{id} until the job is no longer queued or running. */
export async function finished(t: TestKubiki, id: string, token?: string, timeoutMs = 60_000): Promise<any> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const res = await t.api('GET', `/api/imports/${id}?errors=1000`, undefined, token ? { token } : {});
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    if (res.body.status !== 'queued' && res.body.status !== 'running') return res.body;
    if (Date.now() > until) throw new Error(`import ${id} still ${res.body.status}`);
    await sleep(50);
  }
}

/**
 * A plugin folder holding only the named shipped plugins (copied), so these tests boot what they
 * use and nothing a half-written plugin elsewhere in plugins/ might break.
 */
export function shippedPlugins(names: string[] = ['base']): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-import-plugins-'));
  for (const name of names) fs.cpSync(path.join(repoRoot, 'plugins', name), path.join(dir, name), { recursive: true });
  return dir;
}
