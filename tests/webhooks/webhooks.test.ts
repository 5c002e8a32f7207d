// Outgoing webhooks through REST: subscriptions, Standard Webhooks signatures checked by the
// reference verifier (npm `standardwebhooks`), retries on the schedule with jitter, 410, Retry-After,
// order per record, the delivery log, replay, secret rotation, and deliveries surviving a restart.
// Time is a hand-moved clock: no test sleeps through a back-off.
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { HandClock, seeded, settle, startReceiver, type Receiver } from './webhook-helpers.ts';

const SECOND = 1000;
const MINUTE = 60 * SECOND;

let t: TestKubiki;
let receiver: Receiver;
let clock: HandClock;
beforeAll(async () => {
  t = await startKubiki({ config: { workflowHttpAllow: ['127.0.0.1'] } });
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
  await t?.close();
});
beforeEach(async () => {
  clock = new HandClock();
  t.k.webhooks.clock = clock;
  receiver.received.length = 0;
  receiver.answer = () => ({ status: 200 });
  // Each test starts with no subscriptions.
  for (const w of (await t.api('GET', '/api/webhooks')).body.data) await t.api('DELETE', `/api/webhooks/${w.id}`);
});

async function subscribe(eventTypes: string[], extra: Record<string, unknown> = {}): Promise<{ id: string; secret: string }> {
  const res = await t.api('POST', '/api/webhooks', { url: receiver.url, eventTypes, ...extra });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return { id: res.body.id, secret: res.body.secret };
}

let seq = 0;
async function organization(name = `Org ${++seq}`): Promise<string> {
  const res = await t.api('POST', '/api/base/organizations', { name });
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body.id;
}

const rename = async (id: string, name: string) => expect((await t.api('PATCH', `/api/base/organizations/${id}`, { name })).status).toBe(200);

const deliveries = async (webhookId: string, query = '') => (await t.api('GET', `/api/webhooks/${webhookId}/deliveries?limit=500${query}`)).body.data as any[];

describe('subscriptions', () => {
  it('are created with a secret shown once, never again; listed, changed, deleted; every change audited', async () => {
    const created = await t.api('POST', '/api/webhooks', { url: receiver.url, eventTypes: ['crm.deals.updated', 'finance.*'], description: 'ERP' });
    expect(created.status).toBe(201);
    expect(created.headers.get('location')).toBe(`/api/webhooks/${created.body.id}`);
    expect(created.body).toMatchObject({ url: receiver.url, eventTypes: ['crm.deals.updated', 'finance.*'], description: 'ERP', active: true, disabledReason: null });
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    const { id } = created.body;

    const listed = await t.api('GET', '/api/webhooks');
    expect(listed.body.data).toHaveLength(1);
    expect(JSON.stringify(listed.body)).not.toContain(created.body.secret.slice(6));
    const got = await t.api('GET', `/api/webhooks/${id}`);
    expect(got.body).not.toHaveProperty('secret');
    // Stored encrypted: the database does not hold it in the clear either.
    const row = await t.k.db.table('kubiki_webhooks').where({ id }).first();
    expect(row.secret).toMatch(/^v1\./);
    expect(row.secret).not.toContain(created.body.secret.slice(6));

    const patched = await t.api('PATCH', `/api/webhooks/${id}`, { eventTypes: ['base.*'], active: false });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({ eventTypes: ['base.*'], active: false });
    expect((await t.api('DELETE', `/api/webhooks/${id}`)).status).toBe(204);
    expect((await t.api('GET', `/api/webhooks/${id}`)).status).toBe(404);
    const audit = await t.k.db.table('kubiki_audit').where({ plugin: 'core', entity: 'webhooks', record_id: id }).orderBy('id').pluck('action');
    expect(audit).toEqual(['created', 'updated', 'deleted']);
    expect(JSON.stringify(await t.k.db.table('kubiki_audit').where({ record_id: id }))).not.toContain(created.body.secret.slice(6));
  });

  it('refuse hosts off the workflow HTTP allow-list, bad URLs and bad patterns; need core.webhooks.manage', async () => {
    const off = await t.api('POST', '/api/webhooks', { url: 'https://evil.example.com/hook', eventTypes: ['*'] });
    expect(off.status).toBe(403);
    expect(off.body).toMatchObject({ code: 'http-not-allowed', field: 'url' });
    expect((await t.api('POST', '/api/webhooks', { url: 'ftp://127.0.0.1/x', eventTypes: ['*'] })).body).toMatchObject({ status: 400, field: 'url' });
    expect((await t.api('POST', '/api/webhooks', { url: 'http://u:p@127.0.0.1/x', eventTypes: ['*'] })).body).toMatchObject({ status: 400, field: 'url', rule: 'credentials' });
    expect((await t.api('POST', '/api/webhooks', { url: receiver.url, eventTypes: ['crm..deals'] })).body).toMatchObject({ status: 400, code: 'validation-failed' });
    expect((await t.api('POST', '/api/webhooks', { url: receiver.url, eventTypes: ['*'], secret: 'not-a-secret' })).body).toMatchObject({ status: 400, code: 'validation-failed' });
    const reader = await t.userWith(['core.webhooks.read']);
    expect((await t.api('GET', '/api/webhooks', undefined, { token: reader.token })).status).toBe(200);
    const refused = await t.api('POST', '/api/webhooks', { url: receiver.url, eventTypes: ['*'] }, { token: reader.token });
    expect(refused.body).toMatchObject({ status: 403, permission: 'core.webhooks.manage' });
    const nobody = await t.userWith([]);
    expect((await t.api('GET', '/api/webhooks', undefined, { token: nobody.token })).body).toMatchObject({ status: 403, permission: 'core.webhooks.read' });
    expect(await t.count('kubiki_webhooks')).toBe(0);
  });
});

