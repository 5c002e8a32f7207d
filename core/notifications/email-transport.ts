import { createHash } from 'node:crypto';
import type { Transporter } from 'nodemailer';

export interface EmailAttachment {
  filename: string;
  contentType: string;
  content: Buffer;
}

export interface EmailMessage {
  to: string;
  subject: string;
  text: string;
  attachments: EmailAttachment[];
  idempotencyKey: string;
}

export interface EmailTransport {
  send(message: EmailMessage): Promise<{ messageId: string }>;
  close(): void;
}

/**
 * Email through nodemailer to the SMTP server of `KUBIKI_SMTP_URL`. The Message-ID is derived from
 * the idempotency key, so a receiving system can recognise a resend of the same notification.
 */
export function smtpTransport(url: string, from: string): EmailTransport {
  // nodemailer is loaded with the first e-mail, not at every start.
  let transporter: Promise<Transporter> | undefined;
  const connect = () => (transporter ??= import('nodemailer').then(({ default: nodemailer }) => nodemailer.createTransport({
    url,
    // An unreachable server fails the send in seconds rather than the default two minutes.
    connectionTimeout: 10_000,
    greetingTimeout: 10_000,
    socketTimeout: 30_000,
  })));
  return {
    async send(message) {
      const domain = from.includes('@') ? from.slice(from.lastIndexOf('@') + 1).replace(/[>\s]/g, '') || 'kubiki' : 'kubiki';
      const info = await (await connect()).sendMail({
        from,
        to: message.to,
        subject: message.subject,
        text: message.text,
        messageId: `<${createHash('sha256').update(message.idempotencyKey).digest('hex').slice(0, 32)}@${domain}>`,
        headers: { 'X-Kubiki-Idempotency-Key': message.idempotencyKey },
        attachments: message.attachments.map((a) => ({ filename: a.filename, contentType: a.contentType, content: a.content })),
      });
      return { messageId: String(info.messageId) };
    },
    close() {
      void transporter?.then((t) => t.close());
    },
  };
}
