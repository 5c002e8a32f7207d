// The dry run: a definition walked against a given record or payload with no side effects. Every
// step is planned by the same pure planner the engine uses (step-plan.ts), so the trace shows what
// a real run would do; what the real run would write or send is reported as an `effect` instead.
// Reading is not a side effect: the record, updateRecord's current values and queryRecords rows
// come from the database, through repositories and with the caller's read permissions. Nothing is
// written — no records, audit rows, outbox events, notifications, documents or instances.

import type { Principal } from '../../auth/principal.ts';
import type { EntityRepository } from '../../entities/entity-repository.ts';
import { diffFields, normalizeFields } from '../../entities/record-codec.ts';
import { KubikiError, isKubikiError, fieldError, type FieldIssue } from '../../errors.ts';
import type { Step, Transition, WorkflowDefinition } from '../workflow-definition.ts';
import { hostAllowed } from './http-request.ts';
import { recordFields } from './record-fields.ts';
import { evaluate, planStep, type StepPlan, type StepScope } from './step-plan.ts';

export type ApprovalDecision = 'approved' | 'rejected' | 'deadline';
export const APPROVAL_DECISIONS: readonly ApprovalDecision[] = ['approved', 'rejected', 'deadline'];

export interface DryRunRequest {
  /** Loads the record from the definition's entity (with the actor's read permission). */
  recordId?: string;
  /** Or: the record as given (nothing is loaded). */
  record?: Record<string, unknown>;
  /** Trigger data; by default what the trigger type would produce (`<entity>.created` for events). */
  trigger?: Record<string, unknown>;
  /** What a caller sends with a manual action or a transition. */
  input?: Record<string, unknown>;
  /** A lifecycle's transition to take. */
  transition?: string;
  /** Approval step id → the outcome to assume (default `approved`). Applies to sub-workflows too. */
  decisions?: Record<string, ApprovalDecision>;
}

export interface DryRunDeps {
  repository(qualifiedName: string): EntityRepository;
  /** The published definition of a sub-workflow. */
  publishedDefinition(id: string): Promise<WorkflowDefinition>;
  actor: Principal;
  now?: Date;
  /**
   * Checks record fields against an entity's schema without writing (defaults are filled into
   * `fields`, which the dry run passes as a copy); returns the problems, none when valid.
   * Without it records are not checked.
   */
  validateRecord?(qualifiedName: string, fields: Record<string, unknown>): FieldIssue[];
  /** The HTTP step's host allow-list (KUBIKI_WORKFLOW_HTTP_ALLOW); without it hosts are not checked. */
  httpAllow?: string[];
  /** Whether an enabled plugin offers the workflow action; without it actions are not checked. */
  hasAction?(id: string): boolean;
  /** Checks a transition's input against its JSON Schema (`transitions[].input`); without it input is not checked. */
  validateInput?(schema: Record<string, unknown>, input: unknown): FieldIssue[];
}

/** What a real run would have written or sent at a step. */
export type DryRunEffect =
  | { would: 'create'; entity: string; fields: Record<string, unknown>; id: string; note: string }
  | { would: 'update'; entity: string; id: string; changes: Record<string, { before: unknown; after: unknown }>; unchanged?: string[] }
  | { would: 'call'; action: string; input: Record<string, unknown> }
  | { would: 'send'; channel: 'email' | 'sms'; to: string; subject?: string; body: string; attachDocument?: string; id: string; note: string }
  | { would: 'request'; method: string; url: string; headers: Record<string, string>; body?: unknown; allowed?: boolean }
  | { would: 'render'; template: string; recordId: string; format: 'html' | 'pdf'; id: string; note: string }
  | { would: 'wait'; until: string }
  | { would: 'ask'; role?: string; users: string[]; mode: unknown; subject: string; deadlineAt?: string };

export interface DryRunTraceEntry {
  step: string;
  type: Step['type'];
  title?: string;
  /** The planner's answer: evaluated inputs and where the step goes. */
  plan: StepPlan;
  effect?: DryRunEffect;
  /**
   * What later steps see as `steps.<id>`: the engine's output where a dry run can know it (ids
   * of things not created are placeholders); absent where only the outside world could say
   * (an HTTP response, a plugin action's result).
   */
  output?: unknown;
  /** Approval: the decision assumed (from `decisions`, else `approved`). */
  decision?: ApprovalDecision;
  /** Sub-workflow: the child's own dry run. */
  child?: DryRunResult;
}

