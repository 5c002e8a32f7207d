import type { Executor } from '../../db/database.ts';
import type { Principal } from '../../auth/principal.ts';
import { KubikiError } from '../../errors.ts';

/** What a plugin action gets when a workflow's callAction step runs it. */
export interface WorkflowActionContext {
  /** The step's transaction: database work done with it commits with the step, exactly once. */
  trx: Executor;
  actor: Principal;
  /** The workflow instance of a callAction step; absent when a lifecycle transition runs the action. */
  instanceId?: string;
  /** The request that took the transition (audit rows name it). */
  requestId?: string;
  /** Stable across retries of the same step (or per transition of a record version): makes external calls idempotent. */
  idempotencyKey: string;
}

export interface WorkflowAction {
  description?: string;
  handler(input: Record<string, unknown>, ctx: WorkflowActionContext): unknown | Promise<unknown>;
}

/** Actions plugins offer to workflows (`crm.markWon`); usable while the plugin is enabled. */
export class WorkflowActions {
  private readonly actions = new Map<string, { plugin: string; action: WorkflowAction }>();

  constructor(private readonly isEnabled: (plugin: string) => boolean) {}

  register(plugin: string, name: string, action: WorkflowAction): void {
    const id = `${plugin}.${name}`;
    if (!/^[a-z][a-zA-Z0-9]*$/.test(name)) throw new KubikiError('config-invalid', `plugin ${plugin}: workflow action name "${name}" must be camelCase letters and digits`);
    const existing = this.actions.get(id);
    if (existing && existing.action !== action) throw new KubikiError('config-invalid', `workflow action ${id} is declared twice`);
    this.actions.set(id, { plugin, action });
  }

  /** Names of the actions usable now (the validator checks callAction steps against them). */
  names(): Set<string> {
    return new Set([...this.actions].filter(([, a]) => this.isEnabled(a.plugin)).map(([id]) => id));
  }

  get(id: string): WorkflowAction {
    const found = this.actions.get(id);
    if (!found) throw new KubikiError('not-found', `no plugin declares the workflow action ${id}`);
    if (!this.isEnabled(found.plugin)) throw new KubikiError('plugin-disabled', `workflow action ${id} belongs to plugin ${found.plugin}, which is not enabled`);
    return found.action;
  }
}
