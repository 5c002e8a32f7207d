import type { Principal } from '../auth/principal.ts';
import type { EntityRepository } from '../entities/entity-repository.ts';
import type { ApiRecord } from '../entities/record-codec.ts';
import type { JsonSchema } from '../entities/entity-definition.ts';
import type { VatRounding } from '../money/document-totals.ts';
import type { CompanyProfile } from './company-profile.ts';
import type { TemplateMetadata } from './template-catalog.ts';

/** Computed values a plugin adds to its documents (totals, VAT breakdown…), by entity. */
export type DocumentTotalsProvider = (input: { record: ApiRecord; includes: Record<string, ApiRecord[]> }) => Record<string, unknown> | Promise<Record<string, unknown>>;

export interface DocumentDataDeps {
  /** The repository behind an entity's API: refuses entities of plugins that are not enabled. */
  repository(entity: string): EntityRepository;
  company(): Promise<CompanyProfile>;
  totals(entity: string): DocumentTotalsProvider[];
  /** The company's VAT rounding (KUBIKI_VAT_ROUNDING), at the root of the data for the taxLines helper. */
  vatRounding?: VatRounding;
}

export interface DocumentContext {
  templateId: string;
  templateVersion: number;
  metadata: TemplateMetadata;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Reference fields inside JSON arrays of objects (`lines[].product` with x-ref) of an entity. */
function nestedRefs(repo: EntityRepository): { field: string; key: string; ref: string }[] {
  const out: { field: string; key: string; ref: string }[] = [];
  for (const f of repo.entity.fields.values()) {
    const items = f.schema.items;
    if (f.kind !== 'json' || !isObject(items) || !isObject(items.properties)) continue;
    for (const [key, prop] of Object.entries(items.properties as JsonSchema)) {
      if (isObject(prop) && typeof prop['x-ref'] === 'string') out.push({ field: f.name, key, ref: prop['x-ref'] });
    }
  }
  return out;
}

/** Whether references to `ref` are replaced by the records for this reader (core.users needs the full grant). */
const mayExpand = (actor: Principal, ref: string): boolean =>
  ref === 'core.users' ? actor.permissions.grant('core.users.read') === 'all' : actor.permissions.grant(`${ref}.read`) !== 'none';

/** Replaces ids inside JSON lines by the referenced records, one query per referenced entity. */
async function expandNested(deps: DocumentDataDeps, repo: EntityRepository, records: ApiRecord[], actor: Principal): Promise<void> {
  for (const { field, key, ref } of nestedRefs(repo)) {
    if (!mayExpand(actor, ref)) continue;
    const lines = records.flatMap((r) => (Array.isArray(r[field]) ? (r[field] as unknown[]) : [])).filter(isObject);
    const ids = [...new Set(lines.map((l) => l[key]).filter((v): v is string => typeof v === 'string'))];
    if (ids.length === 0 || ref === 'core.users') continue;
    const found = await deps.repository(ref).listFromQuery({ 'id[in]': ids.join(','), limit: String(Math.min(500, ids.length)) }, { actor });
    const byId = new Map(found.data.map((r) => [r.id, r]));
    for (const line of lines) if (typeof line[key] === 'string' && byId.has(line[key] as string)) line[key] = byId.get(line[key] as string);
  }
}

/**
 * Everything a template sees: the record with its references expanded (and references inside its
 * lines), child records the template's metadata asks for, computed totals from the plugins, the
 * company profile, and facts about the document itself. Reads go through the caller's permissions.
 */
export async function loadDocumentData(deps: DocumentDataDeps, ctx: DocumentContext, recordId: string, actor: Principal): Promise<{ data: Record<string, unknown>; record: ApiRecord }> {
  const repo = deps.repository(ctx.metadata.entity);
  // A reference the reader may not read stays an id (an employee prints their own payslip without
  // reading the users or the pay run it points to); reading the record itself is still required.
  const refs = [...repo.entity.fields.values()].filter((f) => f.ref && mayExpand(actor, f.ref)).map((f) => f.name);
  const record = await repo.get(recordId, { actor, expand: refs });
  await expandNested(deps, repo, [record], actor);
  const includes: Record<string, ApiRecord[]> = {};
  for (const [name, inc] of Object.entries(ctx.metadata.include ?? {})) {
    const child = deps.repository(inc.entity);
    const page = await child.listFromQuery({
      [inc.field]: record.id, limit: '500', ...(inc.sort ? { sort: inc.sort } : {}), ...(inc.expand?.length ? { expand: inc.expand.join(',') } : {}),
    }, { actor });
    await expandNested(deps, child, page.data, actor);
    includes[name] = page.data;
  }
  let totals: Record<string, unknown> = {};
  for (const provide of deps.totals(ctx.metadata.entity)) totals = { ...totals, ...(await provide({ record, includes })) };
  return { record, data: documentData(ctx, { ...record, ...includes }, await deps.company(), totals, deps.vatRounding) };
}

/** The data shape of every document, also used for previews from sample data. */
export function documentData(ctx: DocumentContext, record: Record<string, unknown>, company: CompanyProfile, totals: Record<string, unknown>, vatRounding?: VatRounding): Record<string, unknown> {
  return {
    record,
    totals,
    company,
    locale: ctx.metadata.locale,
    ...(vatRounding ? { vatRounding } : {}),
    document: {
      template: ctx.templateId,
      templateVersion: ctx.templateVersion,
      title: ctx.metadata.title,
      paper: ctx.metadata.paper,
      renderedAt: new Date().toISOString(),
      date: new Date().toISOString().slice(0, 10),
    },
  };
}
