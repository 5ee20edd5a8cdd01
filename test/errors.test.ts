import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BerthError, errorCodes } from '../src/errors.js';

test('every error code has a status and a message that names the value it was given', () => {
  assert.ok(errorCodes.length > 0);
  for (const code of errorCodes) {
    assert.match(code, /^BERTH_ERR_[A-Z_]+$/);
    const detail = { where: 'W-VALUE', problem: 'P-VALUE', dir: 'D-VALUE', fn: 'F-VALUE', file: 'FILE-VALUE', tenant: 'T-VALUE', id: 'I-VALUE', field: 'FIELD-VALUE', method: 'GET', path: '/P-PATH', limit: 1234, address: 'A-VALUE', header: 'H-VALUE', algorithm: 'ALG-VALUE', prefix: 'PFX-VALUE', name: 'N-VALUE', flow: 'FL-VALUE' };
    const err = new BerthError(code, detail);
    assert.equal(err.code, code);
    assert.ok(err.status >= 400 && err.status < 600, `${code} has an HTTP status`);
    assert.ok(/VALUE|PATH|1234/.test(err.message) || code === 'BERTH_ERR_SHUTTING_DOWN', `${code}'s message names the offending value: ${err.message}`);
  }
});
