import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SYSTEM } from '../../core/auth/principal.ts';
import { KubikiError } from '../../core/errors.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

let t: TestKubiki;
beforeAll(async () => { t = await startKubiki(); });
afterAll(async () => t?.close());

// What plugin code reaches as ctx.repository('base.organizations').createMany (imports, batch postings).
describe('repository.createMany', () => {
  it('writes the records, one audit row and one event each, in one statement, in the order given', async () => {
    const repo = t.k.repository('base.organizations');
    const before = { audit: await t.count('kubiki_audit', { entity: 'organizations' }), outbox: await t.count('kubiki_outbox', { entity: 'organizations' }) };
    const made = await repo.createMany([{ name: 'One' }, { name: 'Two', inn: '7707083893' }, { name: 'Three', email: 'three@example.com' }], { actor: SYSTEM });
    expect(made.map((r) => r.name)).toEqual(['One', 'Two', 'Three']);
    expect(made[1]).toMatchObject({ inn: '7707083893', version: 1 });
    expect(await t.count('kubiki_audit', { entity: 'organizations' })).toBe(before.audit + 3);
    expect(await t.count('kubiki_outbox', { entity: 'organizations' })).toBe(before.outbox + 3);
    const audit = await t.k.db.table('kubiki_audit').where({ record_id: made[2].id }).first();
    expect(audit).toMatchObject({ action: 'created', actor: 'system', changes: { name: { before: null, after: 'Three' }, email: { before: null, after: 'three@example.com' } } });
    expect((await t.api('GET', `/api/base/organizations/${made[0].id}`)).body).toEqual(made[0]);
  });

  it('is all or nothing, naming the bad record by index', async () => {
    const repo = t.k.repository('base.organizations');
    const count = await t.count('base_organizations');
    const error = await repo.createMany([{ name: 'Fine' }, { name: '' }], { actor: SYSTEM }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(KubikiError);
    expect((error as KubikiError).issues[0]).toMatchObject({ field: '1.name', rule: 'minLength' });
    const dup = await repo.createMany([{ name: 'A', inn: '7736207543' }, { name: 'B', inn: '7736207543' }], { actor: SYSTEM }).catch((e: unknown) => e);
    expect((dup as KubikiError).code).toBe('unique-violation');
    expect(await t.count('base_organizations')).toBe(count);
    expect(await repo.createMany([], { actor: SYSTEM })).toEqual([]);
    expect(((await repo.createMany(Array.from({ length: 1001 }, (_, i) => ({ name: `N${i}` })), { actor: SYSTEM }).catch((e: unknown) => e)) as KubikiError).issues[0].rule).toBe('maxItems');
  });

  it('needs the create permission', async () => {
    const { id } = await t.userWith(['base.organizations.read']);
    const reader = await t.k.auth.principalForUser(id);
    expect(((await t.k.repository('base.organizations').createMany([{ name: 'X' }], { actor: reader }).catch((e: unknown) => e)) as KubikiError).code).toBe('forbidden');
  });
});
