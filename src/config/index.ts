/** config: reads berth.yml into a validated ProjectSpec; every error names file, line, field and fix. */
import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import { BerthError } from '../errors.js';
import { parseSchedule } from '../events/schedule-expression.js';
import { limitProblems } from '../dispatch/limits.js';
import type {
  Destination,
  FunctionLimits,
  FunctionSpec,
  GroupLimits,
  LimitSet,
  HttpRoute,
  ProjectSpec,
  QueueSpec,
  QueueTriggerSpec,
  ScheduleSpec,
  SmtpSpec,
  SubscriptionSpec,
  TopicSpec,
  WebhookSpec,
} from '../types.js';
import { loadFlowModules } from './flow-modules.js';
import { buildFlows } from './flows.js';
import { configSchema, defaults, eventSchemas, type EventKind, type RawConfig } from './schema.js';

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
  const moduleProblems = loadFlowModules(dir, data).map(({ flow, message }): Problem => ({ path: ['flows', flow], message }));
  if (moduleProblems.length > 0) throw configError(relFile, doc, lines, moduleProblems);
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
  const project = buildProject(dir, configFile, { ...parsed.data, functions: parsed.data.functions ?? {} }, problems);
  if (problems.length > 0) throw configError(relFile, doc, lines, problems);
  return project;
}

