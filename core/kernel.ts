import fs from 'node:fs';
import path from 'node:path';
import type { Server } from 'node:http';
import type Koa from 'koa';
import type { Knex } from 'knex';
import { repoRoot, type KubikiConfig } from './config.ts';
import { createLogger, type Logger } from './logger.ts';
import { openDatabase, type Database } from './db/database.ts';
import { readGeneration, runCoreMigrations } from './db/core-migrations.ts';
import { KubikiError, type DeclaredError } from './errors.ts';
import { SYSTEM } from './auth/principal.ts';
import { AuthService } from './auth/auth-service.ts';
import { createAjv } from './entities/ajv.ts';
import { EntityRegistry } from './entities/entity-registry.ts';
import { EntityRepository } from './entities/entity-repository.ts';
import { CustomFields } from './entities/custom-fields.ts';
import { EventDispatcher } from './events/event-dispatcher.ts';
import { listenForEvents } from './events/event-listener.ts';
import { ExtensionPoints } from './plugins/extension-points.ts';
import { discoverPlugins, type DiscoveredPlugin } from './plugins/plugin-manifest.ts';
import { sortPlugins } from './plugins/plugin-graph.ts';
import { PluginManager } from './plugins/plugin-manager.ts';
import { buildOpenApi } from './api/openapi.ts';
import { TemplateEngine } from './templates/template-engine.ts';
import { discoverTemplates, type ShippedTemplate } from './templates/template-catalog.ts';
import { TemplateStore } from './templates/template-store.ts';
import { CompanyProfiles } from './templates/company-profile.ts';
import { DocumentService } from './templates/document-service.ts';
import type { DocumentTotalsProvider } from './templates/document-data.ts';
import { PdfRenderer } from './templates/pdf-renderer.ts';
import { WorkflowStore, type ShippedWorkflow } from './workflows/workflow-store.ts';
import { discoverWorkflows } from './workflows/workflow-catalog.ts';
import { NotificationService } from './notifications/notification-service.ts';
import { smtpTransport, type EmailTransport } from './notifications/email-transport.ts';
import { WorkflowRuntime } from './workflows/engine/workflow-runtime.ts';
import type { Clock } from './workflows/engine/clock.ts';
import type { FieldComputer, WriteGuard } from './plugins/plugin-context.ts';
import { coreRoutes, createApp, type RouteEntry } from './http/app.ts';
import { mountedPluginRoutes } from './http/plugin-routes.ts';
import { WebhookService } from './webhooks/webhook-service.ts';
import { ExternalIds } from './integration/external-ids.ts';
import { externalIdRoutesPerEntity } from './integration/external-id-routes.ts';
import { runIntegrationMigrations } from './integration/integration-migrations.ts';
import { TokenRateLimiter } from './integration/rate-limit.ts';
import { LoginThrottle } from './integration/login-throttle.ts';
import { ImportService } from './import/import-service.ts';
import { runImportMigrations } from './import/import-tables.ts';
import type { MountedRoute } from './http/route-contract.ts';

export const coreVersion: string = (JSON.parse(fs.readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string }).version;

/** Every entity of every plugin, its validator compiled now: a schema ajv refuses stops the start. */
function entityRegistry(plugins: DiscoveredPlugin[]): EntityRegistry {
  const registry = new EntityRegistry(createAjv());
  for (const p of plugins) {
    for (const e of p.entities) {
      registry.add(e);
      try {
        registry.validator(e);
      } catch (error) {
        throw new KubikiError('invalid-entity-schema', `plugin ${p.manifest.name}, entity ${e.name}: ${(error as Error).message}`);
      }
    }
  }
  return registry;
}

export interface KubikiOptions {
  config: KubikiConfig;
  /** Share an open knex handle (tests); Kubiki will not close it. */
  knex?: Knex;
  logger?: Logger;
  env?: NodeJS.ProcessEnv;
  /** Skip the background outbox delivery and refresh timers (tests drive them by hand). */
  background?: boolean;
  /** The workflow engine's clock (tests move a manual one); the real one by default. */
  clock?: Clock;
}

/**
 * One Kubiki instance: database, plugins, entities, auth and the HTTP app. Stateless apart from
 * caches, so several instances may share a database; they learn of each other's plugin and
 * custom-field changes through a generation counter they poll.
 */
