import type { JsonSchema } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { limit, nullable, page, timestamp, uuid, uuidParams } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';
import { ITEM_ID_PATTERN, optionalBody, versionNumber } from './versioned-routes.ts';
import { workflowParams } from './workflow-routes.ts';

const STATUSES = ['running', 'waiting', 'completed', 'failed', 'cancelled'];
const ENTITY_NAME = '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$';
const nullableString: JsonSchema = { type: ['string', 'null'] };
const nullableTime: JsonSchema = nullable(timestamp);

const instanceProperties: JsonSchema = {
  id: uuid, workflowId: { type: 'string' }, version: versionNumber,
  kind: { enum: ['automation', 'transition', 'subworkflow'] }, status: { enum: STATUSES },
  entity: { ...nullableString, description: '<plugin>.<plural> of the record it runs on' }, recordId: nullableString,
  parentId: { ...nullable(uuid), description: 'The parent instance of a sub-workflow' },
  error: nullableString, failedStep: nullableString, startedBy: { type: 'string', description: 'Username (or workflow:<trigger>)' },
  createdAt: timestamp, updatedAt: timestamp, finishedAt: nullableTime,
};
const instanceSummary: JsonSchema = { type: 'object', additionalProperties: false, required: Object.keys(instanceProperties), properties: instanceProperties };

const stepHistory: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'step', 'type', 'status', 'attempts', 'input', 'output', 'error', 'createdAt', 'startedAt', 'finishedAt', 'durationMs', 'dueAt'],
  properties: {
    id: { type: 'integer' }, step: { type: 'string' }, type: { type: 'string' },
    status: { enum: ['pending', 'running', 'waiting', 'done', 'failed', 'cancelled'] }, attempts: { type: 'integer', minimum: 0 },
    input: { description: 'The step as planned: its evaluated inputs' }, output: { description: 'What later steps see as steps.<id>' },
    error: nullableString, createdAt: timestamp, startedAt: nullableTime, finishedAt: nullableTime,
    durationMs: { type: ['integer', 'null'] }, dueAt: nullableTime,
  },
};

const instanceDetail: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: [...Object.keys(instanceProperties), 'trigger', 'input', 'vars', 'outputs', 'steps', 'children'],
  properties: {
    ...instanceProperties,
    trigger: { type: 'object', description: 'What started it' }, input: { description: 'Its input (manual, webhook, transition, sub-workflow), or null' },
    vars: { type: 'object' }, outputs: { type: 'object', description: 'Step id → output of the steps done' },
    steps: { type: 'array', items: stepHistory }, children: { type: 'array', items: uuid, description: 'Sub-workflow instances' },
  },
};

const task: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'instanceId', 'workflowId', 'step', 'subject', 'mode', 'required', 'eligible', 'status', 'entity', 'recordId', 'deadlineAt', 'createdAt', 'decidedAt', 'decisions'],
  properties: {
    id: uuid, instanceId: uuid, workflowId: { type: 'string' }, step: { type: 'string' }, subject: { type: 'string' },
    mode: { anyOf: [{ enum: ['any', 'all'] }, { type: 'object', additionalProperties: false, required: ['atLeast'], properties: { atLeast: { type: 'integer', minimum: 1 } } }] },
    required: { type: 'integer', minimum: 1, description: 'Approvals needed' }, eligible: { type: 'integer', minimum: 1, description: 'How many people may decide' },
    status: { enum: ['open', 'approved', 'rejected', 'expired', 'cancelled'] },
    entity: nullableString, recordId: nullableString, deadlineAt: nullableTime, createdAt: timestamp, decidedAt: nullableTime,
    decisions: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['userId', 'username', 'decision', 'comment', 'at'],
        properties: { userId: uuid, username: { type: 'string' }, decision: { enum: ['approved', 'rejected'] }, comment: { type: 'string' }, at: timestamp },
      },
    },
  },
};

