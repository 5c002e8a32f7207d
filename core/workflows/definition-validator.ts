import cron from 'node-cron';
import { checkExpression } from './expressions.ts';
import { checkDefinitionSchema, type DefinitionError } from './definition-schema.ts';
import { pointer, stepEdges, type Mapping, type Step, type Transition, type WorkflowDefinition } from './workflow-definition.ts';

export type { WorkflowDefinition } from './workflow-definition.ts';
export type { DefinitionError } from './definition-schema.ts';

/** What a definition may refer to. Sets left out are not checked (e.g. no roles without a database). */
export interface ValidationEnv {
  hasEntity(q: string): boolean;
  /** Declared fields (custom fields included) of an entity, or undefined when there is no such entity. */
  entityFields(q: string): Map<string, { kind: string }> | undefined;
  roles?: Set<string>;
  workflows?: Set<string>;
  templates?: Set<string>;
  actions?: Set<string>;
  /** Names of the plugins this installation knows (for `requires`). */
  plugins?: Set<string>;
  /** Enabled plugins: only their actions are known (a disabled plugin's code has not run). */
  enabledPlugins?: Set<string>;
}

export interface ValidationResult {
  ok: boolean;
  /** Every problem found, schema and semantic, in document order as far as possible. */
  errors: DefinitionError[];
  /** The definition, typed; set whenever it has the schema's shape (even if semantic errors remain — see `ok`). */
  definition?: WorkflowDefinition;
}