export class Kubiki {
  readonly coreVersion = coreVersion;
  readonly plugins: PluginManager;
  readonly auth: AuthService;
  readonly customFields: CustomFields;
  readonly dispatcher: EventDispatcher;
  readonly templates: TemplateStore;
  readonly company: CompanyProfiles;
  readonly documents: DocumentService;
  readonly pdf: PdfRenderer;
  readonly workflows: WorkflowStore;
  /** Email and SMS with an outbox (`held` when a channel has no transport) and idempotency keys. */
  readonly notifications: NotificationService;
  /** Durable execution, triggers, lifecycles, approvals and instances of published workflows. */
  readonly workflowRuntime: WorkflowRuntime;
  /** Outgoing webhooks: subscriptions, signed deliveries from the outbox, the delivery log. */
  readonly webhooks: WebhookService;
  /** Records' ids in other systems and the by-external upsert. */
  readonly externalIds: ExternalIds;
  /** Requests per token (KUBIKI_RATE_LIMIT). */
  readonly rateLimiter: TokenRateLimiter;
  /** Failed logins per user and address (KUBIKI_LOGIN_*). */
  readonly loginThrottle: LoginThrottle;
  /** Data import (CSV/XLSX → entities and plugin import targets) and export: jobs, mappings, checkpoints. */
  readonly imports: ImportService;
  /** Computed values plugins add to documents, by entity (`ctx.documentTotals`). */
  readonly documentTotals = new Map<string, { plugin: string; provide: DocumentTotalsProvider }[]>();
  readonly app: Koa;
  /** The core's declared routes (OpenAPI and the router both read them). */
  readonly coreRoutes: MountedRoute[];
  /** Every plugin's extension points and the contributions made to them. */
  readonly extensionPoints: ExtensionPoints;
  /** Every method and path the routers answer now (the route-contract test compares it with OpenAPI). */
  readonly routeInventory: () => RouteEntry[];
  /** Set on the first start of an empty database when no KUBIKI_ADMIN_TOKEN was given. */
  generatedAdminToken?: string;
  private readonly repositories = new Map<string, EntityRepository>();
  /** Plugins' guards on their entities' writes (`ctx.guardWrites`), checked while the plugin is enabled. */
  private readonly writeGuards = new Map<string, { plugin: string; guard: WriteGuard }[]>();
  /** Plugins' computed fields (`ctx.computeFields`), one per entity, applied while the plugin is enabled. */
  private readonly fieldComputers = new Map<string, { plugin: string; compute: FieldComputer }>();
  private generation = 0;
  private refreshTimer?: NodeJS.Timeout;
  private server?: Server;
  private readonly emailTransport?: EmailTransport;
  private eventListener?: { close(): Promise<void> };

