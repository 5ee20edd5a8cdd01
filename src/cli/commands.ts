/**
 * The CLI's commands; each returns a process exit code. The server and the store
 * are imported when a command needs them, so `berth send` or `berth ls` against a
 * running instance does not load Fastify, esbuild and SQLite first.
 */
import { readFileSync, watch } from 'node:fs';
import path from 'node:path';
import { loadProject } from '../config/index.js';
import { BerthError } from '../errors.js';
import type { BerthServer } from '../server.js';
import type { StoredLog } from '../store/index.js';
import type { FunctionError } from '../types.js';
import { request, resolveTarget } from './target.js';

export const say = (line: string) => process.stdout.write(`${line}\n`);

/** Columns padded to their widest cell; the last one is left as it is. */
export function printTable(rows: string[][]): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  for (const row of rows) say(row.map((cell, col) => (col === row.length - 1 ? cell : cell.padEnd(widths[col]!))).join('  '));
}

export interface StartFlags {
  dir: string;
  port: number;
  host: string;
  dataDir?: string;
}

export async function start(flags: StartFlags, dev: boolean): Promise<number> {
  const started = performance.now();
  // Listened for from the start: a signal while starting (or just after the URL is printed) is a clean stop once up, not a kill.
  const stopRequested = new Promise<void>((resolve) => {
    process.once('SIGINT', () => resolve());
    process.once('SIGTERM', () => resolve());
  });
  const { startServer } = await import('../server.js');
  const server = await startServer({
    dir: flags.dir,
    port: flags.port,
    host: flags.host,
    ...(flags.dataDir ? { dataDir: flags.dataDir } : {}),
    dev,
    progress: (line) => say(`berth: ${line}`),
  });
  const fns = server.project.functions.size;
  say(`berth: ready in ${Math.round(performance.now() - started)} ms (${fns} function${fns === 1 ? '' : 's'}, data in ${path.relative(process.cwd(), server.dataDir) || '.'})`);
  say(`Berth listening on ${server.url}`);
  const stopWatching = dev ? watchAndReload(server) : () => {};
  await stopRequested;
  stopWatching();
  say('berth: shutting down, finishing running invocations ...');
  await server.close();
  return 0;
}

/** berth dev: rebuild and swap on any change under the project (not its data or dependencies). */
function watchAndReload(server: BerthServer): () => void {
  let timer: NodeJS.Timeout | undefined;
  let reloading = Promise.resolve();
  const ignored = /(^|\/)(node_modules|\.berth|\.git|dist)(\/|$)/;
  const dataDir = path.relative(server.project.dir, server.dataDir);
  const watcher = watch(server.project.dir, { recursive: true }, (_event, file) => {
    if (!file || ignored.test(file) || (dataDir && !dataDir.startsWith('..') && file.startsWith(dataDir))) return;
    clearTimeout(timer);
    timer = setTimeout(() => {
      reloading = reloading.then(async () => {
        const started = performance.now();
        try {
          await server.reload();
          say(`berth: reloaded after change to ${file} in ${Math.round(performance.now() - started)} ms`);
        } catch (err) {
          process.stderr.write(`berth: reload failed, still serving the previous version:\n${formatError(err)}\n`);
        }
      });
    }, 100);
  });
  return () => watcher.close();
}

export interface InvokeFlags {
  functionName: string;
  data?: string;
  file?: string;
  tenant?: string;
  /** Queue the event (Lambda's Event type) and print its invocation id. */
  async?: boolean;
  idempotencyKey?: string;
  url?: string;
  dir?: string;
  dataDir?: string;
}

