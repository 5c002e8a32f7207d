import fs from 'node:fs';
import path from 'node:path';
import { lazyValidator } from '../entities/ajv.ts';
import { KubikiError } from '../errors.ts';
import { defineEntity, type EntityDefinition, type JsonSchema } from '../entities/entity-definition.ts';
import { resolveShared, type SharedDefinitions } from '../entities/shared-definitions.ts';
import manifestSchema from './manifest.schema.json' with { type: 'json' };

export interface PluginManifest {
  name: string;
  version: string;
  title?: string;
  description?: string;
  core: string;
  alwaysEnabled?: boolean;
  dependsOn?: string[];
  enhances?: string[];
  entities?: string[];
  permissions?: { name: string; description?: string }[];
  /** Roles created at install when missing (the admin owns them afterwards). */
  roles?: { name: string; description?: string; permissions: string[] }[];
  extensionPoints?: { name: string; description?: string; schema?: Record<string, unknown> }[];
  errors?: { code: string; status: number; title: string; description?: string }[];
  /** Shared schema parts (`definitions/<name>.schema.json`), reused as `x-shared: <plugin>.<name>`. */
  definitions?: string[];
  seeds?: string[];
  main?: string;
}

/** A plugin found on disk, its manifest checked and its entity schemas read. */
export interface DiscoveredPlugin {
  manifest: PluginManifest;
  dir: string;
  entities: EntityDefinition[];
  /** Hand-written migrations (`migrations/*.ts`), sorted by file name. */
  migrations: string[];
  /** Absolute path of the code module, if the plugin has one. */
  main?: string;
}

/** Names that would shadow core routes under /api/. */
export const RESERVED_PLUGIN_NAMES = new Set(['core', 'auth', 'users', 'roles', 'audit', 'plugins', 'health', 'openapi', 'meta', 'events', 'workflows', 'templates', 'documents', 'settings', 'tasks', 'api', 'notifications']);

const manifestValidator = lazyValidator<PluginManifest>(manifestSchema);

function readJson(file: string, code: 'invalid-manifest' | 'invalid-entity-schema'): unknown {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (error) {
    throw new KubikiError(code, `${file}: ${(error as Error).message}`);
  }
}

/** The shared schema parts a plugin ships, by qualified name (`base.document-lines`). */
function readDefinitions(dir: string, manifest: PluginManifest): SharedDefinitions {
  const out: SharedDefinitions = new Map();
  for (const name of manifest.definitions ?? []) {
    const file = path.join(dir, 'definitions', `${name}.schema.json`);
    if (!fs.existsSync(file)) throw new KubikiError('invalid-manifest', `plugin ${manifest.name}: definition "${name}" is listed but ${file} does not exist`);
    out.set(`${manifest.name}.${name}`, { owner: manifest.name, schema: readJson(file, 'invalid-entity-schema') as JsonSchema });
  }
  return out;
}

/**
 * A plugin on disk. `shared` holds the definitions of the other plugins found with it: an entity may
 * reuse those of the plugins it depends on (and its own).
 */
export function loadPlugin(dir: string, shared: SharedDefinitions = new Map()): DiscoveredPlugin {
  const file = path.join(dir, 'plugin.json');
  const raw = readJson(file, 'invalid-manifest');
  const validateManifest = manifestValidator();
  if (!validateManifest(raw)) {
    // Name the offending key of an additionalProperties error: "dependOn", not just "additional properties".
    const why = (validateManifest.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message}${
      e.keyword === 'additionalProperties' ? ` ("${(e.params as { additionalProperty: string }).additionalProperty}")` : ''}`).join('; ');
    throw new KubikiError('invalid-manifest', `plugin at ${dir}: plugin.json is invalid: ${why}`);
  }
  const manifest = raw;
  if (RESERVED_PLUGIN_NAMES.has(manifest.name)) {
    throw new KubikiError('invalid-manifest', `plugin at ${dir}: the name "${manifest.name}" is reserved for the core API`);
  }
  if (path.basename(dir) !== manifest.name) {
    throw new KubikiError('invalid-manifest', `plugin at ${dir}: its folder must be named after the plugin ("${manifest.name}")`);
  }
  const own = readDefinitions(dir, manifest);
  const reachable = new Set([manifest.name, ...(manifest.dependsOn ?? [])]);
  const usable: SharedDefinitions = new Map([...shared, ...own].filter(([, d]) => reachable.has(d.owner)));
  const entities = (manifest.entities ?? []).map((name) => {
    const schemaFile = path.join(dir, 'entities', `${name}.schema.json`);
    if (!fs.existsSync(schemaFile)) throw new KubikiError('invalid-entity-schema', `plugin ${manifest.name}: entity "${name}" is listed but ${schemaFile} does not exist`);
    const where = `plugin ${manifest.name}, ${path.relative(dir, schemaFile)}`;
    return defineEntity(manifest.name, name, resolveShared(readJson(schemaFile, 'invalid-entity-schema'), usable, where), where);
  });
  const migrationsDir = path.join(dir, 'migrations');
  const migrations = fs.existsSync(migrationsDir)
    ? fs.readdirSync(migrationsDir).filter((f) => /\.(ts|js)$/.test(f) && !f.endsWith('.d.ts')).sort()
    : [];
  const mainFile = manifest.main ? path.join(dir, manifest.main) : path.join(dir, 'index.ts');
  if (manifest.main && !fs.existsSync(mainFile)) throw new KubikiError('invalid-manifest', `plugin ${manifest.name}: main module ${manifest.main} does not exist`);
  return { manifest, dir, entities, migrations, main: fs.existsSync(mainFile) ? mainFile : undefined };
}

/** Every plugin in the given folders (one sub-folder with a plugin.json each). */
export function discoverPlugins(dirs: string[]): DiscoveredPlugin[] {
  const found = new Map<string, DiscoveredPlugin>();
  const pluginDirs: string[] = [];
  for (const root of dirs) {
    if (!fs.existsSync(root)) throw new KubikiError('config-invalid', `plugin folder ${root} does not exist`);
    for (const entry of fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (entry.isDirectory() && fs.existsSync(path.join(root, entry.name, 'plugin.json'))) pluginDirs.push(path.join(root, entry.name));
    }
  }
  // Shared definitions first: an entity may reuse those of a plugin found after it.
  const shared: SharedDefinitions = new Map();
  for (const dir of pluginDirs) {
    const manifest = readJson(path.join(dir, 'plugin.json'), 'invalid-manifest') as Partial<PluginManifest>;
    if (typeof manifest.name === 'string' && Array.isArray(manifest.definitions)) for (const [name, d] of readDefinitions(dir, manifest as PluginManifest)) shared.set(name, d);
  }
  for (const dir of pluginDirs) {
    const plugin = loadPlugin(dir, shared);
    const twin = found.get(plugin.manifest.name);
    if (twin) throw new KubikiError('invalid-manifest', `plugin ${plugin.manifest.name} is found twice: ${twin.dir} and ${plugin.dir}`);
    found.set(plugin.manifest.name, plugin);
  }
  return [...found.values()];
}
