import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SMTPServer } from 'smtp-server';
import { freePort } from '../helpers/free-port.ts';
import { startKubiki, type TestKubiki } from '../helpers/test-kubiki.ts';

interface Received { from: string; to: string[]; raw: string }

/** A local SMTP server capturing what it receives. */
function smtpServer(received: Received[]): SMTPServer {
  return new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
        });
        callback();
      });
    },
  });
}

let n = 0;
const key = () => `test-${Date.now()}-${++n}`;
const email = (over: Record<string, unknown> = {}) => ({ channel: 'email', to: 'buyer@example.com', subject: 'Hello', body: 'Plain body', idempotencyKey: key(), ...over });

describe('notifications without SMTP', () => {
  let t: TestKubiki;
  beforeAll(async () => { t = await startKubiki(); });
  afterAll(async () => { await t.close(); });

  it('holds an email in the viewable outbox and audits without the body', async () => {
    const sent = await t.api('POST', '/api/notifications', email({ body: 'secret body text' }));
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({ channel: 'email', to: 'buyer@example.com', status: 'held', attempts: 0, lastError: null });
    const outbox = await t.api('GET', '/api/notifications?status=held');
    expect(outbox.status).toBe(200);
    expect(outbox.body.data.map((r: { id: string }) => r.id)).toContain(sent.body.id);
    expect(outbox.body.data[0].body).toBeUndefined();
    const one = await t.api('GET', `/api/notifications/${sent.body.id}`);
    expect(one.body).toMatchObject({ id: sent.body.id, body: 'secret body text', status: 'held' });
    const audit: { action: string; changes: unknown }[] = await t.k.db.table('kubiki_audit').where({ plugin: 'core', entity: 'notifications', record_id: sent.body.id }).orderBy('id');
    expect(audit.map((a) => a.action)).toEqual(['queued', 'held']);
    expect(JSON.stringify(audit)).not.toContain('secret body text');
    // Retrying a held notification needs a transport.
    expect((await t.api('POST', `/api/notifications/${sent.body.id}/retry`)).status).toBe(409);
  });

  it('holds an SMS (no provider ships) and sends it once a provider is set', async () => {
    const sms = await t.api('POST', '/api/notifications', { channel: 'sms', to: '+79991234567', body: 'Code 1234', idempotencyKey: key() });
    expect(sms.status).toBe(201);
    expect(sms.body.status).toBe('held');
    const calls: [string, string, string][] = [];
    t.k.notifications.useSmsProvider({ async send(to, text, idempotencyKey) { calls.push([to, text, idempotencyKey]); return { messageId: 'sms-1' }; } });
    try {
      const retried = await t.api('POST', `/api/notifications/${sms.body.id}/retry`);
      expect(retried.body).toMatchObject({ status: 'sent', providerMessageId: 'sms-1', attempts: 1 });
      expect(calls).toEqual([['+79991234567', 'Code 1234', sms.body.idempotencyKey]]);
    } finally {
      t.k.notifications.useSmsProvider(undefined);
    }
  });

  it('filters the outbox by channel and rejects bad query parameters', async () => {
    const sms = await t.api('GET', '/api/notifications?channel=sms&limit=10');
    expect(sms.body.data.every((r: { channel: string }) => r.channel === 'sms')).toBe(true);
    expect((await t.api('GET', '/api/notifications?status=lost')).body).toMatchObject({ status: 400, field: 'status' });
    expect((await t.api('GET', '/api/notifications?limit=0')).body).toMatchObject({ status: 400, field: 'limit' });
    expect((await t.api('GET', '/api/notifications?foo=1')).body).toMatchObject({ status: 400, field: 'foo' });
    expect((await t.api('GET', '/api/notifications/not-a-uuid')).status).toBe(404);
  });

  it('validates the message with 400s naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [email({ to: 'not-an-address' }), 'to'],
      [email({ to: 'a@example.com, b@example.com' }), 'to'],
      [{ channel: 'sms', to: '89991234567', body: 'x', idempotencyKey: key() }, 'to'],
      [email({ channel: 'fax' }), 'channel'],
      [email({ body: '' }), 'body'],
      [email({ body: 'x'.repeat(100 * 1024 + 1) }), 'body'],
      [email({ subject: 'a\r\nBcc: evil@example.com' }), 'subject'],
      [email({ idempotencyKey: undefined }), 'idempotencyKey'],
      [email({ attachments: [{ documentId: 'nope' }] }), 'attachments.0.documentId'],
      [email({ attachments: [{ documentId: '00000000-0000-4000-8000-000000000000' }] }), 'attachments.0.documentId'],
      [email({ cc: 'x@example.com' }), 'cc'],
    ];
    for (const [body, field] of cases) {
      const res = await t.api('POST', '/api/notifications', body);
      expect(res.status, field).toBe(400);
      expect(res.body.field).toBe(field);
    }
    expect(await t.count('kubiki_notifications', { recipient: 'not-an-address' })).toBe(0);
  });

  it('puts every route behind a permission', async () => {
    expect((await t.api('GET', '/api/notifications', undefined, { token: null })).status).toBe(401);
    expect((await t.api('POST', '/api/notifications', email(), { token: null })).status).toBe(401);
    const nobody = await t.userWith(['base.*']);
    const reader = await t.userWith(['core.notifications.read']);
    const list = await t.api('GET', '/api/notifications', undefined, { token: nobody.token });
    expect(list.status).toBe(403);
    expect(list.body.permission).toBe('core.notifications.read');
    expect((await t.api('GET', '/api/notifications', undefined, { token: reader.token })).status).toBe(200);
    const post = await t.api('POST', '/api/notifications', email(), { token: reader.token });
    expect(post.status).toBe(403);
    expect(post.body.permission).toBe('core.notifications.send');
    const [held] = (await t.api('GET', '/api/notifications?limit=1')).body.data;
    expect((await t.api('POST', `/api/notifications/${held.id}/retry`, undefined, { token: reader.token })).status).toBe(403);
    const sender = await t.userWith(['core.notifications.send']);
    expect((await t.api('POST', '/api/notifications', email(), { token: sender.token })).status).toBe(201);
  });
});

