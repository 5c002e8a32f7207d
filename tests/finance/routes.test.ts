// Finance's routes are declared: params, query and body are checked against their schemas before a
// handler runs. A malformed id is a 404 naming the parameter, a bad or unknown query parameter a 400
// bad-query naming it, an unknown or ill-typed body field a 400 validation-failed naming it — and
// nothing is written. (Every answer is also checked against its declared schema: checkResponses.)
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { expectNothingWritten, org, snapshot } from './helpers.ts';

let t: TestKubiki;
let acme: string;
let entryId: string;
let periodId: string;
let invoiceId: string;
let paymentId: string;
let accountId: string;
beforeAll(async () => {
  t = await startKubiki({ enable: ['base', 'finance'] });
  acme = await org(t, 'Acme', '7707083893');
  const entry = await t.api('POST', '/api/finance/entries', { date: '2026-05-04', memo: 'seed', lines: [{ account: '51', debit: '10.00' }, { account: '80', credit: '10.00' }] });
  expect(entry.status, JSON.stringify(entry.body)).toBe(201);
  entryId = entry.body.id;
  periodId = (await t.api('GET', '/api/finance/periods?month=2026-05')).body.data[0].id;
  invoiceId = (await t.api('POST', '/api/finance/invoices', { kind: 'customer', organization: acme, date: '2026-05-05', lines: [{ description: 'Work', quantity: '1', price: '100.00', vatRate: '20' }] })).body.id;
  expect((await t.api('POST', `/api/finance/invoices/${invoiceId}/post`)).status).toBe(200);
  paymentId = (await t.api('POST', '/api/finance/payments', { direction: 'in', organization: acme, date: '2026-05-06', amount: '50.00' })).body.id;
  accountId = (await t.api('GET', '/api/finance/accounts?code=44')).body.data[0].id;
});
afterAll(() => t?.close());

describe('journal entries answer with their version', () => {
  it('POST, GET one and GET the list give the header version the published schema requires', async () => {
    const posted = await t.api('POST', '/api/finance/entries', { date: '2026-05-07', lines: [{ account: '50', debit: '1.00' }, { account: '80', credit: '1.00' }] });
    expect(posted.status).toBe(201);
    expect(posted.headers.get('location')).toBe(`/api/finance/entries/${posted.body.id}`);
    expect(posted.body.version).toBe(1);
    expect((await t.api('GET', `/api/finance/entries/${posted.body.id}`)).body).toMatchObject({ id: posted.body.id, version: 1 });
    const list = await t.api('GET', '/api/finance/entries?from=2026-05-01&to=2026-05-31');
    expect(list.status).toBe(200);
    expect(list.body.data.length).toBeGreaterThanOrEqual(2);
    for (const e of list.body.data) expect(e.version).toBe(1);
    const doc = (await t.api('GET', '/api/openapi.json')).body;
    const listed = doc.paths['/api/finance/entries'].get.responses['200'].content['application/json'].schema;
    expect(listed.properties.data.items.required).toContain('version');
    expect(doc.paths['/api/finance/entries/{id}'].get.responses['200'].content['application/json'].schema.required).toContain('version');
  });
});