export type DryRunOutcome = 'completed' | 'cancelled' | 'failed' | 'refused';

export interface DryRunTransition {
  name: string;
  from: string;
  to: string;
  rolesRequired: string[];
  /** Whether the caller holds one of `rolesRequired` (true when none is required). */
  callerHasRole: boolean;
  condition?: { expression: string; result: unknown };
  /** The state change itself (absent when refused). */
  effect?: DryRunEffect;
}

export interface DryRunResult {
  workflow: string;
  version?: number;
  outcome: DryRunOutcome;
  /** Why a lifecycle transition was refused. */
  reason?: string;
  transition?: DryRunTransition;
  /** Step ids in the order they were visited. */
  path: string[];
  steps: DryRunTraceEntry[];
  vars: Record<string, unknown>;
  error?: { step?: string; message: string; field?: string; issues?: FieldIssue[] };
}

export const MAX_DRY_RUN_STEPS = 1000;
export const MAX_SUB_WORKFLOW_DEPTH = 5;
const PLACEHOLDER_NOTE = 'dry-run placeholder id: a real run gets a new id';
const NOT_CREATED = 'dry-run placeholder id: nothing was created';
const SYSTEM_FIELDS = new Set(['id', 'version', 'createdAt', 'updatedAt', 'createdBy', 'updatedBy']);

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const same = (a: unknown, b: unknown): boolean => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/** A failure of the walk: the dry run's outcome becomes `failed`, with what was traced so far. */
class WalkFailure extends Error {
  constructor(message: string, readonly step: string | undefined, readonly issues?: FieldIssue[]) {
    super(message);
  }
}

/** Shared by a run and its sub-workflows: the step budget and the placeholder ids handed out. */
interface Budget {
  steps: number;
  placeholders: number;
}

type Stop = { kind: 'reached' } | { kind: 'end'; status: 'completed' | 'cancelled' } | { kind: 'none' };

/** The trigger data a real start would produce, as far as a dry run can know it. */
function defaultTrigger(definition: WorkflowDefinition, deps: DryRunDeps, now: Date, givenId: string | undefined, record: Record<string, unknown> | undefined): Record<string, unknown> {
  const recordId = givenId ?? (typeof record?.id === 'string' ? record.id : undefined);
  const withRecord = recordId !== undefined ? { recordId } : {};
  const trigger = definition.trigger;
  switch (trigger?.type) {
    case 'event': {
      // As if the record had just been created: every field it has, from nothing.
      const fields = Object.fromEntries(Object.entries(record ?? {}).filter(([name]) => !SYSTEM_FIELDS.has(name)));
      return { type: 'event', event: `${trigger.entity}.created`, action: 'created', entity: trigger.entity, ...withRecord, changes: diffFields({}, fields), actorId: deps.actor.userId, at: now.toISOString() };
    }
    case 'schedule':
      return { type: 'schedule', slot: new Date(Math.floor(now.getTime() / 1000) * 1000).toISOString(), cron: trigger.cron, timezone: trigger.timezone ?? 'UTC' };
    case 'manual':
      return { type: 'manual', by: deps.actor.username };
    case 'webhook':
      return { type: 'webhook', delivery: null };
    case 'dateRelative':
      return { type: 'dateRelative', entity: trigger.entity, ...withRecord };
    default:
      return { type: 'manual', by: deps.actor.username };
  }
}

/** The entity a definition is about: a lifecycle's, else its trigger's (or its own, for automations that name one). */
function entityOf(definition: WorkflowDefinition): string | undefined {
  if (definition.kind === 'lifecycle') return definition.entity;
  const trigger = definition.trigger;
  if (trigger && 'entity' in trigger && typeof trigger.entity === 'string') return trigger.entity;
  return definition.entity;
}

/**
 * Runs `definition` as a real run would, without writing anything: the path taken, each step's
 * evaluated inputs (its plan), what it would have written or sent, and the final variables.
 * Client mistakes in `request` (no transition for a lifecycle, a record that does not exist or is
 * not visible) throw; failures of the run itself (an expression error, a loop) are its outcome.
 */