describe('notifications through SMTP', () => {
  let t: TestKubiki;
  let server: SMTPServer | undefined;
  let port: number;
  const received: Received[] = [];

  beforeAll(async () => {
    port = await freePort(); // nothing listens there until the "server is up" step
    t = await startKubiki({ config: { smtpUrl: `smtp://127.0.0.1:${port}`, smtpFrom: 'erp@kubiki.test' } });
  });
  afterAll(async () => {
    await t.close();
    if (server) await new Promise<void>((resolve) => server!.close(() => resolve()));
  });

  it('marks a send to a down server failed with last_error, then a retry once it is up sends it', async () => {
    const first = await t.api('POST', '/api/notifications', email({ subject: 'Retry me' }));
    expect(first.status).toBe(201);
    expect(first.body).toMatchObject({ status: 'failed', attempts: 1 });
    expect(first.body.lastError).toMatch(/ECONNREFUSED|connect/i);
    expect((await t.api('GET', '/api/notifications?status=failed')).body.data.map((r: { id: string }) => r.id)).toContain(first.body.id);

    server = smtpServer(received);
    await new Promise<void>((resolve) => server!.listen(port, '127.0.0.1', () => resolve()));
    const retried = await t.api('POST', `/api/notifications/${first.body.id}/retry`);
    expect(retried.status).toBe(200);
    expect(retried.body).toMatchObject({ status: 'sent', attempts: 2, lastError: null });
    expect(retried.body.sentAt).toBeTruthy();
    expect(received.filter((m) => m.raw.includes('Subject: Retry me'))).toHaveLength(1);
    expect((await t.api('POST', `/api/notifications/${first.body.id}/retry`)).status).toBe(409);
    const audit: { action: string }[] = await t.k.db.table('kubiki_audit').where({ entity: 'notifications', record_id: first.body.id }).orderBy('id');
    expect(audit.map((a) => a.action)).toEqual(['queued', 'failed', 'retried', 'sent']);
  });

  it('delivers subject, body and an attached rendered document', async () => {
    const org = await t.api('POST', '/api/base/organizations', { name: 'Acme Mail LLC', inn: '7707083893' });
    expect(org.status).toBe(201);
    const doc = await t.api('POST', '/api/templates/base.organization-card/render', { recordId: org.body.id });
    expect(doc.status).toBe(201);
    const content = await fetch(`${t.url}/api/documents/${doc.body.id}/content`, { headers: { authorization: `Bearer ${t.adminToken}` } });
    const bytes = Buffer.from(await content.arrayBuffer());
    expect(bytes.toString('utf8')).toContain('Acme Mail LLC');

    const before = received.length;
    const sent = await t.api('POST', '/api/notifications', email({ to: 'client@example.org', subject: 'Your card', body: 'Please find the card attached.', attachments: [{ documentId: doc.body.id }] }));
    expect(sent.status).toBe(201);
    expect(sent.body).toMatchObject({ status: 'sent', attempts: 1, attachments: [{ documentId: doc.body.id }] });
    expect(sent.body.providerMessageId).toBeTruthy();
    expect(received).toHaveLength(before + 1);
    const mail = received[before];
    expect(mail.from).toBe('erp@kubiki.test');
    expect(mail.to).toEqual(['client@example.org']);
    expect(mail.raw).toContain('Subject: Your card');
    expect(mail.raw).toContain('Please find the card attached.');
    expect(mail.raw).toContain(`base.organization-card-${doc.body.id}.html`);
    expect(mail.raw.replace(/\r?\n/g, '')).toContain(bytes.toString('base64'));
  });

  it('sends once for one idempotency key', async () => {
    const before = received.length;
    const message = email({ subject: 'Once only' });
    const first = await t.api('POST', '/api/notifications', message);
    const second = await t.api('POST', '/api/notifications', message);
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(second.body.status).toBe('sent');
    expect(await t.count('kubiki_notifications', { idempotency_key: message.idempotencyKey })).toBe(1);
    expect(received.length - before).toBe(1);
  });

  it('lets plugin code notify through the service', async () => {
    const before = received.length;
    const { notification } = await t.k.notifications.send(email({ subject: 'From a plugin' }), (await import('../../core/auth/principal.ts')).SYSTEM);
    expect(notification.status).toBe('sent');
    expect(notification.createdBy).toBe('system');
    expect(received.length - before).toBe(1);
  });

  it('marks a send left queued by a stopped process failed, so a retry sends it', async () => {
    const { notification } = await t.k.notifications.send(email({ subject: 'Interrupted' }), (await import('../../core/auth/principal.ts')).SYSTEM);
    // As if the process had died between queuing the row and the SMTP answer, three minutes ago.
    await t.k.db.table('kubiki_notifications').where({ id: notification.id }).update({ status: 'queued', queued_at: t.k.db.knex.raw("now() - interval '3 minutes'") });
    const fresh = await t.api('POST', '/api/notifications', email({ subject: 'Fresh' }));
    await t.k.db.table('kubiki_notifications').where({ id: fresh.body.id }).update({ status: 'queued' });
    expect(await t.k.notifications.failStale()).toBe(1);
    expect((await t.api('GET', `/api/notifications/${fresh.body.id}`)).body.status).toBe('queued');
    const stale = (await t.api('GET', `/api/notifications/${notification.id}`)).body;
    expect(stale).toMatchObject({ status: 'failed' });
    expect(stale.lastError).toContain('stopped');
    expect((await t.api('POST', `/api/notifications/${notification.id}/retry`)).body.status).toBe('sent');
  });

  it('a workflow notify step sends through SMTP once, with its step as idempotency key', async () => {
    const source = `
id: workflows.mail-card
title: Mail the card
kind: automation
trigger: { type: manual, entity: base.organizations }
start: print
steps:
  print: { type: renderDocument, template: base.organization-card, recordId: record.id, next: mail }
  mail: { type: notify, channel: email, to: "'buyer@example.org'", subject: "'Card of ' + record.name", body: "'Attached.'", attachDocument: print }
`;
    expect((await t.api('PUT', '/api/workflows/workflows.mail-card', { source })).status).toBeLessThan(300);
    expect((await t.api('POST', '/api/workflows/workflows.mail-card/publish', {})).status).toBe(200);
    const org = await t.api('POST', '/api/base/organizations', { name: 'Workflow Mail LLC' });
    const before = received.length;
    const run = await t.api('POST', '/api/workflows/workflows.mail-card/run', { recordId: org.body.id });
    expect(run.status).toBe(202);
    await t.k.workflowRuntime.settle();
    const instance = (await t.api('GET', `/api/workflows/instances/${run.body.instanceId}`)).body;
    expect(instance.status).toBe('completed');
    expect(instance.steps[1].output).toMatchObject({ status: 'sent' });
    expect(received.length - before).toBe(1);
    expect(received[before].raw).toContain('Subject: Card of Workflow Mail LLC');
    expect(received[before].raw).toContain(`base.organization-card-${String(instance.steps[0].output.id)}.html`);
    const row = await t.k.db.table('kubiki_notifications').where({ id: instance.steps[1].output.notificationId }).first();
    expect(row.idempotency_key).toBe(`wf-${instance.steps[1].id}`);
  });
});
