// The one catalog of Kubiki errors. Every failure a client can cause is a KubikiError with a stable
// code and an HTTP status; the HTTP layer renders it as RFC 9457 problem+json. Boot failures
// (bad manifest, dependency cycle…) are KubikiErrors too, so the CLI prints the same codes.

export interface FieldIssue {
  /** Dotted path of the offending field (`lines.0.quantity`), empty for the whole body. */
  field: string;
  /** The rule that failed: a JSON Schema keyword (`required`, `type`, `maxLength`…) or a Kubiki rule. */
  rule: string;
  message: string;
}

export type ErrorCode =
  | 'validation-failed'
  | 'malformed-json'
  | 'unsupported-media-type'
  | 'payload-too-large'
  | 'not-found'
  | 'route-not-found'
  | 'unknown-plugin'
  | 'unknown-entity'
  | 'plugin-disabled'
  | 'bad-filter'
  | 'bad-sort'
  | 'bad-query'
  | 'version-mismatch'
  | 'precondition-malformed'
  | 'referenced'
  | 'unique-violation'
  | 'reference-not-found'
  | 'unauthenticated'
  | 'forbidden'
  | 'invalid-credentials'
  | 'lifecycle-conflict'
  | 'conflict'
  | 'invalid-manifest'
  | 'invalid-entity-schema'
  | 'missing-dependency'
  | 'dependency-cycle'
  | 'unsupported-core-version'
  | 'plugin-downgrade'
  | 'migration-failed'
  | 'incompatible-schema-change'
  | 'config-invalid'
  | 'template-compile-error'
  | 'pdf-unavailable'
  | 'transition-not-allowed'
  | 'transition-condition-failed'
  | 'transition-required'
  | 'document-locked'
  | 'invalid-signature'
  | 'task-closed'
  | 'http-not-allowed'
  | 'database-in-use'
  | 'invalid-contribution'
  | 'import-mapping-invalid'
  | 'import-file-invalid'
  | 'import-in-progress'
  | 'rate-limited'
  | 'login-throttled';

const titles: Record<ErrorCode, [status: number, title: string]> = {
  'validation-failed': [400, 'The request body is not valid'],
  'malformed-json': [400, 'The request body is not valid JSON'],
  'unsupported-media-type': [415, 'The request body must be application/json'],
  'payload-too-large': [413, 'The request body is too large'],
  'not-found': [404, 'Record not found'],
  'route-not-found': [404, 'No such route'],
  'unknown-plugin': [404, 'No such plugin'],
  'unknown-entity': [404, 'No such entity'],
  'plugin-disabled': [404, 'The plugin is not enabled'],
  'bad-filter': [400, 'Invalid filter'],
  'bad-sort': [400, 'Invalid sort'],
  'bad-query': [400, 'Invalid query parameter'],
  'version-mismatch': [412, 'The record was changed by someone else'],
  'precondition-malformed': [400, 'Invalid If-Match header'],
  referenced: [409, 'The record is referenced by other records'],
  'unique-violation': [409, 'A record with this value already exists'],
  'reference-not-found': [400, 'A referenced record does not exist'],
  unauthenticated: [401, 'Authentication required'],
  forbidden: [403, 'Permission denied'],
  'invalid-credentials': [401, 'Invalid username or password'],
  'lifecycle-conflict': [409, 'The plugin cannot change state'],
  conflict: [409, 'Conflict'],
  'invalid-manifest': [500, 'Invalid plugin manifest'],
  'invalid-entity-schema': [500, 'Invalid entity schema'],
  'missing-dependency': [500, 'Missing plugin dependency'],
  'dependency-cycle': [500, 'Plugin dependency cycle'],
  'unsupported-core-version': [500, 'Plugin does not support this core version'],
  'plugin-downgrade': [500, 'Installed plugin is newer than the one shipped'],
  'migration-failed': [500, 'Plugin migration failed'],
  'incompatible-schema-change': [500, 'Entity schema change needs a hand-written migration'],
  'config-invalid': [500, 'Invalid configuration'],
  'template-compile-error': [400, 'The template does not compile'],
  'pdf-unavailable': [406, 'PDF output is not available on this server'],
  'transition-not-allowed': [409, 'The transition cannot be taken from the record\'s current state'],
  'transition-condition-failed': [409, 'The transition\'s condition is not met'],
  'transition-required': [409, 'The state field changes only through a lifecycle transition'],
  'document-locked': [409, 'The record is in a state its lifecycle does not let people edit'],
  'invalid-signature': [401, 'The webhook signature is missing or wrong'],
  'task-closed': [409, 'The task is no longer open'],
  'http-not-allowed': [403, 'The host is not on the workflow HTTP allow-list'],
  'database-in-use': [409, 'The embedded database is in use by another process'],
  'invalid-contribution': [500, 'A plugin contribution to an extension point is refused'],
  'rate-limited': [429, 'Too many requests for this token; wait as Retry-After says'],
  'login-throttled': [429, 'Too many failed logins; wait as Retry-After says'],
  'import-mapping-invalid': [400, 'The column mapping does not fit the file or the entity'],
  'import-file-invalid': [400, 'The import file cannot be read'],
  'import-in-progress': [409, 'The import job is being run by another process'],
};

