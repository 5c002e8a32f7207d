#!/usr/bin/env node
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { Command } from 'commander';
import { configFromEnv, type KubikiConfig } from '../config.ts';
import { KubikiError, isKubikiError } from '../errors.ts';
import { Kubiki, coreVersion } from '../kernel.ts';
import { SYSTEM } from '../auth/principal.ts';
import { createLogger } from '../logger.ts';
import { importCommands } from '../import/import-cli.ts';

/** Opens Kubiki for a one-shot command: no HTTP server, no background work. */
async function withKubiki<T>(work: (k: Kubiki) => Promise<T>, overrides: Partial<KubikiConfig> = {}): Promise<T> {
  const config = configFromEnv(process.env, overrides);
  const k = await Kubiki.create({ config, background: false, logger: createLogger(process.env.LOG_LEVEL || 'warn') });
  try {
    if (k.generatedAdminToken) printAdminToken(k.generatedAdminToken);
    return await work(k);
  } finally {
    await k.close();
  }
}

function printAdminToken(token: string): void {
  process.stdout.write(`\nFirst start: created user "admin". Its API token (shown only this once):\n\n  ${token}\n\nUse it as: Authorization: Bearer ${token}\n\n`);
}

function table(rows: Record<string, unknown>[]): string {
  if (rows.length === 0) return '(none)\n';
  const keys = Object.keys(rows[0]);
  const width = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k] ?? '').length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(width[i])).join('  ').trimEnd();
  return [line(keys), line(width.map((w) => '-'.repeat(w))), ...rows.map((r) => line(keys.map((k) => String(r[k] ?? ''))))].join('\n') + '\n';
}

const program = new Command();
// Positional: the root's --version is read only before a subcommand, so `templates show <id> --version N` reaches the subcommand.
program.name('kubiki').description('Kubiki: modular ERP/CRM').version(coreVersion).enablePositionalOptions();

program.command('start').description('run the HTTP API (embedded PGlite unless DATABASE_URL is set)')
  .option('-p, --port <port>', 'port to listen on (default: PORT or 3000)')
  .action(async (opts: { port?: string }) => {
    const config = configFromEnv(process.env, opts.port ? { port: Number(opts.port) } : {});
    if (!Number.isInteger(config.port) || config.port < 0 || config.port > 65535) throw new KubikiError('config-invalid', `--port must be 0-65535, got ${opts.port}`);
    const k = await Kubiki.create({ config });
    if (k.generatedAdminToken) printAdminToken(k.generatedAdminToken);
    const server = await k.listen();
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : config.port;
    k.logger.info({ port, database: k.db.kind, plugins: k.plugins.status().filter((p) => p.state === 'enabled').map((p) => p.name) }, `Kubiki ${coreVersion} listening on http://localhost:${port}`);
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      k.logger.info({ signal }, 'shutting down');
      k.close().then(() => process.exit(0), (error) => { k.logger.error({ err: error }, 'shutdown failed'); process.exit(1); });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });

program.command('migrate').description('create or upgrade the database: core tables, plugin installs and upgrades')
  .action(() => withKubiki(async (k) => {
    process.stdout.write(`Database is up to date (core ${coreVersion}, ${k.db.kind}).\n`);
    process.stdout.write(table(k.plugins.status().map((p) => ({ plugin: p.name, version: p.installedVersion ?? p.version, state: p.state }))));
  }));

program.command('plugins').description('list plugins and their roll-out state')
  .action(() => withKubiki(async (k) => {
    process.stdout.write(table(k.plugins.status().map((p) => ({
      plugin: p.name, version: p.version, installed: p.installedVersion ?? '-', state: p.state, dependsOn: p.dependsOn.join(',') || '-', title: p.title,
    }))));
  }));

program.command('install <plugin>').description('install a plugin: tables, migrations, seed data')
  .action((name: string) => withKubiki(async (k) => {
    const s = await k.plugins.install(name, SYSTEM);
    process.stdout.write(`${s.name} ${s.version}: ${s.state}\n`);
  }));

program.command('enable <plugin>').description('enable a plugin (installing it first if needed)')
  .action((name: string) => withKubiki(async (k) => {
    // Check what enable would refuse before installing, so a refused enable leaves nothing behind.
    const off = (k.plugins.plugin(name).manifest.dependsOn ?? []).filter((d) => !k.plugins.isEnabled(d));
    if (off.length) throw new KubikiError('lifecycle-conflict', `enable ${off.join(', ')} first: ${name} depends on ${off.length > 1 ? 'them' : 'it'}`);
    if (k.plugins.state(name) === 'available') await k.plugins.install(name, SYSTEM);
    const s = await k.plugins.enable(name, SYSTEM);
    process.stdout.write(`${s.name} ${s.version}: ${s.state}\n`);
  }));

