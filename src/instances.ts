/**
 * A registry of running Berth instances (one small JSON file each, under
 * $BERTH_HOME/instances), so `berth invoke`, `logs` and `ls` find a running
 * server from any directory.
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface InstanceInfo {
  pid: number;
  url: string;
  dir: string;
  dataDir: string;
  functions: string[];
  startedAt: number;
}

function instancesDir(): string {
  return path.join(process.env.BERTH_HOME ?? path.join(os.homedir(), '.berth'), 'instances');
}

function instanceFile(info: InstanceInfo): string {
  return path.join(instancesDir(), `${info.pid}-${info.startedAt}.json`);
}

export function registerInstance(info: InstanceInfo): () => void {
  mkdirSync(instancesDir(), { recursive: true });
  updateInstance(info);
  return () => rmSync(instanceFile(info), { force: true });
}

export function updateInstance(info: InstanceInfo): void {
  writeFileSync(instanceFile(info), JSON.stringify(info));
}

/** Instances whose process is still alive; files left by dead processes are removed. */
export function liveInstances(): InstanceInfo[] {
  const dir = instancesDir();
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const live: InstanceInfo[] = [];
  for (const file of files) {
    try {
      const info = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as InstanceInfo;
      process.kill(info.pid, 0);
      live.push(info);
    } catch {
      rmSync(path.join(dir, file), { force: true });
    }
  }
  return live;
}