describe('batches of entries', () => {
  it('posts a batch in one transaction, and a batch with one bad entry posts none, naming it', async () => {
    const ok = { date: '2026-05-08', lines: [{ account: '44', debit: '5.00' }, { account: '51', credit: '5.00' }] };
    const r = await t.api('POST', '/api/finance/entries/batch', { entries: [ok, { ...ok, memo: 'second' }] });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.data.map((e: { memo?: string; version: number }) => [e.memo, e.version])).toEqual([[undefined, 1], ['second', 1]]);

    const before = await snapshot(t);
    const cases: [unknown, string, string][] = [
      [{ entries: [ok, { ...ok, lines: [{ account: '44', debit: '5.00' }, { account: '51', credit: '4.00' }] }] }, 'entries.1.lines', 'balanced'],
      [{ entries: [ok, { ...ok, lines: [{ account: '44', debit: '5,00' }, { account: '51', credit: '5.00' }] }] }, 'entries.1.lines.0.debit', 'pattern'],
      [{ entries: [ok, { ...ok, lines: [{ account: 'nope', debit: '5.00' }, { account: '51', credit: '5.00' }] }] }, 'entries.1.lines.0.account', 'exists'],
      [{ entries: [ok, { ...ok, colour: 'red' }] }, 'entries.1.colour', 'unknown-field'],
      [{ entries: [] }, 'entries', 'minItems'],
      [{}, 'entries', 'required'],
    ];
    for (const [body, field, rule] of cases) {
      const bad = await t.api('POST', '/api/finance/entries/batch', body);
      expect(bad.status, JSON.stringify(bad.body)).toBe(400);
      expect({ field: bad.body.field, rule: bad.body.rule }, JSON.stringify(bad.body)).toEqual({ field, rule });
    }
    await expectNothingWritten(t, before);
  });
});

