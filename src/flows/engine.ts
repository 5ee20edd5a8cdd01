/**
 * Runs flows, durably. A run's record is committed before its id is handed out; each step's
 * result is committed before the next step starts (in one group commit with the next step's
 * start, shared with whatever else commits in that turn), and the next step is dispatched the
 * moment it is.
 * A run interrupted by a crash or a stop is picked up at the next start: completed steps are
 * not run again, and the step that was running is retried under the same step id, which its
 * handler sees as `context.awsRequestId`, so it can de-duplicate its own side effects.
 */
import { createHash } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Dispatcher } from '../dispatch/index.js';
import { BerthError } from '../errors.js';
import type { BlobStore } from '../events/blobs.js';
import type { Journal } from '../events/journal.js';
import { invocationId, nameBasedId } from '../ids.js';
import { loadMasterKey } from '../secrets/crypto.js';
import { Redactor, type SecretStore } from '../secrets/index.js';
import type { FlowRunRecord, FlowStepRecord, Store, StoredValue } from '../store/index.js';
import { evaluate, render } from './expressions.js';
import { StepFailure } from './errors.js';
import { callHttp } from './http-step.js';
import type { FlowSpec, ForEachStep, StepSpec } from './types.js';

export interface FlowEngineOptions {
  store: Store;
  journal: Journal;
  blobs: BlobStore;
  dispatcher: Dispatcher;
  secrets: SecretStore;
  /** Publishes to a topic (a failed run's alert); durable once the next commit is. */
  publish: (topic: string, message: string, subject: string) => Promise<unknown>;
  /** Values above this many bytes go to the blob store. */
  inlineThresholdBytes: number;
  onError: (err: unknown) => void;
}

export interface StartOptions {
  trigger: string;
  /** Overrides the flow's own tenant. */
  tenantId?: string;
  /**
   * Called right after the run's record is written: what it journals (a schedule tick, the
   * delete of the queue message that started the run) commits in the same transaction.
   */
  alongside?: () => void;
}

/** The run was stopped with Berth; it stays `running` and resumes at the next start. */
class Interrupted extends Error {}

/** What expressions see: the run's input, earlier outputs by id, and inside a forEach the item. */
interface Scope {
  input: unknown;
  steps: Record<string, unknown>;
  tenant: string | null;
  previous: unknown;
  item?: unknown;
  index?: number;
  /** Only while a step that declares secrets renders its request. */
  secrets?: Record<string, string>;
}

export class FlowEngine {
  private flows = new Map<string, FlowSpec>();
  private readonly active = new Map<string, Promise<FlowRunRecord>>();
  private stopping = false;
  /** Cuts retry backoffs short when Berth stops. */
  private readonly stopped = new AbortController();

  constructor(private readonly options: FlowEngineOptions) {}

  deploy(flows: Map<string, FlowSpec>): void {
    this.flows = flows;
  }

  list(): FlowSpec[] {
    return [...this.flows.values()];
  }

  /** Records the run and starts it; resolves once the run is durable, with its end as `done`. */
  async start(flowName: string, input: unknown, options: StartOptions): Promise<{ runId: string; done: Promise<FlowRunRecord> }> {
    const spec = this.flows.get(flowName);
    if (!spec) throw new BerthError('BERTH_ERR_FLOW_NOT_FOUND', { flow: flowName });
    if (this.stopping) throw new BerthError('BERTH_ERR_SHUTTING_DOWN');
    // Refused before anything is recorded: without the key no step could read its secrets.
    if (spec.secrets.length > 0) loadMasterKey();
    const tenant = options.tenantId ?? (spec.tenant !== undefined ? await this.tenantOf(spec, input) : undefined);
    const id = invocationId();
    const run: FlowRunRecord = {
      id,
      flow: flowName,
      tenantId: tenant ?? null,
      trigger: options.trigger,
      status: 'running',
      input: await this.storeValue(`flow-${id}-input`, input, 'input'),
      output: EMPTY,
      error: null,
      createdAt: Date.now(),
      finishedAt: null,
    };
    this.options.journal.write({ op: 'flowRun', run });
    options.alongside?.();
    await this.options.journal.commit();
    return { runId: id, done: this.execute(spec, run, input, new Map()) };
  }

