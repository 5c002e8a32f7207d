import { compileErrors, validate } from '@readme/openapi-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

interface OpenApiDocument {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<string, Record<string, { operationId?: string; parameters?: { name: string }[] }>>;
  components: { schemas: Record<string, { properties?: Record<string, Record<string, unknown>>; required?: string[] }> };
}

let t: TestKubiki;
beforeAll(async () => {
  // beta is shipped but not enabled: its entities must not be served or documented.
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'] });
});
afterAll(() => t?.close());

async function fetchDocument(): Promise<OpenApiDocument> {
  const res = await t.api<OpenApiDocument>('GET', '/api/openapi.json');
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toMatch(/^application\/json/);
  return res.body;
}

/** Validates with a real OpenAPI 3.1 parser (on a copy: the parser resolves $refs in place). */
async function expectValidOpenApi(doc: OpenApiDocument): Promise<void> {
  const result = await validate(structuredClone(doc) as Parameters<typeof validate>[0]);
  expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true);
  expect(result.specification).toBe('OpenAPI');
  expect(result.warnings).toEqual([]);
}

describe('GET /api/openapi.json', () => {
  it('needs authentication', async () => {
    const anonymous = await t.api('GET', '/api/openapi.json', undefined, { token: null });
    expect(anonymous.status).toBe(401);
    expect(anonymous.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(anonymous.body).toMatchObject({ code: 'unauthenticated', status: 401 });
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer');
    const badToken = await t.api('GET', '/api/openapi.json', undefined, { token: 'kbk_not_a_token' });
    expect(badToken.status).toBe(401);
  });

  it('is a valid OpenAPI 3.1 document describing the enabled plugins only', async () => {
    const doc = await fetchDocument();
    await expectValidOpenApi(doc);
    expect(doc.openapi).toMatch(/^3\.1\./);
    expect(doc.info.version).toBe(t.k.coreVersion);

    for (const path of ['/api/alpha/widgets', '/api/alpha/widgets/{id}', '/api/alpha/parts', '/api/alpha/parts/{id}', '/api/base/organizations']) {
      expect(Object.keys(doc.paths)).toContain(path);
    }
    expect(Object.keys(doc.paths['/api/alpha/widgets']).sort()).toEqual(['get', 'post']);
    expect(Object.keys(doc.paths['/api/alpha/widgets/{id}'])).toEqual(expect.arrayContaining(['get', 'patch', 'delete']));
    const schemas = doc.components.schemas;
    expect(schemas.AlphaWidget).toBeDefined();
    expect(schemas.AlphaWidgetInput).toBeDefined();
    expect(schemas.AlphaPart).toBeDefined();
    // The input schema is the entity's own: declared fields, required list, no system fields.
    expect(Object.keys(schemas.AlphaWidgetInput.properties!).sort()).toEqual(
      ['active', 'code', 'color', 'inspectedAt', 'name', 'organization', 'price', 'quantity', 'releasedOn', 'tags'],
    );
    expect(schemas.AlphaWidgetInput.required!.sort()).toEqual(['code', 'name']);
    expect(schemas.AlphaWidgetInput.properties!.color).toMatchObject({ enum: ['red', 'green', 'blue'] });
    expect(schemas.AlphaWidget.properties!.id).toMatchObject({ type: 'string', format: 'uuid', readOnly: true });
    // Filters are documented as query parameters of the list operation.
    const listParams = (doc.paths['/api/alpha/widgets'].get.parameters ?? []).map((p) => p.name);
    expect(listParams).toEqual(expect.arrayContaining(['limit', 'cursor', 'sort', 'quantity', 'releasedOn']));
    expect(listParams).not.toContain('tags'); // JSON fields cannot be filtered

    // beta (available, not enabled) is absent everywhere.
    expect(Object.keys(doc.paths).filter((p) => p.startsWith('/api/beta/'))).toEqual([]);
    expect(Object.keys(schemas).filter((s) => s.startsWith('Beta'))).toEqual([]);
    expect((await t.api('GET', '/api/beta/gadgets')).status).toBe(404);
  });

  it('follows the plugin lifecycle and custom fields', async () => {
    const field = await t.api('POST', '/api/meta/entities/alpha/widgets/fields', {
      name: 'x_loyalty', schema: { type: 'string', enum: ['bronze', 'silver', 'gold'], description: 'Loyalty tier' },
    });
    expect(field.status).toBe(201);
    const withField = await fetchDocument();
    await expectValidOpenApi(withField);
    expect(withField.components.schemas.AlphaWidgetInput.properties!.x_loyalty).toEqual({ type: 'string', enum: ['bronze', 'silver', 'gold'], description: 'Loyalty tier', 'x-custom': true });
    expect(withField.components.schemas.AlphaWidget.properties!.x_loyalty).toMatchObject({ 'x-custom': true });
    expect((withField.paths['/api/alpha/widgets'].get.parameters ?? []).map((p) => p.name)).toContain('x_loyalty');

    // Enabling beta documents its entities; the document stays valid.
    expect((await t.api('POST', '/api/plugins/beta/install')).status).toBe(200);
    expect((await t.api('POST', '/api/plugins/beta/enable')).status).toBe(200);
    const withBeta = await fetchDocument();
    await expectValidOpenApi(withBeta);
    expect(Object.keys(withBeta.paths)).toEqual(expect.arrayContaining(['/api/beta/gadgets', '/api/beta/gadgets/{id}']));
    expect(withBeta.components.schemas.BetaGadgetInput.properties!.widget).toMatchObject({ type: 'string', format: 'uuid', 'x-ref': 'alpha.widgets' });
    // operationIds stay unique across plugins (the parser checks it too).
    const ids = Object.values(withBeta.paths).flatMap((item) => Object.values(item).map((op) => (typeof op === 'object' && op && 'operationId' in op ? op.operationId : undefined))).filter(Boolean);
    expect(new Set(ids).size).toBe(ids.length);

    // Disabling it removes them again.
    expect((await t.api('POST', '/api/plugins/beta/disable')).status).toBe(200);
    const withoutBeta = await fetchDocument();
    await expectValidOpenApi(withoutBeta);
    expect(Object.keys(withoutBeta.paths).filter((p) => p.startsWith('/api/beta/'))).toEqual([]);
    expect(withoutBeta.components.schemas.BetaGadget).toBeUndefined();
  });
});