const taskParams = uuidParams('id', 'A task id (UUID)');
const instanceParams = uuidParams('id', 'A workflow instance id (UUID)');
const recordParams: JsonSchema = {
  type: 'object', required: ['plugin', 'entity', 'id'],
  properties: {
    plugin: { type: 'string', pattern: '^[a-z][a-z0-9]*$', maxLength: 50, description: 'plugin name, e.g. base' },
    entity: { type: 'string', pattern: '^[a-z][a-zA-Z0-9]*$', maxLength: 60, description: 'entity (its plural), e.g. products' },
    id: { ...uuid, description: 'A record id (UUID)' },
  },
};
const transitionName: JsonSchema = { type: 'string', pattern: '^[a-z][a-zA-Z0-9_-]{0,60}$', description: 'transition name of the lifecycle' };

const comment = (required: boolean): JsonSchema => ({
  type: 'object', ...(required ? { required: ['comment'] } : {}),
  properties: { comment: { type: 'string', ...(required ? { minLength: 1 } : {}), maxLength: 2000, description: required ? 'Why (required to reject)' : 'Optional' } },
});

type RecordParams = { plugin: string; entity: string; id: string };

/**
 * Running workflows: instances (list, history, retry, cancel), manual runs, webhooks, approval
 * tasks and lifecycle transitions. Listed before the definition routes, whose `/:id` would
 * otherwise take `/api/workflows/instances`.
 */
