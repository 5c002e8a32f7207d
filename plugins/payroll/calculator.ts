import { isKubikiError } from 'kubiki/plugin';
import { FormulaProblem, isNumberResult, traceOf, type CompiledComponent, type CompiledFormula, type CompiledStructure } from './formulas.ts';
import type { PeriodFacts } from './facts.ts';
import { applyScale, type ParameterValue } from './parameters.ts';
import { Decimal, ZERO, dec, fixed, money } from './util.ts';

// One payslip: the structure's components evaluated in order over the facts of the period. A
// perSegment component is evaluated for each part of the period with the same terms and summed
// (each part rounded); a scaled one takes its base, adds the year to date, applies the dated scale
// and subtracts what earlier payslips of the year took. Every line keeps its formula, the values it
// read and the parameters, so a payslip explains itself.

export interface YearToDate { base: Decimal; amount: Decimal }

export interface PayslipLine {
  code: string;
  title: string;
  kind: 'earning' | 'deduction' | 'contribution';
  amount: string;
  formula?: string;
  inputs?: Record<string, unknown>;
  segments?: { from: string; to: string; amount: string; inputs: Record<string, unknown> }[];
  base?: string;
  scale?: string;
  ytd?: { baseBefore: string; amountBefore: string; base: string; amount: string };
  account?: string;
  inAverage?: boolean;
  inSickAverage?: boolean;
  /** A correction's line: the amount recomputed now, what earlier runs paid, and their payslips. */
  correction?: { recomputed: string; paid: string; recomputedBase?: string; paidBase?: string; payslips: string[] };
}

export interface PayslipFlag { code: string; message: string; inputs?: Record<string, unknown> }

export interface PayslipResult {
  lines: PayslipLine[];
  earnings: string;
  deductions: string;
  contributions: string;
  net: string;
  flags: PayslipFlag[];
  parameters: Record<string, { value?: string; validFrom: string }>;
  average: { base: string; sickBase: string; employedDays: number; excludedDays: number };
}

const varsObjects = new WeakMap<ReadonlyMap<string, ParameterValue>, Record<string, unknown>>();
/** The parameters as formulas see them (`vars`), made once per set of values. */
function varsObject(vars: ReadonlyMap<string, ParameterValue>): Record<string, unknown> {
  let o = varsObjects.get(vars);
  if (!o) varsObjects.set(vars, (o = Object.fromEntries([...vars].map(([code, v]) => [code, v.scale ?? v.value]))));
  return o;
}

/** What a formula may read: the roots; `steps` one key at a time (undefined: no such step), or all of it. */
interface Sources { record: Record<string, unknown>; input: Record<string, unknown>; vars: Record<string, unknown>; step(key: string): unknown; steps(): Record<string, unknown> }

/** The context a formula is evaluated (and traced) over: only the keys it reads, when it reads them as `root.key`. */
function contextOf(f: CompiledFormula, src: Sources): Record<string, unknown> {
  if (!f.pick) return { record: src.record, input: src.input, vars: src.vars, steps: src.steps() };
  const out: Record<string, unknown> = {};
  for (const root in f.pick) {
    const part: Record<string, unknown> = {};
    if (root === 'steps') {
      for (const key of f.pick[root]) {
        const v = src.step(key);
        if (v !== undefined) part[key] = v;
      }
    } else {
      const from = src[root as 'record' | 'input' | 'vars'];
      for (const key of f.pick[root]) if (key in from) part[key] = from[key];
    }
    out[root] = part;
  }
  return out;
}

function run(f: CompiledFormula, field: string, subject: string, context: Record<string, unknown>): unknown {
  try {
    return f.expression.evaluate(context);
  } catch (error) {
    if (!isKubikiError(error)) throw error;
    const { position, line, column } = error.extra as { position?: number; line?: number; column?: number };
    let why = error.message.replace(/^Expression `.*?` failed: /s, '');
    const missing = /^No such key: (\w+)$/.exec(why);
    if (missing && f.refs.includes(`vars.${missing[1]}`) && !(missing[1] in ((context.vars ?? {}) as object))) {
      why = `${why} — no dated parameter ${missing[1]} is in force for the period (add a payroll.parameters value valid from its first day or earlier)`;
    }
    throw new FormulaProblem(field, subject, 'expression-evaluation', `${subject}: ${field} failed: ${why}${line ? ` (line ${line}, column ${column})` : ''}`, position, line, column, f.source);
  }
}