export async function invoke(flags: InvokeFlags): Promise<number> {
  const event = readJsonInput(flags);
  const target = resolveTarget({ url: flags.url, dir: flags.dir, functionName: flags.functionName });
  const needsServer = flags.async ? '--async' : flags.idempotencyKey !== undefined ? '--idempotency-key' : undefined;
  if (needsServer && target.kind !== 'remote') {
    throw new BerthError('BERTH_ERR_NO_INSTANCE', {
      problem: `\`berth invoke ${needsServer}\` needs a running Berth, and none serves "${flags.functionName}". Start one with \`berth start <dir>\` (or invoke without ${needsServer} to run it in-process).`,
    });
  }

  if (target.kind === 'remote') {
    const response = await request(`${target.url}/2015-03-31/functions/${encodeURIComponent(flags.functionName)}/invocations`, {
      method: 'POST',
      headers: {
        'x-amz-log-type': 'Tail',
        'x-amz-invocation-type': flags.async ? 'Event' : 'RequestResponse',
        ...(flags.tenant ? { 'x-berth-tenant': flags.tenant } : {}),
        ...(flags.idempotencyKey ? { 'x-berth-idempotency-key': flags.idempotencyKey } : {}),
      },
      body: JSON.stringify(event),
    });
    const body = await response.text();
    if (flags.async && response.status === 202) {
      say(JSON.stringify({ invocationId: response.headers.get('x-berth-invocation-id') }, null, 2));
      return 0;
    }
    if (response.status !== 200) {
      const parsed = safeJson(body) as { message?: string; Message?: string } | undefined;
      throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: flags.functionName, problem: `could not be invoked: ${parsed?.message ?? parsed?.Message ?? body}` });
    }
    const log = response.headers.get('x-amz-log-result');
    if (log) process.stderr.write(Buffer.from(log, 'base64').toString('utf8'));
    say(JSON.stringify(safeJson(body), null, 2));
    return response.headers.get('x-amz-function-error') ? 1 : 0;
  }

  // A one-off: queued events of the project wait for `berth start` rather than run here.
  const { openBerth } = await import('../server.js');
  const berth = await openBerth({ dir: target.dir, background: false, ...(flags.dataDir ? { dataDir: flags.dataDir } : {}) });
  try {
    const result = await berth.dispatcher.invoke({
      functionName: flags.functionName,
      event,
      ...(flags.tenant ? { tenantId: flags.tenant } : {}),
      trigger: 'cli',
    });
    process.stderr.write(result.log);
    say(JSON.stringify(result.error ?? result.payload ?? null, null, 2));
    return result.error ? 1 : 0;
  } finally {
    await berth.close();
  }
}

/** The JSON a command sends: --data or --file, parsed, with the error saying how to quote it. */
export function readJsonInput(flags: { data?: string; file?: string }): unknown {
  if (flags.data !== undefined && flags.file !== undefined) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: '--data and --file', problem: 'cannot be used together; pass the input one way.' });
  }
  const payload = flags.file !== undefined ? readFileSync(flags.file, 'utf8') : (flags.data ?? '{}');
  try {
    return JSON.parse(payload);
  } catch (err) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', {
      field: flags.file !== undefined ? `--file ${flags.file}` : '--data',
      problem: `is not valid JSON (${(err as Error).message}). Quote it for your shell, e.g. --data '{"key":"value"}'.`,
    });
  }
}

export interface MessageFlags {
  /** A queue (send) or a topic (publish). */
  name: string;
  data?: string;
  file?: string;
  subject?: string;
  attributes: string[];
  groupId?: string;
  delaySeconds?: number;
  idempotencyKey?: string;
  url?: string;
  dir?: string;
}

