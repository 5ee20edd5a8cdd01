/** Berth's own HTTP API under /_berth: health, functions with live environment counts, logs, invocations. */
import type { FastifyInstance } from 'fastify';
import { BerthError } from '../errors.js';
import type { Runtime } from '../runtime/index.js';
import type { Store } from '../store/index.js';

export function registerBerthApi(app: FastifyInstance, runtime: Runtime, store: Store): void {
  app.get('/_berth/health', async () => ({ status: 'ok', pid: process.pid }));

  app.get('/_berth/functions', async () => ({
    functions: runtime.functions().map((spec) => {
      const pool = runtime.pool(spec.name)!;
      return {
        name: spec.name,
        handler: spec.handler,
        isolation: spec.isolation,
        timeout: spec.timeoutSeconds,
        memory: spec.memoryMb,
        routes: spec.routes.map((r) => `${r.method} ${r.path}`),
        environments: pool.stats(),
        pids: pool.pids(),
      };
    }),
  }));

  app.get<{ Params: { name: string }; Querystring: { limit?: string; after?: string } }>(
    '/_berth/functions/:name/logs',
    async (request) => {
      const { name } = request.params;
      if (!runtime.pool(name)) throw new BerthError('BERTH_ERR_FUNCTION_NOT_FOUND', { fn: name });
      const limit = Math.min(Math.max(Number(request.query.limit) || 20, 1), 1000);
      const after = request.query.after === undefined ? undefined : Number(request.query.after);
      if (after !== undefined && !Number.isInteger(after)) {
        throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'after', problem: `must be a log sequence number, got "${request.query.after}"` });
      }
      return { logs: await store.listLogs({ functionName: name, limit, ...(after !== undefined ? { afterSeq: after } : {}) }) };
    },
  );

  app.get<{ Params: { id: string } }>('/_berth/invocations/:id', async (request) => {
    const invocation = await store.getInvocation(request.params.id);
    if (!invocation) throw new BerthError('BERTH_ERR_INVOCATION_NOT_FOUND', { id: request.params.id });
    return invocation;
  });
}
