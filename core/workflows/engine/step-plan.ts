// What a step will do, worked out from the definition and the instance's data without touching
// anything: the engine carries the plan out, the dry run reports it. Keeping one planner is what
// makes a dry run show exactly what a real run would do.

import { compileExpression, type ExpressionContext } from '../expressions.ts';
import type { ApprovalMode, Mapping, Step } from '../workflow-definition.ts';
import { KubikiError, isKubikiError } from '../../errors.ts';
import { addDuration } from './durations.ts';

/** Everything an expression may see while a step runs. */
export interface StepScope {
  trigger: unknown;
  record?: unknown;
  vars: Record<string, unknown>;
  /** Outputs of steps already done, by step id. */
  steps: Record<string, unknown>;
  input?: unknown;
  now: Date;
}

export type StepPlan =
  /** Nothing to write: go on to `next` (none: the branch or the instance ends here). */
  | { kind: 'go'; next?: string; output?: unknown; vars?: Record<string, unknown> }
  | { kind: 'createRecord'; entity: string; fields: Record<string, unknown>; next?: string }
  | { kind: 'updateRecord'; entity: string; id: string; fields: Record<string, unknown>; next?: string }
  | { kind: 'queryRecords'; entity: string; where: Record<string, unknown>; sort?: string; limit: number; next?: string }
  | { kind: 'callAction'; action: string; input: Record<string, unknown>; next?: string }
  | { kind: 'notify'; channel: 'email' | 'sms'; to: string; subject?: string; body: string; attachDocument?: string; next?: string }
  | { kind: 'http'; method: string; url: string; headers: Record<string, string>; body?: unknown; timeoutMs: number; next?: string }
  | { kind: 'wait'; until: string; next?: string }
  | { kind: 'approval'; role?: string; users: string[]; mode: ApprovalMode; subject: string; deadlineAt?: string; onDeadline?: string; approved: string; rejected: string }
  | { kind: 'parallel'; branches: string[]; join: string }
  | { kind: 'subWorkflow'; workflow: string; input: Record<string, unknown>; next?: string }
  | { kind: 'renderDocument'; template: string; recordId: string; format: 'html' | 'pdf'; next?: string }
  | { kind: 'end'; status: 'completed' | 'cancelled' };

const context = (scope: StepScope): ExpressionContext => ({
  trigger: scope.trigger, record: scope.record, vars: scope.vars, steps: scope.steps, input: scope.input, now: scope.now,
});

/** Evaluates one expression of step `key`; a failure names the step and the property. */
export function evaluate(source: string, scope: StepScope, where: string): unknown {
  try {
    return compileExpression(source).evaluate(context(scope));
  } catch (error) {
    if (isKubikiError(error)) {
      throw new KubikiError('validation-failed', `${where}: ${error.message}`, { issues: [{ field: where, rule: 'expression-evaluation', message: error.message }] });
    }
    throw error;
  }
}

export function evaluateMapping(mapping: Mapping | undefined, scope: StepScope, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, source] of Object.entries(mapping ?? {})) {
    const value = evaluate(source, scope, `${where}.${name}`);
    // A mapping that evaluates to null leaves the field out (CEL has no "absent").
    if (value !== null && value !== undefined) out[name] = value;
  }
  return out;
}

const text = (value: unknown, where: string): string => {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  throw new KubikiError('validation-failed', `${where} must evaluate to text, not ${value === null ? 'null' : typeof value}`, { issues: [{ field: where, rule: 'type', message: `${where} must be text` }] });
};

const instant = (value: unknown, where: string): Date => {
  const d = typeof value === 'string' ? new Date(value) : undefined;
  if (!d || Number.isNaN(d.getTime())) {
    throw new KubikiError('validation-failed', `${where} must evaluate to a date or timestamp, not ${JSON.stringify(value)}`, { issues: [{ field: where, rule: 'type', message: `${where} must be a date` }] });
  }
  return d;
};

