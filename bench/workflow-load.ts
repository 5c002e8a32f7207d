// The HTTP side of `npm run bench:workflow`: publishing the benchmark workflow and creating the
// organizations whose `created` events trigger it, either as fast as a fixed number of requests
// in flight allows (throughput phase: the backlog) or at a steady offered rate (latency phase).
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
import { completeInn } from '../core/entities/russian-tax-ids.ts';

export const WORKFLOW_ID = 'workflows.bench-onboarding';

/** The 3-step automation of the issue: condition → update record → create record; the instance ends after the third. */
export const WORKFLOW_SOURCE = `id: ${WORKFLOW_ID}
title: Bench onboarding
kind: automation
trigger: { type: event, entity: base.organizations, on: [created] }
start: check
steps:
  check: { type: condition, if: "has(record.inn) && record.inn != ''", then: mark }
  mark: { type: updateRecord, entity: base.organizations, id: record.id, fields: { notes: "'onboarded'" }, next: contact }
  contact: { type: createRecord, entity: base.people, fields: { firstName: "'Contact'", organization: record.id } }
`;

export interface Api {
  baseUrl: string;
  headers: Record<string, string>;
}

async function send(api: Api, method: string, path: string, body: unknown): Promise<{ status: number; json: unknown; text: string }> {
  const response = await fetch(`${api.baseUrl}${path}`, { method, headers: api.headers, body: JSON.stringify(body) });
  const text = await response.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, json, text };
}

const field = (json: unknown, name: string): unknown =>
  typeof json === 'object' && json !== null && !Array.isArray(json) ? (json as Record<string, unknown>)[name] : undefined;

/** Saves the definition as a new version and publishes that version; returns its number. */
export async function publishWorkflow(api: Api): Promise<number> {
  const path = `/api/workflows/${WORKFLOW_ID}`;
  const saved = await send(api, 'PUT', path, { source: WORKFLOW_SOURCE });
  const version = field(saved.json, 'version');
  if (saved.status !== 200 && saved.status !== 201) throw new Error(`PUT ${path} -> ${saved.status} ${saved.text.slice(0, 500)}`);
  if (typeof version !== 'number') throw new Error(`PUT ${path} answered without a version: ${saved.text.slice(0, 300)}`);
  const published = await send(api, 'POST', `${path}/publish`, { version });
  if (published.status !== 200 && published.status !== 201) {
    throw new Error(`POST ${path}/publish -> ${published.status} ${published.text.slice(0, 500)}`);
  }
  return version;
}

/**
 * Organization bodies with INNs unique within the run: a random 4-digit prefix per run and a
 * 6-digit sequence number, with the two check digits, make a valid 12-digit INN (the field is
 * unique and checked; the prefix keeps a reused database from clashing with an earlier run's rows).
 */
export class OrganizationFactory {
  private readonly prefix = String(1_000 + Math.floor(Math.random() * 9_000));
  private next = 0;

  body(): string {
    const n = this.next++;
    if (n > 999_999) throw new Error('more than 999,999 organizations in one run');
    const seq = String(n).padStart(6, '0');
    return JSON.stringify({ name: `Bench org ${this.prefix}-${seq}`, inn: completeInn(`${this.prefix}${seq}`) });
  }
}

async function createOne(api: Api, body: string): Promise<string> {
  const response = await fetch(`${api.baseUrl}/api/base/organizations`, { method: 'POST', headers: api.headers, body });
  const text = await response.text();
  if (response.status !== 201) throw new Error(`POST ${api.baseUrl}/api/base/organizations -> ${response.status} ${text.slice(0, 300)}`);
  const id = field(JSON.parse(text) as unknown, 'id');
  if (typeof id !== 'string') throw new Error(`POST /api/base/organizations answered without an id: ${text.slice(0, 300)}`);
  return id;
}

export interface CreateResult {
  ids: string[];
  seconds: number;
}

/** `count` organizations, `inFlight` requests at a time, spread round-robin over `apis`. */
export async function createBacklog(apis: Api[], factory: OrganizationFactory, count: number, inFlight: number): Promise<CreateResult> {
  const ids: string[] = [];
  let next = 0;
  let failed = false;
  const start = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, count) }, async () => {
      while (next < count && !failed) {
        const i = next++;
        try {
          ids.push(await createOne(apis[i % apis.length]!, factory.body()));
        } catch (error) {
          failed = true; // the other loops stop after their current request
          throw error;
        }
      }
    }),
  );
  return { ids, seconds: (performance.now() - start) / 1000 };
}

export interface PacedResult extends CreateResult {
  /** Requests per second actually sent (below the offered rate when the server could not keep up). */
  sentPerSec: number;
}

/**
 * `count` organizations at `ratePerSec`, open loop: request i is sent at start + i / rate whatever
 * the answers of earlier ones (so a slow server does not lower the offered load), at most
 * `maxInFlight` outstanding. Spread round-robin over `apis`.
 */
export async function createPaced(apis: Api[], factory: OrganizationFactory, count: number, ratePerSec: number, maxInFlight = 100): Promise<PacedResult> {
  const ids: string[] = [];
  const pending = new Set<Promise<void>>();
  let failure: unknown;
  const start = performance.now();
  let lastSent = start;
  for (let i = 0; i < count && failure === undefined; i++) {
    const due = start + (i * 1000) / ratePerSec;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    while (pending.size >= maxInFlight) await Promise.race(pending);
    lastSent = performance.now();
    const request: Promise<void> = createOne(apis[i % apis.length]!, factory.body())
      .then((id) => {
        ids.push(id);
      })
      .catch((error: unknown) => {
        failure ??= error;
      })
      .finally(() => pending.delete(request));
    pending.add(request);
  }
  await Promise.all(pending);
  if (failure !== undefined) throw failure;
  const sendSeconds = (lastSent - start) / 1000;
  return { ids, seconds: (performance.now() - start) / 1000, sentPerSec: count > 1 && sendSeconds > 0 ? (count - 1) / sendSeconds : count };
}
