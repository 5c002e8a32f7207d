import pg from 'pg';
import type { Logger } from 'pino';
import type { Database } from '../db/database.ts';

const RECONNECT_MS = 1000;

/**
 * Wakes this process's event delivery the moment another process commits a write whose event
 * someone listens to (the write statement calls pg_notify on the schema's channel; PostgreSQL
 * delivers it at commit). Polling stays as the fallback, so a lost connection only costs latency.
 * PostgreSQL only, and only when the connection string is known (one connection of its own).
 */
export async function listenForEvents(db: Database, logger: Logger, onEvent: () => void): Promise<{ close(): Promise<void> }> {
  if (db.kind !== 'postgres' || !db.url) return { close: async () => {} };
  let client: pg.Client | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  const connect = async (): Promise<void> => {
    const c = new pg.Client({ connectionString: db.url });
    c.on('notification', () => onEvent());
    c.on('error', (error) => {
      logger.warn({ err: error }, 'event notifications lost their connection; reconnecting');
      void c.end().catch(() => undefined);
      if (!closed) retry = setTimeout(() => void connect().catch(() => undefined), RECONNECT_MS);
    });
    try {
      await c.connect();
      await c.query(`listen "${db.eventChannel}"`);
      client = c;
    } catch (error) {
      logger.warn({ err: error }, 'could not listen for event notifications; polling only');
      void c.end().catch(() => undefined);
      if (!closed) retry = setTimeout(() => void connect().catch(() => undefined), RECONNECT_MS);
    }
  };
  await connect();
  return {
    async close() {
      closed = true;
      clearTimeout(retry);
      await client?.end().catch(() => undefined);
    },
  };
}
