import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../core/config.ts';
import type { TestKubiki } from './test-kubiki.ts';

/** Saves and publishes a workflow definition (YAML text) over REST; returns its id and version. */
export async function publishWorkflow(t: TestKubiki, source: string): Promise<{ id: string; version: number }> {
  const id = /^id: (\S+)$/m.exec(source)?.[1];
  if (!id) throw new Error('the definition has no id line');
  const saved = await t.api('PUT', `/api/workflows/${id}`, { source });
  if (saved.status >= 300) throw new Error(`save ${id}: ${saved.status} ${JSON.stringify(saved.body)}`);
  const published = await t.api('POST', `/api/workflows/${id}/publish`, { version: saved.body.version });
  if (published.status !== 200) throw new Error(`publish ${id}: ${published.status} ${JSON.stringify(published.body)}`);
  return { id, version: saved.body.version };
}

export const exampleWorkflow = (name: string): string => fs.readFileSync(path.join(repoRoot, 'workflows/examples', name), 'utf8');

export interface InstanceView {
  id: string;
  status: string;
  error: string | null;
  failedStep: string | null;
  recordId: string | null;
  vars: Record<string, unknown>;
  steps: { id: number; step: string; type: string; status: string; attempts: number; input: any; output: any; error: string | null; dueAt?: string | null }[];
  children: string[];
}

export async function instancesOf(t: TestKubiki, workflow: string): Promise<InstanceView[]> {
  const list = await t.api('GET', `/api/workflows/instances?workflow=${encodeURIComponent(workflow)}&limit=200`);
  if (list.status !== 200) throw new Error(JSON.stringify(list.body));
  const out: InstanceView[] = [];
  for (const i of (list.body.data as { id: string }[]).reverse()) out.push((await t.api('GET', `/api/workflows/instances/${i.id}`)).body);
  return out;
}

/** `step:status` of every step row, in order. */
export const trail = (i: InstanceView): string[] => i.steps.map((s) => `${s.step}:${s.status}`);
