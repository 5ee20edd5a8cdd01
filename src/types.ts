/**
 * Berth's shared vocabulary.
 *
 * - function:    a handler and its settings, declared in berth.yml.
 * - environment: one sandbox process bound to one function (and, for `tenant`
 *                isolation, one tenant); it keeps module state between invocations.
 * - invocation:  one call of a function, with a stable id (context.awsRequestId).
 * - tenant:      the customer an invocation runs for; `tenant` isolation never lets
 *                two tenants share an environment.
 * - trigger:     what starts an invocation (an HTTP route, the Invoke API, the CLI).
 */

export type Isolation = 'fresh' | 'tenant' | 'warm';

export interface HttpRoute {
  method: string; // upper-case, or ANY
  path: string; // API Gateway style: /lead/{leadId}, /files/{proxy+}
}

export interface FunctionSpec {
  name: string;
  /** The handler as written in berth.yml, e.g. `src/lead.handler`. */
  handler: string;
  /** Absolute path of the source file the handler lives in. */
  file: string;
  exportName: string;
  timeoutSeconds: number;
  memoryMb: number;
  isolation: Isolation;
  environment: Record<string, string>;
  description: string;
  /** Initialised environments kept ready (not yet bound to a tenant). */
  prewarm: number;
  idleTimeoutSeconds: number;
  routes: HttpRoute[];
}

export interface ProjectSpec {
  /** Absolute directory holding berth.yml. */
  dir: string;
  configFile: string;
  service: string;
  functions: Map<string, FunctionSpec>;
  gateway: { bodyLimitBytes: number };
  runtime: { maxEnvironments: number };
}

/** What a trigger asks the dispatcher to run. */
export interface InvocationRequest {
  functionName: string;
  event: unknown;
  tenantId?: string;
  /** Decoded client context (Invoke API `X-Amz-Client-Context`). */
  clientContext?: unknown;
  trigger: 'http' | 'invoke-api' | 'cli';
}

export interface FunctionError {
  errorType: string;
  errorMessage: string;
  trace: string[];
}

export type InvocationStatus = 'succeeded' | 'failed' | 'timed_out';

export interface InvocationResult {
  id: string;
  functionName: string;
  status: InvocationStatus;
  /** The handler's return value, when status is `succeeded`. */
  payload?: unknown;
  error?: FunctionError;
  durationMs: number;
  billedMs: number;
  initDurationMs?: number;
  maxMemoryMb: number;
  /** Log text of this invocation, START to REPORT. */
  log: string;
}