function buildProject(dir: string, configFile: string, raw: RawConfig, problems: Problem[]): ProjectSpec {
  const functions = new Map<string, FunctionSpec>();
  const routeOwners = new Map<string, string>();
  /** Names used before they may be declared, checked once everything is read. */
  const references: Reference[] = [];

  for (const [name, fn] of Object.entries(raw.functions)) {
    const at = ['functions', name];
    const entry = fn.runtime === 'provided' ? resolveBootstrap(dir, fn, at, problems) : resolveEntry(dir, fn, at, problems);
    if (!entry) continue;
    const mode = fn.mode ?? 'function';
    const service = serviceSettings(fn, mode, at, problems);
    const { routes, queueTriggers, schedules, webhooks } = buildEvents(fn.events ?? [], { owner: name, kind: 'function', at, routeOwners, references, problems });
    const asyncRaw = fn.async ?? {};
    for (const key of ['onSuccess', 'onFailure'] as const) {
      const target = asyncRaw[key];
      if (target) references.push(destinationReference([...at, 'async', key], target));
    }
    if (asyncRaw.deadLetterQueue) references.push({ path: [...at, 'async', 'deadLetterQueue'], kind: 'queue', name: asyncRaw.deadLetterQueue });
    const isolation = fn.isolation ?? raw.defaults?.isolation ?? defaults.isolation;
    functions.set(name, {
      name,
      handler: fn.handler ?? fn.start ?? '',
      file: entry.file,
      exportName: entry.exportName,
      runtime: fn.runtime ?? 'nodejs',
      ...(fn.runtime === 'provided' ? { bootstrap: entry.file } : {}),
      ...(entry.startExport !== undefined ? { startExport: entry.startExport } : {}),
      mode,
      minInstances: service.minInstances,
      maxInstances: service.maxInstances,
      scaleUpRate: fn.scaleUpRate ?? defaults.scaleUpRate,
      timeoutSeconds: fn.timeout ?? raw.defaults?.timeout ?? defaults.timeoutSeconds,
      memoryMb: fn.memory ?? raw.defaults?.memory ?? defaults.memoryMb,
      isolation,
      environment: stringifyValues({ ...raw.defaults?.environment, ...fn.environment }),
      description: fn.description ?? '',
      prewarm: fn.prewarm ?? (entry.startExport !== undefined ? 0 : isolation === 'fresh' ? 2 : 1),
      // A service's minimum instances are environments kept started, as provisioned concurrency is;
      // a start() service's instances have environments of their own, outside the pool.
      provisionedConcurrency: mode === 'service' ? (entry.startExport !== undefined ? 0 : service.minInstances) : (fn.provisionedConcurrency ?? 0),
      idleTimeoutSeconds: fn.idleTimeout ?? raw.defaults?.idleTimeout ?? defaults.idleTimeoutSeconds,
      routes,
      async: {
        retries: asyncRaw.retries ?? defaults.async.retries,
        retryDelaySeconds: asyncRaw.retryDelay !== undefined ? parseDuration(asyncRaw.retryDelay) : defaults.async.retryDelaySeconds,
        maxRetryDelaySeconds: asyncRaw.maxRetryDelay !== undefined ? parseDuration(asyncRaw.maxRetryDelay) : defaults.async.maxRetryDelaySeconds,
        maxEventAgeSeconds: asyncRaw.maxEventAge !== undefined ? parseDuration(asyncRaw.maxEventAge) : defaults.async.maxEventAgeSeconds,
        ...(asyncRaw.onSuccess ? { onSuccess: asyncRaw.onSuccess as Destination } : {}),
        ...(asyncRaw.onFailure ? { onFailure: asyncRaw.onFailure as Destination } : {}),
        ...(asyncRaw.deadLetterQueue ? { deadLetterQueue: asyncRaw.deadLetterQueue } : {}),
        concurrency: asyncRaw.concurrency ?? defaults.async.concurrency,
      },
      queueTriggers,
      schedules,
      webhooks,
    });
  }

  const queues = new Map<string, QueueSpec>();
  for (const [name, raw0] of Object.entries(raw.queues ?? {})) {
    const q = raw0 ?? {};
    const fifo = q.fifo ?? name.endsWith('.fifo');
    if (fifo !== name.endsWith('.fifo')) {
      problems.push({ path: ['queues', name, 'fifo'], message: `a FIFO queue's name must end in ".fifo" (and only a FIFO queue's); rename it or change fifo` });
      continue;
    }
    if (q.deadLetterQueue !== undefined) references.push({ path: ['queues', name, 'deadLetterQueue'], kind: 'queue', name: q.deadLetterQueue });
    if (q.maxReceiveCount !== undefined && q.deadLetterQueue === undefined) {
      problems.push({ path: ['queues', name, 'maxReceiveCount'], message: 'maxReceiveCount needs a deadLetterQueue to move messages to; add deadLetterQueue: <queue>' });
    }
    queues.set(name, {
      name,
      fifo,
      visibilityTimeoutSeconds: q.visibilityTimeout !== undefined ? parseDuration(q.visibilityTimeout) : defaults.queue.visibilityTimeoutSeconds,
      delaySeconds: q.delaySeconds ?? defaults.queue.delaySeconds,
      retentionSeconds: q.retention !== undefined ? parseDuration(q.retention) : defaults.queue.retentionSeconds,
      ...(q.maxReceiveCount !== undefined ? { maxReceiveCount: q.maxReceiveCount } : {}),
      ...(q.deadLetterQueue !== undefined ? { deadLetterQueue: q.deadLetterQueue } : {}),
      contentBasedDeduplication: q.contentBasedDeduplication ?? false,
    });
  }

  const topics = new Map<string, TopicSpec>();
  for (const [name, raw0] of Object.entries(raw.topics ?? {})) {
    const subscriptions: SubscriptionSpec[] = [];
    (raw0?.subscriptions ?? []).forEach((sub, index) => {
      const at = ['topics', name, 'subscriptions', index];
      const filter = sub.filter ? { filter: sub.filter } : {};
      if (sub.queue !== undefined) {
        references.push({ path: [...at, 'queue'], kind: 'queue', name: sub.queue });
        subscriptions.push({ queue: sub.queue, raw: sub.raw ?? false, ...filter });
      } else if (sub.function !== undefined) {
        references.push({ path: [...at, 'function'], kind: 'function', name: sub.function });
        subscriptions.push({ function: sub.function, ...filter });
      } else if (sub.email !== undefined) {
        subscriptions.push({ email: [sub.email].flat(), retries: sub.retries ?? defaults.httpSubscriptionRetries, ...filter });
      } else {
        subscriptions.push({ http: sub.http!, retries: sub.retries ?? defaults.httpSubscriptionRetries, ...filter });
      }
    });
    const websocket = raw0?.websocket && realtimeTokens(raw0.websocket, ['topics', name, 'websocket'], problems);
    topics.set(name, { name, subscriptions, ...(websocket ? { websocket } : {}), ...(raw0?.mqtt ? { mqtt: raw0.mqtt } : {}) });
  }
  const smtp = buildSmtp(raw, problems);

  const limits = buildLimits(raw, problems);
  const codeFunction = (name: string, file: string, timeoutSeconds: number): FunctionSpec => ({
    ...functionDefaults(raw),
    name,
    handler: `${path.relative(dir, file)}.handler`,
    file,
    exportName: 'handler',
    // Customer code: never shared between tenants.
    isolation: 'tenant',
    timeoutSeconds,
    prewarm: 0,
  });
  const flows = buildFlows(dir, raw, functions, topics, codeFunction, problems);
  for (const topic of topics.values()) {
    if (smtp === undefined && topic.subscriptions.some((sub) => 'email' in sub)) {
      const flow = topic.name.startsWith('flow-alerts-') ? topic.name.slice('flow-alerts-'.length) : undefined;
      problems.push({
        path: flow && raw.flows?.[flow] ? ['flows', flow, 'alerts', 'email'] : ['topics', topic.name, 'subscriptions'],
        message: 'email is sent through a mail server: add smtp: { host, port, from } to berth.yml',
      });
    }
  }
  for (const [name, flow] of flows) {
    const at = ['flows', name];
    const { queueTriggers, schedules, webhooks } = buildEvents(raw.flows?.[name]?.events ?? [], { owner: name, kind: 'flow', at, routeOwners, references, problems });
    flows.set(name, { ...flow, queueTriggers, schedules, webhooks });
  }

  const declared = { queue: queues, topic: topics, function: raw.functions };
  for (const ref of references) {
    const names = declared[ref.kind];
    const has = names instanceof Map ? names.has(ref.name) : Object.hasOwn(names, ref.name);
    if (!has) {
      const section = ref.kind === 'function' ? 'functions' : `${ref.kind}s`;
      problems.push({ path: ref.path, message: `unknown ${ref.kind} "${ref.name}"; declare it under ${section}: in berth.yml` });
    }
  }

  return {
    dir,
    configFile,
    service: raw.service ?? path.basename(dir),
    functions,
    gateway: { bodyLimitBytes: parseSize(raw.gateway?.bodyLimit ?? defaults.bodyLimit) },
    events: {
      maxPayloadBytes: parseSize(raw.events?.maxPayload ?? defaults.maxPayload),
      inlineThresholdBytes: parseSize(raw.events?.inlineThreshold ?? defaults.inlineThreshold),
      idempotencyWindowSeconds:
        raw.events?.idempotencyWindow !== undefined ? parseDuration(raw.events.idempotencyWindow) : defaults.idempotencyWindowSeconds,
    },
    limits,
    store: raw.store?.maxSize !== undefined ? { maxSizeBytes: parseSize(raw.store.maxSize) } : {},
    queues,
    topics,
    flows,
    ...(smtp ? { smtp } : {}),
    runtime: { maxEnvironments: raw.runtime?.maxEnvironments ?? defaultMaxEnvironments() },
  };
}

