import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { completeInn } from '../../core/entities/russian-tax-ids.ts';
import { CliSandbox } from '../helpers/cli-sandbox.ts';
import { spawnKubiki, type KubikiProcess } from '../helpers/kubiki-process.ts';

// The workflow engine across OS processes (`kubiki start` children on one PostgreSQL database, in
// a fresh schema): a worker SIGKILLed mid-run and another taking its steps over, two workers
// draining one backlog, and a cron schedule fired by two processes. PGlite is a single process,
// so without DATABASE_URL these are skipped.
//
// Which process completed a step is told apart by the processes' application_name (PGAPPNAME):
// triggers the test adds to kubiki_wf_steps in its own schema log, for every step row turning (or
// inserted as) `done`, the application_name of the session that did it.

const onPostgres = Boolean(process.env.DATABASE_URL);
const describePg = onPostgres ? describe : describe.skip;

const WORKFLOW = 'workflows.process-onboarding';
const ONBOARDING = `id: ${WORKFLOW}
title: Onboarding (process tests)
kind: automation
trigger: { type: event, entity: base.organizations, on: [created] }
start: check
steps:
  check: { type: condition, if: "has(record.inn) && record.inn != ''", then: mark, else: done }
  mark: { type: updateRecord, entity: base.organizations, id: record.id, fields: { notes: "'onboarded'" }, next: contact }
  contact: { type: createRecord, entity: base.people, fields: { firstName: "'Contact'", organization: record.id }, next: done }
  done: { type: end }
`;
const ONBOARDING_STEPS = ['check', 'contact', 'done', 'mark'];

const TICK = 'workflows.process-tick';
const TICK_SOURCE = `id: ${TICK}
title: Every second (process tests)
kind: automation
trigger: { type: schedule, cron: '* * * * * *' }
start: done
steps:
  done: { type: end }
`;

let sandbox: CliSandbox;
let schema: string;
const adminToken = `kbk_test_${randomBytes(16).toString('hex')}`;
const processes: KubikiProcess[] = [];
let pool: pg.Pool;
let loader: KubikiProcess;
let nextInn = 0;

const log = (message: string) => console.log(`[engine-processes] ${message}`);

function start(name: string, env: Record<string, string>): Promise<KubikiProcess> {
  return spawnKubiki(sandbox, name, adminToken, { PGAPPNAME: `${name}:${schema}`, ...env }).then((p) => { processes.push(p); return p; });
}

async function q<T extends Record<string, any> = Record<string, any>>(sql: string, params: unknown[] = []): Promise<T[]> {
  return (await pool.query(sql, params)).rows as T[];
}

async function publish(source: string): Promise<void> {
  const id = /^id: (\S+)$/m.exec(source)![1];
  const saved = await loader.api('PUT', `/api/workflows/${id}`, { source });
  expect(saved.status, JSON.stringify(saved.body)).toBeLessThan(300);
  const published = await loader.api('POST', `/api/workflows/${id}/publish`, { version: saved.body.version });
  expect(published.status, JSON.stringify(published.body)).toBe(200);
}

/** Creates `n` organizations through `via`, `inFlight` requests at a time; returns their ids in order. */
async function createOrganizations(via: KubikiProcess, n: number, inFlight = 10): Promise<string[]> {
  const ids: string[] = new Array(n);
  let next = 0;
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (next < n) {
      const i = next++;
      const inn = completeInn(String(1_000_000_000 + nextInn++));
      const res = await via.api('POST', '/api/base/organizations', { name: `Org ${inn}`, inn });
      if (res.status !== 201) throw new Error(`POST /api/base/organizations → ${res.status} ${JSON.stringify(res.body)}`);
      ids[i] = res.body.id;
    }
  }));
  return ids;
}

interface Progress { instances: number; completed: number; failed: number }

async function progress(orgIds: string[]): Promise<Progress> {
  const [row] = await q(
    `select count(*)::int as instances, count(*) filter (where status = 'completed')::int as completed,
            count(*) filter (where status in ('failed', 'cancelled'))::int as failed
       from kubiki_wf_instances where workflow_id = $1 and record_id = any($2)`, [WORKFLOW, orgIds]);
  return row as Progress;
}

