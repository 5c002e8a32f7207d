import path from 'node:path';
import { parseDocument } from 'yaml';
import { KubikiError } from '../errors.ts';

export type DefinitionFormat = 'json' | 'yaml';

/** JSON for `.json` files, YAML for `.yaml`/`.yml`; otherwise a text starting with `{` is JSON. */
export function definitionFormat(text: string, fileName?: string): DefinitionFormat {
  const ext = fileName ? path.extname(fileName).toLowerCase() : '';
  if (ext === '.json') return 'json';
  if (ext === '.yaml' || ext === '.yml') return 'yaml';
  return text.trimStart().startsWith('{') ? 'json' : 'yaml';
}

function syntaxError(fileName: string | undefined, format: DefinitionFormat, line: number, column: number, reason: string): KubikiError {
  const where = `${fileName ? `${fileName}: ` : ''}line ${line}, column ${column}`;
  const message = `${where}: ${reason}`;
  return new KubikiError('validation-failed', `the workflow definition is not valid ${format === 'json' ? 'JSON' : 'YAML'}: ${message}`, {
    issues: [{ field: '', rule: 'syntax', message }],
    extra: { line, column, format },
  });
}

/** 1-based line and column of a 0-based character offset. */
function position(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, Math.max(0, Math.min(offset, text.length)));
  const lines = before.split('\n');
  return { line: lines.length, column: lines[lines.length - 1].length + 1 };
}

function parseJson(text: string, fileName?: string): unknown {
  try {
    return JSON.parse(text);
  } catch (error) {
    const message = (error as Error).message;
    // Node 20 says "… at position N"; newer versions say "… (line L column C)".
    const lineColumn = /line (\d+) column (\d+)/.exec(message);
    const offset = /position (\d+)/.exec(message);
    const at = lineColumn ? { line: Number(lineColumn[1]), column: Number(lineColumn[2]) }
      : offset ? position(text, Number(offset[1]))
        : position(text, text.length);
    const reason = message.replace(/\s*\(line \d+ column \d+\)/, '').replace(/ in JSON at position \d+.*$/, '').replace(/^JSON\.parse: /, '');
    throw syntaxError(fileName, 'json', at.line, at.column, reason);
  }
}

function parseYaml(text: string, fileName?: string): unknown {
  // YAML 1.2 core schema (the yaml default): `on:` stays a string key, `2026-01-31` stays a string.
  const doc = parseDocument(text, { prettyErrors: false, uniqueKeys: true, strict: true });
  const first = doc.errors[0];
  if (first) {
    const linePos = first.linePos?.[0];
    const at = linePos ? { line: linePos.line, column: linePos.col } : position(text, first.pos[0]);
    const reason = first.code === 'MULTIPLE_DOCS' ? 'a definition file holds one document; remove the "---" separator'
      : first.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '') + (/alias/i.test(first.message) ? '; a value starting with * (a cron, say) must be quoted' : '');
    throw syntaxError(fileName, 'yaml', at.line, at.column, reason);
  }
  try {
    return doc.toJS({ maxAliasCount: 100 });
  } catch (error) {
    // An alias to an unknown anchor (often an unquoted cron like `* * * * *`) fails only here.
    const message = (error as Error).message;
    const alias = /: (\S+)$/.exec(message)?.[1];
    const offset = alias ? text.indexOf(`*${alias}`) : -1;
    const at = position(text, offset >= 0 ? offset : 0);
    throw syntaxError(fileName, 'yaml', at.line, at.column, `${message.replace(/ \(the anchor must be set before the alias\)/, '')}; a value starting with * (a cron, say) must be quoted`);
  }
}

/**
 * Reads a workflow definition file's text: JSON or YAML (see `definitionFormat`). Syntax errors are
 * `validation-failed` with the line and column (in the message and in `extra`). The result is not
 * checked against the schema yet; pass it to `validateDefinition`.
 */
export function parseDefinitionText(text: string, fileName?: string): unknown {
  const source = text.replace(/^\uFEFF/, '');
  return definitionFormat(source, fileName) === 'json' ? parseJson(source, fileName) : parseYaml(source, fileName);
}
