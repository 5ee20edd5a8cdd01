/**
 * The `flows:` section: each flow's steps, checked (unknown functions, missing modules,
 * duplicate ids, expressions that do not parse), and a function made of every code step's
 * module, so customer code runs in sandboxes like any function, isolated per tenant.
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import jsonata from 'jsonata';
import { templateExpressions } from '../flows/expressions.js';
import type { FlowSpec, StepSpec } from '../flows/types.js';
import type { FunctionSpec, TopicSpec } from '../types.js';
import { parseDuration } from './index.js';
import { defaults, type RawConfig, type RawFlowStep } from './schema.js';

interface Problem {
  path: (string | number)[];
  message: string;
}

const MODULE_EXTENSIONS = ['.ts', '.mts', '.js', '.mjs', '.cjs'];
const STEP_KINDS = ['function', 'code', 'http', 'forEach'] as const;

/** The function Berth runs a code step's module as; a name no declared function can have. */
export function codeStepFunctionName(flow: string, stepPath: string): string {
  return `flow.${flow}.${stepPath}`;
}

export function buildFlows(
  dir: string,
  raw: RawConfig,
  functions: Map<string, FunctionSpec>,
  topics: Map<string, TopicSpec>,
  codeFunction: (name: string, file: string, timeoutSeconds: number) => FunctionSpec,
  problems: Problem[],
): Map<string, FlowSpec> {
  const flows = new Map<string, FlowSpec>();
  for (const [name, rawFlow] of Object.entries(raw.flows ?? {})) {
    const at = ['flows', name];
    if (rawFlow.tenant !== undefined) checkTemplate(rawFlow.tenant, [...at, 'tenant'], problems);
    const secrets = new Set<string>();
    const steps = buildSteps(rawFlow.steps, '', [...at, 'steps'], new Set());
    if (secrets.size > 0 && rawFlow.tenant === undefined) {
      problems.push({ path: [...at, 'tenant'], message: `steps use secrets (${[...secrets].join(', ')}), which belong to a tenant; give the flow a tenant, e.g. tenant: acme or tenant: "{% input.customer %}"` });
    }
    const alertTopic = rawFlow.alerts && alertsTopic(name, rawFlow.alerts, topics, [...at, 'alerts'], problems);
    flows.set(name, {
      name,
      description: rawFlow.description ?? '',
      ...(rawFlow.tenant !== undefined ? { tenant: rawFlow.tenant } : {}),
      steps,
      secrets: [...secrets],
      ...(alertTopic ? { alertTopic } : {}),
      // Read with the functions' events, in config/index.ts.
      queueTriggers: [],
      schedules: [],
      webhooks: [],
    });

    /** `before`: the ids of the steps that run before this list, whose outputs it may use. */
    function buildSteps(list: RawFlowStep[], prefix: string, listAt: (string | number)[], before: Set<string>): StepSpec[] {
      const seen = new Set<string>();
      const earlier = new Set(before);
      return list.flatMap((step, index): StepSpec[] => {
        const stepAt = [...listAt, index];
        // Checked against the steps before this one; then this one is visible to those after it.
        checkStepReferences(step, earlier, stepAt, problems);
        earlier.add(step.id);
        if (seen.has(step.id)) problems.push({ path: [...stepAt, 'id'], message: `step id "${step.id}" is used twice in this list; give each step its own id` });
        seen.add(step.id);
        const kinds = STEP_KINDS.filter((kind) => step[kind] !== undefined);
        if (kinds.length !== 1) {
          problems.push({ path: stepAt, message: `a step does exactly one thing: give it one of ${STEP_KINDS.join(', ')}${kinds.length > 1 ? ` (it has ${kinds.join(' and ')})` : ''}` });
          return [];
        }
        const stepPath = prefix + step.id;
        if (step.if !== undefined) checkExpression(step.if, [...stepAt, 'if'], problems);
        if (step.input !== undefined) checkTemplate(step.input, [...stepAt, 'input'], problems);
        if (step.steps !== undefined && step.forEach === undefined) problems.push({ path: [...stepAt, 'steps'], message: 'nested steps belong to a forEach step; add forEach: <expression giving a list>' });
        if (step.concurrency !== undefined && step.forEach === undefined) problems.push({ path: [...stepAt, 'concurrency'], message: 'concurrency applies to a forEach step' });
        const common = {
          id: step.id,
          path: stepPath,
          ...(step.if !== undefined ? { if: step.if } : {}),
          ...(step.input !== undefined ? { input: step.input } : {}),
          retries: step.retries ?? defaults.flowStep.retries,
          retryDelaySeconds: step.retryDelay !== undefined ? parseDuration(step.retryDelay) : defaults.flowStep.retryDelaySeconds,
          timeoutSeconds: step.timeout !== undefined ? parseDuration(step.timeout) : defaults.flowStep.timeoutSeconds,
          secrets: step.secrets ?? [],
        };
        for (const secret of common.secrets) secrets.add(secret);
        if (step.secrets !== undefined && step.forEach !== undefined) problems.push({ path: [...stepAt, 'secrets'], message: 'a forEach step runs no code of its own; declare secrets on the nested steps that use them' });
        if (step.function !== undefined) {
          if (!Object.hasOwn(raw.functions, step.function)) {
            problems.push({ path: [...stepAt, 'function'], message: `unknown function "${step.function}"; declare it under functions: in berth.yml` });
          }
          return [{ ...common, kind: 'function', functionName: step.function }];
        }
        if (step.code !== undefined) {
          const file = resolveModule(dir, step.code);
          if (!file) {
            problems.push({ path: [...stepAt, 'code'], message: `module not found: ${step.code} in ${dir}. Create it (exporting handler) or fix the path.` });
            return [];
          }
          const functionName = codeStepFunctionName(name, stepPath);
          functions.set(functionName, codeFunction(functionName, file, common.timeoutSeconds));
          return [{ ...common, kind: 'code', functionName, module: step.code }];
        }
        if (step.http !== undefined) {
          checkTemplate(step.http, [...stepAt, 'http'], problems);
          const { method = 'GET', url, headers = {}, body } = step.http;
          return [{ ...common, kind: 'http', request: { method: method.toUpperCase(), url, headers, ...(body !== undefined ? { body } : {}) } }];
        }
        checkExpression(step.forEach!, [...stepAt, 'forEach'], problems);
        if (!step.steps?.length) {
          problems.push({ path: [...stepAt, 'steps'], message: 'a forEach step runs nested steps for each item; add steps: [...]' });
          return [];
        }
        return [
          {
            ...common,
            kind: 'forEach',
            items: step.forEach!,
            concurrency: step.concurrency ?? defaults.flowStep.concurrency,
            // Its items see the steps before the forEach, not the forEach's own (unfinished) output.
            steps: buildSteps(step.steps, `${stepPath}.`, [...stepAt, 'steps'], new Set([...earlier].filter((id) => id !== step.id))),
          },
        ];
      });
    }
  }
  return flows;
}

