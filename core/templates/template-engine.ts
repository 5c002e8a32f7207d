import { createHash } from 'node:crypto';
import Handlebars from 'handlebars';
import { KubikiError, isKubikiError } from '../errors.ts';
import { DOCUMENT_HELPERS, registerDocumentHelpers } from './document-helpers.ts';

type Render = (data: unknown) => string;

export interface CompiledTemplate {
  hash: string;
  render: Render;
}

interface ParserWithErrors {
  parseError: (message: string, hash: { loc?: { first_line: number; first_column: number } }) => never;
}

// Handlebars' generated parser drops the error position; keep it on the error so a compile error
// can name line and column. The parser object is shared module-wide; the message is unchanged.
const parser = (Handlebars as unknown as { Parser: ParserWithErrors }).Parser;
parser.parseError = (message, hash) => {
  throw Object.assign(new Error(message), { loc: hash?.loc });
};

/** Handlebars' message minus its ASCII-art excerpt; the position is reported separately. */
const firstLine = (message: string): string => message.split('\n').filter((l) => !/^-*\^$/.test(l)).slice(0, 1).concat(message.split('\n').slice(3)).join(' ').trim();

/**
 * The innermost block still open at the end of `source` (1-based position). When the parser hits
 * the end of the template inside a block, its own position is that of the last token read, which
 * can be lines away from the `{{#if}}` that was never closed.
 */