/** berth send <queue> / berth publish <topic>: through the running instance's API. */
export async function sendMessage(kind: 'queue' | 'topic', flags: MessageFlags): Promise<number> {
  const value = readJsonInput(flags);
  const text = typeof value === 'string' ? value : JSON.stringify(value);
  const target = resolveTarget({ url: flags.url, dir: flags.dir });
  if (target.kind !== 'remote') {
    throw new BerthError('BERTH_ERR_NO_INSTANCE', { problem: `Sending to a ${kind} needs a running Berth for ${target.dir}. Start it with \`berth start ${target.dir}\`.` });
  }
  const attributes = Object.fromEntries(flags.attributes.map(parseAttribute));
  const body =
    kind === 'queue'
      ? { body: text, attributes, ...(flags.groupId ? { groupId: flags.groupId } : {}), ...(flags.delaySeconds !== undefined ? { delaySeconds: flags.delaySeconds } : {}) }
      : { message: text, attributes, ...(flags.subject ? { subject: flags.subject } : {}) };
  const response = await request(`${target.url}/_berth/${kind === 'queue' ? 'queues' : 'topics'}/${encodeURIComponent(flags.name)}/messages`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(flags.idempotencyKey ? { 'x-berth-idempotency-key': flags.idempotencyKey } : {}) },
    body: JSON.stringify(body),
  });
  const result = (await response.json()) as { message?: string };
  if (!response.ok) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `${kind} "${flags.name}"`, problem: `rejected the message: ${result.message ?? response.status}` });
  say(JSON.stringify(result, null, 2));
  return 0;
}

const ATTRIBUTE_TYPES = ['String', 'Number', 'String.Array'];

/** `--attr name=value` is a String; `--attr name:Number=75` and `--attr tags:String.Array='["a"]'` set the type. */
function parseAttribute(pair: string): [string, { DataType: string; StringValue: string }] {
  const at = pair.indexOf('=');
  const [name = '', type = 'String'] = pair.slice(0, Math.max(at, 0)).split(':');
  if (at <= 0 || name === '') throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `--attr ${pair}`, problem: 'must be name=value or name:Type=value, e.g. --attr kind=hot --attr score:Number=75' });
  if (!ATTRIBUTE_TYPES.includes(type)) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `--attr ${pair}`, problem: `has unknown type "${type}"; use ${ATTRIBUTE_TYPES.join(', ')}` });
  const value = pair.slice(at + 1);
  if (type === 'Number' && !Number.isFinite(Number(value))) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `--attr ${pair}`, problem: `is typed Number but "${value}" is not a number` });
  return [name, { DataType: type, StringValue: value }];
}

export interface LogsFlags {
  functionName: string;
  follow: boolean;
  limit: number;
  url?: string;
  dir?: string;
  dataDir?: string;
}

export async function logs(flags: LogsFlags): Promise<number> {
  const target = resolveTarget({ url: flags.url, dir: flags.dir, functionName: flags.functionName });
  let fetchLogs: (after?: number) => Promise<StoredLog[]>;
  let close = async () => {};
  if (target.kind === 'remote') {
    fetchLogs = async (after) => {
      const query = after === undefined ? `limit=${flags.limit}` : `after=${after}&limit=1000`;
      const response = await request(`${target.url}/_berth/functions/${encodeURIComponent(flags.functionName)}/logs?${query}`);
      const body = (await response.json()) as { logs?: StoredLog[]; message?: string };
      if (!response.ok) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: flags.functionName, problem: body.message ?? 'logs unavailable' });
      return body.logs!;
    };
  } else {
    const { openSqliteStore } = await import('../store/index.js');
    const store = openSqliteStore(flags.dataDir ?? path.join(target.dir, '.berth'));
    close = () => store.close();
    fetchLogs = (after) =>
      store.listLogs({ functionName: flags.functionName, limit: after === undefined ? flags.limit : 1000, ...(after !== undefined ? { afterSeq: after } : {}) });
  }
  try {
    let entries = await fetchLogs();
    let last = 0;
    const print = (list: StoredLog[]) => {
      for (const entry of list) {
        process.stdout.write(entry.text);
        last = entry.seq;
      }
    };
    print(entries);
    if (!flags.follow) return 0;
    let stopped = false;
    process.once('SIGINT', () => (stopped = true));
    process.once('SIGTERM', () => (stopped = true));
    while (!stopped) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      entries = await fetchLogs(last);
      print(entries);
    }
    return 0;
  } finally {
    await close();
  }
}

