/**
 * secrets: per-tenant secrets, encrypted at rest (crypto.ts), OAuth2 connections that
 * refresh their own access tokens (oauth2.ts), and redaction of values from text (redact.ts).
 *
 * What a step that declares `secrets: [a, b]` needs is two calls:
 *   const values = await secrets.resolve(tenant, ['a', 'b']);   // { a: '…', b: '…' }
 *   const redactor = new Redactor(Object.values(values));       // for its logs and outputs
 *
 * Nothing decrypted is cached: every read goes to the store, so `berth secrets set` on a
 * running project takes effect at the next use.
 */
import { BerthError } from '../errors.js';
import type { SecretListing, Store } from '../store/index.js';
import { checkTenantId } from '../tenant-id.js';
import { loadMasterKey, SecretCipher } from './crypto.js';
import { hasValidToken, parseOAuth2Connection, refreshConnection, type OAuth2Connection, type OAuth2ConnectionInput } from './oauth2.js';

export type { OAuth2Connection, OAuth2ConnectionInput } from './oauth2.js';
export { redact, Redactor } from './redact.js';
export type { SecretListing } from '../store/index.js';

/** A plain value, or an OAuth2 connection. */
export type SecretValue = string | OAuth2Connection;

const SECRET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

export class SecretStore {
  private cipher: SecretCipher | undefined;
  /** Token requests in flight, per tenant and name: concurrent callers share one. */
  private readonly refreshing = new Map<string, Promise<string>>();

  /**
   * Without `masterKey`, the key is read from the environment (see loadMasterKey) at the first
   * encrypt or decrypt, so a server holding no secrets runs without one; list and delete never need it.
   */
  constructor(
    private readonly store: Store,
    private readonly masterKey?: Buffer,
  ) {}

  async set(tenant: string, name: string, value: string | OAuth2ConnectionInput): Promise<void> {
    checkNames(tenant, name);
    if (value === '') throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `secret "${name}"`, problem: 'has an empty value; a secret needs at least one character.' });
    const [kind, plaintext] =
      typeof value === 'string' ? ['value', value] : ['oauth2', JSON.stringify(parseOAuth2Connection(value, `secret "${name}"`))];
    const binding = { tenant, name, kind };
    await this.store.putSecret({ ...binding, ...this.key().seal(binding, plaintext), updatedAt: Date.now() });
  }

  /** The value as stored (an OAuth2 connection as its fields), or undefined. */
  async get(tenant: string, name: string): Promise<SecretValue | undefined> {
    checkNames(tenant, name);
    const record = await this.store.getSecret(tenant, name);
    if (!record) return undefined;
    const plaintext = this.key().open(record);
    return record.kind === 'oauth2' ? parseOAuth2Connection(JSON.parse(plaintext), `secret "${name}" of tenant "${tenant}"`) : plaintext;
  }

  /** Names, kinds and update times; never values. */
  async list(tenant: string): Promise<SecretListing[]> {
    checkTenantId(tenant);
    return this.store.listSecrets(tenant);
  }

  /** Whether there was such a secret. */
  async delete(tenant: string, name: string): Promise<boolean> {
    checkNames(tenant, name);
    return this.store.deleteSecret(tenant, name);
  }

  /**
   * What a step declaring these secrets receives, by name: a plain value as it is, an OAuth2
   * connection as a valid access token. A missing one is an error naming it and the fix.
   */
  async resolve(tenant: string, names: readonly string[]): Promise<Record<string, string>> {
    const entries = await Promise.all(
      names.map(async (name) => {
        const value = await this.require(tenant, name);
        return [name, typeof value === 'string' ? value : await this.accessToken(tenant, name)] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /**
   * A valid access token of an OAuth2 connection: the stored one while it is more than 60 s
   * from expiry (REFRESH_MARGIN_MS), else a new one from the token endpoint, which is stored
   * (with the refresh token, if the server rotated it) before it is returned.
   */
  accessToken(tenant: string, name: string): Promise<string> {
    // Keyed by JSON: tenant ids may contain any separator a plain join would use.
    const key = JSON.stringify([tenant, name]);
    let pending = this.refreshing.get(key);
    if (!pending) {
      pending = this.currentToken(tenant, name).finally(() => this.refreshing.delete(key));
      this.refreshing.set(key, pending);
    }
    return pending;
  }

  private async currentToken(tenant: string, name: string): Promise<string> {
    const connection = await this.require(tenant, name);
    if (typeof connection === 'string') {
      throw new BerthError('BERTH_ERR_BAD_REQUEST', {
        field: `secret "${name}" of tenant "${tenant}"`,
        problem: `is a plain value, not an OAuth2 connection. Store a connection with \`berth secrets set-oauth2 ${tenant} ${name} ...\`.`,
      });
    }
    if (hasValidToken(connection)) return connection.accessToken;
    const refreshed = await refreshConnection(connection, { tenant, name });
    await this.set(tenant, name, refreshed);
    return refreshed.accessToken;
  }

  private async require(tenant: string, name: string): Promise<SecretValue> {
    const value = await this.get(tenant, name);
    if (value === undefined) throw new BerthError('BERTH_ERR_SECRET_NOT_FOUND', { tenant, name });
    return value;
  }

  private key(): SecretCipher {
    this.cipher ??= new SecretCipher(this.masterKey ?? loadMasterKey());
    return this.cipher;
  }
}

function checkNames(tenant: string, name: string): void {
  checkTenantId(tenant);
  if (!SECRET_NAME.test(name)) throw new BerthError('BERTH_ERR_INVALID_SECRET_NAME', { name });
}