describe('signed deliveries', () => {
  it('are accepted by the Standard Webhooks reference verifier, with the event in the body', async () => {
    const { secret } = await subscribe(['base.organizations.created']);
    const id = await organization('Signed LLC');
    await settle(t);
    expect(receiver.received).toHaveLength(1);
    const [got] = receiver.received;
    const verified = new Webhook(secret).verify(got.body, got.headers) as Record<string, any>;
    expect(verified).toMatchObject({ type: 'base.organizations.created', data: { entity: 'base.organizations', id, by: 'admin', changes: { name: { before: null, after: 'Signed LLC' } } } });
    expect(got.id).toMatch(/^msg_[0-9a-f]{32}$/);
    expect(got.signature).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(got.headers['content-type']).toBe('application/json');
    // Another secret does not verify it, nor does a changed body.
    expect(() => new Webhook(`whsec_${Buffer.alloc(32, 7).toString('base64')}`).verify(got.body, got.headers)).toThrow();
    expect(() => new Webhook(secret).verify(got.body.replace('Signed', 'Forged'), got.headers)).toThrow();
  });

  it('go to the subscriptions whose patterns match: exact types, one-segment and trailing wildcards', async () => {
    const exact = await subscribe(['base.organizations.updated']);
    const plugin = await subscribe(['base.*']);
    const middle = await subscribe(['*.organizations.created']);
    const other = await subscribe(['crm.*']);
    const id = await organization();
    await rename(id, 'Renamed');
    await settle(t);
    const types = async (w: { id: string }) => (await deliveries(w.id)).map((d) => d.eventType).sort();
    expect(await types(exact)).toEqual(['base.organizations.updated']);
    expect(await types(plugin)).toEqual(['base.organizations.created', 'base.organizations.updated']);
    expect(await types(middle)).toEqual(['base.organizations.created']);
    expect(await types(other)).toEqual([]);
    expect(receiver.accepted()).toHaveLength(4);
  });

  it('take a user-supplied whsec_ secret', async () => {
    const secret = `whsec_${Buffer.alloc(24, 3).toString('base64')}`;
    const made = await subscribe(['base.organizations.created'], { secret });
    expect(made.secret).toBe(secret);
    await organization();
    await settle(t);
    expect(() => new Webhook(secret).verify(receiver.received[0].body, receiver.received[0].headers)).not.toThrow();
  });
});

