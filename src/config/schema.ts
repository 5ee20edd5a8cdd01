import { z } from 'zod';

/**
 * The berth.yml schema. Objects are strict so a misspelt key is an error, not a
 * silently ignored setting. Defaults live in `defaults` below, in one place.
 */

export const defaults = {
  timeoutSeconds: 3,
  memoryMb: 256,
  isolation: 'tenant' as const,
  idleTimeoutSeconds: 300,
  bodyLimit: '6mb',
  maxPayload: '100mb',
  inlineThreshold: '256kb',
  idempotencyWindowSeconds: 24 * 3600,
  async: { retries: 2, maxEventAgeSeconds: 6 * 3600, concurrency: 10, retryDelaySeconds: 1, maxRetryDelaySeconds: 300 },
  queue: { visibilityTimeoutSeconds: 30, delaySeconds: 0, retentionSeconds: 4 * 24 * 3600 },
  queueTrigger: { batchSize: 10, maxBatchingWindowSeconds: 0, maxConcurrency: 100 },
  /** Environments per second the autoscaler may add to a function. */
  scaleUpRate: 10,
  httpSubscriptionRetries: 3,
  flowStep: { retries: 0, retryDelaySeconds: 1, timeoutSeconds: 30, concurrency: 10 },
  syncWaitSeconds: 1,
};

const isolation = z.enum(['fresh', 'tenant', 'warm'], {
  error: 'expected one of fresh, tenant, warm',
});

const seconds = z
  .number({ error: 'expected a number of seconds' })
  .positive({ error: 'expected a number of seconds greater than 0' })
  .max(900, { error: 'expected at most 900 seconds (15 minutes)' });

const memory = z
  .number({ error: 'expected a number of megabytes' })
  .int({ error: 'expected a whole number of megabytes' })
  .min(64, { error: 'expected at least 64 MB' })
  .max(10240, { error: 'expected at most 10240 MB' });

const environment = z.record(
  z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, { error: 'environment variable names use letters, digits and _' }),
  z.union(
    [
      // A process cannot be given a variable holding NUL: starting the function would fail every time.
      z.string().refine((value) => !value.includes('\0'), { error: 'environment variable values cannot contain a NUL character' }),
      z.number(),
      z.boolean(),
    ],
    { error: 'expected a string, number or boolean value' },
  ),
);

const httpRoute = z.union(
  [
    z.string({ error: 'expected "METHOD /path", e.g. "POST /lead/{leadId}"' }),
    z.strictObject({ method: z.string(), path: z.string() }),
  ],
  { error: 'expected "METHOD /path" or { method, path }' },
);

/** Seconds as a number, or a string such as "500ms", "90s", "5m", "24h", "7d". */
const DURATION_HELP = 'expected a number of seconds or a duration such as "500ms", "30s", "5m", "24h"';
const duration = z.union([z.number().nonnegative(), z.string().regex(/^\d+(\.\d+)?\s*(ms|s|m|h|d)$/, { error: DURATION_HELP })], {
  error: DURATION_HELP,
});

const resourceName = z.string().regex(/^[A-Za-z0-9_-]{1,80}(\.fifo)?$/, {
  error: 'names use 1-80 letters, digits, - and _ (a FIFO queue name ends in .fifo)',
});

/** Where an async invocation's record goes when it succeeds or fails for good. */
const destination = z.union(
  [z.strictObject({ queue: resourceName }), z.strictObject({ topic: resourceName }), z.strictObject({ function: z.string() })],
  { error: 'expected one of { queue: name }, { topic: name }, { function: name }' },
);

const queueTrigger = z.strictObject({
  queue: resourceName,
  batchSize: z.number().int().min(1).max(10_000, { error: 'expected a batch size from 1 to 10000' }).optional(),
  maxBatchingWindow: duration.optional(),
  functionResponseTypes: z.array(z.literal('ReportBatchItemFailures', { error: 'the only response type is ReportBatchItemFailures' })).optional(),
  maxConcurrency: z.number().int().min(1).max(1000).optional(),
});

const scheduleTrigger = z.strictObject({
  schedule: z.string({ error: 'expected rate(5 minutes), cron(0 9 * * ? *) or a 5-field cron expression' }),
  timezone: z.string().optional(),
  missed: z.enum(['skip', 'runOnce'], { error: 'expected skip or runOnce' }).optional(),
  input: z.unknown().optional(),
});

