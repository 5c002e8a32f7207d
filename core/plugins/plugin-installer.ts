import fs from 'node:fs';
import path from 'node:path';
import type { Knex } from 'knex';
import semver from 'semver';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';
import { bumpGeneration, withMigrationLock } from '../db/core-migrations.ts';
import { KubikiError, isKubikiError } from '../errors.ts';
import { SYSTEM } from '../auth/principal.ts';
import { writeAudit } from '../audit/audit-trail.ts';
import { checkGrantSyntax } from '../auth/permissions.ts';
import type { EntityRegistry } from '../entities/entity-registry.ts';
import type { EntityRepository } from '../entities/entity-repository.ts';
import { applyTableDiff, diffEntityTable, diffIsEmpty } from '../entities/entity-table.ts';
import type { MigrationModule } from './plugin-context.ts';
import type { DiscoveredPlugin } from './plugin-manifest.ts';
import { importModule } from './module-loader.ts';

export interface InstallerDeps {
  db: Database;
  registry: EntityRegistry;
  logger: Logger;
  repository(qualifiedName: string): EntityRepository;
}

/** What installing and upgrading a plugin does to the database: tables, migrations, seeds, roles. */
export class PluginInstaller {
  constructor(private readonly deps: InstallerDeps) {}

  /** Everything an install writes, in the caller's transaction (one transaction: all or nothing). */
  async install(p: DiscoveredPlugin, trx: Knex.Transaction): Promise<void> {
    await this.syncTables(p, trx);
    await this.runMigrations(p, trx);
    await this.runSeeds(p, trx);
    await this.createRoles(p, trx);
  }

  async upgrade(p: DiscoveredPlugin, from: string): Promise<void> {
    const { name, version } = p.manifest;
    this.deps.logger.info({ plugin: name, from, to: version }, 'upgrading plugin');
    await withMigrationLock(this.deps.db, async (trx) => {
      const row = await this.deps.db.table('kubiki_plugins', trx).where({ name }).first('version');
      if (row && !semver.gt(version, row.version)) return; // another instance upgraded it meanwhile
      try {
        await this.syncTables(p, trx);
        await this.runMigrations(p, trx);
      } catch (error) {
        if (isKubikiError(error)) throw error;
        throw new KubikiError('migration-failed', `upgrading plugin ${name} from ${from} to ${version} failed, nothing was changed: ${(error as Error).message}`, { cause: error });
      }
      await this.deps.db.table('kubiki_plugins', trx).where({ name }).update({ version, updated_at: trx.fn.now() });
      await writeAudit(this.deps.db, trx, {
        actor: SYSTEM, action: 'upgraded', plugin: 'core', entity: 'plugins', recordId: name, changes: { version: { before: from, after: version } },
      });
      await bumpGeneration(this.deps.db, trx);
    });
  }

  async warnOnSchemaDrift(p: DiscoveredPlugin): Promise<void> {
    for (const entity of p.entities) {
      const diff = await diffEntityTable(this.deps.db.knex, this.deps.db, entity);
      if (!diffIsEmpty(diff)) {
        this.deps.logger.warn({ plugin: p.manifest.name, entity: entity.qualifiedName, addColumns: diff.addColumns.map((f) => f.name) },
          'entity schema differs from its table; raise the plugin version to migrate it');
      }
    }
  }

  /** Creates missing tables, columns and indexes of the plugin's entities; never drops anything. */
  async syncTables(p: DiscoveredPlugin, trx: Knex.Transaction): Promise<void> {
    for (const entity of p.entities) await applyTableDiff(trx, this.deps.db, this.deps.registry, await diffEntityTable(trx, this.deps.db, entity));
  }

  async runMigrations(p: DiscoveredPlugin, trx: Knex.Transaction): Promise<void> {
    const { db } = this.deps;
    const name = p.manifest.name;
    const done = new Set<string>(await db.table('kubiki_plugin_migrations', trx).where({ plugin: name }).pluck('name'));
    for (const file of p.migrations) {
      if (done.has(file)) continue;
      const module = await importModule<MigrationModule>(path.join(p.dir, 'migrations', file));
      if (typeof module.up !== 'function') throw new KubikiError('migration-failed', `plugin ${name}: migration ${file} exports no up()`);
      await module.up({ trx, schema: db.schema, table: (t) => db.table(t, trx), schemaBuilder: () => trx.schema.withSchema(db.schema) });
      await db.table('kubiki_plugin_migrations', trx).insert({ plugin: name, name: file });
    }
  }

  async runSeeds(p: DiscoveredPlugin, trx: Knex.Transaction): Promise<void> {
    for (const file of p.manifest.seeds ?? []) {
      const full = path.join(p.dir, file);
      const seed = JSON.parse(fs.readFileSync(full, 'utf8')) as { entity?: string; records?: unknown[] };
      if (typeof seed.entity !== 'string' || !Array.isArray(seed.records)) {
        throw new KubikiError('invalid-manifest', `plugin ${p.manifest.name}: seed ${file} must be {"entity": "<plural>", "records": [...]}`);
      }
      const repo = this.deps.repository(`${p.manifest.name}.${seed.entity}`);
      for (const [i, record] of seed.records.entries()) {
        try {
          await repo.create(record, { actor: SYSTEM, trx });
        } catch (error) {
          // A seed the plugin ships is the plugin's bug, not the installing admin's bad request (no 4xx).
          const why = isKubikiError(error) && error.issues.length ? error.issues.map((e) => `${e.field}: ${e.message}`).join('; ') : (error as Error).message;
          throw new KubikiError('migration-failed', `plugin ${p.manifest.name}: seed ${file}, record ${i + 1}: ${why}`, { cause: error });
        }
      }
    }
  }

  /** The plugin's roles, unless a role of that name exists (the admin may have shaped it). */
  async createRoles(p: DiscoveredPlugin, trx: Knex.Transaction): Promise<void> {
    for (const role of p.manifest.roles ?? []) {
      role.permissions.forEach((g, i) => checkGrantSyntax(g, `roles/${role.name}/permissions/${i}`));
      const inserted = await this.deps.db.table('kubiki_roles', trx)
        .insert({ name: role.name, description: role.description ?? '', permissions: JSON.stringify(role.permissions) })
        .onConflict('name').ignore().returning('name');
      if (inserted.length) {
        await writeAudit(this.deps.db, trx, { actor: SYSTEM, action: 'created', plugin: 'core', entity: 'roles', recordId: role.name, changes: { permissions: { before: null, after: role.permissions }, by: { before: null, after: `plugin ${p.manifest.name}` } } });
      }
    }
  }
}
