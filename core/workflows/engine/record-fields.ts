import type { EntityDefinition } from '../../entities/entity-definition.ts';

const MIDNIGHT_UTC = /^(\d{4}-\d{2}-\d{2})T00:00:00(?:\.0+)?Z$/;

/**
 * Expression results as a record's fields: a date in CEL is a timestamp at midnight UTC (`today()`,
 * `addDays(…)`), which a date field takes as that calendar date. The engine writes these fields and
 * the dry run checks them, so both see exactly the same values.
 */
export function recordFields(entity: EntityDefinition, fields: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...fields };
  for (const [name, value] of Object.entries(fields)) {
    const m = typeof value === 'string' && entity.fields.get(name)?.kind === 'date' ? MIDNIGHT_UTC.exec(value) : null;
    if (m) out[name] = m[1];
  }
  return out;
}