const webhookTrigger = z.strictObject({
  webhook: z.string({ error: 'expected a path such as /hooks/dropbox' }),
  secret: z.string().optional(),
  secretEnv: z.string().optional(),
  header: z.string().optional(),
  algorithm: z.enum(['sha1', 'sha256', 'sha512']).optional(),
});

/**
 * One schema per event kind, chosen by the key the event has (http, queue,
 * schedule, webhook), so an error names the field of that kind instead of
 * "matches none of the kinds". Extra settings sit beside the kind key:
 * `- queue: orders` then `  batchSize: 5` on the next line.
 */
export const eventSchemas = {
  http: z.strictObject({ http: httpRoute }),
  queue: queueTrigger,
  schedule: scheduleTrigger,
  webhook: webhookTrigger,
};

export type EventKind = keyof typeof eventSchemas;

const event = z.record(z.string(), z.unknown(), {
  error: 'expected an event such as `- http: GET /path`, `- queue: name`, `- schedule: rate(5 minutes)` or `- webhook: /hooks/name`',
});

const asyncSettings = z.strictObject({
  retries: z.number().int().min(0).max(100, { error: 'expected 0 to 100 retries' }).optional(),
  retryDelay: duration.optional(),
  maxRetryDelay: duration.optional(),
  maxEventAge: duration.optional(),
  onSuccess: destination.optional(),
  onFailure: destination.optional(),
  deadLetterQueue: resourceName.optional(),
  concurrency: z.number().int().min(1).max(1000).optional(),
});

const concurrency = z
  .number({ error: 'expected a whole number of invocations' })
  .int({ error: 'expected a whole number of invocations' })
  .min(0, { error: 'expected 0 or more invocations' });

const instances = z
  .number({ error: 'expected a whole number of instances' })
  .int({ error: 'expected a whole number of instances' })
  .min(0, { error: 'expected 0 or more instances' })
  .max(256, { error: 'expected at most 256 instances' });

const fn = z.strictObject({
  /** Optional only for a service that names a start() instead. */
  handler: z.string({ error: 'expected "path/to/file.exportName", e.g. "src/lead.handler"' }).optional(),
  description: z.string().optional(),
  timeout: seconds.optional(),
  memory: memory.optional(),
  isolation: isolation.optional(),
  environment: environment.optional(),
  prewarm: z.number().int().min(0).max(32, { error: 'expected at most 32 pre-warmed environments' }).optional(),
  idleTimeout: seconds.optional(),
  events: z.array(event, { error: 'expected a list of events' }).optional(),
  async: asyncSettings.optional(),
  maxConcurrency: concurrency.optional(),
  reservedConcurrency: concurrency.optional(),
  tenantConcurrency: concurrency.optional(),
  provisionedConcurrency: z.number().int().min(0).max(256, { error: 'expected 0 to 256 provisioned environments' }).optional(),
  runtime: z.enum(['nodejs', 'provided'], { error: 'expected nodejs (the default) or provided (a bootstrap speaking the Lambda Runtime API)' }).optional(),
  /** For runtime: provided: the executable that runs the handler, relative to berth.yml. */
  bootstrap: z.string().optional(),
  mode: z.enum(['function', 'service'], { error: 'expected function (on demand, scales to zero) or service (always-on instances)' }).optional(),
  minInstances: instances.optional(),
  maxInstances: instances.optional(),
  start: z.string({ error: 'expected "path/to/file.exportName" of a start() function, e.g. "src/worker.start"' }).optional(),
  scaleUpRate: z.number({ error: 'expected environments per second' }).positive({ error: 'expected more than 0 environments per second' }).optional(),
});

const size = z.union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i)], {
  error: 'expected a size such as 6291456 or "6mb"',
});

const queue = z.strictObject({
  fifo: z.boolean().optional(),
  visibilityTimeout: duration.optional(),
  delaySeconds: z.number().int().min(0).max(900, { error: 'expected 0 to 900 seconds' }).optional(),
  retention: duration.optional(),
  maxReceiveCount: z.number().int().min(1).max(1000).optional(),
  deadLetterQueue: resourceName.optional(),
  contentBasedDeduplication: z.boolean().optional(),
});

