// Russian tax and registration identifiers and their check digits (Federal Tax Service rules; they
// have not changed since the numbers were introduced, so they live here as code, not dated data).

/** Why an identifier is not valid: not the right digits at all, or a mistyped digit. */
export type IdentifierProblem = 'shape' | 'check-digit';

const digitsOf = (value: string): number[] => [...value].map(Number);

/** Σ weight·digit mod 11 mod 10: the INN control digit over the digits before it. */
function innControl(digits: number[], weights: readonly number[]): number {
  let sum = 0;
  for (let i = 0; i < weights.length; i++) sum += weights[i] * digits[i];
  return (sum % 11) % 10;
}

const INN10_WEIGHTS = [2, 4, 10, 3, 5, 9, 4, 6, 8] as const;
const INN12_FIRST_WEIGHTS = [7, 2, 4, 10, 3, 5, 9, 4, 6, 8] as const;
const INN12_SECOND_WEIGHTS = [3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8] as const;

/** INN: 10 digits (an organization, one control digit) or 12 digits (an individual, two). */
export function innProblem(value: string): IdentifierProblem | undefined {
  if (!/^(\d{10}|\d{12})$/.test(value)) return 'shape';
  const d = digitsOf(value);
  if (d.length === 10) return innControl(d, INN10_WEIGHTS) === d[9] ? undefined : 'check-digit';
  return innControl(d, INN12_FIRST_WEIGHTS) === d[10] && innControl(d, INN12_SECOND_WEIGHTS) === d[11] ? undefined : 'check-digit';
}

/** The INN that starts with `first` (9 digits → an organization's, 10 → an individual's): its check digits appended. */
export function completeInn(first: string): string {
  if (!/^(\d{9}|\d{10})$/.test(first)) throw new Error(`completeInn: give 9 or 10 digits, not "${first}"`);
  if (first.length === 9) return first + innControl(digitsOf(first), INN10_WEIGHTS);
  const eleven = first + innControl(digitsOf(first), INN12_FIRST_WEIGHTS);
  return eleven + innControl(digitsOf(eleven), INN12_SECOND_WEIGHTS);
}

/** KPP: tax office (4 digits), reason (2 digits or capital Latin letters), number (3 digits); no checksum. */
export function kppProblem(value: string): IdentifierProblem | undefined {
  return /^\d{4}[\dA-Z]{2}\d{3}$/.test(value) ? undefined : 'shape';
}

/** The decimal string `digits` modulo `m`, digit by digit so no precision is ever lost. */
function decimalMod(digits: string, m: number): number {
  let rest = 0;
  for (const c of digits) rest = (rest * 10 + Number(c)) % m;
  return rest;
}

/**
 * OGRN (13 digits, an organization: control = first 12 mod 11 mod 10) or OGRNIP (15 digits, a sole
 * trader: control = first 14 mod 13 mod 10).
 */
export function ogrnProblem(value: string): IdentifierProblem | undefined {
  if (!/^(\d{13}|\d{15})$/.test(value)) return 'shape';
  const body = value.slice(0, -1);
  const control = decimalMod(body, value.length === 13 ? 11 : 13) % 10;
  return control === Number(value.at(-1)) ? undefined : 'check-digit';
}
