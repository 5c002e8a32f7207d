import fs from 'node:fs';
import path from 'node:path';
import { repoRoot } from '../../config.ts';
import type { JsonSchema } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { toMermaid } from '../../workflows/mermaid-diagram.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { versionNumber, versionedItemParams, versionedRoutes } from './versioned-routes.ts';

const schemaFile = path.join(repoRoot, 'workflows/workflow.schema.json');
const MAX_SOURCE = 512 * 1024;

/** A definition as the store keeps it (the version's metadata): checked by the workflow validator. */
export const workflowDefinition: JsonSchema = {
  type: 'object', additionalProperties: true, required: ['id', 'title', 'kind'],
  description: 'A workflow definition as workflows/workflow.schema.json describes it (served at GET /api/workflows/schema.json)',
  properties: { id: { type: 'string' }, title: { type: 'string' }, kind: { enum: ['lifecycle', 'automation'] } },
};

const workflowSummary: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['id', 'title', 'kind', 'entity', 'publishedVersion', 'latestVersion'],
  properties: {
    id: { type: 'string', description: '<plugin>.<name>' }, title: { type: 'string' }, kind: { enum: ['lifecycle', 'automation'] },
    entity: { type: ['string', 'null'], description: 'The entity a lifecycle or an entity trigger is about' },
    publishedVersion: { type: ['integer', 'null'], minimum: 1, description: 'null while nothing is published (or after unpublish)' },
    latestVersion: versionNumber,
  },
};

export const workflowParams = versionedItemParams('crm.deal-lifecycle');

/** Workflow definitions for analysts: the published schema, validation, versions, diagrams. */
export function workflowRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  const schema: unknown = JSON.parse(fs.readFileSync(schemaFile, 'utf8'));
  return [
    defineRoute({
      method: 'get', path: '/api/workflows/schema.json', operationId: 'workflowSchema', permission: 'signed-in',
      summary: 'The JSON Schema of workflow definitions (for editors\' autocompletion)',
      schemas: { responses: { 200: { description: 'workflows/workflow.schema.json', contentType: 'application/schema+json', schema: { type: 'object' } } } },
      handler(_input, http) {
        http.type = 'application/schema+json';
        http.body = schema;
      },
    }),

    defineRoute<unknown, unknown, Record<string, unknown>>({
      method: 'post', path: '/api/workflows/validate', operationId: 'validateWorkflow', permission: 'core.workflows.read',
      summary: 'Validate a definition without saving it: every error with its JSON path and a sentence',
      description: 'The body is the definition itself, or `{"source": "<YAML or JSON text>"}`.',
      schemas: {
        body: {
          type: 'object', additionalProperties: true,
          description: 'A definition (checked by the validator, not here), or {"source": "<YAML or JSON text>"}',
          properties: { source: { type: 'string', maxLength: MAX_SOURCE, description: 'YAML or JSON text (when it is the only field)' } },
        },
        responses: {
          200: {
            type: 'object', additionalProperties: false, required: ['valid', 'errors'],
            properties: {
              valid: { type: 'boolean' },
              errors: {
                type: 'array',
                items: {
                  type: 'object', additionalProperties: false, required: ['path', 'rule', 'message'],
                  properties: { path: { type: 'string', description: 'JSON pointer, e.g. /steps/notify/next' }, rule: { type: 'string' }, message: { type: 'string' } },
                },
              },
            },
          },
        },
      },
      async handler({ body }, http) {
        const isSource = Object.keys(body).length === 1 && typeof body.source === 'string';
        const result = await k.workflows.validate(isSource ? body.source : body);
        http.body = { valid: result.ok, errors: result.errors };
      },
    }),

    ...versionedRoutes('/api/workflows', k.workflows, {
      name: 'Workflow', plural: 'Workflows', noun: 'workflow definition', example: 'crm.deal-lifecycle',
      permissions: { read: 'core.workflows.read', manage: 'core.workflows.manage' },
      listItem: workflowSummary, summary: workflowSummary, metadata: workflowDefinition,
      saveBody: {
        type: 'object',
        description: 'Either source or definition',
        properties: {
          source: { type: 'string', maxLength: MAX_SOURCE, description: 'YAML or JSON text; kept as the version\'s source' },
          definition: { type: 'object', description: 'The definition as a JSON object (checked by the workflow validator)' },
          comment: { type: 'string', maxLength: 500 },
        },
      },
      saveDescription: 'Only a valid definition is saved (400 validation-failed with every error otherwise); its `id` must be the one in the path. The new version is not published.',
      saveErrors: [],
    }),

    defineRoute<{ id: string }, { version?: number }>({
      method: 'get', path: '/api/workflows/:id/diagram', operationId: 'workflowDiagram', permission: 'core.workflows.read',
      summary: 'A version as a Mermaid diagram (the published one by default)',
      description: 'An automation as `flowchart TD`, a lifecycle as `stateDiagram-v2`.',
      errors: ['not-found', 'conflict'],
      schemas: {
        params: workflowParams,
        query: { type: 'object', properties: { version: { ...versionNumber, description: 'The version to draw' } } },
        responses: { 200: { description: 'Mermaid text', contentType: 'text/plain', schema: { type: 'string' } } },
      },
      async handler({ params: { id }, query }, http) {
        const version = query.version !== undefined ? await k.workflows.version(id, query.version) : await k.workflows.published(id);
        http.type = 'text/plain';
        http.body = toMermaid(version.metadata);
      },
    }),
  ];
}
