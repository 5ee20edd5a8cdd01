/**
 * Flows: durable chains of steps. A step calls a function, runs the customer's own code
 * module (in tenant isolation), calls HTTP, or runs nested steps for each item of a list.
 * Expressions (`if`, `forEach`, and `{% ... %}` inside `input` and `http`) are JSONata, over
 * `input` (the run's input), `steps` (each earlier step's output by id), `item`/`index` inside
 * a forEach, and `tenant`.
 */

import type { QueueTriggerSpec, ScheduleSpec, WebhookSpec } from '../types.js';

interface StepCommon {
  id: string;
  /** Where the step sits in the flow, unique per run: `fetch`, `files.transform`. */
  path: string;
  /** JSONata; the step is skipped unless it is truthy. */
  if?: string;
  /** A template for the step's input; without it the step gets the previous step's output. */
  input?: unknown;
  retries: number;
  retryDelaySeconds: number;
  timeoutSeconds: number;
  /** The run's tenant's secrets this step gets: `secrets.NAME` in its expressions, `context.secrets` in its code. */
  secrets: string[];
}

export interface FunctionStep extends StepCommon {
  kind: 'function';
  /** The Berth function called; for a code step, the function Berth made of the module. */
  functionName: string;
}

export interface CodeStep extends StepCommon {
  kind: 'code';
  functionName: string;
  /** The module as written in berth.yml. */
  module: string;
}

export interface HttpStep extends StepCommon {
  kind: 'http';
  request: { method: string; url: string; headers: Record<string, string>; body?: unknown };
}

export interface ForEachStep extends StepCommon {
  kind: 'forEach';
  /** JSONata giving the array. */
  items: string;
  concurrency: number;
  steps: StepSpec[];
}

export type StepSpec = FunctionStep | CodeStep | HttpStep | ForEachStep;

export interface FlowSpec {
  name: string;
  description: string;
  /** A fixed tenant, or a `{% ... %}` template over the input; customer code runs isolated per tenant. */
  tenant?: string;
  steps: StepSpec[];
  /** Every secret a step declares, so a run that needs some can be refused before it starts. */
  secrets: string[];
  /** The topic a failed run is published to (its subscriber is the alerts webhook). */
  alertTopic?: string;
  /** What starts a run besides berth flow run and the API: each event becomes the run's input. */
  queueTriggers: QueueTriggerSpec[];
  schedules: ScheduleSpec[];
  webhooks: WebhookSpec[];
}
