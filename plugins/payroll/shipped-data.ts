import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SYSTEM, isKubikiError, type PluginContext } from 'kubiki/plugin';

// Rates and calendars ship as data files beside the plugin: parameters/*.json ({"parameters": [...]},
// each with the date it applies from) and calendars/*.json (one production calendar each). At every
// start the plugin adds the ones the database lacks — through the repository, so they are validated
// and audited like any record — and never changes a value an admin edited: a new year's rates are a
// new file (or a new record), never an edit of the old one.

const here = path.dirname(fileURLToPath(import.meta.url));

const readJson = (file: string): unknown => JSON.parse(fs.readFileSync(file, 'utf8'));
const filesIn = (dir: string): string[] => (fs.existsSync(dir) ? fs.readdirSync(dir).filter((f) => f.endsWith('.json')).sort().map((f) => path.join(dir, f)) : []);

async function createIfMissing(ctx: PluginContext, entity: string, record: Record<string, unknown>): Promise<boolean> {
  try {
    await ctx.repository(entity).create(record, { actor: SYSTEM });
    return true;
  } catch (error) {
    // Loaded by another instance at the same moment.
    if (isKubikiError(error) && error.code === 'unique-violation') return false;
    throw error;
  }
}

export async function loadShippedData(ctx: PluginContext): Promise<{ parameters: number; calendars: number }> {
  let parameters = 0;
  let calendars = 0;
  const have = new Set((await ctx.table('payroll_parameters').select('code', 'country', 'validFrom')).map((r: { code: string; country: string; validFrom: unknown }) => `${r.country}:${r.code}:${String(r.validFrom instanceof Date ? r.validFrom.toISOString() : r.validFrom).slice(0, 10)}`));
  for (const file of filesIn(path.join(here, 'parameters'))) {
    const list = (readJson(file) as { parameters: Record<string, unknown>[] }).parameters;
    for (const p of list) {
      if (have.has(`${String(p.country ?? 'RU')}:${String(p.code)}:${String(p.validFrom)}`)) continue;
      if (await createIfMissing(ctx, 'payroll.parameters', p)) parameters++;
    }
  }
  const years = new Set((await ctx.table('payroll_calendars').select('country', 'year')).map((r: { country: string; year: number }) => `${r.country}-${r.year}`));
  for (const file of filesIn(path.join(here, 'calendars'))) {
    const c = readJson(file) as Record<string, unknown>;
    if (years.has(`${String(c.country)}-${String(c.year)}`)) continue;
    if (await createIfMissing(ctx, 'payroll.calendars', c)) calendars++;
  }
  return { parameters, calendars };
}
