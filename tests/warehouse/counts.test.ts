// Stock counts: expected quantities frozen at start, counted ones entered, differences reviewed
// (moves during the count shown and not undone), adjustments posted after the approval workflow
// (plugins/warehouse/workflows/count-approval.yaml) or the count sent back on rejection.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { INVENTORY_LOSS, availability, ok, product, receive, ship, snapshot, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
let manager: { token: string; id: string };
let keeper: { token: string; id: string };
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  w = await warehouse(t, { zones: 2, bins: 2 });
  const user = async (name: string, role: string) => {
    const u = ok(await t.api('POST', '/api/users', { username: name, roles: [role] }), 201);
    const token = ok(await t.api('POST', `/api/users/${u.id}/tokens`, { name: 'test' }), 201);
    return { token: token.token as string, id: u.id as string };
  };
  manager = await user('stockmanager', 'stock-manager');
  keeper = await user('storekeeper1', 'storekeeper');
}, 180_000);
afterAll(() => t?.close());

const tasksOf = async (who: { token: string }) => ok(await t.api('GET', '/api/tasks', undefined, { token: who.token })).data as { id: string; subject: string; instanceId: string }[];

describe('stock counts', () => {
  it('freezes, counts, reviews, and posts the differences once a stock-manager approves', async () => {
    const a = await product(t);
    const b = await product(t);
    const c = await product(t);
    await receive(t, a, w.bins[0], '10', '3.00');
    await receive(t, b, w.bins[1], '5', '2.00');
    await receive(t, c, w.bins[2], '7', '1.00'); // zone 1: not counted
    const as = { token: keeper.token };
    const count = ok(await t.api('POST', '/api/warehouse/counts', { reference: 'INV-Z0', location: w.zones[0] }, as), 201);
    expect(count.status).toBe('draft');
    const started = ok(await t.api('POST', `/api/warehouse/counts/${count.id}/start`, undefined, as));
    expect(started).toMatchObject({ status: 'counting', startSeq: expect.any(Number) });
    const lines = ok(await t.api('GET', `/api/warehouse/countLines?count=${count.id}&limit=100`)).data;
    expect(lines.map((l: { product: string; location: string; expected: string }) => [l.product, l.location, l.expected]).sort()).toEqual([[a, w.bins[0], '10.000'], [b, w.bins[1], '5.000']].sort());
    // During the count 2 of A are shipped: the count is of the stock as it was at the start.
    await ship(t, a, w.bins[0], '2');
    // Counted: A 9 (−1), B 6 (+1), and C found in bin 1 where none was expected (+2).
    const entered = ok(await t.api('POST', `/api/warehouse/counts/${count.id}/lines`, { lines: [
      { product: a, location: w.bins[0], counted: '9' },
      { product: b, location: w.bins[1], counted: '6' },
      { product: c, location: w.bins[1], counted: '2', note: 'found behind B' },
    ] }, as));
    expect(entered.data.map((l: { expected: string; counted: string; difference: string }) => [l.expected, l.counted, l.difference])).toEqual([['10.000', '9.000', '-1.000'], ['5.000', '6.000', '1.000'], ['0.000', '2.000', '2.000']]);
    // Lines are entered through the count only.
    expect((await t.api('PATCH', `/api/warehouse/countLines/${entered.data[0].id}`, { counted: '1' })).status).toBe(409);
    const review = ok(await t.api('GET', `/api/warehouse/counts/${count.id}/review`));
    const lineOf = (p: string) => review.lines.find((l: { product: string }) => l.product === p);
    expect(lineOf(a)).toMatchObject({ expected: '10.000', counted: '9.000', difference: '-1.000', movedDuringCount: '-2.000', onHandNow: '8.000', differenceValue: '-3.00' });
    expect(lineOf(c)).toMatchObject({ expected: '0.000', counted: '2.000', difference: '2.000', movedDuringCount: '0.000' });
    // Submitted: the approval workflow gives a stock-manager a task; nothing posted yet.
    ok(await t.api('POST', `/api/warehouse/counts/${count.id}/submit`, undefined, as));
    await t.k.workflowRuntime.settle();
    expect(await t.count('warehouse_moves', { kind: 'adjustment' })).toBe(0);
    const [task] = (await tasksOf(manager)).filter((x) => x.subject.includes('INV-Z0'));
    expect(task).toBeDefined();
    // Not the storekeeper's to decide.
    expect([403, 404]).toContain((await t.api('POST', `/api/tasks/${task.id}/approve`, { comment: 'ok' }, { token: keeper.token })).status);
    ok(await t.api('POST', `/api/tasks/${task.id}/approve`, { comment: 'ok' }, { token: manager.token }));
    await t.k.workflowRuntime.settle();
    expect(ok(await t.api('GET', `/api/warehouse/counts/${count.id}`))).toMatchObject({ status: 'posted', adjustments: 3 });
    const adjustments = ok(await t.api('GET', `/api/warehouse/moves?sourceId=${count.id}`)).data;
    expect(adjustments.every((m: { kind: string; date: string; sourceEntity: string }) => m.kind === 'adjustment' && m.date === new Date().toISOString().slice(0, 10) && m.sourceEntity === 'warehouse.counts')).toBe(true);
    expect(adjustments.find((m: { product: string }) => m.product === a)).toMatchObject({ fromLocation: w.bins[0], toLocation: INVENTORY_LOSS, quantity: '1.000', value: '3.00' });
    // On hand: A 10 − 2 shipped − 1 short = 7; B 6; C 2 in bin 1 plus its 7 in zone 1.
    expect(await availability(t, a, w.bins[0])).toMatchObject({ onHand: '7.000' });
    expect(await availability(t, b, w.bins[1])).toMatchObject({ onHand: '6.000' });
    expect(await availability(t, c, w.bins[1])).toMatchObject({ onHand: '2.000' });
    expect(await availability(t, c, w.root)).toMatchObject({ onHand: '9.000' });
    // Posted: no more steps.
    expect((await t.api('POST', `/api/warehouse/counts/${count.id}/cancel`, undefined, as)).body).toMatchObject({ status: 409, code: 'warehouse.count-state' });
  });

  it('goes back to counting when rejected, and refuses steps out of order', async () => {
    const a = await product(t);
    await receive(t, a, w.bins[3], '4', '1.00');
    const count = ok(await t.api('POST', '/api/warehouse/counts', { reference: 'INV-Z1', location: w.zones[1] }), 201);
    const before = await snapshot(t);
    expect((await t.api('POST', `/api/warehouse/counts/${count.id}/submit`)).body).toMatchObject({ status: 409, code: 'warehouse.count-state' });
    expect((await t.api('POST', `/api/warehouse/counts/${count.id}/lines`, { lines: [{ product: a, counted: '1' }] })).body).toMatchObject({ status: 409, code: 'warehouse.count-state' });
    // The state is the count's own: not written directly.
    expect((await t.api('PATCH', `/api/warehouse/counts/${count.id}`, { status: 'posted' })).body).toMatchObject({ status: 400, field: 'status', rule: 'read-only' });
    expect(await snapshot(t)).toEqual(before);
    ok(await t.api('POST', `/api/warehouse/counts/${count.id}/start`));
    // Uncounted lines block the submission.
    expect((await t.api('POST', `/api/warehouse/counts/${count.id}/submit`)).body).toMatchObject({ status: 409, field: 'lines' });
    // Zone 1 also holds the first test's product C: counted as expected.
    const lines = ok(await t.api('GET', `/api/warehouse/countLines?count=${count.id}&limit=100`)).data as { product: string; location: string; expected: string }[];
    expect(lines.length).toBe(2);
    ok(await t.api('POST', `/api/warehouse/counts/${count.id}/lines`, { lines: lines.map((l) => ({ product: l.product, location: l.location, counted: l.product === a ? '3' : l.expected })) }));
    // A location outside the count is refused.
    expect((await t.api('POST', `/api/warehouse/counts/${count.id}/lines`, { lines: [{ product: a, location: w.bins[0], counted: '3' }] })).body).toMatchObject({ status: 400, field: 'lines.0.location' });
    ok(await t.api('POST', `/api/warehouse/counts/${count.id}/submit`));
    await t.k.workflowRuntime.settle();
    const [task] = (await tasksOf(manager)).filter((x) => x.subject.includes('INV-Z1'));
    ok(await t.api('POST', `/api/tasks/${task.id}/reject`, { comment: 'count bin 3 again' }, { token: manager.token }));
    await t.k.workflowRuntime.settle();
    expect(ok(await t.api('GET', `/api/warehouse/counts/${count.id}`)).status).toBe('counting');
    expect(await availability(t, a, w.bins[3])).toMatchObject({ onHand: '4.000' });
    expect(ok(await t.api('POST', `/api/warehouse/counts/${count.id}/cancel`)).status).toBe('cancelled');
  });
});
