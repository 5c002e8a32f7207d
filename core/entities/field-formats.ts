import type { Ajv2020 } from 'ajv/dist/2020.js';
import { innProblem, kppProblem, ogrnProblem, type IdentifierProblem } from './russian-tax-ids.ts';

/** A `format` an entity field may declare, and how an error message names a valid value. */
export interface FieldFormat {
  /** Completes "<field> must be …" in human terms (the format, never a regex). */
  describes: string;
  /** Kubiki's own formats: why a value is wrong (ajv-formats checks the standard ones). */
  problem?: (value: string) => IdentifierProblem | undefined;
}

export const FIELD_FORMATS: Readonly<Record<string, FieldFormat>> = {
  date: { describes: 'a date YYYY-MM-DD' },
  'date-time': { describes: 'an ISO 8601 timestamp YYYY-MM-DDTHH:MM:SSZ (or with an offset such as +03:00)' },
  time: { describes: 'a time HH:MM:SS' },
  email: { describes: 'an e-mail address' },
  uri: { describes: 'an absolute URL such as https://example.com' },
  uuid: { describes: 'an id (UUID)' },
  'ru-inn': { describes: 'a Russian taxpayer id (INN): 10 digits for an organization, 12 for an individual', problem: innProblem },
  'ru-kpp': { describes: 'a Russian tax registration reason code (KPP): 9 characters, 4 digits, 2 digits or capital letters, 3 digits', problem: kppProblem },
  'ru-ogrn': { describes: 'a Russian state registration number: 13 digits (OGRN) or 15 digits (OGRNIP)', problem: ogrnProblem },
};

/** Registers Kubiki's own formats with `ajv` (the standard ones come from ajv-formats). */
export function addKubikiFormats(ajv: Ajv2020): void {
  for (const [name, format] of Object.entries(FIELD_FORMATS)) {
    const problem = format.problem;
    if (problem) ajv.addFormat(name, { type: 'string', validate: (value: string) => problem(value) === undefined });
  }
}
