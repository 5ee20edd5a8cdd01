/**
 * Real-time subscriptions through the real server: WebSocket subscribers with per-topic tokens
 * get every published message in order; bad tokens, unknown topics, chatty and slow subscribers
 * are closed with their own codes without disturbing the others or Berth, and a reload closes
 * the ones it no longer allows; the MQTT bridge publishes to the local Mosquitto, and a broker
 * that is down never holds up stopping.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pathToFileURL } from 'node:url';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { waitForText } from './helpers/cli.js';
import { sleep, stopWithin, waitFor } from './helpers/lambda.js';
import { freePorts, makeProject, startBerth, type RunningBerth } from './helpers/project.js';

const TOKEN = 'live-token-0123456789';
const MQTT_TOPIC = `berth-test/${randomUUID()}`;
const BERTH_YML = `
topics:
  live:
    websocket: { tokens: [${TOKEN}] }
  bridged:
    mqtt: { url: "mqtt://127.0.0.1:1883", topic: "${MQTT_TOPIC}" }
  private: {}
functions:
  noop:
    handler: h.handler
`;

const HANDLER = { 'h.mjs': 'export const handler = async () => ({});\n' };

/**
 * Loaded into Berth (NODE_OPTIONS): a line on stderr for each timer the hub starts to cut off a
 * subscriber it closes, so a test can count what a dropped subscriber costs.
 */
const COUNT_CLOSE_TIMERS = `
import { createHook } from 'node:async_hooks';
import { writeSync } from 'node:fs';
createHook({
  init(_id, type) {
    if (type === 'Timeout' && /at setTimeout .*\\n\\s+at RealtimeHub\\.drop /.test(new Error().stack)) writeSync(2, 'close timer\\n');
  },
}).enable();
`;

let berth: RunningBerth;
const closeTimers = () => berth.output().match(/^close timer$/gm)?.length ?? 0;

before(async () => {
  const dir = makeProject({ 'berth.yml': BERTH_YML, ...HANDLER, 'count-close-timers.mjs': COUNT_CLOSE_TIMERS });
  const preload = `--import=${pathToFileURL(path.join(dir, 'count-close-timers.mjs')).href}`;
  berth = await startBerth(dir, { env: { NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} ${preload}` } });
});
after(async () => {
  await berth?.stop();
});

const publish = async (topic: string, message: string, server = berth) => {
  const response = await fetch(`${server.url}/_berth/topics/${topic}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message }) });
  assert.equal(response.status, 200, await response.text());
};

interface Subscriber {
  ws: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
}

function subscribe(topic: string, token?: string, server = berth): Promise<Subscriber> {
  const url = `${server.url.replace('http', 'ws')}/_berth/topics/${topic}/subscribe${token ? `?token=${token}` : ''}`;
  const ws = new WebSocket(url);
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()).Message));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('error', reject);
  });
}

/** A project whose topic `name` is bridged to `mqttTopic` on an MQTT broker at 127.0.0.1:`port`. */
const bridgedProject = (name: string, port: number, mqttTopic: string) =>
  makeProject({ 'berth.yml': `topics:\n  ${name}:\n    mqtt: { url: "mqtt://127.0.0.1:${port}", topic: "${mqttTopic}" }\nfunctions:\n  noop:\n    handler: h.handler\n`, ...HANDLER });

/** How the subscriber was closed, or undefined if it is still open after `ms`. */
const closedWithin = (subscriber: Subscriber, ms: number) => Promise.race([subscriber.closed, sleep(ms).then(() => undefined)]);

/** The subscriber's TCP socket: what is written to it reaches Berth as it is, past the ws client's checks. */
const socketOf = (subscriber: Subscriber) => (subscriber.ws as unknown as { _socket: Duplex })._socket;

/** Berth is still up and serving subscribers. */
async function assertServing(): Promise<void> {
  assert.equal(berth.process.exitCode, null, `Berth exited:\n${berth.output()}`);
  const check = await subscribe('live', TOKEN);
  await publish('live', 'still serving');
  await waitFor(() => check.messages.includes('still serving'), { what: 'a new subscriber to get a message' });
  check.ws.close();
}

