/** `berth flow ...`: run a flow, list its runs, show one run's step timeline. They act on a running Berth. */
import { BerthError } from '../errors.js';
import { printTable, readJsonInput, say } from './commands.js';
import { request, resolveTarget } from './target.js';

export interface FlowFlags {
  data?: string;
  file?: string;
  tenant?: string;
  async?: boolean;
  limit?: number;
  url?: string;
  dir?: string;
}

interface RunView {
  id: string;
  flow: string;
  status: string;
  tenant: string | null;
  trigger: string;
  createdAt: number;
  durationMs: number | null;
  error: { step: string; errorType: string; errorMessage: string } | null;
  output?: unknown;
  steps?: { step: string; status: string; attempts: number; durationMs: number | null; startedAt: number; error: { errorType: string; errorMessage: string } | null }[];
}

export async function flow(subcommand: string | undefined, name: string | undefined, flags: FlowFlags): Promise<number> {
  const target = resolveTarget({ ...(flags.url ? { url: flags.url } : {}), ...(flags.dir ? { dir: flags.dir } : {}) });
  if (target.kind !== 'remote') {
    throw new BerthError('BERTH_ERR_NO_INSTANCE', { problem: `Flows run on a running Berth; none runs ${target.dir}. Start it with \`berth start ${target.dir}\`.` });
  }
  const needName = (what: string) => {
    if (!name) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `berth flow ${subcommand}`, problem: `needs ${what}: berth flow ${subcommand} <${what}>` });
    return encodeURIComponent(name);
  };
  switch (subcommand) {
    case 'ls': {
      const { flows } = (await json(await request(`${target.url}/_berth/flows`))) as { flows: { name: string; tenant: string | null; steps: string[] }[] };
      printTable([['FLOW', 'TENANT', 'STEPS'], ...flows.map((f) => [f.name, f.tenant ?? '-', f.steps.join(' → ')])]);
      return 0;
    }
    case 'run': {
      const flowName = needName('flow');
      const input = readJsonInput(flags);
      const response = await request(`${target.url}/_berth/flows/${flowName}/runs${flags.async ? '' : '?wait=true'}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ input, ...(flags.tenant !== undefined ? { tenant: flags.tenant } : {}) }),
      });
      const run = (await json(response)) as RunView;
      if (flags.async) {
        say(run.id ?? (run as unknown as { runId: string }).runId);
        return 0;
      }
      printRun(run);
      if (run.status !== 'succeeded') return 1;
      say(JSON.stringify(run.output ?? null, null, 2));
      return 0;
    }
    case 'runs': {
      const flowName = needName('flow');
      const { runs } = (await json(await request(`${target.url}/_berth/flows/${flowName}/runs?limit=${flags.limit ?? 20}`))) as { runs: RunView[] };
      printTable([
        ['RUN', 'STATUS', 'TENANT', 'TRIGGER', 'STARTED', 'MS', 'ERROR'],
        ...runs.map((r) => [r.id, r.status, r.tenant ?? '-', r.trigger, new Date(r.createdAt).toISOString(), r.durationMs === null ? '-' : String(r.durationMs), r.error ? `${r.error.step}: ${r.error.errorType}` : '-']),
      ]);
      return 0;
    }
    case 'show': {
      const run = (await json(await request(`${target.url}/_berth/flow-runs/${needName('run id')}`))) as RunView;
      printRun(run);
      return 0;
    }
    default:
      throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: `berth flow ${subcommand ?? ''}`.trim(), problem: 'use one of: berth flow ls | run <flow> | runs <flow> | show <run id>' });
  }
}

async function json(response: Response): Promise<unknown> {
  const body = (await response.json()) as { code?: string; message?: string };
  if (!response.ok) throw new BerthError('BERTH_ERR_BAD_REQUEST', { field: 'flow', problem: body.message ?? `HTTP ${response.status}` });
  return body;
}

/** The run's status line and its step timeline, times relative to the run's start. */
function printRun(run: RunView): void {
  say(`run ${run.id} of ${run.flow}: ${run.status}${run.durationMs !== null ? ` in ${run.durationMs} ms` : ''}${run.tenant ? ` (tenant ${run.tenant})` : ''}, trigger ${run.trigger}`);
  if (run.error) say(`failed at step ${run.error.step}: ${run.error.errorType}: ${run.error.errorMessage}`);
  printTable([
    ['STEP', 'STATUS', 'ATTEMPTS', 'AT MS', 'MS', 'ERROR'],
    ...(run.steps ?? []).map((s) => [s.step, s.status, String(s.attempts), String(s.startedAt - run.createdAt), s.durationMs === null ? '-' : String(s.durationMs), s.error ? `${s.error.errorType}: ${s.error.errorMessage}` : '-']),
  ]);
}
