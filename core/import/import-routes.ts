import { PassThrough, type Readable } from 'node:stream';
import busboy from 'busboy';
import type { RouterContext } from '@koa/router';
import { KubikiError, fieldError } from '../errors.ts';
import { createAjv, toFieldIssues } from '../entities/ajv.ts';
import type { JsonSchema } from '../entities/entity-definition.ts';
import { toCsv } from '../csv/csv-writer.ts';
import { csvOptionsFrom } from '../csv/csv-response.ts';
import { requireGrant, type Principal } from '../auth/principal.ts';
import { defineRoute, type RouteSpec } from '../http/route-contract.ts';
import { stateOf } from '../http/request-context.ts';
import type { Kubiki } from '../kernel.ts';
import { mappingSchema, parseMapping, type MappingDefinition } from './import-mapping.ts';
import { formatOfName, type ImportFormat } from './import-sources.ts';
import { DEFAULT_BATCH, jobView, type ErrorRow, type JobView } from './import-service.ts';
import { exportColumns, exportFormat, firstPage, writeExport } from './export.ts';

// The import and export API, declared as data: POST /api/imports takes the file as the raw body
// (text/csv, an XLSX) or as multipart/form-data, answers 202 with the job, and the job's progress,
// counts and bad rows are read from GET /api/imports/{id}. Exports stream any entity as CSV/XLSX.

const ERROR_COLUMNS = ['line', 'column', 'field', 'rule', 'message', 'value'] as const;
export const errorsCsvHeader = (): string => toCsv({ columns: ERROR_COLUMNS, rows: [] }, { bom: true });
export const errorsCsvRows = (rows: ErrorRow[]): string => toCsv({ columns: ERROR_COLUMNS, rows: rows as unknown as Record<string, unknown>[] }, { bom: false }).slice(toCsv({ columns: ERROR_COLUMNS, rows: [] }, { bom: false }).length);

const errorRow: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['line', 'column', 'field', 'rule', 'message'],
  properties: {
    line: { type: 'integer', description: 'The line of the file (CSV, where the record starts) or the row number (XLSX)' },
    column: { type: 'string', description: 'The column header the value came from (empty: no column holds the field)' },
    field: { type: 'string' }, rule: { type: 'string' }, message: { type: 'string' }, value: { type: 'string' },
  },
};

const count = { type: 'integer', minimum: 0 };
export const jobSchema: JsonSchema = {
  type: 'object', additionalProperties: false,
  required: ['id', 'target', 'status', 'dryRun', 'key', 'mapping', 'file', 'progress', 'counts', 'accepted', 'resumes', 'actor', 'createdAt'],
  properties: {
    id: { type: 'string', format: 'uuid' },
    target: { type: 'string', description: 'The entity (base.organizations) or plugin import target' },
    status: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] },
    dryRun: { type: 'boolean' },
    key: { type: ['string', 'null'], description: 'The upsert key' },
    mapping: { type: ['string', 'null'], description: 'The saved mapping used, if any' },
    file: { type: 'object', additionalProperties: false, required: ['name', 'format', 'size', 'sha256'], properties: { name: { type: 'string' }, format: { enum: ['csv', 'xlsx'] }, size: count, sha256: { type: 'string' } } },
    progress: {
      type: 'object', additionalProperties: false, required: ['rowsRead', 'bytesRead', 'totalBytes', 'percent', 'checkpointLine', 'batches'],
      properties: { rowsRead: count, bytesRead: count, totalBytes: count, percent: { type: 'integer', minimum: 0, maximum: 100 }, checkpointLine: count, batches: count },
    },
    counts: {
      type: 'object', additionalProperties: false, required: ['created', 'updated', 'unchanged', 'failed'],
      description: 'Rows created, updated, found unchanged and refused (in a dry run: what would be)',
      properties: { created: count, updated: count, unchanged: count, failed: count },
    },
    accepted: { type: ['boolean', 'null'], description: 'Completed with every row accepted; null while the job is not finished' },
    resumes: { ...count, description: 'How often the job was resumed after a crash or a stop' },
    error: { type: 'object', required: ['code', 'message'], properties: { code: { type: 'string' }, message: { type: 'string' }, issues: { type: 'array' } } },
    errors: { type: 'array', items: errorRow, description: 'The first bad rows (GET …/errors has them all)' },
    actor: { type: 'string' },
    sourceJob: { type: 'string', format: 'uuid', description: 'The dry run this job runs for real' },
    createdAt: { type: 'string', format: 'date-time' },
    startedAt: { type: 'string', format: 'date-time' },
    finishedAt: { type: 'string', format: 'date-time' },
  },
};

