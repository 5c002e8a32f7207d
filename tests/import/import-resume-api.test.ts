// An uploaded import outlives the process that ran it: stopped midway on one instance (its batches
// committed, the job handed back), it is resumed on another instance of the same database with
// POST /api/imports/{id}/resume — from the file kept in the database, with no row twice, none lost.
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';
import { csvOf, finished, innOf, shippedPlugins, upload } from './import-helpers.ts';

let first: TestKubiki;
let second: TestKubiki;
beforeAll(async () => {
  const pluginDirs = [shippedPlugins()];
  first = await startKubiki({ pluginDirs });
  second = await startKubiki({ pluginDirs, schema: first.schema, adminToken: first.adminToken });
}, 180_000);
afterAll(async () => {
  await first?.close({ keepSchema: true }).catch(() => undefined);
  await second?.close();
});

describe('an uploaded import', { timeout: 180_000 }, () => {
  it('stopped on one instance is resumed on another', async () => {
    const N = 3000;
    const rows: (string | number)[][] = [['name', 'inn']];
    for (let i = 0; i < N; i++) rows.push([`Resumed ${i}`, innOf(i, 63)]);
    const res = await upload(first, { entity: 'base.organizations', batchSize: 10 }, csvOf(rows));
    expect(res.status, JSON.stringify(res.body)).toBe(202);
    const id = res.body.id as string;
    for (;;) {
      const job = (await first.api('GET', `/api/imports/${id}`)).body;
      if (job.progress.batches >= 1 || job.status !== 'queued' && job.status !== 'running') break;
      await sleep(10);
    }
    // The instance shuts down: the batch in flight finishes, the job is handed back.
    await first.k.imports.stop();
    const left = (await second.api('GET', `/api/imports/${id}`)).body;
    expect(left.status, 'the import finished before it could be stopped').toBe('running');
    expect(left.counts.created).toBeGreaterThan(0);
    expect(left.counts.created).toBeLessThan(N);

    const resumed = await second.api('POST', `/api/imports/${id}/resume`);
    expect(resumed.status, JSON.stringify(resumed.body)).toBe(202);
    const done = await finished(second, id);
    expect(done).toMatchObject({ status: 'completed', accepted: true, resumes: 1, counts: { created: N, failed: 0 }, progress: { rowsRead: N } });
    expect(await second.count('base_organizations')).toBe(N);
    const [{ count }] = await second.k.db.table('base_organizations').countDistinct<{ count: string }[]>({ count: 'inn' });
    expect(Number(count)).toBe(N);
    expect(await second.count('kubiki_audit', { entity: 'organizations', action: 'created' })).toBe(N);
    // The file is dropped once nothing needs it.
    expect(await second.count('kubiki_import_files')).toBe(0);
    expect((await second.api('POST', `/api/imports/${id}/resume`)).body).toMatchObject({ status: 409, code: 'conflict' });
    // The background sweep (resumes left jobs, drops week-old files) finds nothing to do.
    await second.k.imports.sweep();
    expect((await second.api('GET', `/api/imports/${id}`)).body.status).toBe('completed');
  });
});
