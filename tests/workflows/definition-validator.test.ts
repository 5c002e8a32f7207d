import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { KubikiError } from '../../core/errors.ts';
import { parseDefinitionText } from '../../core/workflows/definition-parser.ts';
import { validateDefinition, type ValidationEnv } from '../../core/workflows/definition-validator.ts';
import { startKubiki } from '../helpers/test-kubiki.ts';

// The analyst-facing definition layer: every error a definition can have, each with its JSON path,
// checked against an environment built from plain data (no database), plus the shipped examples
// against a real Kubiki's entity registry.

const ENTITIES: Record<string, Record<string, string>> = {
  'base.organizations': { name: 'text', inn: 'text', email: 'text' },
  'base.people': { firstName: 'text', organization: 'uuid', position: 'text', birthDate: 'date', email: 'text' },
  'base.products': { sku: 'text', name: 'text', price: 'decimal', status: 'text', active: 'boolean' },
};

const env = (extra: Partial<ValidationEnv> = {}): ValidationEnv => ({
  hasEntity: (q) => q in ENTITIES,
  entityFields: (q) => (ENTITIES[q] ? new Map(Object.entries(ENTITIES[q]).map(([name, kind]) => [name, { kind }])) : undefined),
  roles: new Set(['admin', 'sales']),
  ...extra,
});

const automation = (steps: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  id: 'workflows.test', title: 'Test', kind: 'automation',
  trigger: { type: 'event', entity: 'base.organizations', on: ['created'] },
  start: Object.keys(steps)[0], steps, ...extra,
});

const lifecycle = (extra: Record<string, unknown> = {}) => ({
  id: 'base.product-lifecycle', title: 'Products', kind: 'lifecycle', entity: 'base.products', stateField: 'status',
  states: [{ name: 'draft', initial: true }, { name: 'active' }, { name: 'archived', final: true }],
  transitions: [
    { name: 'activate', from: ['draft'], to: 'active', roles: ['admin'] },
    { name: 'archive', from: '*', to: 'archived' },
  ],
  ...extra,
});

/** The errors as `path rule`, to compare as a set. */
function errorsOf(raw: unknown, e: ValidationEnv = env()): { path: string; rule: string; message: string }[] {
  const result = validateDefinition(raw, e);
  expect(result.ok).toBe(result.errors.length === 0);
  return result.errors;
}
const at = (errors: { path: string; rule: string; message: string }[], p: string) => errors.filter((e) => e.path === p);

describe('validateDefinition: schema errors in sentences', () => {
  it('names an unknown step type and lists the known ones; wait without duration or until; missing properties', () => {
    const errors = errorsOf(automation({
      a: { type: 'set', variables: { x: '1' }, next: 'b' },
      b: { type: 'nope' },
      c: { type: 'wait' },
      d: { type: 'condition', if: 'true' },
      e: { type: 'notify', channel: 'fax', to: "'x'", body: "'y'", colour: 'red' },
    }));
    expect(at(errors, '/steps/b/type')[0].message).toBe(
      'unknown step type "nope"; use one of condition, switch, set, createRecord, updateRecord, queryRecords, callAction, notify, http, wait, approval, parallel, join, subWorkflow, renderDocument, end');
    expect(at(errors, '/steps/c')[0]).toMatchObject({ rule: 'oneOf', message: 'a wait step needs either duration or until' });
    expect(at(errors, '/steps/d/then')[0]).toMatchObject({ rule: 'required', message: 'a condition step needs then' });
    expect(at(errors, '/steps/e/channel')[0].message).toBe('steps.e.channel must be one of "email", "sms"');
    expect(at(errors, '/steps/e/colour')[0].message).toMatch(/^a notify step has no property "colour"; use one of type, title, channel/);
  });

  it('refuses bad ids, durations and approval modes, and a lifecycle without its parts', () => {
    const errors = errorsOf(automation({
      a: { type: 'wait', duration: 'three days', next: 'Bad Id' },
      b: { type: 'approval', assignees: { role: 'admin' }, mode: { atLeast: 0 }, approved: 'a', rejected: 'a' },
    }, { id: 'NoDot' }));
    expect(at(errors, '/id')[0].message).toMatch(/must be <plugin>\.<name>/);
    expect(at(errors, '/steps/a/duration')[0].message).toMatch(/ISO 8601 duration like PT15M/);
    expect(at(errors, '/steps/a/next')[0].rule).toBe('pattern');
    expect(at(errors, '/steps/b/mode')[0].message).toMatch(/mode must be "any", "all" or \{ atLeast: N \}/);
    const lc = errorsOf({ id: 'base.x', title: 'X', kind: 'lifecycle', states: [{ name: 'a' }] });
    expect(lc.map((e) => e.path)).toEqual(expect.arrayContaining(['/entity', '/stateField', '/transitions', '/states']));
    expect(at(lc, '/states')[0].message).toBe('a lifecycle needs at least 2 states');
  });

  it('reports a document that is not an object', () => {
    const result = validateDefinition('just text', env());
    expect(result.ok).toBe(false);
    expect(result.errors[0].path).toBe('');
  });
});

