/**
 * Messages between the platform and a sandbox process, over the Node IPC channel.
 * The channel is ordered, so log messages always arrive before their invocation's result.
 *
 * The platform may send the next invocation while one is running: the sandbox queues it
 * and starts it when the running one has reported, so invocations still run one at a
 * time, but the sandbox finds its next message already there instead of being woken.
 */
import type { FunctionError } from '../types.js';

export interface InvokeMessage {
  t: 'invoke';
  id: string;
  /** Delivery number of this event: retries keep `id` and count up from 1. */
  attempt: number;
  event: unknown;
  /** The sandbox starts the clock when it starts the invocation, which may be queued. */
  timeoutMs: number;
  tenantId?: string;
  clientContext?: unknown;
  /** A flow step's declared secrets, by name: `context.secrets`. */
  secrets?: Record<string, string>;
}

/** Runs a service's start() export once; its output is logged under `id` for as long as the process lives. */
export interface StartMessage {
  t: 'start';
  id: string;
  functionName: string;
}

export type ToSandbox = InvokeMessage | StartMessage | { t: 'shutdown' };

export type FromSandbox =
  /** Init finished; `log` is what init printed. */
  | { t: 'ready'; initMs: number; log: string }
  | { t: 'init-error'; error: FunctionError; log: string }
  | { t: 'log'; id: string; text: string }
  /** `durationMs` is measured inside the sandbox: the handler's time, as Lambda reports it. */
  | { t: 'result'; id: string; payload?: unknown; error?: FunctionError; maxRssKb: number; durationMs: number }
  /** The environment cannot be reused (uncaught exception, unhandled rejection) and will exit. */
  | { t: 'fatal'; id: string; error: FunctionError };

/** Environment variables the platform passes to the sandbox entry, besides Lambda's own. */
export const SANDBOX_ENV = {
  bundle: 'BERTH_BUNDLE',
  handler: 'BERTH_HANDLER',
  exportName: 'BERTH_HANDLER_EXPORT',
  startExport: 'BERTH_START_EXPORT',
} as const;
