import fs from 'node:fs';
import path from 'node:path';
import { KubikiError } from '../errors.ts';
import type { ShippedWorkflow } from './workflow-store.ts';

const DEFINITION_FILE = /^([a-z][a-z0-9-]{0,60})\.(ya?ml|json)$/;

function readFolder(dir: string, owner: string): ShippedWorkflow[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isFile() && DEFINITION_FILE.test(e.name) && e.name !== 'workflow.schema.json')
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((e) => {
      const file = path.join(dir, e.name);
      return { id: `${owner}.${DEFINITION_FILE.exec(e.name)![1]}`, source: fs.readFileSync(file, 'utf8'), file };
    });
}

/**
 * Shipped workflow definitions: cross-module processes in the top of `workflows/` (ids
 * `workflows.<file name>`; `workflows/examples/` is documentation, not loaded) and each plugin's
 * own in `plugins/<name>/workflows/` (ids `<plugin>.<file name>`).
 */
export function discoverWorkflows(workflowDirs: string[], pluginDirs: { name: string; dir: string }[]): ShippedWorkflow[] {
  const found = [
    ...workflowDirs.flatMap((d) => readFolder(d, 'workflows')),
    ...pluginDirs.flatMap((p) => readFolder(path.join(p.dir, 'workflows'), p.name)),
  ];
  const seen = new Set<string>();
  for (const w of found) {
    if (seen.has(w.id)) throw new KubikiError('config-invalid', `workflow ${w.id} is shipped twice (${w.file})`);
    seen.add(w.id);
  }
  return found;
}
