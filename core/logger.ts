import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * Fields that may hold a credential wherever they appear one or two levels down in a log line
 * (a request body, an error's options): censored even if some code logs them by mistake.
 */
const SECRET_FIELDS = ['password', 'newPassword', 'currentPassword', 'token', 'secret', 'secrets', 'authorization', 'adminToken', 'apiKey', 'smtpUrl', 'secretKey'];
const REDACT = SECRET_FIELDS.flatMap((f) => [f, `*.${f}`, `*.*.${f}`]);

export function createLogger(level: string, destination?: DestinationStream): Logger {
  const options = { level, base: { app: 'kubiki' }, timestamp: pino.stdTimeFunctions.isoTime, redact: { paths: REDACT, censor: '[redacted]' } };
  return destination ? pino(options, destination) : pino(options);
}
