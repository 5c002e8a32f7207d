import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../core/auth/principal.ts';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

const pluginDirs = [SHIPPED_PLUGINS, FIXTURE_PLUGINS];
let seq = 0;
const widget = (prefix = 'EV') => ({ code: `${prefix}-${++seq}`, name: `Widget ${seq}` });

interface OutboxRow {
  id: number;
  event: string;
  record_id: string;
  created_at: Date | string;
  dispatched_at: Date | string | null;
  attempts: number;
  next_attempt_at: Date | string;
  last_error: string | null;
}

const outboxOf = (t: TestKubiki, recordId: string): Promise<OutboxRow[]> => t.k.db.table('kubiki_outbox').where({ record_id: recordId }).orderBy('id').select();
/** Milliseconds of a timestamptz, whether the driver hands it over as a Date or an ISO string. */
const ms = (v: Date | string | null): number => new Date(v as Date | string).getTime();
const dbNow = async (t: TestKubiki): Promise<number> => ms((await t.k.db.knex.raw('select now() as now')).rows[0].now);
const created = async (t: TestKubiki): Promise<number> => Number((await t.k.db.table('alpha_widget_stats').where({ key: 'widgets' }).first('created'))?.created ?? 0);

describe('outbox delivery', () => {
  let t: TestKubiki;
  beforeAll(async () => {
    t = await startKubiki({ pluginDirs, enable: ['alpha', 'beta'] });
    await t.k.dispatcher.drainAll(); // seeds of base
  });
  afterAll(() => t?.close());

  it('a write adds exactly one outbox row and one audit row, in the same transaction', async () => {
    const outboxBefore = await t.count('kubiki_outbox');
    const auditBefore = await t.count('kubiki_audit');
    const w = await t.api('POST', '/api/alpha/widgets', widget());
    expect(w.status).toBe(201);
    expect(await t.count('kubiki_outbox')).toBe(outboxBefore + 1);
    expect(await t.count('kubiki_audit')).toBe(auditBefore + 1);

    const [event] = await outboxOf(t, w.body.id);
    expect(event).toMatchObject({ event: 'alpha.widgets.created', dispatched_at: null, attempts: 0, last_error: null });
    const audit = await t.k.db.table('kubiki_audit').where({ record_id: w.body.id }).select();
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ action: 'created', plugin: 'alpha', entity: 'widgets' });
    // now() is the transaction's start time: equal timestamps (to the microsecond) mean one transaction.
    const { rows: [same] } = await t.k.db.knex.raw(
      'select (select at from ?? where record_id = ?) = (select created_at from ?? where record_id = ?) as same',
      [`${t.schema}.kubiki_audit`, w.body.id, `${t.schema}.kubiki_outbox`, w.body.id],
    );
    expect(same).toEqual({ same: true });

    const patched = await t.api('PATCH', `/api/alpha/widgets/${w.body.id}`, { quantity: 4 });
    expect(patched.status).toBe(200);
    const events = await outboxOf(t, w.body.id);
    expect(events.map((e) => e.event)).toEqual(['alpha.widgets.created', 'alpha.widgets.updated']);
    expect(await t.count('kubiki_audit', { record_id: w.body.id })).toBe(2);
  });

  it('a failed write leaves neither an outbox row nor an audit row', async () => {
    const w = await t.api('POST', '/api/alpha/widgets', widget());
    const outboxBefore = await t.count('kubiki_outbox');
    const auditBefore = await t.count('kubiki_audit');
    const dup = await t.api('POST', '/api/alpha/widgets', { code: w.body.code, name: 'Duplicate' });
    expect(dup.status).toBe(409);
    expect(dup.body.code).toBe('unique-violation');
    const other = await t.api('POST', '/api/alpha/widgets', widget());
    const clash = await t.api('PATCH', `/api/alpha/widgets/${other.body.id}`, { code: w.body.code });
    expect(clash.status).toBe(409);
    const invalid = await t.api('POST', '/api/alpha/widgets', { code: 'lower-case', name: 'Bad' });
    expect(invalid.status).toBe(400);
    expect(await t.count('kubiki_outbox')).toBe(outboxBefore + 1); // only `other`
    expect(await t.count('kubiki_audit')).toBe(auditBefore + 1);
    expect(await outboxOf(t, other.body.id)).toHaveLength(1);
  });

  it('drainAll delivers alpha.widgets.created to alpha exactly once per event and marks it dispatched', async () => {
    await t.k.dispatcher.drainAll();
    const before = (await t.api('GET', '/api/alpha/stats')).body.created as number;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await t.api('POST', '/api/alpha/widgets', widget())).body.id);
    expect((await t.api('GET', '/api/alpha/stats')).body.created).toBe(before); // nothing delivered yet
    await t.k.dispatcher.drainAll();
    expect((await t.api('GET', '/api/alpha/stats')).body.created).toBe(before + 3);
    for (const id of ids) {
      const [event] = await outboxOf(t, id);
      expect(event.dispatched_at).not.toBeNull();
      expect(event).toMatchObject({ attempts: 1, last_error: null });
    }
    await t.k.dispatcher.drainAll();
    expect((await t.api('GET', '/api/alpha/stats')).body.created).toBe(before + 3);
    expect(await t.k.db.table('kubiki_outbox').whereNull('dispatched_at').count({ n: '*' })).toEqual([{ n: 0 }]);
  });

  it('lists contributions to alpha.pricingRules only while beta is enabled', async () => {
    expect((await t.api('GET', '/api/alpha/stats')).body.pricingRules).toEqual(['beta-discount']);
    expect((await t.api('POST', '/api/plugins/beta/disable')).status).toBe(200);
    expect((await t.api('GET', '/api/alpha/stats')).body.pricingRules).toEqual([]);
    expect((await t.api('POST', '/api/plugins/beta/enable')).status).toBe(200);
    expect((await t.api('GET', '/api/alpha/stats')).body.pricingRules).toEqual(['beta-discount']);
  });

  it('does not deliver events to the subscribers of a disabled plugin', async () => {
    await t.k.dispatcher.drainAll();
    const before = await created(t);
    const w = await t.api('POST', '/api/alpha/widgets', widget());
    expect((await t.api('POST', '/api/plugins/beta/disable')).status).toBe(200);
    expect((await t.api('POST', '/api/plugins/alpha/disable')).status).toBe(200);
    // Plugin code and seeds still write through repositories while the plugin is off.
    await t.k.repository('alpha.widgets').create(widget(), { actor: SYSTEM });
    await t.k.dispatcher.drainAll();
    expect(await created(t)).toBe(before);
    const [event] = await outboxOf(t, w.body.id);
    expect(event.dispatched_at).not.toBeNull();

    expect((await t.api('POST', '/api/plugins/alpha/enable')).status).toBe(200);
    expect((await t.api('POST', '/api/plugins/beta/enable')).status).toBe(200);
    await t.k.dispatcher.drainAll();
    expect(await created(t)).toBe(before);
    await t.api('POST', '/api/alpha/widgets', widget());
    await t.k.dispatcher.drainAll();
    expect(await created(t)).toBe(before + 1);
  });

  it('a failing event does not hold back the others in its batch', async () => {
    await t.k.dispatcher.drainAll();
    const before = await created(t);
    const bad = await t.api('POST', '/api/alpha/widgets', widget('FAIL'));
    const good = await t.api('POST', '/api/alpha/widgets', widget());
    await t.k.dispatcher.drainAll();
    expect(await created(t)).toBe(before + 1);
    const [failed] = await outboxOf(t, bad.body.id);
    expect(failed.dispatched_at).toBeNull();
    expect(failed.last_error).toContain('refusing alpha.widgets.created');
    const [delivered] = await outboxOf(t, good.body.id);
    expect(delivered.dispatched_at).not.toBeNull();
    await t.k.db.table('kubiki_outbox').where({ id: failed.id }).update({ dispatched_at: t.k.db.knex.fn.now() }); // keep later tests clean
  });

  it('two instances draining one outbox concurrently deliver every event once', async () => {
    const t2 = await startKubiki({ pluginDirs, enable: ['alpha', 'beta'], schema: t.schema, adminToken: t.adminToken });
    try {
      await t.k.dispatcher.drainAll();
      const deliveries = new Map<number, string[]>();
      for (const [label, instance] of [['one', t], ['two', t2]] as const) {
        instance.k.dispatcher.subscribe('alpha', 'alpha.widgets.*', async (event) => {
          deliveries.set(event.id, [...(deliveries.get(event.id) ?? []), label]);
          await new Promise((resolve) => setTimeout(resolve, 1)); // let the other instance interleave
        });
      }
      const before = await created(t);
      const N = 60; // more than one batch of 50
      const ids: string[] = [];
      for (let i = 0; i < N; i++) {
        const r = await (i % 2 ? t2 : t).api('POST', '/api/alpha/widgets', widget('CC'));
        expect(r.status).toBe(201);
        ids.push(r.body.id);
      }
      await Promise.all([t.k.dispatcher.drainAll(), t2.k.dispatcher.drainAll(), t.k.dispatcher.drainAll(), t2.k.dispatcher.drainAll()]);

      const eventIds: number[] = await t.k.db.table('kubiki_outbox').whereIn('record_id', ids).orderBy('id').pluck('id');
      expect(eventIds).toHaveLength(N);
      expect([...deliveries.keys()].sort((a, b) => a - b)).toEqual(eventIds);
      for (const id of eventIds) expect(deliveries.get(id), `event ${id}`).toHaveLength(1);
      // alpha's own subscriber ran once per event too, on whichever instance leased it.
      expect(await created(t)).toBe(before + N);
      expect(await t.k.db.table('kubiki_outbox').whereIn('record_id', ids).whereNull('dispatched_at').count({ n: '*' })).toEqual([{ n: 0 }]);
      expect(await t.k.db.table('kubiki_outbox').whereIn('record_id', ids).max({ attempts: 'attempts' })).toEqual([{ attempts: 1 }]);
    } finally {
      await t2.close({ keepSchema: true });
    }
  });
});

