import { isKubikiError, SYSTEM, type ApiRecord, type KubikiEvent, type PluginContext } from 'kubiki/plugin';
import { checkEntryShape, parseEntry, type EntryInput, type Ledger, type ParsedEntry } from './ledger.ts';

/**
 * A posting rule other plugins contribute to `finance.postingRules` (its schema is in plugin.json):
 * when a record of `entity` is created or updated and `when` says so, `entries` gives the journal
 * entries to post (the shape of POST /api/finance/entries). Finance posts them once per event
 * (idempotent on the event id), as the system, with the record as their source.
 */
export interface PostingRule {
  name: string;
  entity: string;
  when(event: KubikiEvent, record: ApiRecord): boolean | Promise<boolean>;
  entries(record: ApiRecord, event: KubikiEvent): EntryInput[] | Promise<EntryInput[]>;
}

/**
 * Finance's side of the extension point. The core hands over every contribution — those made
 * before finance was set up at once, a plugin enabled later's when it is made — and finance
 * subscribes to the rule's entity there and then: nothing polls, no event goes unheard.
 */
export class PostingRules {
  private readonly heard: PostingRule[] = [];

  constructor(private readonly ctx: PluginContext, private readonly ledger: Ledger) {}

  /** Starts listening to the point; resolves once the contributions made so far are subscribed. */
  async start(): Promise<void> {
    await this.ctx.onContribution<PostingRule>('postingRules', (rule) => this.subscribe(rule));
  }

  private subscribe(rule: PostingRule): void {
    this.heard.push(rule);
    const apply = (event: KubikiEvent) => this.apply(rule, event);
    this.ctx.on(`${rule.entity}.created`, apply);
    this.ctx.on(`${rule.entity}.updated`, apply);
  }

  /** The rules in force: contributed by a plugin that is enabled now. */
  active(): PostingRule[] {
    const live = new Set(this.ctx.contributions<PostingRule>('postingRules'));
    return this.heard.filter((r) => live.has(r));
  }

  /** Whether finance listens to the rule's events (every rule it heard of). */
  isSubscribed(rule: PostingRule): boolean {
    return this.heard.includes(rule);
  }

  private async apply(rule: PostingRule, event: KubikiEvent): Promise<void> {
    // A contributor disabled since keeps its subscription, but its rule no longer counts.
    if (!this.active().includes(rule)) return;
    let record: ApiRecord;
    try {
      record = await this.ctx.repository(rule.entity).get(event.recordId, { actor: SYSTEM });
    } catch (error) {
      if (isKubikiError(error) && error.code === 'not-found') return;
      throw error;
    }
    if (!(await rule.when(event, record))) return;
    const produced = await rule.entries(record, event);
    // The rule's entries are checked as a REST entry would be: the same schema, then the same domain checks.
    const parsed: ParsedEntry[] = produced.map((e, i) => {
      const prefix = `postingRules.${rule.name}.entries.${i}.`;
      const p = parseEntry(checkEntryShape(e, prefix), prefix);
      return { ...p, sourceEntity: p.sourceEntity ?? rule.entity, sourceId: p.sourceId ?? event.recordId, sourceKey: `rule:${rule.name}:${event.id}:${i}` };
    });
    if (parsed.length === 0) return;
    const done: string[] = await this.ctx.table('finance_entries').whereIn('sourceKey', parsed.map((p) => p.sourceKey!)).pluck('sourceKey');
    await this.ledger.post(parsed.filter((p) => !done.includes(p.sourceKey!)), { actor: SYSTEM });
  }
}
