import { compileExpression, isKubikiError, type Expression } from 'kubiki/plugin';

// Salary rules as data: each component of a structure is a CEL formula — the expression language
// workflows use (core/workflows/expressions.ts: a tree-walking interpreter, never eval, new Function
// or vm) — over four roots:
//   record  the employee and the terms in force (salary, hourlyRate, rate, bonusPercent, payBasis…)
//   input   the timesheet, the calendar norm and average earnings of the part of the period
//   vars    the dated parameters in force (mrot, overtimeFirstRate, nightPremium…)
//   steps   the amounts of earlier components (steps.base) and running totals (steps.totals.earnings)
// Numbers arrive as decimal text: formulas compute with decimal(…), never floats.

export const RECORD_KEYS = ['personnelNumber', 'name', 'position', 'department', 'payBasis', 'salary', 'hourlyRate', 'rate', 'bonusPercent', 'sickPayPercent', 'taxResidency', 'hireDate', 'terminationDate'] as const;
export const INPUT_KEYS = [
  'from', 'to', 'accounting', 'segment', 'segments', 'calendarDays', 'employedDays', 'normDays', 'normHours', 'calendarNormDays', 'calendarNormHours',
  'plannedDays', 'plannedHours', 'workedDays', 'workedHours', 'overtimeHours', 'overtimeFirstHours', 'overtimeNextHours', 'nightHours', 'holidayHours',
  'sickDays', 'sickEmployerDays', 'sickFundDays', 'vacationDays', 'absenceDays', 'sickEarnings', 'vacationEarnings', 'vacationAverageDays',
] as const;
export const TOTAL_KEYS = ['earnings', 'deductions', 'contributions', 'net'] as const;
/** Input values that are text, not numbers (the sample evaluation gives them a plausible value). */
const TEXT_SAMPLES: Record<string, string> = { payBasis: 'monthly', taxResidency: 'resident', accounting: 'days', from: '2026-01-01', to: '2026-01-31', hireDate: '2020-01-01', terminationDate: '', personnelNumber: '1', name: 'Sample', position: 'Sample', department: '' };

export type ComponentKind = 'earning' | 'deduction' | 'contribution';

export interface ComponentSpec {
  code: string; title: string; kind: ComponentKind; formula?: string; base?: string; scale?: string; round?: number;
  perSegment?: boolean; condition?: string; inAverage?: boolean; inSickAverage?: boolean; account?: string; description?: string;
}
export interface CheckSpec { code: string; when: string; message: string }

export interface CompiledFormula {
  source: string;
  expression: Expression;
  /** The data paths it reads (`record.salary`, `steps.totals.earnings`), for the payslip's trace. */
  refs: string[];
  /**
   * The keys it reads of each root, when it reads them only as `root.key`: it is then evaluated over
   * just those (the expression copies the data it is given, so a smaller context is faster).
   */
  pick?: Record<string, string[]>;
}

export interface CompiledComponent {
  index: number;
  code: string;
  title: string;
  kind: ComponentKind;
  formula?: CompiledFormula;
  base?: CompiledFormula;
  scale?: string;
  round: number;
  perSegment: boolean;
  condition?: CompiledFormula;
  inAverage: boolean;
  inSickAverage: boolean;
  account?: string;
}

export interface CompiledCheck { index: number; code: string; message: string; when: CompiledFormula }

export interface CompiledStructure {
  id: string;
  code: string;
  version: number;
  country: string;
  components: CompiledComponent[];
  checks: CompiledCheck[];
}

/** Where a formula went wrong: the component (or check), the part and the position in its text. */
export class FormulaProblem extends Error {
  constructor(
    readonly field: string,
    readonly subject: string,
    readonly rule: string,
    message: string,
    readonly position?: number,
    readonly line?: number,
    readonly column?: number,
    readonly expression?: string,
  ) {
    super(message);
  }

  /** Details for a problem+json `extra`. */
  extra(): Record<string, unknown> {
    return {
      ...(this.subject.startsWith('check ') ? { check: this.subject.slice(6) } : { component: this.subject.replace(/^component /, '') }),
      formulaField: this.field,
      ...(this.position !== undefined ? { position: this.position, line: this.line, column: this.column } : {}),
      ...(this.expression ? { expression: this.expression } : {}),
    };
  }
}

function lineColumn(source: string, position: number): { line: number; column: number } {
  const lines = source.slice(0, Math.max(0, Math.min(position, source.length))).split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

/** The source with the contents of string literals blanked (same length), so names inside quotes are not read as references. */
function blankStrings(source: string): string {
  return source.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"/g, (m) => m[0] + ' '.repeat(m.length - 2) + m[m.length - 1]);
}

const REF = /\b(record|input|vars|steps)\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)(?:\s*\.\s*([A-Za-z_][A-Za-z0-9_]*))?/g;

