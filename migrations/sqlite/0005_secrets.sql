-- Secrets per tenant, sealed by src/secrets (AES-256-GCM): no plaintext is ever stored.
-- The tenant, name and kind are the ciphertext's associated data, so a row copied to
-- another tenant or name, or relabelled, no longer decrypts.
CREATE TABLE secrets (
  tenant      TEXT NOT NULL,
  name        TEXT NOT NULL,
  kind        TEXT NOT NULL,          -- value | oauth2
  ciphertext  BLOB NOT NULL,
  iv          BLOB NOT NULL,          -- 12 random bytes, new for every write
  tag         BLOB NOT NULL,          -- GCM authentication tag, 16 bytes
  key_id      TEXT NOT NULL,          -- fingerprint of the master key that sealed it (not the key)
  updated_at  INTEGER NOT NULL,       -- epoch ms
  PRIMARY KEY (tenant, name)
) WITHOUT ROWID;
