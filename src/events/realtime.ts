/**
 * Real-time topic subscriptions: browsers and devices subscribe over WebSocket
 * (`/_berth/topics/<topic>/subscribe?token=...`), and a topic may also be bridged to an MQTT
 * broker. Every message published to the topic goes to each, once it is stored, in publish
 * order, as the SNS envelope its other subscribers get (MQTT gets the bare message).
 *
 * A subscriber that falls more than 1 MiB behind is dropped (close 4429) rather than slowing the
 * others; a missing or wrong token is 4401, an unknown topic 4404, and a subscriber that sends
 * anything is 1003: subscriptions only receive. A reload closes, with the same codes, the
 * subscribers the new berth.yml would refuse.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import Denque from 'denque';
import mqtt, { type MqttClient } from 'mqtt';
import { WebSocketServer, type WebSocket } from 'ws';
import { safeDecode, sameSecret } from '../strings.js';
import type { TopicSpec } from '../types.js';

const SUBSCRIBE_PATH = /^\/_berth\/topics\/([^/?]+)\/subscribe(?:\?|$)/;
const MAX_BEHIND_BYTES = 1024 * 1024;
/** A subscriber told to go that does not finish the close handshake is cut off after this. */
const CLOSE_GRACE_MS = 1000;
/** Sent to an MQTT broker and not yet acknowledged: a broker that stops answering is sent no more. */
const MQTT_MAX_IN_FLIGHT = { bytes: 1024 * 1024, messages: 1000 };
/**
 * Waiting in Berth while an MQTT broker is unreachable or slow; beyond either the oldest are
 * dropped. Messages are counted too, as small ones cost more memory than their bytes.
 */
const MQTT_MAX_WAITING = { bytes: 16 * 1024 * 1024, messages: 100_000 };
/** How long stopping waits for a connected broker to acknowledge what is in flight. */
const MQTT_END_GRACE_MS = 1000;
/** A long outage drops a message per publish: it is reported at the first drop and then once per this many. */
const MQTT_DROPS_PER_REPORT = 1000;

const CLOSE = { goingAway: 1001, unsupported: 1003, unauthorized: 4401, unknownTopic: 4404, tooSlow: 4429 } as const;

/** Messages for an MQTT broker that were never sent to it. */
export interface DroppedMqttMessages {
  /** host:port only: the URL may hold a password. */
  broker: string;
  /** How many, in all, since its bridge started. */
  dropped: number;
  why: string;
}

export class RealtimeHub {
  private topics = new Map<string, TopicSpec>();
  /** Each topic's subscribers, with the token each came with, so that a reload can check it again. */
  private readonly subscribers = new Map<string, Map<WebSocket, string | undefined>>();
  private readonly bridges = new Map<string, MqttBridge>();
  private readonly server = new WebSocketServer({ noServer: true, maxPayload: 1024 });

  constructor(
    private readonly onError: (err: unknown) => void,
    private readonly onDropped: (detail: DroppedMqttMessages) => void,
  ) {}

  deploy(topics: Map<string, TopicSpec>): void {
    this.topics = topics;
    for (const [topic, subscribers] of this.subscribers) {
      for (const [ws, token] of subscribers) {
        const refused = this.refusal(topic, token);
        if (refused) this.drop(ws, topic, ...refused);
      }
    }
    const urls = new Set([...topics.values()].flatMap((topic) => (topic.mqtt ? [topic.mqtt.url] : [])));
    for (const url of urls) {
      if (!this.bridges.has(url)) this.bridges.set(url, new MqttBridge(url, this.onError, this.onDropped));
    }
    for (const [url, bridge] of this.bridges) {
      if (urls.has(url)) continue;
      this.bridges.delete(url);
      void bridge.end().catch(this.onError);
    }
  }

  /** Takes WebSocket upgrades for subscription paths from the HTTP server. */
  attach(server: Server): void {
    server.on('upgrade', (request: IncomingMessage, socket: Duplex, head: Buffer) => {
      // Nothing may escape the 'upgrade' event: Node would stop Berth for it. It costs this connection only.
      try {
        const match = SUBSCRIBE_PATH.exec(request.url ?? '');
        if (!match) return void socket.destroy();
        this.server.handleUpgrade(request, socket, head, (ws) => this.subscribe(ws, safeDecode(match[1]!), request));
      } catch (err) {
        socket.destroy();
        this.onError(err);
      }
    });
  }

  /** A stored message of `topic`, to its live subscribers and its broker. */
  deliver(topic: string, envelope: { Message: string }): void {
    const spec = this.topics.get(topic);
    if (spec?.mqtt) this.bridges.get(spec.mqtt.url)?.publish(spec.mqtt.topic, envelope.Message);
    const subscribers = this.subscribers.get(topic);
    if (!subscribers || subscribers.size === 0) return;
    const text = JSON.stringify(envelope);
    for (const ws of subscribers.keys()) {
      if (ws.bufferedAmount > MAX_BEHIND_BYTES) this.drop(ws, topic, CLOSE.tooSlow, `too slow: more than ${MAX_BEHIND_BYTES} bytes of messages waiting`);
      else ws.send(text);
    }
  }

  async stop(): Promise<void> {
    for (const [topic, subscribers] of this.subscribers) {
      for (const ws of subscribers.keys()) this.drop(ws, topic, CLOSE.goingAway, 'Berth is stopping');
    }
    const bridges = [...this.bridges.values()];
    this.bridges.clear();
    await Promise.all(bridges.map((bridge) => bridge.end()));
  }

