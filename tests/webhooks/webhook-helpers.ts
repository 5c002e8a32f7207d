import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { TestKubiki } from '../helpers/test-kubiki.ts';

/** A clock the webhook worker, rate limiter and login throttle read; moved by hand, never slept on. */
export class HandClock {
  constructor(public ms = Date.now()) {}
  now(): Date {
    return new Date(this.ms);
  }
  advance(ms: number): void {
    this.ms += ms;
  }
}

/** One request as the receiver saw it. */
export interface Received {
  id: string;
  timestamp: string;
  signature: string;
  headers: Record<string, string>;
  body: string;
  json: { type: string; timestamp: string; data: { entity: string; id: string; eventId: number; changes: Record<string, { before: unknown; after: unknown }>; by: string } };
  /** What the receiver answered. */
  status: number;
}

export interface Answer {
  status: number;
  headers?: Record<string, string>;
  body?: string;
}

export interface Receiver {
  url: string;
  received: Received[];
  /** Requests it answered 2xx. */
  accepted(): Received[];
  answer: (request: Omit<Received, 'status'>, n: number) => Answer;
  close(): Promise<void>;
}

const flat = (headers: IncomingHttpHeaders): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : v ?? '']));

/** A local HTTP receiver; `answer` decides each reply (200 by default). */
export async function startReceiver(answer: Receiver['answer'] = () => ({ status: 200 })): Promise<Receiver> {
  const received: Received[] = [];
  const receiver: Receiver = {
    url: '',
    received,
    accepted: () => received.filter((r) => r.status >= 200 && r.status < 300),
    answer,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const headers = flat(req.headers);
      const request = { id: headers['webhook-id'], timestamp: headers['webhook-timestamp'], signature: headers['webhook-signature'], headers, body, json: JSON.parse(body) as Received['json'] };
      const reply = receiver.answer(request, received.length);
      received.push({ ...request, status: reply.status });
      res.writeHead(reply.status, { 'content-type': 'text/plain', ...reply.headers });
      res.end(reply.body ?? 'ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/hook`;
  return receiver;
}

/** Fans out pending outbox events and sends every delivery due now, until nothing moves. */
export async function settle(t: TestKubiki): Promise<void> {
  for (let round = 0; round < 50; round++) {
    await t.k.dispatcher.drainAll();
    if ((await t.k.webhooks.deliverDue()) === 0) return;
  }
  throw new Error('webhook delivery did not settle in 50 rounds');
}

/** A small seeded PRNG (mulberry32): "random" failures that are the same on every run. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
