/**
 * Flows over HTTP, under /_berth: list flows, start a run (answered once the run is durable, or
 * with `?wait=true` once it has finished), list a flow's runs, and show one run with every
 * step's input, output, attempts, timings and logs.
 */
import type { FastifyInstance } from 'fastify';
import { BerthError } from '../errors.js';
import type { FlowEngine } from '../flows/engine.js';
import type { FlowRunRecord, FlowStepRecord, Store, StoredValue } from '../store/index.js';
import { jsonBody } from './berth-api.js';

/** Values bigger than this are shown as a reference to the blob store, not inline. */
const SHOW_INLINE_BYTES = 1024 * 1024;

export interface FlowsApiOptions {
  flows: FlowEngine;
  store: Store;
  bodyLimit: number;
}

export function registerFlowsApi(app: FastifyInstance, { flows, store, bodyLimit }: FlowsApiOptions): void {
  app.get('/_berth/flows', async () => ({
    flows: flows.list().map((flow) => ({ name: flow.name, description: flow.description, tenant: flow.tenant ?? null, steps: flow.steps.map((s) => `${s.id} (${s.kind})`) })),
  }));

  app.post<{ Params: { name: string }; Querystring: { wait?: string } }>('/_berth/flows/:name/runs', { bodyLimit }, async (request, reply) => {
    const body = Buffer.isBuffer(request.body) && request.body.length > 0 ? jsonBody(request.body) : {};
    const tenant = body.tenant;
    if (tenant !== undefined && typeof tenant !== 'string') throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'tenant', problem: 'must be a string' });
    const { runId, done } = await flows.start(request.params.name, body.input ?? {}, { trigger: 'api', ...(tenant !== undefined ? { tenantId: tenant } : {}) });
    if (request.query.wait !== 'true') return reply.code(202).send({ runId, status: 'running' });
    await done;
    await flows.logsWritten();
    return showRun(flows, store, runId);
  });

  app.get<{ Params: { name: string }; Querystring: { limit?: string } }>('/_berth/flows/:name/runs', async (request) => {
    if (!flows.list().some((flow) => flow.name === request.params.name)) throw new BerthError('BERTH_ERR_FLOW_NOT_FOUND', { flow: request.params.name });
    const limit = Math.min(Math.max(Number(request.query.limit) || 20, 1), 1000);
    return { runs: (await store.listFlowRuns(request.params.name, limit)).map(runSummary) };
  });

  app.get<{ Params: { id: string } }>('/_berth/flow-runs/:id', async (request) => showRun(flows, store, request.params.id));
}

function runSummary(run: FlowRunRecord) {
  return {
    id: run.id,
    flow: run.flow,
    tenant: run.tenantId,
    trigger: run.trigger,
    status: run.status,
    error: run.error === null ? null : JSON.parse(run.error),
    createdAt: run.createdAt,
    finishedAt: run.finishedAt,
    durationMs: run.finishedAt === null ? null : run.finishedAt - run.createdAt,
  };
}

async function showRun(flows: FlowEngine, store: Store, id: string) {
  const found = await store.getFlowRun(id);
  if (!found) throw new BerthError('BERTH_ERR_FLOW_RUN_NOT_FOUND', { id });
  const show = (value: StoredValue) => shown(flows, value);
  return {
    ...runSummary(found.run),
    input: await show(found.run.input),
    output: await show(found.run.output),
    steps: await Promise.all(found.steps.map(async (step: FlowStepRecord) => ({
      step: step.step,
      status: step.status,
      attempts: step.attempts,
      input: await show(step.input),
      output: await show(step.output),
      error: step.error === null ? null : JSON.parse(step.error),
      invocationId: step.invocationId,
      logs: step.invocationId === null ? null : await store.logsOf(step.invocationId),
      startedAt: step.startedAt,
      finishedAt: step.finishedAt,
      durationMs: step.finishedAt === null ? null : step.finishedAt - step.startedAt,
    }))),
  };
}

/** A stored value, inline unless it is large: then where it is and how big. */
async function shown(flows: FlowEngine, value: StoredValue): Promise<unknown> {
  if (value.blob === null) return value.json === null ? null : JSON.parse(value.json);
  const size = await flows.blobSize(value.blob);
  if (size > SHOW_INLINE_BYTES) return { blob: value.blob, bytes: size };
  return flows.loadValue(value);
}