const mappingName: JsonSchema = { type: 'string', pattern: '^[a-z0-9][a-z0-9._-]{0,99}$', 'x-format-hint': 'lower-case letters, digits, dots, dashes and underscores (at most 100)', description: 'A saved mapping\'s name' };
const mappingView: JsonSchema = {
  type: 'object', additionalProperties: false, required: ['name', 'version', 'definition', 'updatedAt'],
  properties: { name: { type: 'string' }, version: { type: 'integer' }, definition: mappingSchema, updatedAt: { type: 'string', format: 'date-time' } },
};
const jobParams: JsonSchema = { type: 'object', required: ['id'], additionalProperties: false, properties: { id: { type: 'string', format: 'uuid', description: 'An import job id' } } };
/** A route that takes no query parameters: any one given is refused, naming it. */
const noQuery: JsonSchema = { type: 'object', additionalProperties: false, properties: {} };
const nameParams: JsonSchema = { type: 'object', required: ['name'], additionalProperties: false, properties: { name: mappingName } };

interface UploadQuery {
  entity?: string; mapping?: string; key?: string; dryRun?: boolean; format?: ImportFormat; fileName?: string;
  delimiter?: string; encoding?: string; sheet?: string; batchSize?: number; wait?: boolean; again?: boolean;
}

const uploadQuery: JsonSchema = {
  type: 'object', additionalProperties: false,
  properties: {
    entity: { type: 'string', pattern: '^[a-z][a-z0-9]*\\.[a-z][a-zA-Z0-9]*$', 'x-format-hint': 'an entity or import target as <plugin>.<name>, e.g. base.organizations', description: 'Where the rows go: an entity (base.organizations) or a plugin import target (required, here or as a form field)' },
    mapping: { type: 'string', minLength: 1, maxLength: 100000, description: 'A saved mapping\'s name, or a mapping as JSON' },
    key: { type: 'string', minLength: 1, maxLength: 100, description: 'Upsert key: a field (inn, sku, email), $externalId or id' },
    dryRun: { type: 'boolean', description: 'Check every row on the import\'s own path and write nothing' },
    format: { type: 'string', enum: ['csv', 'xlsx'], description: 'Default: from the file name, else from its bytes' },
    fileName: { type: 'string', minLength: 1, maxLength: 300, description: 'The file\'s name (a raw body has none)' },
    delimiter: { type: 'string', enum: [',', ';', '\t', '|', 'tab', 'semicolon'], description: 'CSV delimiter (default: detected)' },
    encoding: { type: 'string', enum: ['utf-8', 'utf8', 'windows-1251', 'cp1251'], description: 'CSV encoding (default: detected)' },
    sheet: { type: 'string', minLength: 1, maxLength: 100, description: 'XLSX worksheet (default: the first)' },
    batchSize: { type: 'integer', minimum: 1, maximum: 1000, description: `Rows per transaction and checkpoint (default ${DEFAULT_BATCH})` },
    wait: { type: 'boolean', description: 'Answer when the job has finished (200) instead of at once (202)' },
    again: { type: 'boolean', description: 'Import a file already imported completely without a key (its rows are created again)' },
  },
};

let formAjv: ReturnType<typeof createAjv> | undefined;
/** Multipart form fields are checked against the same schema as the query. */
function checkFormFields(fields: Record<string, string>): UploadQuery {
  formAjv ??= createAjv({ coerceTypes: true });
  const validate = formAjv.compile(uploadQuery);
  const data: Record<string, unknown> = { ...fields };
  if (!validate(data)) {
    const issues = toFieldIssues(validate.errors).map((i) => (i.rule === 'unknown-field' ? { ...i, message: `unknown form field ${i.field}` } : i));
    throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues });
  }
  return data as UploadQuery;
}

/** busboy's refusals of a body that is not well-formed multipart are the client's error. */
function malformedForm(error: unknown): KubikiError {
  return fieldError('validation-failed', 'file', 'multipart', `the body is not well-formed multipart/form-data: ${(error as Error).message}`);
}

