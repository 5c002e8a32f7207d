import { entityRecord } from 'kubiki/plugin';
import { MOVE_KINDS } from './stock-service.ts';

// JSON Schemas the warehouse routes declare (validated before a handler runs, published in OpenAPI).

type Schema = Record<string, unknown>;

export const uuid = (description?: string): Schema => ({ type: 'string', format: 'uuid', ...(description ? { description } : {}) });
export const date = (description?: string): Schema => ({ type: 'string', format: 'date', ...(description ? { description } : {}) });
/** A quantity > 0 with at most 3 decimals, as a decimal string. */
export const quantity = (description = 'A decimal string greater than zero, at most 3 decimals'): Schema => ({
  type: 'string', pattern: '^(?=.*[1-9])[0-9]{1,15}(\\.[0-9]{1,3})?$', 'x-format-hint': 'a decimal string greater than zero with at most 3 decimals, e.g. "12.5"', description,
});
export const nonNegativeQuantity: Schema = { type: 'string', pattern: '^[0-9]{1,15}(\\.[0-9]{1,3})?$', 'x-format-hint': 'a decimal string of zero or more with at most 3 decimals, e.g. "0" or "12.5"' };
export const unitCost: Schema = { type: 'string', pattern: '^[0-9]{1,14}(\\.[0-9]{1,4})?$', 'x-format-hint': 'a decimal string of zero or more with at most 4 decimals, e.g. "125.50"', description: 'Cost of one stock unit' };

export const source: Schema = {
  type: 'object', required: ['entity', 'id'], additionalProperties: false, description: 'The document the move or reservation is for',
  properties: {
    entity: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-zA-Z][a-zA-Z0-9]*$', 'x-format-hint': 'an entity as <plugin>.<plural>, e.g. sales.orders' },
    id: { type: 'string', minLength: 1, maxLength: 100 },
    line: { type: 'string', minLength: 1, maxLength: 100 },
  },
};

export const serials: Schema = { type: 'array', maxItems: 1000, uniqueItems: true, items: { type: 'string', minLength: 1, maxLength: 100 }, description: 'Serial numbers, one per unit (serial-tracked products)' };

export const lotRef: Schema = uuid('A warehouse.lots id (lot-tracked products)');
export const lotNumber: Schema = { type: 'string', minLength: 1, maxLength: 100, description: 'Receipts of lot-tracked products: the lot by number (made when new)' };

export const moveInput: Schema = {
  type: 'object', additionalProperties: false, required: ['kind', 'product', 'quantity', 'fromLocation', 'toLocation'],
  properties: {
    kind: { enum: MOVE_KINDS, description: 'receipt: supplier → stock; shipment: stock → customer; transfer: between stock locations; adjustment: to or from inventory loss; scrap: stock → scrap' },
    status: { enum: ['done', 'planned'], default: 'done', description: 'done (default): posted now; planned: expected, counts as incoming/outgoing until completed' },
    date: date('Posting date (planned: expected date); default today'),
    product: uuid('A base.products id'),
    quantity: quantity('In the stock unit, or in `unit`'),
    unit: uuid('The unit of `quantity`: the product\'s purchase or sales unit (converted by its factor); default its stock unit'),
    fromLocation: uuid('A warehouse.locations id'),
    toLocation: uuid('A warehouse.locations id'),
    lot: lotRef,
    lotNumber,
    serials,
    unitCost,
    reservation: uuid('Shipments: the warehouse.reservations record consumed'),
    source,
    memo: { type: 'string', maxLength: 1000 },
  },
};

/** A done move: one ledger row. */
export const moveRecord: Schema = {
  type: 'object', additionalProperties: false, required: ['id', 'version', 'kind', 'status', 'date', 'product', 'quantity', 'fromLocation', 'toLocation', 'valuation', 'posting'],
  description: 'A done move: one row of the append-only ledger (version is always 1: a move never changes)',
  properties: {
    id: uuid(), version: { const: 1 }, kind: { enum: MOVE_KINDS }, status: { const: 'done' }, date: date(), product: uuid(),
    quantity: { type: 'string', description: 'In the stock unit' }, enteredQuantity: { type: 'string' }, enteredUnit: uuid(),
    fromLocation: uuid(), toLocation: uuid(), lot: uuid(), serials: { type: 'array', items: { type: 'string' } },
    valuation: { enum: ['in', 'out', 'none'], description: 'in: enters valued stock (internal/transit locations); out: leaves it; none: within it' },
    unitCost: { type: 'string' }, value: { type: 'string', description: 'As posted (a back-dated move may revalue an issue later: see the stock ledger)' },
    reservation: uuid('The reservation consumed'), reverses: uuid('The move this one reverses'), planned: uuid('The planned move it completes'),
    posting: uuid('The warehouse.postings record it was written under'),
    sourceEntity: { type: 'string' }, sourceId: { type: 'string' }, sourceLine: { type: 'string' }, memo: { type: 'string' },
    createdAt: { type: 'string', format: 'date-time' }, createdBy: uuid(),
  },
};
export const plannedRecord = entityRecord('warehouse.plannedMoves');
/** What posting a move answers: the ledger move, or the planned move (status planned). */
export const moveOrPlanned: Schema = { anyOf: [moveRecord, plannedRecord] };
export const reservationRecord = entityRecord('warehouse.reservations');

export const reserveInput: Schema = {
  type: 'object', additionalProperties: false, required: ['product', 'quantity', 'demand'],
  properties: {
    product: uuid('A base.products id'),
    location: uuid('Internal location to hold the stock in (stock under it counts); or give warehouse'),
    warehouse: uuid('A warehouse: its root location'),
    lot: uuid('Reserve this lot only'),
    quantity: quantity(),
    demand: { ...source, description: 'The demand line: entity, id and line (one active reservation each)' },
    reference: { type: 'string', maxLength: 200 },
  },
};

/** Query parameters of report routes: output format and CSV options. */
export const csvQuery: Schema = {
  format: { enum: ['json', 'csv'], description: 'json (default) or csv (also with Accept: text/csv)' },
  delimiter: { enum: [',', ';', 'comma', 'semicolon'], description: 'CSV delimiter (";" for Excel set to Russian)' },
  bom: { enum: ['true', 'false'], description: 'CSV: a UTF-8 byte order mark (default true)' },
};

/** A report: JSON with columns and rows (or, with format=csv, the same as CSV text). */
export const report = (meta: Schema = {}): Schema => ({
  description: 'The report (application/json), or CSV with format=csv or Accept: text/csv',
  schema: { type: 'object', required: ['report', 'columns', 'rows'], properties: { report: { type: 'string' }, columns: { type: 'array', items: { type: 'string' } }, rows: { type: 'array', items: { type: 'object' } }, ...meta } },
  alternatives: { 'text/csv': { type: 'string', description: 'CSV text: the header line is `columns`, then one line per row' } },
});

export const availability: Schema = {
  type: 'object', additionalProperties: false, required: ['product', 'location', 'onHand', 'reserved', 'available', 'incoming', 'outgoing'],
  properties: {
    product: uuid(), location: uuid(), lot: { type: ['string', 'null'] },
    onHand: { type: 'string' }, reserved: { type: 'string' }, available: { type: 'string' }, incoming: { type: 'string' }, outgoing: { type: 'string' },
  },
};
