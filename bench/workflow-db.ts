// What `npm run bench:workflow` reads from the database: the bench's own trigger events, the
// progress of their workflow instances, and the figures and consistency checks at the end.
//
// The events a phase triggered are kept in a small table of the bench (bench_wf_events: outbox
// id → phase), so every query is scoped to this run's instances even on a database given with
// --database-url that already holds others, and the 100 ms progress poll never sends thousands of
// ids. Instances are matched by trigger->>'eventId' (the outbox id); all timestamps compared
// come from the database clock (now() of the writing transactions), so no clock skew between
// processes enters the figures.
import pg from 'pg';

export const EVENTS_TABLE = 'bench_wf_events';

export type Phase = string;

export interface Progress {
  /** Instances by status (running, waiting, completed, failed, cancelled). */
  byStatus: Record<string, number>;
  instances: number;
  /** completed + failed + cancelled */
  finished: number;
}

export interface ThroughputFigures {
  instances: number;
  completed: number;
  /** Seconds from the first instance's created_at to the last instance's finished_at. */
  seconds: number;
  doneSteps: number;
  stepRows: number;
}

export interface Anomalies {
  /** Events with no instance, or instances not completed. */
  notCompleted: number;
  /** Events that started more than one instance. */
  duplicateInstances: number;
  failedSteps: number;
  /** Step rows with attempts > 1 (retried, or taken over after a lease ran out). */
  retriedSteps: number;
  /** Organizations without a contact person / with more than one. */
  missingPeople: number;
  duplicatePeople: number;
  /** Organizations whose notes are not 'onboarded'. */
  notMarked: number;
  /** First error text of a failed instance or step, if any. */
  firstError?: string;
}

export interface LatencyFigures {
  count: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

const INSTANCES_OF_PHASE = `
  ${EVENTS_TABLE} e join kubiki_wf_instances i on i.trigger->>'eventId' = e.event_id where e.phase = $1`;
const STEPS_OF_PHASE = `
  ${EVENTS_TABLE} e join kubiki_wf_instances i on i.trigger->>'eventId' = e.event_id
  join kubiki_wf_steps s on s.instance_id = i.id where e.phase = $1`;

export class WorkflowBenchDb {
  private constructor(private readonly pool: pg.Pool) {}

  static async open(databaseUrl: string): Promise<WorkflowBenchDb> {
    const pool = new pg.Pool({ connectionString: databaseUrl, max: 2 });
    await pool.query('select 1');
    return new WorkflowBenchDb(pool);
  }

  async close(): Promise<void> {
    await this.pool.end();
  }

  /** The engine's tables exist (the server ran its migrations). */
  async hasEngineTables(): Promise<boolean> {
    const { rows } = await this.pool.query<{ ok: boolean }>(
      `select to_regclass('kubiki_wf_instances') is not null and to_regclass('kubiki_wf_steps') is not null as ok`,
    );
    return rows[0]?.ok === true;
  }

  async createEventsTable(): Promise<void> {
    await this.pool.query(`drop table if exists ${EVENTS_TABLE}`);
    await this.pool.query(`create table ${EVENTS_TABLE} (event_id text primary key, phase text not null)`);
  }

  async dropEventsTable(): Promise<void> {
    await this.pool.query(`drop table if exists ${EVENTS_TABLE}`);
  }

  /** Records the `created` outbox events of these organizations as `phase`; returns how many there were. */
  async registerEvents(phase: Phase, organizationIds: string[]): Promise<number> {
    const result = await this.pool.query(
      `insert into ${EVENTS_TABLE} (event_id, phase)
         select o.id::text, $1 from kubiki_outbox o
          where o.event = 'base.organizations.created' and o.record_id = any($2::text[])`,
      [phase, organizationIds],
    );
    return result.rowCount ?? 0;
  }

  /** Instances of this workflow, whatever triggered them (must stay 0 while no worker runs). */
  async instancesOfWorkflow(workflowId: string): Promise<number> {
    const { rows } = await this.pool.query<{ n: number }>('select count(*)::int as n from kubiki_wf_instances where workflow_id = $1', [workflowId]);
    return rows[0]?.n ?? 0;
  }

  async progress(phase: Phase): Promise<Progress> {
    const { rows } = await this.pool.query<{ status: string; n: number }>(
      `select i.status, count(*)::int as n from ${INSTANCES_OF_PHASE} group by i.status`,
      [phase],
    );
    const byStatus: Record<string, number> = {};
    for (const row of rows) byStatus[row.status] = row.n;
    const instances = rows.reduce((sum, row) => sum + row.n, 0);
    const finished = (byStatus.completed ?? 0) + (byStatus.failed ?? 0) + (byStatus.cancelled ?? 0);
    return { byStatus, instances, finished };
  }

