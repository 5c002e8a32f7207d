import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { repoRoot } from '../../core/config.ts';
import { ManualClock } from '../helpers/manual-clock.ts';
import { SHIPPED_PLUGINS, startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

const ID = 'workflows.organization-onboarding';
const shipped = fs.readFileSync(path.join(repoRoot, 'tests/fixtures/workflows/organization-onboarding.yaml'), 'utf8');
let t: TestKubiki;

beforeAll(async () => {
  t = await startKubiki({ pluginDirs: [SHIPPED_PLUGINS], config: { workflowDirs: [path.join(repoRoot, 'tests/fixtures/workflows')] } });
});
afterAll(() => t?.close());

describe('workflow definitions over REST', () => {
  it('serves the published JSON Schema', async () => {
    const res = await t.api('GET', '/api/workflows/schema.json');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('application/schema+json');
    expect(res.body).toMatchObject({ $id: 'https://kubiki.dev/schemas/workflow.json', title: 'Kubiki workflow definition' });
    expect((await t.api('GET', '/api/workflows/schema.json', undefined, { token: null })).status).toBe(401);
  });

  it('imports shipped definitions as published version 1', async () => {
    const list = await t.api('GET', '/api/workflows');
    // Plugins ship their own too (crm.*): the fixture's cross-module definition is among them.
    expect(list.body.data.filter((w: { id: string }) => w.id.startsWith('workflows.'))).toEqual([expect.objectContaining({ id: ID, kind: 'automation', entity: null, publishedVersion: 1, latestVersion: 1 })]);
    const one = await t.api('GET', `/api/workflows/${ID}`);
    expect(one.body).toMatchObject({ id: ID, version: 1, origin: 'default', source: shipped, metadata: { id: ID, trigger: { type: 'event', entity: 'base.organizations' } } });
  });

  it('validates YAML text and definitions, reporting every error with its path', async () => {
    const ok = await t.api('POST', '/api/workflows/validate', { source: shipped });
    expect(ok.body).toEqual({ valid: true, errors: [] });
    const broken = shipped
      .replace('then: remember-contact', 'then: no-such-step')
      .replace("if: has(record.inn) && record.inn != ''", 'if: record.inn ==')
      .replace('entity: base.people', 'entity: base.nothing');
    const bad = await t.api('POST', '/api/workflows/validate', { source: broken });
    expect(bad.status).toBe(200);
    expect(bad.body.valid).toBe(false);
    // The three mistakes, and what the broken link makes of the steps behind it.
    expect(bad.body.errors.map((e: { path: string; rule: string }) => `${e.path} ${e.rule}`)).toEqual([
      '/steps/check-inn/then missing-step',
      '/steps/remember-contact unreachable',
      '/steps/create-contact unreachable',
      '/steps/notify-sales unreachable',
      '/steps/create-contact/entity unknown-entity',
      '/steps/check-inn/if expression-syntax',
    ]);
    expect(bad.body.errors).toEqual(expect.arrayContaining([
      { path: '/steps/check-inn/then', rule: 'missing-step', message: 'step "check-inn" goes to "no-such-step", but there is no step with that id' },
      { path: '/steps/create-contact/entity', rule: 'unknown-entity', message: 'there is no entity base.nothing; check the plugin and the plural name (e.g. base.organizations)' },
      { path: '/steps/check-inn/if', rule: 'expression-syntax', message: 'the expression has a syntax error at line 1, column 14: Unexpected token: EOF' },
    ]));
    const asObject = await t.api('POST', '/api/workflows/validate', { id: 'crm.x', title: 'x', kind: 'automation' });
    expect(asObject).toMatchObject({ status: 200, body: { valid: false } });
    expect(asObject.body.errors).toEqual([
      { path: '/trigger', rule: 'required', message: 'an automation needs trigger' },
      { path: '/start', rule: 'required', message: 'an automation needs start' },
      { path: '/steps', rule: 'required', message: 'an automation needs steps' },
    ]);
    const yamlError = await t.api('POST', '/api/workflows/validate', { source: 'id: [unclosed\n' });
    expect(yamlError.status).toBe(400);
    expect(yamlError.body).toMatchObject({ code: 'validation-failed', rule: 'syntax', format: 'yaml', line: 2, column: 1 });
    expect(yamlError.body.detail).toMatch(/^the workflow definition is not valid YAML: line 2, column 1: /);
  });

  it('saves only valid versions, publishes, diffs, rolls back and draws them', async () => {
    const auditBefore = await t.count('kubiki_audit', { plugin: 'core', entity: 'workflows' });
    const invalid = await t.api('PUT', `/api/workflows/${ID}`, { source: shipped.replace('then: remember-contact', 'then: nowhere') });
    expect(invalid.status).toBe(400);
    expect(invalid.body).toMatchObject({ code: 'validation-failed', field: '/steps/check-inn/then', rule: 'missing-step', detail: expect.stringMatching(/^the workflow definition has 4 errors: /) });
    expect(invalid.body.errors.map((e: { field: string; rule: string }) => `${e.field} ${e.rule}`)).toEqual([
      '/steps/check-inn/then missing-step', '/steps/remember-contact unreachable', '/steps/create-contact unreachable', '/steps/notify-sales unreachable',
    ]);
    const wrongId = await t.api('PUT', '/api/workflows/workflows.other', { source: shipped });
    expect(wrongId).toMatchObject({ status: 400, body: { field: 'id' } });
    expect(await t.count('kubiki_item_versions', { kind: 'workflows', item_id: ID })).toBe(1);

    const edited = shipped.replace('title: Onboard a new organization', 'title: Onboard a new organization (v2)');
    const saved = await t.api('PUT', `/api/workflows/${ID}`, { source: edited, comment: 'clearer title' });
    expect(saved.status).toBe(200);
    expect(saved.body).toMatchObject({ id: ID, version: 2, origin: 'edit', comment: 'clearer title', createdBy: 'admin' });
    expect((await t.api('GET', `/api/workflows/${ID}`)).body.version).toBe(1); // published is still 1
    expect((await t.api('POST', `/api/workflows/${ID}/publish`)).body).toMatchObject({ publishedVersion: 2, title: 'Onboard a new organization (v2)' });
    const diff = await t.api('GET', `/api/workflows/${ID}/diff?from=1&to=2`, undefined, { headers: { accept: 'text/plain' } });
    expect(diff.body).toContain('-title: Onboard a new organization\n+title: Onboard a new organization (v2)');
    const versions = await t.api('GET', `/api/workflows/${ID}/versions`);
    expect(versions.body.data.map((v: { version: number }) => v.version)).toEqual([2, 1]);
    expect((await t.api('POST', `/api/workflows/${ID}/rollback`, { version: 1 })).body.publishedVersion).toBe(1);
    expect(await t.count('kubiki_audit', { plugin: 'core', entity: 'workflows' })).toBe(auditBefore + 3);

    const diagram = await t.api('GET', `/api/workflows/${ID}/diagram`);
    expect(diagram.headers.get('content-type')).toContain('text/plain');
    expect(diagram.body).toMatch(/^flowchart TD/);
    expect(diagram.body).toContain('Has a taxpayer id?');
  });

  it('needs core.workflows.read to look and core.workflows.manage to change', async () => {
    const reader = await t.userWith(['core.workflows.read']);
    expect((await t.api('GET', '/api/workflows', undefined, { token: reader.token })).status).toBe(200);
    expect((await t.api('POST', '/api/workflows/validate', { source: shipped }, { token: reader.token })).status).toBe(200);
    const put = await t.api('PUT', `/api/workflows/${ID}`, { source: shipped }, { token: reader.token });
    expect(put).toMatchObject({ status: 403, body: { permission: 'core.workflows.manage' } });
    expect((await t.api('POST', `/api/workflows/${ID}/publish`, {}, { token: reader.token })).status).toBe(403);
    const nobody = await t.userWith([]);
    expect((await t.api('GET', '/api/workflows', undefined, { token: nobody.token })).status).toBe(403);
  });

  it('unpublishes: triggers stop, running instances finish, and a shipped update does not publish it again', async () => {
    const dir = fs.mkdtempSync(path.join(repoRoot, 'tests/fixtures/.tmp-workflows-'));
    try {
      const source = `id: workflows.pause-then-note
title: Pause then note
kind: automation
trigger: { type: manual }
start: pause
steps:
  pause: { type: wait, duration: PT1S, next: note }
  note: { type: set, variables: { done: "true" } }
`;
      fs.writeFileSync(path.join(dir, 'pause-then-note.yaml'), source);
      const clock = new ManualClock();
      const k2 = await startKubiki({ clock, pluginDirs: [SHIPPED_PLUGINS], config: { workflowDirs: [dir] } });
      try {
        const running = await k2.api('POST', '/api/workflows/workflows.pause-then-note/run', {});
        expect(running.status).toBe(202);
        await k2.k.workflowRuntime.settle();
        expect((await k2.api('GET', `/api/workflows/instances/${running.body.instanceId}`)).body.status).toBe('waiting');
        const off = await k2.api('POST', '/api/workflows/workflows.pause-then-note/unpublish');
        expect(off.status).toBe(200);
        expect(off.body.publishedVersion).toBeNull();
        expect((await k2.api('POST', '/api/workflows/workflows.pause-then-note/unpublish')).status).toBe(409);
        expect((await k2.api('POST', '/api/workflows/workflows.pause-then-note/run', {})).status).toBe(404);
        await clock.advance(1000);
        await k2.k.workflowRuntime.settle();
        expect((await k2.api('GET', `/api/workflows/instances/${running.body.instanceId}`)).body).toMatchObject({ status: 'completed', vars: { done: true } });
        expect(await k2.count('kubiki_audit', { entity: 'workflows', record_id: 'workflows.pause-then-note', action: 'unpublished' })).toBe(1);
        const { schema, adminToken } = k2;
        await k2.close({ keepSchema: true });
        // A new shipped version arrives (an upgrade): it is imported, but the admin's unpublish stands.
        fs.writeFileSync(path.join(dir, 'pause-then-note.yaml'), source.replace('Pause then note', 'Pause, then note'));
        const k3 = await startKubiki({ schema, adminToken, pluginDirs: [SHIPPED_PLUGINS], config: { workflowDirs: [dir] } });
        try {
          const updated = await k3.api('GET', '/api/workflows/workflows.pause-then-note');
          expect(updated).toMatchObject({ status: 200, body: { id: 'workflows.pause-then-note', title: 'Pause, then note', version: 2, publishedVersion: null, latestVersion: 2 } });
          expect(updated.body.source).toBe(source.replace('Pause then note', 'Pause, then note'));
          const summary = (await k3.api('GET', '/api/workflows')).body.data.find((w: { id: string }) => w.id === 'workflows.pause-then-note');
          expect(summary).toMatchObject({ publishedVersion: null, latestVersion: 2 });
          // Publishing again brings it back.
          expect((await k3.api('POST', '/api/workflows/workflows.pause-then-note/publish', {})).body.publishedVersion).toBe(2);
          expect((await k3.api('POST', '/api/workflows/workflows.pause-then-note/run', {})).status).toBe(202);
        } finally {
          await k3.close();
        }
      } catch (error) {
        await k2.close().catch(() => undefined);
        throw error;
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('refuses to unpublish without core.workflows.manage, or what does not exist', async () => {
    const reader = await t.userWith(['core.workflows.read']);
    expect((await t.api('POST', `/api/workflows/${ID}/unpublish`, undefined, { token: reader.token })).status).toBe(403);
    expect((await t.api('POST', '/api/workflows/workflows.nope/unpublish')).status).toBe(404);
  });
});
