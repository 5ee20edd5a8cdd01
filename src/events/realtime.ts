/**
 * Real-time topic subscriptions: browsers and devices subscribe over WebSocket
 * (`/_berth/topics/<topic>/subscribe?token=...`), and a topic may also be bridged to an MQTT
 * broker. Every message published to the topic goes to each, once it is stored, in publish
 * order, as the SNS envelope its other subscribers get (MQTT gets the bare message).
 *
 * A subscriber that falls more than 1 MiB behind is dropped (close 4429) rather than slowing the
 * others; a missing or wrong token is 4401, an unknown topic 4404, and a subscriber that sends
 * anything is 1003: subscriptions only receive.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocketServer, type WebSocket } from 'ws';
import { sameSecret } from '../strings.js';
import type { TopicSpec } from '../types.js';

const SUBSCRIBE_PATH = /^\/_berth\/topics\/([^/?]+)\/subscribe(?:\?|$)/;
const MAX_BEHIND_BYTES = 1024 * 1024;
/** A subscriber told to go that does not finish the close handshake is cut off after this. */
const CLOSE_GRACE_MS = 1000;

export const CLOSE = { unsupported: 1003, unauthorized: 4401, unknownTopic: 4404, tooSlow: 4429 } as const;

export class RealtimeHub {
  private topics = new Map<string, TopicSpec>();
  private readonly sockets = new Map<string, Set<WebSocket>>();
  private readonly brokers = new Map<string, MqttClient>();
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 1024 });

  constructor(private readonly onError: (err: unknown) => void) {}

  deploy(topics: Map<string, TopicSpec>): void {
    this.topics = topics;
    const urls = new Set([...topics.values()].flatMap((topic) => (topic.mqtt ? [topic.mqtt.url] : [])));
    for (const url of urls) {
      if (this.brokers.has(url)) continue;
      // Reconnects by itself; messages published while it is away wait in its queue.
      const client = mqtt.connect(url, { reconnectPeriod: 1000 });
      client.on('error', this.onError);
      this.brokers.set(url, client);
    }
    for (const [url, client] of this.brokers) {
      if (urls.has(url)) continue;
      client.end();
      this.brokers.delete(url);
    }
  }

  /** Takes WebSocket upgrades for subscription paths from the HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      const match = SUBSCRIBE_PATH.exec(request.url ?? '');
      if (!match) return void socket.destroy();
      this.server.handleUpgrade(request, socket, head, (ws) => this.subscribe(ws, decodeURIComponent(match[1]!), request));
    });
  }

  /** A stored message of `topic`, to its live subscribers and its broker. */
  deliver(topic: string, envelope: { Message: string }): void {
    const spec = this.topics.get(topic);
    if (spec?.mqtt) this.brokers.get(spec.mqtt.url)?.publish(spec.mqtt.topic, envelope.Message, { qos: 1 });
    const sockets = this.sockets.get(topic);
    if (!sockets || sockets.size === 0) return;
    const text = JSON.stringify(envelope);
    for (const ws of sockets) {
      if (ws.bufferedAmount > MAX_BEHIND_BYTES) {
        this.drop(ws, CLOSE.tooSlow, `too slow: more than ${MAX_BEHIND_BYTES} bytes of messages waiting`);
        continue;
      }
      ws.send(text);
    }
  }

  async stop(): Promise<void> {
    for (const set of this.sockets.values()) for (const ws of set) ws.close(1001, 'Berth is stopping');
    await Promise.all([...this.brokers.values()].map((client) => client.endAsync()));
    this.brokers.clear();
  }

  private subscribe(ws: WebSocket, topic: string, request: IncomingMessage): void {
    const spec = this.topics.get(topic);
    if (!spec?.websocket) return this.drop(ws, CLOSE.unknownTopic, `no topic "${topic}" takes WebSocket subscribers (topics.<name>.websocket in berth.yml)`);
    if (!validToken(spec.websocket.tokens, tokenOf(request))) return this.drop(ws, CLOSE.unauthorized, `missing or wrong token for topic "${topic}": pass ?token=... or Authorization: Bearer ...`);
    let set = this.sockets.get(topic);
    if (!set) this.sockets.set(topic, (set = new Set()));
    set.add(ws);
    ws.on('message', () => this.drop(ws, CLOSE.unsupported, 'subscriptions only receive; send nothing'));
    ws.on('error', () => ws.terminate());
    ws.on('close', () => set.delete(ws));
  }

  private drop(ws: WebSocket, code: number, reason: string): void {
    ws.close(code, reason);
    setTimeout(() => ws.terminate(), CLOSE_GRACE_MS).unref();
  }
}

function tokenOf(request: IncomingMessage): string | undefined {
  const fromQuery = new URL(request.url ?? '/', 'http://berth').searchParams.get('token');
  if (fromQuery) return fromQuery;
  const header = request.headers.authorization;
  return header?.startsWith('Bearer ') ? header.slice('Bearer '.length) : undefined;
}

/** Compared in constant time, so a token cannot be guessed from how long a refusal takes. */
function validToken(tokens: string[], given: string | undefined): boolean {
  return given !== undefined && tokens.some((token) => sameSecret(given, token));
}
