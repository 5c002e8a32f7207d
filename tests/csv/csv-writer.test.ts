import { describe, expect, it } from 'vitest';
import { toCsv } from '../../core/plugin-api.ts';

// The writer plugins get from kubiki/plugin, for the cases reports through REST do not reach.
describe('toCsv', () => {
  const csv = (rows: Record<string, unknown>[], options = {}) => toCsv({ columns: ['a', 'b'], rows }, { bom: false, ...options });

  it('writes RFC 4180: CRLF after every line, quotes around the separator, quotes and line breaks', () => {
    expect(csv([{ a: 'x,y', b: 'say "hi"' }, { a: 'two\nlines', b: 'cr\r' }])).toBe('a,b\r\n"x,y","say ""hi"""\r\n"two\nlines","cr\r"\r\n');
    expect(csv([{ a: 'x,y', b: 'p;q' }], { delimiter: ';' })).toBe('a;b\r\nx,y;"p;q"\r\n');
    expect(csv([])).toBe('a,b\r\n');
    expect(toCsv({ columns: ['a'], rows: [] })).toBe('\uFEFFa\r\n');
  });

  it('writes empty cells for null and undefined, JSON for objects, ISO for dates', () => {
    expect(csv([{ a: null }, { a: { k: [1] }, b: new Date('2026-01-02T03:04:05Z') }, { a: true, b: 0 }]))
      .toBe('a,b\r\n,\r\n"{""k"":[1]}",2026-01-02T03:04:05.000Z\r\ntrue,0\r\n');
  });

  it('guards text that starts like a formula, and leaves numbers alone', () => {
    expect(csv([{ a: '=1+1', b: '+7 495 000-00-00' }, { a: '@x', b: '\tx' }, { a: '-', b: '-x' }]))
      .toBe("a,b\r\n'=1+1,'+7 495 000-00-00\r\n'@x,'\tx\r\n'-,'-x\r\n");
    expect(csv([{ a: '-300.00', b: -5 }, { a: '-0', b: 12.5 }])).toBe('a,b\r\n-300.00,-5\r\n-0,12.5\r\n');
  });
});