export async function dryRun(definition: WorkflowDefinition, request: DryRunRequest, deps: DryRunDeps): Promise<DryRunResult> {
  return run(definition, request, deps, 0, { steps: 0, placeholders: 0 }, placeholderId(0));
}

async function run(definition: WorkflowDefinition, request: DryRunRequest, deps: DryRunDeps, depth: number, budget: Budget, instanceId: string): Promise<DryRunResult> {
  const now = deps.now ?? new Date();
  const entity = entityOf(definition);
  if (request.recordId !== undefined && request.record !== undefined) throw fieldError('validation-failed', 'record', 'oneOf', 'give either recordId (to load the record) or record (the record itself), not both');
  let record: Record<string, unknown> | undefined;
  if (request.recordId !== undefined) {
    if (!entity) throw fieldError('validation-failed', 'recordId', 'entity', `${definition.id} is not about an entity (its trigger names none), so there is no record to load; send record or trigger instead`);
    record = await deps.repository(entity).get(request.recordId, { actor: deps.actor });
  } else if (request.record !== undefined) {
    record = { ...request.record };
  }
  const result: DryRunResult = { workflow: definition.id, outcome: 'completed', path: [], steps: [], vars: {} };
  let scope: StepScope;
  let start: string | undefined;
  if (definition.kind === 'lifecycle') {
    if (depth > 0) {
      result.outcome = 'failed';
      result.error = { message: `${definition.id} is a lifecycle; only automations can run as sub-workflows` };
      return result;
    }
    const transition = lifecycleTransition(definition, request.transition);
    const input = transitionInput(transition, request.input, deps);
    const from = stateOf(definition, record ?? {});
    // What the engine gives a transition: its condition and its steps see this trigger.
    const trigger = request.trigger ?? { type: 'transition', transition: transition.name, from, to: transition.to, by: deps.actor.username };
    scope = { trigger, record: record ?? {}, vars: result.vars, steps: {}, input, now };
    if (!checkTransition(definition, transition, from, record ?? {}, scope, deps.actor, result)) return result;
    start = transition.steps;
    // The transition's steps run after the state change: they see the record in its new state.
    scope.record = { ...(record ?? {}), [definition.stateField!]: transition.to };
  } else {
    if (request.transition !== undefined) throw fieldError('validation-failed', 'transition', 'lifecycle', `${definition.id} is an automation; transitions belong to lifecycles`);
    const trigger = request.trigger ?? defaultTrigger(definition, deps, now, request.recordId, record);
    scope = { trigger, record, vars: result.vars, steps: {}, input: request.input, now };
    start = definition.start;
  }

  let current: string | undefined;
  const steps = definition.steps ?? {};

  const walk = async (from: string | undefined, until?: string): Promise<Stop> => {
    let key = from;
    while (key !== undefined) {
      if (key === until) return { kind: 'reached' };
      current = key;
      const step = steps[key];
      if (!step) throw new WalkFailure(`there is no step "${key}"`, key);
      if (++budget.steps > MAX_DRY_RUN_STEPS) {
        throw new WalkFailure(`stopped after ${MAX_DRY_RUN_STEPS.toLocaleString('en-US')} steps, before step "${key}": the definition seems to loop`, key);
      }
      const plan = planStep(key, step, scope);
      const entry: DryRunTraceEntry = { step: key, type: step.type, ...(step.title !== undefined ? { title: step.title } : {}), plan };
      result.path.push(key);
      result.steps.push(entry);
      const at = key;
      const done = (output: unknown) => {
        if (output !== undefined) {
          entry.output = output;
          scope.steps[at] = output;
        }
      };
      switch (plan.kind) {
        case 'go':
          Object.assign(scope.vars, plan.vars ?? {});
          done(plan.output);
          key = plan.next;
          break;
        case 'createRecord': {
          const id = placeholderId(++budget.placeholders);
          const written = recordFields(deps.repository(plan.entity).entity, plan.fields);
          const fields = await checkedFields(deps, plan.entity, written, key);
          entry.effect = { would: 'create', entity: plan.entity, fields: written, id, note: PLACEHOLDER_NOTE };
          if (fields.issues.length) throw new WalkFailure(`${plan.entity} would refuse the record: ${fields.issues.map((i) => i.message).join('; ')}`, key, fields.issues);
          done({ id, version: 1, ...fields.record });
          key = plan.next;
          break;
        }
        case 'updateRecord': {
          const before = await deps.repository(plan.entity).get(plan.id, { actor: deps.actor });
          const merged: Record<string, unknown> = {};
          for (const [name, value] of Object.entries(before)) if (!SYSTEM_FIELDS.has(name)) merged[name] = value;
          const written = recordFields(deps.repository(plan.entity).entity, plan.fields);
          Object.assign(merged, written);
          const fields = await checkedFields(deps, plan.entity, merged, key, before);
          // Compared as stored (a valid "10" is the "10.00" already there), as the written value when refused.
          const stored = fields.issues.length ? written : fields.record;
          const changes: Record<string, { before: unknown; after: unknown }> = {};
          const unchanged: string[] = [];
          for (const name of Object.keys(written)) {
            if (same(before[name], stored[name])) unchanged.push(name);
            else changes[name] = { before: before[name] ?? null, after: stored[name] };
          }
          entry.effect = { would: 'update', entity: plan.entity, id: plan.id, changes, ...(unchanged.length ? { unchanged } : {}) };
          if (fields.issues.length) throw new WalkFailure(`${plan.entity} ${plan.id} would refuse the change: ${fields.issues.map((i) => i.message).join('; ')}`, key, fields.issues);
          const system = Object.fromEntries(Object.entries(before).filter(([name]) => SYSTEM_FIELDS.has(name)));
          const after = { ...system, ...fields.record };
          done(after);
          // Like the engine: later steps see the workflow's own record as updated.
          if (plan.entity === entity && plan.id === (scope.record as { id?: unknown } | undefined)?.id) scope.record = after;
          key = plan.next;
          break;
        }
        case 'queryRecords': {
          // Built as the engine builds it, so the same filters are refused or applied.
          const query: Record<string, string> = { limit: String(plan.limit) };
          for (const [field, value] of Object.entries(plan.where)) query[field] = typeof value === 'string' ? value : JSON.stringify(value);
          if (plan.sort) query.sort = plan.sort;
          const { data } = await deps.repository(plan.entity).listFromQuery(query, { actor: deps.actor });
          done({ records: data, count: data.length });
          key = plan.next;
          break;
        }
        case 'callAction':
          entry.effect = { would: 'call', action: plan.action, input: plan.input };
          if (deps.hasAction && !deps.hasAction(plan.action)) throw new WalkFailure(`no enabled plugin offers the workflow action ${plan.action}`, key);
          key = plan.next;
          break;
        case 'notify': {
          const id = placeholderId(++budget.placeholders);
          entry.effect = {
            would: 'send', channel: plan.channel, to: plan.to, ...(plan.subject !== undefined ? { subject: plan.subject } : {}), body: plan.body,
            ...(plan.attachDocument !== undefined ? { attachDocument: plan.attachDocument } : {}), id, note: NOT_CREATED,
          };
          done({ notificationId: id, status: 'dry-run' });
          key = plan.next;
          break;
        }
        case 'http': {
          const allowed = deps.httpAllow === undefined ? undefined : urlAllowed(plan.url, deps.httpAllow);
          entry.effect = { would: 'request', method: plan.method, url: plan.url, headers: plan.headers, ...(plan.body !== undefined ? { body: plan.body } : {}), ...(allowed !== undefined ? { allowed: allowed === true } : {}) };
          if (typeof allowed === 'string') throw new WalkFailure(allowed, key);
          key = plan.next;
          break;
        }
        case 'renderDocument': {
          const id = placeholderId(++budget.placeholders);
          entry.effect = { would: 'render', template: plan.template, recordId: plan.recordId, format: plan.format, id, note: NOT_CREATED };
          done({ id, template: plan.template, recordId: plan.recordId, format: plan.format });
          key = plan.next;
          break;
        }
        case 'wait':
          entry.effect = { would: 'wait', until: plan.until };
          done({ until: plan.until });
          key = plan.next;
          break;
        case 'approval': {
          entry.effect = {
            would: 'ask', ...(plan.role !== undefined ? { role: plan.role } : {}), users: plan.users, mode: plan.mode, subject: plan.subject,
            ...(plan.deadlineAt !== undefined ? { deadlineAt: plan.deadlineAt } : {}),
          };
          const decision = request.decisions?.[key] ?? 'approved';
          entry.decision = decision;
          done(decision === 'deadline' ? { outcome: decision } : { outcome: decision, decisions: [] });
          key = decision === 'approved' ? plan.approved : decision === 'rejected' ? plan.rejected : plan.onDeadline ?? plan.rejected;
          break;
        }
        case 'parallel':
          for (const branch of plan.branches) {
            const stop = await walk(branch, plan.join);
            if (stop.kind === 'end') return stop;
          }
          key = plan.join;
          break;
        case 'subWorkflow': {
          if (depth + 1 > MAX_SUB_WORKFLOW_DEPTH) throw new WalkFailure(`sub-workflows nest deeper than ${MAX_SUB_WORKFLOW_DEPTH} levels`, key);
          let child: WorkflowDefinition;
          try {
            child = await deps.publishedDefinition(plan.workflow);
          } catch (error) {
            if (isKubikiError(error)) throw new WalkFailure(`sub-workflow ${plan.workflow}: ${error.message}`, key);
            throw error;
          }
          // Like the engine: the child is about the parent's record and gets the step's input.
          const childId = placeholderId(++budget.placeholders);
          const childRequest: DryRunRequest = {
            input: plan.input, decisions: request.decisions, trigger: { type: 'subWorkflow', parentInstanceId: instanceId, parentStep: key },
            ...(isObject(scope.record) ? { record: scope.record } : {}),
          };
          const childResult = await run(child, childRequest, deps, depth + 1, budget, childId);
          entry.child = childResult;
          if (childResult.outcome !== 'completed') {
            const where = childResult.error?.step ? ` at step "${childResult.error.step}"` : '';
            throw new WalkFailure(childResult.outcome === 'failed'
              ? `sub-workflow ${plan.workflow} failed${where}: ${childResult.error?.message ?? 'unknown error'}`
              : `sub-workflow ${plan.workflow} was cancelled, which fails this step`, key);
          }
          done({ instanceId: childId, status: childResult.outcome, vars: childResult.vars });
          key = plan.next;
          break;
        }
        case 'end':
          done({ status: plan.status });
          return { kind: 'end', status: plan.status };
      }
    }
    return { kind: 'none' };
  };

  try {
    const stop = await walk(start);
    if (stop.kind === 'end') result.outcome = stop.status;
  } catch (error) {
    result.outcome = 'failed';
    if (error instanceof WalkFailure) {
      result.error = { step: error.step, message: error.message, ...(error.issues ? { issues: error.issues } : {}) };
    } else if (isKubikiError(error)) {
      const first = error.issues[0];
      result.error = { step: current, message: error.message, ...(first && first.field ? { field: first.field } : {}), ...(error.issues.length > 1 ? { issues: error.issues } : {}) };
    } else {
      throw error;
    }
  }
  return result;
}

