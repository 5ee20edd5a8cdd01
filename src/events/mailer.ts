/** Sends mail for email subscriptions (and so flow alerts) through the project's `smtp:` server. */
import nodemailer from 'nodemailer';
import type { SmtpSpec } from '../types.js';

export interface Mailer {
  send(mail: { to: string[]; subject: string; text: string }): Promise<void>;
}

const SMTP_TIMEOUT_MS = 15_000;

export function smtpMailer(smtp: SmtpSpec): Mailer {
  const transport = nodemailer.createTransport({
    host: smtp.host,
    port: smtp.port,
    secure: smtp.secure,
    ...(smtp.auth ? { auth: smtp.auth } : {}),
    connectionTimeout: SMTP_TIMEOUT_MS,
    greetingTimeout: SMTP_TIMEOUT_MS,
    socketTimeout: SMTP_TIMEOUT_MS,
  });
  return {
    async send(mail) {
      await transport.sendMail({ from: smtp.from, ...mail });
    },
  };
}
