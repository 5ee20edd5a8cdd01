// What the processes of bench/flow.ts share: the bearer token, the step names, the files a run
// pulls, and the messages the stand-ins, clients and BullMQ worker exchange with the orchestrator.
// No side effects: every process of the benchmark imports it.

/**
 * The literal token the fixture's post steps send (bench/fixtures/flow/berth.yml) and the
 * stand-in API expects; the BullMQ workers send it too. Keep the three in step: a mismatch
 * fails every post with 401, loudly.
 */
export const TOKEN = 'flowbench-literal-token-000';

/** Seed 000's integration, in order: the fixture's `integration` flow and the BullMQ chain. */
export const STEPS = ['fetch', 'transform', 'validate', 'map', 'enrich', 'post'] as const;
export type StepName = (typeof STEPS)[number];

/** The file run n pulls: the stand-in serves `files` different orders, round robin. */
export function fileName(n: number, files: number): string {
  return `order-${String(((n % files) + files) % files).padStart(5, '0')}.xml`;
}

/** What the stand-in API reports at GET /_stats. */
export interface StandInStats {
  /** GET /files/<name> answered, GET /files (lists) answered. */
  fetches: number;
  lists: number;
  /** POST /records accepted (201), refused for the token (401), refused for the body (422). */
  posts: number;
  unauthorized: number;
  rejected: number;
  /** With ?samples=1: the first body posted for each order id since the last POST /_reset. */
  samples?: Record<string, string>;
}
