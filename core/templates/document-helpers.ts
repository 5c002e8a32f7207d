/**
 * The business-document helpers the template engine registers in its isolated Handlebars
 * environment. DOCUMENT_HELPERS lists their names, for `knownHelpers` with `knownHelpersOnly`:
 * templates can call these (and Handlebars' built-ins) and nothing else.
 *
 * Every helper is a pure function of its arguments (no files, env, network, or prototype reads).
 * Locale: hash `locale=`, else `locale` at the root of the template data, else "ru-RU".
 * Reference with examples: docs/template-helpers.md.
 */
import type Handlebars from 'handlebars';
import { amountInWordsHelpers } from './helpers/amount-in-words.ts';
import { conditionalHelpers } from './helpers/conditionals.ts';
import { formattingHelpers } from './helpers/formatting.ts';
import type { DocumentHelper } from './helpers/helper-support.ts';
import { taxLinesHelpers } from './helpers/tax-lines.ts';

const HELPERS: Readonly<Record<string, DocumentHelper>> = Object.freeze({
  ...formattingHelpers,
  ...amountInWordsHelpers,
  ...taxLinesHelpers,
  ...conditionalHelpers,
});

export const DOCUMENT_HELPERS: readonly string[] = Object.freeze(Object.keys(HELPERS));

export function registerDocumentHelpers(hbs: typeof Handlebars): void {
  for (const [name, helper] of Object.entries(HELPERS)) hbs.registerHelper(name, helper);
}

export { amountInWords } from './helpers/amount-in-words.ts';
export { taxLines, sumLines, type TaxLine } from './helpers/tax-lines.ts';