export function workflowRunRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  const runtime = k.workflowRuntime;
  return [
    defineRoute<unknown, { status?: string; workflow?: string; entity?: string; recordId?: string; limit: number; cursor?: string }>({
      method: 'get', path: '/api/workflows/instances', operationId: 'listWorkflowInstances', permission: 'core.workflows.read',
      summary: 'Workflow instances, newest first', description: 'Filters by status (a comma list), workflow, entity and record; keyset pagination with `cursor` (the previous page\'s `next`).',
      schemas: {
        query: {
          type: 'object',
          properties: {
            status: { type: 'string', pattern: `^(${STATUSES.join('|')})(,(${STATUSES.join('|')}))*$`, maxLength: 200, description: `comma list of statuses (${STATUSES.join(', ')})` },
            workflow: { type: 'string', pattern: ITEM_ID_PATTERN, maxLength: 120, description: 'A workflow id' },
            entity: { type: 'string', pattern: ENTITY_NAME, maxLength: 120, description: '<plugin>.<plural>' },
            recordId: { ...uuid, description: 'A record id' },
            limit: limit(200, 50),
            cursor: { ...uuid, description: 'The next of the previous page' },
          },
        },
        responses: { 200: page(instanceSummary) },
      },
      async handler({ query }, http) {
        // The store reads the query as it arrives (strings); the schema has checked it already.
        const raw = Object.fromEntries(Object.entries(query).filter(([, v]) => v !== undefined).map(([key, v]) => [key, String(v)]));
        http.body = await runtime.instances.list(raw);
      },
    }),

    defineRoute<{ id: string }>({
      method: 'get', path: '/api/workflows/instances/:id', operationId: 'getWorkflowInstance', permission: 'core.workflows.read',
      summary: 'One instance: trigger, variables, outputs and every step\'s input, output, error, attempts and timings', errors: ['not-found'],
      schemas: { params: instanceParams, responses: { 200: instanceDetail } },
      async handler({ params: { id } }, http) {
        http.body = await runtime.instances.get(id);
      },
    }),

    defineRoute<{ id: string }>({
      method: 'post', path: '/api/workflows/instances/:id/retry', operationId: 'retryWorkflowInstance', permission: 'core.workflows.manage',
      summary: 'Run the failed steps of a failed instance again (audited)', errors: ['not-found', 'conflict'],
      schemas: { params: instanceParams, responses: { 200: instanceSummary } },
      async handler({ params: { id }, principal }, http) {
        http.body = await runtime.instances.retry(id, principal, stateOf(http).requestId);
      },
    }),

    defineRoute<{ id: string }>({
      method: 'post', path: '/api/workflows/instances/:id/cancel', operationId: 'cancelWorkflowInstance', permission: 'core.workflows.manage',
      summary: 'Cancel an instance with its open steps, tasks and sub-workflows (audited)', errors: ['not-found', 'conflict'],
      schemas: { params: instanceParams, responses: { 200: instanceSummary } },
      async handler({ params: { id }, principal }, http) {
        http.body = await runtime.instances.cancel(id, principal, stateOf(http).requestId);
      },
    }),

    defineRoute<{ id: string }, unknown, { recordId?: string; input?: Record<string, unknown> } | undefined>({
      method: 'post', path: '/api/workflows/:id/run', operationId: 'runWorkflow', permission: 'core.workflows.run',
      summary: 'Start a published workflow with a manual trigger',
      description: 'Also needs one of the trigger\'s `roles` when it names any; `recordId` when the trigger is about an entity (with your read permission on the record); `input` is checked against the trigger\'s JSON Schema. 202 with the instance id.',
      errors: ['not-found', 'conflict', 'forbidden', 'plugin-disabled'],
      schemas: {
        params: workflowParams,
        body: optionalBody({
          type: 'object',
          properties: { recordId: { ...uuid, description: 'The record it runs on (when the trigger names an entity)' }, input: { type: 'object', description: 'Checked against the trigger\'s input schema' } },
        }),
        responses: {
          202: {
            description: 'Started', headers: { Location: '/api/workflows/instances/{instanceId}' },
            schema: { type: 'object', additionalProperties: false, required: ['instanceId'], properties: { instanceId: uuid } },
          },
        },
      },
      async handler({ params: { id }, body, principal }, http) {
        const { id: instanceId } = await runtime.triggers.runManual(id, body ?? {}, principal);
        http.status = 202;
        http.set('Location', `/api/workflows/instances/${instanceId}`);
        http.body = { instanceId };
      },
    }),

    defineRoute<{ id: string }, unknown, unknown>({
      method: 'post', path: '/api/workflows/:id/webhook', operationId: 'receiveWorkflowWebhook', permission: 'public',
      summary: 'Start a published workflow with a webhook trigger',
      description: 'No token: the body is signed, `X-Kubiki-Signature: sha256=<hex HMAC-SHA256 of the exact body>` with the secret in the trigger\'s `secretEnv` variable (401 invalid-signature otherwise). `X-Kubiki-Delivery` (1–200 of letters, digits, `.:-_`) deduplicates: a repeated delivery answers 200 with the first instance.',
      errors: ['invalid-signature', 'not-found', 'conflict', 'plugin-disabled'],
      schemas: {
        params: workflowParams,
        body: { description: 'Any JSON: checked against the trigger\'s input schema (after the signature)' },
        responses: {
          202: { type: 'object', additionalProperties: false, required: ['instanceId', 'created'], properties: { instanceId: uuid, created: { const: true } } },
          200: { description: 'A delivery seen before: its instance', schema: { type: 'object', additionalProperties: false, required: ['instanceId', 'created'], properties: { instanceId: uuid, created: { const: false } } } },
        },
      },
      async handler({ params: { id }, body }, http) {
        const header = (name: string): string | undefined => http.get(name) || undefined;
        // The signature is over the bytes as received, kept by the body reader.
        const { id: instanceId, created } = await runtime.triggers.receiveWebhook(id, stateOf(http).rawBody ?? '', body, {
          signature: header('x-kubiki-signature'), delivery: header('x-kubiki-delivery'),
        });
        http.status = created ? 202 : 200;
        http.body = { instanceId, created };
      },
    }),

    // Tasks are the caller's own: being one of the people who decide a task is the permission.
    defineRoute({
      method: 'get', path: '/api/tasks', operationId: 'listMyTasks', permission: 'signed-in',
      summary: 'Your open approval tasks: those you may decide and have not', description: 'Takes no parameters.',
      schemas: { query: { type: 'object', properties: {} }, responses: { 200: page(task, false) } },
      async handler({ principal }, http) {
        http.body = { data: await runtime.tasks.openFor(principal) };
      },
    }),

    defineRoute<{ id: string }>({
      method: 'get', path: '/api/tasks/:id', operationId: 'getTask', permission: 'signed-in',
      summary: 'One approval task with its decisions', description: 'For the people who may decide it and for core.workflows.read.',
      errors: ['not-found'],
      schemas: { params: taskParams, responses: { 200: task } },
      async handler({ params: { id }, principal }, http) {
        http.body = await runtime.tasks.get(id, principal);
      },
    }),

    ...([['approve', 'approved'], ['reject', 'rejected']] as const).map(([verb, decision]) => defineRoute<{ id: string }, unknown, { comment?: string } | undefined>({
      method: 'post', path: `/api/tasks/:id/${verb}`, operationId: `${verb}Task`, permission: 'signed-in',
      summary: verb === 'approve' ? 'Approve a task (audited)' : 'Reject a task, saying why (audited)',
      description: 'Only the people who may decide the task (fixed when it opened); 409 task-closed once it is settled or expired, or when you decided it already.',
      errors: ['not-found', 'forbidden', 'task-closed'],
      schemas: { params: taskParams, body: verb === 'approve' ? optionalBody(comment(false)) : comment(true), responses: { 200: task } },
      async handler({ params: { id }, body, principal }, http) {
        http.body = await runtime.tasks.decide(id, principal, decision, body, stateOf(http).requestId);
      },
    })),

    defineRoute<RecordParams>({
      method: 'get', path: '/api/:plugin/:entity/:id/transitions', operationId: 'listTransitions', permission: 'signed-in',
      summary: 'A record\'s lifecycle state and each transition, with whether you may take it (and why not)',
      description: 'Needs read permission on the record; the entity must have a published lifecycle.',
      errors: ['not-found', 'unknown-plugin', 'unknown-entity', 'plugin-disabled', 'forbidden'],
      schemas: {
        params: recordParams,
        responses: {
          200: {
            type: 'object', additionalProperties: false, required: ['workflow', 'state', 'transitions'],
            properties: {
              workflow: { type: 'string', description: 'The lifecycle' }, state: { type: 'string' },
              transitions: {
                type: 'array',
                items: {
                  type: 'object', additionalProperties: false, required: ['name', 'title', 'to', 'allowed'],
                  properties: {
                    name: { type: 'string' }, title: { type: 'string' }, to: { type: 'string' }, allowed: { type: 'boolean' },
                    reason: { type: 'string', description: 'Why you may not take it now' }, input: { type: 'object', description: 'JSON Schema of its input' },
                  },
                },
              },
            },
          },
        },
      },
      async handler({ params, principal }, http) {
        const repo = k.httpRepository(params.plugin, params.entity);
        http.body = await runtime.lifecycles.available(repo.entity.qualifiedName, params.id, principal);
      },
    }),

    defineRoute<RecordParams & { name: string }, unknown, { input?: Record<string, unknown>; version?: number } | undefined>({
      method: 'post', path: '/api/:plugin/:entity/:id/transitions/:name', operationId: 'takeTransition', permission: 'signed-in',
      summary: 'Take a lifecycle transition',
      description: '403 without a role it names (or, when it names none, without update permission on the record); 409 transition-not-allowed from the record\'s state, 409 transition-condition-failed. The state change and the transition\'s steps (as an instance) commit together.',
      errors: ['not-found', 'unknown-plugin', 'unknown-entity', 'plugin-disabled', 'forbidden', 'transition-not-allowed', 'transition-condition-failed', 'version-mismatch', 'conflict'],
      schemas: {
        params: { ...recordParams, required: [...(recordParams.required as string[]), 'name'], properties: { ...(recordParams.properties as JsonSchema), name: transitionName } },
        body: optionalBody({
          type: 'object',
          properties: {
            input: { type: 'object', description: 'Checked against the transition\'s input schema' },
            version: { type: 'integer', minimum: 1, description: 'The record version you saw (412 when it changed)' },
          },
        }),
        responses: {
          200: {
            type: 'object', additionalProperties: false, required: ['record', 'transition', 'from', 'to', 'instanceId'],
            properties: {
              record: { type: 'object', required: ['id', 'version'], properties: { id: uuid, version: { type: 'integer' } }, description: 'The record after the change, as GET answers it' },
              transition: { type: 'string' }, from: { type: 'string' }, to: { type: 'string' },
              instanceId: { ...nullable(uuid), description: 'The instance running the transition\'s steps, when it has any' },
              output: { description: 'What the transition\'s action answered (e.g. the entry a posting wrote), when it has an action' },
            },
          },
        },
      },
      async handler({ params, body, principal }, http) {
        const repo = k.httpRepository(params.plugin, params.entity);
        http.body = await runtime.lifecycles.take(repo.entity.qualifiedName, params.id, params.name, { input: body?.input, version: body?.version, actor: principal, requestId: stateOf(http).requestId });
      },
    }),
  ];
}