describe('validateDefinition: step graph', () => {
  it('names the missing id of every kind of step target', () => {
    const errors = errorsOf(automation({
      a: { type: 'condition', if: 'true', then: 'gone1', else: 'b' },
      b: { type: 'switch', value: 'record.name', cases: { big: 'gone2', small: 'c' }, default: 'gone3' },
      c: { type: 'approval', assignees: { role: 'admin' }, deadline: 'P2D', onDeadline: 'gone4', approved: 'gone5', rejected: 'd' },
      d: { type: 'parallel', branches: ['gone6', 'e'], join: 'gone7' },
      e: { type: 'set', variables: { x: '1' }, next: 'gone8' },
    }));
    const missing = errors.filter((e) => e.rule === 'missing-step');
    expect(missing.map((e) => e.path).sort()).toEqual([
      '/steps/a/then', '/steps/b/cases/big', '/steps/b/default', '/steps/c/approved', '/steps/c/onDeadline', '/steps/d/branches/0', '/steps/d/join', '/steps/e/next',
    ].sort());
    expect(at(errors, '/steps/a/then')[0].message).toBe('step "a" goes to "gone1", but there is no step with that id');

    const start = errorsOf(automation({ a: { type: 'end' } }, { start: 'nowhere' }));
    expect(at(start, '/start')[0]).toMatchObject({ rule: 'missing-step', message: 'the workflow starts at step "nowhere", but there is no step with that id' });
    const transition = errorsOf(lifecycle({ transitions: [{ name: 'activate', from: ['draft'], to: 'active', steps: 'ghost' }] }));
    expect(at(transition, '/transitions/0/steps')[0].message).toMatch(/transition "activate" runs step "ghost", but there is no step/);
  });

  it('reports steps no path reaches, from start and from transitions', () => {
    const errors = errorsOf(automation({ a: { type: 'end' }, orphan: { type: 'set', variables: { x: '1' }, next: 'a' } }));
    expect(errors).toEqual([{ path: '/steps/orphan', rule: 'unreachable', message: 'step "orphan" can never run: no path leads to it from the start step "a"' }]);
    const lc = errorsOf(lifecycle({
      transitions: [{ name: 'archive', from: '*', to: 'archived', steps: 'tell' }],
      steps: { tell: { type: 'notify', channel: 'email', to: "'a@b.c'", body: "'x'" }, lonely: { type: 'end' } },
    }));
    expect(lc.map((e) => `${e.path} ${e.rule}`)).toEqual(['/steps/lonely unreachable']);
  });

  it('requires every parallel branch to reach its join step, which must be a join', () => {
    const errors = errorsOf(automation({
      p: { type: 'parallel', branches: ['a', 'b', 'c'], join: 'j' },
      a: { type: 'set', variables: { x: '1' }, next: 'j' },
      b: { type: 'end' },
      c: { type: 'condition', if: 'true', then: 'j' },
      j: { type: 'join', next: 'done' },
      done: { type: 'end' },
    }));
    expect(errors.map((e) => `${e.path} ${e.rule}`)).toEqual(['/steps/p/branches/1 parallel-join', '/steps/p/branches/2 parallel-join']);
    expect(errors[0].message).toBe('branch "b" never reaches the join step "j"');
    expect(errors[1].message).toBe('branch "c" can finish at step "c" without reaching the join step "j"');
    const notJoin = errorsOf(automation({ p: { type: 'parallel', branches: ['a', 'b'], join: 'a' }, a: { type: 'end' }, b: { type: 'end' } }));
    expect(at(notJoin, '/steps/p/join')[0].rule).toBe('join-step');
  });
});

