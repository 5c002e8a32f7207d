// The money module's rounding policy is a setting (KUBIKI_VAT_ROUNDING): per line by default (the
// Russian invoice shows VAT per line and its totals add up), per rate group when asked.
import { describe, expect, it } from 'vitest';
import { configFromEnv } from '../../core/config.ts';
import { documentTotals } from '../../core/money/document-totals.ts';

const THREE_LINES = [
  { quantity: '1', price: '99.99', vatRate: '20' },
  { quantity: '1', price: '49.99', vatRate: '20' },
  { quantity: '1', price: '19.99', vatRate: '20' },
];

describe('VAT rounding policy', () => {
  it('rounds per line by default and per rate group when the setting says rate', () => {
    expect(documentTotals(THREE_LINES)).toMatchObject({ subtotal: '169.97', vatTotal: '34.00', total: '203.97' });
    expect(documentTotals(THREE_LINES, { vatRounding: 'line' }).vat).toEqual([{ rate: '20', base: '169.97', tax: '34.00', total: '203.97' }]);
    expect(documentTotals(THREE_LINES, { vatRounding: 'rate' })).toMatchObject({ subtotal: '169.97', vatTotal: '33.99', total: '203.96' });
    // VAT-included prices: the VAT is the part inside.
    expect(documentTotals([{ quantity: '1', price: '12200.00', vatRate: '22' }], { pricesIncludeVat: true })).toMatchObject({ subtotal: '10000.00', vatTotal: '2200.00', total: '12200.00' });
  });

  it('is read from KUBIKI_VAT_ROUNDING: line by default, rate when set, anything else refused', () => {
    expect(configFromEnv({}).vatRounding).toBe('line');
    expect(configFromEnv({ KUBIKI_VAT_ROUNDING: 'rate' }).vatRounding).toBe('rate');
    expect(() => configFromEnv({ KUBIKI_VAT_ROUNDING: 'kopeck' })).toThrow(/KUBIKI_VAT_ROUNDING must be one of line, rate/);
  });
});
