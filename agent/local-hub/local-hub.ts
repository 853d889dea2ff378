/**
 * LocalHub: an IoT Hub stand-in on loopback for development and tests (IoT Hub has no emulator).
 * MQTT over TLS for module clients (azure-iot-device + azure-iot-device-mqtt: twin, desired
 * patches, inputs, outputs) and HTTPS for the service SDK's Registry (module twins, queries).
 * State (identities, twins, outputs) lives in memory and survives stopBroker()/startBroker().
 */
import { EventEmitter } from 'node:events';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { HubBroker, type ModuleIdentity } from './broker.js';
import { makeTlsMaterial, type TlsMaterial } from './certs.js';
import { DESIRED_FILTER, authenticateModule, handleModulePublish, type DeviceProtocolContext } from './device-protocol.js';
import { assertInputName } from './errors.js';
import { deepCopy, type JsonObject } from './json.js';
import { DeliveryTracker, OutputLog, type OutputMessage } from './messages.js';
import { HubRestServer } from './rest-server.js';
import { TwinReadHold, type AnswerAt } from './read-hold.js';
import { attachRegistry } from './registry.js';
import { randomKey } from './sas.js';
import { desiredPatchTopic, inputMessageId, inputTopic } from './topics.js';
import { TwinStore, type ModuleRecord, type ModuleTwinDocument } from './twin-store.js';

export interface LocalHubOptions {
  /** MQTT (TLS) port on 127.0.0.1; 0 or absent = a free port. */
  mqttPort?: number;
  /** HTTPS (service REST) port on 127.0.0.1; 0 or absent = a free port. */
  httpsPort?: number;
  /** The hub's host name in module connection strings and SAS tokens. */
  hostName?: string;
}

export interface LocalHubEvents {
  output: [OutputMessage];
  reported: [{ deviceId: string; moduleId: string; patch: JsonObject; version: number }];
  connected: [ModuleIdentity];
  disconnected: [ModuleIdentity];
  inputCompleted: [{ deviceId: string; moduleId: string; messageId: string }];
  refused: [{ clientId: string; reason: string }];
  subscribed: [{ deviceId: string; moduleId: string; topic: string }];
}

export const SERVICE_KEY_NAME = 'iothubowner';

export class LocalHub extends EventEmitter<LocalHubEvents> {
  readonly ca: string;
  readonly hostName: string;
  private readonly store = new TwinStore();
  private readonly outputLog = new OutputLog();
  private readonly deliveries = new DeliveryTracker();
  private readonly serviceKey = randomKey();
  private readonly broker: HubBroker;
  private readonly rest: HubRestServer;
  private ports = { mqtt: 0, https: 0 };
  private readonly readHolds = new Map<string, TwinReadHold>();
  /** Reported updates still to lose per module, and who waits for them to be lost. */
  private readonly reportedLosses = new Map<string, { left: number; lost: () => void }>();
  private readonly readLosses = new Map<string, { left: number; lost: () => void }>();

  private constructor(tlsMaterial: TlsMaterial, hostName: string) {
    super();
    this.ca = tlsMaterial.ca;
    this.hostName = hostName;
    const ctx: DeviceProtocolContext = {
      hostName,
      store: this.store,
      outputs: this.outputLog,
      broker: () => this.broker,
      onOutput: (message) => this.emit('output', message),
      onReported: (id, patch, version) => this.emit('reported', { ...id, patch, version }),
      readHold: (id) => this.readHolds.get(`${id.deviceId}/${id.moduleId}`),
      loseReported: (id) => this.lose(this.reportedLosses, `${id.deviceId}/${id.moduleId}`),
      loseRead: (id) => this.lose(this.readLosses, `${id.deviceId}/${id.moduleId}`),
    };
    this.broker = new HubBroker(tlsMaterial, {
      authenticate: (clientId, username, password) => authenticateModule(ctx, clientId, username, password),
      connected: (id) => this.setConnected(id, true),
      disconnected: (id) => this.setConnected(id, false),
      published: (id, topic, payload) => handleModulePublish(ctx, id, topic, payload),
      acked: (topic) => this.acked(topic),
      refused: (clientId, reason) => this.emit('refused', { clientId, reason }),
      subscribed: (id, topic) => this.emit('subscribed', { ...id, topic }),
    });
    this.rest = new HubRestServer(
      tlsMaterial,
      { keyBase64: this.serviceKey, keyName: SERVICE_KEY_NAME, resource: () => this.serviceHost() },
      { store: this.store, desiredChanged: (record, patch, version) => this.publishDesired(record, patch, version) },
    );
  }