interface Known { vars: Set<string>; steps: Set<string> }

/** Compiles one formula; a problem names `field` and `subject` with the position. */
export function compileFormula(source: string, field: string, subject: string, known?: Known): CompiledFormula {
  let expression: Expression;
  try {
    expression = compileExpression(source);
  } catch (error) {
    if (!isKubikiError(error)) throw error;
    const { position, line, column } = error.extra as { position?: number; line?: number; column?: number };
    const rule = error.issues[0]?.rule ?? 'expression-syntax';
    const why = error.message.replace(/^Expression `.*?` is invalid: /s, '');
    throw new FormulaProblem(field, subject, rule, `${subject}: ${field} is invalid: ${why}`, position, line, column, source);
  }
  const text = blankStrings(source);
  const forbidden = /\b(trigger|now|today)\b/.exec(text);
  if (forbidden) {
    const { line, column } = lineColumn(source, forbidden.index);
    throw new FormulaProblem(field, subject, 'expression-unknown-variable', `${subject}: ${field} uses ${forbidden[1]} (line ${line}, column ${column}): salary formulas see record, input, vars and steps only, so a payslip computes the same whenever it is computed`, forbidden.index, line, column, source);
  }
  const refs = new Set<string>();
  for (const m of text.matchAll(REF)) {
    const [, root, key, sub] = m;
    const at = m.index ?? 0;
    const fail = (message: string) => {
      const { line, column } = lineColumn(source, at);
      throw new FormulaProblem(field, subject, 'unknown-name', `${subject}: ${field}: ${message} (line ${line}, column ${column})`, at, line, column, source);
    };
    if (known) {
      if (root === 'record' && !(RECORD_KEYS as readonly string[]).includes(key)) fail(`record has no ${key}; it has ${RECORD_KEYS.join(', ')}`);
      if (root === 'input' && !(INPUT_KEYS as readonly string[]).includes(key)) fail(`input has no ${key}; it has ${INPUT_KEYS.join(', ')}`);
      if (root === 'vars' && !known.vars.has(key)) fail(`vars has no ${key}: no dated parameter ${key} exists (parameters: ${[...known.vars].sort().join(', ')})`);
      if (root === 'steps' && key !== 'totals' && !known.steps.has(key)) fail(`steps has no ${key}: only components before this one can be used${known.steps.size ? ` (${[...known.steps].join(', ')})` : ''}`);
      if (root === 'steps' && key === 'totals' && sub !== undefined && !(TOTAL_KEYS as readonly string[]).includes(sub)) fail(`steps.totals has no ${sub}; it has ${TOTAL_KEYS.join(', ')}`);
    }
    refs.add(root === 'steps' && key === 'totals' && sub ? `steps.totals.${sub}` : `${root}.${key}`);
  }
  const pick: Record<string, string[]> = {};
  for (const m of text.matchAll(REF)) (pick[m[1]] ??= []).includes(m[2]) || pick[m[1]].push(m[2]);
  const bare = /\b(record|input|vars|steps)\b(?!\s*\.\s*[A-Za-z_])/.test(text);
  return { source, expression, refs: [...refs], ...(bare ? {} : { pick }) };
}

/** A sample context (every number 1) in which a formula must evaluate: catches type errors on save. */
function sampleContext(known: Known, vars: Map<string, unknown>) {
  const record = Object.fromEntries(RECORD_KEYS.map((k) => [k, TEXT_SAMPLES[k] ?? '1']));
  const input = Object.fromEntries(INPUT_KEYS.map((k) => [k, TEXT_SAMPLES[k] ?? '1']));
  const steps: Record<string, unknown> = Object.fromEntries([...known.steps].map((k) => [k, '1']));
  steps.totals = Object.fromEntries(TOTAL_KEYS.map((k) => [k, '1']));
  return { record, input, vars: Object.fromEntries([...known.vars].map((k) => [k, vars.get(k) ?? '1'])), steps };
}

function tryOnSample(f: CompiledFormula, field: string, subject: string, expect: 'number' | 'boolean', sample: ReturnType<typeof sampleContext>): void {
  let value: unknown;
  try {
    value = f.expression.evaluate(sample);
  } catch (error) {
    if (!isKubikiError(error)) throw error;
    if (/division by zero/.test(error.message)) return;
    const { position, line, column } = error.extra as { position?: number; line?: number; column?: number };
    const why = error.message.replace(/^Expression `.*?` failed: /s, '');
    throw new FormulaProblem(field, subject, 'expression-evaluation', `${subject}: ${field} fails on sample data (every number 1): ${why}${line ? ` (line ${line}, column ${column})` : ''}`, position, line, column, f.source);
  }
  const ok = expect === 'boolean' ? typeof value === 'boolean' : isNumberResult(value);
  if (!ok) throw new FormulaProblem(field, subject, 'expression-type', `${subject}: ${field} gives ${typeof value === 'string' ? `text "${value.slice(0, 40)}"` : typeof value}, not ${expect === 'boolean' ? 'true or false' : 'a number (wrap amounts in decimal(…))'}`, 0, 1, 1, f.source);
}

