import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { KubikiError } from 'kubiki/plugin';
import { moveInput, nonNegativeQuantity, quantity, reserveInput } from './schemas.ts';

// Workflow actions take their input from CEL mappings, not from a declared route: they are checked
// against the same schemas the routes declare, so a bad mapping is a 400 naming the field (and the
// step fails at once) rather than an error deep in the stock layer.

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => Ajv2020;
let ajv: Ajv2020 | undefined;
const compiled = new Map<string, ValidateFunction>();

function validator(name: string, schema: Record<string, unknown>): ValidateFunction {
  let v = compiled.get(name);
  if (!v) {
    ajv ??= addFormats(new Ajv2020({ allErrors: true, strict: false }));
    v = ajv.compile(schema);
    compiled.set(name, v);
  }
  return v;
}

const uuid = { type: 'string', format: 'uuid' };
export const ACTION_SCHEMAS: Record<string, Record<string, unknown>> = {
  postMoves: { type: 'object', required: ['moves'], properties: { moves: { type: 'array', minItems: 1, maxItems: 1000, items: moveInput } } },
  completeMove: { type: 'object', required: ['move'], properties: { move: uuid, date: { type: 'string', format: 'date' } } },
  reverseMove: { type: 'object', required: ['move'], properties: { move: uuid, date: { type: 'string', format: 'date' } } },
  reserve: {
    type: 'object', required: ['product', 'quantity', 'demandEntity', 'demandId'],
    properties: {
      product: uuid, warehouse: uuid, location: uuid, lot: uuid, quantity: quantity(),
      demandEntity: (reserveInput.properties as Record<string, Record<string, Record<string, unknown>>>).demand.properties.entity,
      demandId: { type: 'string', minLength: 1, maxLength: 100 }, demandLine: { type: 'string', minLength: 1, maxLength: 100 },
    },
  },
  release: { type: 'object', required: ['reservation'], properties: { reservation: uuid, quantity: quantity() } },
  postCount: { type: 'object', required: ['count'], properties: { count: uuid } },
  reopenCount: { type: 'object', required: ['count'], properties: { count: uuid } },
};
void nonNegativeQuantity;

/** The action's input, checked; 400 validation-failed naming the first bad field. */
export function checkActionInput<T>(action: string, input: Record<string, unknown>): T {
  const validate = validator(action, ACTION_SCHEMAS[action]);
  if (!validate(input)) {
    const issues = (validate.errors ?? []).map((e) => {
      const field = [e.instancePath.slice(1).replace(/\//g, '.'), e.keyword === 'required' ? String((e.params as { missingProperty?: string }).missingProperty) : ''].filter(Boolean).join('.');
      return { field, rule: e.keyword, message: `${field || 'input'} ${e.message ?? 'is invalid'}` };
    });
    throw new KubikiError('validation-failed', `warehouse.${action}: ${issues.map((i) => i.message).join('; ')}`, { issues });
  }
  return input as T;
}