export function planStep(key: string, step: Step, scope: StepScope): StepPlan {
  const at = (prop: string) => `steps.${key}.${prop}`;
  switch (step.type) {
    case 'condition': {
      const value = evaluate(step.if, scope, at('if'));
      if (typeof value !== 'boolean') throw new KubikiError('validation-failed', `${at('if')} must evaluate to true or false, not ${JSON.stringify(value)}`, { issues: [{ field: at('if'), rule: 'type', message: 'a condition must be true or false' }] });
      return { kind: 'go', next: value ? step.then : step.else, output: { result: value } };
    }
    case 'switch': {
      const raw = evaluate(step.value, scope, at('value'));
      const value = raw === null || raw === undefined ? '' : String(raw);
      const next = Object.hasOwn(step.cases, value) ? step.cases[value] : step.default;
      return { kind: 'go', next, output: { value: raw, case: Object.hasOwn(step.cases, value) ? value : 'default' } };
    }
    case 'set': {
      const vars = evaluateMapping(step.variables, scope, at('variables'));
      return { kind: 'go', next: step.next, vars, output: vars };
    }
    case 'join':
      return { kind: 'go', next: step.next };
    case 'createRecord':
      return { kind: 'createRecord', entity: step.entity, fields: evaluateMapping(step.fields, scope, at('fields')), next: step.next };
    case 'updateRecord':
      return { kind: 'updateRecord', entity: step.entity, id: text(evaluate(step.id, scope, at('id')), at('id')), fields: evaluateMapping(step.fields, scope, at('fields')), next: step.next };
    case 'queryRecords':
      return { kind: 'queryRecords', entity: step.entity, where: evaluateMapping(step.where, scope, at('where')), sort: step.sort, limit: step.limit ?? 50, next: step.next };
    case 'callAction':
      return { kind: 'callAction', action: step.action, input: evaluateMapping(step.input, scope, at('input')), next: step.next };
    case 'notify':
      return {
        kind: 'notify', channel: step.channel, to: text(evaluate(step.to, scope, at('to')), at('to')),
        subject: step.subject === undefined ? undefined : text(evaluate(step.subject, scope, at('subject')), at('subject')),
        body: text(evaluate(step.body, scope, at('body')), at('body')), attachDocument: step.attachDocument, next: step.next,
      };
    case 'http': {
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(evaluateMapping(step.headers, scope, at('headers')))) headers[name] = text(value, at(`headers.${name}`));
      return {
        kind: 'http', method: step.method, url: text(evaluate(step.url, scope, at('url')), at('url')), headers,
        body: step.body === undefined ? undefined : evaluate(step.body, scope, at('body')), timeoutMs: step.timeoutMs ?? 10_000, next: step.next,
      };
    }
    case 'wait': {
      const until = step.duration !== undefined ? addDuration(scope.now, step.duration) : instant(evaluate(step.until!, scope, at('until')), at('until'));
      return { kind: 'wait', until: until.toISOString(), next: step.next };
    }
    case 'approval':
      return {
        kind: 'approval', role: step.assignees.role, users: step.assignees.users ?? [], mode: step.mode ?? 'any',
        subject: step.subject === undefined ? step.title ?? key : text(evaluate(step.subject, scope, at('subject')), at('subject')),
        deadlineAt: step.deadline === undefined ? undefined : addDuration(scope.now, step.deadline).toISOString(),
        onDeadline: step.onDeadline, approved: step.approved, rejected: step.rejected,
      };
    case 'parallel':
      return { kind: 'parallel', branches: step.branches, join: step.join };
    case 'subWorkflow':
      return { kind: 'subWorkflow', workflow: step.workflow, input: evaluateMapping(step.input, scope, at('input')), next: step.next };
    case 'renderDocument':
      return { kind: 'renderDocument', template: step.template, recordId: text(evaluate(step.recordId, scope, at('recordId')), at('recordId')), format: step.format ?? 'html', next: step.next };
    case 'end':
      return { kind: 'end', status: step.status ?? 'completed' };
  }
}
