import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeProject, startBerth } from './helpers/project.js';

test('berth dev shows the function error and its source-mapped stack in a 502; berth start does not', async () => {
  const dir = makeProject({
    'berth.yml': 'functions:\n  boom:\n    handler: src/thrower.handler\n    events:\n      - http: GET /boom\n',
    'src/thrower.ts': "// the throw is on line 4\n\nexport const handler = async (): Promise<void> => {\n  throw new TypeError('kaboom in dev');\n};\n",
  });
  for (const command of ['dev', 'start'] as const) {
    const berth = await startBerth(dir, { command });
    try {
      const response = await fetch(`${berth.url}/boom`);
      assert.equal(response.status, 502);
      const body = (await response.json()) as { message: string; error?: { errorType: string; errorMessage: string; trace: string[] } };
      assert.equal(body.message, 'Internal Server Error');
      if (command === 'dev') {
        assert.equal(body.error?.errorType, 'TypeError');
        assert.equal(body.error?.errorMessage, 'kaboom in dev');
        // Source maps: the stack points at the TypeScript source, not at the bundle.
        assert.ok(body.error!.trace.some((line) => /src\/thrower\.ts:4:\d+/.test(line)), `trace names the source line: ${body.error!.trace.join('\n')}`);
      } else {
        assert.equal(body.error, undefined);
      }
    } finally {
      assert.equal(await berth.stop(), 0);
    }
  }
});
