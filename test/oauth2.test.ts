/**
 * OAuth2 connections against a token endpoint started here: refresh before expiry,
 * one refresh for concurrent callers, rotated refresh tokens kept, refusals reported;
 * and the same connection stored and used through the `berth secrets` CLI.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync } from 'node:fs';
import { after, test } from 'node:test';
import { SecretStore, type OAuth2Connection } from '../src/secrets/index.js';
import { openSqliteStore, type Store } from '../src/store/index.js';
import { rejection, sleep } from './helpers/lambda.js';
import { makeProject, runCli } from './helpers/project.js';

interface TokenRequest {
  form: URLSearchParams;
  authorization: string | undefined;
  contentType: string | undefined;
}

interface TokenReply {
  status?: number;
  body: unknown;
  delayMs?: number;
}

/** A token endpoint on 127.0.0.1 that records each request and answers with `reply(request, count)`. */
async function tokenEndpoint(reply: (request: TokenRequest, count: number) => TokenReply) {
  const requests: TokenRequest[] = [];
  const server = http.createServer(async (req, res) => {
    let text = '';
    for await (const chunk of req) text += chunk;
    const request = { form: new URLSearchParams(text), authorization: req.headers.authorization, contentType: req.headers['content-type'] };
    requests.push(request);
    const answer = reply(request, requests.length);
    if (answer.delayMs) await sleep(answer.delayMs);
    res.writeHead(answer.status ?? 200, { 'content-type': 'application/json' }).end(JSON.stringify(answer.body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`, requests };
}

/** A SecretStore on a fresh SQLite store, closed after the test file. */
function secretStore(): { secrets: SecretStore; store: Store } {
  const store = openSqliteStore(path.join(mkdtempSync(path.join(os.tmpdir(), 'berth-oauth2-')), '.berth'));
  after(() => store.close());
  return { secrets: new SecretStore(store, randomBytes(32)), store };
}

const connection = (tokenUrl: string, extra: Partial<OAuth2Connection> = {}) =>
  ({ type: 'oauth2', tokenUrl, clientId: 'berth-client', clientSecret: 'client-secret-1', refreshToken: 'refresh-1', ...extra }) as const;

const stored = async (secrets: SecretStore, tenant: string, name: string) => (await secrets.get(tenant, name)) as OAuth2Connection;

test('a token far from expiry is used as stored; one within the 60 s margin is refreshed first', async () => {
  const endpoint = await tokenEndpoint((_request, n) => ({ body: { access_token: `fresh-${n}`, token_type: 'Bearer', expires_in: 3600 } }));
  const { secrets } = secretStore();
  await secrets.set('acme', 'crm', connection(endpoint.url, { accessToken: 'stored-token', expiresAt: Date.now() + 10 * 60_000 }));
  assert.equal(await secrets.accessToken('acme', 'crm'), 'stored-token');
  assert.equal(endpoint.requests.length, 0);

  // 30 s left: inside the margin, so a new token is fetched before anyone gets the old one.
  await secrets.set('acme', 'crm', connection(endpoint.url, { accessToken: 'stored-token', expiresAt: Date.now() + 30_000, scope: 'contacts.read' }));
  const before = Date.now();
  assert.equal(await secrets.accessToken('acme', 'crm'), 'fresh-1');
  assert.equal(endpoint.requests.length, 1);
  const [request] = endpoint.requests;
  assert.equal(request!.contentType, 'application/x-www-form-urlencoded');
  assert.deepEqual(Object.fromEntries(request!.form), { grant_type: 'refresh_token', refresh_token: 'refresh-1', scope: 'contacts.read' });
  assert.equal(request!.authorization, `Basic ${Buffer.from('berth-client:client-secret-1').toString('base64')}`, 'client credentials in HTTP Basic by default');

  const saved = await stored(secrets, 'acme', 'crm');
  assert.equal(saved.accessToken, 'fresh-1');
  assert.ok(saved.expiresAt! >= before + 3_600_000 - 1000 && saved.expiresAt! <= Date.now() + 3_600_000, 'expiry from expires_in');
  assert.equal(saved.refreshToken, 'refresh-1', 'kept when the server does not rotate it');
  assert.equal(await secrets.accessToken('acme', 'crm'), 'fresh-1', 'the stored token is used from then on');
  assert.equal(endpoint.requests.length, 1);
});

test('10 concurrent callers share one refresh: the endpoint is asked once', async () => {
  const endpoint = await tokenEndpoint(() => ({ body: { access_token: 'shared-token', expires_in: 600 }, delayMs: 150 }));
  const { secrets } = secretStore();
  await secrets.set('acme', 'crm', connection(endpoint.url));
  const tokens = await Promise.all(Array.from({ length: 10 }, () => secrets.accessToken('acme', 'crm')));
  assert.deepEqual(tokens, Array(10).fill('shared-token'));
  assert.equal(endpoint.requests.length, 1);
  // A connection of another tenant with the same name is its own refresh.
  await secrets.set('globex', 'crm', connection(endpoint.url));
  assert.equal(await secrets.accessToken('globex', 'crm'), 'shared-token');
  assert.equal(endpoint.requests.length, 2);
});

test('a rotated refresh token is stored and sent next time; client credentials in the body when asked', async () => {
  const endpoint = await tokenEndpoint((_request, n) => ({
    // expires_in 30: already inside the margin, so every call refreshes.
    body: { access_token: `access-${n}`, expires_in: 30, refresh_token: `refresh-${n + 1}` },
  }));
  const { secrets } = secretStore();
  await secrets.set('acme', 'crm', connection(endpoint.url, { clientAuth: 'body' }));
  assert.equal(await secrets.accessToken('acme', 'crm'), 'access-1');
  assert.equal((await stored(secrets, 'acme', 'crm')).refreshToken, 'refresh-2');
  assert.equal(await secrets.accessToken('acme', 'crm'), 'access-2');
  assert.deepEqual(
    endpoint.requests.map((r) => r.form.get('refresh_token')),
    ['refresh-1', 'refresh-2'],
  );
  assert.equal((await stored(secrets, 'acme', 'crm')).refreshToken, 'refresh-3');
  assert.equal(endpoint.requests[0]!.authorization, undefined);
  assert.equal(endpoint.requests[0]!.form.get('client_id'), 'berth-client');
  assert.equal(endpoint.requests[0]!.form.get('client_secret'), 'client-secret-1');
});

test('a refusal is an error with the status and OAuth error; nothing is stored and the next call asks again', async () => {
  const endpoint = await tokenEndpoint((_request, n) =>
    n === 1 ? { status: 400, body: { error: 'invalid_grant', error_description: 'Token has been expired or revoked.' } } : { status: 503, body: 'maintenance' },
  );
  const { secrets } = secretStore();
  await secrets.set('acme', 'crm', connection(endpoint.url));
  const callers = await Promise.all(Array.from({ length: 3 }, () => rejection(secrets.accessToken('acme', 'crm'))));
  assert.equal(endpoint.requests.length, 1, 'concurrent callers share the failure too');
  for (const err of callers) {
    assert.equal(err.code, 'BERTH_ERR_OAUTH_REFRESH_FAILED');
    assert.equal(err.status, 502);
  }
  const message = callers[0]!.message;
  assert.match(message, /OAuth2 connection "crm" \(tenant "acme"\)/);
  assert.ok(message.includes(`${endpoint.url} answered 400 (invalid_grant: Token has been expired or revoked.)`), message);
  assert.match(message, /berth secrets set-oauth2 acme crm/);
  assert.doesNotMatch(message, /client-secret-1|refresh-1/, 'no credential in the error');
  assert.equal((await stored(secrets, 'acme', 'crm')).accessToken, undefined);

  const second = await rejection(secrets.accessToken('acme', 'crm'));
  assert.match(second.message, /answered 503 \("maintenance"\)/);
  assert.equal(endpoint.requests.length, 2);

  const unreachable = connection('http://127.0.0.1:9/oauth/token');
  await secrets.set('acme', 'gone', unreachable);
  assert.match((await rejection(secrets.accessToken('acme', 'gone'))).message, /http:\/\/127\.0\.0\.1:9\/oauth\/token could not be reached/);
});

test('resolve: values as stored, connections as access tokens; a missing secret names itself, the tenant and the fix', async () => {
  const endpoint = await tokenEndpoint(() => ({ body: { access_token: 'resolved-token', expires_in: 3600 } }));
  const { secrets } = secretStore();
  await secrets.set('acme', 'db-password', 'hunter2hunter2');
  await secrets.set('acme', 'crm', connection(endpoint.url));
  assert.deepEqual(await secrets.resolve('acme', ['db-password', 'crm']), { 'db-password': 'hunter2hunter2', crm: 'resolved-token' });
  assert.deepEqual(await secrets.resolve('acme', []), {});

  const missing = await rejection(secrets.resolve('acme', ['db-password', 'slack-token']));
  assert.equal(missing.code, 'BERTH_ERR_SECRET_NOT_FOUND');
  assert.match(missing.message, /Tenant "acme" has no secret "slack-token"\. Set it with `berth secrets set acme slack-token`/);
  const otherTenant = await rejection(secrets.resolve('globex', ['db-password']));
  assert.match(otherTenant.message, /Tenant "globex" has no secret "db-password"/);

  const notOAuth = await rejection(secrets.accessToken('acme', 'db-password'));
  assert.match(notOAuth.message, /is a plain value, not an OAuth2 connection/);
  const invalid = await rejection(secrets.set('acme', 'bad', { type: 'oauth2', tokenUrl: 'ftp://x', clientId: 'a', clientSecret: 'b' } as never));
  assert.equal(invalid.code, 'BERTH_ERR_BAD_REQUEST');
  assert.match(invalid.message, /tokenUrl: Invalid URL; refreshToken is missing/);
});

test('berth secrets set-oauth2 (flags, and credentials as JSON on stdin); get prints a current access token', async () => {
  const endpoint = await tokenEndpoint((request) => ({ body: { access_token: `cli-token-for-${request.form.get('refresh_token')}`, expires_in: 3600 } }));
  const dir = makeProject({ 'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n', 'hello.mjs': 'export const handler = async () => 1;\n' });
  const env = { BERTH_MASTER_KEY: randomBytes(32).toString('hex'), BERTH_MASTER_KEY_FILE: undefined };
  const cli = (args: string[], input?: string) => runCli(['secrets', ...args], { cwd: dir, env, ...(input !== undefined ? { input } : {}) });

  let result = await cli(['set-oauth2', 'acme', 'crm', '--token-url', endpoint.url, '--client-id', 'id-1', '--client-secret', 'secret-1', '--refresh-token', 'from-flags']);
  assert.equal(result.code, 0, result.stderr);
  assert.equal((await cli(['get', 'acme', 'crm'])).stdout, 'cli-token-for-from-flags\n');

  // The credentials kept out of the command line: on stdin, merged with the flags.
  result = await cli(['set-oauth2', 'acme', 'hubspot', '--token-url', endpoint.url, '--client-id', 'id-2', '--client-auth', 'body'], '{"clientSecret":"secret-2","refreshToken":"from-stdin"}');
  assert.equal(result.code, 0, result.stderr);
  assert.equal((await cli(['get', 'acme', 'hubspot'])).stdout, 'cli-token-for-from-stdin\n');
  assert.equal(endpoint.requests.at(-1)!.form.get('client_secret'), 'secret-2');
  assert.match((await cli(['list', 'acme'])).stdout, /crm\s+oauth2\s+.*\nhubspot\s+oauth2/);

  result = await cli(['set-oauth2', 'acme', 'broken', '--token-url', endpoint.url], '');
  assert.equal(result.code, 1);
  assert.match(result.stderr, /error BERTH_ERR_BAD_REQUEST\nstdin is not valid JSON \(it is empty\)\. The fields not given as flags/);
  result = await cli(['set-oauth2', 'acme', 'broken', '--token-url', endpoint.url], '{"clientId":"x"}');
  assert.match(result.stderr, /clientSecret is missing; refreshToken is missing/);
});
