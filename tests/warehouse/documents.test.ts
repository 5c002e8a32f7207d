// The warehouse's printed documents (templates/warehouse/*.hbs), rendered to HTML through the
// templates API as finance's invoice is: the delivery note and the УПД of a shipment (статус 1 with
// VAT, статус 2 when every line is без НДС), the receipt note of a goods receipt, and the count
// sheet of a stock count. Computed values (line amounts, VAT, totals, units, the currency) come from
// the warehouse's document-totals providers (plugins/warehouse/orders/document-totals.ts).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../core/auth/principal.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { ok, receive, warehouse, type Place } from './helpers.ts';

let t: TestKubiki;

const COMPANY = {
  name: 'Кубики', legalName: 'ООО «Кубики»', inn: '7707083893', kpp: '770701001', address: 'Москва, ул. Примерная, 1',
  director: 'Иванов И. И.', chiefAccountant: 'Петрова А. А.',
};

/** The document as a reader sees it: tags dropped, entities decoded, every run of spaces (no-break ones too) one space. */
const text = (html: string): string => html
  .replace(/<style[\s\S]*?<\/style>/g, ' ')
  .replace(/<[^>]+>/g, ' ')
  .replace(/&#x([0-9a-f]+);/gi, (_, h: string) => String.fromCharCode(parseInt(h, 16)))
  .replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d)))
  .replace(/&quot;/g, '"').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&')
  .replace(/[\s\u00a0\u202f]+/g, ' ')
  .trim();

/** Renders a template for a record as a stored HTML document (POST /api/templates/{id}/render) and returns its text. */
async function render(template: string, recordId: string, token?: string): Promise<string> {
  const r = await t.api('POST', `/api/templates/${template}/render`, { recordId, format: 'html' }, token ? { token } : {});
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  expect(r.body).toMatchObject({ template, format: 'html', contentType: 'text/html; charset=utf-8' });
  const res = await fetch(`${t.url}/api/documents/${r.body.id}/content`, { headers: { authorization: `Bearer ${token ?? t.adminToken}` } });
  expect(res.status).toBe(200);
  return text(await res.text());
}

const idOf = async (path: string): Promise<string> => {
  const page = ok(await t.api('GET', path));
  expect(page.data.length, path).toBe(1);
  return page.data[0].id as string;
};

beforeAll(async () => {
  t = await startKubiki({ enable: ['warehouse'] });
  ok(await t.api('PUT', '/api/settings/company', COMPANY));
}, 180_000);
afterAll(() => t?.close());

describe('the templates', () => {
  it('are shipped for the warehouse entities', async () => {
    const list = ok(await t.api('GET', '/api/templates'));
    const byId = new Map((list.data ?? list).map((x: { id: string; entity: string }) => [x.id, x.entity]));
    expect(byId.get('warehouse.delivery-note')).toBe('warehouse.shipments');
    expect(byId.get('warehouse.upd')).toBe('warehouse.shipments');
    expect(byId.get('warehouse.receipt-note')).toBe('warehouse.receipts');
    expect(byId.get('warehouse.count-sheet')).toBe('warehouse.counts');
  });
});