describe('bad input on every kind of finance route', () => {
  it('a malformed id is a 404 naming the parameter, before anything is read or written', async () => {
    const before = await snapshot(t);
    const calls: [string, string, unknown?][] = [
      ['GET', '/api/finance/entries/0'],
      ['POST', '/api/finance/entries/not-a-uuid/reverse', {}],
      ['PATCH', '/api/finance/entries/0', { memo: 'x' }],
      ['DELETE', '/api/finance/entries/0'],
      ['POST', '/api/finance/periods/0/close'],
      ['POST', '/api/finance/periods/0/reopen'],
      ['PATCH', '/api/finance/periods/0', { status: 'open' }],
      ['DELETE', '/api/finance/periods/0'],
      ['DELETE', '/api/finance/accounts/44'],
      ['PATCH', '/api/finance/invoices/INV-2026-000001', { notes: 'x' }],
      ['DELETE', '/api/finance/invoices/1'],
      ['POST', '/api/finance/invoices/1/post'],
      ['POST', `/api/finance/invoices/urn:uuid:${invoiceId}/cancel`],
      ['PATCH', '/api/finance/payments/1', { amount: '1.00' }],
      ['DELETE', '/api/finance/payments/1'],
      ['POST', `/api/finance/payments/urn:uuid:${paymentId}/post`],
      ['POST', '/api/finance/payments/1/allocate', { allocations: [{ invoice: invoiceId, amount: '1.00' }] }],
    ];
    for (const [method, path, body] of calls) {
      const r = await t.api(method, path, body);
      expect(r.status, `${method} ${path}: ${JSON.stringify(r.body)}`).toBe(404);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect(r.body.field, `${method} ${path}`).toBe('id');
    }
    await expectNothingWritten(t, before);
  });

  it('an unknown body field, or one of the wrong shape, is a 400 naming it, and nothing is written', async () => {
    const before = await snapshot(t);
    const ok = { invoice: invoiceId, amount: '10.00' };
    const calls: [string, string, unknown, string, string][] = [
      ['POST', '/api/finance/entries', { date: '2026-05-09', lines: [{ account: '51', debit: '1.00', side: 'left' }, { account: '80', credit: '1.00' }] }, 'lines.0.side', 'unknown-field'],
      ['POST', '/api/finance/entries', { date: '2026-05-09', memo: 7, lines: [{ account: '51', debit: '1.00' }, { account: '80', credit: '1.00' }] }, 'memo', 'type'],
      ['POST', '/api/finance/entries', { date: '2026-05-09', lines: [{ account: '51', debit: '1.00', organization: 'acme' }, { account: '80', credit: '1.00' }] }, 'lines.0.organization', 'format'],
      ['POST', `/api/finance/entries/${entryId}/reverse`, { date: '2026-05-31', why: 'typo' }, 'why', 'unknown-field'],
      ['POST', `/api/finance/entries/${entryId}/reverse`, { date: '31.05.2026' }, 'date', 'format'],
      ['POST', `/api/finance/periods/${periodId}/close`, { force: true }, 'force', 'unknown-field'],
      ['POST', `/api/finance/invoices/${invoiceId}/post`, { now: true }, 'now', 'unknown-field'],
      ['POST', `/api/finance/invoices/${invoiceId}/cancel`, { reason: 'x'.repeat(1001) }, 'reason', 'maxLength'],
      ['POST', `/api/finance/invoices/${invoiceId}/cancel`, { date: '2026-05-31', refund: true }, 'refund', 'unknown-field'],
      ['POST', `/api/finance/payments/${paymentId}/post`, { allocations: [{ ...ok, amount: '0' }] }, 'allocations.0.amount', 'pattern'],
      ['POST', `/api/finance/payments/${paymentId}/post`, { allocations: [ok], date: '2026-05-06' }, 'date', 'unknown-field'],
      ['POST', `/api/finance/payments/${paymentId}/allocate`, { allocations: [{ invoice: invoiceId }] }, 'allocations.0.amount', 'required'],
      ['POST', '/api/finance/payments', { direction: 'in', amount: '10.00', allocations: [ok, ok] }, 'allocations.1.invoice', 'uniqueItems'],
      ['POST', '/api/finance/payments', { direction: 'in', amount: '10.00', allocations: [{ ...ok, amount: '0.00' }] }, 'allocations.0.amount', 'positive'],
      ['POST', '/api/finance/bank-statements', { csv: 'date,amount\n2026-05-10,1.00', bank: 'x' }, 'bank', 'unknown-field'],
      ['POST', '/api/finance/bank-statements', { csv: 42 }, 'csv', 'type'],
    ];
    for (const [method, path, body, field, rule] of calls) {
      const r = await t.api(method, path, body);
      expect(r.status, `${method} ${path} ${JSON.stringify(body).slice(0, 80)}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body.code).toBe('validation-failed');
      expect({ field: r.body.field, rule: r.body.rule }, `${method} ${path}: ${JSON.stringify(r.body)}`).toEqual({ field, rule });
    }
    await expectNothingWritten(t, before);
  });

  it('a bad date, an unknown parameter or a bad CSV option in a query is a 400 bad-query naming it', async () => {
    const before = await snapshot(t);
    const urls: [string, string][] = [
      ['/api/finance/entries?from=2026-02-30', 'from'],
      ['/api/finance/entries?to=yesterday', 'to'],
      ['/api/finance/entries?limit=0', 'limit'],
      ['/api/finance/entries?limit=many', 'limit'],
      ['/api/finance/entries?colour=red', 'colour'],
      ['/api/finance/entries?cursor=not%20a%20cursor', 'cursor'],
      ['/api/finance/entries?sourceEntity=deals', 'sourceEntity'],
      ['/api/finance/reports/trial-balance?asOf=31.12.2026', 'asOf'],
      ['/api/finance/reports/trial-balance?account=51', 'account'],
      ['/api/finance/reports/general-ledger?account=51&limit=10001', 'limit'],
      ['/api/finance/reports/profit-and-loss?from=2026-13-01', 'from'],
      ['/api/finance/reports/balance-sheet?from=2026-01-01', 'from'],
      ['/api/finance/reports/receivables-ageing?asOf=soon', 'asOf'],
      ['/api/finance/reports/payables-ageing?format=xlsx', 'format'],
      ['/api/finance/reports/budget', 'budget'],
      ['/api/finance/reports/budget?budget=B&bom=maybe', 'bom'],
      ['/api/finance/posting-rules?all=1', 'all'],
    ];
    for (const [url, field] of urls) {
      const r = await t.api('GET', url);
      expect(r.status, `${url}: ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.body, url).toMatchObject({ code: 'bad-query', field });
    }
    await expectNothingWritten(t, before);
  });

  it('refuses changes to posted entries and periods the way it always did', async () => {
    const before = await snapshot(t);
    expect((await t.api('PATCH', `/api/finance/entries/${entryId}`, { memo: 'changed' })).body).toMatchObject({ status: 409, code: 'conflict', rule: 'immutable' });
    expect((await t.api('DELETE', `/api/finance/entries/${entryId}`)).body).toMatchObject({ status: 409, code: 'conflict', rule: 'immutable' });
    expect((await t.api('PATCH', `/api/finance/periods/${periodId}`, { status: 'closed' })).body).toMatchObject({ status: 400, field: 'status', rule: 'read-only' });
    expect((await t.api('DELETE', `/api/finance/periods/${periodId}`)).status).toBe(409);
    expect((await t.api('DELETE', `/api/finance/accounts/${(await t.api('GET', '/api/finance/accounts?code=51')).body.data[0].id}`)).body).toMatchObject({ status: 409, code: 'referenced' });
    await expectNothingWritten(t, before);
    // An account without postings is deleted; an empty invoice draft and a draft payment too.
    const spare = await t.api('POST', '/api/finance/accounts', { code: '58', name: 'Spare', type: 'asset' });
    expect((await t.api('DELETE', `/api/finance/accounts/${spare.body.id}`)).status).toBe(204);
    expect((await t.api('DELETE', `/api/finance/payments/${paymentId}`)).status).toBe(204);
    expect(accountId).toBeTruthy();
  });
});