describe('retries', () => {
  it('back off 5 s, 5 min, 30 min, 2 h… with ±20% jitter until the receiver takes it; the same webhook-id every time', async () => {
    const { id: webhookId, secret } = await subscribe(['base.organizations.created']);
    receiver.answer = (_r, n) => ({ status: n < 4 ? 500 : 204 });
    await organization();
    await settle(t);
    expect(receiver.received).toHaveLength(1); // at once
    const expected = [5 * SECOND, 5 * MINUTE, 30 * MINUTE, 120 * MINUTE];
    for (const [i, base] of expected.entries()) {
      const [d] = await deliveries(webhookId);
      expect(d).toMatchObject({ status: 'pending', attempts: i + 1, lastStatus: 500 });
      const wait = Date.parse(d.nextAttemptAt) - clock.ms;
      expect(wait).toBeGreaterThanOrEqual(base * 0.8 - 1);
      expect(wait).toBeLessThanOrEqual(base * 1.2 + 1);
      clock.advance(wait - 1);
      await settle(t);
      expect(receiver.received).toHaveLength(i + 1); // not before it is due
      clock.advance(1);
      await settle(t);
      expect(receiver.received).toHaveLength(i + 2);
    }
    const [done] = await deliveries(webhookId);
    expect(done).toMatchObject({ status: 'delivered', attempts: 5, lastStatus: 204, nextAttemptAt: null });
    expect(new Set(receiver.received.map((r) => r.id)).size).toBe(1);
    for (const r of receiver.received) expect(() => new Webhook(secret).verify(r.body, r.headers)).not.toThrow();
    const detail = await t.api('GET', `/api/webhooks/${webhookId}/deliveries/${done.id}`);
    expect(detail.body.attemptLog.map((a: { status: number }) => a.status)).toEqual([500, 500, 500, 500, 204]);
    expect(detail.body.payload).toMatchObject({ type: 'base.organizations.created' });
  });

  it('deliver everything exactly once to a receiver failing at random (30%), in order per record', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.*']);
    const random = seeded(42);
    receiver.answer = () => (random() < 0.3 ? { status: random() < 0.5 ? 500 : 502 } : { status: 200 });
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const id = await organization();
      ids.push(id);
      await rename(id, `Org ${i} v2`);
      await rename(id, `Org ${i} v3`);
    }
    for (let round = 0; round < 40; round++) {
      await settle(t);
      clock.advance(13 * 3600 * SECOND); // past the longest step of the schedule, jitter included
    }
    await settle(t);
    const accepted = receiver.accepted();
    expect(accepted).toHaveLength(30);
    expect(new Set(accepted.map((r) => r.id)).size).toBe(30);
    expect(receiver.received.length).toBeGreaterThan(30); // some failed first
    for (const [i, id] of ids.entries()) {
      const seen = accepted.filter((r) => r.json.data.id === id);
      expect(seen.map((r) => r.json.type)).toEqual(['base.organizations.created', 'base.organizations.updated', 'base.organizations.updated']);
      expect(seen.slice(1).map((r) => r.json.data.changes.name.after)).toEqual([`Org ${i} v2`, `Org ${i} v3`]);
    }
    expect((await deliveries(webhookId)).every((d) => d.status === 'delivered')).toBe(true);
  });

  it('give up when the schedule runs out (failed), and say so', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.created']);
    receiver.answer = () => ({ status: 500, body: 'down for maintenance' });
    await organization();
    for (let i = 0; i < 14; i++) {
      await settle(t);
      const [open] = await deliveries(webhookId);
      if (open.status !== 'pending') break;
      clock.ms = Date.parse(open.nextAttemptAt);
    }
    const [d] = await deliveries(webhookId);
    expect(d).toMatchObject({ status: 'failed', attempts: 12, nextAttemptAt: null });
    expect(d.lastError).toMatch(/gave up after 12 attempts/);
    const detail = await t.api('GET', `/api/webhooks/${webhookId}/deliveries/${d.id}`);
    expect(detail.body.attemptLog).toHaveLength(12);
    expect(detail.body.attemptLog[0]).toMatchObject({ status: 500, response: 'down for maintenance' });
    // The total wait: about three days.
    const span = Date.parse(detail.body.attemptLog[11].at) - Date.parse(detail.body.attemptLog[0].at);
    expect(span / 86_400_000).toBeGreaterThan(2);
    expect(span / 86_400_000).toBeLessThan(3.5);
  });

  it('honour Retry-After on 429 (seconds) and 503 (an HTTP date)', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.created']);
    receiver.answer = (_r, n) => (n === 0 ? { status: 429, headers: { 'retry-after': '120' } } : n === 1 ? { status: 503, headers: { 'retry-after': new Date(clock.ms + 10 * MINUTE).toUTCString() } } : { status: 200 });
    await organization();
    await settle(t);
    let [d] = await deliveries(webhookId);
    expect(Date.parse(d.nextAttemptAt) - clock.ms).toBe(120 * SECOND);
    clock.advance(119 * SECOND);
    await settle(t);
    expect(receiver.received).toHaveLength(1);
    clock.advance(SECOND);
    await settle(t);
    expect(receiver.received).toHaveLength(2);
    [d] = await deliveries(webhookId);
    // An HTTP date has a resolution of one second.
    expect(Math.abs(Date.parse(d.nextAttemptAt) - (clock.ms + 10 * MINUTE))).toBeLessThan(1000);
    clock.advance(10 * MINUTE);
    await settle(t);
    expect((await deliveries(webhookId))[0]).toMatchObject({ status: 'delivered', attempts: 3 });
  });
});