  /**
   * Secrets that flows with a fixed tenant declare but that tenant does not have: a startup
   * error naming them. (A tenant taken from the input is known only when a run starts.)
   */
  async checkSecrets(configFile: string): Promise<void> {
    const problems: string[] = [];
    for (const flow of this.flows.values()) {
      if (flow.secrets.length === 0 || flow.tenant === undefined || flow.tenant.includes('{%')) continue;
      const held = new Set((await this.options.secrets.list(flow.tenant)).map((secret) => secret.name));
      for (const name of flow.secrets) {
        if (!held.has(name)) problems.push(`flows.${flow.name}: tenant "${flow.tenant}" has no secret "${name}"; set it with \`berth secrets set ${flow.tenant} ${name}\``);
      }
    }
    if (problems.length > 0) throw new BerthError('BERTH_ERR_CONFIG_INVALID', { where: configFile, problem: problems.join('\n') });
  }

  /** Picks up the runs a crash or stop left running. */
  async resume(): Promise<number> {
    const runs = await this.options.store.runningFlowRuns();
    for (const run of runs) {
      const spec = this.flows.get(run.flow);
      if (!spec) {
        this.finish(run, undefined, new StepFailure('-', 'Berth.FlowRemoved', `flow "${run.flow}" is no longer in berth.yml`)).catch(this.options.onError);
        continue;
      }
      const found = await this.options.store.getFlowRun(run.id);
      const completed = new Map((found?.steps ?? []).map((step) => [step.step, step]));
      const input = await this.loadValue(run.input);
      void this.execute(spec, run, input, completed).catch(this.options.onError);
    }
    return runs.length;
  }

  /** Lets the running steps finish and records them; the runs themselves resume at the next start. */
  async stop(): Promise<void> {
    this.stopping = true;
    this.stopped.abort();
    await Promise.allSettled([...this.active.values()]);
  }

  /** A value as stored: inline JSON, or read back from the blob store. */
  async loadValue(value: StoredValue): Promise<unknown> {
    if (value.blob !== null) return JSON.parse((await this.options.blobs.get(value.blob)).toString('utf8'));
    return value.json === null ? undefined : JSON.parse(value.json);
  }

  /** The size of a stored blob, to decide whether to show it inline. */
  blobSize(key: string): Promise<number> {
    return this.options.blobs.size(key);
  }

  private async tenantOf(spec: FlowSpec, input: unknown): Promise<string | undefined> {
    const tenant = await render(spec.tenant, { input });
    if (tenant === undefined || tenant === null || tenant === '') return undefined;
    if (typeof tenant !== 'string') throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `flows.${spec.name}.tenant`, problem: `must give a string, gave ${JSON.stringify(tenant)}` });
    return tenant;
  }

  private execute(spec: FlowSpec, run: FlowRunRecord, input: unknown, completed: Map<string, FlowStepRecord>): Promise<FlowRunRecord> {
    const execution = new Execution(this, this.options, spec, run, completed);
    const done = execution
      .prepare()
      .then(() => execution.runList(spec.steps, { input, steps: {}, tenant: run.tenantId, previous: input }, ''))
      .then(
        (output) => this.finish(run, output, undefined, spec, execution.redactor),
        (err: unknown) => {
          if (err instanceof Interrupted) return run;
          if (!(err instanceof StepFailure)) this.options.onError(err);
          return this.finish(run, undefined, toStepFailure('-', err, execution.redactor));
        },
      )
      .finally(() => this.active.delete(run.id));
    this.active.set(run.id, done);
    return done;
  }

  private async finish(run: FlowRunRecord, output: unknown, failure?: StepFailure, spec = this.flows.get(run.flow), redactor?: Redactor): Promise<FlowRunRecord> {
    const finished: FlowRunRecord = {
      ...run,
      status: failure ? 'failed' : 'succeeded',
      output: failure ? EMPTY : await this.storeValue(`flow-${run.id}-output`, output, 'output', redactor),
      error: failure ? JSON.stringify({ step: failure.step, errorType: failure.errorType, errorMessage: failure.errorMessage }) : null,
      finishedAt: Date.now(),
    };
    this.options.journal.write({ op: 'flowRun', run: finished });
    if (failure && spec?.alertTopic) this.alert(spec.alertTopic, finished, failure);
    await this.options.journal.commit();
    return finished;
  }

  /** Issued with the run's last write, so both commit together; delivery never holds up a run. */
  private alert(topic: string, run: FlowRunRecord, failure: StepFailure): void {
    const alert = {
      type: 'berth.flow.run.failed',
      flow: run.flow,
      runId: run.id,
      tenant: run.tenantId,
      trigger: run.trigger,
      error: { step: failure.step, errorType: failure.errorType, errorMessage: failure.errorMessage },
      createdAt: new Date(run.createdAt).toISOString(),
      finishedAt: new Date(run.finishedAt!).toISOString(),
      run: `/_berth/flow-runs/${run.id}`,
    };
    this.options.publish(topic, JSON.stringify(alert), `Flow ${run.flow} failed at step ${failure.step}`).catch(this.options.onError);
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  /** Resolves once the logs of the steps run so far are stored (they are written behind results). */
  logsWritten(): Promise<void> {
    return this.options.dispatcher.flushRecords();
  }

  /** Waits `ms`, or less if Berth stops meanwhile. */
  pause(ms: number): Promise<void> {
    return sleep(ms, undefined, { signal: this.stopped.signal }).catch(() => {});
  }

  /** Inline JSON, or a blob when large. A value that is not JSON is the step's error, not Berth's. */
  /** `key` names the blob, and is only worked out for a value that needs one. */
  async storeValue(key: string | (() => string), value: unknown, what: string, redactor?: Redactor): Promise<StoredValue> {
    let json: string;
    try {
      json = JSON.stringify(value) ?? 'null';
      // The history never holds a secret, even one a step returned.
      if (redactor) json = redactor.redact(json);
    } catch (err) {
      throw Object.assign(new Error(`the ${what} cannot be stored as JSON: ${(err as Error).message}`), { errorType: 'Berth.NotSerializable' });
    }
    if (Buffer.byteLength(json) <= this.options.inlineThresholdBytes) return { json, blob: null };
    const blob = typeof key === 'string' ? key : key();
    await this.options.blobs.put(blob, json);
    return { json: null, blob };
  }
}