function realtimeTokens(raw: { tokens?: string[] | undefined; tokenEnv?: string | undefined }, at: (string | number)[], problems: Problem[]): { tokens: string[] } | undefined {
  const fromEnv = raw.tokenEnv !== undefined ? process.env[raw.tokenEnv] : undefined;
  if (raw.tokenEnv !== undefined && !fromEnv) {
    problems.push({ path: [...at, 'tokenEnv'], message: `environment variable ${raw.tokenEnv} is not set; export it before starting Berth` });
    return undefined;
  }
  return { tokens: [...(raw.tokens ?? []), ...(fromEnv ? [fromEnv] : [])] };
}

function buildSmtp(raw: RawConfig, problems: Problem[]): SmtpSpec | undefined {
  if (!raw.smtp) return undefined;
  const { host, port = 587, secure, user, passwordEnv, from } = raw.smtp;
  const pass = passwordEnv !== undefined ? process.env[passwordEnv] : undefined;
  if (passwordEnv !== undefined && pass === undefined) {
    problems.push({ path: ['smtp', 'passwordEnv'], message: `environment variable ${passwordEnv} is not set; export it before starting Berth` });
  }
  if ((user === undefined) !== (passwordEnv === undefined)) {
    problems.push({ path: ['smtp', user === undefined ? 'passwordEnv' : 'user'], message: 'a login needs both user and passwordEnv' });
  }
  return { host, port, secure: secure ?? port === 465, ...(user !== undefined && pass !== undefined ? { auth: { user, pass } } : {}), from };
}