/** `00000000-0000-7000-8000-00000000000n`: a valid UUID no real record has. */
function placeholderId(n: number): string {
  return `00000000-0000-7000-8000-${n.toString(16).padStart(12, '0')}`;
}

/**
 * The record as the entity would store it (defaults filled, computed fields filled in as the
 * write computes them, decimals normalized) and its problems.
 */
async function checkedFields(deps: DryRunDeps, entity: string, fields: Record<string, unknown>, step: string, current?: Record<string, unknown>): Promise<{ record: Record<string, unknown>; issues: FieldIssue[] }> {
  const at = (issues: FieldIssue[]) => issues.map((i) => ({ ...i, field: i.field ? `steps.${step}.fields.${i.field}` : `steps.${step}.fields` }));
  let copy = structuredClone(fields);
  let issues = deps.validateRecord?.(entity, copy) ?? [];
  if (issues.length) return { record: copy, issues: at(issues) };
  if (deps.validateRecord) {
    copy = await deps.repository(entity).withComputedFields(copy, { actor: deps.actor, ...(current ? { current } : {}) });
    issues = deps.validateRecord(entity, copy);
    if (issues.length) return { record: copy, issues: at(issues) };
  }
  return { record: normalizeFields(deps.repository(entity).entity, copy), issues };
}