function amountOf(value: unknown, f: CompiledFormula, field: string, subject: string): Decimal {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return new Decimal(value);
  if (!isNumberResult(value)) throw new FormulaProblem(field, subject, 'expression-type', `${subject}: ${field} gave ${typeof value === 'string' ? `text "${value.slice(0, 40)}"` : JSON.stringify(value)}, not a number`, 0, 1, 1, f.source);
  return new Decimal(String(value));
}

function holds(f: CompiledFormula, field: string, subject: string, context: Record<string, unknown>): boolean {
  const v = run(f, field, subject, context);
  if (typeof v !== 'boolean') throw new FormulaProblem(field, subject, 'expression-type', `${subject}: ${field} gave ${JSON.stringify(v)}, not true or false`, 0, 1, 1, f.source);
  return v;
}

/** The dated parameters a structure reads (its formulas' vars and its scales), worked out once. */
const paramsRead = new WeakMap<CompiledStructure, string[]>();
function parametersOf(structure: CompiledStructure): string[] {
  let list = paramsRead.get(structure);
  if (!list) {
    const used = new Set<string>();
    const note = (f?: CompiledFormula) => f?.refs.forEach((r) => { if (r.startsWith('vars.')) used.add(r.slice(5)); });
    for (const c of structure.components) { [c.formula, c.base, c.condition].forEach(note); if (c.scale) used.add(c.scale); }
    for (const check of structure.checks) note(check.when);
    paramsRead.set(structure, (list = [...used].sort()));
  }
  return list;
}

