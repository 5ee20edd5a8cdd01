/**
 * Log capture inside a sandbox. Everything written to process.stdout/stderr from
 * JavaScript is buffered and shipped over IPC, tagged with the running invocation,
 * so it is attributed correctly and ordered before the result. The console methods
 * print Lambda's format (installLambdaConsole, shared with Berth's runtime client).
 */
import { writeSync } from 'node:fs';
import { format } from 'node:util';

type Ship = (id: string, text: string) => void;

let currentId: string | undefined;
let lastId: string | undefined;
let buffer = '';
let initBuffer = '';
let ship: Ship = () => {};

export function setInvocation(id: string | undefined): void {
  if (id === undefined) flush();
  currentId = id;
  if (id !== undefined) lastId = id;
}

/** Sends what the current (or last) invocation printed so far. */
export function flush(): void {
  const id = currentId ?? lastId;
  if (buffer.length === 0 || id === undefined) return;
  const text = buffer;
  buffer = '';
  ship(id, text);
}

/** What init printed before the first invocation. */
export function takeInitLog(): string {
  const text = initBuffer;
  initBuffer = '';
  return text;
}

function capture(chunk: unknown, encoding?: unknown): void {
  const text =
    typeof chunk === 'string'
      ? chunk
      : Buffer.from(chunk as Uint8Array).toString(typeof encoding === 'string' ? (encoding as BufferEncoding) : 'utf8');
  if (currentId === undefined && lastId === undefined) initBuffer += text;
  else buffer += text;
  // During an invocation every write goes out at once: a handler that then blocks its
  // event loop (and is killed for it) must not take what it printed with it.
  if (currentId !== undefined || buffer.length > 64 * 1024) flush();
}

export function installLogCapture(send: Ship): void {
  ship = send;
  for (const stream of [process.stdout, process.stderr]) {
    stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown) => {
      capture(chunk, encoding);
      const done = typeof encoding === 'function' ? encoding : callback;
      if (typeof done === 'function') process.nextTick(done as () => void);
      return true;
    }) as typeof stream.write;
  }
  installLambdaConsole(() => currentId ?? lastId);
  setInterval(flush, 200).unref();
  // IPC cannot be written while exiting; hand what is left to the raw stderr pipe.
  process.on('exit', () => {
    if (buffer.length > 0) writeSync(2, buffer);
  });
}

/**
 * console.* in Lambda's format, `<ISO time>\t<request id>\t<LEVEL>\t<message>`: log, info and
 * debug to stdout, the rest to stderr. `requestId` names the invocation a line belongs to.
 */
export function installLambdaConsole(requestId: () => string | undefined): void {
  const levels = { log: 'INFO', info: 'INFO', warn: 'WARN', error: 'ERROR', debug: 'DEBUG', trace: 'TRACE' } as const;
  for (const [method, level] of Object.entries(levels)) {
    const stream = level === 'INFO' || level === 'DEBUG' ? process.stdout : process.stderr;
    (console as unknown as Record<string, (...args: unknown[]) => void>)[method] = (...args: unknown[]) => {
      stream.write(`${new Date().toISOString()}\t${requestId() ?? 'undefined'}\t${level}\t${format(...args)}\n`);
    };
  }
}
