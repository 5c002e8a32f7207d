import fs from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ErrorObject, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { repoRoot } from '../config.ts';
import { STEP_TYPES, TRIGGER_TYPES, pointer, type WorkflowDefinition } from './workflow-definition.ts';

// The published JSON Schema of workflow definitions (workflows/workflow.schema.json) and the
// translation of its ajv errors into sentences an analyst understands.

// ajv-formats is CommonJS; under NodeNext its default import is the module namespace.
const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;

export const WORKFLOW_SCHEMA_FILE = path.join(repoRoot, 'workflows', 'workflow.schema.json');

/** One problem in a definition: where (JSON pointer), which rule, and a sentence saying what to fix. */
export interface DefinitionError {
  /** JSON pointer into the definition, e.g. `/steps/notify-owner/next`; empty for the whole document. */
  path: string;
  /** A JSON Schema keyword (`required`, `enum`…) or a Kubiki rule (`missing-step`, `unreachable`…). */
  rule: string;
  message: string;
}

let compiled: ValidateFunction | undefined;

function validator(): ValidateFunction {
  if (!compiled) {
    const ajv = new Ajv2020({ allErrors: true, discriminator: true, strict: true, strictRequired: false, verbose: true });
    addFormats(ajv);
    compiled = ajv.compile(JSON.parse(fs.readFileSync(WORKFLOW_SCHEMA_FILE, 'utf8')) as object);
  }
  return compiled;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The value at a JSON pointer, or undefined. */
export function valueAt(root: unknown, ptr: string): unknown {
  let value = root;
  for (const raw of ptr.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(value)) value = value[Number(key)];
    else if (isObject(value)) value = value[key];
    else return undefined;
  }
  return value;
}

/** `/steps/check-inn/then` → `steps.check-inn.then`: how a location reads in a sentence. */
export const dotted = (ptr: string): string =>
  ptr.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.') || 'the definition';

const quoteList = (values: readonly unknown[]): string => values.map((v) => JSON.stringify(v)).join(', ');

/** What a pattern stands for, in words (keyed by the schema's pattern source). */
const PATTERN_HINTS: Record<string, string> = {
  '^[a-z][a-z0-9]*\\.[a-z][a-z0-9-]{0,60}$': 'must be <plugin>.<name> in lower case, e.g. crm.deal-lifecycle',
  '^[a-z][a-zA-Z0-9_-]{0,60}$': 'must start with a lower-case letter followed by letters, digits, - or _ (at most 61 characters)',
  '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$': 'must be an entity name like base.organizations',
  '^[a-z][a-zA-Z0-9]*$': 'must be a field name like status (letters and digits, starting with a lower-case letter)',
  '^KUBIKI_[A-Z0-9_]+$': 'must be an environment variable name starting with KUBIKI_, e.g. KUBIKI_SHOP_WEBHOOK_SECRET',
  '^[a-z][a-z0-9]*\\.[a-zA-Z][a-zA-Z0-9]*$': 'must be <plugin>.<action>, e.g. finance.postInvoice',
  '^[a-z][a-zA-Z0-9]*(\\.[a-zA-Z][a-zA-Z0-9]*){1,2}$': 'must be a permission like finance.invoices.post',
  '^[a-z][a-zA-Z0-9_]*$': 'must be a field name like dueDate',
};
const DURATION_PATTERN_START = '^-?P';

const TYPE_WORDS: Record<string, string> = {
  string: 'text', object: 'a set of named values', array: 'a list', integer: 'a whole number', number: 'a number', boolean: 'true or false',
};

const article = (word: string): string => (/^[aeiou]/i.test(word) ? `an ${word}` : `a ${word}`);

/** What kind of thing lives at a path, for "a wait step needs …" style sentences. */
function owner(data: unknown, ptr: string): string {
  const value = valueAt(data, ptr);
  const type = isObject(value) && typeof value.type === 'string' ? value.type : undefined;
  if (/^\/steps\/[^/]+$/.test(ptr)) return type ? `${article(type)} step` : 'a step';
  if (ptr === '/trigger') return type ? `${article(type)} trigger` : 'a trigger';
  if (ptr === '') {
    const kind = isObject(data) ? data.kind : undefined;
    return kind === 'lifecycle' ? 'a lifecycle' : kind === 'automation' ? 'an automation' : 'a workflow definition';
  }
  if (/^\/states\/\d+$/.test(ptr)) return 'a state';
  if (/^\/transitions\/\d+$/.test(ptr)) return 'a transition';
  return dotted(ptr);
}

function oneOfMessage(data: unknown, ptr: string): string {
  const value = valueAt(data, ptr);
  if (isObject(value) && value.type === 'wait') {
    return 'duration' in value && 'until' in value
      ? 'a wait step takes either duration or until, not both'
      : 'a wait step needs either duration or until';
  }
  if (ptr.endsWith('/mode')) return 'mode must be "any", "all" or { atLeast: N } with N a whole number of at least 1';
  if (/^\/transitions\/\d+\/from$/.test(ptr)) return 'from must be "*" (any state that is not final) or a list of state names';
  return `${dotted(ptr)} does not have any of the allowed forms`;
}

