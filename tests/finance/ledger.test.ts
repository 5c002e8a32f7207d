import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { expectBalanced, expectNothingWritten, org, snapshot } from './helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startKubiki({ enable: ['base', 'finance'] }); });
afterAll(() => t?.close());

const entry = (date: string, lines: unknown[], extra: Record<string, unknown> = {}) => ({ date, memo: 'test', lines, ...extra });
const dr = (account: string, debit: string, extra = {}) => ({ account, debit, ...extra });
const cr = (account: string, credit: string, extra = {}) => ({ account, credit, ...extra });

describe('chart of accounts and periods', () => {
  it('seeds a Russian chart of accounts with a sub-account tree, editable through the entity REST', async () => {
    const list = await t.api('GET', '/api/finance/accounts?limit=100&sort=code');
    expect(list.status).toBe(200);
    const codes = list.body.data.map((a: { code: string }) => a.code);
    expect(codes).toEqual(expect.arrayContaining(['01', '10', '41', '50', '51', '60', '62', '68.02', '76', '80', '84', '90.01', '90.02', '90.03', '91', '99']));
    const vat = list.body.data.find((a: { code: string }) => a.code === '68.02');
    const taxes = list.body.data.find((a: { code: string }) => a.code === '68');
    expect(vat).toMatchObject({ type: 'liability', parent: taxes.id });

    const added = await t.api('POST', '/api/finance/accounts', { code: '51.02', name: 'Second bank', type: 'asset', parent: list.body.data.find((a: { code: string }) => a.code === '51').id });
    expect(added.status).toBe(201);
    const renamed = await t.api('PATCH', `/api/finance/accounts/${added.body.id}`, { name: 'Bank #2' });
    expect(renamed.body.name).toBe('Bank #2');
    const dup = await t.api('POST', '/api/finance/accounts', { code: '51.02', name: 'again', type: 'asset' });
    expect(dup.status).toBe(409);
    const badType = await t.api('POST', '/api/finance/accounts', { code: '52', name: 'x', type: 'cash' });
    expect(badType.status).toBe(400);
    expect(badType.body.field).toBe('type');
  });

  it('closes and reopens a period; posting into a closed one is a 409 and writes nothing', async () => {
    const first = await t.api('POST', '/api/finance/entries', entry('2025-03-10', [dr('51', '100.00'), cr('80', '100.00')]));
    expect(first.status).toBe(201);
    const period = (await t.api('GET', '/api/finance/periods?month=2025-03')).body.data[0];
    expect(period).toMatchObject({ month: '2025-03', status: 'open' });

    const closed = await t.api('POST', `/api/finance/periods/${period.id}/close`);
    expect(closed.status).toBe(200);
    expect(closed.body).toMatchObject({ status: 'closed', closedAt: expect.any(String) });
    expect((await t.api('POST', `/api/finance/periods/${period.id}/close`)).status).toBe(409);

    const before = await snapshot(t);
    const refused = await t.api('POST', '/api/finance/entries', entry('2025-03-31', [dr('51', '5.00'), cr('80', '5.00')]));
    expect(refused.status).toBe(409);
    expect(refused.headers.get('content-type')).toContain('application/problem+json');
    expect(refused.body).toMatchObject({ code: 'finance.period-closed', status: 409, field: 'date', rule: 'period-open', period: '2025-03' });
    expect(refused.body.detail).toContain('closed');
    const reverse = await t.api('POST', `/api/finance/entries/${first.body.id}/reverse`, { date: '2025-03-31' });
    expect(reverse.status).toBe(409);
    await expectNothingWritten(t, before);

    // Status is not patched directly.
    const patch = await t.api('PATCH', `/api/finance/periods/${period.id}`, { status: 'open' });
    expect(patch.status).toBe(400);
    expect(patch.body).toMatchObject({ field: 'status', rule: 'read-only' });
    expect((await t.api('DELETE', `/api/finance/periods/${period.id}`)).status).toBe(409);

    const reopened = await t.api('POST', `/api/finance/periods/${period.id}/reopen`);
    expect(reopened.body.status).toBe('open');
    expect((await t.api('POST', '/api/finance/entries', entry('2025-03-31', [dr('51', '5.00'), cr('80', '5.00')]))).status).toBe(201);
    const audit = await t.api('GET', `/api/audit?entity=finance.periods&id=${period.id}`);
    expect(audit.body.data.map((a: { action: string }) => a.action)).toEqual(['updated', 'updated', 'created']);
  });

  it('needs finance.periods.close to close a period', async () => {
    const { token } = await t.userWith(['finance.*.read']);
    const period = (await t.api('GET', '/api/finance/periods?month=2025-03')).body.data[0];
    const r = await t.api('POST', `/api/finance/periods/${period.id}/close`, undefined, { token });
    expect(r.status).toBe(403);
    expect(r.body.permission).toBe('finance.periods.close');
  });
});