/** The file and options of an upload: a raw body, or multipart/form-data (fields plus one file part). */
async function receiveUpload(k: Kubiki, http: RouterContext, query: UploadQuery, actor: Principal, precheck: (q: UploadQuery) => void): Promise<{ options: UploadQuery; file: { id: string; name: string; format: ImportFormat; size: number; sha256: string } }> {
  const length = http.request.length;
  if (length && length > k.imports.maxUploadBytes) {
    http.set('Connection', 'close');
    throw new KubikiError('payload-too-large', `the file is larger than ${k.imports.maxUploadBytes} bytes (KUBIKI_IMPORT_MAX_BYTES)`, { extra: { limit: k.imports.maxUploadBytes } });
  }
  const type = http.request.type;
  if (type === 'application/json' || type.endsWith('+json')) {
    http.set('Connection', 'close');
    throw new KubikiError('unsupported-media-type', 'send the file itself as the body (text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet, application/octet-stream) or as multipart/form-data with a part named file');
  }
  if (type !== 'multipart/form-data') {
    precheck(query);
    try {
      const format = query.format ?? (query.fileName ? formatOfName(query.fileName) : undefined) ?? (type.includes('spreadsheetml') ? 'xlsx' : type === 'text/csv' || type === 'text/plain' ? 'csv' : undefined);
      const file = await k.imports.storeUpload(http.req, query.fileName ?? `upload.${format ?? 'csv'}`, actor, format);
      return { options: query, file };
    } catch (error) {
      http.set('Connection', 'close');
      throw error;
    }
  }
  const fields: Record<string, string> = {};
  let stored: Promise<{ id: string; name: string; format: ImportFormat; size: number; sha256: string }> | undefined;
  let parser: ReturnType<typeof busboy>;
  try {
    parser = busboy({ headers: http.req.headers, limits: { files: 1, fields: 30, fieldSize: 1024 * 1024, fileSize: k.imports.maxUploadBytes + 1 } });
  } catch (error) { // a multipart Content-Type without a boundary, or one busboy cannot read
    http.set('Connection', 'close');
    throw malformedForm(error);
  }
  const done = new Promise<void>((resolve, reject) => {
    parser.on('field', (name, value) => { fields[name] = value; });
    parser.on('file', (_name, stream: Readable, info) => {
      // When the form breaks off, busboy destroys this part's stream with the error the parser also
      // reports (400 below); storeUpload listens to the stream's errors from its first line.
      const name = info.filename || 'upload';
      const format = query.format ?? (fields.format as ImportFormat | undefined) ?? formatOfName(name) ?? (info.mimeType.includes('spreadsheetml') ? 'xlsx' : undefined);
      stored = k.imports.storeUpload(stream, name, actor, format);
      stored.catch(() => stream.resume());
    });
    parser.on('error', (error) => reject(malformedForm(error)));
    parser.on('close', () => resolve());
  });
  http.req.pipe(parser);
  let file: Awaited<typeof stored>;
  try {
    await done;
    file = await stored;
  } catch (error) {
    http.set('Connection', 'close');
    // A form that broke after its file part began leaves nothing stored behind.
    const partial = await stored?.catch(() => undefined);
    if (partial) await k.imports.deleteFile(partial.id);
    throw error;
  }
  if (!file) {
    http.set('Connection', 'close');
    throw fieldError('validation-failed', 'file', 'required', 'the form has no file part: send the file as a part named file');
  }
  try {
    const options = { ...query, ...checkFormFields(fields) };
    precheck(options);
    return { options, file };
  } catch (error) {
    http.set('Connection', 'close');
    await k.imports.deleteFile(file.id);
    throw error;
  }
}

/** The mapping an upload names (a saved one, or inline JSON), with the request's file options on top. */
async function mappingOf(k: Kubiki, options: UploadQuery): Promise<{ definition: MappingDefinition; name?: string }> {
  const target = options.entity!;
  let definition: MappingDefinition;
  let name: string | undefined;
  if (options.mapping === undefined) {
    definition = { target };
  } else if (options.mapping.trim().startsWith('{')) {
    let raw: unknown;
    try {
      raw = JSON.parse(options.mapping);
    } catch (error) {
      throw fieldError('validation-failed', 'mapping', 'json', `mapping is not valid JSON: ${(error as Error).message}`);
    }
    definition = parseMapping(typeof raw === 'object' && raw !== null && !('target' in raw) ? { ...raw, target } : raw);
  } else {
    definition = (await k.imports.getMapping(options.mapping)).definition;
    name = options.mapping;
  }
  if (definition.target !== target) throw new KubikiError('import-mapping-invalid', `the mapping is for ${definition.target}, not ${target}`, { issues: [{ field: 'mapping', rule: 'target', message: `the mapping is for ${definition.target}` }] });
  const fileOptions = Object.fromEntries(Object.entries({ delimiter: options.delimiter, encoding: options.encoding, sheet: options.sheet }).filter(([, v]) => v !== undefined));
  if (Object.keys(fileOptions).length) definition = parseMapping({ ...definition, options: { ...definition.options, ...fileOptions } });
  return { definition, ...(name ? { name } : {}) };
}