  /** Makes the certificates, then listens for MQTT and HTTPS on loopback. */
  static async start(opts: LocalHubOptions = {}): Promise<LocalHub> {
    const hostName = opts.hostName ?? 'localhub.azure-devices.net';
    const hub = new LocalHub(await makeTlsMaterial([hostName]), hostName);
    hub.ports.mqtt = await hub.broker.start(opts.mqttPort ?? 0);
    try {
      hub.ports.https = await hub.rest.start(opts.httpsPort ?? 0);
    } catch (err) {
      await hub.broker.stop();
      throw err;
    }
    return hub;
  }

  get mqttPort(): number {
    return this.ports.mqtt;
  }

  get httpsPort(): number {
    return this.ports.https;
  }

  get brokerRunning(): boolean {
    return this.broker.running;
  }

  /** Stops both servers. Close module clients first, or they keep retrying. */
  async stop(): Promise<void> {
    await this.stopBroker();
    await this.rest.stop();
  }

  /** Simulates an outage: drops every MQTT connection and stops listening. Twins and sessions stay. */
  async stopBroker(): Promise<void> {
    await this.broker.stop();
    for (const record of this.store.all()) {
      if (record.connected) this.setConnected(record, false);
    }
  }

  /** Ends the outage: listens again on the same port, with the same state. */
  async startBroker(): Promise<void> {
    await this.broker.start(this.ports.mqtt);
  }

  /** Registers a module identity with a random key; returns its connection string (via GatewayHostName). */
  addModule(deviceId: string, moduleId: string): string {
    this.store.add(deviceId, moduleId, randomKey());
    return this.moduleConnectionString(deviceId, moduleId);
  }

  moduleConnectionString(deviceId: string, moduleId: string): string {
    const record = this.store.get(deviceId, moduleId);
    return `HostName=${this.hostName};DeviceId=${deviceId};ModuleId=${moduleId};SharedAccessKey=${record.key};GatewayHostName=localhost:${this.mqttPort}`;
  }

  /**
   * For azure-iothub's Registry. HostName is `localhost:<httpsPort>`: the SDK cannot reach it (nor
   * anything else) on its own, so pass the Registry through attachRegistry() (see registry.ts).
   */
  serviceConnectionString(): string {
    return `HostName=${this.serviceHost()};SharedAccessKeyName=${SERVICE_KEY_NAME};SharedAccessKey=${this.serviceKey}`;
  }

  /** An https.Agent that sends every request to this hub's HTTPS port and trusts its CA. */
  registryAgent(): https.Agent {
    return new https.Agent({ host: '127.0.0.1', port: this.httpsPort, servername: 'localhost', ca: this.ca, keepAlive: false });
  }

  /** Routes an azure-iothub Registry (made from serviceConnectionString()) to this hub; returns it. */
  attachRegistry<T extends object>(registry: T): T {
    return attachRegistry(registry, this.registryAgent());
  }

  /** Merges a desired patch (null deletes), bumps `$version`, pushes it to the module; returns the version. */
  updateDesired(deviceId: string, moduleId: string, patch: object): number {
    const record = this.store.get(deviceId, moduleId);
    const version = this.store.patchDesired(record, patch);
    this.publishDesired(record, patch as JsonObject, version);
    return version;
  }

  /** Merges a reported patch as if the module had sent it (seeds queries in tests); returns `$version`. */
  updateReported(deviceId: string, moduleId: string, patch: object): number {
    const record = this.store.get(deviceId, moduleId);
    const version = this.store.patchReported(record, patch);
    this.emit('reported', { deviceId, moduleId, patch: patch as JsonObject, version });
    return version;
  }

  /**
   * Test hook: holds the answers to this module's twin reads (`$iothub/twin/GET`) until the
   * returned hold is released, as a slow hub would; patches and reported updates go on meanwhile.
   * `answerAt` 'request' (default) answers with the twin as it was when asked, 'release' as it is then.
   */
  holdTwinReads(deviceId: string, moduleId: string, opts: { answerAt?: AnswerAt } = {}): TwinReadHold {
    this.store.get(deviceId, moduleId);
    const id = `${deviceId}/${moduleId}`;
    this.readHolds.get(id)?.release();
    const hold = new TwinReadHold(opts.answerAt ?? 'request', () => {
      if (this.readHolds.get(id) === hold) this.readHolds.delete(id);
    });
    this.readHolds.set(id, hold);
    return hold;
  }