/** What a function that berth.yml does not declare (a flow's code step) gets. */
function functionDefaults(raw: RawConfig): Omit<FunctionSpec, 'name' | 'handler' | 'file' | 'exportName'> {
  return {
    timeoutSeconds: raw.defaults?.timeout ?? defaults.timeoutSeconds,
    memoryMb: raw.defaults?.memory ?? defaults.memoryMb,
    isolation: raw.defaults?.isolation ?? defaults.isolation,
    environment: stringifyValues({ ...raw.defaults?.environment }),
    description: '',
    runtime: 'nodejs',
    mode: 'function',
    minInstances: 0,
    maxInstances: 0,
    scaleUpRate: defaults.scaleUpRate,
    prewarm: 1,
    provisionedConcurrency: 0,
    idleTimeoutSeconds: raw.defaults?.idleTimeout ?? defaults.idleTimeoutSeconds,
    routes: [],
    async: {
      retries: defaults.async.retries,
      retryDelaySeconds: defaults.async.retryDelaySeconds,
      maxRetryDelaySeconds: defaults.async.maxRetryDelaySeconds,
      maxEventAgeSeconds: defaults.async.maxEventAgeSeconds,
      concurrency: defaults.async.concurrency,
    },
    queueTriggers: [],
    schedules: [],
    webhooks: [],
  };
}

/** Where a function's or flow's events are read: the triggers they make, checked against each other. */
interface EventOwner {
  owner: string;
  kind: 'function' | 'flow';
  at: (string | number)[];
  routeOwners: Map<string, string>;
  references: Reference[];
  problems: Problem[];
}