describe('count sheet (инвентаризационная опись)', () => {
  let w: Place;
  let countId: string;
  let bins: { code: string }[];
  beforeAll(async () => {
    w = await warehouse(t, { code: 'CNT', zones: 1, bins: 2 });
    bins = await Promise.all(w.bins.map(async (b) => ok(await t.api('GET', `/api/warehouse/locations/${b}`))));
    const kg = await idOf('/api/base/units?code=kg');
    const nails = ok(await t.api('POST', '/api/base/products', { sku: 'CNT-1', name: 'Гвозди', unit: kg }), 201);
    const hammer = ok(await t.api('POST', '/api/base/products', { sku: 'CNT-2', name: 'Молоток' }), 201);
    await receive(t, nails.id, w.bins[0], '10', '3.00');
    await receive(t, hammer.id, w.bins[1], '5', '2.00');
    const count = ok(await t.api('POST', '/api/warehouse/counts', { reference: 'ИНВ-2026-01', location: w.zones[0], memo: 'Плановая' }), 201);
    countId = count.id;
    ok(await t.api('POST', `/api/warehouse/counts/${countId}/start`));
    ok(await t.api('POST', `/api/warehouse/counts/${countId}/lines`, { lines: [
      { product: nails.id, location: w.bins[0], counted: '9.5' },
      { product: hammer.id, location: w.bins[1], counted: '6', note: 'за стеллажом' },
    ] }));
  });

  it('prints the count, its location and its lines with expected, counted and differences', async () => {
    const doc = await render('warehouse.count-sheet', countId);
    expect(doc).toContain('Инвентаризационная опись № ИНВ-2026-01');
    expect(doc).toContain('Место хранения CNT-Z0 — Zone 0 (и все места в нём)');
    expect(doc).toContain('Состояние идёт подсчёт');
    expect(doc).toContain('Примечание Плановая');
    // Lines in location order; the unit column is filled by the document-totals provider.
    expect(doc).toMatch(new RegExp(`1 Гвозди CNT-1 ${bins[0].code} (кг )?10,000 9,500 -0,500 `));
    expect(doc).toMatch(new RegExp(`2 Молоток CNT-2 ${bins[1].code} (шт )?5,000 6,000 1,000 (2,00 )?за стеллажом`));
    expect(doc).toContain('Итого 15,000 15,500 0,500');
    expect(doc).toContain('Порядковых номеров 2');
    expect(doc).toContain('ООО «Кубики»');
    expect(doc).toContain('ИНН 7707083893 / КПП 770701001');
  });

  it('gives every line its unit and the differences their value (documentTotals provider)', async () => {
    const doc = await render('warehouse.count-sheet', countId);
    // Value at the current unit cost, as GET /counts/{id}/review values it: −0.5 × 3.00, +1 × 2.00.
    expect(doc).toContain(`1 Гвозди CNT-1 ${bins[0].code} кг 10,000 9,500 -0,500 -1,50 `);
    expect(doc).toContain(`2 Молоток CNT-2 ${bins[1].code} шт 5,000 6,000 1,000 2,00 за стеллажом`);
    expect(doc).toContain('Итого 15,000 15,500 0,500 0,50');
    expect(doc).toContain('Излишки: 1,000 на сумму 2,00; недостача: 0,500 на сумму 1,50.');
  });

  it('prints every line of a count however many (more than a list page of 500)', { timeout: 120_000 }, async () => {
    const big = await warehouse(t, { code: 'BIG', zones: 0 });
    const created = await t.k.repository('base.products').createMany(
      Array.from({ length: 505 }, (_, i) => ({ sku: `BIG-${String(i + 1).padStart(3, '0')}`, name: `Деталь ${i + 1}` })),
      { actor: SYSTEM },
    );
    const count = ok(await t.api('POST', '/api/warehouse/counts', { reference: 'ИНВ-BIG', location: big.root }), 201);
    ok(await t.api('POST', `/api/warehouse/counts/${count.id}/start`));
    ok(await t.api('POST', `/api/warehouse/counts/${count.id}/lines`, { lines: created.map((p) => ({ product: p.id, counted: '1' })) }));
    const doc = await render('warehouse.count-sheet', count.id);
    expect(doc).toContain('Порядковых номеров 505.');
    expect(doc).toMatch(/ 505 Деталь \d+ BIG-\d{3} BIG шт 0,000 1,000 1,000 /);
    expect(doc).toContain('Итого 0,000 505,000 505,000');
  });
});

