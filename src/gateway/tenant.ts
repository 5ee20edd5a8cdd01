/** What a request says about who it is for and whether it repeats an earlier one. */
import type { IncomingHttpHeaders } from 'node:http';

/** The tenant a request names: Lambda's `X-Amz-Tenant-Id`, or Berth's `X-Berth-Tenant`. */
export function tenantFrom(headers: IncomingHttpHeaders): string | undefined {
  const value = headers['x-amz-tenant-id'] ?? headers['x-berth-tenant'];
  return Array.isArray(value) ? value[0] : value;
}

export function optionalTenant(tenantId: string | undefined): { tenantId?: string } {
  return tenantId === undefined ? {} : { tenantId };
}

/** Berth's idempotency header, as an option for the events layer. */
export function optionalKey(headers: IncomingHttpHeaders): { idempotencyKey?: string } {
  const value = headers['x-berth-idempotency-key'];
  const key = Array.isArray(value) ? value[0] : value;
  return key === undefined || key === '' ? {} : { idempotencyKey: key };
}
