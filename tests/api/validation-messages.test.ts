import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FIXTURE_PLUGINS, SHIPPED_PLUGINS, startKubiki, type ApiResponse, type TestKubiki } from '../helpers/test-kubiki.ts';

// Validation messages are for the person filling in the form: an enum lists what is allowed, a
// format is named in words (YYYY-MM-DD, an id of which entity), a pattern uses the schema's hint.

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS, FIXTURE_PLUGINS], enable: ['alpha'] });
});
afterAll(() => t?.close());

const widget = (code: string, extra: Record<string, unknown> = {}) => ({ code, name: `Widget ${code}`, ...extra });

/** The message of the one issue on `field` of a 400 validation-failed (also part of `detail`). */
async function messageFor(request: Promise<ApiResponse>, field: string, rule: string): Promise<string> {
  const res = await request;
  expect(res.status, JSON.stringify(res.body)).toBe(400);
  expect(res.body).toMatchObject({ code: 'validation-failed' });
  const issue = (res.body.errors as { field: string; rule: string; message: string }[]).find((e) => e.field === field);
  expect(issue, JSON.stringify(res.body)).toMatchObject({ field, rule });
  expect(res.body.detail).toContain(issue!.message);
  return issue!.message;
}

describe('enum', () => {
  it('lists the allowed values', async () => {
    expect(await messageFor(t.api('POST', '/api/alpha/widgets', widget('EN-1', { color: 'purple' })), 'color', 'enum'))
      .toBe('color must be one of: red, green, blue');
    expect(await messageFor(t.api('POST', '/api/base/organizations', { name: 'Roles', roles: ['customer', 'boss'] }), 'roles.1', 'enum'))
      .toBe('roles.1 must be one of: customer, supplier, partner');
  });
});

describe('format', () => {
  it('names a date as YYYY-MM-DD and a timestamp as ISO 8601', async () => {
    expect(await messageFor(t.api('POST', '/api/alpha/widgets', widget('DT-1', { releasedOn: '2026-02-30' })), 'releasedOn', 'format'))
      .toBe('releasedOn must be a date YYYY-MM-DD');
    expect(await messageFor(t.api('POST', '/api/alpha/widgets', widget('DT-2', { inspectedAt: 'yesterday' })), 'inspectedAt', 'format'))
      .toMatch(/^inspectedAt must be an ISO 8601 timestamp YYYY-MM-DDTHH:MM:SSZ/);
  });

  it('says a reference is the id of a record of the entity it refers to', async () => {
    expect(await messageFor(t.api('POST', '/api/base/organizations', { name: 'Cur', currency: 'RUB' }), 'currency', 'format'))
      .toBe('currency must be an id (UUID) of a base.currencies record');
    expect(await messageFor(t.api('POST', '/api/alpha/widgets', widget('ORG-1', { organization: 'not-a-uuid' })), 'organization', 'format'))
      .toBe('organization must be an id (UUID) of a base.organizations record');
  });

  it('names an e-mail address and a URL', async () => {
    const res = await t.api('POST', '/api/base/organizations', { name: 'Mail', email: 'nobody', website: 'example' });
    expect(await messageFor(Promise.resolve(res), 'email', 'format')).toBe('email must be an e-mail address');
    expect(await messageFor(Promise.resolve(res), 'website', 'format')).toBe('website must be an absolute URL such as https://example.com');
    expect(res.body.detail).not.toMatch(/must match/);
  });
});

describe('pattern', () => {
  it('uses the schema\'s x-format-hint instead of the regex', async () => {
    const res = t.api('POST', '/api/base/organizations', { name: 'Bank', bik: '04452522', country: 'ru' });
    const answered = await res;
    expect(await messageFor(Promise.resolve(answered), 'bik', 'pattern')).toBe('bik must be a BIK of 9 digits');
    expect(await messageFor(Promise.resolve(answered), 'country', 'pattern')).toBe('country must be a two-letter ISO 3166-1 country code in capitals, e.g. RU');
    expect(answered.body.detail).not.toContain('^');
  });

  it('falls back to the description, and to the regex only when the schema says nothing', async () => {
    const hinted = await t.api('POST', '/api/meta/entities/alpha/widgets/fields', { name: 'x_bin', schema: { type: 'string', pattern: '^[A-Z]{3}$', 'x-format-hint': 'three capital letters, e.g. MSK' } });
    expect(hinted.status, JSON.stringify(hinted.body)).toBe(201);
    const described = await t.api('POST', '/api/meta/entities/alpha/widgets/fields', { name: 'x_shelf', schema: { type: 'string', pattern: '^[0-9]{2}-[0-9]{2}$', description: 'Shelf number such as 04-12' } });
    expect(described.status, JSON.stringify(described.body)).toBe(201);
    const res = await t.api('POST', '/api/alpha/widgets', widget('bad code', { x_bin: 'msk', x_shelf: '4-12' }));
    expect(await messageFor(Promise.resolve(res), 'x_bin', 'pattern')).toBe('x_bin must be three capital letters, e.g. MSK');
    expect(await messageFor(Promise.resolve(res), 'x_shelf', 'pattern')).toBe('x_shelf is not a valid shelf number such as 04-12');
    expect(await messageFor(Promise.resolve(res), 'code', 'pattern')).toBe('code must match the pattern ^[A-Z0-9-]{2,20}$');
  });

  it('refuses an x-format-hint that is not a sentence next to a pattern', async () => {
    for (const schema of [{ type: 'string', 'x-format-hint': 'no pattern here' }, { type: 'string', pattern: '^a$', 'x-format-hint': 7 }]) {
      const res = await t.api('POST', '/api/meta/entities/alpha/widgets/fields', { name: 'x_hint', schema });
      expect(res.status, JSON.stringify(res.body)).toBe(400);
      expect(res.body).toMatchObject({ code: 'validation-failed', field: 'schema', rule: 'custom-field' });
      expect(res.body.detail).toContain('x-format-hint');
    }
  });
});

describe('optional bodies', () => {
  it('name the offending field only, not the schema\'s if/else that makes the body optional', async () => {
    // POST …/publish takes an optional body ({} or none); its schema is if/then/else underneath.
    const res = await t.api('POST', '/api/templates/base.no-such-template/publish', { nonsense: 1 });
    expect(res.status, JSON.stringify(res.body)).toBe(400);
    expect(res.body).toMatchObject({ code: 'validation-failed', field: 'nonsense', rule: 'unknown-field' });
    expect(res.body.errors).toHaveLength(1);
    expect(res.body.detail).toBe('nonsense is not a field of this entity');
    const typed = await t.api('POST', '/api/templates/base.no-such-template/publish', { version: 'two' });
    expect(typed.body.errors, JSON.stringify(typed.body)).toEqual([expect.objectContaining({ field: 'version', rule: 'type' })]);
    expect(typed.body.detail).not.toMatch(/"else"|"then"|schema/);
  });
});
