// Imports through REST: a CSV with bad rows (a dry run writes nothing; the real run writes the good
// rows and reports each bad one with line, column and reason), errors as CSV, progress.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { csvOf, finished, innOf, shippedPlugins, upload } from './import-helpers.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startKubiki({ pluginDirs: [shippedPlugins()] }); }, 180_000);
afterAll(async () => t?.close());

const BAD_INN = '7707083894'; // a wrong check digit

describe('an import with bad rows', () => {
  const file = csvOf([
    ['Наименование', 'ИНН', 'Тип', 'E-mail'],
    ['Alpha LLC', innOf(1), 'company', 'alpha@example.com'],
    ['', innOf(2), 'company', ''],
    ['Gamma LLC', BAD_INN, 'company', ''],
    ['Delta LLC', innOf(4), 'corporation', 'not-an-email'],
    ['Epsilon LLC', innOf(5), 'soleTrader', ''],
  ]);
  const mapping = JSON.stringify({ columns: { 'Наименование': 'name', 'ИНН': 'inn', 'Тип': 'kind', 'E-mail': 'email' } });

  it('the dry run reports every bad row with line, column and reason, and writes nothing', async () => {
    const before = { orgs: await t.count('base_organizations'), audit: await t.count('kubiki_audit'), outbox: await t.count('kubiki_outbox') };
    const res = await upload(t, { entity: 'base.organizations', mapping, dryRun: true, fileName: 'orgs.csv' }, file);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.headers.get('location')).toBe(`/api/imports/${res.body.id}`);
    const job = await finished(t, res.body.id);
    expect(job).toMatchObject({ status: 'completed', dryRun: true, accepted: false, counts: { created: 2, updated: 0, unchanged: 0, failed: 3 } });
    expect(job.errors).toEqual([
      expect.objectContaining({ line: 3, column: 'Наименование', field: 'name', rule: 'required' }),
      expect.objectContaining({ line: 4, column: 'ИНН', field: 'inn', rule: 'check-digit', message: `inn ${BAD_INN} has a wrong check digit`, value: BAD_INN }),
      expect.objectContaining({ line: 5, column: 'Тип', field: 'kind', rule: 'enum', value: 'corporation' }),
      expect.objectContaining({ line: 5, column: 'E-mail', field: 'email', rule: 'format', value: 'not-an-email' }),
    ]);
    expect({ orgs: await t.count('base_organizations'), audit: await t.count('kubiki_audit'), outbox: await t.count('kubiki_outbox') }).toEqual(before);
  });

  it('the real run writes the good rows (audited, evented) and reports the bad ones', async () => {
    const before = { orgs: await t.count('base_organizations'), audit: await t.count('kubiki_audit', { entity: 'organizations' }) };
    const res = await upload(t, { entity: 'base.organizations', mapping, fileName: 'orgs.csv' }, file);
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const job = await finished(t, res.body.id);
    expect(job).toMatchObject({ status: 'completed', dryRun: false, accepted: false, counts: { created: 2, failed: 3 }, progress: { percent: 100, rowsRead: 5 } });
    expect(job.errors.map((e: { line: number }) => e.line)).toEqual([3, 4, 5, 5]);
    expect(await t.count('base_organizations')).toBe(before.orgs + 2);
    expect(await t.count('kubiki_audit', { entity: 'organizations' })).toBe(before.audit + 2);
    const alpha = await t.api('GET', `/api/base/organizations?inn=${innOf(1)}`);
    expect(alpha.body.data).toEqual([expect.objectContaining({ name: 'Alpha LLC', email: 'alpha@example.com', kind: 'company' })]);

    const csv = await fetch(`${t.url}/api/imports/${job.id}/errors.csv`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    expect(csv.status).toBe(200);
    expect(csv.headers.get('content-type')).toMatch(/^text\/csv/);
    const lines = (await csv.text()).replace(/^\uFEFF/, '').trim().split('\r\n');
    expect(lines[0]).toBe('line,column,field,rule,message,value');
    expect(lines).toHaveLength(5);
    expect(lines[2]).toContain(`4,ИНН,inn,check-digit,inn ${BAD_INN} has a wrong check digit,${BAD_INN}`);

    const page = await t.api('GET', `/api/imports/${job.id}/errors?limit=3`);
    expect(page.body.data).toHaveLength(3);
    const rest = await t.api('GET', `/api/imports/${job.id}/errors?limit=3&after=${page.body.next}`);
    expect(rest.body).toMatchObject({ data: [expect.objectContaining({ line: 5, field: 'email' })], next: null });
  });
});