const EMPTY: StoredValue = { json: null, blob: null };

/** One run being executed: its steps in order, forEach items in parallel up to their limit. */
class Execution {
  /**
   * Hides every secret value of the run's tenant that its flow uses, wherever it turns up: a
   * step's output can carry a secret into later steps' inputs, outputs and logs.
   */
  redactor: Redactor | undefined;
  /** The flow's secrets, read once when the run starts (or resumes). */
  private secrets: Record<string, string> = {};

  constructor(
    private readonly engine: FlowEngine,
    private readonly options: FlowEngineOptions,
    private readonly spec: FlowSpec,
    private readonly run: FlowRunRecord,
    private readonly completed: Map<string, FlowStepRecord>,
  ) {}

  /**
   * Reads the flow's secrets for the run's tenant. One that cannot be read is reported by the
   * first step that declares it; the others are still redacted.
   */
  async prepare(): Promise<void> {
    const tenant = this.run.tenantId;
    if (this.spec.secrets.length === 0 || tenant === null) return;
    const found = await Promise.all(this.spec.secrets.map((name) => this.options.secrets.resolve(tenant, [name]).catch(() => ({}))));
    this.secrets = Object.assign({}, ...found) as Record<string, string>;
    if (Object.keys(this.secrets).length > 0) this.redactor = new Redactor(Object.values(this.secrets));
  }

  /** Runs steps one after the other; each gets the previous one's output unless it says otherwise. */
  async runList(steps: StepSpec[], scope: Scope, prefix: string): Promise<unknown> {
    let previous = scope.previous;
    for (const step of steps) {
      const path = prefix + step.id;
      const done = this.completed.get(path);
      if (done?.status === 'succeeded' || done?.status === 'skipped') {
        const output = done.status === 'succeeded' ? await this.engine.loadValue(done.output) : null;
        scope.steps[step.id] = output;
        if (done.status === 'succeeded') previous = output;
        continue;
      }
      if (this.engine.isStopping) throw new Interrupted();
      const here: Scope = { ...scope, previous };
      if (step.if !== undefined && !(await this.condition(step, path, here))) {
        this.record({ step: path, status: 'skipped', attempts: 0, input: EMPTY, output: EMPTY, error: null, invocationId: null, startedAt: Date.now(), finishedAt: Date.now() });
        scope.steps[step.id] = null;
        continue;
      }
      const input = step.input !== undefined ? await this.expression(path, () => render(step.input, here)) : previous;
      const output = step.kind === 'forEach' ? await this.forEach(step, path, input, here) : await this.attempts(step, path, input, here, done);
      scope.steps[step.id] = output;
      previous = output;
    }
    return previous;
  }

