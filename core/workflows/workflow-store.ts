import type { Database } from '../db/database.ts';
import { KubikiError, fieldError } from '../errors.ts';
import type { Principal } from '../auth/principal.ts';
import { VersionedStore, type ItemVersion } from '../versioning/versioned-store.ts';
import type { ValidationEnv, ValidationResult, WorkflowDefinition } from './definition-validator.ts';

// The validator brings ajv's largest schema, CEL and YAML: loaded when a definition is first
// checked, not at every start (a quarter of a second).
const definitions = async () => {
  const [{ parseDefinitionText }, { validateDefinition }] = await Promise.all([import('./definition-parser.ts'), import('./definition-validator.ts')]);
  return { parse: parseDefinitionText, validate: validateDefinition };
};

export type WorkflowVersion = ItemVersion<WorkflowDefinition>;

export interface WorkflowSummary {
  id: string;
  title: string;
  kind: WorkflowDefinition['kind'];
  entity: string | null;
  publishedVersion: number | null;
  latestVersion: number;
}

/** A shipped definition: `workflows/*.yaml|json` (cross-module) or `plugins/<name>/workflows/*`. */
export interface ShippedWorkflow {
  id: string;
  source: string;
  file: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/**
 * Workflow definitions as analysts edit them: the text they wrote (YAML or JSON) is kept as the
 * version's source, the checked definition as its metadata. Only definitions that validate are
 * saved; publishing makes a version the one new instances start on.
 */
export class WorkflowStore {
  private readonly store: VersionedStore<WorkflowDefinition>;

  constructor(db: Database, private readonly env: () => Promise<ValidationEnv>, private readonly afterPublish: () => Promise<void> = async () => {}) {
    this.store = new VersionedStore(db, { kind: 'workflows', noun: 'workflow', extension: 'yaml', entityOf: (d) => d.entity ?? null });
  }

  /** Parses and validates without saving: every error with its JSON path. */
  async validate(input: unknown): Promise<ValidationResult> {
    const { parse, validate } = await definitions();
    return validate(typeof input === 'string' ? parse(input) : input, await this.env());
  }

  private async checked(source: string, fileName?: string): Promise<WorkflowDefinition> {
    const { parse, validate } = await definitions();
    const result = validate(parse(source, fileName), await this.env());
    if (!result.ok || !result.definition) {
      const issues = result.errors.map((e) => ({ field: e.path, rule: e.rule, message: e.message }));
      throw new KubikiError('validation-failed', `the workflow definition has ${issues.length} error${issues.length === 1 ? '' : 's'}: ${issues[0]?.message ?? ''}`, { issues });
    }
    return result.definition;
  }

  async syncDefaults(shipped: ShippedWorkflow[]): Promise<void> {
    const defaults: { id: string; source: string; metadata: WorkflowDefinition }[] = [];
    const { parse } = await definitions();
    const known = (await this.env()).plugins;
    for (const s of shipped) {
      // A cross-module process for plugins this installation does not have is not imported (it could
      // never run); it is imported once they are there.
      let requires: unknown;
      try {
        requires = (parse(s.source, s.file) as { requires?: unknown }).requires;
      } catch {
        requires = undefined; // reported with its position by the check below
      }
      if (known && Array.isArray(requires) && requires.some((p) => typeof p === 'string' && !known.has(p))) continue;
      let definition: WorkflowDefinition;
      try {
        definition = await this.checked(s.source, s.file);
      } catch (error) {
        throw new KubikiError('config-invalid', `shipped workflow ${s.file} is invalid: ${(error as Error).message}`, { cause: error });
      }
      if (definition.id !== s.id) throw new KubikiError('config-invalid', `shipped workflow ${s.file} declares id ${definition.id}; expected ${s.id}`);
      defaults.push({ id: s.id, source: s.source, metadata: definition });
    }
    await this.store.syncDefaults(defaults);
  }

  private describe(s: Awaited<ReturnType<VersionedStore<WorkflowDefinition>['summary']>>): WorkflowSummary {
    const d = s.shown.metadata;
    return { id: s.id, title: d.title, kind: d.kind, entity: s.entity, publishedVersion: s.publishedVersion, latestVersion: s.latestVersion };
  }

  async list(): Promise<WorkflowSummary[]> {
    return (await this.store.list()).map((s) => this.describe(s));
  }

  async summary(id: string): Promise<WorkflowSummary> {
    return this.describe(await this.store.summary(id));
  }

  version(id: string, version: number): Promise<WorkflowVersion> {
    return this.store.version(id, version);
  }

  versions(id: string): Promise<Omit<WorkflowVersion, 'source'>[]> {
    return this.store.versions(id);
  }

  published(id: string): Promise<WorkflowVersion> {
    return this.store.published(id);
  }

  /**
   * Saves a new, unpublished version from `{ source }` (YAML or JSON text) or `{ definition }`
   * (a JSON object), with an optional comment. The definition's `id` must match the URL.
   */
  async save(id: string, body: unknown, actor: Principal, requestId?: string): Promise<WorkflowVersion> {
    if (!isObject(body)) throw fieldError('validation-failed', '', 'type', 'the body must be a JSON object');
    for (const key of Object.keys(body)) {
      if (!['source', 'definition', 'comment'].includes(key)) throw fieldError('validation-failed', key, 'unknown-field', `${key} is not accepted (source or definition, comment)`);
    }
    if ((body.source === undefined) === (body.definition === undefined)) {
      throw fieldError('validation-failed', 'source', 'oneOf', 'give either source (YAML or JSON text) or definition (a JSON object)');
    }
    if (body.source !== undefined && (typeof body.source !== 'string' || body.source.length > 512 * 1024)) {
      throw fieldError('validation-failed', 'source', 'type', 'source must be YAML or JSON text of at most 512 KiB');
    }
    if (body.comment !== undefined && (typeof body.comment !== 'string' || body.comment.length > 500)) {
      throw fieldError('validation-failed', 'comment', 'type', 'comment must be a string of at most 500 characters');
    }
    const source = typeof body.source === 'string' ? body.source : `${JSON.stringify(body.definition, null, 2)}\n`;
    const definition = await this.checked(source);
    if (definition.id !== id) throw fieldError('validation-failed', 'id', 'const', `the definition's id is ${definition.id}, but it is saved as ${id}`);
    return this.store.save(id, { source, metadata: definition, comment: typeof body.comment === 'string' ? body.comment : undefined }, actor, requestId);
  }

  async publish(id: string, version: number | undefined, actor: Principal, action: 'published' | 'rolled-back', requestId?: string): Promise<WorkflowSummary> {
    await this.store.publish(id, version, actor, action, requestId);
    await this.afterPublish();
    return this.summary(id);
  }

  /** Unpublishes: triggers and transitions stop; running instances finish on their version. */
  async unpublish(id: string, actor: Principal, requestId?: string): Promise<WorkflowSummary> {
    await this.store.withdraw(id, actor, requestId);
    await this.afterPublish();
    return this.summary(id);
  }

  diff(id: string, from: number, to: number): Promise<string> {
    return this.store.diff(id, from, to);
  }
}
