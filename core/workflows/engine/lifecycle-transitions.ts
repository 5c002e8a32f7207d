import type { Ajv } from 'ajv';
import type { Database } from '../../db/database.ts';
import { KubikiError, isKubikiError, fieldError } from '../../errors.ts';
import { requireGrant, SYSTEM, type Principal } from '../../auth/principal.ts';
import { PermissionSet } from '../../auth/permissions.ts';
import { toFieldIssues } from '../../entities/ajv.ts';
import type { EntityDefinition } from '../../entities/entity-definition.ts';
import type { EntityRepository, WriteOptions } from '../../entities/entity-repository.ts';
import type { ApiRecord } from '../../entities/record-codec.ts';
import type { LifecycleState, Transition, WorkflowDefinition } from '../workflow-definition.ts';
import type { PublishedWorkflow, PublishedWorkflows } from './published-workflows.ts';
import type { WorkflowActions } from './workflow-actions.ts';
import { evaluate } from './step-plan.ts';
import type { WorkflowEngine } from './workflow-engine.ts';

export interface LifecycleDeps {
  db: Database;
  published: PublishedWorkflows;
  engine: WorkflowEngine;
  actions: WorkflowActions;
  repository(qualifiedName: string): EntityRepository;
  ajv: Ajv;
  kickEvents(): void;
}

export interface AvailableTransition {
  name: string;
  title: string;
  to: string;
  /** Whether the caller may take it now; `reason` says why not. */
  allowed: boolean;
  reason?: string;
  input?: Record<string, unknown>;
}

export interface TransitionResult {
  record: ApiRecord;
  transition: string;
  from: string;
  to: string;
  /** The instance running the transition's steps, when it has any. */
  instanceId: string | null;
  /** What the transition's action answered (e.g. the journal entry a posting wrote), when it has one. */
  output?: unknown;
}

/** Taking a transition from plugin code (a plugin's own `POST …/post` route is one). */
export interface TakeOptions {
  input?: unknown;
  /** The version the caller saw; a newer record refuses the transition (412). */
  version?: number;
  actor: Principal;
  requestId?: string;
}

const initialOf = (def: WorkflowDefinition): LifecycleState | undefined => def.states?.find((s) => s.initial);
const isEditable = (state: LifecycleState | undefined): boolean => state?.editable === undefined || state.editable === true;

/**
 * Document lifecycles: a published lifecycle owns its entity's state field. Users change it only by
 * taking a transition (roles, condition, input checked; 403/409 saying why); the transition's steps
 * run as a workflow instance started in the same transaction as the state change.
 */
export class LifecycleTransitions {
  constructor(private readonly deps: LifecycleDeps) {}

  private lifecycle(entity: string): PublishedWorkflow {
    const wf = this.deps.published.lifecycleOf(entity);
    if (!wf) throw new KubikiError('not-found', `${entity} has no published lifecycle`);
    return wf;
  }