describe('validateDefinition: lifecycles', () => {
  it('accepts a sound lifecycle', () => {
    expect(errorsOf(lifecycle())).toEqual([]);
  });

  it('needs exactly one initial state, unique names, known from/to, no exit from a final state, an existing state field', () => {
    const errors = errorsOf(lifecycle({
      stateField: 'stage',
      states: [{ name: 'draft', initial: true }, { name: 'active', initial: true }, { name: 'archived', final: true }, { name: 'draft' }],
      transitions: [
        { name: 'activate', from: ['draft', 'limbo'], to: 'active' },
        { name: 'activate', from: ['archived'], to: 'heaven' },
      ],
    }));
    expect(errors.map((e) => `${e.path} ${e.rule}`).sort()).toEqual([
      '/stateField unknown-field',
      '/states initial-state',
      '/states/3/name duplicate-state',
      '/transitions/0/from/1 unknown-state',
      '/transitions/1/from/0 from-final-state',
      '/transitions/1/name duplicate-transition',
      '/transitions/1/to unknown-state',
    ].sort());
    expect(at(errors, '/states')[0].message).toBe('exactly one state must be initial; 2 are: draft, active');
    expect(at(errors, '/transitions/1/from/0')[0].message).toBe('state "archived" is final, so no transition may leave it');
    expect(at(errors, '/stateField')[0].message).toMatch(/^base\.products has no field "stage"; its fields are sku, name/);
    const none = errorsOf(lifecycle({ states: [{ name: 'a' }, { name: 'b' }], transitions: [] }));
    expect(at(none, '/states')[0].message).toMatch(/exactly one state must be initial/);
  });
});

