import { defineRoute, type PluginContext } from 'kubiki/plugin';
import type { PostingRules } from '../posting-rules.ts';
import { noQuery } from '../schemas.ts';

/** What finance.postingRules holds right now. */
export function postingRuleRoutes(ctx: PluginContext, rules: PostingRules): void {
  ctx.route(defineRoute({
    method: 'get', path: '/posting-rules', operationId: 'listPostingRules', permission: 'finance.entries.read',
    summary: 'Posting rules other plugins contribute (finance.postingRules), and whether finance listens to their events',
    description: 'Rules of enabled plugins only. Finance subscribes to <entity>.created and .updated when a rule is contributed, at start-up or when its plugin is enabled later.',
    schemas: {
      query: noQuery,
      responses: {
        200: {
          type: 'object', additionalProperties: false, required: ['data'],
          properties: {
            data: {
              type: 'array',
              items: {
                type: 'object', additionalProperties: false, required: ['name', 'entity', 'subscribed'],
                properties: {
                  name: { type: 'string', description: 'Unique; part of each posting\'s idempotency key' },
                  entity: { type: 'string', description: '<plugin>.<plural> whose events are watched' },
                  subscribed: { type: 'boolean', description: 'Finance listens to the entity\'s created and updated events' },
                },
              },
            },
          },
        },
      },
    },
    handler(_input, http) {
      http.body = { data: rules.active().map((r) => ({ name: r.name, entity: r.entity, subscribed: rules.isSubscribed(r) })) };
    },
  }));
}