  private constructor(readonly config: KubikiConfig, readonly db: Database, readonly logger: Logger, plugins: DiscoveredPlugin[], env: NodeJS.ProcessEnv,
    readonly registry: EntityRegistry,
    private readonly shippedTemplates: ShippedTemplate[], partials: Record<string, string>, printCss: string,
    private readonly shippedWorkflows: ShippedWorkflow[], clock?: Clock) {
    const isEnabled = (name: string) => this.plugins.isEnabled(name);
    this.extensionPoints = new ExtensionPoints(isEnabled, (name) => {
      const manifest = plugins.find((p) => p.manifest.name === name)?.manifest;
      // Every plugin may contribute to the core's own points (core.importTargets).
      return ['core', ...(manifest?.dependsOn ?? []), ...(manifest?.enhances ?? [])];
    });
    this.dispatcher = new EventDispatcher(db, logger.child({ component: 'events' }), isEnabled, config.eventPollMs);
    this.plugins = new PluginManager({
      db, registry: this.registry, logger, plugins, env,
      repository: (q) => this.repository(q),
      dispatcher: this.dispatcher,
      extensionPoints: this.extensionPoints,
      documents: {
        provideTotals: (plugin, entity, provide) => this.documentTotals.set(entity, [...(this.documentTotals.get(entity) ?? []), { plugin, provide }]),
        render: (templateId, recordId, options) => this.documents.renderRecord(templateId, recordId, options.format ?? 'html', options.actor),
      },
      notify: async (message, actor) => (await this.notifications.send(message, actor)).notification,
      workflowAction: (plugin, name, action) => this.workflowRuntime.actions.register(plugin, name, action),
      transition: (entity, id, name, options) => this.workflowRuntime.lifecycles.take(entity, id, name, options),
      userContact: (id) => this.auth.contact(id),
      guardWrites: (plugin, entity, guard) => this.writeGuards.set(entity, [...(this.writeGuards.get(entity) ?? []), { plugin, guard }]),
      computeFields: (plugin, entity, compute) => this.fieldComputers.set(entity, { plugin, compute }),
      vatRounding: config.vatRounding,
    });
    this.auth = new AuthService(db, config.sessionTtlSeconds);
    this.customFields = new CustomFields(db, this.registry);
    this.imports = new ImportService({
      db, registry: this.registry, auth: this.auth, logger: logger.child({ component: 'imports' }), extensionPoints: this.extensionPoints, env,
      isEnabled, entityRepository: (plugin, plural) => this.httpRepository(plugin, plural), kick: () => this.dispatcher.kick(),
    });
    const engine = new TemplateEngine(partials);
    this.templates = new TemplateStore(db, engine);
    this.company = new CompanyProfiles(db);
    this.pdf = new PdfRenderer({ logger, executablePath: config.chromiumPath });
    this.documents = new DocumentService({
      db, engine, store: this.templates, pdf: this.pdf, printCss,
      repository: (entity) => {
        const [plugin, plural] = entity.split('.');
        return this.httpRepository(plugin, plural);
      },
      company: () => this.company.get(),
      totals: (entity) => (this.documentTotals.get(entity) ?? []).filter((t) => this.plugins.isEnabled(t.plugin)).map((t) => t.provide),
      vatRounding: config.vatRounding,
    });
    this.emailTransport = config.smtpUrl ? smtpTransport(config.smtpUrl, config.smtpFrom) : undefined;
    this.notifications = new NotificationService({
      db, logger: logger.child({ component: 'notifications' }), email: this.emailTransport,
      readDocument: (id, actor) => this.documents.get(id, actor),
    });
    this.workflowRuntime = new WorkflowRuntime({
      db, logger, config, env, registry: this.registry, repository: (q) => this.repository(q), dispatcher: this.dispatcher,
      notifications: this.notifications, documents: this.documents, isEnabled, clock,
    });
    this.webhooks = new WebhookService(db, logger.child({ component: 'webhooks' }), config, this.dispatcher);
    this.externalIds = new ExternalIds(db, (plugin, plural) => this.httpRepository(plugin, plural), () => this.dispatcher.kick());
    this.rateLimiter = new TokenRateLimiter(config.rateLimit);
    this.loginThrottle = new LoginThrottle(db, config);
    // Due-ness the workflow engine's way: the database's time (or the test's manual clock).
    this.webhooks.clock = this.workflowRuntime.clock;
    this.loginThrottle.clock = this.workflowRuntime.clock;
    this.workflows = new WorkflowStore(db, async () => ({
      hasEntity: (q) => this.registry.has(q),
      entityFields: (q) => (this.registry.has(q) ? this.registry.get(q).fields : undefined),
      // Roles that will exist: those in the database, admin (made at the first start, after the
      // shipped workflows are checked) and the ones plugins offer (made when they are installed).
      roles: new Set([...(await this.auth.listRoles()).map((r) => r.name), 'admin', ...plugins.flatMap((p) => (p.manifest.roles ?? []).map((r) => r.name))]),
      templates: new Set((await this.templates.list()).map((t) => t.id)),
      workflows: new Set((await this.workflows.list()).map((w) => w.id)),
      actions: this.workflowRuntime.actions.names(),
      plugins: new Set(plugins.map((p) => p.manifest.name)),
      enabledPlugins: new Set(plugins.map((p) => p.manifest.name).filter((name) => this.plugins.isEnabled(name))),
    }), () => this.workflowRuntime.reload());
    this.coreRoutes = coreRoutes(this);
    const http = createApp(this);
    this.app = http.app;
    this.routeInventory = http.routes;
  }

  static async create(options: KubikiOptions): Promise<Kubiki> {
    const { config } = options;
    const logger = options.logger ?? createLogger(config.logLevel);
    // Plugin problems (bad manifest, cycle, missing dependency) fail before touching the database.
    const plugins = sortPlugins(discoverPlugins(config.pluginDirs), coreVersion);
    const registry = entityRegistry(plugins);
    const { templates, partials } = discoverTemplates(config.templateDirs);
    const workflows = discoverWorkflows(config.workflowDirs, plugins.map((p) => ({ name: p.manifest.name, dir: p.dir })));
    const printCss = config.templateDirs.map((d) => path.join(d, 'print.css')).filter((f) => fs.existsSync(f)).map((f) => fs.readFileSync(f, 'utf8')).join('\n');
    const db = await openDatabase({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, dbSchema: config.dbSchema, knex: options.knex });
    try {
      await runCoreMigrations(db);
      await runIntegrationMigrations(db);
      await runImportMigrations(db);
      const k = new Kubiki(config, db, logger, plugins, options.env ?? process.env, registry, templates, partials, printCss, workflows, options.clock);
      await k.plugins.boot(config.enablePlugins);
      await k.templates.syncDefaults(k.shippedTemplates);
      await k.workflows.syncDefaults(k.shippedWorkflows);
      await k.workflowRuntime.reload();
      await k.webhooks.reload();
      await k.customFields.load();
      k.generation = await readGeneration(db);
      k.generatedAdminToken = await k.auth.bootstrapAdmin(SYSTEM, config.adminToken);
      if (options.background !== false) {
        if (config.workers) {
          k.dispatcher.start();
          k.workflowRuntime.start();
          k.webhooks.start();
          k.imports.start();
          k.eventListener = await listenForEvents(db, logger, () => k.dispatcher.kick());
        }
        k.refreshTimer = setInterval(() => void k.refresh().catch((error) => logger.error({ err: error }, 'refresh failed')), config.refreshIntervalMs);
        k.refreshTimer.unref();
      }
      return k;
    } catch (error) {
      await db.close();
      throw error;
    }
  }