  private async condition(step: StepSpec, path: string, scope: Scope): Promise<boolean> {
    return Boolean(await this.expression(path, () => evaluate(step.if!, scope)));
  }

  /** An expression that fails at run time fails its step, saying which. */
  private async expression<T>(path: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (err) {
      const failure = new StepFailure(path, 'Berth.ExpressionError', (err as Error).message);
      await this.fail(path, 0, EMPTY, failure);
      throw failure;
    }
  }

  /**
   * Runs a step until it succeeds or has failed `retries + 1` times, with exponential backoff.
   * Resumed (`interrupted` is its record), it counts on from there: the attempt a crash cut short
   * does not count as a failure, one that failed before a stop does.
   */
  private async attempts(step: Exclude<StepSpec, ForEachStep>, path: string, input: unknown, scope: Scope, interrupted: FlowStepRecord | undefined): Promise<unknown> {
    const earlier = interrupted?.attempts ?? 0;
    let failures = interrupted === undefined ? 0 : interrupted.error !== null ? earlier : Math.max(0, earlier - 1);
    const secrets = step.secrets.length > 0 ? await this.secretsOf(step, path) : undefined;
    const { redactor } = this;
    const storedInput = await this.engine.storeValue(() => this.blobKey(path, 'input'), input, `input of step ${path}`, redactor);
    for (let attempt = earlier + 1; ; attempt++) {
      const startedAt = Date.now();
      const base = { step: path, attempts: attempt, input: storedInput, startedAt };
      this.record({ ...base, status: 'running', output: EMPTY, error: null, invocationId: null, finishedAt: null });
      let invocation: string | null = null;
      try {
        // Nothing starts before what came before it is durable: the previous step's result
        // commits here, in one transaction with this attempt's start.
        await this.options.journal.commit();
        const result = await this.call(step, path, input, secrets ? { ...scope, secrets } : scope, attempt, redactor);
        invocation = result.invocationId;
        const output = await this.engine.storeValue(() => this.blobKey(path, 'output'), result.output, `output of step ${path}`, redactor);
        // Committed with the next step's start, or with the run's end.
        this.record({ ...base, status: 'succeeded', output, error: null, invocationId: invocation, finishedAt: Date.now() });
        return result.output;
      } catch (err) {
        const failure = toStepFailure(path, err, redactor);
        invocation = (err as { invocationId?: string }).invocationId ?? invocation;
        if (++failures > step.retries) {
          await this.fail(path, attempt, storedInput, failure, invocation, startedAt);
          throw failure;
        }
        this.record({ ...base, status: 'running', output: EMPTY, error: errorJson(failure), invocationId: invocation, finishedAt: null });
        // Equal jitter: half fixed, half random, so retries of many runs spread out.
        const delayMs = step.retryDelaySeconds * 1000 * 2 ** (failures - 1);
        await this.engine.pause(delayMs / 2 + (Math.random() * delayMs) / 2);
        // Stopped during the backoff: the retry is the next start's to make.
        if (this.engine.isStopping) {
          await this.options.journal.commit();
          throw new Interrupted();
        }
      }
    }
  }

  /** The step's secrets for this run's tenant; one that cannot be had fails the step, saying which. */
  private async secretsOf(step: StepSpec, path: string): Promise<Record<string, string>> {
    if (step.secrets.every((name) => name in this.secrets)) return Object.fromEntries(step.secrets.map((name) => [name, this.secrets[name]!]));
    try {
      return await this.options.secrets.resolve(this.run.tenantId!, step.secrets);
    } catch (err) {
      const failure = new StepFailure(path, 'Berth.SecretError', (err as Error).message);
      await this.fail(path, 0, EMPTY, failure);
      throw failure;
    }
  }

