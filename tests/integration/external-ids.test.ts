// External ids through REST: PUT …/by-external/{source}/{externalId} creates or updates
// idempotently (validated, audited, evented like any write; parallel calls make one record), lists
// filter by them, a record's ids can be read, linked and unlinked, and go with the record.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
beforeAll(async () => {
  t = await startKubiki();
});
afterAll(async () => t?.close());

const upsert = (source: string, id: string, body: unknown, headers?: Record<string, string>) =>
  t.api('PUT', `/api/base/organizations/by-external/${encodeURIComponent(source)}/${encodeURIComponent(id)}`, body, { headers });

describe('PUT /api/{plugin}/{entity}/by-external/{source}/{externalId}', () => {
  it('creates the record once, then updates it; the same body again changes nothing', async () => {
    const created = await upsert('1c', '000123', { name: 'Ромашка ООО', inn: '7707083893' });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.headers.get('location')).toBe(`/api/base/organizations/${created.body.id}`);
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.body).toMatchObject({ name: 'Ромашка ООО', version: 1 });
    const { id } = created.body;

    const same = await upsert('1c', '000123', { name: 'Ромашка ООО', inn: '7707083893' });
    expect(same.status).toBe(200);
    expect(same.body).toMatchObject({ id, version: 1 });

    const changed = await upsert('1c', '000123', { name: 'Ромашка АО' });
    expect(changed.status).toBe(200);
    expect(changed.body).toMatchObject({ id, version: 2, name: 'Ромашка АО', inn: '7707083893' });

    const audit = await t.k.db.table('kubiki_audit').where({ plugin: 'base', entity: 'organizations', record_id: id }).orderBy('id').pluck('action');
    expect(audit).toEqual(['created', 'linked', 'updated']);
    const events = await t.k.db.table('kubiki_outbox').where({ record_id: id }).orderBy('id').pluck('event');
    expect(events).toEqual(['base.organizations.created', 'base.organizations.updated']);
    expect((await t.api('GET', `/api/base/organizations/${id}/external-ids`)).body).toMatchObject({ data: [{ source: '1c', externalId: '000123' }] });
  });

  it('makes one record from 10 parallel PUTs of one id', async () => {
    const answers = await Promise.all(Array.from({ length: 10 }, () => upsert('shop', 'c-42', { name: 'Parallel LLC' })));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 200, 200, 200, 200, 200, 200, 200, 200, 201]);
    expect(new Set(answers.map((a) => a.body.id)).size).toBe(1);
    expect(answers.every((a) => a.body.version === 1)).toBe(true);
    expect(await t.count(`base_organizations`, { name: 'Parallel LLC' })).toBe(1);
    expect(await t.count('kubiki_external_ids', { source: 'shop', external_id: 'c-42' })).toBe(1);
    expect(await t.count('kubiki_audit', { record_id: answers[0].body.id, action: 'created' })).toBe(1);
  });

  it('writes nothing when the record is refused; ids are per source; If-Match guards the update', async () => {
    const before = { orgs: await t.count('base_organizations'), ids: await t.count('kubiki_external_ids') };
    const bad = await upsert('1c', 'bad', { inn: '7707083894' });
    expect(bad.status).toBe(400);
    expect(bad.body).toMatchObject({ code: 'validation-failed' });
    expect({ orgs: await t.count('base_organizations'), ids: await t.count('kubiki_external_ids') }).toEqual(before);

    const a = await upsert('1c', 'same-id', { name: 'From 1C' });
    const b = await upsert('bitrix24', 'same-id', { name: 'From Bitrix' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.body.id).not.toBe(b.body.id);

    expect((await upsert('1c', 'same-id', { name: 'x' }, { 'if-match': '"7"' })).body).toMatchObject({ status: 412, code: 'version-mismatch' });
    expect((await upsert('1c', 'same-id', { name: 'Guarded' }, { 'if-match': '"1"' })).body).toMatchObject({ version: 2, name: 'Guarded' });
    expect((await upsert('1c', 'not-yet', { name: 'x' }, { 'if-match': '"1"' })).body).toMatchObject({ status: 412 });
    expect(await t.count('kubiki_external_ids', { external_id: 'not-yet' })).toBe(0);
    // The record's id cannot be changed through it.
    expect((await upsert('1c', 'same-id', { id: b.body.id })).body).toMatchObject({ status: 400, field: 'id' });
  });

  it('refuses bad sources and ids, and callers without the entity\'s permissions', async () => {
    expect((await upsert('1C', 'x', { name: 'x' })).body).toMatchObject({ status: 404, field: 'source' });
    expect((await upsert('1c', 'x'.repeat(201), { name: 'x' })).body).toMatchObject({ status: 404, field: 'externalId' });
    expect((await t.api('PUT', '/api/base/nothings/by-external/1c/x', { name: 'x' })).body).toMatchObject({ status: 404, code: 'unknown-entity' });
    const reader = await t.userWith(['base.*.read']);
    const refused = await t.api('PUT', '/api/base/organizations/by-external/1c/perm', { name: 'x' }, { token: reader.token });
    expect(refused.body).toMatchObject({ status: 403, permission: 'base.organizations.create' });
    const creator = await t.userWith(['base.organizations.create', 'base.organizations.read']);
    expect((await t.api('PUT', '/api/base/organizations/by-external/1c/perm', { name: 'Perm' }, { token: creator.token })).status).toBe(201);
    // Updating needs update permission.
    const again = await t.api('PUT', '/api/base/organizations/by-external/1c/perm', { name: 'Perm 2' }, { token: creator.token });
    expect(again.body).toMatchObject({ status: 403, permission: 'base.organizations.update' });
  });
});

