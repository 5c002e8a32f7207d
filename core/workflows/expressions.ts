// Workflow expressions: CEL (Common Expression Language) through @marcbachmann/cel-js, a
// tree-walking interpreter — no eval, new Function or vm anywhere in it. An expression sees only
// `trigger`, `record`, `vars`, `steps`, `input` and `now`, each deep-copied into plain data, plus
// the functions in expression-functions.ts. Analyst documentation: docs/workflow-expressions.md.
//
// Bounds: the source is at most 2,000 characters (the schema's maxLength), 1,000 AST nodes and 32
// levels deep; `matches()` (user regexes: catastrophic backtracking) and `cel.bind` (value
// sharing: exponential growth) are refused; comprehensions (all/exists/exists_one/map/filter)
// nest at most 2 deep and their worst-case iteration count over the actual data is capped, so an
// evaluation cannot run away.

import { type ParseResult } from '@marcbachmann/cel-js';
import { KubikiError } from '../errors.ts';
import { celEnvironment, EXPRESSION_ROOTS, withClock } from './expression-functions.ts';
import { fromCelValue, toCelValue, ValueError, type CopyStats } from './expression-values.ts';

export const EXPRESSION_MAX_LENGTH = 2000;
/** Comprehensions inside the body of another comprehension, at most. */
export const MAX_COMPREHENSION_NESTING = 2;
/** Worst-case comprehension iterations one evaluation may need (about half a second). */
export const MAX_ITERATIONS = 1_000_000;

export interface ExpressionContext {
  trigger?: unknown;
  record?: unknown;
  vars?: Record<string, unknown>;
  steps?: Record<string, unknown>;
  input?: unknown;
  /** The evaluation clock; `now` and `today()` use it. Defaults to the current time. */
  now?: Date | string;
}

export interface ExpressionProblem {
  message: string;
  /** 1-based. */
  line: number;
  /** 1-based, in UTF-16 code units. */
  column: number;
  /** 0-based offset into the source. */
  position: number;
  /** expression-syntax | expression-type | expression-unknown-variable | expression-refused */
  rule: string;
}

const COMPREHENSIONS = new Set(['all', 'exists', 'exists_one', 'map', 'filter']);

/** What the static walk learns about an expression, used to bound evaluation cost. */
interface Shape {
  comprehensions: number;
  nesting: number;
  /** Largest list/map literal. */
  literalSize: number;
  /** `+` operators inside comprehension ranges (list concatenation can grow a range). */
  rangeConcats: number;
  usesSplit: boolean;
  /** The context roots the expression names (`record`, `vars`…): only those are copied to evaluate it. */
  roots: Set<string>;
}

export class Expression {
  readonly source: string;
  readonly #run: ParseResult;
  readonly #shape: Shape;

  /** Use compileExpression. */
  constructor(source: string, run: ParseResult, shape: Shape) {
    this.source = source;
    this.#run = run;
    this.#shape = shape;
  }

  /**
   * Evaluates over a deep copy of `context`. Returns plain data (see fromCelValue: ints as numbers
   * when safe else strings, decimals as strings, timestamps as ISO strings). Throws KubikiError
   * 'validation-failed' (rule expression-evaluation) naming the expression on any failure.
   */
  evaluate(context: ExpressionContext = {}): unknown {
    const stats: CopyStats = { values: 0, maxCollection: 0, maxString: 0 };
    let activation: Record<string, unknown>;
    let now: Date;
    try {
      activation = Object.create(null) as Record<string, unknown>;
      for (const root of EXPRESSION_ROOTS) {
        if (root === 'now' || !this.#shape.roots.has(root)) continue;
        const value = context[root];
        if (value !== undefined) activation[root] = toCelValue(value, stats);
      }
      now = context.now === undefined ? new Date() : new Date(context.now);
      if (Number.isNaN(now.getTime())) throw new ValueError('`now` is not a valid date');
      activation.now = now;
    } catch (e) {
      throw this.#evaluationError(e instanceof ValueError ? `its data cannot be used: ${e.message}` : String(e));
    }
    this.#checkCost(stats);
    try {
      return fromCelValue(withClock(now, () => this.#run(activation) as unknown));
    } catch (e) {
      const { message, position } = describe(e);
      const missing = /^Unknown variable: (\w+)$/.exec(message);
      throw this.#evaluationError(missing ? `${missing[1]} is not available here (no ${missing[1]} data was given)` : message, position);
    }
  }

  #checkCost(stats: CopyStats): void {
    const shape = this.#shape;
    if (shape.comprehensions === 0) return;
    const base = Math.max(stats.maxCollection, shape.literalSize, shape.usesSplit ? stats.maxString : 0, 1);
    const range = base * (1 + shape.rangeConcats);
    const iterations = shape.comprehensions * range ** shape.nesting;
    if (iterations > MAX_ITERATIONS) {
      throw this.#evaluationError(
        `it could need ${iterations > 1e12 ? 'over a trillion' : Math.round(iterations).toLocaleString('en-US')} iterations over lists of up to ${range} items (limit ${MAX_ITERATIONS.toLocaleString('en-US')}); avoid nested all/exists/map/filter over large lists`,
      );
    }
  }

  #evaluationError(reason: string, position?: number): KubikiError {
    const message = `Expression \`${excerpt(this.source)}\` failed: ${reason}`;
    const extra: Record<string, unknown> = { expression: this.source };
    if (position !== undefined) Object.assign(extra, { position, ...lineColumn(this.source, position) });
    return new KubikiError('validation-failed', message, { issues: [{ field: 'expression', rule: 'expression-evaluation', message }], extra });
  }
}