function unclosedBlock(source: string): { line: number; column: number; tag: string } | undefined {
  // Comments may contain tags: blank them out, keeping offsets.
  const text = source.replace(/\{\{!--[\s\S]*?--\}\}|\{\{![\s\S]*?\}\}/g, (m) => m.replace(/[^\n]/g, ' '));
  const open: { index: number; kind: string; name: string }[] = [];
  for (const m of text.matchAll(/\{\{~?\s*([#^/])\s*([>*]?\s*[^\s}~()]+)/g)) {
    if (m[1] === '/') open.pop();
    else open.push({ index: m.index, kind: m[1], name: m[2].replace(/^[>*]\s*/, '') });
  }
  const last = open.at(-1);
  if (!last) return undefined;
  const before = text.slice(0, last.index);
  return { line: before.split('\n').length, column: last.index - before.lastIndexOf('\n'), tag: `{{${last.kind}${last.name}}}` };
}

function compileError(error: unknown, source: string): KubikiError {
  const e = error as Error & { loc?: { first_line: number; first_column: number }; lineNumber?: number; column?: number };
  let line = e.loc?.first_line ?? e.lineNumber;
  let column = e.loc ? e.loc.first_column + 1 : e.column !== undefined ? e.column + 1 : undefined;
  if (line === undefined) {
    line = source.split('\n').length;
    column = undefined;
  }
  let message = e.message.replace(/ - \d+:\d+$/, '');
  const unclosed = /got 'EOF'/.test(message) ? unclosedBlock(source) : undefined;
  if (unclosed) {
    ({ line, column } = unclosed);
    message = `${unclosed.tag} is never closed: {{/${unclosed.tag.slice(3, -2)}}} is missing`;
  }
  const detail = `line ${line}${column ? `, column ${column}` : ''}: ${firstLine(message)}`;
  return new KubikiError('template-compile-error', detail, {
    issues: [{ field: 'source', rule: 'handlebars', message: detail }],
    extra: { line, column: column ?? null, message: firstLine(message) },
  });
}

/**
 * Handlebars for business documents, fenced in: an isolated environment that knows only the
 * document helpers and partials (knownHelpersOnly, so a template cannot call anything else),
 * escapes HTML by default and never resolves prototype properties. Compiled templates are cached
 * by source hash.
 */
export class TemplateEngine {
  private readonly hbs = Handlebars.create();
  private readonly cache = new Map<string, CompiledTemplate>();
  private readonly options: CompileOptions;

  constructor(partials: Record<string, string> = {}) {
    registerDocumentHelpers(this.hbs);
    // Handlebars' `log` writes to the server console: not something a document may do.
    this.hbs.unregisterHelper('log');
    this.options = {
      knownHelpers: { ...Object.fromEntries(DOCUMENT_HELPERS.map((h) => [h, true])), log: false },
      knownHelpersOnly: true,
      strict: false,
      noEscape: false,
    };
    for (const [name, source] of Object.entries(partials)) {
      this.check(source, `partial ${name}`);
      this.hbs.registerPartial(name, this.hbs.compile(source, this.options));
    }
  }

  /** Throws a template-compile-error (400) naming line and column, or returns nothing. */
  check(source: string, what = 'template'): void {
    try {
      this.hbs.precompile(source, this.options);
    } catch (error) {
      const e = compileError(error, source);
      if (what !== 'template') throw new KubikiError('template-compile-error', `${what}: ${e.message}`, { issues: e.issues, extra: e.extra });
      throw e;
    }
  }

  compile(source: string): CompiledTemplate {
    const hash = createHash('sha256').update(source).digest('hex');
    let compiled = this.cache.get(hash);
    if (!compiled) {
      this.check(source);
      const template = this.hbs.compile(source, this.options);
      const runtime = { allowProtoPropertiesByDefault: false, allowProtoMethodsByDefault: false };
      compiled = { hash, render: (data) => template(data, runtime) };
      if (this.cache.size > 500) this.cache.clear();
      this.cache.set(hash, compiled);
    }
    return compiled;
  }

  render(compiled: CompiledTemplate, data: unknown): string {
    try {
      return compiled.render(data);
    } catch (error) {
      if (isKubikiError(error)) throw error;
      // Helpers throw on data they cannot format (an amount that is not a decimal…): the data's fault.
      throw new KubikiError('validation-failed', `the template could not be rendered: ${(error as Error).message}`, {
        issues: [{ field: 'data', rule: 'render', message: (error as Error).message }],
      });
    }
  }

  /**
   * Renders while recording the paths the template looked up that the data lacks
   * (`record.customer.kpp`), so an admin sees what a preview could not fill in.
   */
  renderTracked(compiled: CompiledTemplate, data: Record<string, unknown>): { html: string; missingFields: string[] } {
    const missing = new Set<string>();
    const html = this.render(compiled, track(data, '', missing));
    return { html, missingFields: [...missing].sort() };
  }
}

type CompileOptions = NonNullable<Parameters<typeof Handlebars.compile>[1]>;

// Dates (and other built-ins with internal slots) break behind a Proxy; they are leaves anyway.
const isRecordLike = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && (Array.isArray(v) || Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

/** A read-only view of `data` that notes lookups of absent own properties. */
function track(data: unknown, path: string, missing: Set<string>): unknown {
  if (!isRecordLike(data)) return data;
  const cache = new Map<PropertyKey, unknown>();
  return new Proxy(data, {
    getOwnPropertyDescriptor(target, key) {
      const descriptor = Reflect.getOwnPropertyDescriptor(target, key);
      if (!descriptor && typeof key === 'string' && !Array.isArray(target)) missing.add(path ? `${path}.${key}` : key);
      return descriptor;
    },
    get(target, key, receiver) {
      // Handlebars reads `parent[name]` first and checks ownership only for values it found.
      if (typeof key === 'string' && !Array.isArray(target) && !Object.prototype.hasOwnProperty.call(target, key)) {
        missing.add(path ? `${path}.${key}` : key);
        return undefined;
      }
      const value = Reflect.get(target, key, receiver);
      if (typeof key !== 'string' || !isRecordLike(value)) return value;
      if (!cache.has(key)) cache.set(key, track(value, Array.isArray(target) ? `${path}[]` : path ? `${path}.${key}` : key, missing));
      return cache.get(key);
    },
  });
}