/** Polls until every organization's instance completed; fails early on a failed instance or a dead process. */
async function waitCompleted(orgIds: string[], watched: KubikiProcess[], timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const p = await progress(orgIds);
    if (p.completed === orgIds.length) return;
    if (p.failed > 0) {
      const [first] = await q('select error, failed_step from kubiki_wf_instances where workflow_id = $1 and record_id = any($2) and status <> \'completed\' and error is not null limit 1', [WORKFLOW, orgIds]);
      throw new Error(`${p.failed} instances failed: ${JSON.stringify(first)}`);
    }
    for (const w of watched) if (!w.alive()) throw new Error(`${w.name} exited (${await w.exited}):\n${w.output()}`);
    if (Date.now() > until) throw new Error(`after ${timeoutMs} ms: ${JSON.stringify(p)} of ${orgIds.length}\n${watched.map((w) => `${w.name}: ${w.output()}`).join('\n')}`);
    await sleep(100);
  }
}

/** What became of the organizations: instances, people per organization, notes. */
async function outcome(orgIds: string[]) {
  const [inst] = await q(
    `select count(*)::int as instances, count(distinct record_id)::int as records,
            count(*) filter (where status = 'completed')::int as completed
       from kubiki_wf_instances where workflow_id = $1 and record_id = any($2)`, [WORKFLOW, orgIds]);
  const people = await q<{ n: number; orgs: number }>(
    `select n, count(*)::int as orgs from (
       select o.id, (select count(*)::int from base_people p where p.organization = o.id) as n
         from base_organizations o where o.id = any($1::uuid[])) x group by n order by n`, [orgIds]);
  const [notes] = await q(`select count(*) filter (where notes = 'onboarded')::int as marked, count(*)::int as orgs from base_organizations where id = any($1::uuid[])`, [orgIds]);
  return { ...inst, peoplePerOrg: Object.fromEntries(people.map((r) => [r.n, r.orgs])), marked: notes.marked, orgs: notes.orgs };
}

/** Done step rows of these organizations' instances, by the process (application_name) that completed them. */
async function doneBy(orgIds: string[]): Promise<Record<string, number>> {
  const rows = await q<{ app: string; n: number }>(
    `select split_part(d.app, ':', 1) as app, count(*)::int as n from test_step_done d join kubiki_wf_steps s on s.id = d.step_id
       join kubiki_wf_instances i on i.id = s.instance_id where i.workflow_id = $1 and i.record_id = any($2) group by 1 order by 1`, [WORKFLOW, orgIds]);
  return Object.fromEntries(rows.map((r) => [r.app, r.n]));
}

