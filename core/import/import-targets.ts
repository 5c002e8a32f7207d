import type { Knex } from 'knex';
import type { Principal } from '../auth/principal.ts';
import { KubikiError, type FieldIssue } from '../errors.ts';
import { defineField, type FieldDefinition, type JsonSchema } from '../entities/entity-definition.ts';
import type { ExtensionPoints } from '../plugins/extension-points.ts';

// Import targets: where validated rows go. Every entity is one (rows become records through its
// repository: validated, permission-checked, audited, evented, `createMany` batches). A plugin may
// offer more — opening balances posted as journal entries, stock levels as receipt moves — by
// contributing to the core's extension point `core.importTargets`: the importer reads, maps,
// converts, resolves references and validates the rows against the target's row schema, then
// hands each batch to the target's `write` inside the batch's transaction (the one that also
// commits the job's checkpoint), so the plugin's own posting code runs exactly once per row even
// when the import is killed and resumed. In a dry run the same `write` runs and is rolled back.

/** A row for a plugin target: its fields valid for the row schema, references resolved to ids. */
export interface ImportRow {
  /** The line of the file (for messages). */
  line: number;
  fields: Record<string, unknown>;
  /** The row's external id, when a column is mapped to `$externalId`. */
  externalId?: string;
}

export interface ImportWriteContext {
  /** The batch's transaction: pass it to every repository call (`{ trx }`) so the rows commit with the checkpoint. */
  trx: Knex.Transaction;
  /** The user the import runs as: their grants apply. */
  actor: Principal;
  /** A dry run: write as usual; the importer rolls the transaction back. */
  dryRun: boolean;
  jobId: string;
  /** Stable per row across resumes: `import-<job>-<line>` (an idempotency key for what leaves the database). */
  keyOf(row: ImportRow): string;
}

/**
 * What a plugin contributes to `core.importTargets`. `write` either writes every row or throws:
 * a KubikiError whose issues name the row as `<index>.<field>` (as `createMany` does) refuses that
 * row — the importer reports it against the row's line and column and writes the rest; any other
 * error makes the importer try the rows one at a time to find the bad ones.
 */
export interface ImportTargetContribution {
  /** Unique within the plugin: the target is `<plugin>.<name>` (`finance.openingBalances`). */
  name: string;
  title: string;
  description?: string;
  /**
   * JSON Schema of one row: `{"type": "object", "properties": {...}, "required": [...]}` with
   * Kubiki's field keywords (`x-decimal`, `x-ref` — looked up by the referenced entity's natural
   * key such as INN or SKU, `format: date`). Mappings map columns to these properties.
   */
  schema: JsonSchema;
  /** The permission the importing user needs, e.g. `finance.entries.post`. */
  permission: string;
  write(rows: ImportRow[], ctx: ImportWriteContext): Promise<void>;
}

export const IMPORT_TARGETS_POINT = 'importTargets';

/** The extension point's contribution schema (functions checked with x-function). */
export const importTargetSchema: JsonSchema = {
  type: 'object', required: ['name', 'title', 'schema', 'permission', 'write'], additionalProperties: false,
  properties: {
    name: { type: 'string', pattern: '^[a-z][a-zA-Z0-9]{0,62}$', 'x-format-hint': 'lowerCamelCase letters and digits' },
    title: { type: 'string', minLength: 1, maxLength: 200 },
    description: { type: 'string', maxLength: 2000 },
    schema: { type: 'object', required: ['type', 'properties'], properties: { type: { const: 'object' }, properties: { type: 'object', minProperties: 1 } } },
    permission: { type: 'string', minLength: 1, maxLength: 200 },
    write: { 'x-function': true, tsType: '(rows: ImportRow[], ctx: ImportWriteContext) => Promise<void>' },
  },
};

export interface PluginTarget {
  /** `<plugin>.<name>` */
  qualifiedName: string;
  plugin: string;
  contribution: ImportTargetContribution;
  fields: Map<string, FieldDefinition>;
  /** The row schema for validation (additionalProperties false). */
  rowSchema: JsonSchema;
}

/** Targets plugins contributed, usable while the plugin is enabled. */
export class ImportTargets {
  private readonly targets = new Map<string, PluginTarget>();

  constructor(points: ExtensionPoints, private readonly isEnabled: (plugin: string) => boolean) {
    points.declare({
      owner: 'core', name: IMPORT_TARGETS_POINT, schema: importTargetSchema,
      description: 'Import targets: rows of an imported file the importer validates and hands to write() in the batch\'s transaction (opening balances, stock levels)',
    });
    void points.watch(`core.${IMPORT_TARGETS_POINT}`, (value, plugin) => this.add(plugin, value as ImportTargetContribution));
  }

  private add(plugin: string, contribution: ImportTargetContribution): void {
    const qualifiedName = `${plugin}.${contribution.name}`;
    const properties = (contribution.schema.properties ?? {}) as Record<string, unknown>;
    const required = (contribution.schema.required as string[] | undefined) ?? [];
    const fields = new Map<string, FieldDefinition>();
    for (const [name, schema] of Object.entries(properties)) {
      try {
        fields.set(name, defineField(name, schema, { required: required.includes(name), custom: false, where: `import target ${qualifiedName}` }));
      } catch (error) {
        throw new KubikiError('invalid-contribution', (error as Error).message, { extra: { plugin, point: `core.${IMPORT_TARGETS_POINT}` } });
      }
    }
    const rowSchema: JsonSchema = {
      type: 'object', additionalProperties: false, required,
      properties: Object.fromEntries([...fields.values()].map((f) => [f.name, f.schema])),
    };
    this.targets.set(qualifiedName, { qualifiedName, plugin, contribution, fields, rowSchema });
  }

  get(name: string): PluginTarget | undefined {
    const t = this.targets.get(name);
    return t && this.isEnabled(t.plugin) ? t : undefined;
  }

  list(): PluginTarget[] {
    return [...this.targets.values()].filter((t) => this.isEnabled(t.plugin));
  }
}

export type { FieldIssue };
