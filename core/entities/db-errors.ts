import { KubikiError, isKubikiError, fieldError } from '../errors.ts';
import type { EntityDefinition } from './entity-definition.ts';
import { indexName } from './entity-table.ts';

interface PgError {
  code?: string;
  constraint?: string;
  table?: string;
  detail?: string;
}

const pgError = (e: unknown): PgError | undefined => (typeof e === 'object' && e !== null && 'code' in e ? (e as PgError) : undefined);

/** PostgreSQL constraint errors → the client errors they mean, naming the field. Others pass through. */
export function translateDbError(error: unknown, entity: EntityDefinition): unknown {
  if (isKubikiError(error)) return error;
  const e = pgError(error);
  if (!e?.code) return error;
  const fieldOf = (suffix: 'uniq' | 'fk') =>
    [...entity.fields.values()].find((f) => e.constraint === indexName(entity.table, f.name, suffix))?.name;
  if (e.code === '23505') {
    const field = fieldOf('uniq') ?? (e.constraint?.endsWith('_pkey') ? 'id' : '');
    return fieldError('unique-violation', field, 'x-unique', `another ${entity.qualifiedName} record already has this ${field || 'value'}`);
  }
  if (e.code === '23503') {
    const field = e.table === entity.table ? fieldOf('fk') : undefined;
    if (field) {
      const ref = entity.fields.get(field)?.ref;
      return fieldError('reference-not-found', field, 'x-ref', `${field} must be the id of an existing ${ref} record`);
    }
    return new KubikiError('referenced', `${entity.qualifiedName} record is still referenced (${e.table ?? 'another table'})`);
  }
  if (e.code === '40P01' || e.code === '40001') {
    return new KubikiError('conflict', 'the write collided with a concurrent one; retry it', { cause: error });
  }
  return error;
}
