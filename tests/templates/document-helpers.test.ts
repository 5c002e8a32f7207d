import Handlebars from 'handlebars';
import { describe, expect, it } from 'vitest';
import { DOCUMENT_HELPERS, registerDocumentHelpers, taxLines } from '../../core/templates/document-helpers.ts';
import { documentTotals, type VatRounding } from '../../core/money/document-totals.ts';

// Node 20's ICU uses U+00A0 (no-break space) as the ru-RU group separator and before "₽"/"%".
const NBSP = '\u00a0';

const hbs = Handlebars.create();
registerDocumentHelpers(hbs);
const knownHelpers = Object.fromEntries(DOCUMENT_HELPERS.map((name) => [name, true]));

/** Compiles like the engine does: only known helpers may be called. */
function render(source: string, data: Record<string, unknown> = {}): string {
  return hbs.compile(source, { knownHelpersOnly: true, knownHelpers, strict: false })(data);
}
const ru = (source: string, data: Record<string, unknown> = {}) => render(source, { locale: 'ru-RU', ...data });
const en = (source: string, data: Record<string, unknown> = {}) => render(source, { locale: 'en-US', ...data });

describe('registration', () => {
  it('lists every registered helper and nothing else is callable', () => {
    expect([...DOCUMENT_HELPERS].sort()).toEqual(
      ['add', 'amountInWords', 'and', 'date', 'default', 'eq', 'gt', 'gte', 'lt', 'lte', 'money', 'ne', 'not', 'number', 'or', 'percent', 'sum', 'taxLines'].sort(),
    );
    expect(Handlebars.helpers).not.toHaveProperty('money'); // the global env is untouched
    expect(() => render('{{lookupFile "x"}}')).toThrow(/lookupFile/);
  });

  it('adds whole numbers for row numbers, and nothing else', () => {
    expect(render('{{#each rows}}{{add @index 1}};{{/each}}', { rows: ['a', 'b', 'c'] })).toBe('1;2;3;');
    expect(() => render('{{add "1.5" 1}}')).toThrow(/whole numbers/);
  });

  it('helpers called directly (not from a template) refuse', () => {
    expect(() => hbs.helpers.money!('1', 'RUB')).toThrow(/called from a template/);
  });
});

describe('money', () => {
  it('formats ru-RU with U+00A0 separators and the ruble sign', () => {
    expect(ru('{{money "1234.5" "RUB"}}')).toBe(`1${NBSP}234,50${NBSP}₽`);
    expect(ru('{{money a "RUB"}}', { a: '12345678901234.56' })).toBe(`12${NBSP}345${NBSP}678${NBSP}901${NBSP}234,56${NBSP}₽`);
    expect(ru('{{money "-1234.5" "USD"}}')).toBe(`-1${NBSP}234,50${NBSP}$`);
  });

  it('formats en-US and keeps long amounts exact', () => {
    expect(en('{{money "1234.5" "USD"}}')).toBe('$1,234.50');
    expect(en('{{money "12345678901234.56" "USD"}}')).toBe('$12,345,678,901,234.56');
    expect(en('{{money "-1234.5" "EUR"}}')).toBe('-€1,234.50');
    expect(en('{{money "1234.5" "RUB"}}')).toBe(`RUB${NBSP}1,234.50`);
  });

  it('takes the locale from the hash over the data root, default ru-RU', () => {
    expect(en('{{money "1" "RUB" locale="ru-RU"}}')).toBe(`1,00${NBSP}₽`);
    expect(render('{{money "1" "RUB"}}')).toBe(`1,00${NBSP}₽`);
  });

  it('accepts a currency record, rounds half-up to the currency digits', () => {
    expect(en('{{money record.total record.currency}}', { record: { total: '10', currency: { code: 'EUR', name: 'Euro' } } })).toBe('€10.00');
    expect(en('{{money "1.005" "USD"}}')).toBe('$1.01');
    expect(en('{{money "-0.001" "USD"}}')).toBe('$0.00');
    expect(en('{{money "1234.5" "JPY"}}')).toBe('¥1,235');
    expect(en('{{money "1234.5" "usd" display="code"}}')).toBe(`USD${NBSP}1,234.50`);
  });

  it('renders missing amounts as empty and refuses invalid ones', () => {
    expect(ru('[{{money record.missing "RUB"}}][{{money "" "RUB"}}][{{money nothing "RUB"}}]', { nothing: null, record: {} })).toBe('[][][]');
    expect(() => ru('{{money "12,50" "RUB"}}')).toThrow(/money: amount must be a decimal string like "1234.50", got "12,50"/);
    expect(() => ru('{{money "1e3" "RUB"}}')).toThrow(/decimal string/);
    expect(() => ru('{{money "1" "RUBLES"}}')).toThrow(/money: currency must be/);
    expect(ru('{{money "1234.5" missing}}')).toBe('1\u00a0234,50');
    expect(() => ru('{{money "1" "XYZ" locale="not a locale"}}')).toThrow(/invalid locale/);
    expect(() => ru('{{money "1"}}')).toThrow(/money: expects 2 argument/);
  });
});

