import type Router from '@koa/router';
import { requireGrant } from '../../auth/principal.ts';
import type { EntityDefinition } from '../../entities/entity-definition.ts';
import type { Kubiki } from '../../kernel.ts';
import { principalOf, stateOf } from '../request-context.ts';

const describe = (e: EntityDefinition) => ({
  entity: e.qualifiedName,
  title: e.title,
  description: e.description ?? null,
  path: `/api/${e.plugin}/${e.plural}`,
  fields: [...e.fields.values()].map((f) => ({
    name: f.name, kind: f.kind, required: f.required, custom: f.custom, ref: f.ref ?? null, unique: f.unique, title: f.title, schema: f.schema,
  })),
});

/** Entity metadata (what a generic UI or import tool builds on) and admin custom fields. */
export function metaRoutes(router: Router, k: Kubiki): void {
  router.get('/api/meta/entities', (ctx) => {
    principalOf(ctx);
    ctx.body = { data: k.registry.all().filter((e) => k.plugins.isEnabled(e.plugin)).map(describe), next: null };
  });

  router.get('/api/meta/entities/:plugin/:entity', (ctx) => {
    principalOf(ctx);
    ctx.body = describe(k.httpRepository(ctx.params.plugin, ctx.params.entity).entity);
  });

  router.post('/api/meta/entities/:plugin/:entity/fields', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.customFields.manage');
    const entity = k.httpRepository(ctx.params.plugin, ctx.params.entity).entity;
    const field = await k.customFields.add(entity.qualifiedName, k.customFields.parse(stateOf(ctx).body), principal, stateOf(ctx).requestId);
    ctx.status = 201;
    ctx.body = { name: field.name, kind: field.kind, required: field.required, custom: true, schema: field.schema };
  });

  router.delete('/api/meta/entities/:plugin/:entity/fields/:name', async (ctx) => {
    const principal = principalOf(ctx);
    requireGrant(principal, 'core.customFields.manage');
    const entity = k.httpRepository(ctx.params.plugin, ctx.params.entity).entity;
    await k.customFields.remove(entity.qualifiedName, ctx.params.name, principal, stateOf(ctx).requestId);
    ctx.status = 204;
  });
}