export const isNumberResult = (v: unknown): boolean => (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v));

/**
 * Compiles a structure's components and checks. With `known` (parameter codes and their sample
 * values) it also checks every name a formula reads and evaluates it once on sample data, so a typo
 * is refused when the structure is saved rather than in the middle of a pay run.
 */
export function compileStructure(
  structure: { id?: string; code: string; version?: number; country?: string; components: ComponentSpec[]; checks?: CheckSpec[] },
  known?: { vars: Map<string, unknown>; scales: Set<string> },
): CompiledStructure {
  const seen = new Set<string>();
  const components: CompiledComponent[] = [];
  structure.components.forEach((c, i) => {
    const at = `components.${i}`;
    const subject = `component ${c.code}`;
    if (seen.has(c.code) || c.code === 'totals') throw new FormulaProblem(`${at}.code`, subject, 'unique', c.code === 'totals' ? `${at}.code: totals is reserved (steps.totals holds the running totals)` : `${at}.code: there is already a component ${c.code}`);
    const names = known ? { vars: new Set(known.vars.keys()), steps: new Set(seen) } : undefined;
    if ((c.formula === undefined) === (c.base === undefined)) throw new FormulaProblem(`${at}.formula`, subject, 'one-of', `${subject}: give either formula (the amount) or base with scale (a progressive scale on the year-to-date base)`);
    if (c.base !== undefined && !c.scale) throw new FormulaProblem(`${at}.scale`, subject, 'required', `${subject}: a base needs a scale (a dated parameter holding a progressive scale)`);
    if (c.scale !== undefined && c.base === undefined) throw new FormulaProblem(`${at}.scale`, subject, 'base', `${subject}: scale goes with base, not with formula`);
    if (c.scale !== undefined && c.perSegment) throw new FormulaProblem(`${at}.perSegment`, subject, 'scale', `${subject}: a scaled component is computed on the year to date, once per payslip (perSegment false)`);
    if (known && c.scale !== undefined && !known.scales.has(c.scale)) throw new FormulaProblem(`${at}.scale`, subject, 'exists', `${subject}: no dated parameter ${c.scale} holds a scale`);
    const compiled: CompiledComponent = {
      index: i, code: c.code, title: c.title, kind: c.kind, round: c.round ?? 2, perSegment: c.perSegment === true,
      inAverage: c.kind === 'earning' && c.inAverage !== false, inSickAverage: c.kind === 'earning' && c.inSickAverage !== false,
      ...(c.scale ? { scale: c.scale } : {}), ...(c.account ? { account: c.account } : {}),
    };
    if (c.condition !== undefined) compiled.condition = compileFormula(c.condition, `${at}.condition`, subject, names);
    if (c.formula !== undefined) compiled.formula = compileFormula(c.formula, `${at}.formula`, subject, names);
    if (c.base !== undefined) compiled.base = compileFormula(c.base, `${at}.base`, subject, names);
    if (known && names) {
      const sample = sampleContext(names, known.vars);
      if (compiled.condition) tryOnSample(compiled.condition, `${at}.condition`, subject, 'boolean', sample);
      if (compiled.formula) tryOnSample(compiled.formula, `${at}.formula`, subject, 'number', sample);
      if (compiled.base) tryOnSample(compiled.base, `${at}.base`, subject, 'number', sample);
    }
    components.push(compiled);
    seen.add(c.code);
  });
  const checks = (structure.checks ?? []).map((c, i): CompiledCheck => {
    const field = `checks.${i}.when`;
    const names = known ? { vars: new Set(known.vars.keys()), steps: new Set(seen) } : undefined;
    const when = compileFormula(c.when, field, `check ${c.code}`, names);
    if (known && names) tryOnSample(when, field, `check ${c.code}`, 'boolean', sampleContext(names, known.vars));
    return { index: i, code: c.code, message: c.message, when };
  });
  return { id: structure.id ?? '', code: structure.code, version: structure.version ?? 1, country: structure.country ?? 'RU', components, checks };
}

/** The values of the paths a formula reads, for the trace (`{"record.salary": "100000.00", …}`). */
export function traceOf(f: CompiledFormula, context: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const path of f.refs) {
    const parts = path.split('.');
    let v: unknown = context;
    for (const p of parts) v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
    if (v !== undefined) out[path] = v;
  }
  return out;
}