describe('validateDefinition: references', () => {
  it('reports unknown entities wherever an entity is named, and unknown fields of known ones', () => {
    const errors = errorsOf(automation({
      a: { type: 'createRecord', entity: 'crm.deals', fields: { title: "'x'" }, next: 'b' },
      b: { type: 'updateRecord', entity: 'base.people', id: 'record.id', fields: { nickname: "'x'" }, next: 'c' },
      c: { type: 'queryRecords', entity: 'crm.leads', next: 'd' },
      d: { type: 'queryRecords', entity: 'base.people', where: { organization: 'record.id', shoeSize: '42' }, sort: '-createdAt,height' },
    }, { trigger: { type: 'event', entity: 'crm.deals' } }));
    expect(errors.filter((e) => e.rule === 'unknown-entity').map((e) => e.path).sort()).toEqual(['/steps/a/entity', '/steps/c/entity', '/trigger/entity']);
    expect(at(errors, '/trigger/entity')[0].message).toMatch(/^there is no entity crm\.deals/);
    expect(errors.filter((e) => e.rule === 'unknown-field').map((e) => e.path).sort()).toEqual(['/steps/b/fields/nickname', '/steps/d/sort', '/steps/d/where/shoeSize']);
    const lc = errorsOf(lifecycle({ entity: 'base.gadgets' }));
    expect(lc.map((e) => `${e.path} ${e.rule}`)).toEqual(['/entity unknown-entity']);
    const manual = errorsOf(automation({ a: { type: 'end' } }, { trigger: { type: 'manual', entity: 'crm.deals' } }));
    expect(at(manual, '/trigger/entity')[0].rule).toBe('unknown-entity');
  });

  it('needs a date or date-time field for a dateRelative trigger', () => {
    const trig = (field: string) => automation({ a: { type: 'end' } }, { trigger: { type: 'dateRelative', entity: 'base.people', field, offset: '-P3D' } });
    expect(errorsOf(trig('birthDate'))).toEqual([]);
    expect(errorsOf(trig('createdAt'))).toEqual([]);
    expect(errorsOf(trig('email'))).toEqual([{ path: '/trigger/field', rule: 'date-field', message: '"email" of base.people is a text field; a dateRelative trigger needs a date or date-time field' }]);
    expect(errorsOf(trig('deathDate'))[0]).toMatchObject({ path: '/trigger/field', rule: 'unknown-field' });
    const unknown = errorsOf(automation({ a: { type: 'end' } }, { trigger: { type: 'dateRelative', entity: 'hr.leaves', field: 'from', offset: 'P1D' } }));
    expect(unknown.map((e) => `${e.path} ${e.rule}`)).toEqual(['/trigger/entity unknown-entity']);
  });

  it('reports roles that do not exist, only when the roles are known', () => {
    const def = lifecycle({
      transitions: [{ name: 'activate', from: ['draft'], to: 'active', roles: ['admin', 'ghosts'], steps: 'ok' }],
      steps: { ok: { type: 'approval', assignees: { role: 'auditors' }, approved: 'done', rejected: 'done' }, done: { type: 'end' } },
    });
    const errors = errorsOf(def);
    expect(errors.map((e) => `${e.path} ${e.rule}`).sort()).toEqual(['/steps/ok/assignees/role unknown-role', '/transitions/0/roles/1 unknown-role']);
    expect(at(errors, '/transitions/0/roles/1')[0].message).toBe('there is no role "ghosts"; roles are admin, sales');
    expect(errorsOf(def, env({ roles: undefined }))).toEqual([]);
    const manual = errorsOf(automation({ a: { type: 'end' } }, { trigger: { type: 'manual', roles: ['sales', 'pirates'] } }));
    expect(manual.map((e) => `${e.path} ${e.rule}`)).toEqual(['/trigger/roles/1 unknown-role']);
  });

  it('checks sub-workflows, templates and actions when their sets are given', () => {
    const def = automation({
      a: { type: 'subWorkflow', workflow: 'crm.follow-up', next: 'b' },
      b: { type: 'renderDocument', template: 'finance/invoice', recordId: 'record.id', next: 'c' },
      c: { type: 'callAction', action: 'finance.postInvoice', next: 'd' },
      d: { type: 'notify', channel: 'email', to: "'a@b.c'", body: "'x'", attachDocument: 'a' },
    });
    expect(errorsOf(def, env()).map((e) => e.rule)).toEqual(['attach-document']);
    const errors = errorsOf(def, env({ workflows: new Set(['crm.other']), templates: new Set(['base/quote']), actions: new Set(['crm.close']) }));
    expect(errors.map((e) => `${e.path} ${e.rule}`)).toEqual([
      '/steps/a/workflow unknown-workflow', '/steps/b/template unknown-template', '/steps/c/action unknown-action', '/steps/d/attachDocument attach-document',
    ]);
    expect(errorsOf(def, env({ workflows: new Set(['crm.follow-up']), templates: new Set(['finance/invoice']), actions: new Set(['finance.postInvoice']) })).length).toBe(1);
  });

  it('refuses an approval that needs more approvals than listed users', () => {
    const approval = (atLeast: number) => automation({
      a: { type: 'approval', assignees: { users: ['ann', 'bob'] }, mode: { atLeast }, approved: 'b', rejected: 'b' }, b: { type: 'end' },
    });
    expect(errorsOf(approval(2))).toEqual([]);
    expect(errorsOf(approval(3))).toEqual([{
      path: '/steps/a/mode/atLeast', rule: 'approval-at-least', message: 'atLeast is 3 but only 2 users are listed, so the approval could never pass',
    }]);
  });
});