  /**
   * The repository's write guard: a new record starts in the initial state (or a declared one, so
   * data can be migrated in); people change the state only through transitions, and do not edit or
   * delete a record whose state is not editable (a posted document). Plugin code and workflow steps
   * (the system, `workflow:*` actors) and transitions may.
   */
  guardWrite(entity: EntityDefinition, action: 'create' | 'update' | 'delete', fields: Record<string, unknown>, options: WriteOptions, current?: Record<string, unknown>): void {
    const wf = this.deps.published.lifecycleOf(entity.qualifiedName);
    if (!wf) return;
    const def = wf.definition;
    const field = def.stateField!;
    const names = (def.states ?? []).map((s) => s.name);
    const actor = options.actor;
    const trusted = options.viaTransition === true || actor === SYSTEM || actor.username.startsWith('workflow:');
    if (action === 'create') {
      if (fields[field] === undefined) {
        const initial = initialOf(def);
        if (initial) fields[field] = initial.name;
      } else if (!names.includes(String(fields[field]))) {
        throw fieldError('validation-failed', field, 'enum', `${field} must be one of the lifecycle's states: ${names.join(', ')}`);
      } else if (!trusted && !isEditable(def.states?.find((s) => s.name === fields[field]))) {
        throw new KubikiError('transition-required', `a ${entity.title} is created as ${initialOf(def)?.name ?? 'a draft'}; "${String(fields[field])}" is reached only through a transition of ${wf.id}`, {
          issues: [{ field, rule: 'transition-required', message: `leave ${field} out, then take a transition` }],
        });
      }
      return;
    }
    if (trusted) return;
    const state = current ? this.stateOf(def, current) : undefined;
    const locked = state === undefined ? undefined : def.states?.find((s) => s.name === state);
    if (locked && !isEditable(locked)) {
      const open = Array.isArray(locked.editable) ? locked.editable : [];
      const refused = action === 'delete' ? field : Object.keys(fields).find((f) => f !== field && !open.includes(f));
      if (refused !== undefined) {
        throw new KubikiError('document-locked', action === 'delete'
          ? `this ${entity.title} is "${state}" and is not deleted; ${this.ways(def, state!)}`
          : `this ${entity.title} is "${state}": ${open.length ? `only ${open.join(', ')} may change` : 'it is not edited'}; ${this.ways(def, state!)}`, {
          issues: [{ field: refused, rule: 'editable', message: `${entity.title} is ${state}` }], extra: { state },
        });
      }
    }
    if (action === 'delete' || !(field in fields)) return;
    const transitions = (def.transitions ?? []).filter((t) => t.to === fields[field]).map((t) => t.name);
    throw new KubikiError('transition-required', `${field} of ${entity.qualifiedName} changes only through a transition of ${wf.id}${transitions.length ? ` (to reach "${String(fields[field])}": ${transitions.join(', ')})` : ''}`, {
      issues: [{ field, rule: 'transition-required', message: `take a transition: POST /api/${entity.plugin}/${entity.plural}/{id}/transitions/{name}` }],
    });
  }

  /** What can still be done with a record in `state`: its transitions, in words. */
  private ways(def: WorkflowDefinition, state: string): string {
    const out = (def.transitions ?? []).filter((t) => (t.from === '*' ? def.states?.find((s) => s.name === state)?.final !== true : t.from.includes(state))).map((t) => t.name);
    return out.length ? `its transitions from here: ${out.join(', ')}` : 'no transition leaves this state';
  }

  private stateOf(def: WorkflowDefinition, record: Readonly<Record<string, unknown>>): string {
    const value = record[def.stateField!];
    return typeof value === 'string' && value !== '' ? value : initialOf(def)?.name ?? '';
  }

  /** Why `actor` may not take `t` from `state` now, or undefined when they may. */
  private refusal(def: WorkflowDefinition, t: Transition, state: string, actor: Principal): { code: 'transition-not-allowed' | 'forbidden'; message: string } | undefined {
    const final = def.states?.find((s) => s.name === state)?.final === true;
    const fromOk = t.from === '*' ? !final : t.from.includes(state);
    if (!fromOk) {
      return { code: 'transition-not-allowed', message: `the record is "${state}"; "${t.name}" goes from ${t.from === '*' ? 'any state that is not final' : t.from.map((s) => `"${s}"`).join(' or ')}` };
    }
    if (t.roles?.length && !t.roles.some((r) => actor.roles.includes(r))) {
      return { code: 'forbidden', message: `${actor.username} may not take "${t.name}": it needs the role ${t.roles.join(' or ')}` };
    }
    if (t.permission && !actor.permissions.has(t.permission)) {
      return { code: 'forbidden', message: `${actor.username} may not take "${t.name}": it needs the permission ${t.permission}` };
    }
    return undefined;
  }

  async available(entity: string, recordId: string, actor: Principal): Promise<{ workflow: string; state: string; transitions: AvailableTransition[] }> {
    const wf = this.lifecycle(entity);
    const def = wf.definition;
    const record = await this.deps.repository(entity).get(recordId, { actor });
    const state = this.stateOf(def, record);
    const transitions = (def.transitions ?? []).map((t) => {
      const refused = this.refusal(def, t, state, actor);
      return { name: t.name, title: t.title ?? t.name, to: t.to, allowed: !refused, ...(refused ? { reason: refused.message } : {}), ...(t.input ? { input: t.input } : {}) };
    });
    return { workflow: wf.id, state, transitions };
  }

