/**
 * The Lambda REST API subset that `@aws-sdk/client-lambda` needs to invoke and list
 * functions: Invoke, ListFunctions and GetFunction.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Dispatcher } from '../dispatch/index.js';
import { functionArn, REGION, type Runtime } from '../runtime/index.js';
import type { Events } from '../events/index.js';
import type { FunctionSpec, InvocationResult } from '../types.js';
import { functionNotFound, sendLambdaError, sendLambdaErrorFor } from './aws-errors.js';
import { optionalKey, optionalTenant, tenantFrom } from './tenant.js';

const LOG_TAIL_BYTES = 4096;

/** Accepts a name, `name:qualifier`, a partial ARN `123456789012:function:name` or a full ARN. */
export function parseFunctionName(raw: string, qualifierParam?: string): { name: string; qualifier?: string } {
  const parts = raw.split(':');
  let rest = parts;
  if (parts[0] === 'arn' && parts.length >= 7) rest = parts.slice(6);
  else if (parts.length >= 3 && parts[1] === 'function') rest = parts.slice(2);
  const [name = '', qualifier] = rest;
  const chosen = qualifierParam ?? qualifier;
  return chosen === undefined ? { name } : { name, qualifier: chosen };
}

function functionConfiguration(spec: FunctionSpec) {
  return {
    FunctionName: spec.name,
    FunctionArn: functionArn(spec.name),
    Runtime: `nodejs${process.versions.node.split('.')[0]}.x`,
    Role: `arn:aws:iam::000000000000:role/berth`,
    Handler: spec.handler,
    Description: spec.description,
    Timeout: spec.timeoutSeconds,
    MemorySize: spec.memoryMb,
    Version: '$LATEST',
    Environment: { Variables: spec.environment },
    State: 'Active',
    LastUpdateStatus: 'Successful',
    PackageType: 'Zip',
    Architectures: [process.arch === 'arm64' ? 'arm64' : 'x86_64'],
  };
}

export interface InvokeApiOptions {
  runtime: Runtime;
  dispatcher: Dispatcher;
  events: Events;
  bodyLimit: number;
}

/** What a keyed RequestResponse invoke remembers, so a repeat gets the same answer without running. */
interface RememberedResult {
  id: string;
  status: InvocationResult['status'];
  payload?: unknown;
  error?: InvocationResult['error'];
  log: string;
}

