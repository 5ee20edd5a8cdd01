/** Where a CLI command should act: a running instance (over HTTP) or a project directory (in-process). */
import path from 'node:path';
import { findConfigFile } from '../config/index.js';
import { BerthError } from '../errors.js';
import { liveInstances } from '../instances.js';

export type Target = { kind: 'remote'; url: string } | { kind: 'local'; dir: string };

export function resolveTarget(options: { url?: string; dir?: string; functionName?: string }): Target {
  if (options.url) return { kind: 'remote', url: options.url.replace(/\/$/, '') };
  const dir = options.dir ? path.resolve(options.dir) : findConfigFile(process.cwd()) ? process.cwd() : undefined;
  const live = liveInstances();
  if (dir) {
    const running = live.find((instance) => instance.dir === dir);
    return running ? { kind: 'remote', url: running.url } : { kind: 'local', dir };
  }
  const candidates = live.filter((i) => options.functionName === undefined || i.functions.includes(options.functionName));
  if (candidates.length === 1) return { kind: 'remote', url: candidates[0]!.url };
  if (candidates.length > 1) {
    throw new BerthError('BERTH_ERR_NO_INSTANCE', {
      problem: `Several running Berth instances could serve this:\n${candidates.map((c) => `  ${c.url}  (${c.dir})`).join('\n')}\nChoose one with --url <url> or --dir <project>.`,
    });
  }
  throw new BerthError('BERTH_ERR_NO_INSTANCE', {
    problem: `No running Berth instance${options.functionName ? ` serves "${options.functionName}"` : ''} and there is no berth.yml in ${process.cwd()}. Start one with \`berth start <dir>\`, or pass --dir <project> to run in-process.`,
  });
}

/** GET or POST JSON against a running instance, with a clear error when it is unreachable. */
export async function request(url: string, init?: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    throw new BerthError('BERTH_ERR_NO_INSTANCE', {
      problem: `Could not reach Berth at ${new URL(url).origin}: ${(err as Error).cause ?? (err as Error).message}. Is it still running?`,
    });
  }
}

/**
 * The data directory of a command that works on the store itself, running server or not:
 * --data, else the one the project's running instance uses, else <project>/.berth.
 */
export function resolveDataDir(options: { dir?: string; dataDir?: string }, command: string): string {
  if (options.dataDir) return path.resolve(options.dataDir);
  const dir = path.resolve(options.dir ?? '.');
  if (!findConfigFile(dir)) {
    throw new BerthError('BERTH_ERR_BAD_REQUEST', {
      field: `\`berth ${command}\``,
      problem: `needs a project, and there is no berth.yml in ${dir}. Run it in the project's directory, or pass --dir <project> or --data <data directory>.`,
    });
  }
  return liveInstances().find((instance) => instance.dir === dir)?.dataDir ?? path.join(dir, '.berth');
}