function buildEvents(events: Record<string, unknown>[], owner: EventOwner): { routes: HttpRoute[]; queueTriggers: QueueTriggerSpec[]; schedules: ScheduleSpec[]; webhooks: WebhookSpec[] } {
  const { owner: name, at, routeOwners, references, problems } = owner;
  const routes: HttpRoute[] = [];
  const queueTriggers: QueueTriggerSpec[] = [];
  const schedules: ScheduleSpec[] = [];
  const webhooks: WebhookSpec[] = [];
  events.forEach((rawEvent, index) => {
    const eventAt = [...at, 'events', index];
    const event = parseEvent(rawEvent, eventAt, problems);
    if (!event) return;
    if ('queue' in event) {
      queueTriggers.push({
        queue: event.queue,
        batchSize: ('batchSize' in event && event.batchSize) || defaults.queueTrigger.batchSize,
        maxBatchingWindowSeconds: ('maxBatchingWindow' in event && event.maxBatchingWindow !== undefined ? parseDuration(event.maxBatchingWindow) : defaults.queueTrigger.maxBatchingWindowSeconds),
        reportBatchItemFailures: 'functionResponseTypes' in event && (event.functionResponseTypes ?? []).includes('ReportBatchItemFailures'),
        maxConcurrency: ('maxConcurrency' in event && event.maxConcurrency) || defaults.queueTrigger.maxConcurrency,
      });
      references.push({ path: [...eventAt, 'queue'], kind: 'queue', name: event.queue });
      return;
    }
    if ('schedule' in event) {
      const timezone = 'timezone' in event ? event.timezone : undefined;
      const parsed = parseSchedule(event.schedule, timezone);
      if (typeof parsed === 'string') {
        problems.push({ path: [...eventAt, 'schedule'], message: parsed });
        return;
      }
      if (timezone !== undefined && !isTimeZone(timezone)) {
        problems.push({ path: [...eventAt, 'timezone'], message: `unknown time zone "${timezone}"; use an IANA name such as Europe/Berlin or UTC` });
        return;
      }
      schedules.push({
        id: `${owner.kind === 'flow' ? 'flow:' : ''}${name}#${index}`,
        expression: event.schedule,
        ...(timezone !== undefined ? { timezone } : {}),
        missed: ('missed' in event && event.missed) || 'skip',
        ...('input' in event && event.input !== undefined ? { input: event.input } : {}),
      });
      return;
    }
    if ('webhook' in event) {
      const problem = checkPath(event.webhook);
      if (problem) {
        problems.push({ path: [...eventAt, 'webhook'], message: problem });
        return;
      }
      const secretEnv = 'secretEnv' in event ? event.secretEnv : undefined;
      if (secretEnv !== undefined && 'secret' in event && event.secret !== undefined) {
        problems.push({ path: [...eventAt, 'secretEnv'], message: 'set either secret or secretEnv, not both' });
        return;
      }
      const secret = ('secret' in event ? event.secret : undefined) ?? (secretEnv !== undefined ? process.env[secretEnv] : undefined);
      if (secretEnv !== undefined && secret === undefined) {
        problems.push({ path: [...eventAt, 'secretEnv'], message: `environment variable ${secretEnv} is not set; export it before starting Berth` });
        return;
      }
      const route: HttpRoute = { method: 'POST', path: event.webhook };
      const clash = findClash(routeOwners, route);
      if (clash) {
        problems.push({ path: [...eventAt, 'webhook'], message: `webhook "${event.webhook}" clashes with "${clash.route}" of function "${clash.owner}". Choose another path.` });
        return;
      }
      routeOwners.set(`POST ${routeShape(route.path)}`, `${name}\u0000POST ${route.path}`);
      webhooks.push({
        path: event.webhook,
        ...(secret !== undefined ? { secret } : {}),
        header: (('header' in event && event.header) || 'x-hub-signature-256').toLowerCase(),
        algorithm: ('algorithm' in event && event.algorithm) || 'sha256',
      });
      return;
    }
    if (owner.kind === 'flow') {
      problems.push({ path: [...eventAt, 'http'], message: 'a flow is started by webhook, schedule or queue events (or berth flow run); an http route belongs to a function' });
      return;
    }
    const route = parseRoute(event.http);
    if (typeof route === 'string') {
      problems.push({ path: [...eventAt, 'http'], message: route });
      return;
    }
    const clash = findClash(routeOwners, route);
    if (clash) {
      problems.push({
        path: [...eventAt, 'http'],
        message: `route "${route.method} ${route.path}" clashes with "${clash.route}" of function "${clash.owner}". Give one of them a different method or path.`,
      });
      return;
    }
    routeOwners.set(`${route.method} ${routeShape(route.path)}`, `${name}\u0000${route.method} ${route.path}`);
    routes.push(route);
  });
  return { routes, queueTriggers, schedules, webhooks };
}

/** `src/lead.handler` → the source file that exists and the export name, or a problem. */
/**
 * The file a function's bundle is built from, and the exports it runs: its handler, and for a
 * service its start(). Both must live in one file, since a function is one bundle.
 */
function resolveEntry(
  dir: string,
  fn: RawConfig['functions'][string],
  at: (string | number)[],
  problems: Problem[],
): { file: string; exportName: string; startExport?: string } | undefined {
  if (fn.handler === undefined && fn.start === undefined) {
    problems.push({ path: [...at, 'handler'], message: 'expected "path/to/file.exportName", e.g. "src/lead.handler" (a service may name a start() instead)' });
    return undefined;
  }
  const handler = fn.handler !== undefined ? resolveHandler(dir, fn.handler) : undefined;
  if (typeof handler === 'string') {
    problems.push({ path: [...at, 'handler'], message: handler });
    return undefined;
  }
  if (fn.start === undefined) return handler;
  const start = resolveHandler(dir, fn.start);
  if (typeof start === 'string') {
    problems.push({ path: [...at, 'start'], message: start });
    return undefined;
  }
  if (handler && handler.file !== start.file) {
    problems.push({ path: [...at, 'start'], message: `start must be exported by the handler's file (${path.relative(dir, handler.file)}); a function is one bundle` });
    return undefined;
  }
  return { file: start.file, exportName: handler?.exportName ?? '', startExport: start.exportName };
}

