import type { Knex } from 'knex';
import semver from 'semver';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import { bumpGeneration, withMigrationLock } from '../db/core-migrations.ts';
import { KubikiError, isKubikiError } from '../errors.ts';
import { SYSTEM, type Principal } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import type { EntityRegistry } from '../entities/entity-registry.ts';
import type { WorkflowAction } from '../workflows/engine/workflow-actions.ts';
import type { VatRounding } from '../money/document-totals.ts';
import type { EntityRepository } from '../entities/entity-repository.ts';
import type { EventDispatcher } from '../events/event-dispatcher.ts';
import type { DocumentTotalsProvider } from '../templates/document-data.ts';
import type { ExtensionPoints } from './extension-points.ts';
import type { DiscoveredPlugin } from './plugin-manifest.ts';
import { importModule } from './module-loader.ts';
import { setupOrder } from './plugin-graph.ts';
import { PluginInstaller } from './plugin-installer.ts';
import { createPluginContext } from './plugin-context-factory.ts';
import type { FieldComputer, LegacyPluginRoute, PluginContext, PluginModule, PluginRoute, WriteGuard } from './plugin-context.ts';

export type PluginState = 'available' | 'installed' | 'enabled' | 'disabled';

export interface PluginStatus {
  name: string;
  title: string;
  description: string;
  version: string;
  installedVersion: string | null;
  state: PluginState;
  alwaysEnabled: boolean;
  dependsOn: string[];
  enhances: string[];
  entities: string[];
}

interface StoredState {
  version: string;
  state: Exclude<PluginState, 'available'>;
}

export interface PluginManagerDeps {
  db: Database;
  registry: EntityRegistry;
  logger: Logger;
  plugins: DiscoveredPlugin[];
  repository(qualifiedName: string): EntityRepository;
  dispatcher: EventDispatcher;
  extensionPoints: ExtensionPoints;
  env: NodeJS.ProcessEnv;
  documents: {
    provideTotals(plugin: string, entity: string, provide: DocumentTotalsProvider): void;
    render: PluginContext['renderDocument'];
  };
  notify: PluginContext['notify'];
  /** Registers a plugin's workflow action (`<plugin>.<name>`). */
  workflowAction(plugin: string, name: string, action: WorkflowAction): void;
  transition: PluginContext['transition'];
  userContact: PluginContext['userContact'];
  guardWrites(plugin: string, entity: string, guard: WriteGuard): void;
  computeFields(plugin: string, entity: string, compute: FieldComputer): void;
  vatRounding: VatRounding;
}

/**
 * The phased roll-out: available → installed → enabled ⇄ disabled, kept in kubiki_plugins.
 * Install and upgrade run the plugin's migrations in one transaction under a cluster-wide lock.
 */
export class PluginManager {
  private stored = new Map<string, StoredState>();
  private readonly byName: Map<string, DiscoveredPlugin>;
  private readonly setUp = new Set<string>();
  private readonly installer: PluginInstaller;
  private booting = false;
  /** Enhancers before the plugins they enhance (see plugin-graph.ts). */
  private readonly setupOrder: DiscoveredPlugin[];
  readonly routes = new Map<string, (PluginRoute | LegacyPluginRoute)[]>();

  constructor(private readonly deps: PluginManagerDeps) {
    this.byName = new Map(deps.plugins.map((p) => [p.manifest.name, p]));
    this.installer = new PluginInstaller(deps);
    this.setupOrder = setupOrder(deps.plugins);
    for (const p of deps.plugins) {
      for (const point of p.manifest.extensionPoints ?? []) deps.extensionPoints.declare({ owner: p.manifest.name, ...point });
    }
  }

  get ordered(): DiscoveredPlugin[] {
    return this.deps.plugins;
  }

  plugin(name: string): DiscoveredPlugin {
    const p = this.byName.get(name);
    if (!p) throw new KubikiError('unknown-plugin', `no plugin named "${name}"`, { issues: [{ field: 'name', rule: 'exists', message: `no plugin named "${name}"` }] });
    return p;
  }

  state(name: string): PluginState {
    return this.stored.get(name)?.state ?? 'available';
  }

  isEnabled = (name: string): boolean => this.stored.get(name)?.state === 'enabled';

