import assert from 'node:assert/strict';
/** HTTP clients for a running Berth (the Lambda Invoke API, Berth's own API), polling, and a bounded stop. */
import type { RunningBerth } from './project.js';

export interface InvokeOptions {
  /** Sent as `x-amz-tenant-id` (default) or `x-berth-tenant`. */
  tenant?: string;
  tenantHeader?: 'x-amz-tenant-id' | 'x-berth-tenant';
  /** Ask for the log tail (`x-amz-log-type: Tail`); on by default. */
  tail?: boolean;
  /** Abort the request after this long (default 20 s). */
  timeoutMs?: number;
}

export interface Invocation {
  status: number;
  /** `x-amz-function-error`, or null when the function succeeded. */
  functionError: string | null;
  /** The response body parsed as JSON (or the raw text when it is not JSON). */
  body: any;
  raw: string;
  /** The decoded `x-amz-log-result`, when a tail was asked for. */
  log: string;
  invocationId: string | null;
  headers: Headers;
  /** Wall-clock time from sending the request to reading the whole response. */
  ms: number;
}

/** POST /2015-03-31/functions/<name>/invocations with `payload` as JSON. */
export async function invoke(baseUrl: string, name: string, payload: unknown = {}, options: InvokeOptions = {}): Promise<Invocation> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (options.tail ?? true) headers['x-amz-log-type'] = 'Tail';
  if (options.tenant !== undefined) headers[options.tenantHeader ?? 'x-amz-tenant-id'] = options.tenant;
  const started = performance.now();
  const response = await fetch(`${baseUrl}/2015-03-31/functions/${encodeURIComponent(name)}/invocations`, {
    method: 'POST',
    headers,
    body: JSON.stringify(payload),
    signal: AbortSignal.timeout(options.timeoutMs ?? 20_000),
  });
  const raw = await response.text();
  const ms = performance.now() - started;
  let body: unknown = raw;
  try {
    body = JSON.parse(raw);
  } catch {
    // Not JSON: keep the text.
  }
  const tail = response.headers.get('x-amz-log-result');
  return {
    status: response.status,
    functionError: response.headers.get('x-amz-function-error'),
    body,
    raw,
    log: tail ? Buffer.from(tail, 'base64').toString('utf8') : '',
    invocationId: response.headers.get('x-berth-invocation-id'),
    headers: response.headers,
    ms,
  };
}

export interface FunctionInfo {
  name: string;
  isolation: string;
  environments: { ready: number; idle: number; busy: number; starting: number };
  pids: number[];
}

/** One function's entry in GET /_berth/functions. */
export async function functionInfo(baseUrl: string, name: string): Promise<FunctionInfo> {
  const response = await fetch(`${baseUrl}/_berth/functions`, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`GET /_berth/functions answered ${response.status}: ${await response.text()}`);
  const { functions } = (await response.json()) as { functions: FunctionInfo[] };
  const found = functions.find((fn) => fn.name === name);
  if (!found) throw new Error(`GET /_berth/functions does not list ${name}: ${JSON.stringify(functions)}`);
  return found;
}

export interface StoredLog {
  seq: number;
  invocationId: string;
  text: string;
}

/** GET /_berth/functions/<name>/logs?limit=N */
export async function functionLogs(baseUrl: string, name: string, limit: number): Promise<StoredLog[]> {
  const response = await fetch(`${baseUrl}/_berth/functions/${encodeURIComponent(name)}/logs?limit=${limit}`, {
    signal: AbortSignal.timeout(10_000),
  });
  if (response.status !== 200) throw new Error(`GET logs of ${name} answered ${response.status}: ${await response.text()}`);
  return ((await response.json()) as { logs: StoredLog[] }).logs;
}

/** The stored log of one invocation; logs are written behind the response, so this polls briefly. */
export async function storedLogOf(baseUrl: string, name: string, invocationId: string, limit = 50): Promise<StoredLog> {
  return waitFor(
    async () => (await functionLogs(baseUrl, name, limit)).find((log) => log.invocationId === invocationId),
    { what: `the stored log of invocation ${invocationId} of ${name}` },
  );
}

/** Polls `probe` until it returns something other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  options: { what: string; timeoutMs?: number; intervalMs?: number },
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 10_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined && value !== false) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${options.what}${lastError ? `; last error: ${String(lastError)}` : ''}`);
    }
    await sleep(options.intervalMs ?? 50);
  }
}

/** The error a promise rejects with (fails the test if it resolves). */
export async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, any>> {
  try {
    await promise;
  } catch (err) {
    return err as Error & Record<string, any>;
  }
  assert.fail('expected the call to fail');
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Whether a process with this pid exists (signal 0 probes without signalling). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Escapes text for use inside a RegExp. */
export function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * Stops a server started with startBerth(), like its stop() but bounded: SIGTERM, then
 * SIGKILL if it has not exited within `timeoutMs`, so a server that cannot shut down
 * never hangs a test file. Returns the exit code (null after a signal), or 'hung'.
 */
export async function stopWithin(berth: RunningBerth, timeoutMs = 10_000): Promise<number | null | 'hung'> {
  const child = berth.process;
  if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const hung = new Promise<'hung'>((resolve) => {
    timer = setTimeout(() => resolve('hung'), timeoutMs);
  });
  const result = await Promise.race([exited, hung]);
  clearTimeout(timer);
  if (result === 'hung') {
    child.kill('SIGKILL');
    await exited;
  }
  return result;
}
