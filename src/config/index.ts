/** config: reads berth.yml into a validated ProjectSpec; every error names file, line, field and fix. */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { BerthError } from '../errors.js';
import type { FunctionSpec, HttpRoute, ProjectSpec } from '../types.js';
import { configSchema, defaults, type RawConfig } from './schema.js';

const CONFIG_NAMES = ['berth.yml', 'berth.yaml'];
const HANDLER_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.cjs'];
const HTTP_METHODS = new Set(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'ANY']);

export function findConfigFile(dir: string): string | undefined {
  return CONFIG_NAMES.map((name) => path.join(dir, name)).find((file) => existsSync(file));
}

/** One problem found in berth.yml, located by its field path. */
interface Problem {
  path: (string | number)[];
  message: string;
  /** Point at the key itself (an unknown key), not at its value. */
  atKey?: boolean;
}

export function loadProject(dirArg: string): ProjectSpec {
  const dir = path.resolve(dirArg);
  const configFile = findConfigFile(dir);
  if (!configFile) throw new BerthError('BERTH_ERR_CONFIG_NOT_FOUND', { dir });

  const lines = new LineCounter();
  const doc = parseDocument(readFileSync(configFile, 'utf8'), { lineCounter: lines, prettyErrors: false });
  const relFile = path.relative(process.cwd(), configFile) || configFile;
  if (doc.errors.length > 0) {
    const first = doc.errors[0]!;
    const pos = lines.linePos(first.pos[0]);
    throw new BerthError('BERTH_ERR_CONFIG_INVALID', {
      where: `${relFile}:${pos.line}:${pos.col}`,
      problem: `${first.message.split('\n')[0]}. Fix the YAML syntax at that line.`,
    });
  }

  const data: unknown = doc.toJS() ?? {};
  const parsed = configSchema.safeParse(data);
  if (!parsed.success) {
    const problems = parsed.error.issues.flatMap((issue): Problem[] => {
      const at = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
      if (issue.code === 'unrecognized_keys') {
        return issue.keys.map((key) => ({
          path: [...at, key],
          message: `unknown key "${key}"${suggestKeys(at)}`,
          atKey: true,
        }));
      }
      return [{ path: at, message: `${issue.message}, got ${describe(valueAt(data, at))}` }];
    });
    throw configError(relFile, doc, lines, problems);
  }

  const problems: Problem[] = [];
  const project = buildProject(dir, configFile, parsed.data, problems);
  if (problems.length > 0) throw configError(relFile, doc, lines, problems);
  return project;
}

function buildProject(dir: string, configFile: string, raw: RawConfig, problems: Problem[]): ProjectSpec {
  const functions = new Map<string, FunctionSpec>();
  const routeOwners = new Map<string, string>();

  for (const [name, fn] of Object.entries(raw.functions)) {
    const at = ['functions', name];
    const handler = resolveHandler(dir, fn.handler);
    if (typeof handler === 'string') {
      problems.push({ path: [...at, 'handler'], message: handler });
      continue;
    }
    const routes: HttpRoute[] = [];
    (fn.events ?? []).forEach((event, index) => {
      const route = parseRoute(event.http);
      if (typeof route === 'string') {
        problems.push({ path: [...at, 'events', index, 'http'], message: route });
        return;
      }
      const clash = findClash(routeOwners, route);
      if (clash) {
        problems.push({
          path: [...at, 'events', index, 'http'],
          message: `route "${route.method} ${route.path}" clashes with "${clash.route}" of function "${clash.owner}". Give one of them a different method or path.`,
        });
        return;
      }
      routeOwners.set(`${route.method} ${routeShape(route.path)}`, `${name}\u0000${route.method} ${route.path}`);
      routes.push(route);
    });
    const isolation = fn.isolation ?? raw.defaults?.isolation ?? defaults.isolation;
    functions.set(name, {
      name,
      handler: fn.handler,
      file: handler.file,
      exportName: handler.exportName,
      timeoutSeconds: fn.timeout ?? raw.defaults?.timeout ?? defaults.timeoutSeconds,
      memoryMb: fn.memory ?? raw.defaults?.memory ?? defaults.memoryMb,
      isolation,
      environment: stringifyValues({ ...raw.defaults?.environment, ...fn.environment }),
      description: fn.description ?? '',
      prewarm: fn.prewarm ?? (isolation === 'fresh' ? 2 : 1),
      idleTimeoutSeconds: fn.idleTimeout ?? raw.defaults?.idleTimeout ?? defaults.idleTimeoutSeconds,
      routes,
    });
  }

  return {
    dir,
    configFile,
    service: raw.service ?? path.basename(dir),
    functions,
    gateway: { bodyLimitBytes: parseSize(raw.gateway?.bodyLimit ?? defaults.bodyLimit) },
    runtime: { maxEnvironments: raw.runtime?.maxEnvironments ?? defaultMaxEnvironments() },
  };
}

/** `src/lead.handler` → the source file that exists and the export name, or a problem. */
function resolveHandler(dir: string, handler: string): { file: string; exportName: string } | string {
  const dot = handler.lastIndexOf('.');
  const slash = handler.lastIndexOf('/');
  if (dot <= slash || dot === handler.length - 1) {
    return `expected "path/to/file.exportName" (e.g. "src/lead.handler"), got "${handler}"`;
  }
  const base = handler.slice(0, dot);
  const exportName = handler.slice(dot + 1);
  const candidates = [base, ...HANDLER_EXTENSIONS.map((ext) => base + ext)].map((p) => path.resolve(dir, p));
  const file = candidates.find((c) => path.extname(c) !== '' && existsSync(c));
  if (!file) {
    return `handler file not found: looked for ${HANDLER_EXTENSIONS.map((ext) => base + ext).join(', ')} in ${dir}. Create the file or fix the path.`;
  }
  return { file, exportName };
}

