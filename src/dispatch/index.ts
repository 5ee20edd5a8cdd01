/**
 * dispatch: turns an invocation request into a result. It resolves the function,
 * checks the tenant against the isolation policy, takes an environment from the
 * function's pool, runs the invocation and records it with its logs.
 */
import { BerthError } from '../errors.js';
import { invocationId } from '../ids.js';
import type { Runtime } from '../runtime/index.js';
import type { Store } from '../store/index.js';
import { checkTenantId } from '../tenant-id.js';
import type { FunctionSpec, InvocationRequest, InvocationResult, LimitSet, Trigger } from '../types.js';
import { Admission, type Permit } from './admission.js';
import { formatInvocationLog } from './log-format.js';
import { Recorder } from './recorder.js';

/** Throws unless `tenantId` is well-formed and the function's isolation allows running per tenant. */
export function checkTenant(spec: FunctionSpec, tenantId: string | undefined): void {
  if (tenantId === undefined) return;
  checkTenantId(tenantId);
  if (spec.isolation === 'warm') throw new BerthError('BERTH_ERR_TENANT_NOT_ALLOWED', { fn: spec.name, tenant: tenantId });
}

/** Callers waiting on the answer; they are admitted before queued async work. */
const SYNC_TRIGGERS = new Set<Trigger>(['http', 'invoke-api', 'cli']);

export class Dispatcher {
  readonly admission: Admission;
  /** Per function: invocations that had to start an environment (cold) or found one (warm). */
  private readonly starts = new Map<string, { cold: number; warm: number }>();
  private readonly recorder: Recorder;
  private accepting = true;
  private inFlight = 0;

  constructor(
    private readonly runtime: Runtime,
    store: Store,
    limits: LimitSet,
    onStoreError: (err: unknown) => void,
  ) {
    this.recorder = new Recorder(store, onStoreError);
    this.admission = new Admission(limits);
  }

  async invoke(request: InvocationRequest): Promise<InvocationResult> {
    if (!this.accepting) throw new BerthError('BERTH_ERR_SHUTTING_DOWN');
    const pool = this.runtime.pool(request.functionName);
    if (!pool) throw new BerthError('BERTH_ERR_FUNCTION_NOT_FOUND', { fn: request.functionName });
    const { spec } = pool;
    const tenantId = request.tenantId;
    checkTenant(spec, tenantId);

    this.inFlight++;
    let permit: Permit | undefined;
    try {
      permit = await this.admission.acquire({
        functionName: spec.name,
        ...(tenantId !== undefined ? { tenantId } : {}),
        priority: SYNC_TRIGGERS.has(request.trigger) ? 'sync' : 'async',
      });
      const id = request.id ?? invocationId();
      const attempt = request.attempt ?? 1;
      const startedAt = Date.now();
      const started = performance.now();
      const message = {
        id,
        attempt,
        event: request.event,
        timeoutMs: spec.timeoutSeconds * 1000,
        tenantId,
        clientContext: request.clientContext,
        ...(request.secrets ? { secrets: request.secrets } : {}),
      };
      let init;
      let outcome;
      // An invocation queued behind one that crashed its environment never started: run it on another.
      do {
        const env = await pool.acquire(tenantId);
        init = env.takeInit();
        this.countStart(spec.name, init !== undefined);
        outcome = await env.invoke(message);
        pool.release(env, !outcome.lost, outcome.durationMs);
      } while (outcome.notStarted);
      // Lambda reports the handler's time; when the process died, the time we waited for it.
      const durationMs = outcome.durationMs ?? performance.now() - started;

      const report = {
        id,
        attempt,
        durationMs,
        billedMs: Math.max(1, Math.ceil(durationMs)),
        memoryMb: spec.memoryMb,
        maxMemoryMb: outcome.maxMemoryMb,
        ...(init && init.initMs > 0 ? { initDurationMs: init.initMs } : {}),
      };
      const trailer =
        outcome.status === 'timed_out' ? `${new Date().toISOString()} ${id} Task timed out after ${spec.timeoutSeconds.toFixed(2)} seconds\n` : '';
      const redact = request.redact ?? ((text: string) => text);
      const log = redact(formatInvocationLog({ initLog: init?.log, output: outcome.log, trailer, report }));
      const error = outcome.error && { ...outcome.error, errorMessage: redact(outcome.error.errorMessage) };

      this.recorder.record(
        {
          id,
          attempt,
          functionName: spec.name,
          tenantId: tenantId ?? null,
          trigger: request.trigger,
          status: outcome.status,
          startedAt,
          durationMs,
          billedMs: report.billedMs,
          initDurationMs: report.initDurationMs ?? null,
          maxMemoryMb: outcome.maxMemoryMb,
          errorType: error?.errorType ?? null,
          errorMessage: error?.errorMessage ?? null,
        },
        { invocationId: id, functionName: spec.name, tenantId: tenantId ?? null, ts: startedAt, text: log },
      );

      return {
        id,
        attempt,
        functionName: spec.name,
        status: outcome.status,
        ...(error ? { error } : { payload: outcome.payload }),
        durationMs,
        billedMs: report.billedMs,
        ...(report.initDurationMs !== undefined ? { initDurationMs: report.initDurationMs } : {}),
        maxMemoryMb: outcome.maxMemoryMb,
        log,
      };
    } finally {
      permit?.release();
      this.inFlight--;
    }
  }

  /** Resolves once every invocation record and log so far is in the store (they are written behind). */
  flushRecords(): Promise<void> {
    return this.recorder.flush();
  }

  isolationOf(functionName: string): FunctionSpec['isolation'] | undefined {
    return this.runtime.pool(functionName)?.spec.isolation;
  }

  startsOf(functionName: string): { cold: number; warm: number } {
    return this.starts.get(functionName) ?? { cold: 0, warm: 0 };
  }

  private countStart(functionName: string, cold: boolean): void {
    const counts = this.starts.get(functionName) ?? { cold: 0, warm: 0 };
    if (cold) counts.cold++;
    else counts.warm++;
    this.starts.set(functionName, counts);
  }

  /** Stops accepting invocations, waits for running ones and writes every record. */
  async drain(): Promise<void> {
    this.accepting = false;
    while (this.inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 10));
    await this.recorder.flush();
  }
}
