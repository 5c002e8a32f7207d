// Which events a subscription wants: event types (`crm.deals.updated`) or patterns. A `*` in the
// middle stands for one segment (`crm.*.created`); a trailing `*` for one or more (`finance.*` is
// every finance event, `*` every event). The same pattern compiles to a JavaScript RegExp (fan-out)
// and to a PostgreSQL regular expression (the delivery claim checks events still in the outbox).

/** What a pattern may look like: 1–3 dot-separated segments, each a name or `*`. */
export const EVENT_PATTERN = '^(\\*|[a-z][a-z0-9]*)(\\.(\\*|[a-zA-Z][a-zA-Z0-9]*)){0,2}$';
const PATTERN = new RegExp(EVENT_PATTERN);

export const isEventPattern = (p: string): boolean => PATTERN.test(p);

/** The regular expression (the same text works in JavaScript and PostgreSQL) matching any of the patterns. */
export function patternsRegex(patterns: readonly string[]): string {
  const one = (pattern: string): string => {
    const parts = pattern.split('.');
    return parts.map((part, i) => {
      if (part !== '*') return part;
      // Only letters and digits are allowed in names, so nothing needs escaping.
      return i === parts.length - 1 ? '[^.]+(\\.[^.]+)*' : '[^.]+';
    }).join('\\.');
  };
  return `^(${patterns.map(one).join('|')})$`;
}

export const compilePatterns = (patterns: readonly string[]): RegExp => new RegExp(patternsRegex(patterns));