  private async call(
    step: Exclude<StepSpec, ForEachStep>,
    path: string,
    input: unknown,
    scope: Scope,
    attempt: number,
    redactor: Redactor | undefined,
  ): Promise<{ output: unknown; invocationId: string | null }> {
    if (step.kind === 'http') {
      const request = await this.expression(path, () => render(step.request, scope) as Promise<typeof step.request>);
      return { output: await callHttp(path, request, input, step.timeoutSeconds), invocationId: null };
    }
    const id = stepInvocationId(this.run.id, path);
    const tenant = this.run.tenantId ?? undefined;
    const result = await this.options.dispatcher.invoke({
      functionName: step.functionName,
      event: input,
      // A function shared by all tenants (warm) runs without one; customer code always with it.
      ...(tenant !== undefined && (step.kind === 'code' || this.tenantAllowed(step.functionName)) ? { tenantId: tenant } : {}),
      trigger: 'flow',
      id,
      attempt,
      clientContext: { flow: { name: this.spec.name, runId: this.run.id, step: path } },
      ...(scope.secrets ? { secrets: scope.secrets } : {}),
      ...(redactor ? { redact: (text: string) => redactor.redact(text) } : {}),
    });
    if (result.status !== 'succeeded') {
      throw Object.assign(new StepFailure(path, result.error?.errorType ?? 'Error', result.error?.errorMessage ?? result.status), { invocationId: id });
    }
    return { output: result.payload, invocationId: id };
  }

  private tenantAllowed(functionName: string): boolean {
    return this.options.dispatcher.isolationOf(functionName) !== 'warm';
  }

  /** Runs the nested steps for each item, `concurrency` items at once, and gives their outputs in item order. */
  private async forEach(step: ForEachStep, path: string, input: unknown, scope: Scope): Promise<unknown[]> {
    const value = await this.expression(path, () => evaluate(step.items, scope));
    const items = value === undefined ? [] : Array.isArray(value) ? value : [value];
    const startedAt = Date.now();
    const storedInput = await this.engine.storeValue(() => this.blobKey(path, 'input'), input, `input of step ${path}`, this.redactor);
    this.record({ step: path, status: 'running', attempts: 1, input: storedInput, output: EMPTY, error: null, invocationId: null, startedAt, finishedAt: null });
    const outputs: unknown[] = new Array(items.length);
    let next = 0;
    let failure: unknown;
    const worker = async () => {
      while (failure === undefined && next < items.length) {
        const index = next++;
        const itemScope: Scope = { ...scope, steps: { ...scope.steps }, item: items[index], index, previous: items[index] };
        try {
          outputs[index] = await this.runList(step.steps, itemScope, `${path}[${index}].`);
        } catch (err) {
          failure ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(step.concurrency, items.length) }, worker));
    if (failure !== undefined) {
      if (failure instanceof StepFailure) await this.fail(path, 1, storedInput, new StepFailure(path, failure.errorType, `item step ${failure.step} failed: ${failure.errorMessage}`), null, startedAt);
      throw failure;
    }
    const output = await this.engine.storeValue(() => this.blobKey(path, 'output'), outputs, `output of step ${path}`, this.redactor);
    this.record({ step: path, status: 'succeeded', attempts: 1, input: storedInput, output, error: null, invocationId: null, startedAt, finishedAt: Date.now() });
    return outputs;
  }

  private async fail(path: string, attempts: number, input: StoredValue, failure: StepFailure, invocation: string | null = null, startedAt = Date.now()): Promise<void> {
    const error = errorJson(toStepFailure(path, failure, this.redactor));
    this.record({ step: path, status: 'failed', attempts, input, output: EMPTY, error, invocationId: invocation, startedAt, finishedAt: Date.now() });
    await this.options.journal.commit();
  }

  private record(step: Omit<FlowStepRecord, 'runId'>): void {
    this.options.journal.write({ op: 'flowStep', step: { runId: this.run.id, ...step } });
  }

  private blobKey(path: string, what: string): string {
    return `flow-${this.run.id}-${createHash('sha256').update(path).digest('hex').slice(0, 16)}-${what}`;
  }
}

function toStepFailure(path: string, err: unknown, redactor?: Redactor): StepFailure {
  const failure = err instanceof StepFailure ? err : new StepFailure(path, (err as { errorType?: string }).errorType ?? 'Berth.StepError', (err as Error).message);
  return redactor ? new StepFailure(failure.step, failure.errorType, redactor.redact(failure.errorMessage)) : failure;
}

function errorJson(failure: StepFailure): string {
  return JSON.stringify({ errorType: failure.errorType, errorMessage: failure.errorMessage });
}

/** The same id for every attempt of one step of one run, before and after a restart. */
function stepInvocationId(runId: string, path: string): string {
  return nameBasedId(`${runId}/${path}`);
}
