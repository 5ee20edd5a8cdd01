/**
 * User routes from `events: - http: METHOD /path`. The table is rebuilt on every
 * deploy and swapped whole, so `berth dev` can reload without restarting the server.
 */
import FindMyWay, { type HTTPMethod } from 'find-my-way';
import type { FlowSpec } from '../flows/types.js';
import type { FunctionSpec, WebhookSpec } from '../types.js';

const ALL_METHODS: HTTPMethod[] = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS'];

export interface RouteMatch {
  /** The function the route invokes; for a flow's webhook, the flow it starts (see `flow`). */
  functionName: string;
  /** Set when the webhook starts a flow run rather than invoking a function. */
  flow?: boolean;
  routeKey: string;
  pathParameters: Record<string, string>;
  /** Set for `events: - webhook:` routes: verify, enqueue and answer 202. */
  webhook?: WebhookSpec;
}

export class RouteTable {
  private readonly router = FindMyWay({ ignoreTrailingSlash: false, caseSensitive: true });
  readonly size: number;

  constructor(functions: FunctionSpec[], flows: FlowSpec[] = []) {
    let size = 0;
    for (const fn of functions) {
      for (const route of fn.routes) {
        const store = { functionName: fn.name, routeKey: `${route.method} ${route.path}`, proxyName: proxyName(route.path) };
        const methods = route.method === 'ANY' ? ALL_METHODS : [route.method as HTTPMethod];
        // Clashing routes were rejected with the config, so every registration is new.
        this.router.on(methods, toFindMyWay(route.path), () => {}, store);
        size++;
      }
      for (const webhook of fn.webhooks) {
        this.router.on('POST', toFindMyWay(webhook.path), () => {}, { functionName: fn.name, routeKey: `POST ${webhook.path}`, webhook });
        size++;
      }
    }
    for (const flow of flows) {
      for (const webhook of flow.webhooks) {
        this.router.on('POST', toFindMyWay(webhook.path), () => {}, { functionName: flow.name, flow: true, routeKey: `POST ${webhook.path}`, webhook });
        size++;
      }
    }
    this.size = size;
  }

  match(method: string, path: string): RouteMatch | undefined {
    const found = this.router.find(method as HTTPMethod, path);
    if (!found) return undefined;
    const store = found.store as { functionName: string; flow?: boolean; routeKey: string; proxyName?: string; webhook?: WebhookSpec };
    const pathParameters: Record<string, string> = {};
    for (const [key, value] of Object.entries(found.params)) {
      if (value === undefined) continue;
      pathParameters[key === '*' ? store.proxyName! : key] = value;
    }
    return {
      functionName: store.functionName,
      routeKey: store.routeKey,
      pathParameters,
      ...(store.webhook ? { webhook: store.webhook } : {}),
      ...(store.flow ? { flow: true } : {}),
    };
  }
}

/** `/lead/{leadId}` → `/lead/:leadId`; `/files/{proxy+}` → `/files/*`. */
function toFindMyWay(path: string): string {
  return path.replace(/\{([A-Za-z0-9_]+)\+\}/g, '*').replace(/\{([A-Za-z0-9_]+)\}/g, ':$1');
}

function proxyName(path: string): string | undefined {
  return /\{([A-Za-z0-9_]+)\+\}/.exec(path)?.[1];
}
