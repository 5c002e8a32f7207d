import type { Database, Executor } from '../../db/database.ts';
import type { WorkflowDefinition } from '../workflow-definition.ts';

export interface PublishedWorkflow {
  id: string;
  version: number;
  definition: WorkflowDefinition;
  /** When the item last changed (publish, rollback); date-relative triggers look back from here. */
  publishedAt: string;
}

/**
 * The versions new instances start on, per workflow, cached in the process and reloaded when the
 * set of published versions changes (checked cheaply on every refresh tick). Old versions stay
 * loadable: running instances finish on the version they started on.
 */
export class PublishedWorkflows {
  private current = new Map<string, PublishedWorkflow>();
  // Indexes for the hot paths (every entity write asks who listens, every update whether a
  // lifecycle owns a field): rebuilt at reload, not per call.
  private automationList: PublishedWorkflow[] = [];
  private lifecycles = new Map<string, PublishedWorkflow>();
  private byEvent = new Map<string, PublishedWorkflow[]>();
  private signature = '';
  private readonly versions = new Map<string, WorkflowDefinition>();
  private readonly listeners: ((added: PublishedWorkflow[]) => void)[] = [];

  constructor(private readonly db: Database) {}

  /** Called after each reload that changed something, with the versions newly published (or first seen). */
  onChange(listener: (added: PublishedWorkflow[]) => void): void {
    this.listeners.push(listener);
  }

  async reload(): Promise<void> {
    const rows: { item_id: string; published_version: number; updated_at: string }[] = await this.db.table('kubiki_versioned_items')
      .where({ kind: 'workflows' }).whereNotNull('published_version').orderBy('item_id').select('item_id', 'published_version', 'updated_at');
    const signature = rows.map((r) => `${r.item_id}@${r.published_version}`).join(',');
    if (signature === this.signature) return;
    const next = new Map<string, PublishedWorkflow>();
    for (const r of rows) {
      next.set(r.item_id, { id: r.item_id, version: Number(r.published_version), definition: await this.definition(r.item_id, Number(r.published_version)), publishedAt: String(r.updated_at) });
    }
    const added = [...next.values()].filter((w) => this.current.get(w.id)?.version !== w.version);
    this.current = next;
    this.automationList = [...next.values()].filter((w) => w.definition.kind === 'automation');
    this.lifecycles = new Map([...next.values()].filter((w) => w.definition.kind === 'lifecycle' && w.definition.entity).map((w) => [w.definition.entity!, w]));
    this.byEvent = new Map();
    for (const w of this.automationList) {
      const trigger = w.definition.trigger;
      if (trigger?.type !== 'event') continue;
      for (const action of trigger.on ?? ['created', 'updated']) {
        const type = `${trigger.entity}.${action}`;
        this.byEvent.set(type, [...(this.byEvent.get(type) ?? []), w]);
      }
    }
    this.signature = signature;
    for (const listener of this.listeners) listener(added);
  }

  get(id: string): PublishedWorkflow | undefined {
    return this.current.get(id);
  }

  all(): PublishedWorkflow[] {
    return [...this.current.values()];
  }

  automations(): readonly PublishedWorkflow[] {
    return this.automationList;
  }

  /** Automations triggered by an event type (`base.organizations.created`). */
  listening(eventType: string): readonly PublishedWorkflow[] {
    return this.byEvent.get(eventType) ?? [];
  }

  /** The published lifecycle of an entity (the last by id if, unusually, two are published). */
  lifecycleOf(entity: string): PublishedWorkflow | undefined {
    return this.lifecycles.get(entity);
  }

  /** Any version, published or not: what a running instance follows. */
  async definition(id: string, version: number, trx?: Executor): Promise<WorkflowDefinition> {
    const key = `${id}@${version}`;
    let definition = this.versions.get(key);
    if (!definition) {
      const row: { metadata: WorkflowDefinition } | undefined = await this.db.table('kubiki_item_versions', trx).where({ kind: 'workflows', item_id: id, version }).first('metadata');
      if (!row) throw new Error(`workflow ${id} has no version ${version}`);
      definition = row.metadata;
      this.versions.set(key, definition);
    }
    return definition;
  }
}
