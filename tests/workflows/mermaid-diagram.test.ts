import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { parseDefinitionText } from '../../core/workflows/definition-parser.ts';
import { mermaidText, toMermaid } from '../../core/workflows/mermaid-diagram.ts';
import type { WorkflowDefinition } from '../../core/workflows/definition-validator.ts';

const example = (file: string) => parseDefinitionText(fs.readFileSync(path.join(repoRoot, 'workflows/examples', file), 'utf8'), file) as WorkflowDefinition;

describe('toMermaid', () => {
  it('draws an automation as a flowchart from its trigger, with yes/no edges', () => {
    const out = toMermaid(example('organization-onboarding.yaml'));
    const lines = out.split('\n').map((l) => l.trim());
    expect(lines[0]).toBe('flowchart TD');
    expect(lines).toContain('trigger(["when base.organizations is created"])');
    expect(lines).toContain('trigger --> s_check_inn');
    expect(lines).toContain('s_check_inn -->|"yes"| s_remember_contact');
    expect(lines).toContain('s_check_inn -->|"no"| s_done');
    expect(lines).toContain('s_notify_sales --> s_done');
    // `end` is a Mermaid keyword: step ids never become bare node ids.
    expect(lines.some((l) => l.startsWith('s_done(["done<br/>end"])'))).toBe(true);
  });

  it('labels switch cases, approval outcomes, deadlines and parallel joins', () => {
    const def: WorkflowDefinition = {
      id: 'workflows.t', title: 'T', kind: 'automation', trigger: { type: 'schedule', cron: '0 9 * * 1-5', timezone: 'Europe/Moscow' }, start: 'route',
      steps: {
        route: { type: 'switch', value: 'record.kind', cases: { big: 'ok', 'a|b"c': 'fan' }, default: 'stop' },
        ok: { type: 'approval', assignees: { role: 'admin' }, deadline: 'P2D', onDeadline: 'stop', approved: 'fan', rejected: 'stop' },
        fan: { type: 'parallel', branches: ['x', 'y'], join: 'j' },
        x: { type: 'set', variables: { a: '1' }, next: 'j' },
        y: { type: 'wait', duration: 'PT1H', next: 'j' },
        j: { type: 'join', next: 'stop' },
        stop: { type: 'end', status: 'cancelled' },
      },
    };
    const out = toMermaid(def);
    expect(out).toContain('trigger(["schedule 0 9 * * 1-5 (Europe/Moscow)"])');
    expect(out).toContain('s_route -->|"big"| s_ok');
    expect(out).toContain('s_route -->|"a#124;b#34;c"| s_fan');
    expect(out).toContain('s_route -->|"default"| s_stop');
    expect(out).toContain('s_ok -->|"approved"| s_fan');
    expect(out).toContain('s_ok -->|"rejected"| s_stop');
    expect(out).toContain('s_ok -->|"deadline"| s_stop');
    expect(out).toContain('s_fan -->|"branch 1"| s_x');
    expect(out).toContain('s_fan -.->|"join"| s_j');
    expect(out).toContain('s_route{"route<br/>switch on record.kind"}');
  });

  it('escapes text so a title cannot break out of its label', () => {
    expect(mermaidText('a "quoted" <b>x</b> | [y] {z}; #1\nnext')).toBe('a #34;quoted#34; #60;b#62;x#60;/b#62; #124; #91;y#93; #123;z#125;#59; #35;1 next');
    const def: WorkflowDefinition = {
      id: 'workflows.t', title: 'T', kind: 'automation', trigger: { type: 'manual' }, start: 'a',
      steps: { a: { type: 'end', title: '"]) --> evil[("' } },
    };
    const out = toMermaid(def);
    expect(out).not.toContain('-->  evil');
    expect(out).toContain('s_a(["#34;#93;) --#62; evil#91;(#34; (a)<br/>end"])');
  });

  it('draws a lifecycle as a state diagram with transitions named and their roles', () => {
    const out = toMermaid(example('product-lifecycle.yaml'));
    const lines = out.split('\n').map((l) => l.trim());
    expect(lines[0]).toBe('stateDiagram-v2');
    expect(lines).toContain('state "Draft" as st_draft');
    expect(lines).toContain('[*] --> st_draft');
    expect(lines).toContain('st_active --> st_draft : Back to draft #91;admin#93;');
    // `from: '*'` fans out from every state that is not final.
    expect(lines.filter((l) => l.includes('--> st_archived : Archive #91;admin#93;'))).toHaveLength(2);
    expect(lines).toContain('st_archived --> [*]');
    expect(lines.some((l) => l.startsWith('st_draft --> st_active : Put on sale #91;admin#93; if has(record.price)'))).toBe(true);
  });
});