describe('number and percent', () => {
  it('formats numbers with fixed decimals', () => {
    expect(ru('{{number "1234.5678"}}')).toBe(`1${NBSP}234,57`);
    expect(ru('{{number "1234.5678" decimals=3}}')).toBe(`1${NBSP}234,568`);
    expect(en('{{number "1234.5" decimals=0}}')).toBe('1,235');
    expect(en('{{number q}}', { q: 3 })).toBe('3.00');
    expect(en('{{number ""}}')).toBe('');
    expect(() => en('{{number "abc"}}')).toThrow(/number: value must be a decimal string/);
  });

  it('formats percent points', () => {
    expect(ru('{{percent "20"}}')).toBe(`20${NBSP}%`);
    expect(en('{{percent "20"}}')).toBe('20%');
    expect(en('{{percent "7.5"}}')).toBe('7.5%');
    expect(ru('{{percent "7.5" decimals=2}}')).toBe(`7,50${NBSP}%`);
  });
});

describe('date', () => {
  it('formats calendar dates in UTC so the day never shifts', () => {
    expect(ru('{{date "2024-01-31"}}')).toBe('31.01.2024');
    expect(ru('{{date "2024-01-31" format="long"}}')).toBe('31 января 2024 г.');
    expect(ru('{{date "2024-01-31" format="numeric"}}')).toBe('31.01.2024');
    expect(en('{{date "2024-01-31"}}')).toBe('1/31/24');
    expect(en('{{date "2024-01-31" format="long"}}')).toBe('January 31, 2024');
    expect(en('{{date "2024-01-31" format="numeric"}}')).toBe('01/31/2024');
  });

  it('formats ISO timestamps in UTC', () => {
    expect(ru('{{date "2024-01-31T23:30:00Z"}}')).toBe('31.01.2024');
    expect(ru('{{date "2024-02-01T01:30:00+03:00"}}')).toBe('31.01.2024');
    expect(en('{{date "2024-01-31T12:00:00" format="long"}}')).toBe('January 31, 2024');
  });

  it('renders missing dates as empty, refuses invalid ones', () => {
    expect(ru('[{{date record.issuedOn}}]', { record: {} })).toBe('[]');
    expect(() => ru('{{date "2024-02-30"}}')).toThrow(/date: value must be a date "YYYY-MM-DD"/);
    expect(() => ru('{{date "31.01.2024"}}')).toThrow(/date: value must be/);
    expect(() => ru('{{date "2024-01-31" format="iso"}}')).toThrow(/date: format must be one of/);
  });
});

