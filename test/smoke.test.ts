import assert from 'node:assert/strict';
import { test } from 'node:test';
import { makeProject, startBerth } from './helpers/project.js';

test('a started project answers an HTTP route', async () => {
  const dir = makeProject({
    'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    events:\n      - http: GET /hello/{name}\n',
    'hello.mjs': 'export const handler = async (event) => ({ statusCode: 200, body: `hi ${event.pathParameters.name}` });\n',
  });
  const berth = await startBerth(dir);
  try {
    const response = await fetch(`${berth.url}/hello/ada`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'hi ada');
  } finally {
    assert.equal(await berth.stop(), 0);
  }
});
