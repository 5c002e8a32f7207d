/**
 * Russian "сумма прописью": integers in words with the right gender and plural forms,
 * plus currency nouns (рубль / рубля / рублей).
 */

/** Grammatical gender of the counted noun: один рубль, одна копейка / тысяча, одно … */
export type RuGender = 'masculine' | 'feminine' | 'neuter';

/** Noun forms for 1 / 2–4 / 5–20 (and 0): рубль, рубля, рублей. */
export interface RuNoun {
  forms: readonly [one: string, few: string, many: string];
  gender: RuGender;
}

export interface RuCurrencyWords {
  major: RuNoun;
  minor: RuNoun;
}

export const RU_CURRENCIES: Readonly<Record<string, RuCurrencyWords>> = {
  RUB: {
    major: { forms: ['рубль', 'рубля', 'рублей'], gender: 'masculine' },
    minor: { forms: ['копейка', 'копейки', 'копеек'], gender: 'feminine' },
  },
  USD: {
    major: { forms: ['доллар США', 'доллара США', 'долларов США'], gender: 'masculine' },
    minor: { forms: ['цент', 'цента', 'центов'], gender: 'masculine' },
  },
  EUR: {
    // «евро» does not decline; the accounting usage is masculine (один евро).
    major: { forms: ['евро', 'евро', 'евро'], gender: 'masculine' },
    minor: { forms: ['евроцент', 'евроцента', 'евроцентов'], gender: 'masculine' },
  },
  CNY: {
    major: { forms: ['юань', 'юаня', 'юаней'], gender: 'masculine' },
    minor: { forms: ['фэнь', 'фэня', 'фэней'], gender: 'masculine' },
  },
  KZT: {
    major: { forms: ['тенге', 'тенге', 'тенге'], gender: 'masculine' },
    minor: { forms: ['тиын', 'тиына', 'тиынов'], gender: 'masculine' },
  },
};

const ONES: Record<RuGender, readonly string[]> = {
  masculine: ['', 'один', 'два', 'три', 'четыре', 'пять', 'шесть', 'семь', 'восемь', 'девять'],
  feminine: ['', 'одна', 'две', 'три', 'четыре', 'пять', 'шесть', 'семь', 'восемь', 'девять'],
  neuter: ['', 'одно', 'два', 'три', 'четыре', 'пять', 'шесть', 'семь', 'восемь', 'девять'],
};
const TEENS = [
  'десять', 'одиннадцать', 'двенадцать', 'тринадцать', 'четырнадцать',
  'пятнадцать', 'шестнадцать', 'семнадцать', 'восемнадцать', 'девятнадцать',
];
const TENS = ['', '', 'двадцать', 'тридцать', 'сорок', 'пятьдесят', 'шестьдесят', 'семьдесят', 'восемьдесят', 'девяносто'];
const HUNDREDS = ['', 'сто', 'двести', 'триста', 'четыреста', 'пятьсот', 'шестьсот', 'семьсот', 'восемьсот', 'девятьсот'];

/** Scales above units, index 1 = 10^3, 2 = 10^6, … */
const SCALES: readonly RuNoun[] = [
  { forms: ['', '', ''], gender: 'masculine' },
  { forms: ['тысяча', 'тысячи', 'тысяч'], gender: 'feminine' },
  { forms: ['миллион', 'миллиона', 'миллионов'], gender: 'masculine' },
  { forms: ['миллиард', 'миллиарда', 'миллиардов'], gender: 'masculine' },
  { forms: ['триллион', 'триллиона', 'триллионов'], gender: 'masculine' },
  { forms: ['квадриллион', 'квадриллиона', 'квадриллионов'], gender: 'masculine' },
  { forms: ['квинтиллион', 'квинтиллиона', 'квинтиллионов'], gender: 'masculine' },
];

/** The largest number of integer digits ruIntegerWords accepts (< 10^21). */
export const RU_MAX_DIGITS = SCALES.length * 3;

/** Plural form for a count given as a decimal-digit string (any length): 1 → one, 2–4 → few, else many. */
export function ruPlural(digits: string, forms: readonly [string, string, string]): string {
  const lastTwo = Number(digits.slice(-2));
  const last = lastTwo % 10;
  if (lastTwo >= 11 && lastTwo <= 14) return forms[2];
  if (last === 1) return forms[0];
  if (last >= 2 && last <= 4) return forms[1];
  return forms[2];
}

function tripleWords(n: number, gender: RuGender): string[] {
  const words: string[] = [];
  const hundreds = Math.floor(n / 100);
  const rest = n % 100;
  if (hundreds) words.push(HUNDREDS[hundreds]!);
  if (rest >= 10 && rest < 20) words.push(TEENS[rest - 10]!);
  else {
    if (rest >= 20) words.push(TENS[Math.floor(rest / 10)]!);
    if (rest % 10) words.push(ONES[gender][rest % 10]!);
  }
  return words;
}

/**
 * A non-negative integer (digit string, any size below 10^21) in Russian words, agreeing in gender
 * with the noun it counts: ruIntegerWords("2", "feminine") → "две", ("1001") → "одна тысяча один".
 */
export function ruIntegerWords(digits: string, gender: RuGender = 'masculine'): string {
  if (!/^\d+$/.test(digits)) throw new Error(`not an integer: "${digits}"`);
  const trimmed = digits.replace(/^0+(?=\d)/, '');
  if (trimmed.length > RU_MAX_DIGITS) throw new Error(`number too large for words: ${trimmed}`);
  if (trimmed === '0') return 'ноль';
  const words: string[] = [];
  const groups = Math.ceil(trimmed.length / 3);
  const padded = trimmed.padStart(groups * 3, '0');
  for (let i = 0; i < groups; i++) {
    const scale = groups - 1 - i;
    const triple = padded.slice(i * 3, i * 3 + 3);
    const n = Number(triple);
    if (n === 0) continue;
    const scaleNoun = SCALES[scale]!;
    words.push(...tripleWords(n, scale === 0 ? gender : scaleNoun.gender));
    if (scale > 0) words.push(ruPlural(triple, scaleNoun.forms));
  }
  return words.join(' ');
}
