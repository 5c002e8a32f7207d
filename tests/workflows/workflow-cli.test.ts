import fs from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CliSandbox } from '../helpers/cli-sandbox.ts';

// `kubiki workflow validate|diagram` as a child process, on its own database (a PGlite folder or a
// fresh schema of DATABASE_URL's database). `validate` boots Kubiki, so spawns are few.

const cli = new CliSandbox('wfcli');
const tmp = cli.tmp;
const kubiki = (args: string[]) => cli.run(args);

afterAll(() => cli.cleanup());

describe('kubiki workflow', { timeout: 120_000 }, () => {
  it('validate prints every error as path: message and exits 1; a sound definition prints "valid"', async () => {
    const bad = path.join(tmp, 'bad.yaml');
    fs.writeFileSync(bad, [
      'id: workflows.bad',
      'title: Bad',
      'kind: automation',
      'trigger: { type: event, entity: nope.things }',
      'start: a',
      'steps:',
      '  a: { type: condition, if: "record.x >", then: b, else: ghost }',
      '  b: { type: nope }',
      '  c: { type: approval, assignees: { role: pirates }, approved: a, rejected: a }',
      '',
    ].join('\n'));
    const failed = await kubiki(['workflow', 'validate', bad]);
    expect(failed.code, failed.stdout + failed.stderr).toBe(1);
    const lines = failed.stdout.split('\n');
    expect(lines).toContain('/steps/b/type: unknown step type "nope"; use one of condition, switch, set, createRecord, updateRecord, queryRecords, callAction, notify, http, wait, approval, parallel, join, subWorkflow, renderDocument, end');
    expect(lines).toContain('/steps/a/else: step "a" goes to "ghost", but there is no step with that id');
    expect(lines.some((l) => l.startsWith('/trigger/entity: there is no entity nope.things'))).toBe(true);
    expect(lines.some((l) => l.startsWith('/steps/c/assignees/role: there is no role "pirates"'))).toBe(true);
    expect(lines.some((l) => /^\/steps\/a\/if: the expression has a syntax error at line 1, column \d+/.test(l))).toBe(true);

    const good = await kubiki(['workflow', 'validate', 'workflows/examples/product-lifecycle.yaml']);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    expect(good.stdout.trim().split('\n').at(-1)).toBe('valid');
  });

  it('diagram prints Mermaid without a database', async () => {
    const run = await kubiki(['workflow', 'diagram', 'workflows/examples/organization-onboarding.yaml']);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^flowchart TD\n/);
    expect(run.stdout).toContain('s_check_inn -->|"yes"| s_remember_contact');
  });
});
