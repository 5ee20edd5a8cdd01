/**
 * Real-time subscriptions through the real server: WebSocket subscribers with per-topic tokens
 * get every published message in order; bad tokens, unknown topics, chatty and slow subscribers
 * are closed with their own codes without disturbing the others; the MQTT bridge publishes to
 * the local Mosquitto.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import mqtt from 'mqtt';
import WebSocket from 'ws';
import { waitFor } from './helpers/lambda.js';
import { makeProject, startBerth, type RunningBerth } from './helpers/project.js';

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

let berth: RunningBerth;

before(async () => {
  berth = await startBerth(makeProject({ 'berth.yml': BERTH_YML, 'h.mjs': 'export const handler = async () => ({});\n' }));
});
after(async () => {
  await berth?.stop();
});

const publish = async (topic: string, message: string) => {
  const response = await fetch(`${berth.url}/_berth/topics/${topic}/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ message }) });
  assert.equal(response.status, 200, await response.text());
};

interface Subscriber {
  ws: WebSocket;
  messages: string[];
  closed: Promise<{ code: number; reason: string }>;
}

function subscribe(topic: string, token?: string): Promise<Subscriber> {
  const url = `${berth.url.replace('http', 'ws')}/_berth/topics/${topic}/subscribe${token ? `?token=${token}` : ''}`;
  const ws = new WebSocket(url);
  const messages: string[] = [];
  ws.on('message', (data) => messages.push(JSON.parse(data.toString()).Message));
  const closed = new Promise<{ code: number; reason: string }>((resolve) => ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  return new Promise((resolve, reject) => {
    ws.once('open', () => resolve({ ws, messages, closed }));
    ws.once('error', reject);
  });
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

  test('a subscriber that sends garbage, or falls far behind, is dropped; the others get everything', async () => {
    const [steady, chatty, slow] = await Promise.all([subscribe('live', TOKEN), subscribe('live', TOKEN), subscribe('live', TOKEN)]);
    chatty.ws.send('hello? \u0000\u0001 garbage');
    assert.equal((await chatty.closed).code, 1003);

    // The slow one stops reading its socket: once the kernel's buffers are full, what Berth sends it piles up.
    (slow.ws as unknown as { _socket: { pause(): void } })._socket.pause();
    const big = 'x'.repeat(128 * 1024);
    const sent: string[] = [];
    const COUNT = 200;
    for (let i = 0; i < COUNT; i++) {
      sent.push(`${i}:${big}`);
      await publish('live', sent[i]!);
    }
    await waitFor(() => steady.messages.length === COUNT, { what: `the steady subscriber to get all ${COUNT}`, timeoutMs: 30_000 });
    assert.ok(steady.messages.every((m, i) => m === sent[i]), 'in order, complete');
    (slow.ws as unknown as { _socket: { resume(): void } })._socket.resume();
    const dropped = await Promise.race([slow.closed, new Promise<undefined>((resolve) => setTimeout(resolve, 10_000))]);
    assert.ok(dropped, 'the slow subscriber was closed');
    assert.ok(dropped.code === 4429 || dropped.code === 1006, `the slow one was dropped (${dropped.code} ${dropped.reason})`);
    assert.ok(slow.messages.length < COUNT, 'it did not get everything');
    steady.ws.close();
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
});