/** SNS filter policy: attribute name → a rule or a list of rules (any may match). */
const filterRule = z.union(
  [
    z.string(),
    z.number(),
    z.strictObject({ prefix: z.string() }),
    z.strictObject({ suffix: z.string() }),
    z.strictObject({ 'anything-but': z.union([z.string(), z.number(), z.array(z.union([z.string(), z.number()]))]) }),
    z.strictObject({
      numeric: z
        .array(z.union([z.enum(['=', '<', '<=', '>', '>=']), z.number()]))
        .refine((list) => list.length % 2 === 0 && list.every((item, i) => (i % 2 === 0 ? typeof item === 'string' : typeof item === 'number')), {
          error: 'expected operator/number pairs such as [">=", 0, "<", 100]',
        }),
    }),
    z.strictObject({ exists: z.boolean() }),
  ],
  { error: 'expected a value, or one of { prefix }, { suffix }, { "anything-but" }, { numeric: [op, n, ...] }, { exists }' },
);
const filterPolicy = z.record(
  z.string(),
  z.union([filterRule, z.array(filterRule)], {
    error: 'expected a rule or a list of rules: a value, { prefix }, { suffix }, { "anything-but" }, { numeric: [op, n, ...] } or { exists }',
  }),
);

const emailAddress = z.email({ error: 'expected an email address, e.g. ops@example.com' });
const emailAddresses = z.union([emailAddress, z.array(emailAddress).min(1)], { error: 'expected an email address or a list of them' });

/** One object rather than a union, so a mistake inside `filter` is reported at its own path. */
const subscription = z
  .strictObject({
    queue: resourceName.optional(),
    function: z.string().optional(),
    http: z.url({ error: 'expected an http(s) URL' }).optional(),
    /** Mailed through smtp: (one address or a list). */
    email: emailAddresses.optional(),
    filter: filterPolicy.optional(),
    /** Queue subscribers: the bare message instead of the SNS envelope. */
    raw: z.boolean().optional(),
    /** HTTP and email subscribers: delivery retries. */
    retries: z.number().int().min(0).max(100).optional(),
  })
  .refine((sub) => [sub.queue, sub.function, sub.http, sub.email].filter((target) => target !== undefined).length === 1, {
    error: 'a subscription names exactly one of queue, function, http or email, e.g. { queue: audit }',
  })
  .refine((sub) => sub.raw === undefined || sub.queue !== undefined, { error: 'raw applies to queue subscriptions only', path: ['raw'] })
  .refine((sub) => sub.retries === undefined || sub.http !== undefined || sub.email !== undefined, { error: 'retries applies to http and email subscriptions only', path: ['retries'] });

