import { documentTotals } from '../money/document-totals.ts';
import { journalRows } from '../audit/journal-rows.ts';
import { KubikiError } from '../errors.ts';
import type { LegacyPluginRoute, PluginContext, PluginRoute } from './plugin-context.ts';
import type { PluginManagerDeps } from './plugin-manager.ts';
import type { DiscoveredPlugin } from './plugin-manifest.ts';

/**
 * The typed context a plugin's code gets: everything it may touch, scoped to the plugin (its own
 * tables, its own entities' guards and computed fields, its settings), nothing global.
 */
export function createPluginContext(p: DiscoveredPlugin, deps: PluginManagerDeps, routes: Map<string, (PluginRoute | LegacyPluginRoute)[]>, isEnabled: (plugin: string) => boolean): PluginContext {
  const name = p.manifest.name;
  const { db, dispatcher, extensionPoints, repository } = deps;
  const prefix = `KUBIKI_${name.toUpperCase()}_`;
  const config = Object.fromEntries(
    Object.entries(deps.env).filter(([k, v]) => k.startsWith(prefix) && v !== undefined).map(([k, v]) => [k.slice(prefix.length).toLowerCase(), v as string]),
  );
  const own = new Set(p.entities.map((e) => e.table));
  return {
    name,
    manifest: p.manifest,
    logger: deps.logger.child({ plugin: name }),
    config,
    repository,
    transaction: (work) => db.knex.transaction(work),
    table: (table, trx) => {
      if (!own.has(table) && !table.startsWith(`${name}_`)) throw new KubikiError('forbidden', `plugin ${name} may query only its own tables (${name}_…), not ${table}`);
      return db.table(table, trx);
    },
    journalRows: (table, entity) => {
      if (!table.startsWith(`${name}_`)) throw new KubikiError('forbidden', `plugin ${name} may journal only its own tables (${name}_…), not ${table}`);
      return journalRows(db, name, table, entity);
    },
    on: (pattern, handler) => dispatcher.subscribe(name, pattern, handler),
    contribute: (point, value) => extensionPoints.contribute(name, point, value),
    onContribution: (point, watcher) => extensionPoints.watch(`${name}.${point}`, (value, contributor) => watcher(value as never, contributor)),
    contributions: (point) => extensionPoints.list(point.includes('.') ? point : `${name}.${point}`),
    route: (route: PluginRoute | LegacyPluginRoute) => {
      const list = routes.get(name) ?? [];
      list.push(route);
      routes.set(name, list);
    },
    isEnabled,
    documentTotals: (entity, provide) => {
      if (!entity.startsWith(`${name}.`)) throw new KubikiError('forbidden', `plugin ${name} may provide document totals only for its own entities, not ${entity}`);
      deps.documents.provideTotals(name, entity, provide);
    },
    renderDocument: (templateId, recordId, options) => deps.documents.render(templateId, recordId, options),
    notify: (message, actor) => deps.notify(message, actor),
    workflowAction: (actionName, action) => deps.workflowAction(name, actionName, action),
    transition: (entity, id, transitionName, options) => deps.transition(entity, id, transitionName, options),
    userContact: (id) => deps.userContact(id),
    guardWrites: (entity, guard) => {
      if (!entity.startsWith(`${name}.`)) throw new KubikiError('forbidden', `plugin ${name} may guard only its own entities, not ${entity}`);
      deps.guardWrites(name, entity, guard);
    },
    computeFields: (entity, compute) => {
      if (!entity.startsWith(`${name}.`)) throw new KubikiError('forbidden', `plugin ${name} may compute fields only of its own entities, not ${entity}`);
      deps.computeFields(name, entity, compute);
    },
    error: (code, detail, options = {}) => {
      const declared = p.manifest.errors?.find((e) => e.code === code);
      if (!declared) throw new Error(`plugin ${name} raised error code ${code}, which its plugin.json does not declare under "errors"`);
      return new KubikiError({ code: `${name}.${code}`, status: declared.status, title: declared.title }, detail, options);
    },
    money: {
      vatRounding: deps.vatRounding,
      totals: (lines, options = {}) => documentTotals(lines, { ...options, vatRounding: deps.vatRounding }),
    },
  };
}
