import type { IncomingHttpHeaders } from 'node:http';

/** The tenant a request names: Lambda's `X-Amz-Tenant-Id`, or Berth's `X-Berth-Tenant`. */
export function tenantFrom(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['x-amz-tenant-id'] ?? headers['x-berth-tenant'];
  return Array.isArray(value) ? value[0] : value;
}
