/** Long-running `berth` commands (logs --follow, dev) and waiting on what they print. */
import { spawn, type ChildProcess } from 'node:child_process';
import { berthBin, berthHome, repoRoot } from './project.js';

export interface SpawnedCli {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends a signal (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `berth <args>` without waiting for it to finish. */
export function spawnCli(args: string[], options: { cwd?: string; home?: string } = {}): SpawnedCli {
  const child = spawn(process.execPath, [berthBin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, BERTH_HOME: options.home ?? berthHome() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  return {
    process: child,
    stdout: () => stdout,
    stderr: () => stderr,
    stop: (signal = 'SIGTERM') =>
      new Promise((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve(child.exitCode);
        const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
        child.once('exit', (code) => {
          clearTimeout(timer);
          resolve(code);
        });
        child.kill(signal);
      }),
  };
}

/** Polls `read` until it matches `pattern`; fails with what was read if it does not within `timeoutMs`. */
export async function waitForText(read: () => string, pattern: RegExp, timeoutMs: number, what = 'output'): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = read();
    if (pattern.test(text)) return text;
    if (Date.now() > deadline) throw new Error(`${what} did not match ${pattern} within ${timeoutMs} ms:\n${text}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** Polls an async check until it returns a value other than undefined, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined) return value;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