describe('lists filter by external id', () => {
  it('externalId=<source>:<id> and externalId[in]=…', async () => {
    const x = await upsert('crm-x', 'A:1', { name: 'Filter A' });
    const y = await upsert('crm-x', 'B', { name: 'Filter B' });
    await upsert('crm-y', 'B', { name: 'Filter C' });
    const one = await t.api('GET', `/api/base/organizations?externalId=${encodeURIComponent('crm-x:A:1')}`);
    expect(one.body.data.map((r: { id: string }) => r.id)).toEqual([x.body.id]);
    const two = await t.api('GET', `/api/base/organizations?externalId[in]=${encodeURIComponent('crm-x:A:1,crm-x:B')}&sort=name`);
    expect(two.body.data.map((r: { id: string }) => r.id)).toEqual([x.body.id, y.body.id]);
    const none = await t.api('GET', '/api/base/organizations?externalId=crm-x:nothing');
    expect(none.body.data).toEqual([]);
    // Combines with other filters.
    expect((await t.api('GET', `/api/base/organizations?externalId=crm-x:B&name=Filter%20A`)).body.data).toEqual([]);
    expect((await t.api('GET', '/api/base/organizations?externalId=no-colon')).body).toMatchObject({ status: 400, code: 'bad-filter', field: 'externalId' });
  });

  it('is in OpenAPI, with the by-external routes of every entity', async () => {
    const doc = (await t.api('GET', '/api/openapi.json')).body;
    expect(doc.paths['/api/base/organizations'].get.parameters.map((p: { name: string }) => p.name)).toContain('externalId');
    const put = doc.paths['/api/base/organizations/by-external/{source}/{externalId}'].put;
    expect(put.operationId).toBe('upsertByExternalIdBaseOrganization');
    expect(put.requestBody.content['application/json'].schema).toEqual({ $ref: '#/components/schemas/BaseOrganizationInput' });
    expect(put.responses[201].content['application/json'].schema).toEqual({ $ref: '#/components/schemas/BaseOrganization' });
    expect(doc.paths['/api/base/products/{id}/external-ids'].get.operationId).toBe('listExternalIdsBaseProduct');
  });
});

describe('a record\'s ids', () => {
  it('are linked, replaced, unlinked (audited), unique per source, and go with the record', async () => {
    const org = await t.api('POST', '/api/base/organizations', { name: 'Linked LLC' });
    const other = await t.api('POST', '/api/base/organizations', { name: 'Other LLC' });
    const id = org.body.id;
    const linked = await t.api('PUT', `/api/base/organizations/${id}/external-ids/1c`, { externalId: 'L-1' });
    expect(linked.status).toBe(200);
    expect(linked.body).toMatchObject({ source: '1c', externalId: 'L-1' });
    expect((await upsert('1c', 'L-1', { name: 'Linked LLC (1C)' })).body).toMatchObject({ id, version: 2 });
    const replaced = await t.api('PUT', `/api/base/organizations/${id}/external-ids/1c`, { externalId: 'L-2' });
    expect(replaced.body.externalId).toBe('L-2');
    expect((await t.api('GET', '/api/base/organizations?externalId=1c:L-1')).body.data).toEqual([]);
    const taken = await t.api('PUT', `/api/base/organizations/${other.body.id}/external-ids/1c`, { externalId: 'L-2' });
    expect(taken.body).toMatchObject({ status: 409, code: 'unique-violation' });
    expect((await t.api('DELETE', `/api/base/organizations/${id}/external-ids/1c`)).status).toBe(204);
    expect((await t.api('DELETE', `/api/base/organizations/${id}/external-ids/1c`)).status).toBe(404);
    const actions = await t.k.db.table('kubiki_audit').where({ record_id: id }).whereIn('action', ['linked', 'unlinked']).orderBy('id').pluck('action');
    expect(actions).toEqual(['linked', 'linked', 'unlinked']);

    await t.api('PUT', `/api/base/organizations/${id}/external-ids/shop`, { externalId: 'S-9' });
    expect((await t.api('DELETE', `/api/base/organizations/${id}`)).status).toBe(204);
    expect(await t.count('kubiki_external_ids', { record_id: id })).toBe(0);
    // The id is free again: it makes a new record.
    const fresh = await upsert('shop', 'S-9', { name: 'Reborn LLC' });
    expect(fresh.status).toBe(201);
    expect(fresh.body.id).not.toBe(id);
  });

  it('need read permission to see and update permission to change', async () => {
    const org = await t.api('POST', '/api/base/organizations', { name: 'Guarded links' });
    const nobody = await t.userWith([]);
    expect((await t.api('GET', `/api/base/organizations/${org.body.id}/external-ids`, undefined, { token: nobody.token })).body).toMatchObject({ status: 403 });
    const reader = await t.userWith(['base.*.read']);
    expect((await t.api('GET', `/api/base/organizations/${org.body.id}/external-ids`, undefined, { token: reader.token })).status).toBe(200);
    expect((await t.api('PUT', `/api/base/organizations/${org.body.id}/external-ids/1c`, { externalId: 'G' }, { token: reader.token })).body).toMatchObject({ status: 403, permission: 'base.organizations.update' });
    expect((await t.api('GET', '/api/base/organizations/0/external-ids')).body).toMatchObject({ status: 404, field: 'id' });
  });
});