/** `runtime: provided`: the bootstrap executable; `handler` is passed to it as _HANDLER, whatever its language. */
function resolveBootstrap(dir: string, fn: RawConfig["functions"][string], at: (string | number)[], problems: Problem[]): { file: string; exportName: string; startExport?: string } | undefined {
  if (fn.bootstrap === undefined) {
    problems.push({ path: [...at, 'bootstrap'], message: 'runtime: provided needs bootstrap: the executable that polls the Runtime API, e.g. bootstrap: ./bootstrap' });
    return undefined;
  }
  for (const key of ['start', 'mode'] as const) {
    if (key === 'mode' ? fn.mode === 'service' : fn[key] !== undefined) problems.push({ path: [...at, key], message: `${key === 'mode' ? 'mode: service' : key} needs the Node runtime; a provided runtime serves invocations only` });
  }
  const file = path.resolve(dir, fn.bootstrap);
  try {
    accessSync(file, constants.X_OK);
  } catch {
    problems.push({ path: [...at, 'bootstrap'], message: `${fn.bootstrap} is not an executable file in ${dir}; create it and chmod +x it` });
    return undefined;
  }
  return { file, exportName: '' };
}

/** Instance bounds of a service; for a function, the service-only keys are refused. */
function serviceSettings(
  fn: RawConfig['functions'][string],
  mode: 'function' | 'service',
  at: (string | number)[],
  problems: Problem[],
): { minInstances: number; maxInstances: number } {
  if (mode === 'function') {
    for (const key of ['minInstances', 'maxInstances', 'start'] as const) {
      if (fn[key] !== undefined) problems.push({ path: [...at, key], message: `${key} applies to mode: service; add mode: service, or use provisionedConcurrency and maxConcurrency for a function` });
    }
    return { minInstances: 0, maxInstances: 0 };
  }
  for (const key of ['provisionedConcurrency', 'maxConcurrency'] as const) {
    if (fn[key] !== undefined) problems.push({ path: [...at, key], message: `a service is sized by minInstances and maxInstances; remove ${key}` });
  }
  const minInstances = fn.minInstances ?? 1;
  const maxInstances = fn.maxInstances ?? Math.max(minInstances, 1);
  if (maxInstances < minInstances) {
    problems.push({ path: [...at, 'maxInstances'], message: `maxInstances (${maxInstances}) is below minInstances (${minInstances}); raise it or lower minInstances` });
  }
  if (maxInstances === 0) problems.push({ path: [...at, 'maxInstances'], message: 'a service needs at least one instance; set maxInstances to 1 or more' });
  return { minInstances, maxInstances };
}

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
  const problem = checkPath(routePath);
  if (problem) return problem;
  const segments = routePath.split('/').slice(1);
  for (const [i, segment] of segments.entries()) {
    if (!segment.includes('{')) continue;
    const match = /^\{([A-Za-z0-9_]+)(\+?)\}$/.exec(segment);
    if (!match) return `path segment "${segment}" must be a whole parameter like {id} or {proxy+}`;
    if (match[2] === '+' && i !== segments.length - 1) return `greedy parameter ${segment} must be the last path segment`;
  }
  return { method: upper, path: routePath };
}

/** account:, groups: and each function's concurrency settings, checked together for what cannot be satisfied. */
function buildLimits(raw: RawConfig, problems: Problem[]): LimitSet {
  const functions = new Map<string, FunctionLimits>();
  for (const [name, fn] of Object.entries(raw.functions)) {
    // A service never runs more than maxInstances invocations at once.
    const cap = fn.mode === 'service' ? (fn.maxInstances ?? Math.max(fn.minInstances ?? 1, 1)) : fn.maxConcurrency;
    const own: FunctionLimits = {
      ...(cap !== undefined ? { maxConcurrency: cap } : {}),
      ...(fn.reservedConcurrency !== undefined ? { reservedConcurrency: fn.reservedConcurrency } : {}),
      ...(fn.tenantConcurrency !== undefined ? { tenantConcurrency: fn.tenantConcurrency } : {}),
      ...(fn.provisionedConcurrency !== undefined && fn.mode !== 'service' ? { provisionedConcurrency: fn.provisionedConcurrency } : {}),
    };
    if (Object.keys(own).length > 0) functions.set(name, own);
  }
  const groups = new Map<string, GroupLimits>();
  for (const [name, group] of Object.entries(raw.groups ?? {})) {
    group.functions.forEach((member, index) => {
      if (!Object.hasOwn(raw.functions, member)) {
        problems.push({ path: ['groups', name, 'functions', index], message: `unknown function "${member}"; groups name functions declared under functions:` });
      }
    });
    groups.set(name, group);
  }
  const limits: LimitSet = {
    accountConcurrency: raw.account?.concurrency ?? Infinity,
    syncWaitMs: (raw.account?.syncWait !== undefined ? parseDuration(raw.account.syncWait) : defaults.syncWaitSeconds) * 1000,
    functions,
    groups,
  };
  // Unknown members are reported above, at their line; what is left is about sums.
  for (const problem of limitProblems(limits, new Set(Object.keys(raw.functions)))) {
    if (!problem.includes('does not exist')) problems.push({ path: ['account', 'concurrency'], message: problem });
  }
  return limits;
}

