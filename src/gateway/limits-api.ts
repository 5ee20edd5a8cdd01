/**
 * Concurrency limits over HTTP: Berth's `GET/PATCH /_berth/limits`, and Lambda's
 * Put/Get/DeleteFunctionConcurrency so `@aws-sdk/client-lambda` can set reservations.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { BerthError } from '../errors.js';
import type { LimitOverrides } from '../dispatch/limits.js';
import type { LiveLimits } from '../dispatch/live-limits.js';
import type { Runtime } from '../runtime/index.js';
import type { LimitSet } from '../types.js';
import { functionNotFound, sendLambdaError, sendLambdaErrorFor } from './aws-errors.js';
import { parseFunctionName } from './invoke-api.js';

const count = z.number().int().min(0).nullable();
const patchSchema = z.strictObject({
  account: z.strictObject({ concurrency: count.optional(), syncWaitMs: z.number().int().min(0).max(60_000).optional() }).optional(),
  functions: z
    .record(z.string(), z.strictObject({ maxConcurrency: count.optional(), reservedConcurrency: count.optional(), tenantConcurrency: count.optional(), provisionedConcurrency: count.optional() }))
    .optional(),
  groups: z.record(z.string(), z.strictObject({ maxConcurrency: count.optional(), reserved: count.optional() })).optional(),
});

/** Limits as JSON: no Infinity, maps as objects. */
export function limitsJson(limits: LimitSet) {
  return {
    account: { concurrency: limits.accountConcurrency === Infinity ? null : limits.accountConcurrency, syncWaitMs: limits.syncWaitMs },
    functions: Object.fromEntries(limits.functions),
    groups: Object.fromEntries(limits.groups),
  };
}

export function registerLimitsApi(app: FastifyInstance, runtime: Runtime, limits: LiveLimits): void {
  app.get('/_berth/limits', async () => ({ ...limitsJson(limits.limits), changes: limits.changes, usage: limits.usage() }));

  app.patch('/_berth/limits', async (request) => {
    const text = Buffer.isBuffer(request.body) ? request.body.toString('utf8') : '';
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch (err) {
      throw new BerthError('BERTH_ERR_LIMITS_INVALID', { problem: `the request body is not JSON (${(err as Error).message})` });
    }
    const parsed = patchSchema.safeParse(raw);
    if (!parsed.success) {
      const issue = parsed.error.issues[0]!;
      throw new BerthError('BERTH_ERR_LIMITS_INVALID', { problem: `${issue.path.join('.') || 'body'}: ${issue.message}` });
    }
    return limitsJson(await limits.set(parsed.data as LimitOverrides));
  });

  const resolve = (name: string) => {
    const fn = parseFunctionName(name).name;
    return runtime.pool(fn) ? fn : undefined;
  };

  app.put<{ Params: { name: string } }>('/2017-10-31/functions/:name/concurrency', async (request, reply) => {
    const fn = resolve(request.params.name);
    if (!fn) return functionNotFound(reply, request.params.name);
    const body = safeJson(request.body) as { ReservedConcurrentExecutions?: unknown } | undefined;
    const value = body?.ReservedConcurrentExecutions;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      return sendLambdaError(reply, 'InvalidParameterValueException', 'ReservedConcurrentExecutions must be a whole number, 0 or more.');
    }
    try {
      await limits.set({ functions: { [fn]: { reservedConcurrency: value } } });
    } catch (err) {
      return sendLambdaErrorFor(reply, err, fn);
    }
    return { ReservedConcurrentExecutions: value };
  });

  app.get<{ Params: { name: string } }>('/2019-09-30/functions/:name/concurrency', async (request, reply) => {
    const fn = resolve(request.params.name);
    if (!fn) return functionNotFound(reply, request.params.name);
    const reserved = limits.limits.functions.get(fn)?.reservedConcurrency;
    return reserved === undefined ? {} : { ReservedConcurrentExecutions: reserved };
  });

  app.delete<{ Params: { name: string } }>('/2017-10-31/functions/:name/concurrency', async (request, reply) => {
    const fn = resolve(request.params.name);
    if (!fn) return functionNotFound(reply, request.params.name);
    await limits.set({ functions: { [fn]: { reservedConcurrency: null } } });
    return reply.code(204).send();
  });
}

function safeJson(body: unknown): unknown {
  try {
    return JSON.parse(Buffer.isBuffer(body) ? body.toString('utf8') : '');
  } catch {
    return undefined;
  }
}
