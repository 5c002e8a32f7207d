// Deterministic in-memory invoices for `npm run bench:templates`: the record shape the fixture
// invoice template (tests/fixtures/templates/alpha/order-invoice.hbs) reads, as loadDocumentData
// would hand it over (customer and line products expanded). Money is integer kopecks (BigInt)
// turned into decimal strings: no float ever touches an amount.
import type { CompanyProfile } from '../core/templates/company-profile.ts';

export interface InvoiceLine {
  product: { id: string; name: string; sku: string };
  quantity: string;
  price: string;
  amount: string;
  vatRate: '20' | '10' | 'none';
}

export interface InvoiceRecord extends Record<string, unknown> {
  id: string;
  version: number;
  number: string;
  customer: { id: string; name: string; inn: string; kpp?: string };
  issuedOn: string;
  currency: 'RUB';
  lines: InvoiceLine[];
  total: string;
}

/** mulberry32: small, fast, and the same sequence on every run and machine. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Random = () => number;
const int = (rnd: Random, min: number, max: number): number => min + Math.floor(rnd() * (max - min + 1));
const pick = <T>(rnd: Random, items: readonly T[]): T => items[int(rnd, 0, items.length - 1)];
const digits = (rnd: Random, n: number): string => Array.from({ length: n }, (_, i) => String(int(rnd, i === 0 ? 1 : 0, 9))).join('');
const uuid = (rnd: Random): string => {
  const h = Array.from({ length: 32 }, () => int(rnd, 0, 15).toString(16)).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
};

/** An integer count of 10^-scale units as a decimal string: (123456n, 2) → "1234.56". */
function decimal(units: bigint, scale: number): string {
  const negative = units < 0n;
  const abs = (negative ? -units : units).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? abs : `${abs.slice(0, -scale)}.${abs.slice(-scale)}`;
  return negative ? `-${text}` : text;
}

/** quantity (thousandths) × price (kopecks), rounded half-up to kopecks; both non-negative. */
const lineAmountKopecks = (quantityMilli: bigint, priceKopecks: bigint): bigint => (quantityMilli * priceKopecks + 500n) / 1000n;

const ADJECTIVES = ['Стальной', 'Медный', 'Усиленный', 'Лёгкий', 'Промышленный', 'Компактный', 'Герметичный', 'Оцинкованный'];
const NOUNS = ['кронштейн', 'фланец', 'кабель ВВГнг 3×2,5', 'болт М12×60', 'подшипник 6205', 'насос ЦНС', 'клапан DN50', 'профиль 40×20', 'шкаф ЩРН-24', 'датчик давления'];
const UNITS_WITH_FRACTIONS = [false, false, false, true]; // a quarter of the lines sell by weight/length
const RATES: readonly InvoiceLine['vatRate'][] = ['20', '20', '20', '10', 'none'];
const FORMS = ['ООО', 'АО', 'ПАО', 'ИП'];
const NAMES = ['Ромашка', 'Северсталь-Трейд', 'Вектор', 'ТехноСнаб', 'Уральские системы', 'Альфа-Логистик', 'Меридиан', 'Кварц & Ко'];
const PERSONS = ['Иванов Пётр Сергеевич', 'Орлова Мария Андреевна', 'Ким Сергей Вадимович'];

function product(rnd: Random): InvoiceLine['product'] {
  return { id: uuid(rnd), name: `${pick(rnd, ADJECTIVES)} ${pick(rnd, NOUNS)}`, sku: `SKU-${digits(rnd, 6)}` };
}

function customer(rnd: Random): InvoiceRecord['customer'] {
  const form = pick(rnd, FORMS);
  if (form === 'ИП') return { id: uuid(rnd), name: `ИП ${pick(rnd, PERSONS)}`, inn: digits(rnd, 12) };
  // An ampersand in some names: the HTML-escaping path runs as it does on real data.
  return { id: uuid(rnd), name: `${form} «${pick(rnd, NAMES)}»`, inn: digits(rnd, 10), kpp: digits(rnd, 9) };
}

export function buildInvoices(count: number, linesPerInvoice: number, seed = 20250601): InvoiceRecord[] {
  const rnd = prng(seed);
  const catalog = Array.from({ length: 200 }, () => product(rnd));
  const customers = Array.from({ length: 50 }, () => customer(rnd));
  const invoices: InvoiceRecord[] = [];
  for (let n = 1; n <= count; n++) {
    const lines: InvoiceLine[] = [];
    let total = 0n;
    for (let i = 0; i < linesPerInvoice; i++) {
      const byWeight = pick(rnd, UNITS_WITH_FRACTIONS);
      const quantityMilli = byWeight ? BigInt(int(rnd, 1, 250_000)) : BigInt(int(rnd, 1, 60) * 1000);
      const priceKopecks = BigInt(int(rnd, 1_00, 60_000_00));
      const amount = lineAmountKopecks(quantityMilli, priceKopecks);
      total += amount;
      lines.push({
        product: pick(rnd, catalog),
        quantity: decimal(quantityMilli, 3),
        price: decimal(priceKopecks, 2),
        amount: decimal(amount, 2),
        vatRate: pick(rnd, RATES),
      });
    }
    invoices.push({
      id: uuid(rnd),
      version: 1,
      number: `СЧ-2025-${String(n).padStart(5, '0')}`,
      customer: pick(rnd, customers),
      issuedOn: `2025-${String(int(rnd, 1, 12)).padStart(2, '0')}-${String(int(rnd, 1, 28)).padStart(2, '0')}`,
      currency: 'RUB',
      lines,
      total: decimal(total, 2),
    });
  }
  return invoices;
}

/** A complete profile (every letterhead and bank-details branch prints), no logo. */
export const BENCH_COMPANY: CompanyProfile = {
  name: 'Кубики',
  legalName: 'ООО «Кубики»',
  inn: '7701234567',
  kpp: '770101001',
  ogrn: '1157746123456',
  address: '119019, г. Москва, ул. Новый Арбат, д. 10, офис 405',
  phone: '+7 495 123-45-67',
  email: 'billing@kubiki.example',
  website: 'https://kubiki.example',
  director: 'Смирнова А. В.',
  chiefAccountant: 'Кузнецов Д. И.',
  bank: {
    name: 'ПАО Сбербанк, г. Москва',
    bik: '044525225',
    account: '40702810938000123456',
    correspondentAccount: '30101810400000000225',
  },
};
