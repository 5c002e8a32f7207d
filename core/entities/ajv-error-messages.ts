import type { ErrorObject } from 'ajv/dist/2020.js';
import type { FieldIssue } from '../errors.ts';
import { FIELD_FORMATS } from './field-formats.ts';

// Turns one ajv error into a field issue an end user can act on: ajv's own words name regexes and
// format ids ("must match format \"uuid\""), which say nothing to someone filling in a form.
// Needs an ajv built with `verbose: true` for the value and the property's schema (x-ref, hints).

const pointerToPath = (pointer: string): string =>
  pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~')).join('.');

const shown = (value: unknown): string => (typeof value === 'string' ? value : JSON.stringify(value));

/** A description as the tail of "is not a valid …": lower-cased unless it starts with an acronym. */
const asNoun = (text: string): string => (/^[A-Z][a-z]/.test(text) ? text[0].toLowerCase() + text.slice(1) : text);

function stringKeyword(schema: unknown, keyword: string): string | undefined {
  const value = typeof schema === 'object' && schema !== null ? (schema as Record<string, unknown>)[keyword] : undefined;
  return typeof value === 'string' && value.trim() !== '' ? value.trim() : undefined;
}

function formatIssue(field: string, name: string, e: ErrorObject): FieldIssue {
  const formatName = String((e.params as { format: string }).format);
  const format = Object.hasOwn(FIELD_FORMATS, formatName) ? FIELD_FORMATS[formatName] : undefined;
  if (!format) return { field, rule: 'format', message: `${name} must be in the ${formatName} format` };
  if (format.problem && typeof e.data === 'string' && format.problem(e.data) === 'check-digit') {
    return { field, rule: 'check-digit', message: `${name} ${e.data} has a wrong check digit` };
  }
  const ref = stringKeyword(e.parentSchema, 'x-ref');
  return { field, rule: 'format', message: `${name} must be ${format.describes}${ref ? ` of a ${ref} record` : ''}` };
}

function patternIssue(field: string, name: string, e: ErrorObject): FieldIssue {
  const hint = stringKeyword(e.parentSchema, 'x-format-hint');
  if (hint) return { field, rule: 'pattern', message: `${name} must be ${hint}` };
  const description = stringKeyword(e.parentSchema, 'description');
  if (description) return { field, rule: 'pattern', message: `${name} is not a valid ${asNoun(description)}` };
  // Nothing human to say: the pattern itself is still more use than "is invalid".
  return { field, rule: 'pattern', message: `${name} must match the pattern ${String((e.params as { pattern: string }).pattern)}` };
}

/** One ajv error → the field it names, the rule, and a sentence a client can show. */
export function fieldIssueOf(e: ErrorObject): FieldIssue {
  const base = pointerToPath(e.instancePath);
  const join = (child: string) => (base ? `${base}.${child}` : child);
  const name = base || 'body';
  switch (e.keyword) {
    case 'required': {
      const missing = String((e.params as { missingProperty: string }).missingProperty);
      return { field: join(missing), rule: 'required', message: `${missing} is required` };
    }
    case 'additionalProperties': {
      const extra = String((e.params as { additionalProperty: string }).additionalProperty);
      return { field: join(extra), rule: 'unknown-field', message: `${extra} is not a field of this entity` };
    }
    case 'enum': {
      const allowed = (e.params as { allowedValues: unknown[] }).allowedValues;
      return { field: base, rule: 'enum', message: `${name} must be one of: ${allowed.map(shown).join(', ')}` };
    }
    case 'format':
      return formatIssue(base, name, e);
    case 'pattern':
      return patternIssue(base, name, e);
    default:
      return { field: base, rule: e.keyword, message: `${name} ${e.message ?? 'is invalid'}` };
  }
}
