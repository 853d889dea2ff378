/**
 * The MQTT transport of azure-iot-device-mqtt with one change: an input message is acknowledged
 * (MQTT PUBACK, which is what "complete" means over MQTT; the SDK's complete() is a no-op there)
 * only when the agent releases it, i.e. after its readings are committed to SQLite. Until then
 * edgeHub keeps the message, so a crash never loses it (at-least-once).
 *
 * How: the SDK creates its mqtt.js client through `MqttBase.mqttProvider.connect`; we wrap that
 * call and override the client's `handleMessage(packet, callback)` hook. mqtt.js reads incoming
 * packets one at a time and sends the PUBACK from that callback, so holding the callback would
 * hold every packet behind the input too: twin responses and desired patches included, for as
 * long as the buffer cannot commit. Instead the hook lets the packet loop go on at once without a
 * PUBACK (mqtt.js moves to the next packet when the callback gets an error, and sends nothing),
 * and the agent's release sends the PUBACK itself later, on the same connection. Up to
 * MAX_HELD_INPUTS inputs wait that way; with more, the packet loop waits for a release (the old
 * backpressure, which edgeHub's own in-flight window of 16 keeps from being reached). A release
 * that comes after a reconnection sends nothing (a PUBACK belongs to its connection); a broker that
 * kept the session delivers the message again, and AckGate.stale says when that copy makes the
 * waiting one unnecessary. QoS 0 inputs get an entry without a PUBACK, QoS 2 the SDK's own path.
 * If the SDK's internals ever change shape, the transport falls back to holding the callback
 * (packet loop waits), or to the SDK's own behaviour (acknowledged on receipt), reported through
 * `ackAfterCommit: false`.
 */
import { Mqtt } from 'azure-iot-device-mqtt';

type TwinProperties = Parameters<Parameters<Mqtt['getTwin']>[0]>[1];

interface MqttJsPacket {
  topic?: string;
  qos?: number;
  messageId?: number;
  payload?: Buffer;
}
interface MqttJsClient {
  handleMessage: (packet: MqttJsPacket, callback: (err?: Error) => void) => void;
  on?: (event: 'message', listener: (topic: string, payload: Buffer, packet: MqttJsPacket) => void) => unknown;
  /** mqtt.js's own packet writer (queues while disconnected; a new connection is a new client). */
  _sendPacket?: (packet: { cmd: 'puback'; messageId: number }, cb?: (err?: Error) => void) => void;
  /** mqtt.js: `end(true)` closes the socket at once, without waiting for the broker. */
  end?: (force?: boolean) => unknown;
}
interface MqttProvider {
  connect: (uri: string, options: unknown) => MqttJsClient;
}

/**
 * How many input messages may wait for their commit while the packet loop goes on (one more makes
 * the loop wait for a release). edgeHub sends at most 16 unacknowledged messages per session (its
 * MaxInflightMessages default), so with edgeHub the loop never waits; a broker without such a
 * window gets backpressure after these.
 */
export const MAX_HELD_INPUTS = 16;

/**
 * Acknowledgements held until the agent releases them, per message id, oldest first (a sender's
 * retry carries the same `$.mid`), for the current connection only.
 */
export class AckGate {
  /** Held acknowledgements by `$.mid`, oldest first, with the payload each came with. */
  private readonly held = new Map<string, Array<{ release: () => void; payload: Buffer | null }>>();
  private readonly anonymous: Array<() => void> = [];
  /** Packet loops waiting for room (at most one per connection). */
  private readonly waiting: Array<() => void> = [];
  private heldCount = 0;
  private generation = 0;
  /** Per input payload (the Buffer the SDK's Message keeps as `data`): its QoS and connection. */
  private readonly arrivals = new WeakMap<object, { qos: number; connection: number }>();

  constructor(private readonly limit = MAX_HELD_INPUTS) {}

  /** Which connection messages arriving now belong to (see release). */
  get connection(): number {
    return this.generation;
  }

  hold(topic: string, release: () => void, payload: Buffer | null = null): void {
    const mid = messageIdOf(topic);
    if (mid) {
      const same = this.held.get(mid);
      if (same) same.push({ release, payload });
      else this.held.set(mid, [{ release, payload }]);
    } else {
      this.anonymous.push(release);
    }
    this.heldCount++;
  }

  /** Runs `resume` now while at most the limit are held, otherwise once a release makes room. */
  whenRoom(resume: () => void): void {
    if (this.size <= this.limit) resume();
    else this.waiting.push(resume);
  }

  /**
   * Sends the PUBACK of this message (the oldest held with its `$.mid`; the oldest anonymous one
   * without). Sends nothing for an id not held, nor for a message of an earlier `connection`
   * (gone; the broker delivers it again): never another message's acknowledgement.
   */
  release(messageId: string | undefined, connection = this.generation): void {
    if (connection !== this.generation) return;
    let release: (() => void) | undefined;
    if (messageId) {
      const same = this.held.get(messageId);
      release = same?.shift()?.release;
      if (same && same.length === 0) this.held.delete(messageId);
    } else {
      release = this.anonymous.shift();
    }
    if (!release) return;
    this.heldCount--;
    release();
    while (this.waiting.length > 0 && this.size <= this.limit) this.waiting.shift()?.();
  }

  get size(): number {
    return this.heldCount;
  }

  /** Notes an input message as it arrives on `connection`, before the SDK makes it a Message around `payload`. */
  noteArrival(payload: object, qos: number, connection = this.generation): void {
    this.arrivals.set(payload, { qos, connection });
  }

  /** The connection an input payload arrived on, when noted (what its release must name). */
  connectionOf(payload: unknown): number | undefined {
    return typeof payload === 'object' && payload !== null ? this.arrivals.get(payload)?.connection : undefined;
  }