describePg(`workflow engine across OS processes${onPostgres ? '' : ' (skipped: needs PostgreSQL — set DATABASE_URL; PGlite runs in one process)'}`, () => {
  beforeAll(async () => {
    sandbox = new CliSandbox('wfproc');
    schema = sandbox.schema;
    pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 3, options: `-c search_path=${schema}` });
    // HTTP only: it creates the schema, publishes, and takes the writes; it runs no workflow step.
    loader = await start('loader', { KUBIKI_WORKERS: 'off' });
    await loader.healthy();
    await q(`create table test_step_done (step_id bigint not null, app text not null, at timestamptz not null default clock_timestamp())`);
    await q(`create function test_log_step_done() returns trigger language plpgsql as $$
      begin insert into "${schema}".test_step_done (step_id, app) values (new.id, current_setting('application_name')); return new; end $$`);
    await q(`create trigger test_log_step_done after update of status on kubiki_wf_steps for each row
      when (new.status = 'done' and old.status is distinct from 'done') execute function test_log_step_done()`);
    // A record step that follows a pure step is inserted already done, in the same statement.
    await q(`create trigger test_log_step_done_insert after insert on kubiki_wf_steps for each row
      when (new.status = 'done') execute function test_log_step_done()`);
    await publish(ONBOARDING);
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => p.stop(5_000)));
    await pool?.end();
    await sandbox?.cleanup();
  });

  it('a worker SIGKILLed mid-run: another takes its steps over; every instance completes once, no duplicate effect', { timeout: 60_000 }, async () => {
    const t0 = performance.now();
    // A backlog first (the HTTP-only process runs nothing), so the worker starts on a full queue.
    const orgs = await createOrganizations(loader, 100);
    expect((await progress(orgs)).instances).toBe(0);
    // Short leases: the dead worker's claimed steps lapse 2 s after it claimed them.
    const lease = { KUBIKI_WORKFLOW_LEASE_SECONDS: '2' };
    const first = await start('worker-a', lease);
    // Kill once every trigger event was delivered (an event batch leased by the dead process
    // would only be redelivered after the outbox's 30 s lease) and part of the instances completed.
    let seen: Progress = { instances: 0, completed: 0, failed: 0 };
    const until = Date.now() + 40_000;
    for (;;) {
      seen = await progress(orgs);
      const [{ undelivered }] = await q(`select count(*)::int as undelivered from kubiki_outbox where event = 'base.organizations.created' and dispatched_at is null and record_id = any($1)`, [orgs]);
      if (seen.instances === 100 && undelivered === 0 && seen.completed >= 25) break;
      if (!first.alive()) throw new Error(`worker-a exited:\n${first.output()}`);
      if (Date.now() > until) throw new Error(`worker-a made no progress: ${JSON.stringify(seen)}\n${first.output()}`);
      await sleep(10);
    }
    await first.kill();
    // Its sessions gone, PostgreSQL has rolled back whatever transactions it had open.
    for (let i = 0; (await q('select 1 from pg_stat_activity where application_name = $1', [`worker-a:${schema}`])).length > 0; i++) {
      if (i > 100) throw new Error('worker-a\'s database sessions outlived it by 5 s');
      await sleep(50);
    }
    const atKill = await progress(orgs);
    const [inFlight] = await q(`select count(*)::int as n from kubiki_wf_steps s join kubiki_wf_instances i on i.id = s.instance_id
      where i.workflow_id = $1 and i.record_id = any($2) and s.status = 'running'`, [WORKFLOW, orgs]);
    log(`SIGKILL landed with ${atKill.completed}/100 instances completed (last poll saw ${seen.completed}), ${inFlight.n} step rows claimed by the dead worker`);
    expect(atKill.completed).toBeGreaterThan(0);
    expect(atKill.completed).toBeLessThan(100);
    expect(seen.failed).toBe(0);

    const second = await start('worker-b', lease);
    await waitCompleted(orgs, [second, loader], 40_000);
    const result = await outcome(orgs);
    expect(result).toEqual({ instances: 100, records: 100, completed: 100, peoplePerOrg: { 1: 100 }, marked: 100, orgs: 100 });
    // No step left open or failed; one row per step key and instance (a takeover claims the same row again).
    const [steps] = await q(
      `select count(*) filter (where s.status <> 'done')::int as open, count(*)::int as rows, count(*) filter (where s.attempts > 1)::int as retaken
         from kubiki_wf_steps s join kubiki_wf_instances i on i.id = s.instance_id where i.workflow_id = $1 and i.record_id = any($2)`, [WORKFLOW, orgs]);
    expect(steps.open).toBe(0);
    expect(steps.rows).toBe(400);
    // The steps the dead worker held were claimed again (attempts 2) once its lease lapsed; no other step ran twice.
    expect(steps.retaken).toBe(inFlight.n);
    const by = await doneBy(orgs);
    log(`after the restart: ${steps.retaken} step rows taken over (attempts > 1); steps completed by ${JSON.stringify(by)}; ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    expect(by['worker-a']).toBeGreaterThan(0);
    expect(by['worker-b']).toBeGreaterThan(0);
    expect((by['worker-a'] ?? 0) + (by['worker-b'] ?? 0)).toBe(400);
    await second.stop();
  });

  let pair: KubikiProcess[] = [];

  it('two worker processes drain 1,000 instances: every step runs once, both do work', { timeout: 90_000 }, async () => {
    const t0 = performance.now();
    const env = { KUBIKI_REFRESH_MS: '250' };
    // The workers boot while the organizations are created through the HTTP-only process.
    const [orgs, c, d] = await Promise.all([createOrganizations(loader, 1000, 16), start('worker-c', env), start('worker-d', env)]);
    pair = [c, d];
    const created = performance.now();
    await waitCompleted(orgs, [c, d, loader], 60_000);
    const drained = performance.now();
    const result = await outcome(orgs);
    expect(result).toEqual({ instances: 1000, records: 1000, completed: 1000, peoplePerOrg: { 1: 1000 }, marked: 1000, orgs: 1000 });
    // Exactly one row per step key and instance, each done on its first attempt.
    const perInstance = await q<{ keys: string; n: number }>(
      `select keys, count(*)::int as n from (
         select string_agg(s.step_key || ':' || s.status || ':' || s.attempts, ',' order by s.step_key) as keys
           from kubiki_wf_instances i join kubiki_wf_steps s on s.instance_id = i.id
          where i.workflow_id = $1 and i.record_id = any($2) group by i.id) x group by keys`, [WORKFLOW, orgs]);
    expect(perInstance).toEqual([{ keys: ONBOARDING_STEPS.map((k) => `${k}:done:1`).join(','), n: 1000 }]);
    // Each step row turned done exactly once (the trigger logs every transition to done).
    const [twice] = await q(
      `select count(*)::int as n from (select d.step_id from test_step_done d join kubiki_wf_steps s on s.id = d.step_id
         join kubiki_wf_instances i on i.id = s.instance_id where i.workflow_id = $1 and i.record_id = any($2)
         group by d.step_id having count(*) > 1) x`, [WORKFLOW, orgs]);
    expect(twice.n).toBe(0);
    const by = await doneBy(orgs);
    log(`1,000 instances: created in ${((created - t0) / 1000).toFixed(1)} s (workers booting meanwhile), all completed ${((drained - t0) / 1000).toFixed(1)} s after the start; steps completed by ${JSON.stringify(by)}`);
    expect(Object.keys(by).sort()).toEqual(['worker-c', 'worker-d']);
    expect(by['worker-c'] + by['worker-d']).toBe(4000);
    expect(by['worker-c']).toBeGreaterThan(0);
    expect(by['worker-d']).toBeGreaterThan(0);
  });

  it('a cron schedule under two processes starts one instance per second, none twice, none missed', { timeout: 60_000 }, async () => {
    expect(pair.map((p) => p.alive())).toEqual([true, true]);
    await publish(TICK_SOURCE);
    // The workers see the publication at their next refresh (250 ms).
    await sleep(6_000);
    await Promise.all(pair.map((p) => p.stop()));
    const rows = await q<{ slot: string; status: string }>(`select trigger->>'slot' as slot, status from kubiki_wf_instances where workflow_id = $1 order by 1`, [TICK]);
    const slots = rows.map((r) => r.slot);
    log(`cron: ${slots.length} instances, slots ${slots[0]} … ${slots.at(-1)}`);
    expect(new Set(slots).size).toBe(slots.length);
    expect(slots.length).toBeGreaterThanOrEqual(3);
    for (const slot of slots) expect(slot).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.000Z$/);
    // Consecutive seconds: a missing second would mean neither process started it. The first and
    // the last second are edges (a process picking the schedule up, or shutting down).
    const gaps = slots.slice(1).map((s, i) => Date.parse(s) - Date.parse(slots[i]));
    log(`cron: gaps between consecutive slots (ms): ${gaps.join(', ')}`);
    expect(gaps.slice(1, -1).every((g) => g === 1000), `gaps between slots (ms): ${gaps.join(', ')}`).toBe(true);
    expect(gaps.every((g) => g >= 1000)).toBe(true);
    const [{ n }] = await q(`select count(*)::int as n from kubiki_wf_instances where workflow_id = $1 and dedupe_key = 'schedule:' || workflow_id || ':' || (trigger->>'slot')`, [TICK]);
    expect(n).toBe(slots.length);
    // Every instance ran its step, except one started by the last tick of a process already
    // shutting down (its engine had stopped claiming): that stays running, it is not lost.
    expect(rows.filter((r) => r.status !== 'completed' && r.status !== 'running')).toEqual([]);
    expect(rows.slice(0, -2).filter((r) => r.status !== 'completed')).toEqual([]);
  });

  it('a write on another process wakes the workers at once (LISTEN/NOTIFY), not at their next poll', { timeout: 60_000 }, async () => {
    // Event polling once a minute: only the notification can make this finish in time.
    const listener = await start('worker-n', { KUBIKI_EVENT_POLL_MS: '60000', KUBIKI_WORKFLOW_POLL_MS: '60000' });
    try {
      await listener.healthy();
      // The worker's own start-up delivery round has run; from now on only notifications wake it.
      await sleep(1_500);
      const orgs = await createOrganizations(loader, 5);
      await waitCompleted(orgs, [listener, loader], 20_000);
      expect(await outcome(orgs)).toMatchObject({ instances: 5, completed: 5, peoplePerOrg: { 1: 5 } });
    } finally {
      await listener.stop();
    }
  });
});
