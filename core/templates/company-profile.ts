import type { Database } from '../db/database.ts';
import { KubikiError } from '../errors.ts';
import type { Principal } from '../auth/principal.ts';
import { lazyValidator, toFieldIssues } from '../entities/ajv.ts';
import { writeAudit } from '../audit/audit-trail.ts';

/** The company printing documents: the letterhead, legal ids and bank details every template sees. */
export const companyProfileSchema = {
  type: 'object',
  additionalProperties: false,
  properties: {
    name: { type: 'string', maxLength: 200 },
    legalName: { type: 'string', maxLength: 300 },
    inn: { type: 'string', format: 'ru-inn' },
    kpp: { type: 'string', format: 'ru-kpp' },
    ogrn: { type: 'string', format: 'ru-ogrn' },
    vatNumber: { type: 'string', maxLength: 50 },
    address: { type: 'string', maxLength: 500 },
    postalAddress: { type: 'string', maxLength: 500 },
    phone: { type: 'string', maxLength: 50 },
    email: { type: 'string', format: 'email' },
    website: { type: 'string', format: 'uri' },
    director: { type: 'string', maxLength: 200 },
    chiefAccountant: { type: 'string', maxLength: 200 },
    bank: {
      type: 'object',
      additionalProperties: false,
      properties: {
        name: { type: 'string', maxLength: 300 },
        bik: { type: 'string', pattern: '^[0-9]{9}$', 'x-format-hint': 'a BIK of 9 digits' },
        account: { type: 'string', pattern: '^[0-9]{20}$', 'x-format-hint': 'an account number of 20 digits' },
        correspondentAccount: { type: 'string', pattern: '^[0-9]{20}$', 'x-format-hint': 'an account number of 20 digits' },
        swift: { type: 'string', pattern: '^[A-Z0-9]{8}([A-Z0-9]{3})?$', 'x-format-hint': 'a SWIFT/BIC code of 8 or 11 capital letters and digits' },
        iban: { type: 'string', maxLength: 34 },
      },
    },
    // Documents may not load anything from outside, so the logo travels inside them.
    logo: { type: 'string', pattern: '^data:image/(png|jpeg|svg\\+xml|webp);base64,[A-Za-z0-9+/=]+$', 'x-format-hint': 'a data: URL of a PNG, JPEG, SVG or WebP image in base64', maxLength: 700000 },
  },
} as const;

export type CompanyProfile = Record<string, unknown>;

const validator = lazyValidator<CompanyProfile>(companyProfileSchema);

/** JSON with object keys sorted: jsonb hands back nested objects (bank) with its own key order. */
const canonical = (value: unknown): string => JSON.stringify(value, (_key, v: unknown) =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) : v);

export class CompanyProfiles {
  constructor(private readonly db: Database) {}

  async get(): Promise<CompanyProfile> {
    const row = await this.db.table('kubiki_settings').where({ key: 'company' }).first('value');
    return (row?.value as CompanyProfile | undefined) ?? {};
  }

  /** Replaces the profile as a whole (PUT semantics); audited with the fields that changed. */
  async put(body: unknown, actor: Principal, requestId?: string): Promise<CompanyProfile> {
    const validate = validator();
    if (!validate(body)) {
      const issues = toFieldIssues(validate.errors);
      throw new KubikiError('validation-failed', issues.map((i) => i.message).join('; '), { issues });
    }
    const profile = body as CompanyProfile;
    await this.db.knex.transaction(async (trx) => {
      const before = ((await this.db.table('kubiki_settings', trx).where({ key: 'company' }).forUpdate().first('value'))?.value ?? {}) as CompanyProfile;
      await this.db.table('kubiki_settings', trx).insert({ key: 'company', value: JSON.stringify(profile), updated_by: actor.userId })
        .onConflict('key').merge({ value: JSON.stringify(profile), updated_by: actor.userId, updated_at: trx.fn.now() });
      const changes: Record<string, { before: unknown; after: unknown }> = {};
      for (const key of new Set([...Object.keys(before), ...Object.keys(profile)])) {
        if (canonical(before[key]) !== canonical(profile[key])) changes[key] = { before: key === 'logo' ? '(image)' : before[key] ?? null, after: key === 'logo' ? '(image)' : profile[key] ?? null };
      }
      await writeAudit(this.db, trx, { actor, action: 'updated', plugin: 'core', entity: 'settings', recordId: 'company', changes, requestId });
    });
    return profile;
  }
}