  private subscribe(ws: WebSocket, topic: string, request: IncomingMessage): void {
    // Before anything else: a bad frame, even from a client being refused, is an 'error' event, and
    // one with no listener would stop Berth.
    ws.on('error', () => ws.terminate());
    const token = tokenOf(request);
    const refused = this.refusal(topic, token);
    if (refused) return this.drop(ws, topic, ...refused);
    let subscribers = this.subscribers.get(topic);
    if (!subscribers) this.subscribers.set(topic, (subscribers = new Map()));
    subscribers.set(ws, token);
    ws.on('message', () => this.drop(ws, topic, CLOSE.unsupported, 'subscriptions only receive; send nothing'));
    ws.on('close', () => subscribers.delete(ws));
  }

  /**
   * Why a subscriber with `token` may not have `topic`, if it may not. The reasons do not name the
   * topic: a close reason has at most 123 bytes, and the topic comes from the URL.
   */
  private refusal(topic: string, token: string | undefined): [code: number, reason: string] | undefined {
    const spec = this.topics.get(topic);
    if (!spec?.websocket) return [CLOSE.unknownTopic, 'this topic takes no WebSocket subscribers (topics.<name>.websocket in berth.yml)'];
    if (!validToken(spec.websocket.tokens, token)) return [CLOSE.unauthorized, 'missing or wrong token: pass ?token=... or Authorization: Bearer ...'];
    return undefined;
  }

  /** Closes a subscriber of `topic` (or one asking for it): it gets nothing more, and is cut off if it does not finish the close handshake in time. */
  private drop(ws: WebSocket, topic: string, code: number, reason: string): void {
    this.subscribers.get(topic)?.delete(ws);
    // A chatty client's later frames drop it again: it is already going, with its one timer.
    if (ws.readyState !== ws.OPEN) return;
    ws.close(code, reason);
    const cutOff = setTimeout(() => ws.terminate(), CLOSE_GRACE_MS);
    ws.once('close', () => clearTimeout(cutOff));
  }
}

/**
 * One MQTT broker's client and the messages on their way to it, in publish order. Messages are
 * handed to the client only while it is connected, at most MQTT_MAX_IN_FLIGHT of them
 * unacknowledged (and always at least one), because its own offline queue has no bound. The rest
 * wait here, at most MQTT_MAX_WAITING; beyond that the oldest is dropped and reported. All of it
 * is memory only: what waits when Berth stops is lost (and reported).
 */
class MqttBridge {
  private readonly client: MqttClient;
  private readonly broker: string;
  private readonly waiting = new Denque<{ topic: string; message: string; bytes: number }>();
  private waitingBytes = 0;
  private inFlight = 0;
  private inFlightBytes = 0;
  /** From 'connect', which comes once the client has resent what was in flight when the connection broke: what waits goes after it. */
  private connected = false;
  private dropped = 0;
  /** Set while stopping waits for the last acknowledgements. */
  private settled?: () => void;

  constructor(
    url: string,
    private readonly onError: (err: unknown) => void,
    private readonly onDropped: (detail: DroppedMqttMessages) => void,
  ) {
    this.broker = new URL(url).host;
    this.client = mqtt.connect(url, { reconnectPeriod: 1000 });
    this.client.on('error', onError);
    this.client.on('connect', () => {
      this.connected = true;
      this.flush();
    });
    this.client.on('close', () => (this.connected = false));
  }

  publish(topic: string, message: string): void {
    const bytes = Buffer.byteLength(message);
    this.waiting.push({ topic, message, bytes });
    this.waitingBytes += bytes;
    this.flush();
    while (this.waitingBytes > MQTT_MAX_WAITING.bytes || this.waiting.length > MQTT_MAX_WAITING.messages) {
      this.waitingBytes -= this.waiting.shift()!.bytes;
      if (this.dropped++ % MQTT_DROPS_PER_REPORT === 0) {
        const limit = `${MQTT_MAX_WAITING.bytes} bytes or ${MQTT_MAX_WAITING.messages} messages`;
        this.onDropped({ broker: this.broker, dropped: this.dropped, why: `the broker is unreachable or slow, and more than ${limit} waited for it: the oldest went` });
      }
    }
  }

  /** Stops. What waits is dropped; a connected broker gets a moment to acknowledge what is in flight, an unreachable one is not waited for. */
  async end(): Promise<void> {
    const left = this.waiting.length;
    this.waiting.clear();
    this.waitingBytes = 0;
    if (left > 0) {
      this.dropped += left;
      this.onDropped({ broker: this.broker, dropped: this.dropped, why: `${left} were still waiting for the broker when Berth stopped or dropped the bridge` });
    }
    if (this.connected && this.inFlight > 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, MQTT_END_GRACE_MS);
        this.settled = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    await this.client.endAsync(true);
  }

  private flush(): void {
    while (this.connected && this.inFlightBytes < MQTT_MAX_IN_FLIGHT.bytes && this.inFlight < MQTT_MAX_IN_FLIGHT.messages) {
      const next = this.waiting.shift();
      if (!next) return;
      this.waitingBytes -= next.bytes;
      this.inFlight++;
      this.inFlightBytes += next.bytes;
      this.client.publish(next.topic, next.message, { qos: 1 }, (err) => {
        this.inFlight--;
        this.inFlightBytes -= next.bytes;
        if (err) this.onError(err);
        if (this.inFlight === 0) this.settled?.();
        this.flush();
      });
    }
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
