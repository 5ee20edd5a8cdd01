/**
 * A stand-in for Dropbox: the two API calls the integration uses, shaped like Dropbox's
 * (https://www.dropbox.com/developers/documentation/http/documentation):
 *   POST /2/files/list_folder  {"path": "/inbox"}           → { entries: [...], cursor, has_more }
 *   POST /2/files/download     Dropbox-API-Arg: {"path": …} → the file, metadata in Dropbox-API-Result
 * The bearer token says whose Dropbox it is: each account sees only its own folder under
 * ./dropbox/<account>. A missing or unknown token is 401 invalid_access_token.
 * (Real Dropbox sends downloads as application/octet-stream; this one says application/xml so
 * Berth's http step hands the XML on as text.)
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { accountOf } from './accounts.mjs';
import { listen, readBody, sendJson } from './http.mjs';

// A service runs in its own directory (LAMBDA_TASK_ROOT is the folder of this file).
const ROOT = path.join(process.env.LAMBDA_TASK_ROOT ?? process.cwd(), 'dropbox');

export async function start() {
  await listen('dropbox stand-in', handle, 4710);
}

async function handle(req, res) {
  const body = await readBody(req);
  const account = accountOf(req.headers.authorization, 'DROPBOX_TOKEN');
  if (!account) {
    console.log(`${req.method} ${req.url}: 401, unknown access token`);
    return sendJson(res, 401, { error_summary: 'invalid_access_token/', error: { '.tag': 'invalid_access_token' } });
  }
  if (req.method === 'POST' && req.url === '/2/files/list_folder') {
    const folder = resolve(account, JSON.parse(body || '{}').path ?? '');
    if (!folder) return notFound(res);
    const names = (await readdir(folder.full).catch(() => [])).sort();
    const entries = await Promise.all(names.map(async (name) => metadata(account, path.posix.join(folder.display, name))));
    console.log(`${account}: listed ${folder.display} (${entries.length} entries)`);
    return sendJson(res, 200, { entries, cursor: `cursor-${account}-${entries.length}`, has_more: false });
  }
  if (req.method === 'POST' && req.url === '/2/files/download') {
    let arg;
    try {
      arg = JSON.parse(String(req.headers['dropbox-api-arg'] ?? ''));
    } catch {
      return sendJson(res, 400, { error_summary: 'Dropbox-API-Arg header missing or not JSON' });
    }
    const file = resolve(account, arg.path ?? '');
    const contents = file && (await readFile(file.full).catch(() => undefined));
    if (!contents) return notFound(res);
    console.log(`${account}: downloaded ${file.display}`);
    res.writeHead(200, { 'content-type': 'application/xml; charset=utf-8', 'dropbox-api-result': JSON.stringify(await metadata(account, file.display)) });
    return res.end(contents);
  }
  sendJson(res, 404, { error_summary: `no such endpoint: ${req.method} ${req.url}` });
}

/** A Dropbox path inside the account's own folder, or undefined if it tries to leave it. */
function resolve(account, dropboxPath) {
  const display = path.posix.normalize(`/${dropboxPath}`);
  if (display.includes('..')) return undefined;
  return { display, full: path.join(ROOT, account, display) };
}

async function metadata(account, display) {
  const info = await stat(path.join(ROOT, account, display));
  const name = path.posix.basename(display);
  return {
    '.tag': info.isDirectory() ? 'folder' : 'file',
    name,
    id: `id:${account}-${name}`,
    path_lower: display.toLowerCase(),
    path_display: display,
    ...(info.isFile() ? { size: info.size, server_modified: info.mtime.toISOString().replace(/\.\d+Z$/, 'Z') } : {}),
  };
}

function notFound(res) {
  sendJson(res, 409, { error_summary: 'path/not_found/', error: { '.tag': 'path', path: { '.tag': 'not_found' } } });
}
