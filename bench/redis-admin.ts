// Redis administration shared by the benches that compare against BullMQ (bench/queue.ts,
// bench/flow.ts): one admin connection, CONFIG reads, and the AOF rows' switch that always puts
// Redis back as it was, even if the bench dies.
import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { connectRedis, type RedisAddress, type RedisClient } from './queue-common.js';

let admin: RedisClient | Error | undefined;

/** The one admin connection, made on first use; `precheck` may refuse early (e.g. the port is closed). */
export async function redisAdmin(address: RedisAddress, precheck?: () => Promise<Error | undefined>): Promise<RedisClient> {
  if (admin === undefined && precheck) admin = await precheck();
  admin ??= await Promise.race([
    connectRedis(address),
    sleep(10_000).then(() => {
      throw new Error(`no Redis at ${address.host}:${address.port} after 10 s`);
    }),
  ]).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  if (admin instanceof Error) throw admin;
  return admin;
}

/** Closes the admin connection, if one was made. */
export async function closeRedisAdmin(): Promise<void> {
  if (admin && !(admin instanceof Error)) await admin.quit().catch(() => {});
}

export async function configGet(redis: RedisClient, key: string): Promise<string> {
  return ((await redis.call('CONFIG', 'GET', key)) as string[])[1] ?? '';
}

/** The settings to put back if the benchmark dies while AOF is switched on. */
let restoreOnExit: { address: RedisAddress; label: string; settings: { appendonly: string; appendfsync: string } } | undefined;
process.on('exit', () => {
  if (!restoreOnExit) return;
  const { address, label, settings } = restoreOnExit;
  for (const [key, value] of Object.entries(settings)) {
    try {
      execFileSync('redis-cli', ['-h', address.host, '-p', String(address.port), 'CONFIG', 'SET', key, value], { stdio: 'ignore', timeout: 5000 });
    } catch {
      console.error(`${label}: could not restore Redis ${key} to ${value}; run: redis-cli CONFIG SET ${key} ${value}`);
    }
  }
});

/** Runs `body` with appendonly yes / appendfsync everysec, then puts back what was set. */
export async function withAof<T>(address: RedisAddress, label: string, body: () => Promise<T>): Promise<T> {
  const redis = await redisAdmin(address);
  const before = { appendonly: await configGet(redis, 'appendonly'), appendfsync: await configGet(redis, 'appendfsync') };
  restoreOnExit = { address, label, settings: before };
  try {
    await redis.call('CONFIG', 'SET', 'appendfsync', 'everysec');
    await redis.call('CONFIG', 'SET', 'appendonly', 'yes');
    // Switching AOF on rewrites the dataset in a child process; measure once it is done.
    const deadline = Date.now() + 60_000;
    for (;;) {
      const info = String(await redis.call('INFO', 'persistence'));
      if (/aof_enabled:1/.test(info) && /aof_rewrite_in_progress:0/.test(info) && /aof_rewrite_scheduled:0/.test(info)) break;
      if (Date.now() > deadline) throw new Error('Redis AOF rewrite still running after 60 s');
      await sleep(100);
    }
    return await body();
  } finally {
    await redis.call('CONFIG', 'SET', 'appendonly', before.appendonly);
    await redis.call('CONFIG', 'SET', 'appendfsync', before.appendfsync);
    restoreOnExit = undefined;
  }
}