/** Fields every record has; readable in triggers and queries, never written by a workflow. */
const SYSTEM_FIELDS = new Map<string, { kind: string }>([
  ['id', { kind: 'uuid' }], ['version', { kind: 'integer' }], ['createdAt', { kind: 'datetime' }],
  ['updatedAt', { kind: 'datetime' }], ['createdBy', { kind: 'uuid' }], ['updatedBy', { kind: 'uuid' }],
]);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Every CEL expression of a step, with its pointer relative to the step. */
function stepExpressions(step: Step): [ptr: string, source: string][] {
  const out: [string, string][] = [];
  const one = (name: string, source: string | undefined) => { if (typeof source === 'string') out.push([pointer(name), source]); };
  const map = (name: string, mapping: Mapping | undefined) => {
    for (const [key, source] of Object.entries(mapping ?? {})) if (typeof source === 'string') out.push([pointer(name, key), source]);
  };
  switch (step.type) {
    case 'condition': one('if', step.if); break;
    case 'switch': one('value', step.value); break;
    case 'set': map('variables', step.variables); break;
    case 'createRecord': map('fields', step.fields); break;
    case 'updateRecord': one('id', step.id); map('fields', step.fields); break;
    case 'queryRecords': map('where', step.where); break;
    case 'callAction': map('input', step.input); break;
    case 'notify': one('to', step.to); one('subject', step.subject); one('body', step.body); break;
    case 'http': one('url', step.url); map('headers', step.headers); one('body', step.body); break;
    case 'wait': one('until', step.until); break;
    case 'approval': one('subject', step.subject); break;
    case 'subWorkflow': map('input', step.input); break;
    case 'renderDocument': one('recordId', step.recordId); break;
    default: break;
  }
  return out;
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

/**
 * The semantic checks, run on the parts of a definition that passed the schema (`usable(ptr)`), so
 * one mistake is reported once rather than as a cascade.
 */
class SemanticChecker {
  readonly errors: DefinitionError[] = [];
  private readonly steps: [string, Step][];
  private readonly stepIds: Set<string>;

  constructor(private readonly def: WorkflowDefinition, private readonly env: ValidationEnv, private readonly usable: (ptr: string) => boolean, allStepIds: Set<string>) {
    this.stepIds = allStepIds;
    this.steps = isObject(def.steps) ? Object.entries(def.steps).filter(([id]) => usable(pointer('steps', id))) : [];
  }

  /** The transitions that passed the schema, with their index. */
  private transitions(): [number, Transition][] {
    const all: unknown = this.def.transitions;
    return Array.isArray(all) ? all.map((t: Transition, i): [number, Transition] => [i, t]).filter(([i]) => this.usable(pointer('transitions', i))) : [];
  }

  private add(path: string, rule: string, message: string): void {
    this.errors.push({ path, rule, message });
  }

  run(): DefinitionError[] {
    const kindOk = this.usable('/kind');
    const plugins = this.env.plugins;
    if (plugins && Array.isArray(this.def.unless)) {
      this.def.unless.forEach((p, i) => {
        if (typeof p === 'string' && !plugins.has(p)) this.add(pointer('unless', i), 'unknown-plugin', `there is no plugin "${p}"; plugins are ${[...plugins].sort().join(', ')}`);
      });
    }
    if (plugins && Array.isArray(this.def.requires)) {
      this.def.requires.forEach((p, i) => {
        if (typeof p === 'string' && !plugins.has(p)) this.add(pointer('requires', i), 'unknown-plugin', `there is no plugin "${p}"; plugins are ${[...plugins].sort().join(', ')}`);
      });
    }
    if (kindOk && this.def.kind === 'lifecycle') this.lifecycle();
    if (kindOk && this.def.kind === 'automation') this.automation();
    this.trigger();
    this.stepTargets();
    if (kindOk) this.reachability();
    for (const [id, step] of this.steps) this.step(id, step);
    this.expressions();
    return this.errors;
  }

  // ---- references to the outside world

  private entity(path: string, q: string | undefined): boolean {
    if (typeof q !== 'string' || !this.usable(path)) return false;
    if (this.env.hasEntity(q)) return true;
    this.add(path, 'unknown-entity', `there is no entity ${q}; check the plugin and the plural name (e.g. base.organizations)`);
    return false;
  }

  private fieldsOf(q: string, withSystem: boolean): Map<string, { kind: string }> {
    const declared = this.env.entityFields(q) ?? new Map<string, { kind: string }>();
    return withSystem ? new Map([...SYSTEM_FIELDS, ...declared]) : declared;
  }

  private field(path: string, q: string, name: string, withSystem: boolean): { kind: string } | undefined {
    const found = this.fieldsOf(q, withSystem).get(name);
    if (!found) {
      const known = [...this.fieldsOf(q, false).keys()];
      this.add(path, 'unknown-field', `${q} has no field "${name}"${known.length ? `; its fields are ${known.join(', ')}` : ''}`);
    }
    return found;
  }

  private role(path: string, role: string): void {
    if (this.env.roles && !this.env.roles.has(role)) {
      this.add(path, 'unknown-role', `there is no role "${role}"${this.env.roles.size ? `; roles are ${[...this.env.roles].sort().join(', ')}` : ''}`);
    }
  }

  /** An action of an enabled plugin (one of a disabled plugin is checked when it is enabled). */
  private knownAction(path: string, action: string): void {
    if (this.env.actions && !this.env.actions.has(action) && (!this.env.enabledPlugins || this.env.enabledPlugins.has(action.split('.')[0]))) {
      this.add(path, 'unknown-action', `no enabled plugin declares the action "${action}"`);
    }
  }

  // ---- lifecycle

  private lifecycle(): void {
    const def = this.def;
    if (def.trigger !== undefined) this.add('/trigger', 'lifecycle-shape', 'a lifecycle has no trigger: its steps run when a transition is taken (transitions[].steps)');
    if (def.start !== undefined) this.add('/start', 'lifecycle-shape', 'a lifecycle has no start step: each transition names its first step in steps');
    const entity = this.entity('/entity', def.entity) ? def.entity : undefined;
    if (entity && typeof def.stateField === 'string' && this.usable('/stateField')) {
      const field = this.field('/stateField', entity, def.stateField, false);
      if (field && field.kind !== 'text') this.add('/stateField', 'state-field', `the state field "${def.stateField}" must be a text field; it is ${field.kind}`);
    }
    const states = Array.isArray(def.states) && this.usable('/states') ? def.states : undefined;
    const stateNames = new Map<string, { final: boolean }>();
    if (states) {
      states.forEach((s, i) => {
        if (stateNames.has(s.name)) this.add(pointer('states', i, 'name'), 'duplicate-state', `there is already a state named "${s.name}"`);
        else stateNames.set(s.name, { final: s.final === true });
        if (s.initial && s.final) this.add(pointer('states', i), 'initial-final', `state "${s.name}" cannot be both initial and final`);
        if (s.initial && s.editable !== undefined && s.editable !== true) this.add(pointer('states', i, 'editable'), 'initial-editable', `state "${s.name}" is where records start: it must stay editable (lock the states a transition leads to)`);
        if (Array.isArray(s.editable) && entity) s.editable.forEach((name, j) => this.field(pointer('states', i, 'editable', j), entity, name, false));
      });
      const initial = states.filter((s) => s.initial === true).map((s) => s.name);
      if (initial.length !== 1) {
        this.add('/states', 'initial-state', initial.length === 0
          ? 'exactly one state must be initial ("initial: true"); none is'
          : `exactly one state must be initial; ${initial.length} are: ${initial.join(', ')}`);
      }
    }
    const transitionNames = new Set<string>();
    for (const [i, t] of this.transitions()) {
      if (transitionNames.has(t.name)) this.add(pointer('transitions', i, 'name'), 'duplicate-transition', `there is already a transition named "${t.name}"`);
      transitionNames.add(t.name);
      if (states) {
        if (Array.isArray(t.from)) {
          t.from.forEach((name, j) => {
            const state = stateNames.get(name);
            if (!state) this.add(pointer('transitions', i, 'from', j), 'unknown-state', `transition "${t.name}" starts from "${name}", which is not a state; states are ${[...stateNames.keys()].join(', ')}`);
            else if (state.final) this.add(pointer('transitions', i, 'from', j), 'from-final-state', `state "${name}" is final, so no transition may leave it`);
          });
        }
        if (!stateNames.has(t.to)) this.add(pointer('transitions', i, 'to'), 'unknown-state', `transition "${t.name}" goes to "${t.to}", which is not a state; states are ${[...stateNames.keys()].join(', ')}`);
      }
      (t.roles ?? []).forEach((role, j) => this.role(pointer('transitions', i, 'roles', j), role));
      if (t.action !== undefined) this.knownAction(pointer('transitions', i, 'action'), t.action);
    }
  }

  private automation(): void {
    const def = this.def;
    if (def.entity !== undefined) this.entity('/entity', def.entity);
    for (const key of ['stateField', 'states', 'transitions'] as const) {
      if (def[key] !== undefined) this.add(pointer(key), 'automation-shape', `an automation has no ${key}; states and transitions belong to a lifecycle (kind: lifecycle)`);
    }
  }

  // ---- trigger

  private trigger(): void {
    const t = this.def.trigger;
    if (!t || !this.usable('/trigger')) return;
    switch (t.type) {
      case 'event':
        if (this.entity('/trigger/entity', t.entity) && t.changed) this.field('/trigger/changed/field', t.entity, t.changed.field, true);
        break;
      case 'dateRelative':
        if (this.entity('/trigger/entity', t.entity)) {
          const field = this.field('/trigger/field', t.entity, t.field, true);
          if (field && field.kind !== 'date' && field.kind !== 'datetime') {
            this.add('/trigger/field', 'date-field', `"${t.field}" of ${t.entity} is a ${field.kind} field; a dateRelative trigger needs a date or date-time field`);
          }
        }
        break;
      case 'manual':
        if (t.entity !== undefined) this.entity('/trigger/entity', t.entity);
        (t.roles ?? []).forEach((role, i) => this.role(pointer('trigger', 'roles', i), role));
        break;
      case 'schedule': {
        const detail = cron.validateDetailed(t.cron);
        if (!detail.valid) {
          const why = detail.errors?.map((e) => e.message).join('; ');
          this.add('/trigger/cron', 'cron', `"${t.cron}" is not a valid cron expression${why ? ` (${why})` : ''}; use 5 or 6 fields, e.g. "0 9 * * 1-5" for 09:00 on weekdays`);
        }
        if (t.timezone !== undefined && !isTimeZone(t.timezone)) {
          this.add('/trigger/timezone', 'timezone', `"${t.timezone}" is not a known time zone; use an IANA name such as Europe/Moscow or UTC`);
        }
        break;
      }
      case 'webhook':
        break;
    }
  }

  // ---- the step graph

  private stepTargets(): void {
    const missing = (path: string, id: string, what: string) =>
      this.add(path, 'missing-step', `${what} "${id}", but there is no step with that id`);
    if (this.def.start !== undefined && this.usable('/start') && !this.stepIds.has(this.def.start)) missing('/start', this.def.start, 'the workflow starts at step');
    for (const [i, t] of this.transitions()) {
      if (t.steps !== undefined && !this.stepIds.has(t.steps)) missing(pointer('transitions', i, 'steps'), t.steps, `transition "${t.name}" runs step`);
    }
    for (const [id, step] of this.steps) {
      for (const edge of stepEdges(step)) {
        if (!this.stepIds.has(edge.to)) missing(pointer('steps', id) + edge.pointer, edge.to, `step "${id}" goes to`);
      }
    }
  }

  private successors(id: string): string[] {
    const step = this.def.steps?.[id];
    if (!step || !this.usable(pointer('steps', id))) return [];
    return stepEdges(step).map((e) => e.to).filter((to) => this.stepIds.has(to));
  }

  private reachability(): void {
    if (this.steps.length === 0) return;
    const roots: string[] = [];
    if (this.def.kind === 'automation') {
      // Without a valid start every step would look unreachable; the start error says it once.
      if (typeof this.def.start !== 'string' || !this.stepIds.has(this.def.start)) return;
      roots.push(this.def.start);
    } else {
      for (const [, t] of this.transitions()) if (t.steps !== undefined && this.stepIds.has(t.steps)) roots.push(t.steps);
    }
    const seen = new Set<string>(roots);
    const queue = [...roots];
    while (queue.length) {
      for (const next of this.successors(queue.shift() as string)) {
        if (!seen.has(next)) { seen.add(next); queue.push(next); }
      }
    }
    // An invalid step's edges are unknown, so it may be what reaches the others: then say nothing.
    if ([...this.stepIds].some((id) => seen.has(id) && !this.usable(pointer('steps', id)))) return;
    for (const [id] of this.steps) {
      if (!seen.has(id)) {
        this.add(pointer('steps', id), 'unreachable', this.def.kind === 'automation'
          ? `step "${id}" can never run: no path leads to it from the start step "${this.def.start}"`
          : `step "${id}" can never run: no transition's steps lead to it`);
      }
    }
  }

  /** Each parallel branch must arrive at the join on every path (a branch that ends elsewhere would leave the join waiting). */
  private parallel(id: string, branches: string[], join: string): void {
    const joinStep = this.def.steps?.[join];
    if (joinStep && this.usable(pointer('steps', join)) && joinStep.type !== 'join') {
      this.add(pointer('steps', id, 'join'), 'join-step', `step "${join}" is a ${joinStep.type} step; a parallel step must join at a join step`);
      return;
    }
    if (!this.stepIds.has(join)) return;
    branches.forEach((start, i) => {
      if (!this.stepIds.has(start)) return;
      const seen = new Set<string>();
      const stack = [start];
      let reachesJoin = false;
      let deadEnd: string | undefined;
      while (stack.length) {
        const current = stack.pop() as string;
        if (current === join) { reachesJoin = true; continue; }
        if (seen.has(current)) continue;
        seen.add(current);
        if (!this.usable(pointer('steps', current))) return; // its edges are unknown; its own error is reported
        const next = this.successors(current);
        const step = this.def.steps?.[current];
        // A condition without else, or a switch without default, stops when nothing matches.
        const mayStop = next.length === 0 || (step?.type === 'condition' && step.else === undefined) || (step?.type === 'switch' && step.default === undefined);
        if (mayStop && deadEnd === undefined) deadEnd = current;
        stack.push(...next);
      }
      const ptr = pointer('steps', id, 'branches', i);
      if (!reachesJoin) this.add(ptr, 'parallel-join', `branch "${start}" never reaches the join step "${join}"`);
      else if (deadEnd !== undefined) this.add(ptr, 'parallel-join', `branch "${start}" can finish at step "${deadEnd}" without reaching the join step "${join}"`);
    });
  }

  // ---- each step's own references

  private step(id: string, step: Step): void {
    const at = (...rest: (string | number)[]) => pointer('steps', id, ...rest);
    switch (step.type) {
      case 'createRecord':
      case 'updateRecord':
        if (this.entity(at('entity'), step.entity)) {
          for (const name of Object.keys(step.fields)) this.field(at('fields', name), step.entity, name, false);
        }
        break;
      case 'queryRecords':
        if (this.entity(at('entity'), step.entity)) {
          for (const name of Object.keys(step.where ?? {})) this.field(at('where', name), step.entity, name, true);
          for (const part of (step.sort ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
            this.field(at('sort'), step.entity, part.replace(/^-/, ''), true);
          }
        }
        break;
      case 'approval': {
        if (step.assignees.role !== undefined) this.role(at('assignees', 'role'), step.assignees.role);
        const mode = step.mode;
        if (typeof mode === 'object' && step.assignees.users && mode.atLeast > step.assignees.users.length) {
          this.add(at('mode', 'atLeast'), 'approval-at-least', `atLeast is ${mode.atLeast} but only ${step.assignees.users.length} user${step.assignees.users.length === 1 ? ' is' : 's are'} listed, so the approval could never pass`);
        }
        if (step.onDeadline !== undefined && step.deadline === undefined) {
          this.add(at('onDeadline'), 'deadline', 'onDeadline needs a deadline (an ISO 8601 duration such as P2D)');
        }
        break;
      }
      case 'parallel':
        this.parallel(id, step.branches, step.join);
        break;
      case 'subWorkflow':
        if (step.workflow === this.def.id) this.add(at('workflow'), 'sub-workflow', 'a workflow cannot run itself as a sub-workflow');
        else if (this.env.workflows && !this.env.workflows.has(step.workflow)) this.add(at('workflow'), 'unknown-workflow', `there is no workflow "${step.workflow}"`);
        break;
      case 'renderDocument':
        if (this.env.templates && !this.env.templates.has(step.template)) this.add(at('template'), 'unknown-template', `there is no document template "${step.template}"`);
        break;
      case 'callAction':
        this.knownAction(at('action'), step.action);
        break;
      case 'notify':
        if (step.attachDocument !== undefined) {
          const doc = this.def.steps?.[step.attachDocument];
          if (!isObject(doc)) this.add(at('attachDocument'), 'missing-step', `attachDocument names step "${step.attachDocument}", but there is no step with that id`);
          else if (doc.type !== 'renderDocument') this.add(at('attachDocument'), 'attach-document', `attachDocument must name a renderDocument step; "${step.attachDocument}" is a ${doc.type} step`);
        }
        break;
      default:
        break;
    }
  }

  // ---- expressions

  private expressions(): void {
    const check = (path: string, source: string) => {
      const problem = checkExpression(source);
      if (!problem) return;
      // expressions.ts also names the rule: expression-syntax, -type, -unknown-variable, -refused.
      const rule = (problem as { rule?: string }).rule ?? 'expression-syntax';
      const what = rule === 'expression-syntax' ? 'has a syntax error' : 'is not accepted';
      this.add(path, rule, `the expression ${what} at line ${problem.line}, column ${problem.column}: ${problem.message}`);
    };
    const t = this.def.trigger;
    if (t && this.usable('/trigger')) {
      if ((t.type === 'event' || t.type === 'dateRelative') && t.condition !== undefined) check('/trigger/condition', t.condition);
      if (t.type === 'event' && t.changed?.to !== undefined) check('/trigger/changed/to', t.changed.to);
    }
    for (const [i, tr] of this.transitions()) if (tr.condition !== undefined) check(pointer('transitions', i, 'condition'), tr.condition);
    for (const [id, step] of this.steps) {
      for (const [ptr, source] of stepExpressions(step)) check(pointer('steps', id) + ptr, source);
    }
  }
}

/**
 * Checks a parsed workflow definition: its shape against the published schema, then what the
 * schema cannot say (step targets, reachability, lifecycle rules, entities, fields, roles, cron,
 * time zones, expressions, parallel joins, references). Reports every error found.
 */
export function validateDefinition(raw: unknown, env: ValidationEnv): ValidationResult {
  const schema = checkDefinitionSchema(raw);
  if (!isObject(raw)) return { ok: false, errors: schema.errors };
  const bad = schema.errors.map((e) => e.path);
  // A part with a schema error (at it or below it) is left out of the semantic checks, so that
  // code never meets a shape the schema refused and one mistake is not reported twice.
  const usable = (ptr: string) => !bad.some((p) => p === ptr || p.startsWith(ptr + '/'));
  const stepIds = new Set(isObject(raw.steps) ? Object.keys(raw.steps) : []);
  const semantic = new SemanticChecker(raw as unknown as WorkflowDefinition, env, usable, stepIds).run();
  const errors = [...schema.errors, ...semantic];
  return { ok: errors.length === 0, errors, ...(schema.definition ? { definition: schema.definition } : {}) };
}
