import type { ValidateFunction } from 'ajv';
import { createAjv, toFieldIssues } from '../entities/ajv.ts';
import type { JsonSchema } from '../entities/entity-definition.ts';
import { KubikiError } from '../errors.ts';

// Named places a plugin opens for others (declared in its manifest with a JSON Schema for the
// contributions), e.g. `finance.postingRules`. A contribution is checked when it is made: against
// the schema, and that the contributor `dependsOn` or `enhances` the owner. The owner watches its
// points: it hears every contribution made so far at once and each later one when it is made
// (a plugin enabled later) — nothing polls. Contributions count only while both plugins are enabled.

export interface PointDeclaration {
  owner: string;
  name: string;
  description?: string;
  schema?: JsonSchema;
}

type Watcher = (value: unknown, contributor: string) => void | Promise<void>;

let contributionAjv: ReturnType<typeof createAjv> | undefined;
/** Contributions hold code (`when`, `entries`…): `"x-function": true` checks a function, `tsType` types it. */
function ajv(): ReturnType<typeof createAjv> {
  if (!contributionAjv) {
    contributionAjv = createAjv();
    contributionAjv.addVocabulary(['tsType']);
    contributionAjv.addKeyword({ keyword: 'x-function', schemaType: 'boolean', validate: (wanted: boolean, data: unknown) => !wanted || typeof data === 'function', errors: false });
  }
  return contributionAjv;
}

export class ExtensionPoints {
  private readonly points = new Map<string, PointDeclaration & { validate?: ValidateFunction }>();
  private readonly contributions = new Map<string, { plugin: string; value: unknown }[]>();
  private readonly watchers = new Map<string, Watcher[]>();

  constructor(
    private readonly isEnabled: (plugin: string) => boolean,
    /** The plugins a plugin may extend: its `dependsOn` and `enhances`. */
    private readonly mayExtend: (plugin: string) => readonly string[] = () => [],
  ) {}

  declare(point: PointDeclaration): void {
    const id = `${point.owner}.${point.name}`;
    let validate: ValidateFunction | undefined;
    try {
      validate = point.schema ? ajv().compile(point.schema) : undefined;
    } catch (error) {
      throw new KubikiError('invalid-manifest', `plugin ${point.owner}: the schema of extension point ${point.name} does not compile: ${(error as Error).message}`);
    }
    this.points.set(id, { ...point, validate });
    if (!this.contributions.has(id)) this.contributions.set(id, []);
  }

  exists(point: string): boolean {
    return this.points.has(point);
  }

  declarations(): PointDeclaration[] {
    return [...this.points.values()].map(({ owner, name, description, schema }) => ({ owner, name, description, schema }));
  }

  /** Checks and records a contribution, then tells the owner's watchers. */
  async contribute(plugin: string, point: string, value: unknown): Promise<void> {
    const decl = this.points.get(point);
    // Enhancing a plugin that is not installed at all is a no-op (that is what a soft dependency
    // means); a misspelt point of a plugin that is there is still an error.
    const owner = point.split('.')[0];
    if (!decl && this.mayExtend(plugin).includes(owner) && ![...this.points.keys()].some((id) => id.startsWith(`${owner}.`))) return;
    if (!decl) throw new KubikiError('invalid-contribution', `plugin ${plugin} contributes to extension point ${point}, which no plugin declares`, { extra: { plugin, point } });
    if (decl.owner !== plugin && !this.mayExtend(plugin).includes(decl.owner)) {
      throw new KubikiError('invalid-contribution', `plugin ${plugin} contributes to ${point} but neither depends on nor enhances ${decl.owner}: add "${decl.owner}" to its manifest's enhances`, { extra: { plugin, point } });
    }
    if (decl.validate && !decl.validate(value)) {
      const issues = toFieldIssues(decl.validate.errors);
      throw new KubikiError('invalid-contribution', `plugin ${plugin}'s contribution to ${point} is malformed: ${issues.map((i) => `${i.field || '(value)'}: ${i.message}`).join('; ')}`, { issues, extra: { plugin, point } });
    }
    this.contributions.get(point)!.push({ plugin, value });
    for (const watch of this.watchers.get(point) ?? []) await watch(value, plugin);
  }

  /** Calls `watcher` for each contribution made so far and for every later one. */
  async watch(point: string, watcher: Watcher): Promise<void> {
    if (!this.points.has(point)) throw new KubikiError('invalid-contribution', `no extension point ${point} is declared`);
    this.watchers.set(point, [...(this.watchers.get(point) ?? []), watcher]);
    for (const c of [...(this.contributions.get(point) ?? [])]) await watcher(c.value, c.plugin);
  }

  /** What enabled plugins contributed; empty while the point's owner is disabled. */
  list<T>(point: string): T[] {
    const decl = this.points.get(point);
    if (!decl || !this.isEnabled(decl.owner)) return [];
    return (this.contributions.get(point) ?? []).filter((c) => this.isEnabled(c.plugin)).map((c) => c.value as T);
  }
}
