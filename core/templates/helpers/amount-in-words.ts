/**
 * {{amountInWords amount [currency] [currency="RUB"] [locale=] [minor="digits"|"words"]}}
 * (currency as a second argument or in the hash; a code or a record with a `code`)
 *
 * Russian (any ru-* locale): "Одна тысяча двести тридцать четыре рубля 50 копеек" — the accounting
 * convention: major units in words, minor units as two digits, the noun agreeing with the number.
 * English (any en-* locale): "One thousand two hundred thirty-four rubles and 50 kopecks"; nouns are
 * singular only for exactly 1 ("One dollar and 01 cent"), plural otherwise ("Zero dollars and 00 cents").
 * The amount is rounded half-up to kopecks first; a negative amount starts with "Минус" / "Minus".
 */
import { currencyCode } from './formatting.ts';
import { EN_CURRENCIES, EN_MAX_DIGITS, enIntegerWords } from './amount-in-words-en.ts';
import { RU_CURRENCIES, RU_MAX_DIGITS, ruIntegerWords, ruPlural } from './amount-in-words-ru.ts';
import { type DocumentHelper, helperCall, isBlank, languageOf, resolveLocale, toDecimal } from './helper-support.ts';

export type MinorStyle = 'digits' | 'words';

export interface AmountInWordsOptions {
  currency?: string;
  /** "ru", "ru-RU", "en-US"… only the language matters. */
  locale?: string;
  /** Minor units as two digits (default, the accounting convention) or in words. */
  minor?: MinorStyle;
}

function capitalise(text: string): string {
  return text.charAt(0).toLocaleUpperCase() + text.slice(1);
}

/** Splits an amount into sign, integer digits and two minor digits, rounded half-up. */
function splitAmount(name: string, amount: unknown): { negative: boolean; major: string; minor: string } {
  const rounded = toDecimal(name, amount, 'amount').toDecimalPlaces(2);
  const [major, minor] = rounded.abs().toFixed(2).split('.') as [string, string];
  return { negative: rounded.isNegative() && !rounded.isZero(), major, minor };
}

/** The words for an amount; throws a clear Error on an unknown currency, language or invalid amount. */
export function amountInWords(amount: unknown, options: AmountInWordsOptions = {}): string {
  const name = 'amountInWords';
  const code = currencyCode(name, options.currency ?? 'RUB');
  const language = languageOf(options.locale ?? 'ru-RU');
  const minorStyle = options.minor ?? 'digits';
  const { negative, major, minor } = splitAmount(name, amount);

  if (language === 'ru') {
    const currency = RU_CURRENCIES[code];
    if (!currency) throw new Error(`${name}: no Russian words for currency ${code} (known: ${Object.keys(RU_CURRENCIES).join(', ')})`);
    if (major.length > RU_MAX_DIGITS) throw new Error(`${name}: amount too large`);
    const minorText = minorStyle === 'words' ? ruIntegerWords(minor, currency.minor.gender) : minor;
    const text = [
      negative ? 'минус' : '',
      ruIntegerWords(major, currency.major.gender),
      ruPlural(major, currency.major.forms),
      minorText,
      ruPlural(minor, currency.minor.forms),
    ].filter(Boolean).join(' ');
    return capitalise(text);
  }
  if (language === 'en') {
    const currency = EN_CURRENCIES[code];
    if (!currency) throw new Error(`${name}: no English words for currency ${code} (known: ${Object.keys(EN_CURRENCIES).join(', ')})`);
    if (major.length > EN_MAX_DIGITS) throw new Error(`${name}: amount too large`);
    const minorText = minorStyle === 'words' ? enIntegerWords(minor) : minor;
    const text = [
      negative ? 'minus' : '',
      enIntegerWords(major),
      major === '1' ? currency.major[0] : currency.major[1],
      'and',
      minorText,
      minor === '01' ? currency.minor[0] : currency.minor[1],
    ].filter(Boolean).join(' ');
    return capitalise(text);
  }
  throw new Error(`${name}: no words for locale "${options.locale}" (supported: ru-*, en-*)`);
}

const amountInWordsHelper: DocumentHelper = (...args) => {
  const call = helperCall('amountInWords', args, 1, 2);
  const [amount, positionalCurrency] = call.params;
  if (isBlank(amount)) return '';
  const currency = call.hash.currency ?? positionalCurrency ?? 'RUB';
  const minor = call.hash.minor ?? 'digits';
  if (minor !== 'digits' && minor !== 'words') throw new Error('amountInWords: minor must be "digits" or "words"');
  return amountInWords(amount, {
    currency: currencyCode('amountInWords', currency),
    locale: resolveLocale('amountInWords', call),
    minor,
  });
};

export const amountInWordsHelpers: Readonly<Record<string, DocumentHelper>> = { amountInWords: amountInWordsHelper };
