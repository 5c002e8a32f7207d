import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import type { Ajv2020 } from 'ajv/dist/2020.js';
import { createAjv, toFieldIssues } from '../../entities/ajv.ts';
import { KubikiError, fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { APPROVAL_DECISIONS, dryRun, type ApprovalDecision, type DryRunRequest } from '../../workflows/engine/dry-run.ts';
import type { WorkflowDefinition } from '../../workflows/workflow-definition.ts';
import { principalOf, stateOf } from '../request-context.ts';

const KEYS = ['version', 'source', 'recordId', 'record', 'trigger', 'input', 'transition', 'decisions'];
const MAX_SOURCE = 512 * 1024;
let inputAjv: Ajv2020 | undefined;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

interface DryRunBody extends DryRunRequest {
  version?: number;
  source?: string;
}

/** The body of POST /api/workflows/:id/dry-run, checked key by key: every mistake names its field. */
function readBody(raw: unknown): DryRunBody {
  const body = raw === undefined ? {} : raw;
  if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
  for (const key of Object.keys(body)) {
    if (!KEYS.includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (${KEYS.join(', ')})`);
  }
  const out: DryRunBody = {};
  if (body.version !== undefined) {
    if (!Number.isInteger(body.version) || (body.version as number) < 1) throw fieldError('validation-failed', 'version', 'type', 'version must be a positive integer');
    out.version = body.version as number;
  }
  if (body.source !== undefined) {
    if (typeof body.source !== 'string' || body.source.length > MAX_SOURCE) throw fieldError('validation-failed', 'source', 'type', 'source must be YAML or JSON text of at most 512 KiB');
    if (out.version !== undefined) throw fieldError('validation-failed', 'source', 'oneOf', 'give either version (a saved version) or source (an unsaved definition), not both');
    out.source = body.source;
  }
  if (body.recordId !== undefined) {
    if (typeof body.recordId !== 'string' || body.recordId === '') throw fieldError('validation-failed', 'recordId', 'type', 'recordId must be the id of a record');
    out.recordId = body.recordId;
  }
  for (const key of ['record', 'trigger', 'input'] as const) {
    if (body[key] === undefined) continue;
    if (!isObject(body[key])) throw fieldError('validation-failed', key, 'type', `${key} must be a JSON object`);
    out[key] = body[key];
  }
  if (out.recordId !== undefined && out.record !== undefined) throw fieldError('validation-failed', 'record', 'oneOf', 'give either recordId (to load the record) or record (the record itself), not both');
  if (body.transition !== undefined) {
    if (typeof body.transition !== 'string' || body.transition === '') throw fieldError('validation-failed', 'transition', 'type', 'transition must be the name of a transition');
    out.transition = body.transition;
  }
  if (body.decisions !== undefined) {
    if (!isObject(body.decisions)) throw fieldError('validation-failed', 'decisions', 'type', 'decisions must map approval step ids to approved, rejected or deadline');
    for (const [step, decision] of Object.entries(body.decisions)) {
      if (!APPROVAL_DECISIONS.includes(decision as ApprovalDecision)) {
        throw fieldError('validation-failed', `decisions.${step}`, 'enum', `decisions.${step} must be ${APPROVAL_DECISIONS.join(', ')}`);
      }
    }
    out.decisions = body.decisions as Record<string, ApprovalDecision>;
  }
  return out;
}

/**
 * POST /api/workflows/:id/dry-run: a definition run against a record or payload with no side
 * effects — a saved version (the latest by default, so drafts can be tried before publishing) or
 * unsaved `source` text.
 */
export function workflowDryRunRoutes(router: Router, k: Kubiki): void {
  router.post('/api/workflows/:id/dry-run', async (ctx) => {
    const actor = principalOf(ctx);
    requireGrant(actor, 'core.workflows.read');
    const body = readBody(stateOf(ctx).body);
    const id = ctx.params.id;
    let definition: WorkflowDefinition;
    let version: number | undefined;
    if (body.source !== undefined) {
      const checked = await k.workflows.validate(body.source);
      if (!checked.ok || !checked.definition) {
        const issues = checked.errors.map((e) => ({ field: e.path, rule: e.rule, message: e.message }));
        throw new KubikiError('validation-failed', `the workflow definition has ${issues.length} error${issues.length === 1 ? '' : 's'}: ${issues[0]?.message ?? ''}`, { issues });
      }
      definition = checked.definition;
      if (definition.id !== id) throw fieldError('validation-failed', 'id', 'const', `the definition's id is ${definition.id}, but it is tried as ${id}`);
    } else {
      version = body.version ?? (await k.workflows.summary(id)).latestVersion;
      definition = (await k.workflows.version(id, version)).metadata;
    }
    const { version: _version, source: _source, ...request } = body;
    const { workflow, ...result } = await dryRun(definition, request, {
      actor,
      repository: (q) => k.repository(q),
      publishedDefinition: async (child) => (await k.workflows.published(child)).metadata,
      httpAllow: k.config.workflowHttpAllow,
      hasAction: (action) => k.workflowRuntime.actions.names().has(action),
      validateInput: (schema, input) => {
        const ajv = (inputAjv ??= createAjv());
        try {
          const validate = ajv.compile(schema);
          return validate(input) ? [] : toFieldIssues(validate.errors);
        } catch (error) {
          throw fieldError('validation-failed', 'transition', 'input-schema', `the transition's input schema cannot be used: ${(error as Error).message}`);
        } finally {
          ajv.removeSchema(schema); // definitions are new objects each time: do not let ajv's cache grow
        }
      },
      validateRecord: (q, fields) => {
        const validate = k.registry.validator(k.registry.get(q));
        return validate(fields) ? [] : toFieldIssues(validate.errors);
      },
    });
    ctx.body = { workflow, ...(version !== undefined ? { version } : {}), ...result };
  });
}