describe('410 Gone', () => {
  it('switches the subscription off; nothing more goes there until it is switched on again, then what waited goes in order', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.*']);
    receiver.answer = () => ({ status: 410 });
    const id = await organization();
    await settle(t);
    expect(receiver.received).toHaveLength(1);
    const off = await t.api('GET', `/api/webhooks/${webhookId}`);
    expect(off.body).toMatchObject({ active: false, disabledReason: expect.stringMatching(/410 Gone/) });
    const disabled = await t.k.db.table('kubiki_audit').where({ entity: 'webhooks', record_id: webhookId, action: 'disabled' }).count('* as n').first();
    expect(Number(disabled.n)).toBe(1);
    await rename(id, 'While off');
    clock.advance(3 * 3600 * SECOND);
    await settle(t);
    expect(receiver.received).toHaveLength(1);
    const [waiting] = await deliveries(webhookId);
    expect(waiting).toMatchObject({ status: 'pending', lastStatus: 410 });

    receiver.answer = () => ({ status: 200 });
    const on = await t.api('PATCH', `/api/webhooks/${webhookId}`, { active: true });
    expect(on.body).toMatchObject({ active: true, disabledReason: null });
    await rename(id, 'Back on');
    await settle(t);
    expect(receiver.accepted().map((r) => r.json.type)).toEqual(['base.organizations.created', 'base.organizations.updated']);
    expect(receiver.accepted()[1].json.data.changes.name.after).toBe('Back on');
    // Made while the subscription was off, the rename's event made no delivery.
    expect((await deliveries(webhookId)).map((d) => d.status)).toEqual(['delivered', 'delivered']);
  });
});

describe('order per record', () => {
  it('holds a record\'s later events behind one being retried, while other records go on', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.*']);
    const slowId = await organization('Slow');
    receiver.answer = (r) => ({ status: r.json.data.id === slowId && r.json.type.endsWith('.created') && receiver.received.length < 3 ? 500 : 200 });
    await rename(slowId, 'Slow v2');
    const fastId = await organization('Fast');
    await rename(fastId, 'Fast v2');
    await settle(t);
    const fast = receiver.accepted().filter((r) => r.json.data.id === fastId);
    expect(fast.map((r) => r.json.type)).toEqual(['base.organizations.created', 'base.organizations.updated']);
    expect(receiver.accepted().filter((r) => r.json.data.id === slowId)).toEqual([]);
    // The create is retried; the rename waits behind it, queued.
    expect((await deliveries(webhookId, '&status=pending')).map((d) => d.eventType)).toEqual(['base.organizations.created']);
    expect((await deliveries(webhookId, '&status=queued')).map((d) => d.eventType)).toEqual(['base.organizations.updated']);
    for (let i = 0; i < 3; i++) {
      clock.advance(6 * MINUTE);
      await settle(t);
    }
    const slow = receiver.accepted().filter((r) => r.json.data.id === slowId);
    expect(slow.map((r) => r.json.data.changes.name.after)).toEqual(['Slow', 'Slow v2']);
  });

  it('also waits for an earlier event of the record still in the outbox (being fanned out elsewhere)', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.*']);
    const id = await organization('First');
    await settle(t);
    await rename(id, 'Second'); // its event waits in the outbox, as if another process had leased it
    // A later event of the record, already fanned out (by that other process).
    const [later] = await t.k.db.table('kubiki_outbox').insert({
      event: 'base.organizations.updated', plugin: 'base', entity: 'organizations', record_id: id, payload: JSON.stringify({ changes: {} }), dispatched_at: new Date(),
    }).returning('id');
    const payload = JSON.stringify({ type: 'base.organizations.updated', timestamp: new Date().toISOString(), data: { entity: 'base.organizations', id, eventId: Number(later.id), changes: { name: { before: 'Second', after: 'Third' } }, by: 'admin' } });
    await t.k.webhooks.queue.fanOut([{ webhookId, eventId: Number(later.id), eventType: 'base.organizations.updated', entity: 'base.organizations', recordId: id, payload }], clock.now());
    expect(await t.k.webhooks.deliverDue()).toBe(0);
    await settle(t);
    expect(receiver.accepted().map((r) => r.json.data.changes.name.after)).toEqual(['First', 'Second', 'Third']);
  });
});

