/**
 * The MQTT side of the local hub: an aedes broker served over TLS on loopback, with IoT Hub's
 * authentication and per-module topic authorisation. It can be stopped and started again on the
 * same port; the MQTT session store (persistent sessions of `clean: false` clients, their
 * subscriptions and unacknowledged QoS 1 messages) is carried over, as IoT Hub keeps sessions.
 */
import tls from 'node:tls';
import type { Socket } from 'node:net';
import { Aedes, type AuthenticateError, type Client } from 'aedes';
import { LocalHubError } from './errors.js';
import { allowedDelivery, allowedPublish, allowedSubscription } from './topics.js';

export interface ModuleIdentity {
  deviceId: string;
  moduleId: string;
}

export interface BrokerHandlers {
  /** The module a CONNECT authenticates as, or a reason to refuse it (never logged with secrets). */
  authenticate(clientId: string, username: string | undefined, password: Buffer | undefined): ModuleIdentity | { refused: string };
  connected(identity: ModuleIdentity): void;
  disconnected(identity: ModuleIdentity): void;
  published(identity: ModuleIdentity, topic: string, payload: Buffer): void;
  /** A QoS 1 message the broker sent was acknowledged (PUBACK) by its subscriber. */
  acked(topic: string): void;
  refused(clientId: string, reason: string): void;
  subscribed(identity: ModuleIdentity, topic: string): void;
}

const NOT_AUTHORIZED = 5 as AuthenticateError['returnCode'];

export function identityOf(clientId: string): ModuleIdentity | null {
  const slash = clientId.indexOf('/');
  if (slash <= 0 || slash === clientId.length - 1) return null;
  return { deviceId: clientId.slice(0, slash), moduleId: clientId.slice(slash + 1) };
}

/** How long a restart waits for its port when something else holds it (HubBroker.start). */
const RESTART_WAIT_MS = 10_000;

function listenOn(server: tls.Server, port: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
}

export class HubBroker {
  private aedes: Aedes | null = null;
  private server: tls.Server | null = null;
  private persistence: unknown = undefined;
  private readonly sockets = new Set<Socket>();
  private readonly live = new Map<string, Client>();
  /** Granted subscriptions per client id; kept across restarts like the session store. */
  private readonly subscriptions = new Map<string, Set<string>>();

  constructor(
    private readonly tlsMaterial: { key: string; cert: string },
    private readonly handlers: BrokerHandlers,
  ) {}

  get running(): boolean {
    return this.server !== null;
  }

