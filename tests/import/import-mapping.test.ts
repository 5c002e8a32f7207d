// Mappings saved and reused (transforms: decimal comma, DD.MM.YYYY dates, value maps, splitting),
// custom fields, references by natural key and by external id, upsert by a key on a re-run
// (idempotent), multipart uploads, and the importer acting as the caller (permission refusals).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { csvOf, finished, innOf, shippedPlugins, upload, uploadForm } from './import-helpers.ts';

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [shippedPlugins()] });
  for (const field of [
    { name: 'x_creditLimit', schema: { type: 'string', 'x-decimal': { precision: 18, scale: 2 } } },
    { name: 'x_since', schema: { type: 'string', format: 'date' } },
  ]) {
    const res = await t.api('POST', '/api/meta/entities/base/organizations/fields', field);
    expect(res.status, JSON.stringify(res.body)).toBe(201);
  }
}, 180_000);
afterAll(async () => t?.close());

const orgMapping = {
  target: 'base.organizations',
  key: 'inn',
  columns: {
    'Контрагент': 'name',
    'ИНН': { field: 'inn', transform: ['digits'] },
    'Лимит': { field: 'x_creditLimit', transform: ['decimalComma'] },
    'С': { field: 'x_since', transform: [{ date: 'DD.MM.YYYY' }] },
    'Вид': { field: 'kind', transform: [{ map: { 'ООО': 'company', 'ИП': 'soleTrader' } }] },
    'Роли': { field: 'roles', transform: [{ split: ',' }] },
    'Код 1С': { field: '$externalId' },
  },
  constants: { country: 'RU' },
  source: '1c',
};

const orgFile = (limit = '1 500,50') => csvOf([
  ['Код 1С', 'Контрагент', 'ИНН', 'Лимит', 'С', 'Вид', 'Роли', 'Примечание'],
  ['00-001', 'Ромашка', ` ${innOf(11)} `, limit, '05.03.2024', 'ООО', 'customer, supplier', 'ignored'],
  ['00-002', 'Иванов ИП', innOf(12), '0', '31.12.2023', 'ИП', 'supplier', ''],
  ['00-003', 'Лютик', innOf(13), '10,5', '31.02.2024', 'ООО', '', ''],
], ';');

async function importCsv(query: Record<string, string | boolean>, body: string, token?: string) {
  const res = await upload(t, query, body, token ? { token } : {});
  expect(res.status, JSON.stringify(res.body)).toBe(202);
  return finished(t, res.body.id, token);
}

describe('a saved mapping', () => {
  it('is saved, listed and used by name: transforms, constants, custom fields, external ids', async () => {
    const saved = await t.api('PUT', '/api/imports/mappings/orgs-1c', orgMapping);
    expect(saved.status, JSON.stringify(saved.body)).toBe(201);
    expect(saved.body).toMatchObject({ name: 'orgs-1c', version: 1, definition: orgMapping });
    expect((await t.api('PUT', '/api/imports/mappings/orgs-1c', orgMapping)).body.version).toBe(2);
    expect((await t.api('GET', '/api/imports/mappings')).body.data).toEqual([expect.objectContaining({ name: 'orgs-1c', target: 'base.organizations', version: 2 })]);

    const job = await importCsv({ entity: 'base.organizations', mapping: 'orgs-1c' }, orgFile());
    expect(job).toMatchObject({ status: 'completed', mapping: 'orgs-1c', key: 'inn', counts: { created: 2, failed: 1 } });
    expect(job.errors).toEqual([expect.objectContaining({ line: 4, column: 'С', field: 'x_since', rule: 'date-format', value: '31.02.2024' })]);
    const romashka = (await t.api('GET', `/api/base/organizations?inn=${innOf(11)}`)).body.data[0];
    expect(romashka).toMatchObject({ name: 'Ромашка', x_creditLimit: '1500.50', x_since: '2024-03-05', kind: 'company', roles: ['customer', 'supplier'], country: 'RU' });
    expect((await t.api('GET', `/api/base/organizations?inn=${innOf(12)}`)).body.data[0]).toMatchObject({ kind: 'soleTrader', x_creditLimit: '0.00', x_since: '2023-12-31' });
    // The 1C codes are the records' ids in source 1c, as the external-id API shows them (and audited).
    expect((await t.api('GET', `/api/base/organizations/${romashka.id}/external-ids`)).body.data).toEqual([expect.objectContaining({ source: '1c', externalId: '00-001' })]);
    expect((await t.api('PUT', '/api/base/organizations/by-external/1c/00-001', { name: 'Ромашка' })).body).toMatchObject({ id: romashka.id });
    expect(await t.count('kubiki_audit', { record_id: romashka.id, action: 'linked' })).toBe(1);
  });

  it('makes a re-run idempotent: the same file changes nothing, a changed cell updates one record', async () => {
    const before = await t.count('kubiki_audit', { entity: 'organizations' });
    const again = await importCsv({ entity: 'base.organizations', mapping: 'orgs-1c' }, orgFile());
    expect(again).toMatchObject({ status: 'completed', counts: { created: 0, updated: 0, unchanged: 2, failed: 1 } });
    expect(await t.count('kubiki_audit', { entity: 'organizations' })).toBe(before);
    const changed = await importCsv({ entity: 'base.organizations', mapping: 'orgs-1c' }, orgFile('2 000,00'));
    expect(changed).toMatchObject({ counts: { created: 0, updated: 1, unchanged: 1, failed: 1 } });
    expect((await t.api('GET', `/api/base/organizations?inn=${innOf(11)}`)).body.data[0].x_creditLimit).toBe('2000.00');
    expect(await t.count('base_organizations', { inn: innOf(11) })).toBe(1);
  });

  it('refuses a mapping that does not fit the file, naming the column, before anything is queued', async () => {
    const jobs = await t.count('kubiki_import_jobs');
    const res = await upload(t, { entity: 'base.organizations', mapping: 'orgs-1c' }, csvOf([['Name', 'INN'], ['A', innOf(1)]]));
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('import-mapping-invalid');
    expect(res.body.errors).toEqual(expect.arrayContaining([expect.objectContaining({ field: 'columns.Код 1С', rule: 'column' }), expect.objectContaining({ field: 'columns.Лимит' })]));
    const wrongField = await upload(t, { entity: 'base.organizations', mapping: JSON.stringify({ columns: { Name: 'title' } }) }, csvOf([['Name'], ['A']]));
    expect(wrongField.body).toMatchObject({ status: 400, code: 'import-mapping-invalid', field: 'columns.Name.field' });
    expect(await t.count('kubiki_import_jobs')).toBe(jobs);
    expect(await t.count('kubiki_import_files')).toBe(0);
  });
});