describe('journal entries', () => {
  it('posts a balanced entry by account code or id, with an organization and a source; audited', async () => {
    const acme = await org(t, 'Acme');
    const bank = (await t.api('GET', '/api/finance/accounts?code=51')).body.data[0];
    const r = await t.api('POST', '/api/finance/entries', entry('2026-01-15', [dr(bank.id, '1220.00'), cr('62', '1220.00', { organization: acme })], { source: { entity: 'crm.deals', id: 'deal-1' } }));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({
      date: '2026-01-15', period: '2026-01', total: '1220.00', source: { entity: 'crm.deals', id: 'deal-1' },
      lines: [{ account: '51', debit: '1220.00', credit: '0.00' }, { account: '62', debit: '0.00', credit: '1220.00', organization: acme }],
    });
    const read = await t.api('GET', `/api/finance/entries/${r.body.id}`);
    expect(read.body).toMatchObject({ id: r.body.id, lines: [{ account: '51' }, { account: '62' }] });
    const audit = await t.api('GET', `/api/audit?entity=finance.entries&id=${r.body.id}`);
    expect(audit.body.data).toHaveLength(1);
    expect(audit.body.data[0]).toMatchObject({ action: 'created', actor: 'admin' });
    await expectBalanced(t);
  });

  it('refuses bad entries with a problem naming the field, writing nothing', async () => {
    await t.api('POST', '/api/finance/accounts', { code: '55', name: 'Old deposits', type: 'asset', active: false });
    const before = await snapshot(t);
    const cases: [unknown, number, string, string][] = [
      [entry('2026-01-15', [dr('51', '100.00'), cr('62', '99.99')]), 400, 'lines', 'balanced'],
      [entry('2026-01-15', [dr('51', '100.00'), cr('99999', '100.00')]), 400, 'lines.1.account', 'exists'],
      [entry('2026-01-15', [dr('51', '100.001'), cr('62', '100.00')]), 400, 'lines.0.debit', 'pattern'],
      [entry('2026-01-15', [{ account: '51', debit: 100 }, cr('62', '100.00')]), 400, 'lines.0.debit', 'type'],
      [entry('2026-01-15', [{ account: '51', debit: '1.00', credit: '1.00' }, cr('62', '1.00')]), 400, 'lines.0.credit', 'one-side'],
      [entry('2026-01-15', [{ account: '51' }, cr('62', '1.00')]), 400, 'lines.0.debit', 'one-side'],
      [entry('2026-01-15', [dr('51', '-5.00'), cr('62', '-5.00')]), 400, 'lines.0.debit', 'pattern'],
      [entry('2026-02-30', [dr('51', '1.00'), cr('62', '1.00')]), 400, 'date', 'format'],
      [entry('2026-01-15', [dr('51', '1.00')]), 400, 'lines', 'minItems'],
      [{ memo: 'x', lines: [] }, 400, 'date', 'required'],
      [entry('2026-01-15', [dr('51', '1.00'), cr('62', '1.00')], { extra: 1 }), 400, 'extra', 'unknown-field'],
      [entry('2026-01-15', [dr('51', '1.00'), cr('62', '1.00', { organization: '019a0000-0000-7000-8000-00000000ffff' })]), 400, 'lines.1.organization', 'x-ref'],
      [entry('2026-01-15', [dr('51', '1.00'), cr('62', '1.00')], { source: { entity: 'deals', id: '1' } }), 400, 'source.entity', 'pattern'],
      [[1, 2], 400, '', 'type'],
    ];
    for (const [body, status, field, rule] of cases) {
      const r = await t.api('POST', '/api/finance/entries', body);
      expect(r.status, JSON.stringify(body)).toBe(status);
      expect(r.headers.get('content-type')).toContain('application/problem+json');
      expect({ field: r.body.field, rule: r.body.rule }, JSON.stringify(r.body)).toEqual({ field, rule });
    }
    const r = await t.api('POST', '/api/finance/entries', entry('2026-01-15', [dr('55', '1.00'), cr('62', '1.00')]));
    expect(r.body).toMatchObject({ status: 400, field: 'lines.0.account', rule: 'active' });
    await expectNothingWritten(t, before);
  });

  it('is immutable: corrected by one reversal, never patched or deleted', async () => {
    const r = await t.api('POST', '/api/finance/entries', entry('2026-01-20', [dr('44', '300.00'), cr('51', '300.00')]));
    expect((await t.api('PATCH', `/api/finance/entries/${r.body.id}`, { memo: 'changed' })).status).toBe(409);
    expect((await t.api('DELETE', `/api/finance/entries/${r.body.id}`)).status).toBe(409);
    const rev = await t.api('POST', `/api/finance/entries/${r.body.id}/reverse`, { date: '2026-01-21' });
    expect(rev.status).toBe(201);
    expect(rev.body).toMatchObject({ reverses: r.body.id, date: '2026-01-21', lines: [{ account: '44', credit: '300.00' }, { account: '51', debit: '300.00' }] });
    const again = await t.api('POST', `/api/finance/entries/${r.body.id}/reverse`, { date: '2026-01-21' });
    expect(again.status).toBe(409);
    expect((await t.api('GET', `/api/finance/entries/${r.body.id}`)).body.reversedBy).toBe(rev.body.id);
    expect((await t.api('POST', `/api/finance/entries/${r.body.id}/reverse`, { date: 'soon' })).body).toMatchObject({ status: 400, field: 'date' });
    await expectBalanced(t);
  });

  it('lists entries by date range and account, with a cursor', async () => {
    for (let d = 1; d <= 5; d++) await t.api('POST', '/api/finance/entries', entry(`2026-04-0${d}`, [dr('50', `${d}.00`), cr('51', `${d}.00`)]));
    const page = await t.api('GET', '/api/finance/entries?from=2026-04-01&to=2026-04-30&account=50&limit=3');
    expect(page.status).toBe(200);
    expect(page.body.data.map((e: { date: string }) => e.date)).toEqual(['2026-04-05', '2026-04-04', '2026-04-03']);
    const rest = await t.api('GET', `/api/finance/entries?from=2026-04-01&to=2026-04-30&account=50&limit=3&cursor=${page.body.next}`);
    expect(rest.body.data.map((e: { date: string }) => e.date)).toEqual(['2026-04-02', '2026-04-01']);
    expect(rest.body.next).toBeNull();
    expect((await t.api('GET', '/api/finance/entries?account=nope')).body).toMatchObject({ status: 400, field: 'account' });
    expect((await t.api('GET', '/api/finance/entries?from=yesterday')).body).toMatchObject({ status: 400, field: 'from' });
  });

  it('checks permissions on every route', async () => {
    const reader = await t.userWith(['finance.entries.read', 'finance.accounts.read']);
    const denied = await t.api('POST', '/api/finance/entries', entry('2026-01-15', [dr('51', '1.00'), cr('62', '1.00')]), { token: reader.token });
    expect(denied.status).toBe(403);
    expect(denied.body.permission).toBe('finance.entries.post');
    expect((await t.api('GET', '/api/finance/reports/trial-balance', undefined, { token: reader.token })).status).toBe(403);
    expect((await t.api('GET', '/api/finance/entries', undefined, { token: reader.token })).status).toBe(200);
    const roles = await t.api('GET', '/api/roles');
    expect(roles.body.data ?? roles.body).toEqual(expect.arrayContaining([expect.objectContaining({ name: 'accountant' })]));
  });
});
