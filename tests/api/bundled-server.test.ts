import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliSandbox } from '../helpers/cli-sandbox.ts';
import { buildBundle, removeBundle, spawnKubiki, type KubikiProcess } from '../helpers/kubiki-process.ts';

// The server exactly as `npm start` runs it: the esbuild bundle, with plugins loaded through tsx
// beside it. Errors plugins throw must keep their status there (they were all 500 once, because
// the bundle and the plugins held two copies of the core's error class).
let sandbox: CliSandbox;
let bundle: string;
let server: KubikiProcess;
const token = `kbk_bundle_${randomBytes(16).toString('hex')}`;

beforeAll(async () => {
  bundle = buildBundle();
  sandbox = new CliSandbox('bundle');
  server = await spawnKubiki(sandbox, 'bundled', token, { KUBIKI_ENABLE_PLUGINS: 'crm,finance' }, { bundle });
  await server.healthy();
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await sandbox?.cleanup();
  if (bundle) removeBundle(bundle);
});

const expectProblem = (res: { status: number; body: any }, status: number, code: string, field?: string) => {
  expect(res.status, JSON.stringify(res.body)).toBe(status);
  expect(res.body.code).toBe(code);
  if (field !== undefined) expect(res.body.field).toBe(field);
};

async function draftInvoice(): Promise<string> {
  const org = await server.api('POST', '/api/base/organizations', { name: 'Bundle Buyer LLC' });
  expect(org.status, JSON.stringify(org.body)).toBe(201);
  const invoice = await server.api('POST', '/api/finance/invoices', {
    kind: 'customer', organization: org.body.id, date: '2026-11-10',
    lines: [{ description: 'Service', quantity: '1', price: '100.00', vatRate: '22' }],
  });
  expect(invoice.status, JSON.stringify(invoice.body)).toBe(201);
  return invoice.body.id;
}

describe('the bundle npm start runs', () => {
  it('answers plugin errors with their 4xx problem, not 500', async () => {
    expectProblem(await server.api('GET', '/api/finance/entries?limit=9999'), 400, 'bad-query', 'limit');
    expectProblem(await server.api('POST', '/api/finance/entries', {
      date: '2026-11-10', lines: [{ account: '50', debit: '10.00' }, { account: '90.01', credit: '9.00' }],
    }), 400, 'validation-failed', 'lines');

    const id = await draftInvoice();
    expect((await server.api('POST', `/api/finance/invoices/${id}/post`)).status).toBe(200);
    expectProblem(await server.api('POST', `/api/finance/invoices/${id}/post`), 409, 'transition-not-allowed');

    const lead = await server.api('POST', '/api/crm/leads', { name: 'Ivan Petrov', email: 'ivan@example.com' });
    expect(lead.status, JSON.stringify(lead.body)).toBe(201);
    expectProblem(await server.api('POST', `/api/crm/leads/${lead.body.id}/qualify`, { nonsense: 1 }), 400, 'validation-failed', 'nonsense');
  });

  it('refuses posting into a closed period with 409 naming the date', async () => {
    const period = await server.api('POST', '/api/finance/periods', { month: '2026-01' });
    expect(period.status, JSON.stringify(period.body)).toBe(201);
    expect((await server.api('POST', `/api/finance/periods/${period.body.id}/close`)).status).toBe(200);
    expectProblem(await server.api('POST', '/api/finance/entries', {
      date: '2026-01-15', lines: [{ account: '50', debit: '10.00' }, { account: '90.01', credit: '10.00' }],
    }), 409, 'finance.period-closed', 'date');
  });

  it('fails a workflow step at once when the plugin action refuses (no retries)', async () => {
    const id = await draftInvoice();
    expect((await server.api('POST', `/api/finance/invoices/${id}/post`)).status).toBe(200);
    const source = `
id: workflows.bundle-post-twice
title: Post an invoice
kind: automation
trigger: { type: manual, input: { type: object, properties: { invoice: { type: string } }, required: [invoice] } }
start: post
steps:
  post: { type: callAction, action: finance.postInvoice, input: { invoice: input.invoice }, retry: { max: 3, backoff: PT1S } }
`;
    const saved = await server.api('PUT', '/api/workflows/workflows.bundle-post-twice', { source });
    expect(saved.status, JSON.stringify(saved.body)).toBe(200);
    expect((await server.api('POST', '/api/workflows/workflows.bundle-post-twice/publish', { version: saved.body.version })).status).toBe(200);
    const run = await server.api('POST', '/api/workflows/workflows.bundle-post-twice/run', { input: { invoice: id } });
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    let instance: any;
    for (let i = 0; i < 200; i++) {
      instance = (await server.api('GET', `/api/workflows/instances/${run.body.instanceId}`)).body;
      if (instance.status === 'failed' || instance.status === 'completed') break;
      await sleep(50);
    }
    expect(instance.status).toBe('failed');
    expect(instance.steps[0].attempts).toBe(1);
    expect(instance.steps[0].error).toMatch(/draft/);
  });
});
