import type { Database, Executor } from '../db/database.ts';
import type { Principal } from '../auth/principal.ts';

/** An event as subscribers receive it: `base.organizations.created` with the record and its changes. */
export interface KubikiEvent {
  id: number;
  type: string;
  plugin: string;
  entity: string;
  recordId: string;
  payload: Record<string, unknown>;
  actorId: string | null;
  createdAt: string;
}

/** Adds an event to the outbox in the caller's transaction: it exists exactly when the write does. */
export async function writeEvent(db: Database, trx: Executor, event: {
  type: string; plugin: string; entity: string; recordId: string; payload: Record<string, unknown>; actor: Principal;
}): Promise<void> {
  await db.table('kubiki_outbox', trx).insert({
    event: event.type,
    plugin: event.plugin,
    entity: event.entity,
    record_id: event.recordId,
    payload: JSON.stringify(event.payload),
    actor_id: event.actor.userId,
  });
}

export function rowToEvent(r: Record<string, unknown>): KubikiEvent {
  return {
    id: Number(r.id),
    type: String(r.event),
    plugin: String(r.plugin),
    entity: String(r.entity),
    recordId: String(r.record_id),
    payload: r.payload as Record<string, unknown>,
    actorId: (r.actor_id as string | null) ?? null,
    createdAt: String(r.created_at),
  };
}
