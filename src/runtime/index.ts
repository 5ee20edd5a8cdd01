/** runtime: sandbox processes, their pools and isolation, and bundling of handlers. */
import type { FunctionSpec, LimitSet, ProjectSpec } from '../types.js';
import { EnvironmentBudget } from './budget.js';
import { functionArn, REGION } from '../aws-identity.js';
import { FunctionPool } from './pool.js';

export { bundleFunctions } from './bundler.js';
export type { FunctionPool } from './pool.js';

export { ACCOUNT_ID, functionArn, REGION } from '../aws-identity.js';

/**
 * All live pools. A deploy (start, or a reload in `berth dev`) swaps in new pools
 * at once; the old ones finish their running invocations before they are closed.
 */
export class Runtime {
  private pools = new Map<string, FunctionPool>();
  private readonly budget: EnvironmentBudget;
  private readonly reaper: NodeJS.Timeout;

  constructor(
    maxEnvironments: number,
    private readonly platformEnv: Record<string, string>,
    private readonly warn: (message: string) => void,
  ) {
    this.budget = new EnvironmentBudget(maxEnvironments);
    this.reaper = setInterval(() => {
      const now = Date.now();
      for (const pool of this.pools.values()) pool.reap(now);
    }, 1000).unref();
  }

  deploy(project: ProjectSpec, bundles: Map<string, string>): void {
    const previous = this.pools;
    this.pools = new Map(
      [...project.functions.values()].map((spec): [string, FunctionPool] => [
        spec.name,
        new FunctionPool(
          {
            spec,
            bundle: bundles.get(spec.name)!,
            functionArn: functionArn(spec.name),
            region: REGION,
            platformEnv: this.platformEnv,
            maxPayloadBytes: project.events.maxPayloadBytes,
            warn: this.warn,
          },
          this.budget,
        ),
      ]),
    );
    for (const pool of previous.values()) void pool.close();
  }

  /** Provisioned concurrency from the limits in force (live changes included); a service keeps its minInstances. */
  applyProvisioned(limits: LimitSet): void {
    for (const pool of this.pools.values()) {
      if (pool.spec.mode === 'service') continue;
      pool.setProvisioned(limits.functions.get(pool.spec.name)?.provisionedConcurrency ?? 0);
    }
  }

  pool(name: string): FunctionPool | undefined {
    return this.pools.get(name);
  }

  functions(): FunctionSpec[] {
    return [...this.pools.values()].map((pool) => pool.spec);
  }

  async close(): Promise<void> {
    clearInterval(this.reaper);
    await Promise.all([...this.pools.values()].map((pool) => pool.close()));
  }
}
