/**
 * A stand-in for the third-party API the integration posts to: one account per customer.
 *   POST /v1/accounts/<account>/records   {"records": [...]}, with the account's bearer token → 201
 *   GET  /v1/requests                      every request it got, for you (and the test) to inspect
 * Any other token, or none, is 401 and nothing is stored. Like httpbin, the 201 echoes the
 * Authorization header it got, so a run's history in Berth shows where the token went (as ***).
 */
import { accountOf } from './accounts.mjs';
import { listen, readBody, sendJson } from './http.mjs';

/** Every request, accepted or not, in arrival order (kept in memory; gone on restart). */
const requests = [];

export async function start() {
  await listen('partner API stand-in', handle, 4711);
}

async function handle(req, res) {
  const body = await readBody(req);
  if (req.method === 'GET' && req.url === '/v1/requests') return sendJson(res, 200, { requests });
  const match = /^\/v1\/accounts\/([^/]+)\/records$/.exec(req.url ?? '');
  if (req.method !== 'POST' || !match) return sendJson(res, 404, { error: 'not_found', message: `no such endpoint: ${req.method} ${req.url}` });
  const account = decodeURIComponent(match[1]);
  const authorized = accountOf(req.headers.authorization, 'PARTNER_TOKEN') === account;
  const entry = {
    id: `rec-${requests.length + 1}`,
    account,
    status: authorized ? 201 : 401,
    authorization: req.headers.authorization ?? null,
    body: parse(body),
    at: new Date().toISOString(),
  };
  requests.push(entry);
  if (!authorized) {
    console.log(`POST ${req.url}: 401, not ${account}'s token`);
    return sendJson(res, 401, { error: 'unauthorized', message: `a valid bearer token for account ${account} is required` });
  }
  const records = entry.body?.records;
  if (!Array.isArray(records)) {
    entry.status = 400;
    return sendJson(res, 400, { error: 'bad_request', message: 'expected {"records": [...]}' });
  }
  console.log(`${account}: accepted ${records.length} records as ${entry.id}`);
  sendJson(res, 201, { id: entry.id, account, accepted: records.length, echo: { authorization: entry.authorization } });
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
