import { CUSTOM_FIELD_NAME, type EntityDefinition, type JsonSchema } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { defineRoute, type RouteSpec } from '../route-contract.ts';
import { noContent } from '../schemas/common.ts';
import { stateOf } from '../request-context.ts';

const describe = (e: EntityDefinition) => ({
  entity: e.qualifiedName,
  title: e.title,
  description: e.description ?? null,
  path: `/api/${e.plugin}/${e.plural}`,
  fields: [...e.fields.values()].map((f) => ({
    name: f.name, kind: f.kind, required: f.required, custom: f.custom, ref: f.ref ?? null, unique: f.unique, title: f.title, schema: f.schema,
  })),
});

const KINDS = ['text', 'date', 'datetime', 'uuid', 'integer', 'boolean', 'decimal', 'json'];
const fieldSchema: JsonSchema = { type: 'object', description: 'The field\'s JSON Schema, with the x- keywords Kubiki reads' };

const entityMeta: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['entity', 'title', 'description', 'path', 'fields'],
  properties: {
    entity: { type: 'string', description: '<plugin>.<entity>, e.g. base.organizations' },
    title: { type: 'string' },
    description: { type: ['string', 'null'] },
    path: { type: 'string', description: 'Where its records live, e.g. /api/base/organizations' },
    fields: {
      type: 'array',
      items: {
        type: 'object', additionalProperties: false, required: ['name', 'kind', 'required', 'custom', 'ref', 'unique', 'title', 'schema'],
        properties: {
          name: { type: 'string' }, kind: { enum: KINDS }, required: { type: 'boolean' },
          custom: { type: 'boolean', description: 'Added by an admin (x_ names)' },
          ref: { type: ['string', 'null'], description: 'The referenced entity, e.g. base.organizations' },
          unique: { type: 'boolean' }, title: { type: 'boolean', description: 'Searched by q= and shown as the record\'s title' },
          schema: fieldSchema,
        },
      },
    },
  },
};

const entityProperties = {
  plugin: { type: 'string', pattern: '^[a-z][a-z0-9]*$', maxLength: 50, description: 'A plugin name, e.g. base' },
  entity: { type: 'string', pattern: '^[a-z][a-zA-Z0-9]{0,40}$', description: 'The entity\'s plural (URL) name, e.g. organizations' },
};
const entityParams: JsonSchema = { type: 'object', required: ['plugin', 'entity'], properties: entityProperties };
const customFieldName: JsonSchema = {
  type: 'string', pattern: CUSTOM_FIELD_NAME.source,
  description: 'Custom field name: "x_" then a lower-case letter, then letters, digits and "_" (at most 62 characters), e.g. x_loyaltyLevel',
};

/** Where an entity's metadata lives: 404 unless its plugin exists, is enabled and has it. */
const entityErrors = ['unknown-plugin', 'plugin-disabled', 'unknown-entity'] as const;

interface EntityParams { plugin: string; entity: string }
interface CustomFieldBody { name: string; schema: JsonSchema; required?: boolean }

/** Entity metadata (what a generic UI or import tool builds on) and admin custom fields. */
export function metaRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  return [
    defineRoute({
      method: 'get', path: '/api/meta/entities', operationId: 'listEntityMeta', summary: 'Entities of enabled plugins with their fields', permission: 'signed-in',
      schemas: {
        responses: {
          200: { type: 'object', additionalProperties: false, required: ['data', 'next'], properties: { data: { type: 'array', items: entityMeta }, next: { type: 'null', description: 'Always null: every entity comes in one answer' } } },
        },
      },
      handler(_input, http) {
        http.body = { data: k.registry.all().filter((e) => k.plugins.isEnabled(e.plugin)).map(describe), next: null };
      },
    }),
    defineRoute<EntityParams>({
      method: 'get', path: '/api/meta/entities/:plugin/:entity', operationId: 'getEntityMeta', summary: 'One entity of an enabled plugin with its fields', permission: 'signed-in',
      errors: [...entityErrors],
      schemas: { params: entityParams, responses: { 200: entityMeta } },
      handler({ params }, http) {
        http.body = describe(k.httpRepository(params.plugin, params.entity).entity);
      },
    }),
    defineRoute<EntityParams, unknown, CustomFieldBody>({
      method: 'post', path: '/api/meta/entities/:plugin/:entity/fields', operationId: 'addCustomField', summary: 'Add a custom field: a real column, validated, filterable and in OpenAPI',
      description: 'The schema follows the rules of declared fields (no "type": "number"; x-ref, x-decimal, x-unique…). A required field needs a "default", which existing records receive.',
      permission: 'core.customFields.manage',
      errors: [...entityErrors, 'conflict', 'lifecycle-conflict'],
      schemas: {
        params: entityParams,
        body: {
          type: 'object', required: ['name', 'schema'],
          properties: {
            name: customFieldName,
            schema: { type: 'object', additionalProperties: true, description: 'The field\'s JSON Schema, e.g. {"type": "string", "maxLength": 50}' },
            required: { type: 'boolean', default: false },
          },
        },
        responses: {
          201: {
            type: 'object', additionalProperties: false, required: ['name', 'kind', 'required', 'custom', 'schema'],
            properties: { name: { type: 'string' }, kind: { enum: KINDS }, required: { type: 'boolean' }, custom: { const: true }, schema: fieldSchema },
          },
        },
      },
      async handler({ params, body, principal }, http) {
        const entity = k.httpRepository(params.plugin, params.entity).entity;
        const field = await k.customFields.add(entity.qualifiedName, { name: body.name, schema: body.schema, required: body.required === true }, principal, stateOf(http).requestId);
        http.status = 201;
        http.body = { name: field.name, kind: field.kind, required: field.required, custom: true, schema: field.schema };
      },
    }),
    defineRoute<EntityParams & { name: string }>({
      method: 'delete', path: '/api/meta/entities/:plugin/:entity/fields/:name', operationId: 'removeCustomField', summary: 'Drop a custom field and its column',
      description: 'Refused (409 with the count) while any record holds a value in it, so nothing is lost silently: clear them first (PATCH the field to null).',
      permission: 'core.customFields.manage',
      errors: [...entityErrors, 'not-found', 'conflict'],
      schemas: { params: { type: 'object', required: ['plugin', 'entity', 'name'], properties: { ...entityProperties, name: customFieldName } }, responses: { 204: noContent } },
      async handler({ params, principal }, http) {
        const entity = k.httpRepository(params.plugin, params.entity).entity;
        await k.customFields.remove(entity.qualifiedName, params.name, principal, stateOf(http).requestId);
        http.status = 204;
      },
    }),
  ];
}
