// Child processes of the benchmarks: every server, client and worker a benchmark starts is
// tracked, and nothing may outlive the benchmark, even on error or Ctrl-C. Importing this
// module installs the exit handlers that kill what is left and remove temporary directories.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ClientJob, ClientResult, FromClient } from './queue-client.js';

const here = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
export const repoRoot = path.resolve(here, '../..');

const live = new Set<ChildProcess>();
const tmpDirs: string[] = [];

/** A new directory under the OS temp dir, removed when the benchmark exits. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), prefix));
  tmpDirs.push(dir);
  return dir;
}

export function track<C extends ChildProcess>(child: C): C {
  live.add(child);
  child.once('exit', () => live.delete(child));
  return child;
}

// Servers are spawned detached (their own process group) so one signal also reaches the
// sandboxes they start, without touching this process.
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  for (const target of [-child.pid!, child.pid!]) {
    try {
      process.kill(target, signal);
    } catch {
      /* already gone */
    }
  }
}

process.on('exit', () => {
  for (const child of live) killGroup(child, 'SIGKILL');
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});
for (const signal of ['SIGINT', 'SIGTERM'] as const) process.on(signal, () => process.exit(130));

function childPids(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ').filter(Boolean).map(Number),
    );
  } catch {
    // Kernels without CONFIG_PROC_CHILDREN: ask ps instead.
    try {
      return execFileSync('ps', ['--ppid', String(pid), '-o', 'pid='], { encoding: 'utf8' }).split('\n').filter((l) => l.trim()).map(Number);
    } catch {
      return [];
    }
  }
}

export function descendants(pid: number): number[] {
  return childPids(pid).flatMap((child) => [child, ...descendants(child)]);
}

/**
 * CPU time (user + system, ms) of a process and its live descendants, plus what the children
 * they have reaped used: sampled twice, the difference is what the tree spent between, even
 * for sandboxes that came and went. Linux /proc, whose clock ticks are 1/100 s (USER_HZ).
 */
export function treeCpuMs(pid: number): number {
  let ticks = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      const stat = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after "(comm) ": state is 3rd; utime, stime, cutime, cstime are 14th to 17th.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      ticks += Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14]);
    } catch {
      /* exited meanwhile: its parent's cutime has it */
    }
  }
  return ticks * 10;
}

/** The most telling line of a child's stderr, for an error row. */
export function lastError(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter(Boolean);
  return (lines.find((l) => /Error\b/.test(l)) ?? lines.at(-1) ?? '(no output)').slice(0, 160);
}

// ---- servers --------------------------------------------------------------------------------

export interface Server {
  url: string;
  child: ChildProcess;
}

/** Starts `node <args>` and resolves once it prints http://127.0.0.1:<port>. */
export function startServer(args: string[], env: Record<string, string> = {}): Promise<Server> {
  const child = track(
    spawn(process.execPath, args, { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'], detached: true }),
  );
  let stdout = '';
  let stderr = '';
  let ready = false;
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    const fail = (why: string) => {
      clearTimeout(timer);
      if (ready) return;
      killGroup(child, 'SIGKILL');
      reject(new Error(`${why}: ${lastError(stderr || stdout)}`));
    };
    const timer = setTimeout(() => fail('not ready after 30 s'), 30_000);
    // Keep reading after ready too: a chatty server must never block on a full pipe.
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      if (ready) return;
      stdout = (stdout + d).slice(-4000);
      const m = /http:\/\/127\.0\.0\.1:(\d+)/.exec(stdout);
      if (m) {
        ready = true;
        clearTimeout(timer);
        resolve({ url: m[0], child });
      }
    });
    child.once('exit', (code, signal) => fail(`exited (${code ?? signal}) before ready`));
    child.once('error', (err) => fail(err.message));
  });
}

/** SIGTERM (Berth's documented stop), then SIGKILL whatever of its tree is left after 5 s. */
export async function stopServer(child: ChildProcess): Promise<void> {
  const tree = descendants(child.pid!); // taken first: sandboxes may have left the process group
  if (child.exitCode === null && child.signalCode === null) {
    child.kill('SIGTERM');
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, 5000);
      child.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  killGroup(child, 'SIGKILL');
  for (const pid of tree) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* already gone */
    }
  }
}

export async function withServer<T>(args: string[], env: Record<string, string>, body: (s: Server) => Promise<T>): Promise<T> {
  const server = await startServer(args, env);
  try {
    return await body(server);
  } finally {
    await stopServer(server.child);
  }
}

const benchDir = path.dirname(fileURLToPath(import.meta.url)); // dist/bench

/** A bench script (dist/bench/<script>) as a child with an IPC channel, given its job as JSON; the tail of its stderr is kept. */
export function spawnIpc(script: string, job: unknown): { child: ChildProcess; stderr: () => string } {
  const child = track(spawn(process.execPath, [path.join(benchDir, script), JSON.stringify(job)], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }));
  let stderr = '';
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  return { child, stderr: () => stderr };
}

/** Runs one producer process; `onSent` is called the moment its last enqueue is acknowledged. */
export function runClient(job: ClientJob, timeoutMs: number, onSent: (sent: number) => void): Promise<ClientResult> {
  const { child, stderr } = spawnIpc('queue-client.js', job);
  return new Promise((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('message', (message: FromClient) => {
      if (message.t === 'sent') onSent(message.sent);
      else if (message.t === 'result') {
        settled = true;
        resolve(message.result);
      } else {
        settled = true;
        reject(new Error(`producer: ${message.message}`));
      }
    });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (settled) return;
      reject(new Error(signal === 'SIGKILL' ? `producer timed out after ${timeoutMs / 1000} s` : `producer exited (${code ?? signal}): ${lastError(stderr())}`));
    });
  });
}

/** Runs bench/load.ts (autocannon) in its own process with `job` and resolves with the one JSON line it prints. */
export function loadClient<T>(job: unknown, timeoutMs: number): Promise<T> {
  const child = track(spawn(process.execPath, [path.join(benchDir, 'load.js'), JSON.stringify(job)], { stdio: ['ignore', 'pipe', 'pipe'] }));
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr = (stderr + d).slice(-4000)));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve(JSON.parse(stdout) as T);
      else reject(new Error(signal === 'SIGKILL' ? `client timed out after ${timeoutMs / 1000} s` : `client failed: ${lastError(stderr)}`));
    });
  });
}