  status(): PluginStatus[] {
    return this.deps.plugins.map((p) => ({
      name: p.manifest.name,
      title: p.manifest.title ?? p.manifest.name,
      description: p.manifest.description ?? '',
      version: p.manifest.version,
      installedVersion: this.stored.get(p.manifest.name)?.version ?? null,
      state: this.state(p.manifest.name),
      alwaysEnabled: p.manifest.alwaysEnabled === true,
      dependsOn: p.manifest.dependsOn ?? [],
      enhances: p.manifest.enhances ?? [],
      entities: p.entities.map((e) => e.qualifiedName),
    }));
  }

  /** Re-reads plugin states (another instance may have changed them). */
  async reload(): Promise<void> {
    await this.loadStates();
    await this.setupEnabled();
  }

  /** Sets up every enabled plugin not yet set up, enhancers before the plugins they enhance. */
  private async setupEnabled(): Promise<void> {
    for (const p of this.setupOrder) if (this.isEnabled(p.manifest.name)) await this.setup(p);
  }

  private async loadStates(): Promise<void> {
    const rows: { name: string; version: string; state: StoredState['state'] }[] = await this.deps.db.table('kubiki_plugins').select('name', 'version', 'state');
    this.stored = new Map(rows.map((r) => [r.name, { version: r.version, state: r.state }]));
  }

  /**
   * Start-up: upgrades installed plugins whose version grew, installs and enables always-on
   * plugins and those named in `enable`, then runs the code of every enabled plugin.
   */
  async boot(enable: string[]): Promise<void> {
    this.booting = true;
    try {
      await this.bootStates(enable);
    } finally {
      this.booting = false;
    }
    await this.reload();
  }

  private async bootStates(enable: string[]): Promise<void> {
    for (const name of enable) this.plugin(name);
    await this.loadStates();
    for (const name of enable) {
      // Always-enabled plugins (base) are enabled by this very boot, before the ones they serve.
      const missing = (this.plugin(name).manifest.dependsOn ?? []).filter((d) => !enable.includes(d) && !this.isEnabled(d) && this.plugin(d).manifest.alwaysEnabled !== true);
      if (missing.length) {
        throw new KubikiError('config-invalid', `KUBIKI_ENABLE_PLUGINS names ${name}, which depends on ${missing.join(', ')}: add ${missing.length > 1 ? 'them' : 'it'} to the list`);
      }
    }
    for (const p of this.deps.plugins) {
      const { name, version } = p.manifest;
      const stored = this.stored.get(name);
      if (stored && semver.lt(version, stored.version)) {
        throw new KubikiError('plugin-downgrade', `plugin ${name} ${version} is older than the installed ${stored.version}; restore the newer plugin or the database`);
      }
      if (stored && semver.gt(version, stored.version)) await this.installer.upgrade(p, stored.version);
      else if (stored) await this.installer.warnOnSchemaDrift(p);
    }
    for (const p of this.deps.plugins) {
      const wanted = p.manifest.alwaysEnabled || enable.includes(p.manifest.name);
      if (!wanted) continue;
      if (this.state(p.manifest.name) === 'available') await this.install(p.manifest.name, SYSTEM);
      // Only first-time enabling is automatic: a plugin an admin disabled stays disabled.
      if (this.state(p.manifest.name) === 'installed' || (p.manifest.alwaysEnabled && !this.isEnabled(p.manifest.name))) {
        await this.enable(p.manifest.name, SYSTEM);
      }
    }
  }

  async install(name: string, actor: Principal, requestId?: string): Promise<PluginStatus> {
    const p = this.plugin(name);
    await this.changeState(name, actor, requestId, 'installed', async (trx, current, stateOf) => {
      if (current !== 'available') throw this.conflict(name, `plugin ${name} is already installed (${current})`);
      const missing = (p.manifest.dependsOn ?? []).filter((d) => stateOf(d) === 'available');
      if (missing.length) throw this.conflict(name, `install ${missing.join(', ')} first: ${name} depends on ${missing.length > 1 ? 'them' : 'it'}`);
      try {
        await this.installer.install(p, trx);
      } catch (error) {
        if (isKubikiError(error) && error.status < 500) throw error;
        throw new KubikiError('migration-failed', `installing plugin ${name} failed, nothing was changed: ${(error as Error).message}`, { cause: error });
      }
      await this.deps.db.table('kubiki_plugins', trx).insert({ name, version: p.manifest.version, state: 'installed' });
    });
    return this.statusOf(name);
  }

