/**
 * How a secret is sealed: AES-256-GCM with a random 12-byte IV per write and its
 * 16-byte authentication tag kept, under a key derived from the master key. The
 * tenant, name and kind are the associated data, so a ciphertext copied to another
 * tenant or name, or relabelled, fails authentication instead of decrypting.
 */
import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { BerthError } from '../errors.js';
import type { SecretRecord } from '../store/index.js';

/** What a ciphertext is bound to. */
export type Binding = Pick<SecretRecord, 'tenant' | 'name' | 'kind'>;
/** The sealed parts of a secret, as the store keeps them. */
export type Sealed = Pick<SecretRecord, 'ciphertext' | 'iv' | 'tag' | 'keyId'>;

const ALGORITHM = 'aes-256-gcm';
const IV_BYTES = 12;
// Fixed, so a truncated tag in the store is refused rather than checked on fewer bits.
const TAG_BYTES = 16;

export class SecretCipher {
  /** A fingerprint of the master key, stored with each secret: a wrong key is told apart from a damaged value. */
  readonly keyId: string;
  private readonly key: Buffer;

  constructor(masterKey: Buffer) {
    // Two keys derived for two uses, so the fingerprint in the store says nothing about the encryption key.
    this.key = derive(masterKey, 'berth secrets aes-256-gcm v1', 32);
    this.keyId = derive(masterKey, 'berth secrets key id v1', 8).toString('hex');
  }

  seal(binding: Binding, plaintext: string): Sealed {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv(ALGORITHM, this.key, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(associatedData(binding));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return { ciphertext, iv, tag: cipher.getAuthTag(), keyId: this.keyId };
  }

  open(secret: Binding & Sealed): string {
    const unreadable = (problem: string) => new BerthError('BERTH_ERR_SECRET_UNREADABLE', { tenant: secret.tenant, name: secret.name, problem });
    if (secret.keyId !== this.keyId) {
      throw unreadable(
        `it was encrypted with another master key (key id ${secret.keyId}; the key set now has id ${this.keyId}). Set BERTH_MASTER_KEY or BERTH_MASTER_KEY_FILE to the key it was written with.`,
      );
    }
    try {
      const decipher = createDecipheriv(ALGORITHM, this.key, secret.iv, { authTagLength: TAG_BYTES });
      decipher.setAAD(associatedData(secret));
      decipher.setAuthTag(secret.tag);
      return Buffer.concat([decipher.update(secret.ciphertext), decipher.final()]).toString('utf8');
    } catch {
      throw unreadable(
        `its stored ciphertext fails authentication, so it was altered or copied from another tenant or name. Set it again with \`berth secrets set ${secret.tenant} ${secret.name}\`.`,
      );
    }
  }
}

/**
 * The master key: BERTH_MASTER_KEY, else the file BERTH_MASTER_KEY_FILE names. There is
 * deliberately no default key file and no generated key: a key kept in the data directory
 * would travel with every copy and backup of the database it is meant to protect.
 */
export function loadMasterKey(env: NodeJS.ProcessEnv = process.env): Buffer {
  if (env.BERTH_MASTER_KEY) return parseKey(env.BERTH_MASTER_KEY, 'BERTH_MASTER_KEY');
  const file = env.BERTH_MASTER_KEY_FILE;
  if (!file) {
    throw new BerthError('BERTH_ERR_MASTER_KEY', { problem: 'No master key is set: neither BERTH_MASTER_KEY nor BERTH_MASTER_KEY_FILE is in the environment.' });
  }
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new BerthError('BERTH_ERR_MASTER_KEY', { problem: `BERTH_MASTER_KEY_FILE names ${file}, which cannot be read (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}).` });
  }
  return parseKey(text, `the file ${file} (BERTH_MASTER_KEY_FILE)`);
}

/** 64 hex characters or 32 bytes in base64 (either alphabet). The key itself never appears in an error. */
function parseKey(text: string, source: string): Buffer {
  const key = text.trim();
  if (/^[0-9a-fA-F]{64}$/.test(key)) return Buffer.from(key, 'hex');
  if (/^[A-Za-z0-9+/_-]{43}=?$/.test(key)) return Buffer.from(key, 'base64');
  throw new BerthError('BERTH_ERR_MASTER_KEY', {
    problem: `The master key in ${source} is not a 32-byte key: expected 64 hex characters or 44 base64 characters, found ${key.length} characters.`,
  });
}

function derive(masterKey: Buffer, purpose: string, bytes: number): Buffer {
  return Buffer.from(hkdfSync('sha256', masterKey, Buffer.alloc(0), purpose, bytes));
}

/** An unambiguous encoding (JSON), so no two different bindings give the same bytes. */
function associatedData(binding: Binding): Buffer {
  return Buffer.from(JSON.stringify(['berth-secret', binding.tenant, binding.name, binding.kind]));
}
