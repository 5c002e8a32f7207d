import { KubikiError } from '../errors.ts';

/**
 * Named places a plugin opens for others (declared in its manifest), e.g. `finance.postingRules`.
 * Contributions from a plugin count only while that plugin and the point's owner are enabled.
 */
export class ExtensionPoints {
  private readonly points = new Map<string, { owner: string; description?: string }>();
  private readonly contributions = new Map<string, { plugin: string; value: unknown }[]>();

  constructor(private readonly isEnabled: (plugin: string) => boolean) {}

  declare(owner: string, name: string, description?: string): void {
    this.points.set(`${owner}.${name}`, { owner, description });
    if (!this.contributions.has(`${owner}.${name}`)) this.contributions.set(`${owner}.${name}`, []);
  }

  exists(point: string): boolean {
    return this.points.has(point);
  }

  contribute(plugin: string, point: string, value: unknown): void {
    if (!this.points.has(point)) {
      throw new KubikiError('conflict', `plugin ${plugin} contributes to extension point ${point}, which no plugin declares`);
    }
    this.contributions.get(point)!.push({ plugin, value });
  }

  /** What enabled plugins contributed; empty while the point's owner is disabled. */
  list<T>(point: string): T[] {
    const decl = this.points.get(point);
    if (!decl || !this.isEnabled(decl.owner)) return [];
    return (this.contributions.get(point) ?? []).filter((c) => this.isEnabled(c.plugin)).map((c) => c.value as T);
  }
}
