/**
 * Secrets through the real `berth secrets` CLI: the round trip, what lands on disk,
 * master-key errors, tampering and tenant binding detected, use beside a running
 * server; and redaction of values from text.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { redact, Redactor } from '../src/secrets/index.js';
import { waitForText } from './helpers/cli.js';
import { berthHome, makeProject, runCli, spawnCli, type CliOptions } from './helpers/project.js';

const PROJECT = { 'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n', 'hello.mjs': 'export const handler = async () => "hi";\n' };

/** A project and the `berth secrets` command run in it with one master key. */
function secretsProject(key = randomBytes(32).toString('hex')) {
  const dir = makeProject(PROJECT);
  const cli = (args: string[], options: CliOptions = {}) =>
    runCli(['secrets', ...args], { cwd: dir, ...options, env: { BERTH_MASTER_KEY: key, BERTH_MASTER_KEY_FILE: undefined, ...options.env } });
  return { dir, key, cli, dbFile: path.join(dir, '.berth', 'berth.db') };
}

/** Runs `body` against the project's SQLite file, opened beside (not through) Berth. */
function withDb<T>(file: string, body: (db: Database.Database) => T): T {
  const db = new Database(file);
  try {
    return body(db);
  } finally {
    db.close();
  }
}

function assertFails(result: { code: number | null; stderr: string }, code: string, ...patterns: RegExp[]): void {
  assert.equal(result.code, 1, `expected failure, got ${result.code}: ${result.stderr}`);
  assert.match(result.stderr, new RegExp(`error ${code}\\b`));
  for (const pattern of patterns) assert.match(result.stderr, pattern);
}