describe('amountInWords, Russian', () => {
  const cases: Array<[string, string]> = [
    ['0', 'Ноль рублей 00 копеек'],
    ['1', 'Один рубль 00 копеек'],
    ['2', 'Два рубля 00 копеек'],
    ['5', 'Пять рублей 00 копеек'],
    ['11', 'Одиннадцать рублей 00 копеек'],
    ['14', 'Четырнадцать рублей 00 копеек'],
    ['21', 'Двадцать один рубль 00 копеек'],
    ['101', 'Сто один рубль 00 копеек'],
    ['111', 'Сто одиннадцать рублей 00 копеек'],
    ['0.01', 'Ноль рублей 01 копейка'],
    ['0.02', 'Ноль рублей 02 копейки'],
    ['0.05', 'Ноль рублей 05 копеек'],
    ['0.11', 'Ноль рублей 11 копеек'],
    ['1.21', 'Один рубль 21 копейка'],
    ['2.22', 'Два рубля 22 копейки'],
    ['1001', 'Одна тысяча один рубль 00 копеек'],
    ['2000', 'Две тысячи рублей 00 копеек'],
    ['5000', 'Пять тысяч рублей 00 копеек'],
    ['21000', 'Двадцать одна тысяча рублей 00 копеек'],
    ['1234.5', 'Одна тысяча двести тридцать четыре рубля 50 копеек'],
    ['1000000', 'Один миллион рублей 00 копеек'],
    ['2000000', 'Два миллиона рублей 00 копеек'],
    ['5000000000', 'Пять миллиардов рублей 00 копеек'],
    ['1002003004.99', 'Один миллиард два миллиона три тысячи четыре рубля 99 копеек'],
    ['-100', 'Минус сто рублей 00 копеек'],
    ['0.005', 'Ноль рублей 01 копейка'], // rounded half-up to kopecks
  ];
  it.each(cases)('%s RUB → %s', (amount, words) => {
    expect(ru('{{amountInWords amount}}', { amount })).toBe(words);
    expect(render('{{amountInWords amount currency="RUB"}}', { amount })).toBe(words); // default locale ru-RU
  });

  it('USD and EUR', () => {
    expect(ru('{{amountInWords "21.01" currency="USD"}}')).toBe('Двадцать один доллар США 01 цент');
    expect(ru('{{amountInWords "1002.03" currency="USD"}}')).toBe('Одна тысяча два доллара США 03 цента');
    expect(ru('{{amountInWords "5" currency="EUR"}}')).toBe('Пять евро 00 евроцентов');
    expect(ru('{{amountInWords "2.22" currency="EUR"}}')).toBe('Два евро 22 евроцента');
    expect(ru('{{amountInWords total record.currency}}', { total: '3', record: { currency: { code: 'EUR' } } })).toBe('Три евро 00 евроцентов');
  });

  it('minor units in words agree in gender on request', () => {
    expect(ru('{{amountInWords "1.01" minor="words"}}')).toBe('Один рубль одна копейка');
    expect(ru('{{amountInWords "2.02" minor="words"}}')).toBe('Два рубля две копейки');
    expect(ru('{{amountInWords "2.02" currency="USD" minor="words"}}')).toBe('Два доллара США два цента');
  });

  it('missing → empty, unknown currency or locale → clear error', () => {
    expect(ru('[{{amountInWords nothing}}]')).toBe('[]');
    expect(() => ru('{{amountInWords "1" currency="GBP"}}')).toThrow(/no Russian words for currency GBP/);
    expect(() => ru('{{amountInWords "1" locale="de-DE"}}')).toThrow(/no words for locale "de-DE"/);
    expect(() => ru('{{amountInWords "1 000"}}')).toThrow(/decimal string/);
  });
});

describe('amountInWords, English', () => {
  const cases: Array<[string, string]> = [
    ['0', 'Zero rubles and 00 kopecks'],
    ['1', 'One ruble and 00 kopecks'],
    ['2', 'Two rubles and 00 kopecks'],
    ['5', 'Five rubles and 00 kopecks'],
    ['11', 'Eleven rubles and 00 kopecks'],
    ['21', 'Twenty-one rubles and 00 kopecks'],
    ['101', 'One hundred one rubles and 00 kopecks'],
    ['0.01', 'Zero rubles and 01 kopeck'],
    ['0.02', 'Zero rubles and 02 kopecks'],
    ['0.05', 'Zero rubles and 05 kopecks'],
    ['1.21', 'One ruble and 21 kopecks'],
    ['2.22', 'Two rubles and 22 kopecks'],
    ['1001', 'One thousand one rubles and 00 kopecks'],
    ['2000', 'Two thousand rubles and 00 kopecks'],
    ['1234.5', 'One thousand two hundred thirty-four rubles and 50 kopecks'],
    ['1000000', 'One million rubles and 00 kopecks'],
    ['5000000000', 'Five billion rubles and 00 kopecks'],
    ['-40.4', 'Minus forty rubles and 40 kopecks'],
  ];
  it.each(cases)('%s RUB → %s', (amount, words) => {
    expect(en('{{amountInWords amount}}', { amount })).toBe(words);
  });

  it('dollars and euros', () => {
    expect(en('{{amountInWords "1.01" currency="USD"}}')).toBe('One dollar and 01 cent');
    expect(en('{{amountInWords "1234.5" currency="USD"}}')).toBe('One thousand two hundred thirty-four dollars and 50 cents');
    expect(ru('{{amountInWords "1" currency="EUR" locale="en-GB"}}')).toBe('One euro and 00 cents');
  });
});