  /** Picks up plugin state and custom field changes made by other instances. */
  async refresh(): Promise<void> {
    await this.workflowRuntime.reload();
    await this.webhooks.reload();
    const generation = await readGeneration(this.db);
    if (generation === this.generation) return;
    this.generation = generation;
    this.db.epoch++;
    await this.plugins.reload();
    await this.customFields.load();
  }

  /** The repository of an entity by `plugin.plural`, whatever its plugin's state (plugin code, seeds). */
  repository(qualifiedName: string): EntityRepository {
    let repo = this.repositories.get(qualifiedName);
    if (!repo) {
      repo = new EntityRepository(this.registry.get(qualifiedName), this.db, this.registry, (q) => this.repository(q), {
        afterCommit: () => this.dispatcher.kick(),
        isHeard: (eventType) => this.dispatcher.isHeard(eventType),
        guardWrite: (entity, action, fields, options, current) => {
          this.workflowRuntime.lifecycles.guardWrite(entity, action, fields, options, current);
          for (const { plugin, guard } of this.writeGuards.get(entity.qualifiedName) ?? []) {
            if (this.plugins.isEnabled(plugin)) guard({ action, fields, current, actor: options.actor, trusted: options.viaTransition === true });
          }
        },
        computeFields: async (entity, write) => {
          const computer = this.fieldComputers.get(entity.qualifiedName);
          return computer && this.plugins.isEnabled(computer.plugin) ? computer.compute(write) : undefined;
        },
      });
      this.repositories.set(qualifiedName, repo);
    }
    return repo;
  }

  /** The repository behind /api/{plugin}/{entity}: 404 unless the plugin exists, is enabled and has it. */
  httpRepository(plugin: string, plural: string): EntityRepository {
    this.plugins.plugin(plugin);
    if (!this.plugins.isEnabled(plugin)) {
      throw new KubikiError('plugin-disabled', `plugin ${plugin} is ${this.plugins.state(plugin)}; enable it to use /api/${plugin}`);
    }
    const qualified = `${plugin}.${plural}`;
    if (!this.registry.has(qualified)) {
      throw new KubikiError('unknown-entity', `plugin ${plugin} has no entity "${plural}"`, { issues: [{ field: 'entity', rule: 'exists', message: `no entity ${qualified}` }] });
    }
    return this.repository(qualified);
  }

  openApi(): Record<string, unknown> {
    const enabled = this.plugins.status().filter((p) => p.state === 'enabled').map((p) => p.name);
    const enabledEntities = this.registry.all().filter((e) => this.plugins.isEnabled(e.plugin));
    const routes = [...this.coreRoutes, ...externalIdRoutesPerEntity(this.externalIds, enabledEntities), ...enabled.flatMap((plugin) => mountedPluginRoutes(plugin, this.plugins.routes.get(plugin) ?? []))];
    const errors = this.plugins.ordered.filter((p) => this.plugins.isEnabled(p.manifest.name))
      .flatMap((p) => (p.manifest.errors ?? []).map((e): DeclaredError => ({ ...e, code: `${p.manifest.name}.${e.code}` })));
    return buildOpenApi(coreVersion, this.registry.all().filter((e) => this.plugins.isEnabled(e.plugin)), routes, errors, (q) => this.workflowRuntime.published.lifecycleOf(q) !== undefined);
  }

  listen(port = this.config.port, host = this.config.host): Promise<Server> {
    return new Promise((resolve, reject) => {
      const server = this.app.listen(port, host, () => resolve(server));
      server.once('error', reject);
      server.keepAliveTimeout = 65_000;
      this.server = server;
    });
  }

  async close(): Promise<void> {
    clearInterval(this.refreshTimer);
    if (this.server) {
      const server = this.server;
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeIdleConnections(); });
    }
    await this.imports.stop();
    await this.eventListener?.close();
    await this.workflowRuntime.stop();
    await this.webhooks.stop();
    await this.dispatcher.stop();
    await this.pdf.close();
    this.emailTransport?.close();
    await this.db.close();
  }
}