describe('validateDefinition: schedules and expressions', () => {
  it('checks cron syntax and the IANA time zone', () => {
    const schedule = (cron: string, timezone?: string) => automation({ a: { type: 'end' } }, { trigger: { type: 'schedule', cron, ...(timezone ? { timezone } : {}) } });
    expect(errorsOf(schedule('0 9 * * 1-5', 'Europe/Moscow'))).toEqual([]);
    expect(errorsOf(schedule('*/5 * * * * *'))).toEqual([]);
    const bad = errorsOf(schedule('61 * * * *', 'Mars/Olympus'));
    expect(bad.map((e) => `${e.path} ${e.rule}`)).toEqual(['/trigger/cron cron', '/trigger/timezone timezone']);
    expect(bad[0].message).toMatch(/^"61 \* \* \* \*" is not a valid cron expression/);
    expect(bad[1].message).toMatch(/^"Mars\/Olympus" is not a known time zone/);
    expect(errorsOf(schedule('every monday'))[0].path).toBe('/trigger/cron');
  });

  it('reports each broken expression with its path, line and column', () => {
    const errors = errorsOf(automation({
      a: { type: 'condition', if: 'record.inn ==', then: 'b' },
      b: { type: 'set', variables: { ok: "'fine'", broken: "record.name + (\n 'x'" }, next: 'c' },
      c: { type: 'http', method: 'POST', url: "'https://example.com'", headers: { 'X-Sig': ')' }, next: 'd' },
      d: { type: 'wait', until: 'now >' },
    }, { trigger: { type: 'event', entity: 'base.organizations', condition: 'record.', changed: { field: 'inn', to: "'1'" } } }));
    const paths = errors.map((e) => e.path);
    expect(paths).toEqual(['/trigger/condition', '/steps/a/if', '/steps/b/variables/broken', '/steps/c/headers/X-Sig', '/steps/d/until']);
    for (const e of errors) expect(e.message).toMatch(/^the expression has a syntax error at line \d+, column \d+: /);
    expect(at(errors, '/steps/b/variables/broken')[0].message).toMatch(/at line 2, column/);
    const lc = errorsOf(lifecycle({ transitions: [{ name: 'activate', from: ['draft'], to: 'active', condition: 'record.price >' }] }));
    expect(lc.map((e) => e.path)).toEqual(['/transitions/0/condition']);
  });
});

describe('parseDefinitionText', () => {
  it('reads YAML and JSON, by extension or by sniffing', () => {
    expect(parseDefinitionText('id: a.b\ntrigger:\n  on: [created]\n', 'x.yaml')).toEqual({ id: 'a.b', trigger: { on: ['created'] } });
    expect(parseDefinitionText('{"id": "a.b"}')).toEqual({ id: 'a.b' });
    expect(parseDefinitionText('id: a.b')).toEqual({ id: 'a.b' });
  });

  it('gives the line and column of a YAML or JSON syntax error', () => {
    const yaml = 'id: workflows.x\nsteps:\n  a:\n    type: end\n   next: b\n';
    const e = (() => { try { parseDefinitionText(yaml, 'broken.yaml'); } catch (err) { return err; } })();
    expect(e).toBeInstanceOf(KubikiError);
    const err = e as KubikiError;
    expect(err.code).toBe('validation-failed');
    expect(err.extra).toMatchObject({ line: 5, column: 1 });
    expect(err.message).toMatch(/broken\.yaml: line 5, column 1: /);

    expect(() => parseDefinitionText('{\n  "id": "a.b",\n}', 'x.json')).toThrow(/x\.json: line 3, column 1/);
    expect(() => parseDefinitionText('trigger:\n  cron: * * * * *\n', 'c.yaml')).toThrow(/line 2, column \d+: .*must be quoted/);
    expect(() => parseDefinitionText('a: 1\na: 2\n', 'd.yaml')).toThrow(/line 2, column 1: Map keys must be unique/);
  });
});

describe('shipped examples', () => {
  const examples = ['organization-onboarding.yaml', 'product-lifecycle.yaml'].map((f) => path.join(repoRoot, 'workflows/examples', f));
  const read = (file: string) => parseDefinitionText(fs.readFileSync(file, 'utf8'), file);

  it('validate against plain data', () => {
    for (const file of examples) expect(validateDefinition(read(file), env()).errors, file).toEqual([]);
  });

  it('validate against the real entity registry and roles of the base plugin', async () => {
    const t = await startKubiki();
    try {
      const { k } = t;
      const realEnv: ValidationEnv = {
        hasEntity: (q) => k.registry.has(q),
        entityFields: (q) => (k.registry.has(q) ? k.registry.get(q).fields : undefined),
        roles: new Set((await k.auth.listRoles()).map((r) => r.name)),
        templates: new Set((await k.templates.list()).map((tpl) => tpl.id)),
      };
      for (const file of examples) {
        const result = validateDefinition(read(file), realEnv);
        expect(result.errors, file).toEqual([]);
        expect(result.ok).toBe(true);
        expect(result.definition?.id).toMatch(/\./);
      }
    } finally {
      await t.close();
    }
  });
});
