import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import type { FieldIssue } from '../errors.ts';
import { fieldIssueOf } from './ajv-error-messages.ts';
import { addKubikiFormats } from './field-formats.ts';

// ajv-formats is CommonJS; under NodeNext its default import is the module namespace.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

const DECIMAL = /^-?(\d+)(?:\.(\d+))?$/;

/** Checks a decimal string against numeric(precision, scale); returns why it does not fit. */
export function decimalProblem(value: string, precision: number, scale: number): string | undefined {
  const m = DECIMAL.exec(value);
  if (!m) return 'must be a decimal string like "1234.50"';
  const integerDigits = m[1].replace(/^0+(?=\d)/, '').length;
  const fractionDigits = (m[2] ?? '').replace(/0+$/, '').length;
  if (fractionDigits > scale) return `must have at most ${scale} digits after the decimal point`;
  if (integerDigits > precision - scale) return `must have at most ${precision - scale} digits before the decimal point`;
  return undefined;
}

/**
 * Narrows ajv-formats' `date` and `date-time` to what PostgreSQL stores: it has no year 0000 and
 * no UTC offset beyond ±15:59, so such values would otherwise fail in the database with a 500.
 */
function storableDates(ajv: Ajv2020): void {
  for (const name of ['date', 'date-time'] as const) {
    const base = ajv.formats[name];
    const check = typeof base === 'function' ? base : typeof base === 'object' && !(base instanceof RegExp) && typeof base.validate === 'function' ? base.validate : undefined;
    if (!check) throw new Error(`ajv-formats did not define the ${name} format`);
    const validate = check as (value: string) => boolean;
    ajv.addFormat(name, {
      type: 'string',
      validate: (value: string) => validate(value) && !value.startsWith('0000') && !/[+-](1[6-9]|[2-9]\d):?\d\d$/.test(value),
    });
  }
}

/**
 * ajv-formats' `uuid` also accepts the `urn:uuid:` form, which a PostgreSQL uuid column refuses (a
 * 500 where the client deserves a 400/404, found by fuzzing the OpenAPI document): only the bare
 * 8-4-4-4-12 hex form is an id here.
 */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * An ajv instance that knows Kubiki's `x-` keywords and formats (`ru-inn`…); `x-decimal` validates,
 * the rest annotate. `verbose` gives errors the value and the property's schema, which the messages
 * need (a check digit, an `x-ref` target, an `x-format-hint`); it costs nothing when data is valid.
 */
export function createAjv(options: { coerceTypes?: boolean | 'array' } = {}): Ajv2020 {
  const ajv = new Ajv2020({ allErrors: true, strict: true, useDefaults: true, coerceTypes: options.coerceTypes ?? false, strictRequired: false, verbose: true });
  addFormats(ajv);
  ajv.addFormat('uuid', UUID);
  storableDates(ajv);
  addKubikiFormats(ajv);
  ajv.addVocabulary(['x-plural', 'x-title', 'x-unique', 'x-index', 'x-ref', 'x-owner', 'x-format-hint']);
  ajv.addKeyword({
    keyword: 'x-decimal',
    type: 'string',
    schemaType: 'object',
    errors: true,
    compile(spec: { precision: number; scale: number }) {
      const check = (value: string): boolean => {
        const problem = decimalProblem(value, spec.precision, spec.scale);
        if (problem) {
          check.errors = [{ keyword: 'x-decimal', params: spec, message: problem }]; // ajv fills in instancePath
          return false;
        }
        return true;
      };
      check.errors = undefined as Partial<ErrorObject>[] | undefined;
      return check;
    },
  });
  return ajv;
}

let shared: Ajv2020 | undefined;

/**
 * A validator compiled on first use with one shared ajv: building an ajv with its formats and
 * compiling costs tens of milliseconds, which every start would pay for schemas rarely used.
 */
export function lazyValidator<T>(schema: object): () => ValidateFunction<T> {
  let validate: ValidateFunction<T> | undefined;
  return () => {
    shared ??= createAjv();
    validate ??= shared.compile<T>(schema);
    return validate;
  };
}

/** ajv errors → field issues that name the field and the rule in words a client can show. */
export function toFieldIssues(errors: ErrorObject[] | null | undefined): FieldIssue[] {
  // ajv follows the errors of a failed then/else branch with one of its own ('must match "else"
  // schema'): it names the schema's structure (an optional body is if/then/else), not the field.
  const all = errors ?? [];
  const told = all.filter((e) => e.keyword !== 'if');
  return (told.length ? told : all).map(fieldIssueOf);
}