describe('references', () => {
  it('are looked up by natural key (INN, e-mail, code) or by external id, and a miss is reported', async () => {
    const people = csvOf([
      ['firstName', 'email', 'Org INN', 'Org 1C'],
      ['Anna', 'anna@example.com', innOf(11), ''],
      ['Boris', 'boris@example.com', '', '00-002'],
      ['Vera', 'vera@example.com', innOf(99), ''],
    ]);
    const mapping = JSON.stringify({ columns: { 'Org INN': 'organization', 'Org 1C': { field: 'organization', ref: '$externalId' } }, source: '1c' });
    const twice = await upload(t, { entity: 'base.people', mapping }, people);
    expect(twice.body).toMatchObject({ status: 400, code: 'import-mapping-invalid' });

    const byInn = await importCsv({ entity: 'base.people', mapping: JSON.stringify({ columns: { 'Org INN': 'organization', 'Org 1C': '$ignore' } }), key: 'email' }, people);
    const romashka = (await t.api('GET', `/api/base/organizations?inn=${innOf(11)}`)).body.data[0];
    expect(byInn).toMatchObject({ counts: { created: 2, failed: 1 } });
    expect(byInn.errors).toEqual([expect.objectContaining({ line: 4, column: 'Org INN', field: 'organization', rule: 'reference-not-found', message: `organization: no base.organizations record has inn ${innOf(99)}` })]);
    expect((await t.api('GET', '/api/base/people?email=anna@example.com')).body.data[0].organization).toBe(romashka.id);

    const byExternal = await importCsv({ entity: 'base.people', mapping: JSON.stringify({ columns: { 'Org 1C': { field: 'organization', ref: '$externalId' }, 'Org INN': '$ignore' }, source: '1c' }), key: 'email' }, people);
    const ip = (await t.api('GET', `/api/base/organizations?inn=${innOf(12)}`)).body.data[0];
    expect(byExternal.counts).toMatchObject({ updated: 1, unchanged: 1, failed: 0 });
    expect((await t.api('GET', '/api/base/people?email=boris@example.com')).body.data[0].organization).toBe(ip.id);

    const products = csvOf([['sku', 'name', 'unit', 'currency', 'price'], ['P-1', 'Widget', 'pcs', 'RUB', '12,5'], ['P-2', 'Gadget', 'bags', 'RUB', '3']]);
    const job = await importCsv({ entity: 'base.products', mapping: JSON.stringify({ options: { decimalComma: true } }), key: 'sku' }, products);
    expect(job.counts).toMatchObject({ created: 1, failed: 1 });
    expect(job.errors[0]).toMatchObject({ line: 3, column: 'unit', rule: 'reference-not-found' });
    expect((await t.api('GET', '/api/base/products?sku=P-1&expand=unit')).body.data[0]).toMatchObject({ price: '12.50', unit: { code: 'pcs' } });
  });
});

