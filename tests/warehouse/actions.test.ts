// The stock layer for workflows (and the order modules to come): callAction steps reserve and post
// moves in the step's transaction; a bad mapping fails the step naming the field, writing nothing.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { publishWorkflow } from '../helpers/workflow-helpers.ts';
import { availability, ok, product, receive, snapshot, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;
let w: Place;
beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  w = await warehouse(t);
  await publishWorkflow(t, `
id: workflows.wh-reserve-ship
title: Reserve, then ship against the reservation
kind: automation
trigger:
  type: manual
  input:
    type: object
    required: [product, warehouse, bin, order]
    properties: { product: { type: string }, warehouse: { type: string }, bin: { type: string }, order: { type: string } }
start: reserve
steps:
  reserve:
    type: callAction
    action: warehouse.reserve
    input:
      product: input.product
      warehouse: input.warehouse
      quantity: "'2'"
      demandEntity: "'sales.orders'"
      demandId: input.order
      demandLine: "'1'"
    next: ship
  ship:
    type: callAction
    action: warehouse.postMoves
    input:
      moves: "[{'kind': 'shipment', 'product': input.product, 'quantity': '2', 'fromLocation': input.bin, 'toLocation': '019b0000-0000-7000-8000-000000000002', 'reservation': steps.reserve.reservation, 'source': {'entity': 'sales.orders', 'id': input.order, 'line': '1'}}]"
    retry: { max: 0 }
`);
}, 180_000);
afterAll(() => t?.close());

const run = async (input: Record<string, unknown>) => {
  const res = ok(await t.api('POST', '/api/workflows/workflows.wh-reserve-ship/run', { input }), 202);
  await t.k.workflowRuntime.settle();
  return ok(await t.api('GET', `/api/workflows/instances/${res.instanceId}`));
};

describe('workflow actions', () => {
  it('reserve and postMoves run in the steps\' transactions', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '5', '3.00');
    const instance = await run({ product: p, warehouse: w.id, bin: w.bins[0], order: 'SO-WF-1' });
    expect(instance.status, JSON.stringify(instance.steps)).toBe('completed');
    const reservation = instance.steps[0].output.reservation;
    expect(ok(await t.api('GET', `/api/warehouse/reservations/${reservation}`))).toMatchObject({ status: 'done', consumed: '2.000', demandId: 'SO-WF-1' });
    const [shipped] = ok(await t.api('GET', '/api/warehouse/moves?sourceId=SO-WF-1')).data;
    expect(shipped).toMatchObject({ kind: 'shipment', quantity: '2.000', value: '6.00', reservation });
    expect(await availability(t, p, w.root)).toMatchObject({ onHand: '3.000', reserved: '0.000' });
  });

  it('a bad mapping fails the step naming the field, and nothing is written', async () => {
    const p = await product(t);
    await receive(t, p, w.bins[0], '5', '3.00');
    const before = await snapshot(t);
    const instance = await run({ product: 'P-1', warehouse: w.id, bin: w.bins[0], order: 'SO-WF-2' });
    expect(instance.status).toBe('failed');
    expect(instance.error).toMatch(/product/);
    const after = await snapshot(t);
    // The workflow's own bookkeeping aside (instances are not warehouse rows), nothing changed.
    expect({ ...after, kubiki_audit: before.kubiki_audit, kubiki_outbox: before.kubiki_outbox }).toEqual(before);
  });
});
