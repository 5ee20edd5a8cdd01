/**
 * GET /_berth/metrics: Prometheus text exposition of what the autoscaler decides and sees,
 * per function, read at scrape time (nothing is counted on the invocation path for it).
 */
import type { FastifyInstance } from 'fastify';
import { Gauge, Registry } from 'prom-client';
import type { Dispatcher } from '../dispatch/index.js';
import type { Runtime } from '../runtime/index.js';
import type { FunctionScaling, Scaling } from '../scaling/index.js';

export function registerMetrics(app: FastifyInstance, runtime: Runtime, dispatcher: Dispatcher, scaling: Scaling | undefined): void {
  const registry = new Registry();
  const snapshots = () => runtime.functions().map((spec) => ({ name: spec.name, scaling: scaling?.snapshot(spec) }));
  const perFunction = (name: string, help: string, value: (s: FunctionScaling) => number) =>
    new Gauge({
      name,
      help,
      labelNames: ['function'],
      registers: [registry],
      collect() {
        this.reset();
        for (const { name: fn, scaling: s } of snapshots()) if (s) this.set({ function: fn }, value(s));
      },
    });
  perFunction('berth_scaling_desired_environments', 'Environments the autoscaler wants for the function', (s) => s.desired);
  perFunction('berth_environments_running', 'Environments running an invocation (or a service instance)', (s) => s.running);
  perFunction('berth_environments_starting', 'Environments being started', (s) => s.starting);
  perFunction('berth_environments_idle', 'Started environments waiting for work', (s) => s.idle + s.ready);
  perFunction('berth_queue_depth', "Messages waiting in the function's queues (async events and queue triggers)", (s) => s.queueDepth);
  perFunction('berth_queue_oldest_age_seconds', 'Age of the oldest waiting message', (s) => s.oldestAgeMs / 1000);
  new Gauge({
    name: 'berth_throttles',
    help: 'Synchronous invocations refused by a concurrency limit since start',
    labelNames: ['function'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [fn, usage] of Object.entries(dispatcher.admission.stats().functions)) this.set({ function: fn }, usage.throttles);
    },
  });

  app.get('/_berth/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType);
    return registry.metrics();
  });
}