describe('uploads and permissions', () => {
  it('takes multipart/form-data with the options as fields', async () => {
    const res = await uploadForm(t, { entity: 'base.currencies', key: 'code', dryRun: 'true' }, { name: 'cur.csv', data: csvOf([['code', 'name'], ['XTS', 'Test currency']]), type: 'text/csv' });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body).toMatchObject({ target: 'base.currencies', dryRun: true, file: { name: 'cur.csv', format: 'csv' } });
    const dry = await finished(t, res.body.id);
    expect(dry.counts).toMatchObject({ created: 1, failed: 0 });
    expect(await t.count('base_currencies', { code: 'XTS' })).toBe(0);
    // The dry run's file, run for real.
    const run = await t.api('POST', `/api/imports/${dry.id}/run`);
    expect(run.status, JSON.stringify(run.body)).toBe(202);
    expect(await finished(t, run.body.id)).toMatchObject({ dryRun: false, sourceJob: dry.id, accepted: true, counts: { created: 1 } });
    expect(await t.count('base_currencies', { code: 'XTS' })).toBe(1);
  });

  it('answers a form without a boundary or cut off mid-part with 400 naming file, keeping nothing', async () => {
    const post = (type: string, body: string) => fetch(`${t.url}/api/imports?entity=base.currencies`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': type }, body });
    const files = await t.count('kubiki_import_files');
    const noBoundary = await post('multipart/form-data', '["not", "a form"]');
    expect(noBoundary.status).toBe(400);
    expect(await noBoundary.json()).toMatchObject({ code: 'validation-failed', field: 'file', rule: 'multipart' });
    const cut = await post('multipart/form-data; boundary=XyZ', '--XyZ\r\ncontent-disposition: form-data; name="file"; filename="a.csv"\r\ncontent-type: text/csv\r\n\r\nname\nHalf');
    expect(cut.status).toBe(400);
    expect(await cut.json()).toMatchObject({ field: 'file', rule: 'multipart' });
    expect(await t.count('kubiki_import_files')).toBe(files);
  });

  it('acts as the caller: no create grant is a 403 before the file is read; update is needed for a key', async () => {
    const reader = await t.userWith(['base.organizations.read']);
    const refused = await upload(t, { entity: 'base.organizations' }, csvOf([['name'], ['Nope']]), { token: reader.token });
    expect(refused.status).toBe(403);
    expect(refused.body).toMatchObject({ code: 'forbidden', permission: 'base.organizations.create' });
    const creator = await t.userWith(['base.organizations.read', 'base.organizations.create']);
    const keyed = await upload(t, { entity: 'base.organizations', key: 'inn' }, csvOf([['name', 'inn'], ['Nope', innOf(31)]]), { token: creator.token });
    expect(keyed.body).toMatchObject({ status: 403, permission: 'base.organizations.update' });
    const multipart = await uploadForm(t, { entity: 'base.organizations' }, { name: 'x.csv', data: 'name\nNope\n', type: 'text/csv' }, reader.token);
    expect(multipart.body).toMatchObject({ status: 403, permission: 'base.organizations.create' });
    expect(await t.count('base_organizations', { name: 'Nope' })).toBe(0);
    // Their own job is theirs to see; another user's is not found.
    const mine = await importCsv({ entity: 'base.organizations' }, csvOf([['name'], ['Creator Co']]), creator.token);
    expect(mine).toMatchObject({ actor: expect.any(String), accepted: true });
    expect((await t.api('GET', `/api/imports/${mine.id}`, undefined, { token: reader.token })).status).toBe(404);
    expect((await t.api('GET', '/api/imports', undefined, { token: creator.token })).body.data.map((j: { id: string }) => j.id)).toEqual([mine.id]);
  });

  it('refuses to import a completely imported file again without a key, unless told to', async () => {
    const file = csvOf([['name'], ['Once Only LLC']]);
    expect((await importCsv({ entity: 'base.organizations' }, file)).accepted).toBe(true);
    const again = await upload(t, { entity: 'base.organizations' }, file);
    expect(again.body).toMatchObject({ status: 409, code: 'conflict' });
    expect((await importCsv({ entity: 'base.organizations', again: true }, file)).counts.created).toBe(1);
    expect(await t.count('base_organizations', { name: 'Once Only LLC' })).toBe(2);
  });
});