/** True, or why the engine's HTTP step would refuse the URL (the same allow-list rule). */
function urlAllowed(raw: string, allow: string[]): true | string {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return `the HTTP step's url "${raw}" is not a URL`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') return `the HTTP step may call http or https URLs, not ${url.protocol}`;
  if (url.username || url.password) return 'put credentials in headers, not in the URL';
  if (!hostAllowed(url.hostname, allow)) return `${url.hostname} is not on the workflow HTTP allow-list (KUBIKI_WORKFLOW_HTTP_ALLOW${allow.length ? `: ${allow.join(', ')}` : ' is empty'})`;
  return true;
}

function lifecycleTransition(definition: WorkflowDefinition, name: string | undefined): Transition {
  const transitions = definition.transitions ?? [];
  const names = transitions.map((t) => t.name).join(', ');
  if (name === undefined) throw fieldError('validation-failed', 'transition', 'required', `${definition.id} is a lifecycle: name the transition to try (${names})`);
  const transition = transitions.find((t) => t.name === name);
  if (!transition) throw fieldError('validation-failed', 'transition', 'enum', `${definition.id} has no transition "${name}"; its transitions are ${names}`);
  return transition;
}

/** The state a record is in: its state field, or the initial state while that is empty. */
function stateOf(definition: WorkflowDefinition, record: Record<string, unknown>): string {
  const value = record[definition.stateField!];
  return typeof value === 'string' && value !== '' ? value : definition.states?.find((s) => s.initial)?.name ?? '';
}