  async take(entity: string, recordId: string, name: string, options: TakeOptions): Promise<TransitionResult> {
    const { input, version, actor, requestId } = options;
    const wf = this.lifecycle(entity);
    const def = wf.definition;
    const t = def.transitions?.find((x) => x.name === name);
    if (!t) throw new KubikiError('not-found', `${wf.id} has no transition "${name}"; it has ${(def.transitions ?? []).map((x) => x.name).join(', ')}`, { issues: [{ field: 'transition', rule: 'exists', message: `no transition ${name}` }] });
    const record = await this.deps.repository(entity).get(recordId, { actor });
    const from = this.stateOf(def, record);
    const refused = this.refusal(def, t, from, actor);
    if (refused) throw new KubikiError(refused.code, refused.message, { extra: { state: from, transition: name } });
    if (!t.roles?.length && !t.permission) requireGrant(actor, `${entity}.update`);
    // Resolved before anything is written: an action of a disabled plugin refuses the transition.
    const action = t.action ? this.deps.actions.get(t.action) : undefined;
    if (t.input) {
      const validate = this.deps.ajv.compile(t.input);
      if (!validate(input ?? {})) {
        const issues = toFieldIssues(validate.errors).map((i) => ({ ...i, field: i.field ? `input.${i.field}` : 'input' }));
        throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues });
      }
    } else if (input !== undefined) {
      throw fieldError('validation-failed', 'input', 'unknown-field', `transition "${name}" takes no input`);
    }
    const trigger = { type: 'transition', transition: name, from, to: t.to, by: actor.username };
    if (t.condition) {
      const ok = evaluate(t.condition, { trigger, record, vars: {}, steps: {}, input: input ?? {}, now: new Date() }, `transitions.${name}.condition`);
      if (ok !== true) throw new KubikiError('transition-condition-failed', `"${name}" is not possible now: its condition \`${t.condition}\` is not met`, { extra: { condition: t.condition, state: from } });
    }
    // Whoever may take the transition may make its state change, whatever their update grants.
    const writer: Principal = { ...actor, permissions: new PermissionSet([...actor.permissions.raw, `${entity}.update`]) };
    let instanceId: string | null = null;
    let output: unknown;
    let updated: ApiRecord;
    try {
      updated = await this.deps.db.knex.transaction(async (trx) => {
        const repository = this.deps.repository(entity);
        let result = await repository.update(recordId, { [def.stateField!]: t.to }, {
          actor: writer, trx, requestId, viaTransition: true, expectedVersion: version ?? Number(record.version),
        });
        if (action) {
          // The document's moment (post, cancel…): its writes commit with the state change, or nothing does.
          output = await action.handler({ record: result, input: input ?? {}, transition: { name, from, to: t.to } }, {
            trx, actor, requestId, idempotencyKey: `transition:${entity}:${recordId}:${String(result.version)}`,
          });
          result = await repository.get(recordId, { actor: SYSTEM, trx });
        }
        if (t.steps) {
          ({ id: instanceId } = await this.deps.engine.startInstance({
            workflowId: wf.id, version: wf.version, definition: def, kind: 'transition', trigger, entity, recordId: String(record.id),
            input: input ?? {}, startStep: t.steps, actor,
          }, trx));
        }
        return result;
      });
    } catch (error) {
      if (isKubikiError(error) && error.code === 'version-mismatch' && version === undefined) {
        throw new KubikiError('transition-not-allowed', `the record changed while "${name}" was being taken (another transition or edit); reload it and try again`, { extra: { state: from } });
      }
      throw error;
    }
    this.deps.kickEvents();
    if (instanceId) this.deps.engine.kick();
    return { record: updated, transition: name, from, to: t.to, instanceId, ...(action ? { output: output ?? null } : {}) };
  }
}
