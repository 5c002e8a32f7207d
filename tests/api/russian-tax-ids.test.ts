import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

// INN, KPP and OGRN are checked with their real algorithms, declared as `format`s in the schema
// (`ru-inn`, `ru-kpp`, `ru-ogrn`), so a mistyped digit is a 400 naming the field, not a saved record.

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki();
});
afterAll(() => t?.close());

const ORGS = '/api/base/organizations';

/** Expects a 400 validation-failed on `field` with `rule`, nothing written; returns the issue's message. */
async function rejected(request: () => Promise<ApiResponse>, field: string, rule: string): Promise<string> {
  const before = await t.count('base_organizations');
  const res = await request();
  expect(res.status, JSON.stringify(res.body)).toBe(400);
  expect(res.body).toMatchObject({ code: 'validation-failed', field, rule });
  expect(await t.count('base_organizations')).toBe(before);
  const issue = (res.body.errors as { field: string; rule: string; message: string }[]).find((e) => e.field === field);
  expect(issue).toMatchObject({ field, rule });
  expect(res.body.detail).toContain(issue!.message);
  return issue!.message;
}

const created = async (body: Record<string, unknown>): Promise<Record<string, unknown>> => {
  const res = await t.api('POST', ORGS, body);
  expect(res.status, JSON.stringify(res.body)).toBe(201);
  return res.body;
};

describe('INN', () => {
  it('accepts a 10-digit INN with the right check digit and refuses one with a wrong one', async () => {
    expect(await created({ name: 'Sberbank', inn: '7707083893' })).toMatchObject({ inn: '7707083893' });
    const message = await rejected(() => t.api('POST', ORGS, { name: 'Typo', inn: '7707083894' }), 'inn', 'check-digit');
    expect(message).toBe('inn 7707083894 has a wrong check digit');
  });

  it('checks both check digits of a 12-digit INN', async () => {
    expect(await created({ name: 'IP Ivanov', kind: 'soleTrader', inn: '500100732259' })).toMatchObject({ inn: '500100732259' });
    expect(await rejected(() => t.api('POST', ORGS, { name: 'Last digit', inn: '500100732258' }), 'inn', 'check-digit')).toBe('inn 500100732258 has a wrong check digit');
    // The 11th digit is a check digit too: changing it alone breaks both.
    await rejected(() => t.api('POST', ORGS, { name: 'Eleventh digit', inn: '500100732269' }), 'inn', 'check-digit');
  });

  it('says what an INN looks like when it is not 10 or 12 digits', async () => {
    for (const inn of ['12345', '77070838930', '770708389A', ' 7707083893']) {
      const message = await rejected(() => t.api('POST', ORGS, { name: 'Short', inn }), 'inn', 'format');
      expect(message).toBe('inn must be a Russian taxpayer id (INN): 10 digits for an organization, 12 for an individual');
    }
  });

  it('is checked on PATCH too', async () => {
    const org = await created({ name: 'To edit', inn: '7736207543' });
    await rejected(() => t.api('PATCH', `${ORGS}/${String(org.id)}`, { inn: '7736207544' }), 'inn', 'check-digit');
    const read = await t.api('GET', `${ORGS}/${String(org.id)}`);
    expect(read.body).toMatchObject({ inn: '7736207543', version: 1 });
  });
});

describe('KPP', () => {
  it('is 4 digits, 2 digits or capital letters, 3 digits', async () => {
    await created({ name: 'KPP digits', kpp: '770701001' });
    await created({ name: 'KPP letters', kpp: '7707AB001' });
    for (const kpp of ['77070100', '7707ab001', '77070100A', '7707010011']) {
      const message = await rejected(() => t.api('POST', ORGS, { name: 'Bad KPP', kpp }), 'kpp', 'format');
      expect(message).toContain('kpp must be a Russian tax registration reason code (KPP): 9 characters');
    }
  });
});

describe('OGRN and OGRNIP', () => {
  it('checks the OGRN control digit (first 12 digits mod 11 mod 10)', async () => {
    await created({ name: 'OGRN ok', ogrn: '1027700132195' });
    expect(await rejected(() => t.api('POST', ORGS, { name: 'OGRN typo', ogrn: '1027700132196' }), 'ogrn', 'check-digit')).toBe('ogrn 1027700132196 has a wrong check digit');
  });

  it('checks the OGRNIP control digit (first 14 digits mod 13 mod 10)', async () => {
    await created({ name: 'OGRNIP ok', kind: 'soleTrader', ogrn: '304500116000157' });
    await rejected(() => t.api('POST', ORGS, { name: 'OGRNIP typo', ogrn: '304500116000158' }), 'ogrn', 'check-digit');
  });

  it('says it is 13 or 15 digits otherwise', async () => {
    const message = await rejected(() => t.api('POST', ORGS, { name: 'OGRN 14', ogrn: '10277001321951' }), 'ogrn', 'format');
    expect(message).toBe('ogrn must be a Russian state registration number: 13 digits (OGRN) or 15 digits (OGRNIP)');
  });
});

describe('any schema can declare the formats', () => {
  it('a custom field of base.people with "format": "ru-inn" is checked the same way', async () => {
    const field = await t.api('POST', '/api/meta/entities/base/people/fields', { name: 'x_inn', schema: { type: 'string', format: 'ru-inn' } });
    expect(field.status, JSON.stringify(field.body)).toBe(201);
    expect((await t.api('POST', '/api/base/people', { firstName: 'Ivan', x_inn: '500100732259' })).status).toBe(201);
    const bad = await t.api('POST', '/api/base/people', { firstName: 'Petr', x_inn: '500100732258' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'validation-failed', field: 'x_inn', rule: 'check-digit', detail: 'x_inn 500100732258 has a wrong check digit' });
  });

  it('the company profile (settings) uses them for the seller\'s ids', async () => {
    const ok = await t.api('PUT', '/api/settings/company', { name: 'Kubiki LLC', inn: '7707083893', kpp: '770701001', ogrn: '1027700132195' });
    expect(ok.status, JSON.stringify(ok.body)).toBe(200);
    const bad = await t.api('PUT', '/api/settings/company', { name: 'Kubiki LLC', inn: '7707083894' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'validation-failed', field: 'inn', rule: 'check-digit', detail: 'inn 7707083894 has a wrong check digit' });
  });
});
