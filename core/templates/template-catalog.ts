import fs from 'node:fs';
import path from 'node:path';
import { lazyValidator } from '../entities/ajv.ts';
import { KubikiError } from '../errors.ts';

/** What a template prints and how: `templates/<plugin>/<name>.json` beside the `.hbs`. */
export interface TemplateMetadata {
  title: string;
  /** The entity it prints, `plugin.plural`. */
  entity: string;
  paper: 'A4' | 'A5' | 'Letter';
  landscape?: boolean;
  locale: string;
  description?: string;
  /** Child records to load with the record, e.g. invoice lines: { lines: { entity, field, sort, expand } }. */
  include?: Record<string, { entity: string; field: string; sort?: string; expand?: string[] }>;
}

export interface ShippedTemplate {
  id: string;
  plugin: string;
  source: string;
  metadata: TemplateMetadata;
  file: string;
}

export const metadataSchema = {
  type: 'object',
  additionalProperties: false,
  required: ['title', 'entity'],
  properties: {
    title: { type: 'string', minLength: 1, maxLength: 200 },
    entity: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$' },
    paper: { enum: ['A4', 'A5', 'Letter'], default: 'A4' },
    landscape: { type: 'boolean' },
    locale: { enum: ['ru-RU', 'en-US'], default: 'ru-RU' },
    description: { type: 'string', maxLength: 2000 },
    include: {
      type: 'object',
      propertyNames: { pattern: '^[a-z][a-zA-Z0-9]*$' },
      additionalProperties: {
        type: 'object',
        additionalProperties: false,
        required: ['entity', 'field'],
        properties: {
          entity: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$' },
          field: { type: 'string' },
          sort: { type: 'string' },
          expand: { type: 'array', items: { type: 'string' } },
        },
      },
    },
  },
} as const;

const metadataValidator = lazyValidator<TemplateMetadata>(metadataSchema);

export const TEMPLATE_ID = /^[a-z][a-z0-9]*\.[a-z][a-z0-9-]{0,60}$/;

/** Checks metadata (filling in defaults); the error names the offending field. */
export function checkMetadata(raw: unknown, where: string): TemplateMetadata {
  const copy = JSON.parse(JSON.stringify(raw ?? null)) as unknown;
  const validateMetadata = metadataValidator();
  if (!validateMetadata(copy)) {
    const e = validateMetadata.errors?.[0];
    const field = `metadata${e?.instancePath.replace(/\//g, '.') ?? ''}`;
    throw new KubikiError('validation-failed', `${where}: ${field} ${e?.message ?? 'is invalid'}`, { issues: [{ field, rule: e?.keyword ?? 'schema', message: `${field} ${e?.message}` }] });
  }
  return copy;
}

/** Shipped defaults and shared partials found in the template folders. */
export function discoverTemplates(dirs: string[]): { templates: ShippedTemplate[]; partials: Record<string, string> } {
  const templates: ShippedTemplate[] = [];
  const partials: Record<string, string> = {};
  for (const root of dirs) {
    if (!fs.existsSync(root)) continue;
    for (const entry of fs.readdirSync(root, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (!entry.isDirectory()) continue;
      const dir = path.join(root, entry.name);
      for (const file of fs.readdirSync(dir).filter((f) => f.endsWith('.hbs')).sort()) {
        const name = file.slice(0, -4);
        const source = fs.readFileSync(path.join(dir, file), 'utf8');
        if (entry.name === 'partials') {
          partials[name] = source;
          continue;
        }
        const id = `${entry.name}.${name}`;
        if (!TEMPLATE_ID.test(id)) throw new KubikiError('config-invalid', `template ${path.join(dir, file)}: names are lower-case letters, digits and dashes`);
        const metaFile = path.join(dir, `${name}.json`);
        if (!fs.existsSync(metaFile)) throw new KubikiError('config-invalid', `template ${id}: ${metaFile} is missing (title, entity, paper, locale)`);
        let meta: unknown;
        try {
          meta = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
        } catch (error) {
          throw new KubikiError('config-invalid', `template ${id}: ${metaFile}: ${(error as Error).message}`);
        }
        let metadata: TemplateMetadata;
        try {
          metadata = checkMetadata(meta, `template ${id}`);
        } catch (error) {
          throw new KubikiError('config-invalid', (error as Error).message);
        }
        if (templates.some((t) => t.id === id)) throw new KubikiError('config-invalid', `template ${id} is found twice`);
        templates.push({ id, plugin: entry.name, source, metadata, file: path.join(dir, file) });
      }
    }
  }
  return { templates, partials };
}
