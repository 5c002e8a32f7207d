// XLSX in and out through REST (export with custom fields, import of a workbook with dates and
// numbers), progress of a job in batches, and a plugin's import target (core.importTargets): rows
// validated by the importer, written by the plugin in the batch's transaction, refused by index.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ExcelJS from 'exceljs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { csvOf, finished, innOf, shippedPlugins, upload } from './import-helpers.ts';

const XLSX = 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
const FIXTURES = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures/plugins');

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [shippedPlugins(), FIXTURES], enable: ['stockfix'] });
  const field = await t.api('POST', '/api/meta/entities/base/organizations/fields', { name: 'x_segment', schema: { type: 'string', enum: ['A', 'B', 'C'] } });
  expect(field.status, JSON.stringify(field.body)).toBe(201);
}, 180_000);
afterAll(async () => t?.close());

async function workbook(rows: unknown[][], sheet = 'Data'): Promise<Buffer> {
  const wb = new ExcelJS.Workbook();
  const ws = wb.addWorksheet(sheet);
  for (const r of rows) ws.addRow(r);
  return Buffer.from(await wb.xlsx.writeBuffer());
}

async function download(url: string): Promise<{ status: number; type: string | null; disposition: string | null; body: Buffer }> {
  const res = await fetch(t.url + url, { headers: { authorization: `Bearer ${t.adminToken}` } });
  return { status: res.status, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition'), body: Buffer.from(await res.arrayBuffer()) };
}

describe('XLSX', () => {
  it('imports a workbook: numbers as text fields, real dates, a chosen sheet; bad rows by row number', async () => {
    const file = await workbook([
      ['name', 'inn', 'x_segment', 'legalName'],
      ['Excel One', Number(innOf(1, 61)), 'A', 'Excel One LLC'],
      [],
      ['Excel Two', innOf(2, 61), 'Z', ''],
      ['Excel Three', innOf(3, 61), 'C', { richText: [{ text: 'Excel ' }, { text: 'Three LLC' }] }],
    ], 'Orgs');
    const res = await upload(t, { entity: 'base.organizations', sheet: 'Orgs', fileName: 'orgs.xlsx' }, file, { contentType: XLSX });
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    expect(res.body.file).toMatchObject({ format: 'xlsx', name: 'orgs.xlsx' });
    const job = await finished(t, res.body.id);
    expect(job).toMatchObject({ status: 'completed', counts: { created: 2, failed: 1 } });
    expect(job.errors).toEqual([expect.objectContaining({ line: 4, column: 'x_segment', rule: 'enum', value: 'Z' })]);
    expect((await t.api('GET', `/api/base/organizations?inn=${innOf(1, 61)}`)).body.data[0]).toMatchObject({ name: 'Excel One', x_segment: 'A' });
    expect((await t.api('GET', `/api/base/organizations?inn=${innOf(3, 61)}`)).body.data[0].legalName).toBe('Excel Three LLC');
    const noSheet = await upload(t, { entity: 'base.organizations', sheet: 'Missing', fileName: 'orgs.xlsx' }, file, { contentType: XLSX });
    expect(noSheet.body).toMatchObject({ status: 400, code: 'import-file-invalid', field: 'sheet' });
  });

  it('exports an entity with its custom fields as XLSX and CSV, and the XLSX imports back unchanged', async () => {
    const xlsx = await download('/api/exports/base/organizations?format=xlsx&x_segment=A');
    expect(xlsx.status).toBe(200);
    expect(xlsx.type).toBe(XLSX);
    expect(xlsx.disposition).toMatch(/^attachment; filename="base-organizations-\d{4}-\d{2}-\d{2}\.xlsx"$/);
    const wb = new ExcelJS.Workbook();
    await wb.xlsx.load(xlsx.body as unknown as ArrayBuffer);
    const ws = wb.getWorksheet('organizations')!;
    const header = (ws.getRow(1).values as unknown[]).slice(1);
    expect(header).toEqual(expect.arrayContaining(['id', 'name', 'inn', 'x_segment', 'createdAt']));
    expect(ws.rowCount).toBe(2);
    const cell = (name: string) => ws.getRow(2).getCell(header.indexOf(name) + 1).value;
    expect(cell('name')).toBe('Excel One');
    expect(cell('x_segment')).toBe('A');

    const back = await upload(t, { entity: 'base.organizations', key: 'id', fileName: 'back.xlsx' }, xlsx.body, { contentType: XLSX });
    expect(back.status, JSON.stringify(back.body)).toBe(202);
    expect((await finished(t, back.body.id)).counts).toEqual({ created: 0, updated: 0, unchanged: 1, failed: 0 });

    const csv = await download('/api/exports/base/organizations?fields=name,x_segment&delimiter=;&bom=false&sort=name');
    expect(csv.status).toBe(400);
    const ok = await download('/api/exports/base/organizations?fields=name,x_segment&delimiter=;&bom=false');
    expect(ok.type).toMatch(/^text\/csv/);
    expect(ok.body.toString().split('\r\n')[0]).toBe('id;name;x_segment');
    const reader = await t.userWith([]);
    const refused = await fetch(`${t.url}/api/exports/base/organizations`, { headers: { authorization: `Bearer ${reader.token}` } });
    expect(refused.status).toBe(403);
  });
});

describe('progress', { timeout: 120_000 }, () => {
  it('is kept per batch: rows read, bytes of the file, batches, percent', async () => {
    const rows: (string | number)[][] = [['name', 'inn']];
    for (let i = 0; i < 1000; i++) rows.push([`Batch Org ${i}`, innOf(i, 62)]);
    const body = csvOf(rows);
    const res = await upload(t, { entity: 'base.organizations', batchSize: 100 }, body);
    expect(res.body.progress).toMatchObject({ rowsRead: 0, percent: 0, totalBytes: Buffer.byteLength(body) });
    const seen: number[] = [];
    let job;
    for (;;) {
      job = (await t.api('GET', `/api/imports/${res.body.id}`)).body;
      seen.push(job.progress.rowsRead);
      if (job.status !== 'queued' && job.status !== 'running') break;
    }
    expect(job).toMatchObject({ status: 'completed', accepted: true, counts: { created: 1000 }, progress: { rowsRead: 1000, batches: 10, percent: 100, bytesRead: Buffer.byteLength(body) } });
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    const list = await t.api('GET', '/api/imports?status=completed&limit=1');
    expect(list.body.data[0].id).toBe(job.id);
    expect(await t.k.imports.fullyAccepted(job.id)).toBe(true);
    expect((await t.k.imports.imported('base.organizations')).created).toBeGreaterThanOrEqual(1000);
  });
});

describe('cancel', () => {
  it('stops a job at its next batch: the batch in flight is rolled back, nothing after it is written', async () => {
    const { Readable } = await import('node:stream');
    const { SYSTEM } = await import('../../core/auth/principal.ts');
    const body = csvOf([['name'], ['Cancelled One'], ['Cancelled Two']]);
    const job = await t.k.imports.createJob({ target: 'base.organizations', mapping: { target: 'base.organizations' }, dryRun: false, actor: SYSTEM, batchSize: 1, file: { name: 'c.csv', format: 'csv', size: body.length, sha256: 'c' } });
    const claimed = await t.k.imports.claim(job.id);
    expect((await t.api('POST', `/api/imports/${job.id}/cancel`)).body).toMatchObject({ status: 'cancelled', accepted: false });
    const ended = await t.k.imports.run(claimed, () => Readable.from([body]), {}, SYSTEM);
    expect(ended).toMatchObject({ status: 'cancelled', created: 0, batches: 0 });
    expect(await t.count('base_organizations', { name: 'Cancelled One' })).toBe(0);
    expect((await t.api('POST', `/api/imports/${job.id}/cancel`)).body).toMatchObject({ status: 409, code: 'conflict' });
  });
});

describe('a plugin import target', { timeout: 120_000 }, () => {
  it('gets validated rows with references resolved, in the batch transaction; dry run writes nothing', async () => {
    const products = await upload(t, { entity: 'base.products', key: 'sku' }, csvOf([['sku', 'name'], ['ST-1', 'Bolt'], ['ST-2', 'Nut']]));
    await finished(t, products.body.id);
    const file = csvOf([
      ['Артикул', 'Остаток', 'Дата'],
      ['ST-1', '10,5', '01.01.2026'],
      ['ST-2', '0', '01.01.2026'],
      ['ST-9', '3', '01.01.2026'],
      ['ST-2', 'много', '01.01.2026'],
      ['ST-2', '7', '01.01.2026'],
    ]);
    const mapping = JSON.stringify({ columns: { 'Артикул': { field: 'product', ref: 'sku' }, 'Остаток': 'quantity', 'Дата': 'asOf' }, options: { decimalComma: true } });
    const dry = await finished(t, (await upload(t, { entity: 'stockfix.openingStock', mapping, dryRun: true }, file)).body.id);
    expect(dry).toMatchObject({ status: 'completed', counts: { created: 2, failed: 3 } });
    expect(await t.count('stockfix_levels')).toBe(0);
    const real = await finished(t, (await upload(t, { entity: 'stockfix.openingStock', mapping }, file)).body.id);
    expect(real.counts).toMatchObject({ created: 2, failed: 3 });
    expect(real.errors).toEqual([
      expect.objectContaining({ line: 3, column: 'Остаток', field: 'quantity', rule: 'positive' }),
      expect.objectContaining({ line: 4, column: 'Артикул', field: 'product', rule: 'reference-not-found' }),
      expect.objectContaining({ line: 5, column: 'Остаток', field: 'quantity', rule: 'x-decimal', value: 'много' }),
    ]);
    const levels = (await t.api('GET', '/api/stockfix/levels?sort=quantity')).body.data;
    expect(levels.map((l: { quantity: string; asOf: string }) => [l.quantity, l.asOf])).toEqual([['7.000', '2026-01-01'], ['10.500', '2026-01-01']]);
    expect(levels[0].loadKey).toBe(`import-${real.id}-6`);

    const clerk = await t.userWith(['base.products.read']);
    const refused = await upload(t, { entity: 'stockfix.openingStock', mapping }, file, { token: clerk.token });
    expect(refused.body).toMatchObject({ status: 403, permission: 'stockfix.levels.load' });
  });
});