describe('taxLines and sum', () => {
  const lines = [
    { name: 'Стол', amount: '1200.00', vatRate: '20' },
    { name: 'Доставка', amount: '110', vatRate: '10' },
    { name: 'Книга', amount: '50.5', vatRate: 'none' },
    { name: 'Стул', amount: '0.10', vatRate: '20.00' },
    { name: 'Экспорт', amount: '300', vatRate: '0' },
  ];
  const rows = '{{#each (taxLines lines included=inc)}}[{{rate}}|{{base}}|{{tax}}|{{total}}]{{/each}}';

  it('VAT included in the amounts: grouped by rate, rounded per group', () => {
    expect(ru(rows, { lines, inc: true })).toBe(
      '[20|1000.08|200.02|1200.10][10|100.00|10.00|110.00][0|300.00|0.00|300.00][none|50.50|0.00|50.50]',
    );
    expect(ru('{{#each (taxLines lines)}}{{rate}};{{/each}}', { lines })).toBe('20;10;0;none;'); // included by default
  });

  it('VAT on top of the amounts', () => {
    expect(ru(rows, { lines, inc: false })).toBe(
      '[20|1200.10|240.02|1440.12][10|110.00|11.00|121.00][0|300.00|0.00|300.00][none|50.50|0.00|50.50]',
    );
    expect(ru('{{#each (taxLines lines included=false)}}{{tax}}{{/each}}', { lines: [{ amount: '0.025', vatRate: '20' }, { amount: '0.0', vatRate: '20' }] })).toBe('0.01');
  });

  it('custom field names and formatting the rows', () => {
    const custom = [{ price: { total: '118' }, vat: 18 }, { price: { total: '236' }, vat: '18' }];
    expect(
      ru('{{#each (taxLines l amount="price.total" rate="vat")}}НДС {{percent rate}}: {{money tax "RUB"}} из {{money total "RUB"}}{{/each}}', { l: custom }),
    ).toBe(`НДС 18${NBSP}%: 54,00${NBSP}₽ из 354,00${NBSP}₽`);
  });

  it('rounds by the policy: rounding= or vatRounding at the data\'s root (the company\'s, in documents), else per rate', () => {
    // The order-to-cash case: 99.99 + 49.99 + 19.99 at 20 % on top.
    const three = [{ amount: '99.99', vatRate: '20' }, { amount: '49.99', vatRate: '20' }, { amount: '19.99', vatRate: '20' }];
    const row = '{{#each (taxLines l included=false)}}[{{base}}|{{tax}}|{{total}}]{{/each}}';
    expect(ru(row, { l: three })).toBe('[169.97|33.99|203.96]');
    expect(ru(row, { l: three, vatRounding: 'line' })).toBe('[169.97|34.00|203.97]');
    expect(ru('{{#each (taxLines l included=false rounding="line")}}{{tax}}{{/each}}', { l: three })).toBe('34.00');
    expect(ru('{{#each (taxLines l included=false rounding="rate")}}{{tax}}{{/each}}', { l: three, vatRounding: 'line' })).toBe('33.99');
    expect(() => ru('{{#each (taxLines l rounding="kopeck")}}{{/each}}', { l: three })).toThrow(/rounding must be one of line, rate/);
  });

  it('is the money module\'s arithmetic: 1,000 random line sets give the VAT rows documentTotals gives, under both policies', () => {
    const rates = ['22', '20', '10', '7', '5', '0', 'exempt'];
    const digits = (n: number) => String(Math.floor(Math.random() * 10 ** n));
    const mismatches: unknown[] = [];
    for (let i = 0; i < 1000; i++) {
      const included = i % 2 === 0;
      const vatRounding: VatRounding = i % 4 < 2 ? 'line' : 'rate';
      const lines = Array.from({ length: 1 + Math.floor(Math.random() * 6) }, () => ({
        quantity: '1', price: `${digits(5)}.${digits(2).padStart(2, '0')}`, vatRate: rates[Math.floor(Math.random() * rates.length)],
      }));
      const expected = documentTotals(lines, { pricesIncludeVat: included, vatRounding }).vat.map((g) => ({ ...g, rate: g.rate === 'exempt' ? 'none' : g.rate }));
      const got = taxLines(lines.map((l) => ({ amount: l.price, vatRate: l.vatRate === 'exempt' ? 'none' : l.vatRate })), { included, rounding: vatRounding });
      if (JSON.stringify(got) !== JSON.stringify(expected)) mismatches.push({ lines, included, vatRounding, got, expected });
    }
    expect(mismatches.slice(0, 3)).toEqual([]);
  });

  it('refuses a line without a rate, a bad amount, a non-array', () => {
    expect(() => ru('{{#each (taxLines l)}}{{/each}}', { l: [{ amount: '1' }] })).toThrow(/line 1 has no VAT rate in "vatRate"/);
    expect(() => ru('{{#each (taxLines l)}}{{/each}}', { l: [{ amount: 'x', vatRate: '20' }] })).toThrow(/"amount" of line 1 must be a decimal string/);
    expect(() => ru('{{#each (taxLines l)}}{{/each}}', { l: 'lines' })).toThrow(/expects an array/);
    expect(() => ru('{{#each (taxLines l amount="__proto__.x")}}{{/each}}', { l: [] })).not.toThrow();
    expect(ru('{{#each (taxLines l)}}x{{/each}}', {})).toBe('');
  });

  it('sum keeps decimals exact at the largest input scale', () => {
    expect(ru('{{sum lines "amount"}}', { lines })).toBe('1660.60');
    expect(ru('{{sum l "q"}}', { l: [{ q: '0.1' }, { q: '0.2' }, { q: '0.005' }, {}] })).toBe('0.305');
    expect(ru('{{sum values}}', { values: ['1.50', '2.50'] })).toBe('4.00');
    expect(ru('{{money (sum lines "amount") "RUB"}}', { lines })).toBe(`1${NBSP}660,60${NBSP}₽`);
    expect(ru('{{sum nothing "amount"}}')).toBe('0');
    // only own properties are read
    expect(ru('{{sum l "toString"}}', { l: [{ a: 1 }] })).toBe('0');
    expect(() => ru('{{sum l "constructor"}}', { l: [{}] })).not.toThrow();
  });
});

