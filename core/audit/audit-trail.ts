import type { Database, Executor } from '../db/database.ts';
import type { Principal } from '../auth/principal.ts';

export type WriteAction = 'created' | 'updated' | 'deleted';
export type FieldChanges = Record<string, { before: unknown; after: unknown }>;

export interface AuditEntry {
  id: number;
  at: string;
  actorId: string | null;
  actor: string;
  action: string;
  entity: string;
  recordId: string;
  changes: FieldChanges;
  requestId: string | null;
}

/** One audit row per write; called inside the write's transaction so both commit or neither does. */
export async function writeAudit(db: Database, trx: Executor, entry: {
  actor: Principal; action: string; plugin: string; entity: string; recordId: string; changes: FieldChanges; requestId?: string;
}): Promise<void> {
  await db.table('kubiki_audit', trx).insert({
    actor_id: entry.actor.userId,
    actor: entry.actor.username,
    action: entry.action,
    plugin: entry.plugin,
    entity: entry.entity,
    record_id: entry.recordId,
    changes: JSON.stringify(entry.changes),
    request_id: entry.requestId ?? null,
  });
}

export interface AuditQuery {
  plugin?: string;
  entity?: string;
  recordId?: string;
  beforeId?: number;
  limit: number;
}

export async function readAudit(db: Database, query: AuditQuery): Promise<AuditEntry[]> {
  const qb = db.table('kubiki_audit').orderBy('id', 'desc').limit(query.limit);
  if (query.plugin) qb.where({ plugin: query.plugin });
  if (query.entity) qb.where({ entity: query.entity });
  if (query.recordId) qb.where({ record_id: query.recordId });
  if (query.beforeId !== undefined) qb.where('id', '<', query.beforeId);
  const rows: Record<string, unknown>[] = await qb.select();
  return rows.map((r) => ({
    id: Number(r.id),
    at: String(r.at),
    actorId: (r.actor_id as string | null) ?? null,
    actor: String(r.actor),
    action: String(r.action),
    entity: `${r.plugin}.${r.entity}`,
    recordId: String(r.record_id),
    changes: r.changes as FieldChanges,
    requestId: (r.request_id as string | null) ?? null,
  }));
}