describe('WebSocket subscriptions', () => {
  test('subscribers with the token get every message, in publish order', async () => {
    const [a, b] = await Promise.all([subscribe('live', TOKEN), subscribe('live', TOKEN)]);
    const sent = Array.from({ length: 50 }, (_, i) => `m${i}`);
    for (const message of sent) await publish('live', message);
    await waitFor(() => a.messages.length === 50 && b.messages.length === 50, { what: 'both subscribers to have all 50' });
    assert.deepEqual(a.messages, sent);
    assert.deepEqual(b.messages, sent);
    a.ws.close();
    b.ws.close();
  });

  test('a missing or wrong token, or a topic without WebSocket, is closed with its own code', async () => {
    for (const [topic, token, code] of [['live', undefined, 4401], ['live', 'wrong-token-0123456789', 4401], ['private', TOKEN, 4404], ['nope', TOKEN, 4404]] as const) {
      const subscriber = await subscribe(topic, token);
      const closed = await subscriber.closed;
      assert.equal(closed.code, code, `${topic} with ${token ?? 'no token'}: ${closed.reason}`);
      assert.ok(closed.reason.length > 0, 'with a reason saying why');
    }
  });

  test('a topic in the URL that does not decode, or is too long to quote in a close reason, is refused with 4404; Berth keeps serving', async () => {
    for (const topic of ['%E0%A4%A', 'x'.repeat(300)]) {
      const closed = await (await subscribe(topic, TOKEN)).closed;
      assert.equal(closed.code, 4404, `${topic.slice(0, 20)}: ${closed.reason}`);
      assert.match(closed.reason, /WebSocket/);
    }
    await assertServing();
  });

  test('a refused subscriber that sends a bad frame while it is being closed costs only its own connection', async () => {
    const unmasked = Buffer.from([0x81, 0x02, 0x68, 0x69]); // text "hi", which a client must mask
    const oversized = Buffer.concat([Buffer.from([0x81, 0xfe, 0x08, 0x00, 0, 0, 0, 0]), Buffer.alloc(2048)]); // masked, 2 KiB: more than Berth takes
    for (const [topic, token] of [['nope', TOKEN], ['live', 'wrong-token-0123456789']] as const) {
      for (const frame of [unmasked, oversized]) {
        const refused = await subscribe(topic, token);
        socketOf(refused).write(frame);
        await refused.closed;
      }
    }
    await assertServing();
  });

  test('a subscriber that sends garbage, or falls far behind, is dropped; the others get everything', async () => {
    const [steady, chatty, slow] = await Promise.all([subscribe('live', TOKEN), subscribe('live', TOKEN), subscribe('live', TOKEN)]);
    const timersBefore = closeTimers();
    for (let i = 0; i < 100; i++) chatty.ws.send('hello? \u0000\u0001 garbage');
    assert.equal((await chatty.closed).code, 1003);

    // The slow one stops reading its socket: once the kernel's buffers are full, what Berth sends it piles up.
    socketOf(slow).pause();
    const big = 'x'.repeat(128 * 1024);
    const sent: string[] = [];
    const COUNT = 200;
    for (let i = 0; i < COUNT; i++) {
      sent.push(`${i}:${big}`);
      await publish('live', sent[i]!);
    }
    await waitFor(() => steady.messages.length === COUNT, { what: `the steady subscriber to get all ${COUNT}`, timeoutMs: 30_000 });
    assert.ok(steady.messages.every((m, i) => m === sent[i]), 'in order, complete');
    socketOf(slow).resume();
    const dropped = await closedWithin(slow, 10_000);
    assert.ok(dropped, 'the slow subscriber was closed');
    assert.ok(dropped.code === 4429 || dropped.code === 1006, `the slow one was dropped (${dropped.code} ${dropped.reason})`);
    assert.ok(slow.messages.length < COUNT, 'it did not get everything');
    // However much the chatty one sent and the slow one missed, each cost one timer to cut it off.
    await waitFor(() => closeTimers() >= timersBefore + 2, { what: 'the two close timers' });
    await sleep(100);
    assert.equal(closeTimers() - timersBefore, 2);
    steady.ws.close();
  });
});