describe('berth secrets', () => {
  test('set (argument, stdin, "-"), get, list without values, rm', async () => {
    const { cli } = secretsProject();
    let result = await cli(['set', 'acme', 'db-password', 'hunter2-from-argument']);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /stored secret "db-password" for tenant "acme"/);
    // From stdin: one trailing newline (what `echo` adds) is dropped, the rest kept.
    assert.equal((await cli(['set', 'acme', 'pem'], { input: 'line one\nline two\n' })).code, 0);
    assert.equal((await cli(['set', 'acme', 'api-key', '-'], { input: 'key-from-stdin\n' })).code, 0);

    assert.equal((await cli(['get', 'acme', 'db-password'])).stdout, 'hunter2-from-argument\n');
    assert.equal((await cli(['get', 'acme', 'pem'])).stdout, 'line one\nline two\n');
    assert.equal((await cli(['get', 'acme', 'api-key'])).stdout, 'key-from-stdin\n');

    result = await cli(['list', 'acme']);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.trim().split('\n');
    assert.match(lines[0]!, /^NAME\s+KIND\s+UPDATED$/);
    assert.deepEqual(
      lines.slice(1).map((line) => line.split(/\s+/).slice(0, 2)),
      [['api-key', 'value'], ['db-password', 'value'], ['pem', 'value']],
    );
    assert.match(lines[1]!, /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.doesNotMatch(result.stdout, /hunter2|key-from-stdin|line one/);
    assert.match((await cli(['list', 'globex'])).stdout, /No secrets for tenant "globex"/);

    result = await cli(['rm', 'acme', 'db-password']);
    assert.equal(result.code, 0, result.stderr);
    assertFails(await cli(['get', 'acme', 'db-password']), 'BERTH_ERR_SECRET_NOT_FOUND', /Tenant "acme" has no secret "db-password"/, /berth secrets set acme db-password/);
    assertFails(await cli(['rm', 'acme', 'db-password']), 'BERTH_ERR_SECRET_NOT_FOUND');
    assertFails(await cli(['set', 'acme', 'empty'], { input: '' }), 'BERTH_ERR_BAD_REQUEST', /empty value/);
  });

  test('names, tenants and arguments are checked, with the rule in the error', async () => {
    const { cli } = secretsProject();
    assertFails(await cli(['set', 'acme', 'bad name!', 'x1234']), 'BERTH_ERR_INVALID_SECRET_NAME', /"bad name!"/, /A-Z a-z 0-9 \. _ -/);
    assertFails(await cli(['set', 'bad tenant', 'name', 'x1234']), 'BERTH_ERR_INVALID_TENANT', /"bad tenant"/);
    assertFails(await cli(['get', 'acme']), 'BERTH_ERR_BAD_REQUEST', /takes <tenant> <name>, got 1 argument/);
    assertFails(await cli(['show', 'acme']), 'BERTH_ERR_BAD_REQUEST', /set, get, list, rm, set-oauth2/);
    assertFails(await runCli(['secrets', 'list', 'acme'], { cwd: makeProject({}) }), 'BERTH_ERR_BAD_REQUEST', /no berth\.yml/, /--dir <project>/);
  });

  test('on disk: ciphertext only, a fresh IV per write, a 16-byte tag', async () => {
    const { cli, dbFile } = secretsProject();
    const plaintext = 'canary-plaintext-7f3a91c2';
    assert.equal((await cli(['set', 'acme', 'canary', plaintext])).code, 0);
    const first = withDb(dbFile, (db) => db.prepare("SELECT * FROM secrets WHERE tenant = 'acme' AND name = 'canary'").get() as Record<string, Buffer>);
    assert.equal((await cli(['set', 'acme', 'canary', plaintext])).code, 0);
    const second = withDb(dbFile, (db) => db.prepare("SELECT * FROM secrets WHERE tenant = 'acme' AND name = 'canary'").get() as Record<string, Buffer>);

    assert.equal(first.iv!.length, 12);
    assert.equal(first.tag!.length, 16);
    assert.equal(first.ciphertext!.length, Buffer.byteLength(plaintext), 'GCM adds no padding');
    assert.notDeepEqual(first.iv, second.iv, 'every write has its own IV');
    assert.notDeepEqual(first.ciphertext, second.ciphertext);
    for (const file of [dbFile, `${dbFile}-wal`].filter(existsSync)) {
      assert.equal(readFileSync(file).includes(plaintext), false, `${path.basename(file)} holds no plaintext`);
    }
  });

  test('the master key: missing, malformed, from a file, or the wrong one, each with a clear error', async () => {
    const { cli, dir } = secretsProject();
    assert.equal((await cli(['set', 'acme', 'token', 'value-one'])).code, 0);

    const missing = await cli(['get', 'acme', 'token'], { env: { BERTH_MASTER_KEY: undefined } });
    assertFails(missing, 'BERTH_ERR_MASTER_KEY', /No master key is set/, /export BERTH_MASTER_KEY=\$\(openssl rand -hex 32\)/, /BERTH_MASTER_KEY_FILE/);
    assertFails(await cli(['set', 'acme', 'other', 'value-two'], { env: { BERTH_MASTER_KEY: undefined } }), 'BERTH_ERR_MASTER_KEY');
    const malformed = await cli(['get', 'acme', 'token'], { env: { BERTH_MASTER_KEY: 'not-a-key' } });
    assertFails(malformed, 'BERTH_ERR_MASTER_KEY', /BERTH_MASTER_KEY is not a 32-byte key/, /found 9 characters/);
    assert.doesNotMatch(malformed.stderr, /not-a-key/, 'the key itself is never printed');
    const unreadable = await cli(['get', 'acme', 'token'], { env: { BERTH_MASTER_KEY: undefined, BERTH_MASTER_KEY_FILE: path.join(dir, 'no-such.key') } });
    assertFails(unreadable, 'BERTH_ERR_MASTER_KEY', /no-such\.key, which cannot be read \(ENOENT\)/);

    // Listing and deleting need no key: they never touch a value.
    const noKey = { env: { BERTH_MASTER_KEY: undefined } };
    assert.match((await cli(['list', 'acme'], noKey)).stdout, /token\s+value/);

    const other = randomBytes(32);
    const keyFile = path.join(makeProject({}), 'master.key');
    writeFileSync(keyFile, `${other.toString('base64')}\n`);
    const fromFile = { env: { BERTH_MASTER_KEY: undefined, BERTH_MASTER_KEY_FILE: keyFile } };
    const wrong = await cli(['get', 'acme', 'token'], fromFile);
    assertFails(wrong, 'BERTH_ERR_SECRET_UNREADABLE', /Secret "token" of tenant "acme" cannot be decrypted/, /encrypted with another master key \(key id [0-9a-f]{16}; the key set now has id [0-9a-f]{16}\)/);
    assert.equal((await cli(['set', 'acme', 'token', 'value-three'], fromFile)).code, 0);
    assert.equal((await cli(['get', 'acme', 'token'], fromFile)).stdout, 'value-three\n', 'a base64 key in a file works');
    assert.equal((await cli(['get', 'acme', 'token'], { env: { BERTH_MASTER_KEY: other.toString('hex') } })).stdout, 'value-three\n', 'the same key in hex');
    assert.equal((await cli(['rm', 'acme', 'token'], noKey)).code, 0);
  });

  test('a changed ciphertext or tag, or a row moved to another tenant or name, does not decrypt', async () => {
    const { cli, dbFile } = secretsProject();
    for (const [tenant, value] of [['acme', 'acme-api-token-value'], ['globex', 'globex-api-token-value']]) {
      assert.equal((await cli(['set', tenant!, 'api-token', value!])).code, 0);
    }
    assert.equal((await cli(['set', 'acme', 'other-name', 'some-other-value'])).code, 0);
    const authentication = /fails authentication, so it was altered or copied from another tenant or name/;

    // Tenant B's row replaced by tenant A's sealed bytes: same key, same name, other tenant.
    withDb(dbFile, (db) =>
      db.prepare(`UPDATE secrets SET (ciphertext, iv, tag) = (SELECT ciphertext, iv, tag FROM secrets WHERE tenant = 'acme' AND name = 'api-token')
        WHERE tenant = 'globex' AND name = 'api-token'`).run(),
    );
    assertFails(await cli(['get', 'globex', 'api-token']), 'BERTH_ERR_SECRET_UNREADABLE', /Secret "api-token" of tenant "globex"/, authentication);
    assert.equal((await cli(['get', 'acme', 'api-token'])).stdout, 'acme-api-token-value\n', 'the original still decrypts');

    // Moved to another name of the same tenant.
    withDb(dbFile, (db) =>
      db.prepare(`UPDATE secrets SET (ciphertext, iv, tag) = (SELECT ciphertext, iv, tag FROM secrets WHERE tenant = 'acme' AND name = 'api-token')
        WHERE tenant = 'acme' AND name = 'other-name'`).run(),
    );
    assertFails(await cli(['get', 'acme', 'other-name']), 'BERTH_ERR_SECRET_UNREADABLE', authentication);

    // One flipped bit of ciphertext, then of the tag; and a relabelled kind.
    const flip = (column: string) =>
      withDb(dbFile, (db) => {
        const row = db.prepare(`SELECT ${column} AS bytes FROM secrets WHERE tenant = 'acme' AND name = 'api-token'`).get() as { bytes: Buffer };
        row.bytes[0]! ^= 1;
        db.prepare(`UPDATE secrets SET ${column} = ? WHERE tenant = 'acme' AND name = 'api-token'`).run(row.bytes);
      });
    flip('ciphertext');
    assertFails(await cli(['get', 'acme', 'api-token']), 'BERTH_ERR_SECRET_UNREADABLE', authentication, /berth secrets set acme api-token/);
    flip('ciphertext');
    assert.equal((await cli(['get', 'acme', 'api-token'])).code, 0, 'flipped back, it decrypts again');
    flip('tag');
    assertFails(await cli(['get', 'acme', 'api-token']), 'BERTH_ERR_SECRET_UNREADABLE', authentication);
    flip('tag');
    withDb(dbFile, (db) => db.prepare("UPDATE secrets SET kind = 'oauth2' WHERE tenant = 'acme' AND name = 'api-token'").run());
    assertFails(await cli(['get', 'acme', 'api-token']), 'BERTH_ERR_SECRET_UNREADABLE', authentication);
  });

  test('beside a running server: found through its registry entry, written to its data directory', { timeout: 60_000 }, async () => {
    const { dir, key } = secretsProject();
    const home = berthHome();
    const dataDir = path.join(makeProject({}), 'elsewhere-data');
    const server = spawnCli(['start', dir, '--port', '0', '--data', dataDir], { home });
    try {
      const url = /http:\/\/127\.0\.0\.1:\d+/.exec(await waitForText(server.stdout, /Berth listening on http:\/\/127\.0\.0\.1:\d+/, 30_000, 'berth start'))![0];
      const options = { cwd: makeProject({}), home, env: { BERTH_MASTER_KEY: key } };
      const set = await runCli(['secrets', 'set', 'acme', 'live', 'set-while-running', '--dir', dir], options);
      assert.equal(set.code, 0, set.stderr);
      assert.equal((await runCli(['secrets', 'get', 'acme', 'live', '--data', dataDir], options)).stdout, 'set-while-running\n');
      assert.equal(existsSync(path.join(dir, '.berth')), false, 'nothing written to the default data directory');
      assert.equal((await fetch(`${url}/_berth/health`)).status, 200);
    } finally {
      assert.equal(await server.stop(), 0, server.stderr());
    }
  });
});

describe('redaction', () => {
  test('every occurrence of a value, and its JSON-escaped, URL-encoded and base64 forms', () => {
    const secret = 'p@ss "word"\nwith/slash!!'; // 24 bytes: base64 without padding
    const text = [
      `raw ${secret} twice ${secret}`,
      `json ${JSON.stringify({ password: secret })}`,
      `url https://x.test/?token=${encodeURIComponent(secret)}&a=1`,
      `base64 ${Buffer.from(secret).toString('base64')}`,
    ].join('\n');
    assert.equal(
      redact(text, [secret]),
      ['raw *** twice ***', 'json {"password":"***"}', 'url https://x.test/?token=***&a=1', 'base64 ***'].join('\n'),
    );
  });

  test('values shorter than 4 characters are left alone; overlapping values are hidden whole', () => {
    const redactor = new Redactor(['abc', 'abcd1234', '1234wxyz']);
    assert.equal(redactor.redact('abc abcd1234wxyz abc'), 'abc *** abc');
    assert.equal(redactor.redact('no secrets here'), 'no secrets here');
    assert.equal(new Redactor([]).redact('text'), 'text');
    assert.equal(redact('token=tok1tok1tok1', ['tok1']), 'token=***');
  });
});
