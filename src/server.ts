/**
 * Composes Berth from its parts, in the direction data flows:
 * config → store → bundles → runtime (pools) → dispatcher → events → flows → scaling → gateway.
 */
import { createHash } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pino, type Logger } from 'pino';
import { loadProject } from './config/index.js';
import { BerthError } from './errors.js';
import { Dispatcher } from './dispatch/index.js';
import { LiveLimits } from './dispatch/live-limits.js';
import { CLIENT_ENV } from './client/env.js';
import { Events } from './events/index.js';
import { createGateway, RouteTable } from './gateway/index.js';
import { registerInstance, updateInstance, type InstanceInfo } from './instances.js';
import { bundleFunctions, Runtime } from './runtime/index.js';
import { FlowEngine } from './flows/engine.js';
import { FlowTriggers } from './flows/triggers.js';
import { SecretStore } from './secrets/index.js';
import { Scaling } from './scaling/index.js';
import { openSqliteStore, type Store } from './store/index.js';
import type { ProjectSpec } from './types.js';

export interface BerthOptions {
  dir: string;
  dataDir?: string;
  /** Progress lines for a person watching startup. */
  progress?: (line: string) => void;
  /** Run queued events, queue triggers and schedules (default true; a one-off CLI invoke turns it off). */
  background?: boolean;
}

export interface Berth {
  project: ProjectSpec;
  dataDir: string;
  store: Store;
  runtime: Runtime;
  dispatcher: Dispatcher;
  /** Concurrency limits in force, changeable while running. */
  limits: LiveLimits;
  events: Events;
  flows: FlowEngine;
  /** The autoscaler and long-running service instances; absent for a one-off in-process invoke. */
  scaling: Scaling | undefined;
  /** Structured JSON access and error logs, in <data>/logs/gateway.log. */
  logger: Logger;
  /** Re-reads berth.yml, re-bundles and swaps in new environments; running invocations finish on the old ones. */
  reload(): Promise<ProjectSpec>;
  close(): Promise<void>;
}

/** Everything but the HTTP server: enough to run invocations in-process. */
export async function openBerth(options: BerthOptions): Promise<Berth> {
  const progress = options.progress ?? (() => {});
  let project = loadProject(options.dir);
  const dataDir = path.resolve(options.dataDir ?? path.join(project.dir, '.berth'));
  const store = openSqliteStore(dataDir, project.store);
  let generation = 0;
  // Bundles leave packages external, and Node resolves them from where the bundle lies: under the
  // project's node_modules they find its packages wherever the data directory is. One folder per
  // data directory, so two instances of one project never overwrite each other's bundles.
  const buildRoot = path.join(project.dir, 'node_modules', '.berth', createHash('sha256').update(dataDir).digest('hex').slice(0, 12));

  const build = async (spec: ProjectSpec) => {
    const started = performance.now();
    const functions = [...spec.functions.values()];
    progress(`bundling ${functions.length} function${functions.length === 1 ? '' : 's'} ...`);
    const outDir = path.join(buildRoot, String(++generation));
    const bundles = await bundleFunctions(functions, outDir, spec.configFile);
    rmSync(path.join(buildRoot, String(generation - 2)), { recursive: true, force: true });
    await store.saveFunctions(functions.map((fn) => ({ name: fn.name, handler: fn.handler, spec: fn, updatedAt: Date.now() })));
    progress(`bundled in ${Math.round(performance.now() - started)} ms`);
    return bundles;
  };

  const bundles = await build(project).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const logger = pino(
    { base: { pid: process.pid } },
    pino.destination({ dest: path.join(dataDir, 'logs', 'gateway.log'), sync: false, mkdir: true }),
  );
  const warn = (message: string) => {
    logger.warn(message);
    progress(`warning: ${message}`);
  };
  // Sandboxes start before the server has its port, so they learn Berth's URL from a file written once it listens.
  const runtime = new Runtime(project.runtime.maxEnvironments, { [CLIENT_ENV.urlFile]: urlFile(dataDir) }, warn);
  runtime.deploy(project, bundles);
  const dispatcher = new Dispatcher(runtime, store, project.limits, (err) => logger.error({ err }, 'store write failed'));
  const limits = await LiveLimits.open(
    store,
    dispatcher.admission,
    project,
    warn,
    (limits) => runtime.applyProvisioned(limits),
  );
  const background = options.background ?? true;
  const events = await Events.open({ project, dataDir, store, dispatcher, logger, background });
  const flows = new FlowEngine({
    store,
    journal: events.journal,
    blobs: events.blobs,
    dispatcher,
    secrets: new SecretStore(store),
    publish: (topic, message, subject) => events.topics.publish(topic, { message, subject }),
    inlineThresholdBytes: project.events.inlineThresholdBytes,
    onError: (err) => logger.error({ err }, 'flow run failed inside Berth'),
  });
  flows.deploy(project.flows);
  await flows.checkSecrets(path.relative(process.cwd(), project.configFile) || project.configFile).catch(async (err: unknown) => {
    await store.close();
    throw err;
  });
  const flowTriggers = background
    ? await FlowTriggers.open({ engine: flows, store, journal: events.journal, queues: events.queues, onError: (err) => logger.error({ err }, 'starting a flow run failed') })
    : undefined;
  flowTriggers?.deploy([...project.flows.values()]);
  if (background) {
    const resumed = await flows.resume();
    if (resumed > 0) progress(`resuming ${resumed} interrupted flow run${resumed === 1 ? '' : 's'}`);
  }
  const scaling = background ? new Scaling({ runtime, dispatcher, events, store, logger }) : undefined;
  scaling?.deploy([...project.functions.values()]);

  return {
    get project() {
      return project;
    },
    dataDir,
    store,
    runtime,
    dispatcher,
    limits,
    events,
    flows,
    scaling,
    logger,
    async reload() {
      const next = loadProject(project.dir);
      const bundles = await build(next);
      runtime.deploy(next, bundles);
      limits.deploy(next);
      events.deploy(next);
      flows.deploy(next.flows);
      flowTriggers?.deploy([...next.flows.values()]);
      scaling?.deploy([...next.functions.values()]);
      project = next;
      return next;
    },
    async close() {
      // Flows, services and consumers first: what they are running finishes and is recorded.
      // Runs stop at their next step (and resume at the next start) before their triggers stop.
      await flows.stop();
      await flowTriggers?.stop();
      await scaling?.stop();
      await events.stop();
      await dispatcher.drain();
      await runtime.close();
      await store.close();
    },
  };
}