  /**
   * True for a copy that need not be stored: it came at QoS 1 on a connection that is gone, and the
   * broker has already delivered it again on the current one (held now: the same `$.mid` and the
   * same bytes), so that copy is in hand and will be stored. Never true otherwise: a broker whose
   * session was lost delivers nothing again, and a message without `$.mid` cannot be matched;
   * those are stored, at worst twice (a duplicate, never a loss).
   */
  stale(payload: unknown, messageId: string | undefined): boolean {
    const arrival = typeof payload === 'object' && payload !== null ? this.arrivals.get(payload) : undefined;
    if (arrival === undefined || arrival.qos === 0 || arrival.connection === this.generation || !messageId) return false;
    return (this.held.get(messageId) ?? []).some((e) => e.payload !== null && Buffer.isBuffer(payload) && e.payload.equals(payload));
  }

  /** Forgets everything held (the connection it belonged to is gone; the broker redelivers). Returns the new connection's number. */
  clear(): number {
    this.held.clear();
    this.anonymous.length = 0;
    this.waiting.length = 0;
    this.heldCount = 0;
    return ++this.generation;
  }
}

export function messageIdOf(topic: string): string | null {
  const bag = topic.slice(topic.lastIndexOf('/') + 1);
  for (const pair of bag.split('&')) {
    const eq = pair.indexOf('=');
    if (eq <= 0) continue;
    try {
      if (decodeURIComponent(pair.slice(0, eq)) === '$.mid') return decodeURIComponent(pair.slice(eq + 1));
    } catch {
      return null;
    }
  }
  return null;
}

export interface TransportHooks {
  gate: AckGate;
  /** The transport lost its connection (the SDK may still reconnect on its own). */
  onTransportDisconnect?: (err: unknown) => void;
  /**
   * A full twin read completed, with the desired document exactly as the hub sent it (the SDK's
   * Twin merges it into a cache that patches landing during the read have already changed).
   */
  onTwinRead?: (desired: Record<string, unknown>) => void;
}

export type TransportCtor = new (authenticationProvider: any) => Mqtt;

/**
 * A transport class for ModuleClient.fromConnectionString / fromEnvironment, bound to `hooks`.
 * `destroyConnection()` closes the socket of the newest connection at once (mqtt.js `end(true)`):
 * for a stop that gives up on a hub that does not answer, where the SDK's close would wait for it.
 */
export function commitAckTransport(hooks: TransportHooks): TransportCtor & { ackAfterCommit: () => boolean; destroyConnection: () => void } {
  let installed = false;
  let newest: MqttJsClient | null = null;
  class CommitAckMqtt extends Mqtt {
    constructor(authenticationProvider: any) {
      super(authenticationProvider);
      const base = (this as unknown as { _mqtt?: { mqttProvider?: MqttProvider } })._mqtt;
      const inner = base?.mqttProvider;
      if (base && inner && typeof inner.connect === 'function') {
        base.mqttProvider = { connect: (uri, options) => (newest = wrap(inner.connect(uri, options), hooks.gate)) };
        installed = true;
      }
      this.on('disconnect', (err: unknown) => hooks.onTransportDisconnect?.(err));
    }

    override getTwin(callback: (err?: Error, twin?: TwinProperties) => void): void {
      super.getTwin((err, twin) => {
        if (!err && twin?.desired) {
          try {
            hooks.onTwinRead?.(twin.desired as Record<string, unknown>);
          } catch {
            // the hook's own failure must not fail the SDK's read
          }
        }
        callback(err, twin);
      });
    }
  }
  const destroyConnection = (): void => {
    try {
      newest?.end?.(true);
    } catch {
      // a client already closed: nothing to destroy
    }
    newest = null;
  };
  return Object.assign(CommitAckMqtt, { ackAfterCommit: () => installed, destroyConnection });
}

/** Moves mqtt.js to its next packet without a PUBACK (its publish handler sends none on an error). */
const HELD = new Error('input message held until its readings commit');

function wrap(client: MqttJsClient, gate: AckGate): MqttJsClient {
  const mine = gate.clear();
  const original = client.handleMessage.bind(client);
  const send = typeof client._sendPacket === 'function' ? client._sendPacket.bind(client) : null;
  // Registered before the SDK's own listener (it adds it once this returns), so noted first.
  client.on?.('message', (topic, payload, packet) => {
    if (typeof topic === 'string' && topic.includes('/inputs/') && typeof payload === 'object') gate.noteArrival(payload, packet?.qos ?? 0, mine);
  });
  client.handleMessage = (packet, callback) => {
    const input = typeof packet.topic === 'string' && packet.topic.includes('/inputs/');
    if (!input || (packet.qos ?? 0) === 2) {
      original(packet, callback); // QoS 2 is not what the SDK subscribes with: the SDK's own handling
      return;
    }
    if (gate.connection !== mine) {
      // A client the SDK has replaced, still reading: never an entry among the new connection's, and
      // no PUBACK (the broker delivers it again on the new one).
      if ((packet.qos ?? 0) === 0) original(packet, callback);
      else callback(HELD);
      return;
    }
    if ((packet.qos ?? 0) === 0) {
      // Nothing to acknowledge, but its handler releases it like any other: an entry of its own, or
      // that release would send the PUBACK of the next message without a `$.mid`, not yet committed.
      gate.hold(packet.topic as string, () => undefined);
      original(packet, callback);
      return;
    }
    const messageId = packet.messageId;
    if (send && typeof messageId === 'number') {
      gate.hold(packet.topic as string, () => send({ cmd: 'puback', messageId }), packet.payload ?? null);
      gate.whenRoom(() => callback(HELD));
    } else {
      gate.hold(packet.topic as string, () => original(packet, callback), packet.payload ?? null);
    }
  };
  return client;
}