// Shipments and receipts are made only by the order routes (POST /salesOrders/{id}/shipments,
// /purchaseOrders/{id}/receive: /tmp/spec/orders-spec.md); until they exist these 404.
describe('shipment and receipt documents', () => {
  let warehouseId: string;
  let root: string;
  let rub: string;
  let customer: string;
  let supplier: string;
  const products: Record<'nails' | 'boxes' | 'crate', string> = { nails: '', boxes: '', crate: '' };
  beforeAll(async () => {
    const w = ok(await t.api('POST', '/api/warehouse/warehouses', { code: 'MSK-1', name: 'Склад Москва', address: 'Москва, Складской пр., 7' }), 201);
    warehouseId = w.id;
    root = w.location;
    rub = await idOf('/api/base/currencies?code=RUB');
    const kg = await idOf('/api/base/units?code=kg');
    const pcs = await idOf('/api/base/units?code=pcs');
    const box = ok(await t.api('POST', '/api/base/units', { code: 'box', name: 'Box', okeiCode: '778' }), 201).id;
    customer = ok(await t.api('POST', '/api/base/organizations', {
      name: 'Ромашка', legalName: 'ООО «Ромашка»', inn: '7701234560', kpp: '770101001', legalAddress: 'Москва, ул. Ленина, 5',
    }), 201).id;
    supplier = ok(await t.api('POST', '/api/base/organizations', { name: 'ООО «Поставщик»', inn: '7736207543', kpp: '773601001' }), 201).id;
    // Nails: kept in kg (the catalogue unit), 2.5 kg a unit. Boxes: catalogue unit pcs, kept in packs (the stock unit wins).
    products.nails = ok(await t.api('POST', '/api/base/products', { sku: 'KB-1', name: 'Гвозди строительные', unit: kg }), 201).id;
    ok(await t.api('POST', '/api/warehouse/products', { product: products.nails, weight: '2.500' }), 201);
    products.boxes = ok(await t.api('POST', '/api/base/products', { sku: 'KB-2', name: 'Коробка картонная', unit: pcs }), 201).id;
    ok(await t.api('POST', '/api/warehouse/products', { product: products.boxes, stockUnit: box, weight: '0.200' }), 201);
    // Crate: no unit anywhere ("шт").
    products.crate = ok(await t.api('POST', '/api/base/products', { sku: 'KB-3', name: 'Ящик деревянный' }), 201).id;
    await receive(t, products.nails, root, '100', '700.00');
    await receive(t, products.boxes, root, '100', '40.00');
    await receive(t, products.crate, root, '100', '300.00');
  });

  /** A confirmed sales order, shipped in full: packed in `packages`, shipped on 2026-03-03. */
  async function shipped(order: Record<string, unknown>, packages: number): Promise<Record<string, any>> {
    const so = ok(await t.api('POST', '/api/warehouse/salesOrders', { customer, warehouse: warehouseId, date: '2026-03-02', ...order }), 201);
    const confirmed = ok(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/confirm`));
    const shipment = ok(await t.api('POST', `/api/warehouse/salesOrders/${so.id}/shipments`, {}), 201);
    expect(shipment.number).toMatch(/^SHP-\d{4}-\d{6}$/);
    ok(await t.api('POST', `/api/warehouse/shipments/${shipment.id}/pack`, { packages }));
    ok(await t.api('POST', `/api/warehouse/shipments/${shipment.id}/ship`, { date: '2026-03-03' }));
    return { ...ok(await t.api('GET', `/api/warehouse/shipments/${shipment.id}`)), orderNumber: confirmed.number };
  }

  // 4 kg × 1 250.00 at 22 %: 5 000.00 + 1 100.00; 3 packs × 99.99 − 10 % = 269.97 (89.99 a pack) at 10 %: + 27.00.
  const withVat = () => ({
    currency: rub, deliveryAddress: 'Москва, ул. Ленина, 5, склад 2',
    lines: [
      { product: products.nails, description: 'Гвозди строительные', quantity: '4', price: '1250.00', vatRate: '22' },
      { product: products.boxes, description: 'Коробка картонная', quantity: '3', price: '99.99', discountPercent: '10', vatRate: '10' },
    ],
  });
  let vatShipment: Record<string, any>;
  const vatShipmentOnce = async () => (vatShipment ??= await shipped(withVat(), 3));

  it('prints the delivery note: number, date, parties with INN/KPP, lines, totals, packages and weight', async () => {
    const s = await vatShipmentOnce();
    expect(s).toMatchObject({ status: 'shipped', subtotal: '5269.97', vatTotal: '1127.00', total: '6396.97', packages: 3, weight: '10.600' });
    const doc = await render('warehouse.delivery-note', s.id);
    expect(doc).toContain(`Расходная накладная № ${s.number} от 3 марта 2026 г.`);
    expect(doc).toContain('Поставщик ООО «Кубики», ИНН 7707083893, КПП 770701001, Москва, ул. Примерная, 1');
    expect(doc).toContain('Склад Склад Москва, Москва, Складской пр., 7');
    expect(doc).toContain('Покупатель ООО «Ромашка», ИНН 7701234560, КПП 770101001, Москва, ул. Ленина, 5');
    expect(doc).toContain('Адрес доставки Москва, ул. Ленина, 5, склад 2');
    expect(doc).toContain(`Основание Заказ покупателя № ${s.orderNumber} от 02.03.2026`);
    expect(doc).toContain('1 Гвозди строительные (KB-1) кг 4,000 1 250,00 ₽ 5 000,00 ₽ 22 % 1 100,00 ₽ 6 100,00 ₽');
    expect(doc).toContain('2 Коробка картонная (KB-2) упак 3,000 89,99 ₽ 269,97 ₽ 10 % 27,00 ₽ 296,97 ₽');
    expect(doc).toContain('Итого 7,000 5 269,97 ₽ 1 127,00 ₽ 6 396,97 ₽');
    expect(doc).toContain('В том числе НДС 22 % (база 5 000,00 ₽) 1 100,00 ₽');
    expect(doc).toContain('В том числе НДС 10 % (база 269,97 ₽) 27,00 ₽');
    expect(doc).toContain('Всего наименований 2, на сумму 6 396,97 ₽, в том числе НДС 1 127,00 ₽.');
    expect(doc).toContain('Шесть тысяч триста девяносто шесть рублей 97 копеек');
    expect(doc).toContain('Количество мест 3');
    expect(doc).toContain('Масса груза (брутто) 10,600 кг');
  });

  it('prints the УПД with статус 1 when the lines carry VAT, also for a printer who may not read base.currencies (the storekeeper role cannot)', async () => {
    const s = await vatShipmentOnce();
    const clerk = await t.userWith(['core.documents.create', 'warehouse.shipments.read', 'warehouse.salesOrders.read', 'warehouse.warehouses.read', 'base.organizations.read', 'base.products.read']);
    const doc = await render('warehouse.upd', s.id, clerk.token);
    expect(doc).toContain('Универсальный передаточный документ Статус: 1');
    expect(doc).toContain(`Счёт-фактура № ${s.number} от 3 марта 2026 г. (1)`);
    expect(doc).toContain('Продавец: ООО «Кубики» (2) Адрес: Москва, ул. Примерная, 1 (2а) ИНН/КПП продавца: 7707083893/770701001 (2б)');
    expect(doc).toContain('Грузоотправитель и его адрес: ООО «Кубики», Москва, Складской пр., 7 (3)');
    expect(doc).toContain('Грузополучатель и его адрес: ООО «Ромашка», Москва, ул. Ленина, 5, склад 2 (4)');
    expect(doc).toContain(`Документ об отгрузке: № п/п 1–2 № ${s.number} от 03.03.2026 (5а)`);
    expect(doc).toContain('Покупатель: ООО «Ромашка» (6) Адрес: Москва, ул. Ленина, 5 (6а) ИНН/КПП покупателя: 7701234560/770101001 (6б)');
    expect(doc).toContain('Валюта: наименование, код: Российский рубль, 643 (7)');
    expect(doc).toContain('KB-1 1 Гвозди строительные — 166 кг 4,000 1 250,00 5 000,00 без акциза 22 % 1 100,00 6 100,00 — — —');
    expect(doc).toContain('KB-2 2 Коробка картонная — 778 упак 3,000 89,99 269,97 без акциза 10 % 27,00 296,97 — — —');
    expect(doc).toContain('Всего к оплате 5 269,97 Х 1 127,00 6 396,97');
    expect(doc).toContain('Всего к оплате: 6 396,97 ₽ (Шесть тысяч триста девяносто шесть рублей 97 копеек), в том числе НДС 1 127,00 ₽.');
    expect(doc).toContain('Руководитель организации или иное уполномоченное лицо ____________ Иванов И. И.');
    expect(doc).toContain('Главный бухгалтер или иное уполномоченное лицо ____________ Петрова А. А.');
    expect(doc).toContain(`Основание передачи (сдачи) / получения (приёмки): заказ покупателя № ${s.orderNumber} от 02.03.2026 [8]`);
    expect(doc).toContain('Данные о транспортировке и грузе: мест 3, масса брутто 10,600 кг [9]');
    expect(doc).toContain('Дата отгрузки, передачи (сдачи): 3 марта 2026 г. [11]');
    expect(doc).toContain('Наименование экономического субъекта — составителя документа: ООО «Ромашка», ИНН/КПП 7701234560/770101001 [19]');
  });

  it('prints the УПД with статус 2 when every line is без НДС (a document without a currency is in roubles)', async () => {
    const s = await shipped({ lines: [{ product: products.crate, description: 'Ящик деревянный', quantity: '2', price: '500.00', vatRate: 'exempt' }] }, 1);
    expect(s).toMatchObject({ subtotal: '1000.00', vatTotal: '0.00', total: '1000.00' });
    const doc = await render('warehouse.upd', s.id);
    expect(doc).toContain('Универсальный передаточный документ Статус: 2');
    expect(doc).not.toContain('Статус: 1');
    expect(doc).toContain(`Документ об отгрузке: № п/п 1 № ${s.number} от 03.03.2026 (5а)`);
    expect(doc).toContain('Валюта: наименование, код: Российский рубль, 643 (7)');
    expect(doc).toContain('KB-3 1 Ящик деревянный — 796 шт 2,000 500,00 1 000,00 без акциза без НДС без НДС 1 000,00 — — —');
    expect(doc).toContain('Всего к оплате 1 000,00 Х без НДС 1 000,00');
    expect(doc).toContain('Всего к оплате: 1 000,00 ₽ (Одна тысяча рублей 00 копеек), без НДС.');
    const note = await render('warehouse.delivery-note', s.id);
    expect(note).toContain('1 Ящик деревянный (KB-3) шт 2,000 500,00 ₽ 1 000,00 ₽ без НДС — 1 000,00 ₽');
    expect(note).toContain('Без НДС (сумма 1 000,00 ₽) 0,00 ₽');
    expect(note).toContain('Всего наименований 1, на сумму 1 000,00 ₽, без НДС.');
    expect(note).toContain('Одна тысяча рублей 00 копеек');
    expect(note).toContain('Количество мест 1');
    expect(note).toContain('Масса груза (брутто) 0,000 кг');
  });

  it('prints the receipt note: number, date, supplier, warehouse and location, lines and totals', async () => {
    const po = ok(await t.api('POST', '/api/warehouse/purchaseOrders', {
      supplier, warehouse: warehouseId, date: '2026-03-01', currency: rub,
      lines: [
        { product: products.nails, description: 'Гвозди строительные', quantity: '10', price: '1000.00', vatRate: '22' },
        { product: products.boxes, description: 'Коробка картонная', quantity: '5', price: '50.00', vatRate: '10' },
      ],
    }), 201);
    const confirmed = ok(await t.api('POST', `/api/warehouse/purchaseOrders/${po.id}/confirm`));
    // 6 of the 10 kg, all 5 packs: 6 000.00 + 1 320.00 VAT, 250.00 + 25.00 VAT.
    const receipt = ok(await t.api('POST', `/api/warehouse/purchaseOrders/${po.id}/receive`, { date: '2026-03-02', lines: [{ line: 0, quantity: '6' }, { line: 1, quantity: '5' }] }), 201);
    expect(receipt).toMatchObject({ number: expect.stringMatching(/^RCPT-\d{4}-\d{6}$/), subtotal: '6250.00', vatTotal: '1345.00', total: '7595.00' });
    const doc = await render('warehouse.receipt-note', receipt.id);
    expect(doc).toContain(`Приходный ордер № ${receipt.number} от 2 марта 2026 г.`);
    expect(doc).toContain('Организация ООО «Кубики», ИНН 7707083893, КПП 770701001');
    expect(doc).toContain('Поставщик ООО «Поставщик», ИНН 7736207543, КПП 773601001');
    expect(doc).toContain('Склад Склад Москва (MSK-1), Москва, Складской пр., 7');
    expect(doc).toContain('Место хранения MSK-1 — Склад Москва');
    expect(doc).toContain(`Основание Заказ поставщику № ${confirmed.number} от 01.03.2026`);
    expect(doc).toContain('1 Гвозди строительные (KB-1) кг 6,000 1 000,00 ₽ 6 000,00 ₽ 22 % 1 320,00 ₽ 7 320,00 ₽');
    expect(doc).toContain('2 Коробка картонная (KB-2) упак 5,000 50,00 ₽ 250,00 ₽ 10 % 25,00 ₽ 275,00 ₽');
    expect(doc).toContain('Итого 11,000 6 250,00 ₽ 1 345,00 ₽ 7 595,00 ₽');
    expect(doc).toContain('Всего наименований 2, на сумму 7 595,00 ₽, в том числе НДС 1 345,00 ₽.');
    expect(doc).toContain('Семь тысяч пятьсот девяносто пять рублей 00 копеек');
  });
});

describe('printing as shipped roles', () => {
  it('a storekeeper prints the receipt note of a receipt they received (the roles carry core.documents.create)', async () => {
    const user = ok(await t.api('POST', '/api/users', { username: `keeper-${Math.random().toString(36).slice(2, 8)}`, roles: ['storekeeper'] }), 201);
    const token = ok(await t.api('POST', `/api/users/${user.id}/tokens`, { name: 'print' }), 201).token as string;
    const w = ok(await t.api('POST', '/api/warehouse/warehouses', { code: `PR${Date.now().toString(36)}`, name: 'Print' }), 201);
    const p = ok(await t.api('POST', '/api/base/products', { sku: `PR-${Date.now().toString(36)}`, name: 'Printed' }), 201).id;
    const supplier = ok(await t.api('POST', '/api/base/organizations', { name: 'Print Supplier' }), 201).id;
    const po = ok(await t.api('POST', '/api/warehouse/purchaseOrders', { supplier, warehouse: w.id, lines: [{ product: p, description: 'Paper', quantity: '2', price: '10.00', vatRate: '20' }] }), 201);
    ok(await t.api('POST', `/api/warehouse/purchaseOrders/${po.id}/confirm`));
    const receipt = ok(await t.api('POST', `/api/warehouse/purchaseOrders/${po.id}/receive`, { lines: [{ line: 0, quantity: '2' }] }, { token }), 201);
    expect(await render('warehouse.receipt-note', receipt.id, token)).toContain(receipt.number);
  });
});