describe('berth dev reload', () => {
  const KEPT = 'kept-token-0123456789';
  const REVOKED = 'revoked-token-0123456789';
  const yml = (liveTokens: string[], other: string) => `
topics:
  live:
    websocket: { tokens: [${liveTokens.join(', ')}] }
  other:${other}
functions:
  noop:
    handler: h.handler
`;
  let dev: RunningBerth;

  before(async () => {
    dev = await startBerth(makeProject({ 'berth.yml': yml([KEPT, REVOKED], ` { websocket: { tokens: [${KEPT}] } }`), ...HANDLER }), { command: 'dev' });
  });
  after(async () => {
    assert.equal(await stopWithin(dev), 0);
  });

  test('closes the subscribers the new berth.yml refuses: 4401 for a removed token, 4404 for a topic without websocket', async () => {
    const [kept, revoked, other] = await Promise.all([subscribe('live', KEPT, dev), subscribe('live', REVOKED, dev), subscribe('other', KEPT, dev)]);
    writeFileSync(path.join(dev.dir, 'berth.yml'), yml([KEPT], ' {}'));
    await waitForText(dev.output, /reloaded after change/, 10_000, 'berth dev');
    const [revokedClosed, otherClosed] = await Promise.all([closedWithin(revoked, 5000), closedWithin(other, 5000)]);
    assert.equal(revokedClosed?.code, 4401, 'the subscriber whose token was removed');
    assert.equal(otherClosed?.code, 4404, 'the subscriber of the topic that no longer takes WebSocket subscribers');
    await publish('live', 'after the reload', dev);
    await waitFor(() => kept.messages.includes('after the reload'), { what: 'the subscriber with a kept token to go on receiving' });
    assert.deepEqual(revoked.messages, []);
    kept.ws.close();
  });
});

describe('MQTT bridge', () => {
  test('messages published to a bridged topic reach the broker, in order', async () => {
    const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883');
    try {
      const received: string[] = [];
      client.on('message', (_topic, payload) => received.push(payload.toString()));
      await client.subscribeAsync(MQTT_TOPIC, { qos: 1 });
      const sent = Array.from({ length: 20 }, (_, i) => `reading ${i}`);
      for (const message of sent) await publish('bridged', message);
      await waitFor(() => received.length === 20, { what: 'all 20 on the broker', timeoutMs: 10_000 });
      assert.deepEqual(received, sent);
    } finally {
      await client.endAsync();
    }
  });

  test('messages published while the broker is unreachable reach it once it is back, in order', async () => {
    const [port] = (await freePorts(1)) as [number];
    const topic = `${MQTT_TOPIC}/later`;
    const later = await startBerth(bridgedProject('later', port, topic));
    // Nothing listens on the bridge's port until this forwards it to the broker.
    const forwarder = createServer((socket) => {
      const broker = connect(1883, '127.0.0.1');
      socket.pipe(broker).pipe(socket);
      socket.on('error', () => broker.destroy());
      broker.on('error', () => socket.destroy());
    });
    const client = await mqtt.connectAsync('mqtt://127.0.0.1:1883');
    try {
      const received: string[] = [];
      client.on('message', (_topic, payload) => received.push(payload.toString()));
      await client.subscribeAsync(topic, { qos: 1 });
      const sent = Array.from({ length: 10 }, (_, i) => `while away ${i}`);
      for (const message of sent) await publish('later', message, later);
      await new Promise<void>((resolve) => forwarder.listen(port, '127.0.0.1', resolve));
      await waitFor(() => received.length === sent.length, { what: 'the waiting messages on the broker', timeoutMs: 10_000 });
      assert.deepEqual(received, sent);
    } finally {
      await client.endAsync();
      await stopWithin(later);
      forwarder.close();
    }
  });
});

describe('MQTT bridge to a broker that is down', () => {
  let down: RunningBerth;
  let port: number;

  before(async () => {
    [port] = (await freePorts(1)) as [number];
    down = await startBerth(bridgedProject('down', port, MQTT_TOPIC));
  });
  after(async () => {
    if (down) await stopWithin(down, 1000);
  });

  test('at most 16 MiB waits for it; beyond that the oldest are dropped, and that is logged', async () => {
    for (let i = 0; i < 17; i++) await publish('down', String(i).padEnd(1024 * 1024, '.'), down);
    const gatewayLog = path.join(down.dataDir, 'logs', 'gateway.log');
    const logged = await waitFor(
      () => existsSync(gatewayLog) && readFileSync(gatewayLog, 'utf8').split('\n').find((line) => line.includes('messages for an MQTT broker were dropped')),
      { what: 'the drop in the gateway log' },
    );
    const entry = JSON.parse(logged) as { broker: string; dropped: number };
    assert.equal(entry.broker, `127.0.0.1:${port}`);
    assert.equal(entry.dropped, 1, '17 MiB published, 16 MiB kept: the first one dropped');
  });

  test('Berth stops at once, cleanly, with messages still waiting for it', async () => {
    for (let i = 0; i < 3; i++) await publish('down', `waiting ${i}`, down);
    assert.equal(await stopWithin(down, 5000), 0, `Berth stops within 5 s, with code 0:\n${down.output()}`);
  });
});
