import semver from 'semver';
import { KubikiError } from '../errors.ts';
import type { DiscoveredPlugin } from './plugin-manifest.ts';

/**
 * The one dependency graph of the installation: checks it and orders plugins so that every plugin
 * comes after what it depends on. Soft `enhances` links only order plugins that are both present.
 */
export function sortPlugins(plugins: DiscoveredPlugin[], coreVersion: string): DiscoveredPlugin[] {
  const byName = new Map(plugins.map((p) => [p.manifest.name, p]));
  for (const p of plugins) {
    const { name, core } = p.manifest;
    if (!semver.validRange(core)) throw new KubikiError('invalid-manifest', `plugin ${name}: "core": "${core}" is not a semver range`);
    if (!semver.satisfies(coreVersion, core, { includePrerelease: true })) {
      throw new KubikiError('unsupported-core-version', `plugin ${name} supports core ${core}, but this is core ${coreVersion}`);
    }
    for (const dep of p.manifest.dependsOn ?? []) {
      if (!byName.has(dep)) throw new KubikiError('missing-dependency', `plugin ${name} depends on "${dep}", which is not installed in any plugin folder`);
    }
    for (const entity of p.entities) {
      for (const field of entity.fields.values()) {
        if (!field.ref || field.ref === 'core.users') continue;
        const target = field.ref.split('.')[0];
        if (!byName.has(target)) throw new KubikiError('missing-dependency', `plugin ${name}: ${entity.qualifiedName}.${field.name} references ${field.ref}, but no plugin "${target}" exists`);
        // Always-enabled plugins (base) are everyone's implicit dependency.
        if (target !== name && !byName.get(target)?.manifest.alwaysEnabled && !dependsOnTransitively(byName, name, target)) {
          throw new KubikiError('missing-dependency', `plugin ${name}: ${entity.qualifiedName}.${field.name} references ${field.ref}, but ${name} does not depend on ${target}`);
        }
      }
    }
  }
  const ordered: DiscoveredPlugin[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (p: DiscoveredPlugin, trail: string[]) => {
    const name = p.manifest.name;
    if (state.get(name) === 'done') return;
    if (state.get(name) === 'visiting') {
      const cycle = [...trail.slice(trail.indexOf(name)), name].join(' → ');
      throw new KubikiError('dependency-cycle', `plugin dependency cycle: ${cycle}`);
    }
    state.set(name, 'visiting');
    // Always-enabled plugins (base) come before all others: everyone may reference their entities.
    const always = p.manifest.alwaysEnabled ? [] : plugins.filter((o) => o.manifest.alwaysEnabled).map((o) => o.manifest.name);
    const before = [...always, ...(p.manifest.dependsOn ?? []), ...(p.manifest.enhances ?? []).filter((e) => byName.has(e))];
    for (const dep of before) {
      // A soft link back to a plugin that depends on us is not a cycle: the hard edge wins.
      if ((p.manifest.enhances ?? []).includes(dep) && dependsOnTransitively(byName, dep, name)) continue;
      visit(byName.get(dep)!, [...trail, name]);
    }
    state.set(name, 'done');
    ordered.push(p);
  };
  for (const p of [...plugins].sort((a, b) => a.manifest.name.localeCompare(b.manifest.name))) visit(p, []);
  return ordered;
}

function dependsOnTransitively(byName: Map<string, DiscoveredPlugin>, from: string, to: string, seen = new Set<string>()): boolean {
  if (seen.has(from)) return false;
  seen.add(from);
  const deps = byName.get(from)?.manifest.dependsOn ?? [];
  return deps.includes(to) || deps.some((d) => dependsOnTransitively(byName, d, to, seen));
}

/**
 * The order plugins' code is set up in: after what they depend on, and — the reverse of `enhances`
 * in `sortPlugins` — a plugin that enhances another before it, so an extension point's owner starts
 * with the contributions of its enhancers already made. Where a hard dependency points the other
 * way, it wins (the owner still hears the later contribution through `onContribution`).
 */
export function setupOrder(sorted: DiscoveredPlugin[]): DiscoveredPlugin[] {
  const byName = new Map(sorted.map((p) => [p.manifest.name, p]));
  const before = new Map<string, Set<string>>(sorted.map((p) => [p.manifest.name, new Set(p.manifest.dependsOn ?? [])]));
  for (const p of sorted) {
    for (const owner of p.manifest.enhances ?? []) {
      if (byName.has(owner) && !dependsOnTransitively(byName, p.manifest.name, owner)) before.get(owner)!.add(p.manifest.name);
    }
    // Always-enabled plugins (base) first, as in sortPlugins.
    if (!p.manifest.alwaysEnabled) for (const o of sorted) if (o.manifest.alwaysEnabled) before.get(p.manifest.name)!.add(o.manifest.name);
  }
  const ordered: DiscoveredPlugin[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string): void => {
    if (state.get(name) === 'done' || state.get(name) === 'visiting') return; // a soft cycle: keep the order reached
    state.set(name, 'visiting');
    for (const dep of before.get(name) ?? []) if (byName.has(dep)) visit(dep);
    state.set(name, 'done');
    ordered.push(byName.get(name)!);
  };
  for (const p of sorted) visit(p.manifest.name);
  return ordered;
}
