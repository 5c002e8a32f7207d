// Entity writes add their events with their audit rows: see core/entities/write-journal.ts.

/** An event as subscribers receive it: `base.organizations.created` with its field changes. */
export interface KubikiEvent {
  id: number;
  type: string;
  plugin: string;
  entity: string;
  recordId: string;
  /** `{ changes: { field: { before, after } } }` */
  payload: Record<string, unknown>;
  actorId: string | null;
  createdAt: string;
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
