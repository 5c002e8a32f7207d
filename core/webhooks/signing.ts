import { createCipheriv, createDecipheriv, createHash, createHmac, randomBytes } from 'node:crypto';
import type { Database } from '../db/database.ts';
import { KubikiError } from '../errors.ts';

// Standard Webhooks (https://www.standardwebhooks.com): a secret is `whsec_` + base64 of 24–64
// random bytes; a message is signed as HMAC-SHA256 over "<webhook-id>.<webhook-timestamp>.<body>"
// and sent as `webhook-signature: v1,<base64>` — several space-separated while a secret rotates.

const PREFIX = 'whsec_';
export const SECRET_PATTERN = '^whsec_[A-Za-z0-9+/]{32,88}={0,2}$';

export const newSecret = (): string => `${PREFIX}${randomBytes(32).toString('base64')}`;

/** The key bytes of a `whsec_…` secret; throws validation-failed naming `field` for anything else. */
export function secretKey(secret: string, field = 'secret'): Buffer {
  const raw = secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : '';
  const key = Buffer.from(raw, 'base64');
  if (!raw || key.length < 24 || key.length > 64 || key.toString('base64').replace(/=+$/, '') !== raw.replace(/=+$/, '')) {
    throw new KubikiError('validation-failed', `${field} must be whsec_ followed by the base64 of 24 to 64 random bytes`, { issues: [{ field, rule: 'format', message: 'not a whsec_ secret' }] });
  }
  return key;
}

/** `v1,<base64 signature>` for each secret, space-separated: the `webhook-signature` header. */
export function signatureHeader(secrets: readonly string[], messageId: string, timestampSeconds: number, body: string): string {
  return secrets.map((secret) => `v1,${createHmac('sha256', secretKey(secret)).update(`${messageId}.${timestampSeconds}.${body}`).digest('base64')}`).join(' ');
}

/**
 * Webhook secrets must be usable to sign, so they cannot be hashed: they are stored encrypted with
 * AES-256-GCM under KUBIKI_SECRET_KEY (32 bytes in base64, or any passphrase: its SHA-256). Without
 * it a key is generated once and kept in kubiki_meta — enough to keep secrets out of logs and API
 * answers, not out of a database dump; set KUBIKI_SECRET_KEY in production. A stored value names
 * the key it was made with (the first bytes of the key's hash), so a changed key is reported as
 * such instead of as a bad signature.
 */
export class SecretBox {
  private key?: Buffer;

  constructor(private readonly db: Database, private readonly configured: string | undefined) {}

  private static keyOf(raw: string): Buffer {
    const decoded = Buffer.from(raw, 'base64');
    return decoded.length === 32 && decoded.toString('base64').replace(/=+$/, '') === raw.replace(/=+$/, '') ? decoded : createHash('sha256').update(raw, 'utf8').digest();
  }

  private static keyId(key: Buffer): string {
    return createHash('sha256').update(key).digest('hex').slice(0, 8);
  }

  private async loadKey(): Promise<Buffer> {
    if (this.key) return this.key;
    if (this.configured) return (this.key = SecretBox.keyOf(this.configured));
    // Made once per database: the first process to need it stores it, the others read that one.
    await this.db.table('kubiki_meta').insert({ key: 'secret-key', value: JSON.stringify(randomBytes(32).toString('base64')) }).onConflict('key').ignore();
    const row = await this.db.table('kubiki_meta').where({ key: 'secret-key' }).first('value');
    return (this.key = SecretBox.keyOf(String(row.value)));
  }

  async seal(plain: string): Promise<string> {
    const key = await this.loadKey();
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', key, iv);
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return ['v1', SecretBox.keyId(key), iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join('.');
  }

  async open(sealed: string): Promise<string> {
    const key = await this.loadKey();
    const [version, keyId, iv, tag, data] = sealed.split('.');
    if (version !== 'v1' || !data) throw new Error('a stored webhook secret is not in a format this version reads');
    if (keyId !== SecretBox.keyId(key)) throw new Error(`the webhook secret was encrypted with another key (${keyId}); KUBIKI_SECRET_KEY changed — rotate the secret`);
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}
