/**
 * Sends text messages. No provider ships with the core yet: until one is set
 * (`k.notifications.useSmsProvider(…)`), SMS notifications are held in the outbox.
 */
export interface SmsProvider {
  /** `to` is E.164 (`+79991234567`); the provider must not send twice for one `idempotencyKey`. */
  send(to: string, text: string, idempotencyKey: string): Promise<{ messageId: string }>;
}