  async throughput(phase: Phase): Promise<ThroughputFigures> {
    const { rows } = await this.pool.query<{ instances: number; completed: number; seconds: number | null }>(
      `select count(*)::int as instances,
              count(*) filter (where i.status = 'completed')::int as completed,
              extract(epoch from max(i.finished_at) - min(i.created_at))::float8 as seconds
         from ${INSTANCES_OF_PHASE}`,
      [phase],
    );
    const steps = await this.pool.query<{ done: number; total: number }>(
      `select count(*) filter (where s.status = 'done')::int as done, count(*)::int as total
         from ${STEPS_OF_PHASE}`,
      [phase],
    );
    const row = rows[0];
    return {
      instances: row?.instances ?? 0,
      completed: row?.completed ?? 0,
      seconds: row?.seconds ?? 0,
      doneSteps: steps.rows[0]?.done ?? 0,
      stepRows: steps.rows[0]?.total ?? 0,
    };
  }

  /** Trigger-to-completion: instance finished_at − outbox created_at, completed instances only. */
  async latency(phase: Phase): Promise<LatencyFigures> {
    const { rows } = await this.pool.query<{ n: number; p50: number | null; p99: number | null; max: number | null }>(
      `select count(*)::int as n,
              percentile_cont(0.5) within group (order by ms) as p50,
              percentile_cont(0.99) within group (order by ms) as p99,
              max(ms) as max
         from (select extract(epoch from i.finished_at - o.created_at)::float8 * 1000 as ms
                 from ${EVENTS_TABLE} e
                 join kubiki_outbox o on o.id::text = e.event_id
                 join kubiki_wf_instances i on i.trigger->>'eventId' = e.event_id
                where e.phase = $1 and i.status = 'completed') t`,
      [phase],
    );
    const row = rows[0];
    return { count: row?.n ?? 0, p50Ms: row?.p50 ?? NaN, p99Ms: row?.p99 ?? NaN, maxMs: row?.max ?? NaN };
  }

  /** Everything that must be 0: lost or doubled instances, failed or retried steps, wrong records. */
  async anomalies(phase: Phase): Promise<Anomalies> {
    const instances = await this.pool.query<{ not_completed: number; duplicates: number; first_error: string | null }>(
      `with per_event as (
         select e.event_id, count(i.id) as n, count(i.id) filter (where i.status = 'completed') as completed,
                min(i.error) as error
           from ${EVENTS_TABLE} e left join kubiki_wf_instances i on i.trigger->>'eventId' = e.event_id
          where e.phase = $1 group by e.event_id)
       select count(*) filter (where completed = 0 or completed < n)::int as not_completed,
              count(*) filter (where n > 1)::int as duplicates,
              min(error) as first_error
         from per_event`,
      [phase],
    );
    const steps = await this.pool.query<{ failed: number; retried: number; first_error: string | null }>(
      `select count(*) filter (where s.status in ('failed', 'cancelled'))::int as failed,
              count(*) filter (where s.attempts > 1)::int as retried,
              min(s.error) as first_error
         from ${STEPS_OF_PHASE}`,
      [phase],
    );
    const records = await this.pool.query<{ missing: number; duplicated: number; not_marked: number }>(
      `with orgs as (
         select o.record_id::uuid as id from ${EVENTS_TABLE} e join kubiki_outbox o on o.id::text = e.event_id where e.phase = $1),
       contacts as (
         select p.organization, count(*) as n from base_people p where p.organization in (select id from orgs) group by p.organization)
       select count(*) filter (where c.n is null)::int as missing,
              count(*) filter (where c.n > 1)::int as duplicated,
              count(*) filter (where r.notes is distinct from 'onboarded')::int as not_marked
         from orgs left join contacts c on c.organization = orgs.id left join base_organizations r on r.id = orgs.id`,
      [phase],
    );
    const i = instances.rows[0];
    const s = steps.rows[0];
    const r = records.rows[0];
    const firstError = i?.first_error ?? s?.first_error ?? undefined;
    return {
      notCompleted: i?.not_completed ?? 0,
      duplicateInstances: i?.duplicates ?? 0,
      failedSteps: s?.failed ?? 0,
      retriedSteps: s?.retried ?? 0,
      missingPeople: r?.missing ?? 0,
      duplicatePeople: r?.duplicated ?? 0,
      notMarked: r?.not_marked ?? 0,
      firstError: firstError ?? undefined,
    };
  }
}

export function anomalyCount(a: Anomalies): number {
  return a.notCompleted + a.duplicateInstances + a.failedSteps + a.retriedSteps + a.missingPeople + a.duplicatePeople + a.notMarked;
}

export function describeAnomalies(a: Anomalies): string {
  const parts: string[] = [];
  const add = (n: number, what: string) => {
    if (n > 0) parts.push(`${n} ${what}`);
  };
  add(a.notCompleted, 'not completed');
  add(a.duplicateInstances, 'events with >1 instance');
  add(a.failedSteps, 'failed/cancelled steps');
  add(a.retriedSteps, 'steps with attempts > 1');
  add(a.missingPeople, 'orgs without contact');
  add(a.duplicatePeople, 'orgs with >1 contact');
  add(a.notMarked, 'orgs not marked');
  if (parts.length === 0) return 'none';
  return parts.join(', ') + (a.firstError ? ` (first error: ${a.firstError.split('\n')[0]?.slice(0, 200)})` : '');
}
