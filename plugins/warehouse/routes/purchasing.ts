import { defineRoute, entityRecord, idParams, type PluginContext } from 'kubiki/plugin';
import type { ReceiveInput } from '../orders/purchasing.ts';
import type { OrderServices } from '../orders/setup.ts';
import { date, lotNumber, lotRef, quantity, serials, uuid } from '../schemas.ts';
import { requestIdOf } from './common.ts';

type ErrorCodes = NonNullable<Parameters<typeof defineRoute>[0]['errors']>;

const ENTITY = 'warehouse.purchaseOrders';

export function purchasingRoutes(ctx: PluginContext, { purchasing }: OrderServices): void {
  const order = entityRecord(ENTITY);
  const transition = (name: 'confirm' | 'close' | 'cancel', summary: string, description: string, errors: ErrorCodes) =>
    ctx.route(defineRoute<{ id: string }>({
      method: 'post', path: `/purchaseOrders/:id/${name}`, operationId: `${name}PurchaseOrder`, summary, description,
      permission: 'warehouse.purchaseOrders.confirm', errors: ['not-found', 'transition-not-allowed', ...errors],
      schemas: { params: idParams, responses: { 200: order } },
      async handler({ params, principal }, http) {
        http.body = (await ctx.transition(ENTITY, params.id, name, { actor: principal, requestId: requestIdOf(http) })).record;
      },
    }));
  transition('confirm', 'Confirm a draft: every line a stock product, numbered PO-<year>-NNNNNN',
    'The confirm transition of warehouse.purchase-order-lifecycle. A line without product answers 400 lines.N.product required, a service 400 lines.N.product stockable; the number is gapless per year of the order\'s date (default today).', ['validation-failed']);
  transition('close', 'Close a confirmed or partly received order short', 'Nothing more is received against it.', []);
  transition('cancel', 'Cancel a draft or a confirmed order with nothing received',
    'After any receipt the answer is 409 warehouse.order-state (close the order short instead).', ['warehouse.order-state']);

  ctx.route(defineRoute<{ id: string }, unknown, ReceiveInput>({
    method: 'post', path: '/purchaseOrders/:id/receive', operationId: 'receivePurchaseOrder', summary: 'Receive goods against a confirmed order (a goods receipt)',
    description: 'One receipt move per line from the suppliers location into `location` (default the order\'s, else the warehouse\'s root location), valued at the order line\'s net price '
      + '(after discount, without VAT) per unit; the receipt RCPT-<year>-NNNNNN records them, the order\'s received quantities grow and it becomes partlyReceived or received. '
      + 'Above the ordered quantity plus the order\'s tolerancePercent: 409 warehouse.over-receipt naming lines.N.quantity (ordered, received, allowed). Anything refused writes nothing.',
    permission: 'warehouse.purchaseOrders.receive',
    errors: ['not-found', 'validation-failed', 'warehouse.order-state', 'warehouse.over-receipt', 'warehouse.period-closed', 'warehouse.serial-in-stock'],
    schemas: {
      params: idParams,
      body: {
        type: 'object', additionalProperties: false, required: ['lines'],
        properties: {
          date: date('Receipt date (default today)'),
          location: uuid('An internal location of the order\'s warehouse'),
          lines: {
            type: 'array', minItems: 1, maxItems: 1000,
            items: {
              type: 'object', additionalProperties: false, required: ['line', 'quantity'],
              properties: { line: { type: 'integer', minimum: 0, description: 'The order line (position, from 0)' }, quantity: quantity('Received, in the stock unit'), lot: lotRef, lotNumber, serials },
            },
          },
          notes: { type: 'string', maxLength: 5000 },
        },
      },
      responses: { 201: { description: 'The goods receipt', schema: entityRecord('warehouse.receipts'), headers: { Location: '/api/warehouse/receipts/{id}' } } },
    },
    async handler({ params, body, principal }, http) {
      const receipt = await purchasing.receive(params.id, body, { actor: principal, requestId: requestIdOf(http) });
      http.status = 201;
      http.set('Location', `/api/warehouse/receipts/${receipt.id}`);
      http.body = receipt;
    },
  }));
}