/** Validates one event against the schema of its kind; problems carry the event's path. */
function parseEvent(raw: Record<string, unknown>, at: (string | number)[], problems: Problem[]) {
  const kinds = Object.keys(eventSchemas) as EventKind[];
  const kind = kinds.find((k) => k in raw);
  if (!kind) {
    problems.push({ path: at, message: `unknown event type (keys: ${Object.keys(raw).join(', ') || 'none'}); use one of ${kinds.join(', ')}, e.g. \`- http: GET /path\`` });
    return undefined;
  }
  const parsed = eventSchemas[kind].safeParse(raw);
  if (parsed.success) return parsed.data;
  for (const issue of parsed.error.issues) {
    const sub = issue.path.filter((p): p is string | number => typeof p !== 'symbol');
    if (issue.code === 'unrecognized_keys') {
      for (const key of issue.keys) {
        const allowed = Object.keys(eventSchemas[kind].shape).join(', ');
        problems.push({ path: [...at, ...sub, key], message: `unknown key "${key}" for a ${kind} event; expected one of ${allowed}`, atKey: true });
      }
    } else {
      problems.push({ path: [...at, ...sub], message: `${issue.message}, got ${describe(valueAt(raw, sub))}` });
    }
  }
  return undefined;
}

function checkPath(routePath: string): string | undefined {
  if (!routePath.startsWith('/')) return `route path must start with "/", got "${routePath}"`;
  if (routePath.startsWith('/_berth/') || routePath.startsWith('/2015-03-31/') || /^\/\d{12}\//.test(routePath)) {
    return `route path "${routePath}" is reserved for Berth's own API; choose another path`;
  }
  return undefined;
}

interface Reference {
  path: (string | number)[];
  kind: 'queue' | 'topic' | 'function';
  name: string;
}

function destinationReference(at: (string | number)[], target: Destination): Reference {
  if ('queue' in target) return { path: [...at, 'queue'], kind: 'queue', name: target.queue };
  if ('topic' in target) return { path: [...at, 'topic'], kind: 'topic', name: target.topic };
  return { path: [...at, 'function'], kind: 'function', name: target.function };
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
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
      ? ['service', 'defaults', 'gateway', 'events', 'runtime', 'store', 'account', 'groups', 'queues', 'topics', 'functions']
      : at[0] === 'functions' && at.length === 2
        ? ['handler', 'description', 'timeout', 'memory', 'isolation', 'environment', 'prewarm', 'idleTimeout', 'events', 'async', 'maxConcurrency', 'reservedConcurrency', 'tenantConcurrency', 'provisionedConcurrency', 'mode', 'minInstances', 'maxInstances', 'start', 'scaleUpRate']
        : undefined;
  return keys ? `; expected one of ${keys.join(', ')}` : '';
}

function stringifyValues(env: Record<string, string | number | boolean>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));
}

const DURATION_UNITS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 };

/** Seconds, from a number of seconds or a string such as "5m". */
export function parseDuration(value: number | string): number {
  if (typeof value === 'number') return value;
  const match = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)$/.exec(value.trim())!;
  return Number(match[1]) * DURATION_UNITS[match[2]!]!;
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
