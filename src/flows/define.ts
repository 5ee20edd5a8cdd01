/**
 * `berth/flows`: flows written in TypeScript instead of YAML, with the same meaning.
 *
 *   import { flow, step } from 'berth/flows';
 *   export default flow({
 *     tenant: '{% input.customer %}',
 *     steps: [
 *       step.http('list', { url: "{% input.api & '/files' %}" }),
 *       step.forEach('files', 'steps.list.body.files', [step.code('transform', 'customer/transform.ts')], { concurrency: 10 }),
 *       step.function('post', 'postResults'),
 *     ],
 *   });
 *
 * berth.yml names the module under `flows:` (`sync: flows/sync.ts`); Berth bundles it when it reads
 * berth.yml and checks the result like a flow written there. It imports nothing, so it stays tiny.
 */

type Duration = number | string;

export interface StepOptions {
  /** JSONata; the step is skipped unless it is truthy. */
  if?: string;
  /** The step's input, with `{% expression %}` anywhere in it; default: the previous step's output. */
  input?: unknown;
  retries?: number;
  retryDelay?: Duration;
  timeout?: Duration;
  secrets?: string[];
}

export interface HttpRequest {
  method?: string;
  url: string;
  headers?: Record<string, string>;
  body?: unknown;
}

export interface StepDefinition extends StepOptions {
  id: string;
  function?: string;
  code?: string;
  http?: HttpRequest;
  forEach?: string;
  concurrency?: number;
  steps?: StepDefinition[];
}

export interface FlowDefinition {
  description?: string;
  tenant?: string;
  alerts?: { webhook: string; retries?: number };
  /** As in berth.yml: webhook, schedule or queue events. */
  events?: Record<string, unknown>[];
  steps: StepDefinition[];
}

export const step = {
  /** Invokes a Berth function. */
  function: (id: string, functionName: string, options: StepOptions = {}): StepDefinition => ({ id, function: functionName, ...options }),
  /** Runs a module's `handler` export, isolated per tenant. */
  code: (id: string, module: string, options: StepOptions = {}): StepDefinition => ({ id, code: module, ...options }),
  /** Berth makes the HTTP call itself. */
  http: (id: string, request: HttpRequest, options: StepOptions = {}): StepDefinition => ({ id, http: request, ...options }),
  /** Runs `steps` for each item of the list `items` (JSONata) gives, `concurrency` at a time. */
  forEach: (id: string, items: string, steps: StepDefinition[], options: StepOptions & { concurrency?: number } = {}): StepDefinition => ({
    id,
    forEach: items,
    steps,
    ...options,
  }),
};

export function flow(definition: FlowDefinition): FlowDefinition {
  return definition;
}
