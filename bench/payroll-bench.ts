// npm run bench:payroll — a pay run for BENCH_EMPLOYEES (default 10,000) employees on PostgreSQL.
//
// Setup (not timed against the target): a fresh database with base, finance and payroll; the
// employees on shared people records, their terms (a tenth hourly, half with a 10 % bonus), a
// 6-component structure (base split by terms, bonus, overtime 1.5×/2×, night +20 %, НДФЛ on the
// progressive scale, contributions with the base limit — all CEL formulas over dated parameters)
// and a month of daily timesheets (March 2026: 21 working days; every fifth employee with overtime,
// every seventh with night hours), approved.
// Timed, over HTTP as a client would:
//   1. compute: POST /api/payroll/runs/{id}/transitions/compute — every payslip computed and stored
//      through the entity repository (validated, audited, evented) in the transition's transaction;
//   2. approve: the staleness check of every payslip's sources;
//   3. post: lock, and finance posting the run's journal entry from the event (delivered in-process).
// Target: compute + approve + post under 15 s on the 2-core machine.
// In the same run, the same formulas without storage:
//   a. the run's calculation (loading the data and computing every payslip, nothing written);
//   b. a bare loop of the payslip calculator over the gathered facts;
//   c. a barer loop evaluating just the compiled CEL formulas over the same contexts.
// The ratio compute/bare loop shows what loading, storage and audit cost.
import { randomBytes } from 'node:crypto';
import { pino } from 'pino';
import { configFromEnv } from '../core/config.ts';
import { Kubiki } from '../core/kernel.ts';
import { SYSTEM } from '../core/auth/principal.ts';
import { openBenchDatabase } from './bench-database.ts';
import { installCleanupHandlers, onCleanup, runBenchmark } from './cleanup.ts';
import { payrollServices } from '../plugins/payroll/index.ts';
import { computePayslip } from '../plugins/payroll/calculator.ts';

const N = Number(process.env.BENCH_EMPLOYEES ?? 10_000);
const PERIOD = '2026-03';
const TARGET_MS = 15_000;

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');
const secs = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
const chunks = <T>(list: T[], size: number): T[][] => Array.from({ length: Math.ceil(list.length / size) }, (_, i) => list.slice(i * size, i * size + size));

const HOURLY = "(record.payBasis == 'hourly' ? decimal(record.hourlyRate) : decimal(record.salary) / decimal(input.normHours))";
const STRUCTURE = {
  code: 'bench-six', title: 'Bench: six components', country: 'RU',
  components: [
    { code: 'base', title: 'Base', kind: 'earning', perSegment: true, formula: "record.payBasis == 'hourly' ? decimal(record.hourlyRate) * decimal(input.workedHours) : decimal(record.salary) * decimal(record.rate) * decimal(input.workedDays) / decimal(input.normDays)" },
    { code: 'bonus', title: 'Bonus', kind: 'earning', condition: 'decimal(record.bonusPercent) > 0', formula: 'decimal(steps.base) * decimal(record.bonusPercent) / 100' },
    { code: 'overtime', title: 'Overtime', kind: 'earning', perSegment: true, condition: 'decimal(input.overtimeHours) > 0', formula: `${HOURLY} * (1 + decimal(record.bonusPercent) / 100) * (decimal(vars.overtimeFirstRate) * decimal(input.overtimeFirstHours) + decimal(vars.overtimeNextRate) * decimal(input.overtimeNextHours))` },
    { code: 'night', title: 'Night', kind: 'earning', perSegment: true, condition: 'decimal(input.nightHours) > 0', formula: `${HOURLY} * decimal(input.nightHours) * decimal(vars.nightPremium)` },
    { code: 'ndfl', title: 'НДФЛ', kind: 'deduction', base: 'decimal(steps.totals.earnings)', scale: 'ndflResident', round: 0, account: '68.01' },
    { code: 'contributions', title: 'Contributions', kind: 'contribution', base: 'decimal(steps.totals.earnings)', scale: 'insuranceContributions', account: '69' },
  ],
};

/** March 2026's working days (the production calendar: 9 March is a holiday moved from Sunday 8th). */
function marchWorkdays(): string[] {
  const out: string[] = [];
  for (let d = 1; d <= 31; d++) {
    const date = `2026-03-${String(d).padStart(2, '0')}`;
    const weekday = new Date(`${date}T00:00:00Z`).getUTCDay();
    if (weekday !== 0 && weekday !== 6 && date !== '2026-03-09') out.push(date);
  }
  return out;
}