const topic = z.strictObject({
  subscriptions: z.array(subscription).optional(),
  /** Browsers and devices subscribe over WebSocket with one of these tokens. */
  websocket: z
    .strictObject({
      tokens: z.array(z.string().min(16, { error: 'expected a token of at least 16 characters' })).optional(),
      tokenEnv: z.string().optional(),
    })
    .refine((ws) => ws.tokens !== undefined || ws.tokenEnv !== undefined, { error: 'a WebSocket topic needs tokens: [...] or tokenEnv: NAME' })
    .optional(),
  /** Every message is also published to this MQTT broker topic. */
  mqtt: z.strictObject({ url: z.string().regex(/^mqtts?:\/\//, { error: 'expected mqtt://host:port or mqtts://host:port' }), topic: z.string().min(1) }).optional(),
});

const stepId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'step ids use 1-64 letters, digits, - and _' });

const httpStep = z.strictObject({
  method: z.string().optional(),
  url: z.string({ error: 'expected the URL to call, e.g. "https://api.example.com/items" or "{% input.url %}"' }),
  headers: z.record(z.string(), z.string()).optional(),
  body: z.unknown().optional(),
});

/** A step of a flow: exactly one of function, code, http or forEach, with what every step may have. */
const flowStep: z.ZodType<RawFlowStep> = z.lazy(() =>
  z.strictObject({
    id: stepId,
    function: z.string().optional(),
    code: z.string().optional(),
    http: httpStep.optional(),
    forEach: z.string().optional(),
    concurrency: z.number().int().min(1).max(1000, { error: 'expected 1 to 1000 items at once' }).optional(),
    steps: z.array(flowStep).optional(),
    if: z.string().optional(),
    input: z.unknown().optional(),
    secrets: z.array(z.string(), { error: 'expected a list of secret names, e.g. [DROPBOX_TOKEN]' }).optional(),
    retries: z.number().int().min(0).max(100, { error: 'expected 0 to 100 retries' }).optional(),
    retryDelay: duration.optional(),
    timeout: duration.optional(),
  }),
);

export interface RawFlowStep {
  id: string;
  function?: string | undefined;
  code?: string | undefined;
  http?: { method?: string | undefined; url: string; headers?: Record<string, string> | undefined; body?: unknown } | undefined;
  forEach?: string | undefined;
  concurrency?: number | undefined;
  steps?: RawFlowStep[] | undefined;
  if?: string | undefined;
  input?: unknown;
  secrets?: string[] | undefined;
  retries?: number | undefined;
  retryDelay?: number | string | undefined;
  timeout?: number | string | undefined;
}

const flow = z.strictObject({
  description: z.string().optional(),
  events: z.array(event, { error: 'expected a list of events: webhook, schedule or queue' }).optional(),
  tenant: z.string().optional(),
  alerts: z
    .strictObject({
      webhook: z.url({ error: 'expected the URL failed runs are posted to, e.g. https://hooks.example.com/berth' }).optional(),
      email: emailAddresses.optional(),
      retries: z.number().int().min(0).max(100).optional(),
    })
    .refine((alerts) => alerts.webhook !== undefined || alerts.email !== undefined, { error: 'alerts need a webhook, an email, or both' })
    .optional(),
  steps: z.array(flowStep, { error: 'expected a list of steps' }).min(1, { error: 'a flow needs at least one step' }),
});

export const configSchema = z.strictObject({
  service: z.string().optional(),
  defaults: z
    .strictObject({
      timeout: seconds.optional(),
      memory: memory.optional(),
      isolation: isolation.optional(),
      environment: environment.optional(),
      idleTimeout: seconds.optional(),
    })
    .optional(),
  gateway: z.strictObject({ bodyLimit: size.optional() }).optional(),
  events: z
    .strictObject({
      maxPayload: size.optional(),
      inlineThreshold: size.optional(),
      idempotencyWindow: duration.optional(),
    })
    .optional(),
  store: z.strictObject({ maxSize: size.optional() }).optional(),
  account: z
    .strictObject({
      concurrency: concurrency.optional(),
      /** How long a synchronous request over a limit waits for capacity before 429. */
      syncWait: duration.optional(),
    })
    .optional(),
  groups: z
    .record(
      z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'group names use 1-64 letters, digits, - and _' }),
      z.strictObject({
        functions: z.array(z.string(), { error: 'expected a list of function names' }),
        maxConcurrency: concurrency.optional(),
        reserved: concurrency.optional(),
      }),
    )
    .optional(),
  /** Where email subscriptions and alerts are sent through. */
  smtp: z
    .strictObject({
      host: z.string(),
      port: z.number().int().min(1).max(65535).optional(),
      /** TLS from the start (port 465); otherwise STARTTLS when the server offers it. */
      secure: z.boolean().optional(),
      user: z.string().optional(),
      /** The password is read from this environment variable, never written in berth.yml. */
      passwordEnv: z.string().optional(),
      from: emailAddress,
    })
    .optional(),
  queues: z.record(resourceName, queue.nullable()).optional(),
  topics: z.record(resourceName, topic.nullable()).optional(),
  runtime: z
    .strictObject({
      maxEnvironments: z.number().int().min(1, { error: 'expected at least 1 environment' }).optional(),
    })
    .optional(),
  flows: z.record(z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'flow names use 1-64 letters, digits, - and _' }), flow).optional(),
  functions: z.record(
    z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'function names use 1-64 letters, digits, - and _' }),
    fn,
    { error: 'add a "functions:" section naming each function and its handler, e.g. hello: { handler: src/hello.handler }' },
  )
    // A project of flows alone needs no functions.
    .optional(),
})
  .refine((config) => config.functions !== undefined || config.flows !== undefined, {
    path: ['functions'],
    error: 'add a "functions:" section naming each function and its handler, e.g. hello: { handler: src/hello.handler }',
  });

type ParsedConfig = z.infer<typeof configSchema>;
/** berth.yml as validated, with `functions` present (empty for a project of flows alone). */
export type RawConfig = Omit<ParsedConfig, 'functions'> & { functions: NonNullable<ParsedConfig['functions']> };
