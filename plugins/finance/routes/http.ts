import { KubikiError, type ApiRecord, type RouteSpec } from 'kubiki/plugin';

// What several finance routes do with the HTTP exchange itself (headers, statuses).

/** The Koa context a route handler gets as its second argument. */
export type Http = Parameters<RouteSpec['handler']>[1];

export const requestIdOf = (http: Http): string | undefined => (http.state as { requestId?: string }).requestId;

/** `If-Match: "3"` (or W/"3", or 3) → 3; no header → no version check. */
export function ifMatch(http: Http): number | undefined {
  const h = http.get('if-match');
  if (!h) return undefined;
  const m = /^(?:W\/)?"?([0-9]+)"?$/.exec(h.trim());
  if (!m) throw new KubikiError('precondition-malformed', 'If-Match must be a record version such as "3"');
  return Number(m[1]);
}

/** 201 with the record, its Location and ETag. */
export function created(http: Http, path: string, record: ApiRecord): void {
  http.status = 201;
  http.set('Location', `/api/finance/${path}/${record.id}`);
  if (record.version !== undefined) http.set('ETag', `"${record.version}"`);
  http.body = record;
}

/** 200 with the record and its ETag. */
export function changed(http: Http, record: ApiRecord): void {
  http.set('ETag', `"${record.version}"`);
  http.body = record;
}

/** 204: done, no body. */
export const noContent = { description: 'Done; no body' };

/**
 * The success answer of a route that refuses every call (a posted entry is never patched): the
 * route contract wants one, and this one says it never comes.
 */
export const never = (why: string): { description: string } => ({ description: `Never answered: ${why}` });

/** A body a refusing route accepts as it comes, so that the refusal, not a shape error, is the answer. */
export const anyBody = { description: 'Whatever is sent: the call is refused all the same' };

/** An entity's PATCH body: any of its fields, checked by its repository (custom fields included). */
export const patchBody = (entity: string): { type: 'object'; additionalProperties: true; description: string } => ({
  type: 'object', additionalProperties: true,
  description: `Any fields of the ${entity} input; null clears an optional one. Checked by the ${entity} repository (custom fields included).`,
});
