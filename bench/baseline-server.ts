// Bare baseline for `npm run bench:api`: the least a Koa + knex service can do
// for "create an organization" and "list 50 organizations". No auth, no audit,
// no plugins. Kubiki is measured against this, so keep it honest but minimal:
// same stack pieces Kubiki uses (Koa, @koa/router, ajv, knex/pg), one insert,
// one select. Routes mirror Kubiki's (/api/base/organizations) so both servers
// receive byte-identical requests (the baseline just ignores Authorization).
// It reads and writes Kubiki's own table (created by the startup phase, which
// runs first), so both move the same rows and bytes: the ratio is Kubiki's own
// overhead (auth, validation, audit, outbox, mapping), not a narrower table.
//
// Env: PORT (required), DATABASE_URL (required, PostgreSQL).
import { randomUUID } from 'node:crypto';
import Koa from 'koa';
import Router from '@koa/router';
import { Ajv } from 'ajv';
import knex from 'knex';
import getRawBody from 'raw-body';

const TABLE = 'base_organizations';

const port = Number(process.env.PORT);
const databaseUrl = process.env.DATABASE_URL;
if (!Number.isInteger(port) || port <= 0 || !databaseUrl) {
  console.error('baseline-server: PORT and DATABASE_URL are required');
  process.exit(2);
}

// Pool of 10 matches the 10 load connections, so the pool is never the bottleneck.
const db = knex({ client: 'pg', connection: databaseUrl, pool: { min: 2, max: 10 } });

const ajv = new Ajv();
const validateCreate = ajv.compile<{ name: string }>({
  type: 'object',
  properties: { name: { type: 'string', minLength: 1, maxLength: 200 } },
  required: ['name'],
  additionalProperties: false,
});

interface OrganizationRow {
  id: string;
  name: string;
}

async function ensureTable(): Promise<void> {
  if (!(await db.schema.hasTable(TABLE))) {
    throw new Error(`${TABLE} does not exist: start Kubiki once on this database first (the bench's startup phase does)`);
  }
}

const router = new Router();

router.get('/api/health', (ctx) => {
  ctx.body = { status: 'ok' };
});

router.post('/api/base/organizations', async (ctx) => {
  let input: unknown;
  try {
    input = JSON.parse(await getRawBody(ctx.req, { limit: '1mb', encoding: 'utf-8' }));
  } catch {
    ctx.status = 400;
    ctx.body = { error: 'invalid JSON body' };
    return;
  }
  if (!validateCreate(input)) {
    ctx.status = 400;
    ctx.body = { error: 'validation failed', details: validateCreate.errors };
    return;
  }
  const rows: OrganizationRow[] = await db(TABLE)
    .insert({ id: randomUUID(), name: input.name })
    .returning('*');
  ctx.status = 201;
  ctx.body = rows[0];
});

router.get('/api/base/organizations', async (ctx) => {
  const rows: OrganizationRow[] = await db(TABLE)
    .select('*')
    .orderBy('id')
    .limit(50);
  // Same envelope shape as Kubiki's list endpoint so serialization cost is comparable.
  ctx.body = { data: rows, next: rows.length === 50 ? rows[rows.length - 1].id : null };
});

const app = new Koa();
app.use(router.routes()).use(router.allowedMethods());

await ensureTable();
const server = app.listen(port, '127.0.0.1');

function shutdown(): void {
  server.close();
  void db.destroy().finally(() => process.exit(0));
}
process.on('SIGTERM', shutdown);
process.on('SIGINT', shutdown);
