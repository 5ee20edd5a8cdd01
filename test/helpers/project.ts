/** Test fixtures: throwaway Berth projects on disk, and the real `berth` CLI run against them. */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const berthBin = path.join(repoRoot, 'bin', 'berth');

/** Writes files (path → contents) into a new temporary directory and returns it. */
export function makeProject(files: Record<string, string>): string {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'berth-test-'));
  for (const [name, contents] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), contents);
  }
  return dir;
}

/** Loopback ports that were free a moment ago: for servers a test starts, or for nothing to listen on. */
export async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => new Promise<ReturnType<typeof createServer>>((resolve) => {
      const server = createServer();
      server.listen(0, '127.0.0.1', () => resolve(server));
    })),
  );
  const found = servers.map((server) => (server.address() as { port: number }).port);
  await Promise.all(servers.map((server) => new Promise((resolve) => server.close(resolve))));
  return found;
}

/** A private instance registry, so tests never find each other's servers. */
export function berthHome(): string {
  return mkdtempSync(path.join(os.tmpdir(), 'berth-home-'));
}

export interface RunResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  cwd?: string;
  home?: string;
  /** Variables added to (or, when undefined, removed from) the test's environment. */
  env?: Record<string, string | undefined>;
  /** Written to the command's stdin, which is then closed; without it stdin is empty. */
  input?: string;
}

/** Runs `berth <args>` to completion. */
export function runCli(args: string[], options: CliOptions & { timeoutMs?: number } = {}): Promise<RunResult> {
  const cli = spawnCli(args, options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cli.process.kill('SIGKILL');
      reject(new Error(`berth ${args.join(' ')} did not finish in time\nstdout: ${cli.stdout()}\nstderr: ${cli.stderr()}`));
    }, options.timeoutMs ?? 30_000);
    // 'close', not 'exit': by then everything the command printed has been read.
    cli.process.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: cli.stdout(), stderr: cli.stderr() });
    });
  });
}

export interface SpawnedCli {
  process: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** Sends a signal (default SIGTERM) and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

/** Starts `berth <args>` without waiting for it to finish. */
export function spawnCli(args: string[], options: CliOptions = {}): SpawnedCli {
  const child = spawn(process.execPath, [berthBin, ...args], {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, BERTH_HOME: options.home ?? berthHome(), ...options.env },
    stdio: [options.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  if (options.input !== undefined) child.stdin!.end(options.input);
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

export interface RunningBerth {
  url: string;
  home: string;
  dir: string;
  dataDir: string;
  process: ChildProcess;
  /** Everything the server printed so far. */
  output(): string;
  /** SIGTERM, then wait for exit; returns the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `berth start <dir> --port 0` (or `dev`) and resolves once it prints its URL. */
export function startBerth(dir: string, options: { command?: 'start' | 'dev'; home?: string; env?: Record<string, string> } = {}): Promise<RunningBerth> {
  const home = options.home ?? berthHome();
  const dataDir = path.join(dir, '.berth');
  const child = spawn(process.execPath, [berthBin, options.command ?? 'start', dir, '--port', '0', '--data', dataDir], {
    cwd: repoRoot,
    env: { ...process.env, BERTH_HOME: home, ...options.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout!.on('data', (d) => (output += d));
  child.stderr!.on('data', (d) => (output += d));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`berth did not start in time:\n${output}`));
    }, 30_000);
    const exited = (code: number | null) => {
      clearTimeout(timer);
      reject(new Error(`berth exited with ${code} before listening:\n${output}`));
    };
    child.once('exit', exited);
    child.stdout!.on('data', () => {
      const match = /http:\/\/127\.0\.0\.1:\d+/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      child.off('exit', exited);
      resolve({
        url: match[0],
        home,
        dir,
        dataDir,
        process: child,
        output: () => output,
        stop: () =>
          new Promise((done) => {
            if (child.exitCode !== null) return done(child.exitCode);
            child.once('exit', (code) => done(code));
            child.kill('SIGTERM');
          }),
      });
    });
  });
}