export function importRoutes(k: Kubiki): RouteSpec<unknown, unknown, unknown>[] {
  const routes = [
    defineRoute({
      method: 'get', path: '/api/imports/mappings', operationId: 'listImportMappings', permission: 'signed-in',
      summary: 'Saved import mappings',
      schemas: { query: noQuery, responses: { 200: { type: 'object', required: ['data'], additionalProperties: false, properties: { data: { type: 'array', items: { type: 'object', additionalProperties: false, required: ['name', 'target', 'version', 'updatedAt'], properties: { name: { type: 'string' }, target: { type: 'string' }, version: { type: 'integer' }, updatedAt: { type: 'string', format: 'date-time' } } } } } } } },
      async handler(_input, http) { http.body = { data: await k.imports.listMappings() }; },
    }),
    defineRoute<{ name: string }>({
      method: 'get', path: '/api/imports/mappings/:name', operationId: 'getImportMapping', permission: 'signed-in',
      summary: 'A saved import mapping', errors: ['not-found'],
      schemas: { params: nameParams, query: noQuery, responses: { 200: mappingView } },
      async handler({ params }, http) { http.body = await k.imports.getMapping(params.name); },
    }),
    defineRoute<{ name: string }, unknown, MappingDefinition>({
      method: 'put', path: '/api/imports/mappings/:name', operationId: 'saveImportMapping', permission: 'core.imports.manage',
      summary: 'Save an import mapping (column → field, constants, transforms, key) under a name',
      description: 'Columns map to fields by header text: `"ИНН": "inn"` or `{"field": "inn", "transform": ["digits"]}`; a reference field looks its value up by the referenced entity\'s natural key (`{"field": "currency", "ref": "code"}`), `$externalId` or `id`. Transforms: trim, upper, lower, digits, collapseSpaces, unquote, decimalComma, {date: "DD.MM.YYYY"}, {map: {...}}, {split: ";"}, {replace: [from, to]}. See docs/import.md.',
      errors: ['unknown-entity', 'unknown-plugin', 'plugin-disabled'],
      schemas: { params: nameParams, query: noQuery, body: mappingSchema, responses: { 200: mappingView, 201: mappingView } },
      async handler({ params, body, principal }, http) {
        const { created, ...saved } = await k.imports.saveMapping(params.name, body, principal);
        http.status = created ? 201 : 200;
        http.body = saved;
      },
    }),
    defineRoute<{ name: string }>({
      method: 'delete', path: '/api/imports/mappings/:name', operationId: 'deleteImportMapping', permission: 'core.imports.manage',
      summary: 'Delete a saved import mapping', errors: ['not-found'],
      schemas: { params: nameParams, query: noQuery, responses: { 204: { description: 'Deleted' } } },
      async handler({ params }, http) {
        await k.imports.deleteMapping(params.name);
        http.status = 204;
      },
    }),
    defineRoute<unknown, UploadQuery>({
      method: 'post', path: '/api/imports', operationId: 'startImport', permission: 'signed-in',
      summary: 'Import a CSV or XLSX file into an entity or plugin import target (202 with the job)',
      description: 'The file is the raw body (Content-Type text/csv, application/vnd.openxmlformats-officedocument.spreadsheetml.sheet or application/octet-stream; options as query parameters) or multipart/form-data (a part named `file`, options as form fields). The importer acts as the caller: the target\'s create grant (and update, with a key) and read on referenced entities are checked before the file is read. The mapping is checked against the file\'s header at once (400 import-mapping-invalid naming the column); rows are then imported in checkpointed batches in the background — follow GET /api/imports/{id}. `dryRun=true` runs the same path and writes nothing; POST /api/imports/{id}/run runs a dry run\'s file for real.',
      errors: ['forbidden', 'unknown-entity', 'unknown-plugin', 'plugin-disabled', 'import-mapping-invalid', 'import-file-invalid', 'payload-too-large', 'unsupported-media-type', 'conflict', 'not-found'],
      schemas: {
        query: uploadQuery,
        responses: { 200: { description: 'The finished job (wait=true)', schema: jobSchema }, 202: { description: 'The queued job', headers: { Location: '/api/imports/{id}' }, schema: jobSchema } },
      },
      async handler({ query, principal }, http) {
        const check = (options: UploadQuery) => {
          if (!options.entity) throw fieldError('validation-failed', 'entity', 'required', 'entity is required: where the rows go, e.g. base.organizations');
          k.imports.checkPermissions(k.imports.resolveTarget(options.entity), principal, options.key);
        };
        const { options, file } = await receiveUpload(k, http, query, principal, check);
        let job;
        try {
          const { definition, name } = await mappingOf(k, options);
          await k.imports.precheck({ target: options.entity!, mapping: definition, key: options.key, actor: principal, format: file.format }, () => k.imports.fileStream(file.id));
          const key = options.key ?? definition.key;
          if (!options.dryRun && !key && !options.again) {
            const done = await k.imports.findCompleted({ target: options.entity!, sha256: file.sha256, mapping: definition });
            if (done) throw new KubikiError('conflict', `this file was imported into ${options.entity} completely by job ${done.id}; importing it again would create its rows again — give key=<field> to update them instead, or again=true`, { extra: { job: done.id } });
          }
          job = await k.imports.createJob({
            target: options.entity!, mapping: definition, mappingName: name, dryRun: options.dryRun === true, key, batchSize: options.batchSize,
            actor: principal, requestId: stateOf(http).requestId, file,
          });
        } catch (error) {
          await k.imports.deleteFile(file.id);
          throw error;
        }
        http.set('Location', `/api/imports/${job.id}`);
        if (options.wait) {
          await k.imports.kick(job.id);
          http.status = 200;
          http.body = await k.imports.view(job.id, principal);
          return;
        }
        void k.imports.kick(job.id);
        http.status = 202;
        http.body = jobView(job);
      },
    }),
    defineRoute<unknown, { target?: string; status?: JobView['status']; limit?: number; before?: string }>({
      method: 'get', path: '/api/imports', operationId: 'listImports', permission: 'signed-in',
      summary: 'Import jobs, newest first: the caller\'s own (everyone\'s with core.imports.read)',
      schemas: {
        query: {
          type: 'object', additionalProperties: false,
          properties: {
            target: { type: 'string', maxLength: 200 }, status: { type: 'string', enum: ['queued', 'running', 'completed', 'failed', 'cancelled'] },
            limit: { type: 'integer', minimum: 1, maximum: 200, default: 50 }, before: { type: 'string', format: 'uuid', description: 'The previous page\'s next' },
          },
        },
        responses: { 200: { type: 'object', additionalProperties: false, required: ['data', 'next'], properties: { data: { type: 'array', items: jobSchema }, next: { type: ['string', 'null'] } } } },
      },
      async handler({ query, principal }, http) { http.body = await k.imports.list(principal, query); },
    }),
    defineRoute<{ id: string }, { errors?: number }>({
      method: 'get', path: '/api/imports/:id', operationId: 'getImport', permission: 'signed-in',
      summary: 'An import job: status, progress, counts and its first bad rows (line, column, reason)', errors: ['not-found'],
      schemas: {
        params: jobParams,
        query: { type: 'object', additionalProperties: false, properties: { errors: { type: 'integer', minimum: 0, maximum: 1000, default: 20, description: 'How many bad rows to include' } } },
        responses: { 200: jobSchema },
      },
      async handler({ params, query, principal }, http) { http.body = await k.imports.view(params.id, principal, { errors: query.errors }); },
    }),
    defineRoute<{ id: string }, { limit?: number; after?: string }>({
      method: 'get', path: '/api/imports/:id/errors', operationId: 'listImportErrors', permission: 'signed-in',
      summary: 'The bad rows of an import job, in file order (a page)', errors: ['not-found'],
      schemas: {
        params: jobParams,
        query: { type: 'object', additionalProperties: false, properties: { limit: { type: 'integer', minimum: 1, maximum: 1000, default: 200 }, after: { type: 'string', pattern: '^[0-9]{1,10}:[0-9]{1,18}$', 'x-format-hint': 'the previous page\'s next', description: 'The previous page\'s next' } } },
        responses: { 200: { type: 'object', additionalProperties: false, required: ['data', 'next'], properties: { data: { type: 'array', items: errorRow }, next: { type: ['string', 'null'] } } } },
      },
      async handler({ params, query, principal }, http) {
        k.imports.checkVisible(await k.imports.row(params.id), principal);
        const limit = query.limit ?? 200;
        const after = query.after ? { line: Number(query.after.split(':')[0]), id: Number(query.after.split(':')[1]) } : undefined;
        const rows = await k.imports.errorRowsWithIds(params.id, { limit: limit + 1, after });
        const more = rows.length > limit;
        if (more) rows.pop();
        const last = rows[rows.length - 1];
        http.body = { data: rows.map(({ id: _id, ...r }) => r), next: more ? `${last.line}:${last.id}` : null };
      },
    }),
    defineRoute<{ id: string }, { delimiter?: string; bom?: boolean }>({
      method: 'get', path: '/api/imports/:id/errors.csv', operationId: 'downloadImportErrors', permission: 'signed-in',
      summary: 'Every bad row of an import job as CSV: line, column, field, rule, message, value', errors: ['not-found'],
      schemas: {
        params: jobParams,
        query: { type: 'object', additionalProperties: false, properties: { delimiter: { type: 'string', enum: [',', ';', 'comma', 'semicolon'] }, bom: { type: 'boolean' } } },
        responses: { 200: { description: 'RFC 4180 CSV with a header line', contentType: 'text/csv' } },
      },
      async handler({ params, principal }, http) {
        const row = await k.imports.row(params.id);
        k.imports.checkVisible(row, principal);
        const csv = csvOptionsFrom(http.query as Record<string, string>);
        const out = new PassThrough();
        http.type = 'text/csv; charset=utf-8';
        http.set('Content-Disposition', `attachment; filename="import-${row.id}-errors.csv"`);
        http.body = out;
        void (async () => {
          const header = toCsv({ columns: ERROR_COLUMNS, rows: [] }, { ...csv, bom: false });
          out.write((csv.bom ? '\uFEFF' : '') + header);
          for await (const page of k.imports.allErrors(row.id)) out.write(toCsv({ columns: ERROR_COLUMNS, rows: page as unknown as Record<string, unknown>[] }, { ...csv, bom: false }).slice(header.length));
          out.end();
        })().catch((error) => out.destroy(error as Error));
      },
    }),
    defineRoute<{ id: string }>({
      method: 'post', path: '/api/imports/:id/run', operationId: 'runImport', permission: 'signed-in',
      summary: 'Run a dry run\'s file for real (the same file, mapping and key): 202 with the new job', errors: ['not-found', 'conflict', 'forbidden'],
      schemas: { params: jobParams, query: noQuery, responses: { 202: { description: 'The queued job', headers: { Location: '/api/imports/{id}' }, schema: jobSchema } } },
      async handler({ params, principal }, http) {
        const dry = await k.imports.row(params.id);
        k.imports.checkVisible(dry, principal);
        if (!dry.dry_run || dry.status !== 'completed' || !dry.file_id) {
          throw new KubikiError('conflict', `import job ${dry.id} is not a completed dry run whose file is kept (dryRun ${dry.dry_run}, ${dry.status})`, { issues: [{ field: 'id', rule: 'dry-run', message: 'run a completed dry run' }] });
        }
        k.imports.checkPermissions(k.imports.resolveTarget(dry.target), principal, dry.key ?? undefined);
        const job = await k.imports.createJob({
          target: dry.target, mapping: dry.mapping, mappingName: dry.mapping_name ?? undefined, dryRun: false, key: dry.key ?? undefined, batchSize: dry.batch_size,
          actor: principal, requestId: stateOf(http).requestId, sourceJob: dry.id,
          file: { id: dry.file_id, name: dry.file_name, format: dry.format, size: Number(dry.file_size), sha256: dry.file_sha256 },
        });
        void k.imports.kick(job.id);
        http.set('Location', `/api/imports/${job.id}`);
        http.status = 202;
        http.body = jobView(job);
      },
    }),
    defineRoute<{ id: string }>({
      method: 'post', path: '/api/imports/:id/resume', operationId: 'resumeImport', permission: 'signed-in',
      summary: 'Resume an uploaded job a stopped or crashed process left (from its checkpoint)', errors: ['not-found', 'conflict', 'import-in-progress'],
      schemas: { params: jobParams, query: noQuery, responses: { 202: jobSchema } },
      async handler({ params, principal }, http) {
        const row = await k.imports.row(params.id);
        k.imports.checkVisible(row, principal);
        if (!row.file_id || (row.status !== 'queued' && row.status !== 'running')) {
          throw new KubikiError('conflict', `import job ${row.id} is ${row.status}${row.file_id ? '' : ' and its file is not kept (a CLI job: run the same kubiki import again)'}`);
        }
        await k.imports.claim(row.id);
        void k.imports.kick(row.id);
        http.status = 202;
        http.body = jobView(await k.imports.row(row.id));
      },
    }),
    defineRoute<{ id: string }>({
      method: 'post', path: '/api/imports/:id/cancel', operationId: 'cancelImport', permission: 'signed-in',
      summary: 'Cancel a queued or running import: the batch in flight is rolled back, committed batches stay', errors: ['not-found', 'conflict'],
      schemas: { params: jobParams, query: noQuery, responses: { 200: jobSchema } },
      async handler({ params, principal }, http) { http.body = await k.imports.cancel(params.id, principal); },
    }),
    defineRoute<{ plugin: string; entity: string }, Record<string, string | boolean | undefined>>({
      method: 'get', path: '/api/exports/:plugin/:entity', operationId: 'exportEntity', permission: 'signed-in',
      summary: 'Export an entity\'s records with their custom fields as CSV or XLSX',
      description: 'format=csv (RFC 4180, UTF-8 BOM unless bom=false, delimiter=; for Russian Excel) or xlsx; fields=a,b limits the columns (id first); any other parameter is a list filter (status=active, createdAt[gte]=…, q=…). Columns are field names, so the file imports back (POST /api/imports). Needs the entity\'s read permission (own-records grants apply). The answer is text/csv or application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.',
      errors: ['forbidden', 'unknown-entity', 'unknown-plugin', 'plugin-disabled', 'bad-filter'],
      schemas: {
        params: { type: 'object', required: ['plugin', 'entity'], additionalProperties: false, properties: { plugin: { type: 'string', pattern: '^[a-z][a-z0-9]*$' }, entity: { type: 'string', pattern: '^[a-z][a-zA-Z0-9]*$' } } },
        query: {
          type: 'object',
          properties: {
            format: { type: 'string', enum: ['csv', 'xlsx'], default: 'csv' }, fields: { type: 'string', maxLength: 5000, description: 'Comma-separated fields' },
            delimiter: { type: 'string', enum: [',', ';', 'comma', 'semicolon'] }, bom: { type: 'string', enum: ['true', 'false'] },
          },
          additionalProperties: { type: 'string', description: 'A list filter, as GET /api/{plugin}/{entity} takes it' },
        },
        responses: { 200: { description: 'The records as text/csv or XLSX (Content-Disposition: attachment)', contentType: 'text/csv' } },
      },
      async handler({ params, query, principal }, http) {
        const repo = k.httpRepository(params.plugin, params.entity);
        requireGrant(principal, `${repo.entity.qualifiedName}.read`, true);
        const { format: rawFormat, fields: rawFields, delimiter, bom, ...filters } = query;
        const format = exportFormat(rawFormat);
        const fields = typeof rawFields === 'string' ? rawFields.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
        exportColumns(repo.entity, fields);
        const options = {
          format, fields, filters: filters as Record<string, string>,
          csv: csvOptionsFrom({ ...(delimiter !== undefined ? { delimiter: String(delimiter) } : {}), ...(bom !== undefined ? { bom: String(bom) } : {}) }),
        };
        const first = await firstPage(repo, principal, options);
        const out = new PassThrough();
        const day = new Date().toISOString().slice(0, 10);
        http.type = format === 'csv' ? 'text/csv; charset=utf-8' : 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet';
        http.set('Content-Disposition', `attachment; filename="${params.plugin}-${params.entity}-${day}.${format}"`);
        http.body = out;
        void writeExport(repo, principal, options, out, first).catch((error) => out.destroy(error as Error));
      },
    }),
  ];
  return routes as RouteSpec<unknown, unknown, unknown>[];
}
