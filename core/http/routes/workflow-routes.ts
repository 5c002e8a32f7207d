import fs from 'node:fs';
import path from 'node:path';
import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import { repoRoot } from '../../config.ts';
import { fieldError } from '../../errors.ts';
import type { Kubiki } from '../../kernel.ts';
import { toMermaid } from '../../workflows/mermaid-diagram.ts';
import { versionedRoutes } from './versioned-routes.ts';
import { principalOf, stateOf } from '../request-context.ts';

const schemaFile = path.join(repoRoot, 'workflows/workflow.schema.json');

/** Workflow definitions for analysts: the published schema, validation, versions, diagrams. */
export function workflowRoutes(router: Router, k: Kubiki): void {
  const schema: unknown = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));

  router.get('/api/workflows/schema.json', (ctx) => {
    principalOf(ctx);
    ctx.type = 'application/schema+json';
    ctx.body = schema;
  });

  // `{ "source": "<YAML or JSON text>" }`, or the definition itself as the body.
  router.post('/api/workflows/validate', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.workflows.read');
    const body = stateOf(ctx).body;
    if (body === undefined) throw fieldError('validation-failed', '', 'required', 'send the definition, or {"source": "<YAML or JSON text>"}');
    const isSource = typeof body === 'object' && body !== null && Object.keys(body).length === 1 && typeof (body as { source?: unknown }).source === 'string';
    const result = await k.workflows.validate(isSource ? (body as { source: string }).source : body);
    ctx.body = { valid: result.ok, errors: result.errors };
  });

  versionedRoutes(router, '/api/workflows', k.workflows, { read: 'core.workflows.read', manage: 'core.workflows.manage' });

  // Stops an automation (or a lifecycle's guard) without deleting anything; publishing brings it back.
  router.post('/api/workflows/:id/unpublish', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.workflows.manage');
    ctx.body = await k.workflows.unpublish(ctx.params.id, principal, stateOf(ctx).requestId);
  });

  router.get('/api/workflows/:id/diagram', async (ctx) => {
    requireGrant(principalOf(ctx), 'core.workflows.read');
    const raw = ctx.query.version;
    if (raw !== undefined && (typeof raw !== 'string' || !/^\d{1,9}$/.test(raw))) throw fieldError('bad-query', 'version', 'type', 'version must be a version number');
    const version = raw ? await k.workflows.version(ctx.params.id, Number(raw)) : await k.workflows.published(ctx.params.id);
    ctx.type = 'text/plain';
    ctx.body = toMermaid(version.metadata);
  });
}