function parseRoute(value: string | { method: string; path: string }): HttpRoute | string {
  const [method, routePath, extra] =
    typeof value === 'string' ? value.trim().split(/\s+/) : [value.method, value.path, undefined];
  if (!method || !routePath || extra !== undefined) {
    return `expected "METHOD /path" (e.g. "POST /lead/{leadId}"), got "${typeof value === 'string' ? value : JSON.stringify(value)}"`;
  }
  const upper = method.toUpperCase();
  if (!HTTP_METHODS.has(upper)) {
    return `unknown HTTP method "${method}"; use one of ${[...HTTP_METHODS].join(', ')}`;
  }
  if (!routePath.startsWith('/')) return `route path must start with "/", got "${routePath}"`;
  if (routePath.startsWith('/_berth/') || routePath.startsWith('/2015-03-31/')) {
    return `route path "${routePath}" is reserved for Berth's own API; choose another path`;
  }
  const segments = routePath.split('/').slice(1);
  for (const [i, segment] of segments.entries()) {
    if (!segment.includes('{')) continue;
    const match = /^\{([A-Za-z0-9_]+)(\+?)\}$/.exec(segment);
    if (!match) return `path segment "${segment}" must be a whole parameter like {id} or {proxy+}`;
    if (match[2] === '+' && i !== segments.length - 1) return `greedy parameter ${segment} must be the last path segment`;
  }
  return { method: upper, path: routePath };
}

/** The path with parameter names erased, so /a/{x} and /a/{y} are recognised as the same route. */
function routeShape(routePath: string): string {
  return routePath.replace(/\{[A-Za-z0-9_]+\+\}/g, '*').replace(/\{[A-Za-z0-9_]+\}/g, ':');
}

function findClash(owners: Map<string, string>, route: HttpRoute): { owner: string; route: string } | undefined {
  const shape = routeShape(route.path);
  const keys =
    route.method === 'ANY'
      ? [...owners.keys()].filter((key) => key.slice(key.indexOf(' ') + 1) === shape)
      : [`${route.method} ${shape}`, `ANY ${shape}`];
  for (const key of keys) {
    const found = owners.get(key);
    if (found) {
      const [owner, ownerRoute] = found.split('\u0000') as [string, string];
      return { owner, route: ownerRoute };
    }
  }
  return undefined;
}

function configError(file: string, doc: Document, lines: LineCounter, problems: Problem[]): BerthError {
  const located = problems.map((problem) => {
    const offset = problemOffset(doc, problem);
    const pos = offset === undefined ? '' : `:${lines.linePos(offset).line}:${lines.linePos(offset).col}`;
    const field = problem.path.join('.') || '(top level)';
    return `${file}${pos} ${field}: ${problem.message}`;
  });
  const where = located.length === 1 ? located[0]!.split(' ')[0]! : file;
  const problem =
    located.length === 1 ? located[0]!.slice(where.length + 1) : `${located.length} problems\n  ${located.join('\n  ')}`;
  return new BerthError('BERTH_ERR_CONFIG_INVALID', { where, problem });
}

type Ranged = { range?: [number, number, number] } | undefined;

/** Where in the file a problem is: its key for an unknown key, else its value, else its parent. */
function problemOffset(doc: Document, problem: Problem): number | undefined {
  const parent = doc.getIn(problem.path.slice(0, -1), true);
  if (problem.atKey && isMap(parent)) {
    const name = problem.path[problem.path.length - 1];
    const pair = parent.items.find((item) => isScalar(item.key) && item.key.value === name);
    if (pair) return (pair.key as Ranged)?.range?.[0];
  }
  const node = doc.getIn(problem.path, true) as Ranged;
  return node?.range?.[0] ?? (parent as Ranged)?.range?.[0];
}

function valueAt(data: unknown, at: (string | number)[]): unknown {
  let value = data;
  for (const key of at) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string | number, unknown>)[key];
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return JSON.stringify(value);
}

function suggestKeys(at: (string | number)[]): string {
  const keys =
    at.length === 0
      ? ['service', 'defaults', 'gateway', 'runtime', 'functions']
      : at[0] === 'functions' && at.length === 2
        ? ['handler', 'description', 'timeout', 'memory', 'isolation', 'environment', 'prewarm', 'idleTimeout', 'events']
        : undefined;
  return keys ? `; expected one of ${keys.join(', ')}` : '';
}

function stringifyValues(env: Record<string, string | number | boolean>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

const SIZE_UNITS: Record<string, number> = { b: 1, kb: 1024, mb: 1024 ** 2, gb: 1024 ** 3 };

export function parseSize(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*(b|kb|mb|gb)?$/i.exec(value.trim())!;
  return Math.floor(Number(match[1]) * SIZE_UNITS[(match[2] ?? 'b').toLowerCase()]!);
}

/** Enough environments to use half the machine's memory at ~64 MB each, within sane bounds. */
function defaultMaxEnvironments(): number {
  return Math.max(8, Math.min(256, Math.floor(os.totalmem() / 2 / (64 * 1024 ** 2))));
}