program.command('disable <plugin>').description('disable a plugin; its data stays')
  .action((name: string) => withKubiki(async (k) => {
    const s = await k.plugins.disable(name, SYSTEM);
    process.stdout.write(`${s.name} ${s.version}: ${s.state}\n`);
  }));

program.command('types').description('write TypeScript types of every entity (plugins/<name>/entity-types.ts), of every declared route (route-types.ts) and of the extension points a plugin may contribute to (extension-types.ts)')
  .option('-o, --out <dir>', 'write <dir>/<plugin>.ts and <dir>/<plugin>-routes.ts (and core-routes.ts) instead')
  .action((opts: { out?: string }) => withKubiki(async (k) => {
    // Loaded on demand: json-schema-to-typescript brings prettier, too heavy for every start.
    const [{ entityTypes }, { routeTypes }, { mountedPluginRoutes }, { extensionTypes }] = await Promise.all([
      import('../entities/typescript-types.ts'), import('../http/route-types.ts'), import('../http/plugin-routes.ts'), import('../plugins/extension-types.ts'),
    ]);
    const points = k.extensionPoints.declarations();
    const write = async (file: string, text: Promise<string>) => {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, await text);
      process.stdout.write(`wrote ${path.relative(process.cwd(), file)}\n`);
    };
    for (const p of k.plugins.ordered) {
      const name = p.manifest.name;
      const entities = k.registry.ofPlugin(name);
      if (entities.length) await write(opts.out ? path.resolve(opts.out, `${name}.ts`) : path.join(p.dir, 'entity-types.ts'), entityTypes(name, entities));
      // Routes are declared when a plugin is set up, so only enabled plugins' routes are known here.
      const routes = mountedPluginRoutes(name, k.plugins.routes.get(name) ?? []);
      if (routes.length) await write(opts.out ? path.resolve(opts.out, `${name}-routes.ts`) : path.join(p.dir, 'route-types.ts'), routeTypes(name, routes, k.registry));
      const extensible = new Set([...(p.manifest.dependsOn ?? []), ...(p.manifest.enhances ?? [])]);
      const open = points.filter((point) => extensible.has(point.owner));
      if (open.length) await write(opts.out ? path.resolve(opts.out, `${name}-extensions.ts`) : path.join(p.dir, 'extension-types.ts'), extensionTypes(name, open));
    }
    if (opts.out) await write(path.resolve(opts.out, 'core-routes.ts'), routeTypes('core', k.coreRoutes, k.registry));
  }));

function versionArg(raw: string, name = '--version'): number {
  if (!/^\d{1,9}$/.test(raw) || Number(raw) < 1) throw new KubikiError('validation-failed', `${name} must be a version number, got "${raw}"`);
  return Number(raw);
}

const templates = program.command('templates').description('document templates: list, show, edit, publish, diff');
templates.command('list').description('templates with their published and latest versions')
  .action(() => withKubiki(async (k) => {
    process.stdout.write(table((await k.templates.list()).map((t) => ({
      template: t.id, entity: t.entity, published: t.publishedVersion ?? '-', latest: t.latestVersion, locale: t.locale, title: t.title,
    }))));
  }));
templates.command('show <id>').description('print a version\'s source (the published one by default)')
  .option('--version <n>', 'version to print')
  .action((id: string, opts: { version?: string }) => withKubiki(async (k) => {
    const version = opts.version ? versionArg(opts.version) : (await k.templates.published(id)).version;
    process.stdout.write((await k.templates.version(id, version)).source);
  }));
templates.command('edit <id>').description('save a new version from a file, or from $EDITOR; compile errors are refused with line and column')
  .option('--file <file>', 'read the new source from this file instead of opening an editor')
  .option('--comment <text>', 'what changed and why', '')
  .option('--publish', 'publish the new version at once')
  .action((id: string, opts: { file?: string; comment: string; publish?: boolean }) => withKubiki(async (k) => {
    let source: string;
    if (opts.file) {
      source = fs.readFileSync(opts.file, 'utf8');
    } else {
      const editor = process.env.VISUAL || process.env.EDITOR;
      if (!editor) throw new KubikiError('config-invalid', 'set EDITOR (or give --file <file>) to edit a template');
      const current = await k.templates.published(id).catch(async () => k.templates.version(id, (await k.templates.summary(id)).latestVersion));
      const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'kubiki-template-')), `${id}.hbs`);
      fs.writeFileSync(file, current.source);
      const { status } = spawnSync(editor, [file], { stdio: 'inherit', shell: true });
      if (status !== 0) throw new KubikiError('config-invalid', `the editor exited with ${status}; nothing saved`);
      source = fs.readFileSync(file, 'utf8');
      if (source === current.source) {
        process.stdout.write('unchanged; nothing saved\n');
        return;
      }
    }
    const saved = await k.templates.save(id, { source, ...(opts.comment ? { comment: opts.comment } : {}) }, SYSTEM);
    process.stdout.write(`saved ${id} version ${saved.version}\n`);
    if (opts.publish) {
      await k.templates.publish(id, saved.version, SYSTEM, 'published');
      process.stdout.write(`published ${id} version ${saved.version}\n`);
    }
  }));
