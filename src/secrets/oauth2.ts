/**
 * OAuth2 connections: a client's credentials and refresh token, kept as one secret,
 * and the refresh_token grant (RFC 6749 §6) that turns them into an access token.
 */
import { z } from 'zod';
import { BerthError } from '../errors.js';

const connectionSchema = z.strictObject({
  type: z.literal('oauth2').default('oauth2'),
  tokenUrl: z.url({ protocol: /^https?$/ }),
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  refreshToken: z.string().min(1),
  scope: z.string().min(1).optional(),
  /** HTTP Basic is RFC 6749's default, which every server must accept; some only read the body. */
  clientAuth: z.enum(['basic', 'body']).optional(),
  accessToken: z.string().min(1).optional(),
  /** When accessToken expires, epoch ms. */
  expiresAt: z.number().int().optional(),
});

export type OAuth2Connection = z.output<typeof connectionSchema>;
/** What a caller supplies; `type` may be left out. */
export type OAuth2ConnectionInput = z.input<typeof connectionSchema>;

/** Refresh this long before expiry, so a token handed out still works for the request it is for. */
const REFRESH_MARGIN_MS = 60_000;
const REQUEST_TIMEOUT_MS = 10_000;

/** Validates a connection; `where` names where it came from in the error. */
export function parseOAuth2Connection(value: unknown, where: string): OAuth2Connection {
  const parsed = connectionSchema.safeParse(value);
  if (parsed.success) return parsed.data;
  const given = typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  const problems = parsed.error.issues.map((issue) => {
    const field = String(issue.path[0] ?? '');
    if (field === '') return issue.message;
    return given[field] === undefined ? `${field} is missing` : `${field}: ${issue.message}`;
  });
  throw new BerthError('BERTH_ERR_BAD_REQUEST', {
    field: where,
    problem: `is not a valid OAuth2 connection: ${problems.join('; ')}. It needs tokenUrl (http or https), clientId, clientSecret and refreshToken; scope and clientAuth (basic | body) are optional.`,
  });
}

/** Whether the stored access token can still be handed out. */
export function hasValidToken(connection: OAuth2Connection): connection is OAuth2Connection & { accessToken: string } {
  // Without an expiry the token's lifetime is unknown, so it is not trusted.
  return connection.accessToken !== undefined && connection.expiresAt !== undefined && connection.expiresAt - REFRESH_MARGIN_MS > Date.now();
}

/**
 * Asks the token endpoint for a new access token. Returns the connection with it, its
 * expiry, and the new refresh token when the server rotated it (else the old one).
 */
export async function refreshConnection(connection: OAuth2Connection, secret: { tenant: string; name: string }): Promise<OAuth2Connection & { accessToken: string }> {
  const fail = (problem: string) => new BerthError('BERTH_ERR_OAUTH_REFRESH_FAILED', { ...secret, url: connection.tokenUrl, problem });
  const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: connection.refreshToken });
  if (connection.scope) form.set('scope', connection.scope);
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' };
  if (connection.clientAuth === 'body') {
    form.set('client_id', connection.clientId);
    form.set('client_secret', connection.clientSecret);
  } else {
    // RFC 6749 §2.3.1: each part is form-encoded before the two are joined and base64-encoded.
    const credentials = `${encodeURIComponent(connection.clientId)}:${encodeURIComponent(connection.clientSecret)}`;
    headers.authorization = `Basic ${Buffer.from(credentials).toString('base64')}`;
  }
  const sentAt = Date.now();
  let status: number;
  let text: string;
  try {
    const response = await fetch(connection.tokenUrl, { method: 'POST', headers, body: form, signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS) });
    status = response.status;
    text = await response.text();
  } catch (err) {
    throw fail(`could not be reached (${(err as Error).cause ?? (err as Error).message})`);
  }
  const body = parseJsonObject(text);
  if (status < 200 || status >= 300) {
    const reason = typeof body.error === 'string' ? [body.error, body.error_description].filter((s) => typeof s === 'string').join(': ') : text.slice(0, 200) || 'an empty body';
    throw fail(`answered ${status} (${reason})`);
  }
  if (typeof body.access_token !== 'string' || body.access_token === '') throw fail(`answered ${status} without an access_token`);
  const expiresIn = Number(body.expires_in);
  // Counted from when the request was sent: the token cannot have been issued earlier.
  const expiresAt = body.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0 ? sentAt + Math.floor(expiresIn * 1000) : undefined;
  const { expiresAt: _old, ...rest } = connection;
  return {
    ...rest,
    accessToken: body.access_token,
    ...(expiresAt !== undefined ? { expiresAt } : {}),
    refreshToken: typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : connection.refreshToken,
  };
}

function parseJsonObject(text: string): Record<string, unknown> {
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}