  /**
   * Test hook: the next `count` reported updates of this module are neither applied nor answered,
   * as when the connection drops between the request and the answer (the SDK sends twin requests at
   * QoS 0 and never fails one whose answer did not come). Resolves once they were lost.
   */
  loseReportedUpdates(deviceId: string, moduleId: string, count = 1): Promise<void> {
    this.store.get(deviceId, moduleId);
    return new Promise((resolve) => this.reportedLosses.set(`${deviceId}/${moduleId}`, { left: count, lost: resolve }));
  }

  /**
   * Test hook: the next `count` twin reads (`$iothub/twin/GET`) of this module are not answered, as
   * when the answer is lost with the connection (QoS 0; the SDK never fails such a read). Resolves
   * once they were lost.
   */
  loseTwinReads(deviceId: string, moduleId: string, count = 1): Promise<void> {
    this.store.get(deviceId, moduleId);
    return new Promise((resolve) => this.readLosses.set(`${deviceId}/${moduleId}`, { left: count, lost: resolve }));
  }

  /** Whether to ignore this request of module `id`, counting it against the losses asked for. */
  private lose(losses: Map<string, { left: number; lost: () => void }>, id: string): boolean {
    const loss = losses.get(id);
    if (!loss) return false;
    if (--loss.left <= 0) {
      losses.delete(id);
      loss.lost();
    }
    return true;
  }

  /** The module twin document, as the service API returns it. */
  getTwin(deviceId: string, moduleId: string): ModuleTwinDocument {
    return this.store.document(this.store.get(deviceId, moduleId));
  }

  /** Reported properties without `$version`. */
  reported(deviceId: string, moduleId: string): JsonObject {
    return deepCopy(this.store.get(deviceId, moduleId).reported);
  }

  /** Desired properties without `$version`. */
  desired(deviceId: string, moduleId: string): JsonObject {
    return deepCopy(this.store.get(deviceId, moduleId).desired);
  }

  isConnected(deviceId: string, moduleId: string): boolean {
    return this.store.get(deviceId, moduleId).connected;
  }

  /** Topic filters the module's MQTT session holds (granted subscriptions). */
  subscriptions(deviceId: string, moduleId: string): string[] {
    this.store.get(deviceId, moduleId);
    return this.broker.subscriptionsOf(`${deviceId}/${moduleId}`);
  }

  /**
   * Publishes an input message (QoS 1) on `devices/{d}/modules/{m}/inputs/{input}/{bag}` with a
   * fresh `$.mid`; a module offline with a persistent session gets it when it reconnects.
   * Resolves with the message id once the broker has taken it; see completed().
   */
  async deliverToInput(
    deviceId: string,
    moduleId: string,
    inputName: string,
    body: string | Buffer,
    properties: Record<string, string> = {},
  ): Promise<string> {
    assertInputName(inputName);
    this.store.get(deviceId, moduleId);
    const messageId = randomUUID();
    const bag: Record<string, string> = { '$.mid': messageId };
    for (const [key, value] of Object.entries(properties)) if (key !== '$.mid') bag[key] = value;
    this.deliveries.track(messageId, { deviceId, moduleId });
    const payload = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
    await this.broker.publish(inputTopic(deviceId, moduleId, inputName, bag), payload);
    return messageId;
  }

  /** Resolves when the module acknowledged the input message (MQTT PUBACK = complete). */
  completed(messageId: string): Promise<void> {
    return this.deliveries.whenCompleted(messageId);
  }

  isCompleted(messageId: string): boolean {
    return this.deliveries.isCompleted(messageId);
  }

  /** Messages the module sent, in arrival order; only those of one output when named. */
  outputs(deviceId: string, moduleId: string, outputName?: string): OutputMessage[] {
    return this.outputLog.list(deviceId, moduleId, outputName);
  }

  private serviceHost(): string {
    return `localhost:${this.httpsPort}`;
  }

  private publishDesired(record: ModuleRecord, patch: JsonObject, version: number): void {
    if (!this.broker.running) return;
    const body = JSON.stringify({ ...patch, $version: version });
    this.broker.sendDirect(`${record.deviceId}/${record.moduleId}`, DESIRED_FILTER, desiredPatchTopic(version), body);
  }

  private setConnected(id: ModuleIdentity, connected: boolean): void {
    const record = this.store.find(id.deviceId, id.moduleId);
    if (!record || record.connected === connected) return;
    record.connected = connected;
    record.lastActivityTime = new Date().toISOString();
    this.emit(connected ? 'connected' : 'disconnected', { deviceId: id.deviceId, moduleId: id.moduleId });
  }

  private acked(topic: string): void {
    const messageId = inputMessageId(topic);
    const id = messageId ? this.deliveries.complete(messageId) : null;
    if (id && messageId) this.emit('inputCompleted', { ...id, messageId });
  }
}