// Brand checked by isKubikiError: an error made by another copy of this module (a plugin loaded
// beside a bundle, a second install in node_modules) is still recognised, where `instanceof` fails.
const BRAND = Symbol.for('kubiki.error');

/** The HTTP status a code answers with. */
export const errorStatus = (code: ErrorCode): number => titles[code][0];

/** The core's codes with their status and title (OpenAPI lists them). */
export const coreErrorCatalog = (): { code: ErrorCode; status: number; title: string }[] =>
  (Object.entries(titles) as [ErrorCode, [number, string]][]).map(([code, [status, title]]) => ({ code, status, title }));

/** A code a plugin declares in its manifest (`errors`), qualified by the plugin: `finance.period-closed`. */
export type PluginErrorCode = `${string}.${string}`;

/** A plugin-declared error as the core knows it. */
export interface DeclaredError { code: PluginErrorCode; status: number; title: string; description?: string }

export class KubikiError extends Error {
  readonly [BRAND] = true;
  readonly code: ErrorCode | PluginErrorCode;
  /** What the error was made from: a core code or a plugin's declared error (to make a similar one). */
  readonly declared: ErrorCode | DeclaredError;
  readonly status: number;
  readonly title: string;
  readonly issues: FieldIssue[];
  readonly extra: Record<string, unknown>;

  constructor(declared: ErrorCode | DeclaredError, detail: string, options: { issues?: FieldIssue[]; extra?: Record<string, unknown>; cause?: unknown } = {}) {
    super(detail, { cause: options.cause });
    this.declared = declared;
    const code = typeof declared === 'string' ? declared : declared.code;
    const [status, title] = typeof declared === 'string' ? titles[declared] : [declared.status, declared.title];
    this.name = 'KubikiError';
    this.code = code;
    this.status = status;
    this.title = title;
    this.issues = options.issues ?? [];
    this.extra = options.extra ?? {};
  }

  /** RFC 9457 problem details; `field`/`rule` repeat the first issue for clients that read one. */
  toProblem(instance?: string): Record<string, unknown> {
    const first = this.issues[0];
    return {
      type: `/problems/${this.code}`,
      title: this.title,
      status: this.status,
      detail: this.message,
      code: this.code,
      ...(instance ? { instance } : {}),
      ...(first ? { field: first.field, rule: first.rule } : {}),
      ...(this.issues.length ? { errors: this.issues } : {}),
      ...this.extra,
    };
  }
}

export function fieldError(code: ErrorCode, field: string, rule: string, message: string): KubikiError {
  return new KubikiError(code, message, { issues: [{ field, rule, message }] });
}

export const isKubikiError = (e: unknown): e is KubikiError =>
  typeof e === 'object' && e !== null && (e as { [BRAND]?: unknown })[BRAND] === true;
