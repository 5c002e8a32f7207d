// Year-to-date taxes: НДФЛ on the progressive scale crossing 2.4 M ₽ in May, insurance contributions
// crossing the 2 979 000 ₽ base limit in June (30 % below, 15.1 % above), earlier months of a
// migrated employee entered as history — and every locked run posted to finance, balanced, once.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestKubiki } from '../helpers/test-kubiki.ts';
import { created, hire, line, lockedRun, startPayroll } from './helpers.ts';

let t: TestKubiki;
let a: { id: string };
let b: { id: string };
const runs = new Map<string, any>();
const slips = new Map<string, Map<string, any>>();

beforeAll(async () => {
  t = await startPayroll();
  a = await hire(t, { hireDate: '2025-11-03', salary: '500000.00' });
  // b was paid January–April by the previous system (600 000 a month): its НДФЛ and contributions so far are history.
  b = await hire(t, { hireDate: '2025-11-03', salary: '600000.00', termsFrom: '2026-05-01' });
  for (const month of ['01', '02', '03', '04']) {
    await created(t, '/api/payroll/history', {
      employee: b.id, month: `2026-${month}`, averageBase: '600000.00', sickBase: '600000.00',
      components: [{ code: 'ndfl', base: '600000.00', amount: '78000.00' }, { code: 'contributions', base: '600000.00', amount: '180000.00' }],
    });
  }
  for (const month of ['01', '02', '03', '04', '05', '06']) {
    const period = `2026-${month}`;
    const r = await lockedRun(t, period, { employees: month <= '04' ? [a.id] : [a.id, b.id] });
    runs.set(period, r.run);
    slips.set(period, r.payslips);
  }
  await t.k.workflowRuntime.settle();
}, 600_000);
afterAll(async () => t?.close());

const ndfl = (period: string, who: { id: string }) => slips.get(period)!.get(who.id).lines.find((l: any) => l.code === 'ndfl');
const contributions = (period: string, who: { id: string }) => slips.get(period)!.get(who.id).lines.find((l: any) => l.code === 'contributions');

describe('НДФЛ on the progressive scale, year to date', () => {
  it('takes 13 % while the income since 1 January is under 2.4 M, and splits the month that crosses it', () => {
    // January–April: 500 000 × 13 % = 65 000 a month; income to date 2 000 000, tax 260 000.
    for (const m of ['01', '02', '03', '04']) expect(line(slips.get(`2026-${m}`)!.get(a.id), 'ndfl')).toBe('65000.00');
    // May: income to date 2 500 000. Tax on it 2 400 000 × 13 % + 100 000 × 15 % = 312 000 + 15 000 = 327 000,
    // less 260 000 withheld: 67 000 (not 65 000: 100 000 of May's pay is above the threshold).
    expect(ndfl('2026-05', a)).toMatchObject({ amount: '67000.00', base: '500000.00', ytd: { baseBefore: '2000000.00', amountBefore: '260000.00', base: '2500000.00', amount: '327000.00' } });
    // June: 3 000 000 to date: 312 000 + 600 000 × 15 % = 402 000; less 327 000: 75 000 (all of June at 15 %).
    expect(ndfl('2026-06', a).amount).toBe('75000.00');
  });

  it('counts the months paid before Kubiki (history) in the year to date', () => {
    // b: January–April 4 × 600 000 = 2 400 000 taxed 312 000 (history). May: 3 000 000 to date: 312 000 + 600 000 × 15 % = 402 000 → 90 000.
    expect(ndfl('2026-05', b)).toMatchObject({ amount: '90000.00', ytd: { baseBefore: '2400000.00', amountBefore: '312000.00' } });
    // June: 3 600 000 to date: 312 000 + 1 200 000 × 15 % = 492 000, less 402 000: 90 000.
    expect(ndfl('2026-06', b).amount).toBe('90000.00');
  });
});