  async enable(name: string, actor: Principal, requestId?: string): Promise<PluginStatus> {
    const p = this.plugin(name);
    await this.changeState(name, actor, requestId, 'enabled', async (trx, current, stateOf) => {
      if (current === 'available') throw this.conflict(name, `plugin ${name} is not installed; install it first`);
      if (current === 'enabled') return;
      const off = (p.manifest.dependsOn ?? []).filter((d) => stateOf(d) !== 'enabled');
      if (off.length) throw this.conflict(name, `enable ${off.join(', ')} first: ${name} depends on ${off.length > 1 ? 'them' : 'it'}`, { dependencies: off });
      await this.deps.db.table('kubiki_plugins', trx).where({ name }).update({ state: 'enabled', updated_at: trx.fn.now() });
    });
    // Set up in the one order (enhancers first): at boot once every plugin is enabled, later at once.
    if (!this.booting) await this.setupEnabled();
    return this.statusOf(name);
  }

  async disable(name: string, actor: Principal, requestId?: string): Promise<PluginStatus> {
    const p = this.plugin(name);
    await this.changeState(name, actor, requestId, 'disabled', async (trx, current, stateOf) => {
      if (p.manifest.alwaysEnabled) throw this.conflict(name, `plugin ${name} is always enabled`);
      if (current !== 'enabled') throw this.conflict(name, `plugin ${name} is not enabled (${current})`);
      const dependents = this.deps.plugins
        .filter((o) => (o.manifest.dependsOn ?? []).includes(name) && stateOf(o.manifest.name) === 'enabled')
        .map((o) => o.manifest.name);
      if (dependents.length) throw this.conflict(name, `disable ${dependents.join(', ')} first: ${dependents.length > 1 ? 'they depend' : 'it depends'} on ${name}`, { dependents });
      await this.deps.db.table('kubiki_plugins', trx).where({ name }).update({ state: 'disabled', updated_at: trx.fn.now() });
    });
    return this.statusOf(name);
  }

  private statusOf(name: string): PluginStatus {
    return this.status().find((s) => s.name === name)!;
  }

  /**
   * Runs a state change under the cluster-wide migration lock, with the states as they are under
   * that lock, so two admins (or instances) cannot interleave conflicting changes. Audited.
   */
  private async changeState(name: string, actor: Principal, requestId: string | undefined, target: PluginState,
    work: (trx: Knex.Transaction, current: PluginState, stateOf: (plugin: string) => PluginState) => Promise<void>): Promise<void> {
    const { db } = this.deps;
    await withMigrationLock(db, async (trx) => {
      const rows: { name: string; state: PluginState }[] = await db.table('kubiki_plugins', trx).select('name', 'state');
      const states = new Map(rows.map((r) => [r.name, r.state]));
      const stateOf = (plugin: string): PluginState => states.get(plugin) ?? 'available';
      const current = stateOf(name);
      await work(trx, current, stateOf);
      if (current === target) return;
      await writeAudit(db, trx, {
        actor, action: target, plugin: 'core', entity: 'plugins', recordId: name,
        changes: { state: { before: current, after: target } }, requestId,
      });
      await bumpGeneration(db, trx);
    });
    await this.reload();
  }

  private conflict(name: string, detail: string, extra: Record<string, unknown> = {}): KubikiError {
    return new KubikiError('lifecycle-conflict', detail, { extra: { plugin: name, ...extra } });
  }

  /** Runs a plugin's code once per process, the first time it is enabled. */
  private async setup(p: DiscoveredPlugin): Promise<void> {
    const name = p.manifest.name;
    if (this.setUp.has(name) || !p.main) return;
    this.setUp.add(name);
    const module = (await importModule<{ default?: PluginModule }>(p.main)).default;
    if (!module?.setup) return;
    await module.setup(createPluginContext(p, this.deps, this.routes, this.isEnabled));
  }
}