describe('the OpenAPI document', () => {
  it('lists every finance route with its operationId, and the reports with their CSV form and options', async () => {
    const doc = (await t.api('GET', '/api/openapi.json')).body;
    const ops = Object.entries(doc.paths as Record<string, Record<string, { operationId: string; parameters?: { name: string }[]; responses: Record<string, { description: string }> }>>)
      .filter(([path]) => path.startsWith('/api/finance/'))
      .flatMap(([path, item]) => Object.entries(item).filter(([m]) => ['get', 'post', 'patch', 'delete'].includes(m)).map(([m, op]) => ({ path, method: m, op })));
    const ids = new Map(ops.map((o) => [`${o.method.toUpperCase()} ${o.path}`, o.op.operationId]));
    for (const [route, id] of [
      ['POST /api/finance/entries', 'financePostEntry'], ['POST /api/finance/entries/batch', 'financePostEntries'], ['GET /api/finance/entries', 'financeListEntries'],
      ['GET /api/finance/entries/{id}', 'financeGetEntry'], ['PATCH /api/finance/entries/{id}', 'financeUpdateEntry'], ['DELETE /api/finance/entries/{id}', 'financeDeleteEntry'],
      ['POST /api/finance/entries/{id}/reverse', 'financeReverseEntry'], ['POST /api/finance/periods/{id}/close', 'financeClosePeriod'],
      ['PATCH /api/finance/periods/{id}', 'financeUpdatePeriod'], ['DELETE /api/finance/accounts/{id}', 'financeDeleteAccount'],
      ['POST /api/finance/invoices/{id}/post', 'financePostInvoice'], ['POST /api/finance/payments/{id}/allocate', 'financeAllocatePayment'],
      ['POST /api/finance/bank-statements', 'financeImportBankStatement'], ['GET /api/finance/posting-rules', 'financeListPostingRules'],
      ['GET /api/finance/reports/trial-balance', 'financeTrialBalance'], ['GET /api/finance/reports/budget', 'financeBudgetReport'],
    ]) expect(ids.get(route), route).toBe(id);
    for (const { path, op } of ops.filter((o) => o.path.startsWith('/api/finance/reports/'))) {
      expect(op.parameters?.map((p) => p.name), path).toEqual(expect.arrayContaining(['format', 'bom', 'delimiter']));
      expect(op.responses['200'].description, path).toContain('text/csv');
    }
  });
});