/** Computes one payslip. Throws FormulaProblem naming the component, the field and the position. */
export function computePayslip(structure: CompiledStructure, facts: PeriodFacts, vars: ReadonlyMap<string, ParameterValue>, ytd: ReadonlyMap<string, YearToDate>): PayslipResult {
  const allVars = varsObject(vars);
  const totals = { earnings: ZERO, deductions: ZERO, contributions: ZERO };
  const periodSteps: Record<string, unknown> = {};
  const segmentSteps: Record<string, unknown>[] = facts.segments.map(() => ({}));
  const lines: PayslipLine[] = [];
  const totalsText = () => ({ earnings: money(totals.earnings), deductions: money(totals.deductions), contributions: money(totals.contributions), net: money(totals.earnings.minus(totals.deductions)) });
  // `steps` as a component sees it: earlier amounts (this part's, for perSegment ones) and the running totals.
  const stepsOf = (segment?: number) => () => ({ ...periodSteps, ...(segment === undefined ? {} : segmentSteps[segment]), totals: totalsText() });
  const stepOf = (segment?: number) => (key: string): unknown => (key === 'totals' ? totalsText() : (segment === undefined ? undefined : segmentSteps[segment][key]) ?? periodSteps[key]);
  const periodSources: Sources = { record: facts.record, input: facts.input, vars: allVars, step: stepOf(), steps: stepsOf() };

  for (const c of structure.components) {
    const at = `components.${c.index}`;
    const subject = `component ${c.code}`;
    let amount = ZERO;
    let line: PayslipLine | undefined;
    if (c.perSegment) {
      const parts: NonNullable<PayslipLine['segments']> = [];
      facts.segments.forEach((s, i) => {
        const src: Sources = { record: s.record, input: s.input, vars: allVars, step: stepOf(i), steps: stepsOf(i) };
        let value = ZERO;
        if (!c.condition || holds(c.condition, `${at}.condition`, subject, contextOf(c.condition, src))) {
          const context = contextOf(c.formula!, src);
          value = amountOf(run(c.formula!, `${at}.formula`, subject, context), c.formula!, `${at}.formula`, subject).toDecimalPlaces(c.round, Decimal.ROUND_HALF_UP);
          parts.push({ from: s.from, to: s.to, amount: fixed(value, c.round), inputs: traceOf(c.formula!, context) });
        }
        segmentSteps[i][c.code] = fixed(value, c.round);
        amount = amount.plus(value);
      });
      if (parts.length) {
        // One part (the usual month): its inputs; several (a raise mid-month): each part with its own.
        line = { code: c.code, title: c.title, kind: c.kind, amount: money(amount), formula: c.formula!.source, ...(parts.length === 1 ? { inputs: parts[0].inputs } : { segments: parts }) };
      }
    } else if (!c.condition || holds(c.condition, `${at}.condition`, subject, contextOf(c.condition, periodSources))) {
      // A period component reads the whole period's amount of earlier perSegment components.
      if (c.base) {
        const context = contextOf(c.base, periodSources);
        const base = amountOf(run(c.base, `${at}.base`, subject, context), c.base, `${at}.base`, subject).toDecimalPlaces(2, Decimal.ROUND_HALF_UP);
        const scale = vars.get(c.scale!);
        if (!scale?.scale) throw new FormulaProblem(`${at}.scale`, subject, 'parameter-missing', `${subject}: the dated parameter ${c.scale} has no scale for ${facts.period}`);
        const before = ytd.get(c.code) ?? { base: ZERO, amount: ZERO };
        const cumulative = before.base.plus(base);
        const due = applyScale(scale.scale, cumulative).toDecimalPlaces(c.round, Decimal.ROUND_HALF_UP);
        amount = due.minus(before.amount);
        line = {
          code: c.code, title: c.title, kind: c.kind, amount: money(amount), formula: c.base.source, inputs: traceOf(c.base, context), base: money(base), scale: c.scale,
          ytd: { baseBefore: money(before.base), amountBefore: money(before.amount), base: money(cumulative), amount: money(due) },
        };
      } else {
        const context = contextOf(c.formula!, periodSources);
        amount = amountOf(run(c.formula!, `${at}.formula`, subject, context), c.formula!, `${at}.formula`, subject).toDecimalPlaces(c.round, Decimal.ROUND_HALF_UP);
        line = { code: c.code, title: c.title, kind: c.kind, amount: money(amount), formula: c.formula!.source, inputs: traceOf(c.formula!, context) };
      }
    }
    periodSteps[c.code] = money(amount);
    if (c.kind === 'earning') totals.earnings = totals.earnings.plus(amount);
    else if (c.kind === 'deduction') totals.deductions = totals.deductions.plus(amount);
    else totals.contributions = totals.contributions.plus(amount);
    if (line && (!amount.isZero() || line.base !== undefined)) {
      if (c.account) line.account = c.account;
      if (c.kind === 'earning') { line.inAverage = c.inAverage; line.inSickAverage = c.inSickAverage; }
      lines.push(line);
    }
  }
  const flags: PayslipFlag[] = [];
  if (facts.bySchedule) flags.push({ code: 'no-timesheet', message: 'No approved timesheet: paid as the schedule plans the period' });
  for (const check of structure.checks) {
    const context = contextOf(check.when, periodSources);
    if (holds(check.when, `checks.${check.index}.when`, `check ${check.code}`, context)) flags.push({ code: check.code, message: check.message, inputs: traceOf(check.when, context) });
  }
  const average = (pick: (c: CompiledComponent) => boolean) => money(structure.components.filter((c) => c.kind === 'earning' && pick(c)).reduce((s, c) => s.plus(dec(periodSteps[c.code])), ZERO));
  const parameters: PayslipResult['parameters'] = {};
  for (const code of parametersOf(structure)) {
    const v = vars.get(code);
    // A scale is named by its code and date (payroll.parameters keeps it); a value is shown.
    if (v) parameters[code] = { ...(v.scale ? {} : { value: v.value }), validFrom: v.validFrom };
  }
  return {
    lines, ...totalsText(), flags, parameters,
    average: { base: average((c) => c.inAverage), sickBase: average((c) => c.inSickAverage), employedDays: facts.employedDays, excludedDays: facts.excludedDays },
  };
}