export function registerInvokeApi(app: FastifyInstance, { runtime, dispatcher, events, bodyLimit }: InvokeApiOptions): void {
  const resolve = (reply: FastifyReply, raw: string, qualifierParam?: string): FunctionSpec | undefined => {
    const { name, qualifier } = parseFunctionName(raw, qualifierParam);
    const spec = runtime.pool(name)?.spec;
    if (!spec || (qualifier !== undefined && qualifier !== '$LATEST')) {
      functionNotFound(reply, qualifier === undefined ? name : `${name}:${qualifier}`);
      return undefined;
    }
    return spec;
  };

  app.post<{ Params: { name: string }; Querystring: { Qualifier?: string } }>(
    '/2015-03-31/functions/:name/invocations',
    { bodyLimit },
    async (request, reply) => {
      const spec = resolve(reply, request.params.name, request.query.Qualifier);
      if (!spec) return reply;
      const invocationType = (request.headers['x-amz-invocation-type'] as string | undefined) ?? 'RequestResponse';
      if (invocationType === 'DryRun') return reply.code(204).send();
      if (invocationType !== 'RequestResponse' && invocationType !== 'Event') {
        return sendLambdaError(
          reply,
          'InvalidParameterValueException',
          `InvocationType "${invocationType}" is not valid; use RequestResponse, Event or DryRun.`,
        );
      }

      const payload = parsePayload(request.body as Buffer | undefined);
      if ('error' in payload) return sendLambdaError(reply, 'InvalidRequestContentException', payload.error);
      const clientContext = parseClientContext(request.headers['x-amz-client-context'] as string | undefined);
      if (clientContext && 'error' in clientContext) return sendLambdaError(reply, 'InvalidRequestContentException', clientContext.error);

      const tenant = optionalTenant(tenantFrom(request.headers));
      const key = optionalKey(request.headers);
      if (invocationType === 'Event') {
        try {
          const { id } = await events.asyncInvoker.enqueue(spec.name, payload.value, {
            ...tenant,
            ...key,
            ...(clientContext ? { clientContext: clientContext.value } : {}),
          });
          return reply.code(202).header('x-amzn-requestid', id).header('x-berth-invocation-id', id).send();
        } catch (err) {
          return sendLambdaErrorFor(reply, err, spec.name);
        }
      }

      const run = async (): Promise<RememberedResult> => {
        const result = await dispatcher.invoke({
          functionName: spec.name,
          event: payload.value,
          ...tenant,
          ...(clientContext ? { clientContext: clientContext.value } : {}),
          trigger: 'invoke-api',
        });
        return { id: result.id, status: result.status, log: result.log, ...(result.error ? { error: result.error } : { payload: result.payload }) };
      };
      let result: RememberedResult;
      try {
        result = key.idempotencyKey === undefined
          ? await run()
          : (await events.idempotency.once(`invoke:${spec.name}`, key.idempotencyKey, events.idempotencyWindowMs, run)).value;
      } catch (err) {
        return sendLambdaErrorFor(reply, err, spec.name);
      }
      reply.code(200).header('x-amz-executed-version', '$LATEST').header('content-type', 'application/json');
      reply.header('x-berth-invocation-id', result.id);
      if (request.headers['x-amz-log-type'] === 'Tail') {
        const log = Buffer.from(result.log);
        reply.header('x-amz-log-result', log.subarray(Math.max(0, log.length - LOG_TAIL_BYTES)).toString('base64'));
      }
      if (result.error) {
        reply.header('x-amz-function-error', 'Unhandled');
        return reply.send(JSON.stringify(result.error));
      }
      return reply.send(JSON.stringify(result.payload) ?? 'null');
    },
  );

  app.get<{ Querystring: { Marker?: string; MaxItems?: string } }>('/2015-03-31/functions', async (request) => {
    const all = runtime.functions().sort((a, b) => a.name.localeCompare(b.name));
    const start = request.query.Marker ? Number(Buffer.from(request.query.Marker, 'base64').toString()) || 0 : 0;
    const max = Math.min(Math.max(Number(request.query.MaxItems) || 50, 1), 10_000);
    const page = all.slice(start, start + max);
    const next = start + max < all.length ? Buffer.from(String(start + max)).toString('base64') : undefined;
    return { Functions: page.map(functionConfiguration), ...(next ? { NextMarker: next } : {}) };
  });

  app.get<{ Params: { name: string }; Querystring: { Qualifier?: string } }>('/2015-03-31/functions/:name', async (request, reply) => {
    const spec = resolve(reply, request.params.name, request.query.Qualifier);
    if (!spec) return reply;
    return { Configuration: functionConfiguration(spec), Code: { RepositoryType: 'Berth', Location: spec.file }, Tags: { region: REGION } };
  });
}

function parsePayload(body: Buffer | undefined): { value: unknown } | { error: string } {
  // An SDK call without a payload sends an empty body; Lambda treats it as {}.
  if (!body || body.length === 0) return { value: {} };
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(body);
  } catch {
    return { error: 'Could not parse request body into json: the payload is not valid UTF-8. Send a UTF-8 JSON document.' };
  }
  try {
    return { value: JSON.parse(text) };
  } catch (err) {
    return { error: `Could not parse request body into json: ${(err as Error).message}. Send a valid JSON document.` };
  }
}

function parseClientContext(header: string | undefined): { value: unknown } | { error: string } | undefined {
  if (!header) return undefined;
  try {
    return { value: JSON.parse(Buffer.from(header, 'base64').toString('utf8')) };
  } catch {
    return { error: 'X-Amz-Client-Context must be base64-encoded JSON.' };
  }
}