describe('insurance contributions with the 2026 base limit (2 979 000)', () => {
  it('takes 30 % up to the limit and 15.1 % above it, on the base since 1 January', () => {
    // a: January–May 500 000 × 30 % = 150 000 a month (2 500 000 to date, 750 000 taken).
    for (const m of ['01', '02', '03', '04', '05']) expect(contributions(`2026-${m}`, a).amount).toBe('150000.00');
    // June: 3 000 000 to date: 2 979 000 × 30 % = 893 700 + 21 000 × 15.1 % = 3 171 → 896 871; less 750 000: 146 871.00.
    expect(contributions('2026-06', a)).toMatchObject({ amount: '146871.00', ytd: { baseBefore: '2500000.00', amountBefore: '750000.00', base: '3000000.00', amount: '896871.00' } });
    // b crosses it in May: 2 400 000 (history, 720 000 taken) + 600 000 = 3 000 000 → 896 871 − 720 000 = 176 871.00.
    expect(contributions('2026-05', b).amount).toBe('176871.00');
    // June for b: everything above the limit: 600 000 × 15.1 % = 90 600.00.
    expect(contributions('2026-06', b).amount).toBe('90600.00');
  });
});

describe('posting to finance', () => {
  const entriesOf = async (run: string) => (await t.api('GET', `/api/finance/entries?sourceEntity=payroll.runs&sourceId=${run}`)).body.data as any[];

  it('posts each locked run once, balanced: expense / payable, payable / НДФЛ, expense / contributions', async () => {
    const june = runs.get('2026-06');
    const [entry] = await entriesOf(june.id);
    expect(entry).toMatchObject({ date: '2026-06-30', source: { entity: 'payroll.runs', id: june.id } });
    const by = (account: string, side: 'debit' | 'credit') => entry.lines.filter((l: any) => l.account === account && Number(l[side]) > 0).map((l: any) => l[side]);
    // Earnings 500 000 + 600 000 = 1 100 000: Dr 26 / Cr 70. НДФЛ 75 000 + 90 000 = 165 000: Dr 70 / Cr 68.01.
    // Contributions 146 871 + 1 000 (injury) + 90 600 + 1 200 (injury) = 239 671: Dr 26 / Cr 69.
    expect(by('70', 'credit')).toEqual(['1100000.00']);
    expect(by('70', 'debit')).toEqual(['165000.00']);
    expect(by('68.01', 'credit')).toEqual(['165000.00']);
    expect(by('69', 'credit')).toEqual(['239671.00']);
    expect(by('26', 'debit').sort()).toEqual(['1100000.00', '239671.00']);
    const sum = (side: 'debit' | 'credit') => entry.lines.reduce((s: number, l: any) => s + Math.round(Number(l[side]) * 100), 0);
    expect(sum('debit')).toBe(sum('credit'));
    expect(june).toMatchObject({ earnings: '1100000.00', deductions: '165000.00', contributions: '239671.00', net: '935000.00' });
    for (const run of runs.values()) expect(await entriesOf(run.id), run.period).toHaveLength(1);
  });

  it('posts nothing twice when the events are delivered again', async () => {
    const before = await t.count('finance_entries');
    const again = await t.k.db.table('kubiki_outbox').where({ plugin: 'payroll', entity: 'runs' }).update({ dispatched_at: null, attempts: 0, next_attempt_at: t.k.db.knex.fn.now() });
    expect(again).toBeGreaterThan(6);
    await t.k.workflowRuntime.settle();
    expect(await t.count('kubiki_outbox', { plugin: 'payroll', dispatched_at: null })).toBe(0);
    expect(await t.count('finance_entries')).toBe(before);
  });

  it('keeps the books balanced overall', async () => {
    const [{ d, c }] = (await t.k.db.table('finance_entry_lines').select(t.k.db.knex.raw('coalesce(sum(debit),0)::text as d, coalesce(sum(credit),0)::text as c'))) as { d: string; c: string }[];
    expect(d).toBe(c);
  });

  it('locks a run only once: the second lock is refused and nothing more is posted', async () => {
    const res = await t.api('POST', `/api/payroll/runs/${runs.get('2026-01').id}/transitions/lock`);
    expect(res.status).toBe(409);
    expect(res.body.code).toBe('transition-not-allowed');
  });
});