templates.command('publish <id>').description('publish a version (the latest by default); publishing an older one rolls back')
  .option('--version <n>', 'version to publish')
  .action((id: string, opts: { version?: string }) => withKubiki(async (k) => {
    const summary = await k.templates.publish(id, opts.version ? versionArg(opts.version) : undefined, SYSTEM, 'published');
    process.stdout.write(`published ${id} version ${summary.publishedVersion}\n`);
  }));
templates.command('diff <id> <from> <to>').description('unified diff of two versions')
  .action((id: string, from: string, to: string) => withKubiki(async (k) => {
    process.stdout.write(await k.templates.diff(id, versionArg(from, 'from'), versionArg(to, 'to')));
  }));

const workflow = program.command('workflow').description('workflow definitions (YAML or JSON): validate, draw');
workflow.command('validate <file>').description('check a definition against the schema and this installation\'s entities, roles and templates; prints every error')
  .action((file: string) => withKubiki(async (k) => {
    // The same check as POST /api/workflows/validate: entities, fields, roles, templates, workflows.
    const { parseDefinitionText } = await import('../workflows/definition-parser.ts');
    const result = await k.workflows.validate(parseDefinitionText(fs.readFileSync(file, 'utf8'), file));
    if (result.ok) {
      process.stdout.write('valid\n');
      return;
    }
    for (const e of result.errors) process.stdout.write(`${e.path || '/'}: ${e.message}\n`);
    process.exitCode = 1;
  }));
workflow.command('diagram <file>').description('print the definition as a Mermaid diagram (checks the schema only; no database)')
  .action(async (file: string) => {
    const [{ parseDefinitionText }, { checkDefinitionSchema }, { toMermaid }] = await Promise.all([
      import('../workflows/definition-parser.ts'), import('../workflows/definition-schema.ts'), import('../workflows/mermaid-diagram.ts'),
    ]);
    const checked = checkDefinitionSchema(parseDefinitionText(fs.readFileSync(file, 'utf8'), file));
    if (!checked.definition) {
      for (const e of checked.errors) process.stderr.write(`${e.path || '/'}: ${e.message}\n`);
      process.exitCode = 1;
      return;
    }
    process.stdout.write(toMermaid(checked.definition));
  });

const users = program.command('users').description('manage users');
users.command('add <username>').description('create a user')
  .option('--password <password>', 'password (10+ characters); or set KUBIKI_NEW_PASSWORD')
  .option('--roles <roles>', 'comma-separated role names', '')
  .option('--display-name <name>', 'name shown in the UI and documents')
  .option('--email <email>', 'e-mail address')
  .action((username: string, opts: { password?: string; roles: string; displayName?: string; email?: string }) => withKubiki(async (k) => {
    const password = opts.password ?? process.env.KUBIKI_NEW_PASSWORD;
    const user = await k.auth.createUser(SYSTEM, {
      username, roles: opts.roles.split(',').map((r) => r.trim()).filter(Boolean),
      ...(password ? { password } : {}), ...(opts.displayName ? { displayName: opts.displayName } : {}), ...(opts.email ? { email: opts.email } : {}),
    });
    process.stdout.write(`created user ${user.username} (${user.id}) with roles [${user.roles.join(', ')}]\n`);
  }));
users.command('token <username>').description('issue an API token for a user (printed once)')
  .option('--name <name>', 'what the token is for', 'cli')
  .action((username: string, opts: { name: string }) => withKubiki(async (k) => {
    const user = await k.auth.findUserByName(username);
    if (!user) throw new KubikiError('not-found', `no user ${username}`);
    const issued = await k.auth.issueApiToken(SYSTEM, user.id, { name: opts.name });
    process.stdout.write(`${issued.token}\n`);
  }));

importCommands(program, withKubiki);

program.parseAsync(process.argv).catch((error: unknown) => {
  if (isKubikiError(error)) {
    process.stderr.write(`kubiki: ${error.code}: ${error.message}\n`);
    for (const issue of error.issues) process.stderr.write(`  ${issue.field || '(body)'}: ${issue.message} [${issue.rule}]\n`);
  } else {
    process.stderr.write(`kubiki: ${(error as Error)?.stack ?? String(error)}\n`);
  }
  process.exit(1);
});
