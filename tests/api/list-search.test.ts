import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

// q= list search: title fields contain the text with е and ё as one letter, identifier fields
// ("x-search": "exact") equal it.
let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki();
});
afterAll(() => t?.close());

const create = async (path: string, body: Record<string, unknown>): Promise<string> => {
  const r = await t.api('POST', path, body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body.id;
};
const search = async (path: string, q: string): Promise<string[]> => {
  const r = await t.api('GET', `${path}?q=${encodeURIComponent(q)}&fields=name`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  // Sorted here: the database's collation decides where Ё goes.
  return r.body.data.map((o: { name: string }) => o.name).sort();
};
const ORGS = '/api/base/organizations';

describe('q= search', () => {
  it('treats е and ё (and Е, Ё) as one letter, in any case', async () => {
    for (const name of ['Ёжик LLC', 'Елка', 'Ёлкин и партнёры', 'Ежевика', 'Acme']) await create(ORGS, { name });
    expect(await search(ORGS, 'ежик')).toEqual(['Ёжик LLC']);
    expect(await search(ORGS, 'ЕЖИК')).toEqual(['Ёжик LLC']);
    expect(await search(ORGS, 'ёлка')).toEqual(['Елка']);
    expect(await search(ORGS, 'ЁЛК')).toEqual(['Ёлкин и партнёры', 'Елка']);
    expect(await search(ORGS, 'партнеры')).toEqual(['Ёлкин и партнёры']);
    expect(await search(ORGS, 'ёж')).toEqual(['Ёжик LLC', 'Ежевика']);
    expect(await search(ORGS, 'ACME')).toEqual(['Acme']);
    // A second title field is searched the same way.
    await create(ORGS, { name: 'Short', legalName: 'ООО «Зелёный сад»' });
    expect(await search(ORGS, 'зеленый')).toEqual(['Short']);
  });

  it('finds an organization by its INN, OGRN or KPP, whole and as stored', async () => {
    await create(ORGS, { name: 'Sber', inn: '7707083893', ogrn: '1027700132195', kpp: '773601001' });
    await create(ORGS, { name: 'Yandex', inn: '7736207543', kpp: '770401001' });
    expect(await search(ORGS, '7707083893')).toEqual(['Sber']);
    expect(await search(ORGS, ' 7736207543 ')).toEqual(['Yandex']);
    expect(await search(ORGS, '1027700132195')).toEqual(['Sber']);
    expect(await search(ORGS, '770401001')).toEqual(['Yandex']);
    // Identifiers match whole: a part of an INN is not a search for it.
    expect(await search(ORGS, '77070')).toEqual([]);
  });

  it('finds people by e-mail and products by barcode', async () => {
    await create('/api/base/people', { firstName: 'Ivan', email: 'ivan@example.ru' });
    const people = await t.api('GET', '/api/base/people?q=ivan%40example.ru');
    expect(people.body.data.map((p: { firstName: string }) => p.firstName)).toEqual(['Ivan']);
    await create('/api/base/products', { sku: 'TEA-1', name: 'Чай', barcode: '4601234567893' });
    expect(await search('/api/base/products', '4601234567893')).toEqual(['Чай']);
    expect(await search('/api/base/products', 'tea')).toEqual(['Чай']);
  });

  it('takes % and _ in the text literally', async () => {
    for (const name of ['100% хлопок', '100 хлопок', 'a_b', 'axb']) await create(ORGS, { name });
    expect(await search(ORGS, '100%')).toEqual(['100% хлопок']);
    expect(await search(ORGS, 'a_b')).toEqual(['a_b']);
    expect(await search(ORGS, '%')).toEqual(['100% хлопок']);
  });

  it('lets an admin mark a custom field as searched exactly, and refuses other x-search values', async () => {
    const fields = `/api/meta/entities/base/organizations/fields`;
    const bad = await t.api('POST', fields, { name: 'x_okpo', schema: { type: 'string', 'x-search': 'fuzzy' } });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'validation-failed', field: 'schema' });
    expect(bad.body.detail).toContain('"x-search" must be "exact"');
    const notText = await t.api('POST', fields, { name: 'x_rank', schema: { type: 'integer', 'x-search': 'exact' } });
    expect(notText.status).toBe(400);

    expect((await t.api('POST', fields, { name: 'x_okpo', schema: { type: 'string', maxLength: 10, 'x-search': 'exact' } })).status).toBe(201);
    await create(ORGS, { name: 'With OKPO', x_okpo: '00032537' });
    expect(await search(ORGS, '00032537')).toEqual(['With OKPO']);
    // The keyword guides search only; the field still validates as declared.
    expect((await t.api('POST', ORGS, { name: 'Too long', x_okpo: '12345678901' })).status).toBe(400);
  });
});