describe('the delivery log and replay', () => {
  it('lists deliveries newest first with filters and pages; replays one, many, and refuses open ones', async () => {
    const { id: webhookId, secret } = await subscribe(['base.organizations.*']);
    const a = await organization('A');
    await organization('B');
    await rename(a, 'A2');
    await settle(t);
    const log = await deliveries(webhookId);
    expect(log.map((d) => d.eventType)).toEqual(['base.organizations.updated', 'base.organizations.created', 'base.organizations.created']);
    expect((await deliveries(webhookId, `&recordId=${a}`)).length).toBe(2);
    expect((await deliveries(webhookId, '&eventType=base.organizations.updated')).length).toBe(1);
    const page1 = await t.api('GET', `/api/webhooks/${webhookId}/deliveries?limit=2`);
    expect(page1.body.data).toHaveLength(2);
    const page2 = await t.api('GET', `/api/webhooks/${webhookId}/deliveries?limit=2&cursor=${page1.body.next}`);
    expect(page2.body).toMatchObject({ data: [{ id: log[2].id }], next: null });

    const one = await t.api('POST', `/api/webhooks/${webhookId}/deliveries/${log[0].id}/replay`);
    expect(one.status).toBe(202);
    expect(one.body).toMatchObject({ status: 'pending', replayOf: log[0].id, messageId: log[0].messageId, attempts: 0 });
    await settle(t);
    expect(receiver.accepted()).toHaveLength(4);
    const again = receiver.accepted()[3];
    expect(again.id).toBe(log[0].messageId);
    expect(again.body).toBe(receiver.accepted().find((r) => r.id === log[0].messageId)!.body);
    expect(() => new Webhook(secret).verify(again.body, again.headers)).not.toThrow();

    const many = await t.api('POST', `/api/webhooks/${webhookId}/replay`, { since: new Date(Date.now() - 3600_000).toISOString(), status: 'delivered' });
    expect(many.status).toBe(202);
    expect(many.body.replayed).toBe(4);
    // Open deliveries are not replayed (the four just made are pending).
    const open = await t.api('POST', `/api/webhooks/${webhookId}/deliveries/${many.body.data[0].id}/replay`);
    expect(open.body).toMatchObject({ status: 409, code: 'conflict' });
    await settle(t);
    expect(receiver.accepted()).toHaveLength(8);
    const byIds = await t.api('POST', `/api/webhooks/${webhookId}/replay`, { deliveryIds: [log[1].id, log[2].id] });
    expect(byIds.body.replayed).toBe(2);
    expect((await t.api('POST', `/api/webhooks/${webhookId}/replay`, {})).status).toBe(400);
    expect((await t.api('POST', `/api/webhooks/${webhookId}/deliveries/${webhookId}/replay`)).status).toBe(404);
    const audit = await t.k.db.table('kubiki_audit').where({ entity: 'webhooks', record_id: webhookId, action: 'replayed' }).count('* as n').first();
    expect(Number(audit.n)).toBe(3);
  });
});

