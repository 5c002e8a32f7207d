import { readFileSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { KubikiError } from '../../core/errors.ts';
import { checkExpression, compileExpression, type ExpressionContext } from '../../core/workflows/expressions.ts';

const run = (source: string, context: ExpressionContext = {}) => compileExpression(source).evaluate(context);

function failure(fn: () => unknown): KubikiError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(KubikiError);
    return e as KubikiError;
  }
  throw new Error('expected a failure');
}

const deal = {
  id: 'd-1',
  amount: '1500.00',
  stage: 'won',
  quantity: 3,
  rate: 2.5,
  owner: { name: 'Ann', email: 'ann@example.com', roles: ['sales', 'manager'] },
  lines: [
    { sku: 'A', price: '0.10', qty: 3 },
    { sku: 'B', price: '0.20', qty: 1 },
  ],
  closedOn: '2026-11-27',
};

describe('the library', () => {
  it('interprets expressions: no eval, new Function or vm in @marcbachmann/cel-js', () => {
    const lib = dirname(fileURLToPath(import.meta.resolve('@marcbachmann/cel-js')));
    for (const file of readdirSync(lib).filter((f) => f.endsWith('.js'))) {
      const text = readFileSync(join(lib, file), 'utf8');
      expect(text, file).not.toMatch(/\beval\s*\(|new Function\b|\bFunction\s*\(|node:vm|from 'vm'|require\(/);
    }
  });
});

describe('conditions and mappings', () => {
  it('reads nested records, trigger data, variables and step outputs', () => {
    const ctx: ExpressionContext = {
      record: deal,
      trigger: { changes: { stage: { before: 'open', after: 'won' } } },
      vars: { threshold: 1000 },
      steps: { lookup: { customer: { tier: 'gold' } } },
      input: { reason: 'price' },
    };
    expect(run(`trigger.changes.stage.after == 'won' && record.owner.name == 'Ann'`, ctx)).toBe(true);
    expect(run('record.quantity > vars.threshold', ctx)).toBe(false);
    expect(run(`steps.lookup.customer.tier == "gold" ? "priority" : "normal"`, ctx)).toBe('priority');
    expect(run('input.reason', ctx)).toBe('price');
    expect(run('{"title": "Deal " + record.id, "qty": record.quantity + 1, "tags": record.owner.roles}', ctx)).toEqual({
      title: 'Deal d-1',
      qty: 4,
      tags: ['sales', 'manager'],
    });
  });

  it('has string, list and map operations', () => {
    const ctx = { record: deal };
    expect(run('record.owner.email.endsWith("@example.com") && record.owner.email.contains("ann")', ctx)).toBe(true);
    expect(run('record.owner.name.upperAscii() + "/" + record.stage.substring(0, 1)', ctx)).toBe('ANN/w');
    expect(run('"manager" in record.owner.roles && size(record.lines) == 2', ctx)).toBe(true);
    expect(run('record.lines.map(l, l.sku).join(", ")', ctx)).toBe('A, B');
    expect(run('record.lines.filter(l, l.qty > 1).size()', ctx)).toBe(1);
    expect(run('record.lines.all(l, l.qty >= 1) && record.lines.exists(l, l.sku == "B")', ctx)).toBe(true);
    expect(run('has(record.owner.phone) ? record.owner.phone : "none"', ctx)).toBe('none');
    expect(run('"a,b,c".split(",")')).toEqual(['a', 'b', 'c']);
    expect(run('{"a": 1}.a + size({"x": 1, "y": 2})')).toBe(3);
  });

  it('mixes whole and fractional JSON numbers without type errors', () => {
    expect(run('record.rate * 2', { record: deal })).toBe(5);
    expect(run('record.quantity * record.rate', { record: deal })).toBe(7.5);
    expect(run('record.quantity == 3.0', { record: deal })).toBe(true);
  });

  it('returns ints as numbers when safe, otherwise as strings', () => {
    expect(run('40 + 2')).toBe(42);
    expect(run('9007199254740993')).toBe('9007199254740993');
    expect(failure(() => run('9223372036854775807 + 1')).message).toMatch(/integer overflow/);
  });
});

describe('money', () => {
  it('compares decimal strings exactly', () => {
    expect(run('decimal(record.amount) > decimal("1000")', { record: deal })).toBe(true);
    expect(run('decimal(record.amount) == decimal("1500")', { record: deal })).toBe(true);
    expect(run('decimal(record.amount) >= 1500 && decimal(record.amount) < decimal("1500.01")', { record: deal })).toBe(true);
    expect(run('decimal("1500.001") > decimal(record.amount)', { record: deal })).toBe(true);
  });

  it('adds, subtracts, multiplies and divides without float error', () => {
    expect(run('decimal("0.1") + decimal("0.2") == decimal("0.3")')).toBe(true);
    expect(run('0.1 + 0.2 == 0.3')).toBe(false); // doubles, for contrast
    expect(run('decimal("0.1") + decimal("0.2")')).toBe('0.3');
    expect(run('decimal("1.10") - decimal("1")')).toBe('0.1');
    expect(run('decimal("19.99") * 3')).toBe('59.97');
    expect(run('record.lines.map(l, decimal(l.price) * l.qty)', { record: deal })).toEqual(['0.3', '0.2']);
    expect(run('decimal("10") / 4')).toBe('2.5');
    expect(run('decimal("99999999999999999999.99") + decimal("0.01")')).toBe('100000000000000000000');
    expect(run('fixed(decimal("2.345"), 2)')).toBe('2.35');
    expect(run('round(decimal("1") / 3, 2)')).toBe('0.33');
    expect(run('string(decimal("1.50")) + " EUR"')).toBe('1.5 EUR');
  });

  it('refuses what is not a number or divides by zero', () => {
    expect(failure(() => run('decimal("12abc")')).message).toMatch(/"12abc" is not a decimal number/);
    expect(failure(() => run('decimal("1") / decimal("0")')).message).toMatch(/division by zero/);
    expect(failure(() => run('decimal("1") + 0.5')).issues[0].rule).toBe('expression-type');
  });
});

describe('dates', () => {
  const now = '2026-11-27T15:30:00Z';
  it('is deterministic given now', () => {
    expect(run('today()', { now })).toBe('2026-11-27T00:00:00.000Z');
    expect(run('now', { now: new Date(now) })).toBe('2026-11-27T15:30:00.000Z');
    expect(run('date(record.closedOn) == today()', { now, record: deal })).toBe(true);
    expect(run('daysBetween(date("2026-11-27"), date("2027-01-01"))')).toBe(35);
    expect(run('daysBetween(today(), date(record.closedOn))', { now: '2026-11-20T23:59:59Z', record: deal })).toBe(7);
    expect(run('addDays(date("2026-02-27"), 2)')).toBe('2026-03-01T00:00:00.000Z');
    expect(run('now - duration("72h") < timestamp("2026-11-25T00:00:00Z")', { now })).toBe(true);
    expect(run('date("2026-11-27T23:30:00-05:00")')).toBe('2026-11-28T00:00:00.000Z');
  });
  it('refuses invalid dates', () => {
    expect(failure(() => run('date("2026-02-30")')).message).toMatch(/not a date/);
    expect(failure(() => run('date("tomorrow")')).message).toMatch(/not a date/);
  });
});

describe('errors', () => {
  it('reports syntax errors with 1-based line and column', () => {
    const source = 'record.amount > 1000 &&\n  record.stage == "won" &&\n  (record.owner.name ==';
    const error = failure(() => compileExpression(source));
    expect(error.code).toBe('validation-failed');
    expect(error.issues[0]).toMatchObject({ field: 'expression', rule: 'expression-syntax' });
    expect(error.extra).toMatchObject({ line: 3, column: 24, position: source.length });
    expect(checkExpression(source)).toMatchObject({ line: 3, column: 24, rule: 'expression-syntax' });

    const op = failure(() => compileExpression('record.a +\n   * 2'));
    expect(op.extra).toMatchObject({ line: 2, column: 4 });
    expect(checkExpression('record.amount > 1000')).toBeUndefined();
    expect(checkExpression('')).toMatchObject({ rule: 'expression-syntax' });
  });

  it('rejects unknown variables at compile time', () => {
    const error = failure(() => compileExpression('amount > 1000'));
    expect(error.issues[0].rule).toBe('expression-unknown-variable');
    expect(error.message).toMatch(/unknown variable amount/);
    expect(checkExpression('record.a == 1 &&\n  user.admin')).toMatchObject({ line: 2, column: 3 });
  });

  it('turns type errors and missing fields into clear evaluation errors naming the expression', () => {
    const type = failure(() => run('record.stage + 1', { record: deal }));
    expect(type.issues[0].rule).toBe('expression-evaluation');
    expect(type.message).toMatch(/^Expression `record.stage \+ 1` failed: no such overload/);
    const missing = failure(() => run('record.nope == 1', { record: deal }));
    expect(missing.message).toMatch(/No such key: nope/);
    expect(missing.extra).toMatchObject({ line: 1, column: 8 });
    expect(failure(() => run('record.id')).message).toMatch(/record is not available here/);
    expect(failure(() => run('int("x")')).issues[0].rule).toBe('expression-evaluation');
    expect(failure(() => compileExpression('1 + "a"')).issues[0].rule).toBe('expression-type');
  });
});

describe('safety', () => {
  const before = Object.getOwnPropertyNames(Object.prototype).sort();
  const attacks = [
    'process',
    'process.env',
    "require('fs')",
    'globalThis',
    'this',
    'constructor',
    'record.constructor',
    'record.__proto__',
    'record["__proto__"]',
    'record["constructor"]["constructor"]("return process")()',
    'record.toString',
    '"".constructor',
    '[].constructor',
    '"".constructor.constructor("return process")()',
    'record["__proto__"]["polluted"]',
    '{"__proto__": {"x": 1}}',
    '{"__proto__": {"polluted": true}}["__proto__"]',
    '{"constructor": {"prototype": {"polluted": true}}}',
    'decimal("1").value',
    'decimal("1")["value"]',
    'now.constructor',
    'type(record)',
    'b"{\\"__proto__\\": {\\"polluted\\": 1}}".json()',
  ];

  it.each(attacks)('%s reaches nothing', (source) => {
    let result: unknown;
    try {
      result = run(source, { record: { ...deal } });
    } catch (e) {
      expect(e).toBeInstanceOf(KubikiError);
      return;
    }
    // Whatever comes back is harmless plain data.
    expect(typeof result === 'function').toBe(false);
    expect(JSON.parse(JSON.stringify(result ?? null))).toEqual(result ?? null);
    if (result && typeof result === 'object') expect(Object.getPrototypeOf(result)).toBe(Array.isArray(result) ? Array.prototype : Object.prototype);
  });

  it('leaves Object.prototype untouched', () => {
    for (const source of attacks) {
      try {
        run(source, { record: { ...deal } });
      } catch {
        /* refused */
      }
    }
    const empty: Record<string, unknown> = {};
    expect(empty.x).toBeUndefined();
    expect(empty.polluted).toBeUndefined();
    expect(Object.getOwnPropertyNames(Object.prototype).sort()).toEqual(before);
    expect(run('{"__proto__": {"x": 1}}')).toEqual({});
  });

  it('copies input into plain data: no methods, getters or prototypes are reachable', () => {
    class Secret {
      visible = 'ok';
      get hidden(): string {
        throw new Error('getter ran');
      }
      leak(): string {
        return 'leaked';
      }
    }
    const record = JSON.parse('{"__proto__": {"polluted": 1}, "a": 1}') as Record<string, unknown>;
    record.secret = new Secret();
    record.fn = () => 'nope';
    expect(run('record', { record })).toEqual({ a: 1, secret: { visible: 'ok' } });
    expect(failure(() => run('record.secret.leak()', { record })).issues[0].rule).toMatch(/^expression-/);
    expect(failure(() => run('record.secret.hidden', { record })).message).toMatch(/No such key: hidden/);
    expect(failure(() => run('record.fn', { record })).message).toMatch(/No such key: fn/);
    // Mutations inside evaluation cannot reach the caller's objects (CEL has none, and we copy).
    const input = { list: [1, 2] };
    run('input.list + [3]', { input });
    expect(input.list).toEqual([1, 2]);
  });

  it('refuses circular and oversized data instead of crashing', () => {
    const loop: Record<string, unknown> = {};
    loop.self = loop;
    expect(failure(() => run('record.self', { record: loop })).message).toMatch(/nested deeper|circular/);
    expect(failure(() => run('size(record)', { record: Array.from({ length: 20_000 }, () => 1) })).message).toMatch(/more than 10000 items/);
  });

  // Refused by limits checked before any work (length, nesting), not by a timer: no timing asserts.
  it('refuses huge and deeply nested expressions with an error, not a crash', () => {
    const huge = 'record.a == 1 || '.repeat(60_000) + 'true';
    const big = failure(() => compileExpression(huge));
    expect(big.issues[0].rule).toBe('expression-refused');
    expect(big.message).toMatch(/at most 2000/);
    for (const deep of ['('.repeat(900) + '1' + ')'.repeat(900), '['.repeat(900) + ']'.repeat(900), '-'.repeat(1999) + '1', '!'.repeat(1995) + 'true']) {
      expect(failure(() => compileExpression(deep)).issues[0].rule).toMatch(/^expression-/);
    }
  });

  it('refuses regexes (catastrophic backtracking) and cel.bind (exponential growth)', () => {
    expect(failure(() => compileExpression('record.name.matches("(a+)+$")')).message).toMatch(/matches\(\) .* not available/);
    expect(failure(() => compileExpression('cel.bind(a, "xx", a + a)')).message).toMatch(/cel.bind is not available/);
  });

  it('bounds comprehension work', () => {
    expect(failure(() => compileExpression('[1].all(a, [2].all(b, [3].all(c, a < b)))')).message).toMatch(/at most 2 levels/);
    const record = { l: Array.from({ length: 5000 }, (_, i) => i) };
    // 25 million iterations are refused from the estimate made before running.
    const error = failure(() => run('record.l.exists(x, record.l.exists(y, x == y + 1000000))', { record }));
    expect(error.message).toMatch(/iterations/);
    // One level over the same list is fine.
    expect(run('record.l.exists(x, x == 4999)', { record })).toBe(true);
    // Small nested work is fine too.
    expect(run('[1, 2, 3].exists(a, [3, 4].exists(b, a == b))')).toBe(true);
  });

  it('caches compiled expressions by source', () => {
    expect(compileExpression('record.id == "d-1"')).toBe(compileExpression('record.id == "d-1"'));
  });
});
