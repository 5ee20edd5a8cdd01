import { BerthError } from './errors.js';

const TENANT_ID = /^[A-Za-z0-9._:/=+\-@]{1,128}$/;

/** Throws unless `tenantId` is a well-formed tenant id: the same rule for invocations and secrets. */
export function checkTenantId(tenantId: string): void {
  if (!TENANT_ID.test(tenantId)) throw new BerthError('BERTH_ERR_INVALID_TENANT', { tenant: tenantId });
}
