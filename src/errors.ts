/**
 * Every error Berth raises on purpose has a code, an HTTP status and a message
 * that names the offending value and the fix. Callers match on `code`, never on
 * message text. AWS-shaped errors are mapped from these in src/gateway/aws-errors.ts.
 */

interface ErrorDefinition {
  status: number;
  message: (detail: Record<string, string | number>) => string;
}

const definitions = {
  BERTH_ERR_CONFIG_INVALID: {
    status: 400,
    message: (d) => `${d.where}: ${d.problem}`,
  },
  BERTH_ERR_CONFIG_NOT_FOUND: {
    status: 400,
    message: (d) => `No berth.yml in ${d.dir}. Create one (see README "Configuration") or pass the project directory: berth start <dir>`,
  },
  BERTH_ERR_BUNDLE_FAILED: {
    status: 500,
    message: (d) => `Could not bundle function "${d.fn}" (${d.file}): ${d.problem}`,
  },
  BERTH_ERR_HANDLER_NOT_EXPORTED: {
    status: 400,
    message: (d) =>
      `${d.where}: ${d.file} does not export "${d.exportName}" (its exports: ${d.exports}). Export a function named ${d.exportName} from that file, or point ${d.key ?? 'handler'} at the right export.`,
  },
  BERTH_ERR_FUNCTION_NOT_FOUND: {
    status: 404,
    message: (d) => `Function not found: ${d.fn}. Run \`berth ls\` to see the functions this project declares.`,
  },
  BERTH_ERR_FLOW_NOT_FOUND: {
    status: 404,
    message: (d) => `Flow not found: ${d.flow}. Run \`berth flow ls\` to see the flows this project declares.`,
  },
  BERTH_ERR_FLOW_RUN_NOT_FOUND: {
    status: 404,
    message: (d) => `Flow run not found: ${d.id}. Run \`berth flow runs <flow>\` to list a flow's runs.`,
  },
  BERTH_ERR_TENANT_NOT_ALLOWED: {
    status: 400,
    message: (d) =>
      `Function "${d.fn}" uses isolation "warm", which shares environments between callers, so it cannot run for tenant "${d.tenant}". Set \`isolation: tenant\` (or fresh) on it in berth.yml, or send no tenant.`,
  },
  BERTH_ERR_INVALID_TENANT: {
    status: 400,
    message: (d) => `Invalid tenant id "${d.tenant}": use 1-128 characters from A-Z a-z 0-9 . _ : / = + - @`,
  },
  BERTH_ERR_INVOCATION_NOT_FOUND: {
    status: 404,
    message: (d) => `No invocation with id ${d.id}. Invocation ids are printed by \`berth invoke\` and in START lines of \`berth logs\`.`,
  },
  BERTH_ERR_BAD_REQUEST: {
    status: 400,
    message: (d) => `${d.field} ${d.problem}`,
  },
  BERTH_ERR_ROUTE_NOT_FOUND: {
    status: 404,
    message: (d) => `No route for ${d.method} ${d.path}. Run \`berth ls\` to see the routes this project declares.`,
  },
  BERTH_ERR_BODY_TOO_LARGE: {
    status: 413,
    message: (d) => `Request body is larger than the ${d.limit}-byte limit. Send a smaller body or raise gateway.bodyLimit in berth.yml.`,
  },
  BERTH_ERR_PORT_IN_USE: {
    status: 500,
    message: (d) => `Cannot listen on ${d.address}: ${d.problem}. Stop the other process, or choose another port with --port N (--port 0 picks a free one).`,
  },
  BERTH_ERR_WEBHOOK_SIGNATURE: {
    status: 401,
    message: (d) =>
      `Missing or wrong signature in header ${d.header}: expected the hex HMAC-${d.algorithm} of the request body with the webhook's secret (optionally prefixed "${d.prefix}="). Nothing was run.`,
  },
  BERTH_ERR_THROTTLED: {
    status: 429,
    message: (d) =>
      `Function "${d.fn}" is at a concurrency limit (${d.reason}) and no capacity freed within ${d.waitMs} ms. Retry after a second, or raise the limit: \`berth limits\` shows them, \`berth limits set\` changes them.`,
  },
  BERTH_ERR_LIMITS_INVALID: {
    status: 400,
    message: (d) => `Invalid limits: ${d.problem}. The limits in force are unchanged.`,
  },
  BERTH_ERR_SHUTTING_DOWN: {
    status: 503,
    message: () => 'Berth is shutting down and accepts no new invocations.',
  },
  BERTH_ERR_NO_INSTANCE: {
    status: 400,
    message: (d) => `${d.problem}`,
  },
  BERTH_ERR_MASTER_KEY: {
    status: 500,
    message: (d) =>
      `${d.problem} Secrets are encrypted with a 32-byte master key: export BERTH_MASTER_KEY=$(openssl rand -hex 32) (64 hex characters, or 32 bytes in base64), or point BERTH_MASTER_KEY_FILE at a file holding one. Keep it outside the data directory and back it up: without it no secret can be read.`,
  },
  BERTH_ERR_INVALID_SECRET_NAME: {
    status: 400,
    message: (d) => `Invalid secret name "${d.name}": use 1-128 characters from A-Z a-z 0-9 . _ -, starting with a letter or digit.`,
  },
  BERTH_ERR_SECRET_NOT_FOUND: {
    status: 404,
    message: (d) =>
      `Tenant "${d.tenant}" has no secret "${d.name}". Set it with \`berth secrets set ${d.tenant} ${d.name}\` (the value is read from stdin), or list the tenant's secrets with \`berth secrets list ${d.tenant}\`.`,
  },
  BERTH_ERR_SECRET_UNREADABLE: {
    status: 500,
    message: (d) => `Secret "${d.name}" of tenant "${d.tenant}" cannot be decrypted: ${d.problem}`,
  },
  BERTH_ERR_OAUTH_REFRESH_FAILED: {
    status: 502,
    message: (d) =>
      `Refreshing the access token of OAuth2 connection "${d.name}" (tenant "${d.tenant}") failed: ${d.url} ${d.problem}. Check the connection's client id and secret; if the refresh token was revoked or has expired, authorise again and store the new one with \`berth secrets set-oauth2 ${d.tenant} ${d.name} ...\`.`,
  },
} satisfies Record<string, ErrorDefinition>;

export type BerthErrorCode = keyof typeof definitions;

export class BerthError extends Error {
  readonly code: BerthErrorCode;
  readonly status: number;

  constructor(
    code: BerthErrorCode,
    /** The values the message names, for callers that answer in another shape (AWS errors). */
    readonly detail: Record<string, string | number> = {},
  ) {
    const definition: ErrorDefinition = definitions[code];
    super(definition.message(detail));
    this.name = 'BerthError';
    this.code = code;
    this.status = definition.status;
  }
}

export const errorCodes = Object.keys(definitions) as BerthErrorCode[];

export function isBerthError(value: unknown, code?: BerthErrorCode): value is BerthError {
  return value instanceof BerthError && (code === undefined || value.code === code);
}
