/**
 * berth.yml validation through the real CLI: every bad project makes `berth start`
 * exit non-zero with a message that names the file, the line (where there is one),
 * the field and the fix. One good TypeScript project proves the happy path.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { makeProject, runCli, startBerth } from './helpers/project.js';

const HELLO = 'export const handler = async () => ({ ok: true });\n';

/** Runs `berth start <dir> --port 0` on a project that must be rejected; returns what it printed. */
async function startFails(files: Record<string, string>): Promise<string> {
  const dir = makeProject(files);
  const result = await runCli(['start', dir, '--port', '0'], { timeoutMs: 20_000 });
  const output = result.stdout + result.stderr;
  assert.notEqual(result.code, 0, `berth start should fail, but exited ${result.code}:\n${output}`);
  assert.doesNotMatch(output, /listening on http/, 'a rejected project must not start serving');
  return output;
}

/** A berth.yml location `berth.yml:<line>` (column optional), as the messages print it. */
function atLine(line: number): RegExp {
  return new RegExp(`berth\\.yml:${line}(:\\d+)?\\b`);
}

describe('berth start rejects a bad project with a precise message', () => {
  test('malformed YAML names berth.yml, the line and says to fix the syntax', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: "hello.handler\n    timeout: 3\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /berth\.yml:\d+:\d+/);
    assert.match(out, /quote/i, 'names what is wrong with the YAML');
    assert.match(out, /Fix the YAML syntax/);
  });

  test('a block sequence at the wrong indentation is located on its line', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    events:\n      - http: GET /a\n     - http: GET /b\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, atLine(6));
    assert.match(out, /Fix the YAML syntax/);
  });

  test('an unknown top-level key says "unknown key", on its own line, and lists the expected keys', async () => {
    const out = await startFails({
      'berth.yml': 'service: demo\nfunctions:\n  hello:\n    handler: hello.handler\ngatway:\n  bodyLimit: 1kb\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /unknown key "gatway"/);
    assert.match(out, /expected one of service, defaults, gateway, events, runtime, store, account, groups, queues, topics, functions/);
    // The key is on line 5; its value starts on line 6. The message must point at the key.
    assert.match(out, atLine(5));
  });

  test('a missing functions section is named, with what to write', async () => {
    const out = await startFails({
      'berth.yml': 'service: demo\nfuntions:\n  hello:\n    handler: hello.handler\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /unknown key "funtions"/);
    assert.match(out, /\bfunctions\b/);
    // zod's own wording is not a fix a user can act on.
    assert.doesNotMatch(out, /Invalid input: expected record, received undefined/);
  });

  test('an unknown function key names the field path and lists the function keys', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    timout: 3\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, atLine(4));
    assert.match(out, /functions\.hello\.timout/);
    assert.match(out, /unknown key "timout"/);
    assert.match(out, /expected one of handler, .*timeout.*isolation.*events/);
  });

  test('timeout: "ten" is a wrong type, named with its field, line, value and the expected type', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    timeout: ten\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, atLine(4));
    assert.match(out, /functions\.hello\.timeout/);
    assert.match(out, /"ten"/);
    assert.match(out, /expected a number of seconds/);
  });

  test('an environment value holding a NUL character is named, not left to fail every start of the function', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    environment:\n      TOKEN: "ab\\0cd"\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /functions\.hello\.environment\.TOKEN/);
    assert.match(out, /cannot contain a NUL character/);
  });

  test('isolation: bogus lists the allowed values', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    isolation: bogus\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, atLine(4));
    assert.match(out, /functions\.hello\.isolation/);
    assert.match(out, /"bogus"/);
    assert.match(out, /fresh, tenant, warm/);
  });

  test('several problems are all reported, each with its own line', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.handler\n    timeout: ten\n    isolation: bogus\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /2 problems/);
    assert.match(out, new RegExp(`${atLine(4).source} functions\\.hello\\.timeout`));
    assert.match(out, new RegExp(`${atLine(5).source} functions\\.hello\\.isolation`));
  });

  test('a handler file that does not exist names the paths looked for and the fix', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: src/missing.handler\n',
    });
    assert.match(out, atLine(3));
    assert.match(out, /functions\.hello\.handler/);
    assert.match(out, /handler file not found/);
    assert.match(out, /src\/missing\.ts/);
    assert.match(out, /Create the file or fix the path/);
  });

  test('a handler export missing from an ESM file names berth.yml, the handler field, the exports and the fix', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: hello.nope\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /does not export "nope"/);
    assert.match(out, /exports: handler/);
    assert.match(out, /hello\.mjs/);
    assert.match(out, /Export a function named nope from that file, or point handler at the right export/);
    // Like every other berth.yml problem, it should point at the setting to change.
    assert.match(out, /berth\.yml/);
    assert.match(out, /functions\.hello\.handler/);
  });

  test('GET /a/{x} and GET /a/{y} in two functions clash', async () => {
    const out = await startFails({
      'berth.yml':
        'functions:\n  hello:\n    handler: hello.handler\n    events:\n      - http: GET /a/{x}\n' +
        '  other:\n    handler: hello.handler\n    events:\n      - http: GET /a/{y}\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, atLine(9));
    assert.match(out, /functions\.other\.events\.0\.http/);
    assert.match(out, /"GET \/a\/\{y\}" clashes with "GET \/a\/\{x\}" of function "hello"/);
    assert.match(out, /different method or path/);
  });

  test('ANY and GET on the same path clash, in either order', async () => {
    for (const [first, second] of [
      ['GET', 'ANY'],
      ['ANY', 'GET'],
    ]) {
      const out = await startFails({
        'berth.yml':
          `functions:\n  hello:\n    handler: hello.handler\n    events:\n      - http: ${first} /b\n` +
          `  other:\n    handler: hello.handler\n    events:\n      - http: ${second} /b\n`,
        'hello.mjs': HELLO,
      });
      assert.match(out, atLine(9), `${first} then ${second}`);
      assert.match(out, /functions\.other\.events\.0\.http/);
      assert.match(out, new RegExp(`"${second} /b" clashes with "${first} /b" of function "hello"`));
    }
  });

  test('invalid route strings are each reported on their own line with the expected form', async () => {
    const out = await startFails({
      'berth.yml':
        'functions:\n  hello:\n    handler: hello.handler\n    events:\n' +
        '      - http: FETCH /b\n' +
        '      - http: /nomethod\n' +
        '      - http: GET b\n' +
        '      - http: GET /a/{x}y\n' +
        '      - http: GET /a/{p+}/b\n',
      'hello.mjs': HELLO,
    });
    assert.match(out, /5 problems/);
    assert.match(out, new RegExp(`${atLine(5).source} functions\\.hello\\.events\\.0\\.http: unknown HTTP method "FETCH"; use one of GET`));
    assert.match(out, new RegExp(`${atLine(6).source} functions\\.hello\\.events\\.1\\.http: expected "METHOD /path"`));
    assert.match(out, new RegExp(`${atLine(7).source} functions\\.hello\\.events\\.2\\.http: route path must start with "/"`));
    assert.match(out, new RegExp(`${atLine(8).source} functions\\.hello\\.events\\.3\\.http: path segment "\\{x\\}y" must be a whole parameter`));
    assert.match(out, new RegExp(`${atLine(9).source} functions\\.hello\\.events\\.4\\.http: greedy parameter \\{p\\+\\} must be the last`));
  });

  test('a TypeScript syntax error fails the bundle, naming the file and line', async () => {
    const out = await startFails({
      'berth.yml': 'functions:\n  hello:\n    handler: src/hello.handler\n',
      'src/hello.ts': 'interface E { a: number }\nexport const handler = async (e: E) => {\n  return e.a +;\n};\n',
    });
    assert.match(out, /BERTH_ERR_BUNDLE_FAILED/);
    assert.match(out, /Could not bundle function "hello"/);
    assert.match(out, /src\/hello\.ts:3:\d+/);
    assert.match(out, /Unexpected ";"/);
    assert.match(out, /Fix the code/);
  });

  test('a missing berth.yml says so, names the directory and how to fix it', async () => {
    const dir = makeProject({ 'hello.mjs': HELLO });
    const result = await runCli(['start', dir, '--port', '0'], { timeoutMs: 20_000 });
    assert.notEqual(result.code, 0);
    assert.match(result.stderr, /No berth\.yml in /);
    assert.ok(result.stderr.includes(dir), 'names the directory');
    assert.match(result.stderr, /Create one/);
  });
});

test('a typed TypeScript handler bundles and runs', async () => {
  const dir = makeProject({
    'berth.yml': 'functions:\n  greet:\n    handler: src/greet.handler\n    events:\n      - http: GET /greet/{name}\n',
    'src/greet.ts':
      "import { shout } from './util';\n" +
      'interface Event { pathParameters: { name: string } }\n' +
      'type Result = { statusCode: number; body: string };\n' +
      'enum Mood { Happy = "happy" }\n' +
      'export const handler = async (event: Event): Promise<Result> => {\n' +
      '  const mood: Mood = Mood.Happy;\n' +
      '  return { statusCode: 200, body: `${shout(event.pathParameters.name)} is ${mood}` };\n' +
      '};\n',
    'src/util.ts': 'export function shout(s: string): string {\n  return s.toUpperCase() as string;\n}\n',
  });
  const berth = await startBerth(dir);
  try {
    const response = await fetch(`${berth.url}/greet/ada`);
    assert.equal(response.status, 200);
    assert.equal(await response.text(), 'ADA is happy');
  } finally {
    assert.equal(await berth.stop(), 0);
  }
});