describe('a failing subscriber', () => {
  let t: TestKubiki;
  beforeAll(async () => {
    t = await startKubiki({ pluginDirs, enable: ['alpha'], env: { KUBIKI_ALPHA_FAILEVENTS: 'yes' } });
    await t.k.dispatcher.drainAll();
  });
  afterAll(() => t?.close());

  it('leaves the event undispatched with attempts, last_error and a later next attempt', async () => {
    const w = await t.api('POST', '/api/alpha/widgets', widget('FAIL'));
    expect(w.status).toBe(201);
    await t.k.dispatcher.drainAll();
    let [event] = await outboxOf(t, w.body.id);
    expect(event.dispatched_at).toBeNull();
    expect(event.attempts).toBe(1);
    expect(event.last_error).toContain('refusing alpha.widgets.created');
    expect(ms(event.next_attempt_at)).toBeGreaterThan(await dbNow(t));
    expect((await t.api('GET', '/api/alpha/stats')).body.created).toBe(0);

    // Not due yet: another round leaves it alone.
    await t.k.dispatcher.drainAll();
    [event] = await outboxOf(t, w.body.id);
    expect(event.attempts).toBe(1);

    // Once due it is retried, and backs off further.
    await t.k.db.table('kubiki_outbox').where({ id: event.id }).update({ next_attempt_at: t.k.db.knex.raw("now() - interval '1 second'") });
    await t.k.dispatcher.drainAll();
    const [retried] = await outboxOf(t, w.body.id);
    expect(retried).toMatchObject({ dispatched_at: null, attempts: 2 });
    expect(retried.last_error).toContain('refusing alpha.widgets.created');
    expect(ms(retried.next_attempt_at)).toBeGreaterThan(await dbNow(t) + 2_500);
  });

  it('keeps an event nobody listens to as history, already delivered', async () => {
    const org = await t.api('POST', '/api/base/organizations', { name: 'Not a widget' });
    expect(org.status).toBe(201);
    const [event] = await outboxOf(t, org.body.id);
    expect(event).toMatchObject({ event: 'base.organizations.created', attempts: 0, last_error: null });
    expect(event.dispatched_at).not.toBeNull();
  });
});