/**
 * Alerts ride on a topic of their own with the webhook and the addresses as its subscribers:
 * published in the run's last commit, delivered off the run's path, retried with backoff like
 * any subscription.
 */
function alertsTopic(
  flow: string,
  alerts: { webhook?: string | undefined; email?: string | string[] | undefined; retries?: number | undefined },
  topics: Map<string, TopicSpec>,
  at: (string | number)[],
  problems: Problem[],
): string | undefined {
  const name = `flow-alerts-${flow}`;
  if (topics.has(name)) {
    problems.push({ path: at, message: `topic "${name}" carries this flow's alerts; rename the topic declared under topics:` });
    return undefined;
  }
  const retries = alerts.retries ?? defaults.httpSubscriptionRetries;
  topics.set(name, {
    name,
    subscriptions: [
      ...(alerts.webhook !== undefined ? [{ http: alerts.webhook, retries }] : []),
      ...(alerts.email !== undefined ? [{ email: [alerts.email].flat(), retries }] : []),
    ],
  });
  return name;
}

/** A code step's module: `customers/acme/transform.ts`, or without its extension. */
function resolveModule(dir: string, module: string): string | undefined {
  const base = path.resolve(dir, module);
  return [base, ...MODULE_EXTENSIONS.map((ext) => base + ext)].find((file) => path.extname(file) !== '' && existsSync(file));
}

/** `steps.fetch` or steps.`my-step` in an expression. */
const STEP_REFERENCE = /\bsteps\.(?:`([^`]+)`|([A-Za-z0-9_]+))/g;

/** Every `steps.<id>` a step's expressions use must name a step that runs before it. */
function checkStepReferences(step: RawFlowStep, earlier: Set<string>, at: (string | number)[], problems: Problem[]): void {
  const expressions = [
    ...(step.if !== undefined ? [step.if] : []),
    ...(step.forEach !== undefined ? [step.forEach] : []),
    ...templateExpressions(step.input),
    ...templateExpressions(step.http),
  ];
  for (const expression of expressions) {
    for (const match of expression.matchAll(STEP_REFERENCE)) {
      const id = match[1] ?? match[2]!;
      if (earlier.has(id)) continue;
      problems.push({
        path: at,
        message: `step "${step.id}" refers to steps.${id}, but ${id === step.id ? 'a step cannot use its own output' : `no step "${id}" runs before it`}; use the id of an earlier step`,
      });
    }
  }
}

function checkExpression(expression: string, at: (string | number)[], problems: Problem[]): void {
  try {
    jsonata(expression);
  } catch (err) {
    const { message, position } = err as { message: string; position?: number };
    problems.push({ path: at, message: `expression "${expression}" does not parse: ${message}${position !== undefined ? ` (at character ${position})` : ''}` });
  }
}

/** Every `{% ... %}` inside a template value must parse. */
function checkTemplate(value: unknown, at: (string | number)[], problems: Problem[]): void {
  for (const expression of templateExpressions(value)) checkExpression(expression, at, problems);
}
