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
  z.union([z.string(), z.number(), z.boolean()], { error: 'expected a string, number or boolean value' }),
);

const httpRoute = z.union(
  [
    z.string({ error: 'expected "METHOD /path", e.g. "POST /lead/{leadId}"' }),
    z.strictObject({ method: z.string(), path: z.string() }),
  ],
  { error: 'expected "METHOD /path" or { method, path }' },
);

const event = z.strictObject({ http: httpRoute }, { error: 'expected an event such as `- http: GET /path`' });

const fn = z.strictObject({
  handler: z.string({ error: 'expected "path/to/file.exportName", e.g. "src/lead.handler"' }),
  description: z.string().optional(),
  timeout: seconds.optional(),
  memory: memory.optional(),
  isolation: isolation.optional(),
  environment: environment.optional(),
  prewarm: z.number().int().min(0).max(32, { error: 'expected at most 32 pre-warmed environments' }).optional(),
  idleTimeout: seconds.optional(),
  events: z.array(event, { error: 'expected a list of events' }).optional(),
});

const size = z.union([z.number().int().positive(), z.string().regex(/^\d+(\.\d+)?\s*(b|kb|mb|gb)?$/i)], {
  error: 'expected a size such as 6291456 or "6mb"',
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
  runtime: z
    .strictObject({
      maxEnvironments: z.number().int().min(1, { error: 'expected at least 1 environment' }).optional(),
    })
    .optional(),
  functions: z.record(
    z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, { error: 'function names use 1-64 letters, digits, - and _' }),
    fn,
    { error: 'add a "functions:" section naming each function and its handler, e.g. hello: { handler: src/hello.handler }' },
  ),
});

export type RawConfig = z.infer<typeof configSchema>;