export async function ls(flags: { url?: string; dir?: string }): Promise<number> {
  const target = resolveTarget(flags);
  interface Row {
    name: string;
    isolation: string;
    routes: string[];
    mode?: string;
    environments?: { ready: number; idle: number; busy: number; starting: number };
    invocations?: { running: number; waiting: number; queued: number; throttles: number; cold: number; warm: number };
    scaling?: { mode: string; desired: number };
  }
  let rows: Row[];
  let where: string;
  if (target.kind === 'remote') {
    const response = await request(`${target.url}/_berth/functions`);
    rows = ((await response.json()) as { functions: Row[] }).functions;
    where = `running at ${target.url}`;
  } else {
    const project = loadProject(target.dir);
    rows = [...project.functions.values()].map((fn) => ({ name: fn.name, isolation: fn.isolation, mode: fn.mode, routes: fn.routes.map((r) => `${r.method} ${r.path}`) }));
    where = `not running (${target.dir})`;
  }
  say(`Berth ${where}`);
  const table = [
    ['FUNCTION', 'MODE', 'ISOLATION', 'DESIRED', 'BUSY', 'IDLE', 'READY', 'STARTING', 'RUNNING', 'QUEUED', 'THROTTLES', 'COLD', 'WARM', 'ROUTES'],
    ...rows.map((row) => [
      row.name,
      row.scaling?.mode ?? row.mode ?? '-',
      row.isolation,
      row.scaling ? String(row.scaling.desired) : '-',
      ...(['busy', 'idle', 'ready', 'starting'] as const).map((k) => (row.environments ? String(row.environments[k]) : '-')),
      ...(['running', 'queued', 'throttles', 'cold', 'warm'] as const).map((k) => (row.invocations ? String(row.invocations[k]) : '-')),
      row.routes.join(', ') || '-',
    ]),
  ];
  printTable(table);
  return 0;
}

/** `berth limits`: what is in force and what runs against it; `berth limits set k=v ...` changes it live. */
export async function limits(flags: { assignments: string[]; url?: string; dir?: string }): Promise<number> {
  const target = resolveTarget(flags);
  if (target.kind !== 'remote') {
    throw new BerthError('BERTH_ERR_NO_INSTANCE', { problem: `Limits are read and changed on a running Berth; none runs ${target.dir}. Start it with \`berth start ${target.dir}\` (the limits in berth.yml apply at start).` });
  }
  if (flags.assignments.length > 0) {
    const response = await request(`${target.url}/_berth/limits`, {
      method: 'PATCH',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(limitPatch(flags.assignments)),
    });
    const body = (await response.json()) as { message?: string };
    if (!response.ok) throw new BerthError('BERTH_ERR_LIMITS_INVALID', { problem: (body.message ?? `HTTP ${response.status}`).replace(/^Invalid limits: /, '').replace(/ The limits in force are unchanged\.$/, '') });
  }
  const view = (await (await request(`${target.url}/_berth/limits`)).json()) as LimitsView;
  const show = (value: number | null | undefined) => (value === undefined || value === null ? '-' : String(value));
  say(`account: concurrency ${show(view.account.concurrency)}, running ${view.usage.running}, waiting ${view.usage.waitingSync} sync + ${view.usage.waitingAsync} async; sync requests wait up to ${view.account.syncWaitMs} ms`);
  const rows = [['SCOPE', 'MAX', 'RESERVED', 'PER TENANT', 'PROVISIONED', 'RUNNING', 'THROTTLES']];
  for (const [name, usage] of Object.entries(view.usage.functions)) {
    const fn = view.functions[name] ?? {};
    rows.push([`function ${name}`, show(fn.maxConcurrency), show(fn.reservedConcurrency), show(fn.tenantConcurrency), show(fn.provisionedConcurrency), String(usage.running), String(usage.throttles)]);
  }
  for (const [name, group] of Object.entries(view.groups)) {
    rows.push([`group ${name}`, show(group.maxConcurrency), show(group.reserved), '-', '-', String(view.usage.groups[name]?.running ?? 0), '-']);
  }
  printTable(rows);
  return 0;
}