describe('conditionals', () => {
  const yes = (expr: string, data: Record<string, unknown> = {}) => ru(`{{#if ${expr}}}yes{{else}}no{{/if}}`, data);

  it('compares decimal strings numerically and exactly', () => {
    expect(yes('(gt "10.50" "9.9")')).toBe('yes');
    expect(yes('(eq "10.50" "10.5")')).toBe('yes');
    expect(yes('(lt "0.1" "0.10000000000000000001")')).toBe('yes');
    expect(yes('(gte total 1000)', { total: '1000.00' })).toBe('yes');
    expect(yes('(lte "-5" "-4.99")')).toBe('yes');
    expect(yes('(ne "1.0" 1)')).toBe('no');
  });

  it('compares other strings as strings and other values by identity', () => {
    expect(yes('(eq status "paid")', { status: 'paid' })).toBe('yes');
    expect(yes('(ne status "paid")', { status: 'draft' })).toBe('yes');
    expect(yes('(lt "2024-01-09" "2024-01-10")')).toBe('yes');
    expect(yes('(gt "b" "a")')).toBe('yes');
    expect(yes('(gt missing 0)')).toBe('no');
    expect(yes('(eq flag true)', { flag: true })).toBe('yes');
    expect(yes('(eq "10" "ten")')).toBe('no');
  });

  it('and / or / not, with Handlebars truthiness', () => {
    expect(yes('(and a b)', { a: 'x', b: 1 })).toBe('yes');
    expect(yes('(and a b c)', { a: 'x', b: 1, c: [] })).toBe('no');
    expect(yes('(or a b)', { a: '', b: [1] })).toBe('yes');
    expect(yes('(or a b)', { a: '', b: null })).toBe('no');
    expect(yes('(not a)', { a: '' })).toBe('yes');
    expect(yes('(and (gt total "0") (not paid))', { total: '5.00', paid: false })).toBe('yes');
  });

  it('default', () => {
    expect(ru('{{default record.note "—"}}', { record: {} })).toBe('—');
    expect(ru('{{default record.note "—"}}', { record: { note: '' } })).toBe('—');
    expect(ru('{{default record.note "—"}}', { record: { note: 'Срочно' } })).toBe('Срочно');
    expect(ru('{{default n "—"}}', { n: 0 })).toBe('0');
    expect(ru('{{money (default discount "0") "RUB"}}')).toBe(`0,00${NBSP}₽`);
  });

  it('wrong arity is a clear error', () => {
    expect(() => yes('(eq a)')).toThrow(/eq: expects 2 argument/);
    expect(() => yes('(not a b)')).toThrow(/not: expects 1 argument/);
  });
});

describe('date objects', () => {
  it('formats a Date in UTC and names the problem when a Date cannot be read', () => {
    expect(en('{{date d format="long"}}', { d: new Date('2024-01-31T00:00:00Z') })).toBe('January 31, 2024');
    expect(() => en('{{date d}}', { d: new Proxy(new Date(), {}) })).toThrow(/date: cannot read this Date object/);
  });
});