function urlFile(dataDir: string): string {
  return path.join(dataDir, 'url');
}

export interface ServerOptions extends BerthOptions {
  port?: number;
  host?: string;
  /** berth dev: error details in 502 responses. */
  dev?: boolean;
}

export interface BerthServer extends Berth {
  url: string;
}

export async function startServer(options: ServerOptions): Promise<BerthServer> {
  const host = options.host ?? '127.0.0.1';
  const port = options.port ?? 3000;
  const berth = await openBerth(options);
  let routes = new RouteTable(berth.runtime.functions(), berth.flows.list());
  const app = createGateway({
    runtime: berth.runtime,
    dispatcher: berth.dispatcher,
    events: berth.events,
    flows: berth.flows,
    limits: berth.limits,
    scaling: berth.scaling,
    store: berth.store,
    logger: berth.logger,
    bodyLimitBytes: berth.project.gateway.bodyLimitBytes,
    maxPayloadBytes: berth.project.events.maxPayloadBytes,
    exposeErrors: options.dev ?? false,
    routes: () => routes,
  });
  try {
    await app.listen({ port, host });
  } catch (err) {
    await berth.close();
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE' || code === 'EACCES' || code === 'EADDRNOTAVAIL') {
      throw new BerthError('BERTH_ERR_PORT_IN_USE', {
        address: `${host}:${port}`,
        problem: code === 'EADDRINUSE' ? 'the port is already in use' : code === 'EACCES' ? 'permission denied' : 'the address is not on this machine',
      });
    }
    throw err;
  }
  berth.events.realtime.attach(app.server);
  const address = app.server.address();
  const boundPort = typeof address === 'object' && address ? address.port : port;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${boundPort}`;
  const info: InstanceInfo = {
    pid: process.pid,
    url,
    dir: berth.project.dir,
    dataDir: berth.dataDir,
    functions: [...berth.project.functions.keys()],
    startedAt: Date.now(),
  };
  const unregister = registerInstance(info);
  writeFileSync(urlFile(berth.dataDir), url);

  return {
    ...berth,
    get project() {
      return berth.project;
    },
    url,
    async reload() {
      const next = await berth.reload();
      routes = new RouteTable(berth.runtime.functions(), berth.flows.list());
      updateInstance({ ...info, functions: [...next.functions.keys()] });
      return next;
    },
    async close() {
      unregister();
      // Stop accepting connections first; in-flight requests finish before the drain below returns.
      const closing = app.close();
      await berth.close();
      await closing;
    },
  };
}