interface LimitsView {
  account: { concurrency: number | null; syncWaitMs: number };
  functions: Record<string, { maxConcurrency?: number; reservedConcurrency?: number; tenantConcurrency?: number; provisionedConcurrency?: number }>;
  groups: Record<string, { maxConcurrency?: number; reserved?: number }>;
  usage: { running: number; waitingSync: number; waitingAsync: number; functions: Record<string, { running: number; throttles: number }>; groups: Record<string, { running: number }> };
}

const FUNCTION_LIMIT_KEYS: Record<string, string> = {
  max: 'maxConcurrency',
  maxConcurrency: 'maxConcurrency',
  reserved: 'reservedConcurrency',
  reservedConcurrency: 'reservedConcurrency',
  tenant: 'tenantConcurrency',
  tenantConcurrency: 'tenantConcurrency',
  provisioned: 'provisionedConcurrency',
  provisionedConcurrency: 'provisionedConcurrency',
};
const GROUP_LIMIT_KEYS: Record<string, string> = { max: 'maxConcurrency', maxConcurrency: 'maxConcurrency', reserved: 'reserved' };

/** `account.concurrency=50`, `api.reserved=3`, `group.etl.max=100`, `api.max=none` (removes it). */
function limitPatch(assignments: string[]) {
  const patch: { account?: Record<string, number | null>; functions?: Record<string, Record<string, number | null>>; groups?: Record<string, Record<string, number | null>> } = {};
  for (const assignment of assignments) {
    const bad = (problem: string) => new BerthError('BERTH_ERR_BAD_REQUEST', { field: assignment, problem: `${problem}. Use e.g. account.concurrency=50, <function>.reserved=3, <function>.max=10, <function>.tenant=2, <function>.provisioned=2, group.<name>.max=100, account.syncWait=500 (ms); "none" removes a limit` });
    const at = assignment.indexOf('=');
    if (at <= 0) throw bad('is not key=value');
    const key = assignment.slice(0, at).split('.');
    const text = assignment.slice(at + 1);
    const value = text === 'none' ? null : Number(text);
    if (value !== null && (!Number.isInteger(value) || value < 0)) throw bad(`"${text}" is not a whole number or "none"`);
    if (key[0] === 'account' && key.length === 2 && (key[1] === 'concurrency' || key[1] === 'syncWait')) {
      if (key[1] === 'syncWait' && value === null) throw bad('syncWait cannot be removed');
      patch.account = { ...patch.account, [key[1] === 'syncWait' ? 'syncWaitMs' : 'concurrency']: value };
    } else if (key[0] === 'group' && key.length === 3 && GROUP_LIMIT_KEYS[key[2]!]) {
      patch.groups = { ...patch.groups, [key[1]!]: { ...patch.groups?.[key[1]!], [GROUP_LIMIT_KEYS[key[2]!]!]: value } };
    } else if (key.length === 2 && FUNCTION_LIMIT_KEYS[key[1]!]) {
      patch.functions = { ...patch.functions, [key[0]!]: { ...patch.functions?.[key[0]!], [FUNCTION_LIMIT_KEYS[key[1]!]!]: value } };
    } else {
      throw bad('names no limit');
    }
  }
  return patch;
}

export function formatError(err: unknown): string {
  if (err instanceof BerthError) return `error ${err.code}\n${err.message}`;
  if (err && typeof err === 'object' && 'errorType' in err) {
    const fnErr = err as FunctionError;
    return `${fnErr.errorType}: ${fnErr.errorMessage}`;
  }
  return err instanceof Error ? (err.stack ?? err.message) : String(err);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}