/** The transition's input, checked as taking the transition checks it (400 naming the field). */
function transitionInput(transition: Transition, input: Record<string, unknown> | undefined, deps: DryRunDeps): Record<string, unknown> {
  if (!transition.input) {
    if (input !== undefined) throw fieldError('validation-failed', 'input', 'unknown-field', `transition "${transition.name}" takes no input`);
    return {};
  }
  const issues = deps.validateInput?.(transition.input, input ?? {}) ?? [];
  if (issues.length) {
    throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues: issues.map((i) => ({ ...i, field: i.field ? `input.${i.field}` : 'input' })) });
  }
  return input ?? {};
}

/**
 * From-state and condition of a transition, as taking it checks them; false (the result refused,
 * or failed when the condition cannot be evaluated) when it could not be taken. Roles are
 * reported, not enforced: an analyst may try a transition only clerks take.
 */
function checkTransition(definition: WorkflowDefinition, transition: Transition, from: string, record: Record<string, unknown>, scope: StepScope, actor: Principal, result: DryRunResult): boolean {
  const stateField = definition.stateField!;
  const rolesRequired = transition.roles ?? [];
  const info: DryRunTransition = {
    name: transition.name, from, to: transition.to, rolesRequired,
    callerHasRole: rolesRequired.length === 0 || rolesRequired.some((r) => actor.roles.includes(r)),
  };
  result.transition = info;
  const refuse = (reason: string) => {
    result.outcome = 'refused';
    result.reason = reason;
    return false;
  };
  const state = definition.states?.find((s) => s.name === from);
  if (!state) return refuse(`the record's ${stateField} is "${from}", which is not a state of ${definition.id}`);
  if (transition.from === '*' ? state.final === true : !transition.from.includes(from)) {
    return refuse(`the record is "${from}"; "${transition.name}" goes from ${transition.from === '*' ? 'any state that is not final' : transition.from.map((s) => `"${s}"`).join(' or ')}`);
  }
  if (transition.condition !== undefined) {
    const where = `transitions.${transition.name}.condition`;
    let value: unknown;
    try {
      value = evaluate(transition.condition, scope, where);
    } catch (error) {
      if (!isKubikiError(error)) throw error;
      result.outcome = 'failed';
      result.error = { message: error.message, field: where };
      return false;
    }
    info.condition = { expression: transition.condition, result: value };
    if (value !== true) return refuse(`"${transition.name}" is not possible now: its condition \`${transition.condition}\` is not met`);
  }
  const raw = record[stateField];
  const id = typeof record.id === 'string' ? record.id : undefined;
  info.effect = { would: 'update', entity: definition.entity!, id: id ?? '(the record)', changes: same(raw, transition.to) ? {} : { [stateField]: { before: raw ?? null, after: transition.to } } };
  return true;
}