function sentence(e: ErrorObject, data: unknown): DefinitionError {
  const ptr = e.instancePath;
  const where = dotted(ptr);
  const params = e.params as Record<string, unknown>;
  switch (e.keyword) {
    case 'required': {
      const missing = String(params.missingProperty);
      return { path: ptr + pointer(missing), rule: 'required', message: `${owner(data, ptr)} needs ${missing}` };
    }
    case 'additionalProperties': {
      const extra = String(params.additionalProperty);
      const props = isObject(e.parentSchema) && isObject(e.parentSchema.properties) ? Object.keys(e.parentSchema.properties) : [];
      return {
        path: ptr + pointer(extra), rule: 'unknown-property',
        message: `${owner(data, ptr)} has no property "${extra}"${props.length ? `; use one of ${props.join(', ')}` : ''}`,
      };
    }
    case 'discriminator': {
      const isTrigger = ptr === '/trigger';
      const types = isTrigger ? TRIGGER_TYPES : STEP_TYPES;
      const noun = isTrigger ? 'trigger' : 'step';
      if (params.error === 'mapping') {
        return { path: ptr + '/type', rule: `${noun}-type`, message: `unknown ${noun} type ${JSON.stringify(params.tagValue)}; use one of ${types.join(', ')}` };
      }
      return { path: ptr + '/type', rule: `${noun}-type`, message: `the ${noun} needs a type: one of ${types.join(', ')}` };
    }
    case 'oneOf':
      return { path: ptr, rule: 'oneOf', message: oneOfMessage(data, ptr) };
    case 'enum':
      return { path: ptr, rule: 'enum', message: `${where} must be one of ${quoteList(params.allowedValues as unknown[])}` };
    case 'const':
      return { path: ptr, rule: 'const', message: `${where} must be ${JSON.stringify(params.allowedValue)}` };
    case 'type':
      return { path: ptr, rule: 'type', message: `${where} must be ${TYPE_WORDS[String(params.type)] ?? String(params.type)}` };
    case 'pattern': {
      const pattern = String(params.pattern);
      const hint = pattern.startsWith(DURATION_PATTERN_START) ? 'must be an ISO 8601 duration like PT15M, P3D or -P1D'
        : PATTERN_HINTS[pattern] ?? `must match ${pattern}`;
      return { path: ptr, rule: 'pattern', message: `${where} ${hint}` };
    }
    case 'propertyNames': {
      const name = String(params.propertyName);
      return { path: ptr + pointer(name), rule: 'step-id', message: `"${name}" is not a valid step id: it ${PATTERN_HINTS['^[a-z][a-zA-Z0-9_-]{0,60}$']}` };
    }
    case 'minLength':
      return { path: ptr, rule: 'minLength', message: params.limit === 1 ? `${where} must not be empty` : `${where} must be at least ${String(params.limit)} characters long` };
    case 'maxLength':
      return { path: ptr, rule: 'maxLength', message: `${where} must be at most ${String(params.limit)} characters long` };
    case 'minItems': {
      if (ptr === '/states') return { path: ptr, rule: 'minItems', message: `a lifecycle needs at least ${String(params.limit)} states` };
      if (ptr.endsWith('/branches')) return { path: ptr, rule: 'minItems', message: `a parallel step needs at least ${String(params.limit)} branches` };
      return { path: ptr, rule: 'minItems', message: `${where} needs at least ${String(params.limit)} item${params.limit === 1 ? '' : 's'}` };
    }
    case 'minProperties': {
      if (ptr.endsWith('/assignees')) return { path: ptr, rule: 'minProperties', message: 'an approval needs assignees: a role, users, or both' };
      if (ptr.endsWith('/cases')) return { path: ptr, rule: 'minProperties', message: 'a switch step needs at least one case' };
      return { path: ptr, rule: 'minProperties', message: `${where} must not be empty` };
    }
    case 'minimum':
      return { path: ptr, rule: 'minimum', message: `${where} must be at least ${String(params.limit)}` };
    case 'maximum':
      return { path: ptr, rule: 'maximum', message: `${where} must be at most ${String(params.limit)}` };
    default:
      return { path: ptr, rule: e.keyword, message: `${where} ${e.message ?? 'is not valid'}` };
  }
}

/** ajv's raw errors, pruned of noise: `if` wrappers, the inner errors of `oneOf` and `propertyNames`. */
function relevant(errors: ErrorObject[]): ErrorObject[] {
  const oneOfs = errors.filter((e) => e.keyword === 'oneOf');
  const discriminated = new Set(errors.filter((e) => e.keyword === 'discriminator').map((e) => e.instancePath));
  return errors.filter((e) => {
    if (e.keyword === 'if') return false;
    if ('propertyName' in e && e.keyword !== 'propertyNames') return false;
    // A missing or unknown `type` is said once, by the discriminator.
    if (e.keyword === 'required' && (e.params as { missingProperty?: string }).missingProperty === 'type' && discriminated.has(e.instancePath)) return false;
    return !oneOfs.some((o) => o !== e && (e.instancePath === o.instancePath || e.instancePath.startsWith(o.instancePath + '/')) && e.schemaPath.startsWith(o.schemaPath + '/'));
  });
}

export interface SchemaCheck {
  errors: DefinitionError[];
  /** Set when the document has the schema's shape. */
  definition?: WorkflowDefinition;
}

/** Checks a parsed document against workflows/workflow.schema.json; every error, in sentences. */
export function checkDefinitionSchema(raw: unknown): SchemaCheck {
  const validate = validator();
  if (validate(raw)) return { errors: [], definition: raw as WorkflowDefinition };
  const seen = new Set<string>();
  const errors: DefinitionError[] = [];
  for (const e of relevant(validate.errors ?? [])) {
    const issue = sentence(e, raw);
    const key = `${issue.path}\u0000${issue.message}`;
    if (!seen.has(key)) {
      seen.add(key);
      errors.push(issue);
    }
  }
  return { errors };
}
