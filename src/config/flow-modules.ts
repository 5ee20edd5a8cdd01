/**
 * Flows written in TypeScript (`berth/flows`): berth.yml names the module, and it is bundled
 * and evaluated when berth.yml is read, giving the same plain object a YAML flow is. It is the
 * project's own definition code, run once in Berth's process, never customer step code.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

const DEFINE_MODULE = fileURLToPath(new URL('../flows/define.js', import.meta.url));

/**
 * Replaces each flow given as a module path (`sync: flows/sync.ts`) in berth.yml's data with
 * what the module default-exports; returns what could not be loaded, by flow name.
 */
export function loadFlowModules(dir: string, data: unknown): { flow: string; message: string }[] {
  const flows = (data as { flows?: unknown } | null)?.flows;
  if (flows === null || typeof flows !== 'object') return [];
  const problems: { flow: string; message: string }[] = [];
  for (const [name, value] of Object.entries(flows as Record<string, unknown>)) {
    if (typeof value !== 'string') continue;
    const loaded = loadFlowModule(dir, value);
    if ('problem' in loaded) problems.push({ flow: name, message: loaded.problem });
    else (flows as Record<string, unknown>)[name] = loaded.definition;
  }
  return problems;
}

function loadFlowModule(dir: string, module: string): { definition: unknown } | { problem: string } {
  const file = path.resolve(dir, module);
  if (!existsSync(file)) return { problem: `flow module not found: ${module} in ${dir}. Create it (export default flow({...}) from 'berth/flows') or fix the path.` };
  let code: string;
  try {
    const result = buildSync({ entryPoints: [file], bundle: true, platform: 'node', format: 'cjs', write: false, logLevel: 'silent', alias: { 'berth/flows': DEFINE_MODULE } });
    code = result.outputFiles[0]!.text;
  } catch (err) {
    const errors = (err as { errors?: { text: string; location?: { line: number; column: number } | null }[] }).errors ?? [];
    const first = errors[0];
    return { problem: `${module}${first?.location ? `:${first.location.line}:${first.location.column}` : ''}: ${first?.text ?? (err as Error).message}` };
  }
  const loaded: { exports: { default?: unknown } } = { exports: {} };
  try {
    new Function('module', 'exports', 'require', code)(loaded, loaded.exports, createRequire(file));
  } catch (err) {
    return { problem: `${module} threw while loading: ${(err as Error).message}` };
  }
  const definition = loaded.exports.default;
  if (definition === null || typeof definition !== 'object') return { problem: `${module} has no default export; end it with export default flow({ steps: [...] })` };
  return { definition };
}