describe('secret rotation', () => {
  it('signs with both secrets during the overlap, then with the new one only', async () => {
    const { id: webhookId, secret: old } = await subscribe(['base.organizations.created']);
    const rotated = await t.api('POST', `/api/webhooks/${webhookId}/rotate-secret`, { overlapSeconds: 3600 });
    expect(rotated.status).toBe(200);
    const fresh = rotated.body.secret as string;
    expect(fresh).not.toBe(old);
    expect(Date.parse(rotated.body.previousSecretExpiresAt) - clock.ms).toBe(3600 * SECOND);
    await organization();
    await settle(t);
    const during = receiver.received[0];
    expect(during.signature.split(' ')).toHaveLength(2);
    expect(() => new Webhook(old).verify(during.body, during.headers)).not.toThrow();
    expect(() => new Webhook(fresh).verify(during.body, during.headers)).not.toThrow();

    clock.advance(3601 * SECOND);
    await organization();
    await settle(t);
    const after = receiver.received[1];
    expect(after.signature.split(' ')).toHaveLength(1);
    expect(() => new Webhook(fresh).verify(after.body, after.headers)).not.toThrow();
    expect(() => new Webhook(old).verify(after.body, after.headers)).toThrow();

    // overlapSeconds 0: the previous secret stops at once.
    const now = await t.api('POST', `/api/webhooks/${webhookId}/rotate-secret`, { overlapSeconds: 0 });
    expect(now.body.previousSecretExpiresAt).toBeNull();
    await organization();
    await settle(t);
    expect(() => new Webhook(fresh).verify(receiver.received[2].body, receiver.received[2].headers)).toThrow();
    expect(() => new Webhook(now.body.secret).verify(receiver.received[2].body, receiver.received[2].headers)).not.toThrow();
  });
});

describe('durability', () => {
  it('a delivery claimed by a worker that died goes out once its lease lapses', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.created']);
    await organization();
    await t.k.dispatcher.drainAll();
    const lost = await t.k.webhooks.queue.claim(10, '00000000-0000-4000-8000-000000000001', clock.now(), 60 * SECOND);
    expect(lost).toHaveLength(1);
    expect(await t.k.webhooks.deliverDue()).toBe(0);
    clock.advance(60 * SECOND);
    expect(await t.k.webhooks.deliverDue()).toBe(1);
    expect((await deliveries(webhookId))[0]).toMatchObject({ status: 'delivered', attempts: 2 });
    // The dead worker's late answer records nothing.
    expect((await t.k.webhooks.queue.finish(t.k.db.knex, lost[0], { kind: 'delivered', status: 200, durationMs: 1, response: null }, clock.now())).recorded).toBe(false);
  });

  it('pending deliveries survive a restart and go out from the next process', async () => {
    const first = await startKubiki({ config: { workflowHttpAllow: ['127.0.0.1'] } });
    const made = await first.api('POST', '/api/webhooks', { url: receiver.url, eventTypes: ['base.organizations.created'] });
    await first.api('POST', '/api/base/organizations', { name: 'Before restart' });
    await first.k.dispatcher.drainAll();
    await first.close({ keepSchema: true });
    const second = await startKubiki({ schema: first.schema, adminToken: first.adminToken, config: { workflowHttpAllow: ['127.0.0.1'] } });
    try {
      expect(await second.k.webhooks.deliverDue()).toBe(1);
      expect(receiver.accepted().map((r) => r.json.data.changes.name.after)).toEqual(['Before restart']);
      expect((await second.api('GET', `/api/webhooks/${made.body.id}/deliveries`)).body.data[0].status).toBe('delivered');
    } finally {
      await second.close();
    }
  });

  it('an outbox event seen twice makes one delivery', async () => {
    const { id: webhookId } = await subscribe(['base.organizations.created']);
    await organization();
    const [event] = await t.k.db.table('kubiki_outbox').whereNull('dispatched_at').select('*');
    await t.k.dispatcher.drainAll();
    await t.k.db.table('kubiki_outbox').where({ id: event.id }).update({ dispatched_at: null, next_attempt_at: new Date(Date.now() - 1000) });
    await settle(t);
    expect(await deliveries(webhookId)).toHaveLength(1);
    expect(receiver.received).toHaveLength(1);
  });
});
