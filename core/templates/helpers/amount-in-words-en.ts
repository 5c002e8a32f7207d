/**
 * English amounts in words, US style: no "and" inside numbers ("one hundred one"), hyphenated
 * tens ("thirty-four"), short scale (million, billion, trillion…).
 */

export interface EnCurrencyWords {
  /** [singular, plural]: the singular is used for exactly 1, the plural for everything else (0 too). */
  major: readonly [string, string];
  minor: readonly [string, string];
}

export const EN_CURRENCIES: Readonly<Record<string, EnCurrencyWords>> = {
  RUB: { major: ['ruble', 'rubles'], minor: ['kopeck', 'kopecks'] },
  USD: { major: ['dollar', 'dollars'], minor: ['cent', 'cents'] },
  EUR: { major: ['euro', 'euros'], minor: ['cent', 'cents'] },
  CNY: { major: ['yuan', 'yuan'], minor: ['fen', 'fen'] },
  KZT: { major: ['tenge', 'tenge'], minor: ['tiyn', 'tiyn'] },
};

const ONES = [
  '', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine',
  'ten', 'eleven', 'twelve', 'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen',
];
const TENS = ['', '', 'twenty', 'thirty', 'forty', 'fifty', 'sixty', 'seventy', 'eighty', 'ninety'];
const SCALES = ['', 'thousand', 'million', 'billion', 'trillion', 'quadrillion', 'quintillion'];

/** The largest number of integer digits enIntegerWords accepts (< 10^21). */
export const EN_MAX_DIGITS = SCALES.length * 3;

function tripleWords(n: number): string[] {
  const words: string[] = [];
  const hundreds = Math.floor(n / 100);
  const rest = n % 100;
  if (hundreds) words.push(ONES[hundreds]!, 'hundred');
  if (rest >= 20) words.push(rest % 10 ? `${TENS[Math.floor(rest / 10)]}-${ONES[rest % 10]}` : TENS[rest / 10]!);
  else if (rest) words.push(ONES[rest]!);
  return words;
}

/** A non-negative integer (digit string below 10^21) in English words: "1234" → "one thousand two hundred thirty-four". */
export function enIntegerWords(digits: string): string {
  if (!/^\d+$/.test(digits)) throw new Error(`not an integer: "${digits}"`);
  const trimmed = digits.replace(/^0+(?=\d)/, '');
  if (trimmed.length > EN_MAX_DIGITS) throw new Error(`number too large for words: ${trimmed}`);
  if (trimmed === '0') return 'zero';
  const words: string[] = [];
  const groups = Math.ceil(trimmed.length / 3);
  const padded = trimmed.padStart(groups * 3, '0');
  for (let i = 0; i < groups; i++) {
    const scale = groups - 1 - i;
    const n = Number(padded.slice(i * 3, i * 3 + 3));
    if (n === 0) continue;
    words.push(...tripleWords(n));
    if (scale > 0) words.push(SCALES[scale]!);
  }
  return words.join(' ');
}