const cache = new Map<string, Expression>();
const CACHE_SIZE = 2000;

/** Parses and checks once per distinct source; throws KubikiError 'validation-failed' on any problem. */
export function compileExpression(source: string): Expression {
  const cached = cache.get(source);
  if (cached) return cached;
  const result = analyse(source);
  if ('problem' in result) {
    const { message, line, column, position, rule } = result.problem;
    const detail = `Expression \`${excerpt(source)}\` is invalid: ${message} (line ${line}, column ${column})`;
    throw new KubikiError('validation-failed', detail, { issues: [{ field: 'expression', rule, message: detail }], extra: { position, line, column } });
  }
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(source, result.expression);
  return result.expression;
}

/** The first problem of an expression, for the definition validator; undefined when it compiles. */
export function checkExpression(source: string): ExpressionProblem | undefined {
  if (cache.has(source)) return undefined;
  const result = analyse(source);
  if ('problem' in result) return result.problem;
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value as string);
  cache.set(source, result.expression);
  return undefined;
}

function analyse(source: string): { expression: Expression } | { problem: ExpressionProblem } {
  const problem = (message: string, position: number, rule: string) => ({ problem: { message, position, rule, ...lineColumn(source, position) } });
  if (typeof source !== 'string' || source.trim() === '') return problem('the expression is empty', 0, 'expression-syntax');
  if (source.length > EXPRESSION_MAX_LENGTH) {
    return problem(`the expression is ${source.length} characters long; at most ${EXPRESSION_MAX_LENGTH} are allowed`, EXPRESSION_MAX_LENGTH, 'expression-refused');
  }
  let run: ParseResult;
  try {
    run = celEnvironment.parse(source);
  } catch (e) {
    const { message, position } = describe(e);
    return problem(message, position ?? 0, /limit|exceeded/i.test(message) ? 'expression-refused' : 'expression-syntax');
  }
  const shape: Shape = { comprehensions: 0, nesting: 0, literalSize: 0, rangeConcats: 0, usesSplit: false, roots: new Set() };
  const refused = walk(run.ast, shape, 0, false);
  if (refused) return problem(refused.message, refused.position, 'expression-refused');
  const checked = run.check();
  if (!checked.valid && checked.error) {
    const { message, position } = describe(checked.error);
    const unknown = /^Unknown variable: (.+)$/.exec(message);
    if (unknown) {
      return problem(`unknown variable ${unknown[1]}: expressions can use ${EXPRESSION_ROOTS.join(', ')}`, position ?? 0, 'expression-unknown-variable');
    }
    return problem(message, position ?? 0, 'expression-type');
  }
  return { expression: new Expression(source, run, shape) };
}

interface NodeLike {
  op: string;
  args: unknown;
  pos?: number;
  start?: number;
}
const isNode = (v: unknown): v is NodeLike => typeof v === 'object' && v !== null && typeof (v as { op?: unknown }).op === 'string' && 'args' in v;
const nodePosition = (node: NodeLike): number => node.start ?? node.pos ?? 0;

/** Walks the AST: refuses unsafe constructs and measures comprehension use. */
function walk(node: unknown, shape: Shape, nesting: number, inRange: boolean): { message: string; position: number } | undefined {
  if (Array.isArray(node)) {
    for (const child of node) {
      const r = walk(child, shape, nesting, inRange);
      if (r) return r;
    }
    return undefined;
  }
  if (!isNode(node)) return undefined;
  const args = node.args;
  if (node.op === 'id' && typeof args === 'string') shape.roots.add(args);
  if ((node.op === 'list' || node.op === 'map') && Array.isArray(args)) shape.literalSize = Math.max(shape.literalSize, args.length);
  if (node.op === '+' && inRange) shape.rangeConcats++;
  if ((node.op === 'call' || node.op === 'rcall') && Array.isArray(args) && typeof args[0] === 'string') {
    const name = args[0];
    if (name === 'matches') return { message: 'matches() (regular expressions) is not available; use contains, startsWith or endsWith', position: nodePosition(node) };
    if (name === 'bind') return { message: 'cel.bind is not available', position: nodePosition(node) };
    if (name === 'split') shape.usesSplit = true;
    if (node.op === 'rcall' && COMPREHENSIONS.has(name) && Array.isArray(args[2]) && args[2].length >= 2) {
      const depth = nesting + 1;
      if (depth > MAX_COMPREHENSION_NESTING) {
        return { message: `${name}() is nested ${depth} deep inside other all/exists/map/filter; at most ${MAX_COMPREHENSION_NESTING} levels are allowed`, position: nodePosition(node) };
      }
      shape.comprehensions++;
      shape.nesting = Math.max(shape.nesting, depth);
      return walk(args[1], shape, nesting, true) ?? walk(args[2], shape, depth, inRange);
    }
  }
  if (Array.isArray(args)) return walk(args, shape, nesting, inRange);
  return walk(args, shape, nesting, inRange);
}

function describe(e: unknown): { message: string; position?: number } {
  if (e instanceof Error) {
    const { summary, range } = e as Error & { summary?: unknown; range?: { start?: unknown } };
    const message = typeof summary === 'string' ? summary : e.message;
    const position = typeof range?.start === 'number' ? range.start : undefined;
    return { message, position };
  }
  return { message: String(e) };
}

/** 1-based line and column of a 0-based offset. */
export function lineColumn(source: string, position: number): { line: number; column: number } {
  const before = source.slice(0, Math.max(0, Math.min(position, source.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

function excerpt(source: string): string {
  const flat = source.replace(/\s+/g, ' ').trim();
  return flat.length > 80 ? `${flat.slice(0, 77)}...` : flat;
}