async function main(): Promise<number> {
  installCleanupHandlers();
  const database = await openBenchDatabase();
  onCleanup(() => database.drop());
  const adminToken = `kbk_bench_${randomBytes(16).toString('hex')}`;
  const k = await Kubiki.create({
    config: configFromEnv({}, { databaseUrl: database.url, enablePlugins: ['base', 'finance', 'payroll'], adminToken, logLevel: 'silent' }),
    background: false, logger: pino({ level: 'silent' }), env: {},
  });
  onCleanup(() => k.close());
  const server = await k.listen(0, '127.0.0.1');
  const address = server.address();
  const base = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  const api = async (method: string, path: string, body?: unknown): Promise<any> => {
    const res = await fetch(`${base}${path}`, {
      method, headers: { authorization: `Bearer ${adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const answer = await res.json() as unknown;
    if (res.status >= 300) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(answer).slice(0, 1000)}`);
    return answer;
  };

  console.log(`payroll bench on ${database.label}: ${fmt(N)} employees, a 6-component structure, a month of daily timesheets (${PERIOD})`);
  let t0 = performance.now();
  const structure = await api('POST', '/api/payroll/structures', STRUCTURE);
  const people = k.repository('base.people');
  const employees = k.repository('payroll.employees');
  const terms = k.repository('payroll.terms');
  const timesheets = k.repository('payroll.timesheets');
  const workdays = marchWorkdays();
  const ids: string[] = [];
  for (const part of chunks(Array.from({ length: N }, (_, i) => i), 1000)) {
    const persons = await people.createMany(part.map((i) => ({ firstName: `Имя${i}`, lastName: `Фамилия${i}`, middleName: 'Бенчевич' })), { actor: SYSTEM });
    const made = await employees.createMany(part.map((i, j) => ({ person: persons[j].id, personnelNumber: `B${String(i).padStart(6, '0')}`, hireDate: '2025-01-01', structure: structure.id })), { actor: SYSTEM });
    ids.push(...made.map((e) => e.id));
    await terms.createMany(part.map((i, j) => ({
      employee: made[j].id, validFrom: '2025-01-01',
      ...(i % 10 === 0 ? { payBasis: 'hourly', hourlyRate: `${300 + (i % 50)}.00` } : { payBasis: 'monthly', salary: `${60000 + (i % 97) * 1000}.00` }),
      ...(i % 2 === 0 ? { bonusPercent: '10' } : {}),
    })), { actor: SYSTEM });
    await timesheets.createMany(part.map((i, j) => {
      const entries: { date: string; kind: string; hours: string }[] = [];
      workdays.forEach((date, d) => {
        entries.push({ date, kind: 'work', hours: '8' });
        if (i % 5 === 0 && d % 7 === 2) entries.push({ date, kind: 'overtime', hours: '3' });
        if (i % 7 === 0 && d % 5 === 1) entries.push({ date, kind: 'night', hours: '4' });
      });
      // Written as approved by the system, as a data migration would (people approve through the lifecycle).
      return { employee: made[j].id, period: PERIOD, status: 'approved', entries };
    }), { actor: SYSTEM });
  }
  const setupMs = performance.now() - t0;
  console.log(`setup (people, employees, terms, ${fmt(N)} approved timesheets of ${workdays.length} days): ${secs(setupMs)}`);
  await k.db.knex.raw('analyze');

  // BENCH_QUERY_LOG=1: print every statement of the timed part that takes over 100 ms.
  if (process.env.BENCH_QUERY_LOG) {
    const started = new Map<string, { at: number; sql: string }>();
    k.db.knex.on('query', (q: { __knexQueryUid: string; sql: string }) => started.set(q.__knexQueryUid, { at: performance.now(), sql: q.sql }));
    k.db.knex.on('query-response', (_r: unknown, q: { __knexQueryUid: string }) => {
      const s = started.get(q.__knexQueryUid);
      started.delete(q.__knexQueryUid);
      if (s && performance.now() - s.at > 100) console.log(`  ${(performance.now() - s.at).toFixed(0)} ms: ${s.sql.replace(/\s+/g, ' ').slice(0, 160)}`);
    });
  }

  // ── Timed: compute and store, approve, lock and post ──────────────────────────────────────
  const run = await api('POST', '/api/payroll/runs', { period: PERIOD, title: 'Bench' });
  t0 = performance.now();
  const computed = await api('POST', `/api/payroll/runs/${run.id}/transitions/compute`);
  const computeMs = performance.now() - t0;
  t0 = performance.now();
  await api('POST', `/api/payroll/runs/${run.id}/transitions/approve`);
  const approveMs = performance.now() - t0;
  t0 = performance.now();
  await api('POST', `/api/payroll/runs/${run.id}/transitions/lock`);
  await k.workflowRuntime.settle();
  const postMs = performance.now() - t0;
  const entries = await api('GET', `/api/finance/entries?sourceEntity=payroll.runs&sourceId=${run.id}`);
  const entry = entries.data[0];
  const cents = (side: 'debit' | 'credit') => entry ? entry.lines.reduce((s: bigint, l: Record<string, string>) => s + BigInt(Math.round(Number(l[side]) * 100)), 0n) : -1n;
  const [{ audit }] = await k.db.table('kubiki_audit').where({ plugin: 'payroll', entity: 'payslips' }).count({ audit: '*' });
  const out = computed.output as Record<string, unknown>;

  // ── The same formulas without storage ─────────────────────────────────────────────────────
  const services = payrollServices[payrollServices.length - 1];
  t0 = performance.now();
  const calculated = await services.runs.calculate(PERIOD, { kind: 'regular', requireApproved: true });
  const calculateMs = performance.now() - t0;
  const params = await services.runs.data.parameters();
  const vars = params.varsAt(`${PERIOD}-01`, 'RU');
  const none = new Map();
  t0 = performance.now();
  let net = 0n;
  for (const c of calculated) net += BigInt(Math.round(Number(computePayslip(c.structure, c.facts, vars, none).net) * 100));
  const loopMs = performance.now() - t0;
  const varsObject = Object.fromEntries([...vars].map(([code, v]) => [code, v.scale ?? v.value]));
  const formulas = calculated[0].structure.components.flatMap((c) => [c.condition, c.formula, c.base].filter((f) => f !== undefined));
  t0 = performance.now();
  let evaluations = 0;
  for (const c of calculated) {
    const context = { record: c.facts.record, input: c.facts.input, vars: varsObject, steps: { base: '1', bonus: '1', overtime: '1', night: '1', ndfl: '1', totals: { earnings: '1', deductions: '1', contributions: '1', net: '1' } } };
    for (const f of formulas) { f!.expression.evaluate(context); evaluations++; }
  }
  const bareMs = performance.now() - t0;

  const totalMs = computeMs + approveMs + postMs;
  console.log('');
  console.log(`compute + store ${fmt(Number(out.payslipCount))} payslips : ${secs(computeMs)} (${fmt(Number(out.payslipCount) / (computeMs / 1000))} payslips/s; ${fmt(Number(audit))} audit rows)`);
  console.log(`approve (staleness check)           : ${secs(approveMs)}`);
  console.log(`lock + post to finance              : ${secs(postMs)} (entry of ${entry?.lines.length ?? 0} lines, debits ${cents('debit') === cents('credit') ? '=' : '≠'} credits)`);
  console.log(`compute + approve + post            : ${secs(totalMs)} ${totalMs < TARGET_MS ? 'OK' : 'MISS'} (target < ${TARGET_MS / 1000} s)`);
  console.log('');
  console.log(`calculate only (load + formulas)    : ${secs(calculateMs)}`);
  console.log(`bare loop, payslip calculator       : ${secs(loopMs)} (${fmt(calculated.length / (loopMs / 1000))} payslips/s)`);
  console.log(`bare loop, CEL formulas only        : ${secs(bareMs)} (${fmt(evaluations)} evaluations, ${fmt(evaluations / (bareMs / 1000))}/s)`);
  console.log(`ratio compute+store / calculator    : ${(computeMs / loopMs).toFixed(1)}×`);
  const stored = BigInt(Math.round(Number(computed.record.net) * 100));
  if (calculated.length !== N || Number(out.payslipCount) !== N || net !== stored || !entry || cents('debit') !== cents('credit')) {
    console.error(`check failed: ${calculated.length} calculated, ${String(out.payslipCount)} stored, net ${net} vs ${stored}, entry ${entry ? 'present' : 'missing'}`);
    return 1;
  }
  return 0;
}

void runBenchmark('payroll', main);
