/**
 * Limits changed while Berth runs (`berth limits set`, `PATCH /_berth/limits`, Lambda's
 * Put/DeleteFunctionConcurrency): validated against everything else in force, persisted,
 * then handed to admission, which applies them at once. An invalid change changes nothing.
 */
import { BerthError } from '../errors.js';
import type { Store } from '../store/index.js';
import type { LimitSet, ProjectSpec } from '../types.js';
import type { Admission, AdmissionStats } from './admission.js';
import { applyOverrides, combineOverrides, limitProblems, type LimitOverrides } from './limits.js';

export class LiveLimits {
  private constructor(
    private readonly store: Store,
    private readonly admission: Admission,
    private project: ProjectSpec,
    private overrides: LimitOverrides,
    private readonly warn: (message: string) => void,
    private readonly onApply: (limits: LimitSet) => void,
  ) {}

  /** `onApply` hears every set of limits put in force, for what admission does not enforce (provisioned environments). */
  static async open(
    store: Store,
    admission: Admission,
    project: ProjectSpec,
    warn: (message: string) => void,
    onApply: (limits: LimitSet) => void,
  ): Promise<LiveLimits> {
    const saved = await store.loadLimitOverrides();
    const live = new LiveLimits(store, admission, project, saved ? (JSON.parse(saved) as LimitOverrides) : {}, warn, onApply);
    live.deploy(project);
    return live;
  }

  /** berth.yml was (re)loaded: its limits, with the live changes over them where they still fit. */
  deploy(project: ProjectSpec): void {
    this.project = project;
    const combined = applyOverrides(project.limits, this.overrides);
    const problems = limitProblems(combined, new Set(project.functions.keys()));
    if (problems.length > 0) {
      this.warn(`live limit changes no longer fit berth.yml (${problems.join('; ')}); using berth.yml's limits until they are set again`);
      this.apply(project.limits);
      return;
    }
    this.apply(combined);
  }

  get limits(): LimitSet {
    return this.admission.current;
  }

  /** What is running against the limits, waiting for them, and how often callers were throttled. */
  usage(): AdmissionStats {
    return this.admission.stats();
  }

  get changes(): LimitOverrides {
    return this.overrides;
  }

  async set(patch: LimitOverrides): Promise<LimitSet> {
    const overrides = combineOverrides(this.overrides, patch);
    const combined = applyOverrides(this.project.limits, overrides);
    for (const name of Object.keys(patch.groups ?? {})) {
      if (!this.project.limits.groups.has(name)) throw new BerthError('BERTH_ERR_LIMITS_INVALID', { problem: `group "${name}" is not declared in berth.yml (groups: ...)` });
    }
    const problems = limitProblems(combined, new Set(this.project.functions.keys()));
    if (problems.length > 0) throw new BerthError('BERTH_ERR_LIMITS_INVALID', { problem: problems.join('; ') });
    await this.store.saveLimitOverrides(JSON.stringify(overrides));
    this.overrides = overrides;
    this.apply(combined);
    return combined;
  }

  private apply(limits: LimitSet): void {
    this.admission.setLimits(limits);
    this.onApply(limits);
  }
}