  /** Listens on 127.0.0.1:`port` (0 = a free port) and returns the port. */
  async start(port: number): Promise<number> {
    if (this.server) throw new LocalHubError('PW_LOCALHUB_BROKER_STATE', 'the MQTT broker is already running');
    const aedes = await Aedes.createBroker(this.options());
    this.persistence = (aedes as unknown as { persistence: unknown }).persistence;
    this.wire(aedes);
    const server = tls.createServer({ key: this.tlsMaterial.key, cert: this.tlsMaterial.cert }, (socket) => {
      aedes.handle(socket);
    });
    server.on('connection', (socket: Socket) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    try {
      // A restart takes the port it had (the modules' connection strings name it). While it was
      // stopped, any outgoing connection on the machine may have been given that number as its own
      // local port (the system picks those from the same range as port 0 did): it is taken again
      // for up to RESTART_WAIT_MS, the life of such a connection, rather than failing the restart
      // (a CI run met EADDRINUSE there, 2026-12-08).
      for (const until = Date.now() + RESTART_WAIT_MS; ; ) {
        try {
          await listenOn(server, port);
          break;
        } catch (err) {
          if (port === 0 || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() >= until) throw err;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      }
    } catch (err) {
      await new Promise<void>((resolve) => aedes.close(() => resolve()));
      throw err;
    }
    this.aedes = aedes;
    this.server = server;
    return (server.address() as { port: number }).port;
  }

  /** Closes every connection and the listener; session state stays for the next start(). */
  async stop(): Promise<void> {
    const { aedes, server } = this;
    if (!aedes || !server) return;
    this.aedes = null;
    this.server = null;
    await new Promise<void>((resolve) => aedes.close(() => resolve()));
    for (const socket of this.sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    this.live.clear();
  }

  subscriptionsOf(clientId: string): string[] {
    return [...(this.subscriptions.get(clientId) ?? [])];
  }

  /** Sends a QoS 0 message to one connected client, if it holds `filter`. Returns whether it was sent. */
  sendDirect(clientId: string, filter: string, topic: string, payload: Buffer | string): boolean {
    const client = this.live.get(clientId);
    if (!client || !this.subscriptions.get(clientId)?.has(filter)) return false;
    client.publish({ cmd: 'publish', topic, payload, qos: 0, retain: false, dup: false }, () => undefined);
    return true;
  }

  /** Publishes a QoS 1 message through the broker's routing (queued for offline persistent sessions). */
  async publish(topic: string, payload: Buffer): Promise<void> {
    const aedes = this.aedes;
    if (!aedes) throw new LocalHubError('PW_LOCALHUB_BROKER_STATE', 'the MQTT broker is stopped');
    await new Promise<void>((resolve, reject) => {
      aedes.publish({ cmd: 'publish', topic, payload, qos: 1, retain: false, dup: false }, (err) => (err ? reject(err) : resolve()));
    });
  }

  private options(): Parameters<typeof Aedes.createBroker>[0] {
    return {
      persistence: this.persistence,
      maxClientsIdLength: 256,
      authenticate: (client, username, password, done) => {
        const result = this.handlers.authenticate(client.id, username, password);
        if ('refused' in result) {
          this.handlers.refused(client.id, result.refused);
          const err = new Error('Connection refused: not authorized') as AuthenticateError;
          err.returnCode = NOT_AUTHORIZED;
          done(err, null);
          return;
        }
        done(null, true);
      },
      authorizeSubscribe: (client, sub, done) => {
        const id = identityOf(client.id);
        done(null, id && allowedSubscription(sub.topic, id.deviceId, id.moduleId) ? sub : null);
      },
      authorizePublish: (client, packet, done) => {
        if (!client) return done(null);
        const id = identityOf(client.id);
        if (id && allowedPublish(packet.topic, id.deviceId, id.moduleId)) return done(null);
        done(new Error('not authorized to publish on this topic'));
      },
      authorizeForward: (client, packet) => {
        const id = identityOf(client.id);
        return id && allowedDelivery(packet.topic, id.deviceId, id.moduleId) ? packet : null;
      },
    };
  }

  private wire(aedes: Aedes): void {
    // 'client': authenticated and registered, before CONNACK and before any of its packets is handled.
    aedes.on('client', (client) => {
      if (client.clean) this.subscriptions.delete(client.id);
      this.live.set(client.id, client);
    });
    aedes.on('clientReady', (client) => {
      const id = identityOf(client.id);
      if (id) this.handlers.connected(id);
    });
    aedes.on('clientDisconnect', (client) => {
      if (this.live.get(client.id) !== client) return;
      this.live.delete(client.id);
      const id = identityOf(client.id);
      if (id) this.handlers.disconnected(id);
    });
    aedes.on('subscribe', (subs, client) => {
      const set = this.subscriptions.get(client.id) ?? new Set<string>();
      this.subscriptions.set(client.id, set);
      const id = identityOf(client.id);
      for (const sub of subs) {
        if ((sub.qos as number) === 128) continue;
        set.add(sub.topic);
        if (id) this.handlers.subscribed(id, sub.topic);
      }
    });
    aedes.on('unsubscribe', (topics, client) => {
      const set = this.subscriptions.get(client.id);
      for (const topic of topics) set?.delete(topic);
    });
    aedes.on('publish', (packet, client) => {
      const id = client ? identityOf(client.id) : null;
      if (id) this.handlers.published(id, packet.topic, Buffer.from(packet.payload));
    });
    aedes.on('ack', (packet) => {
      if (packet && 'topic' in packet) this.handlers.acked(packet.topic);
    });
  }
}
