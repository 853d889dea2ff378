/**
 * The local hub driven by the real module client (azure-iot-device + azure-iot-device-mqtt over TLS):
 * authentication, twin read, desired patches, reported patches, inputs, outputs, and an outage.
 */
import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  LocalHub,
  connectModule,
  device,
  moduleClient,
  openWithRetry,
  type ModuleClient,
} from '../support/local-hub.js';

const DEVICE = 'gw-1';
const DESIRED_TOPIC = '$iothub/twin/PATCH/properties/desired/#';
const INPUTS_TOPIC = (moduleId: string): string => `devices/${DEVICE}/modules/${moduleId}/inputs/#`;

type Listener = (...args: any[]) => void;
interface Emitter {
  on(event: string, listener: Listener): unknown;
  removeListener(event: string, listener: Listener): unknown;
}

/** The first `event` whose first argument matches, from now on. */
function nextEvent<T>(emitter: Emitter, event: string, match: (value: T) => boolean = () => true): Promise<T> {
  return new Promise((resolve) => {
    const listener = (value: T): void => {
      if (!match(value)) return;
      emitter.removeListener(event, listener);
      resolve(value);
    };
    emitter.on(event, listener);
  });
}

function subscribed(hub: LocalHub, moduleId: string, topic: string): Promise<unknown> {
  if (hub.subscriptions(DEVICE, moduleId).includes(topic)) return Promise.resolve();
  return nextEvent<{ moduleId: string; topic: string }>(hub, 'subscribed', (s) => s.moduleId === moduleId && s.topic === topic);
}

function report(twin: Awaited<ReturnType<ModuleClient['getTwin']>>, patch: object): Promise<void> {
  return new Promise((resolve, reject) => {
    twin.properties.reported.update(patch, (err?: Error) => (err ? reject(err) : resolve()));
  });
}

describe('LocalHub with the real azure-iot-device MQTT module client', () => {
  let hub: LocalHub;
  const clients: ModuleClient[] = [];

  async function open(moduleId: string): Promise<ModuleClient> {
    const client = await connectModule(hub, hub.addModule(DEVICE, moduleId));
    clients.push(client);
    return client;
  }

  beforeAll(async () => {
    hub = await LocalHub.start();
  });

  afterAll(async () => {
    for (const client of clients) await client.close().catch(() => undefined);
    await hub?.stop();
  });

  it('authenticates a module by its SAS key and serves its whole twin over MQTT', async () => {
    hub.addModule(DEVICE, 'twin-read');
    const version = hub.updateDesired(DEVICE, 'twin-read', { models: { default: { version: '3' } } });
    const client = await connectModule(hub, hub.moduleConnectionString(DEVICE, 'twin-read'));
    clients.push(client);

    const twin = await client.getTwin();

    expect(twin.properties.desired['models']).toEqual({ default: { version: '3' } });
    expect(twin.properties.desired['$version']).toBe(version);
    expect(twin.properties.reported['$version']).toBe(1);
    expect(hub.isConnected(DEVICE, 'twin-read')).toBe(true);
    expect(hub.getTwin(DEVICE, 'twin-read').connectionState).toBe('Connected');
  });

  it('pushes a desired patch to the subscribed module with its $version', async () => {
    const client = await open('desired-push');
    const twin = await client.getTwin();
    const ready = subscribed(hub, 'desired-push', DESIRED_TOPIC);
    const received = nextEvent<Record<string, unknown>>(twin, 'properties.desired', (p) => p['sync'] !== undefined);
    await ready;

    const version = hub.updateDesired(DEVICE, 'desired-push', { sync: { intervalSeconds: 15 } });

    const patch = await received;
    expect(patch).toEqual({ sync: { intervalSeconds: 15 }, $version: version });
    expect(twin.properties.desired['sync']).toEqual({ intervalSeconds: 15 });
  });

  it('stores reported patches, deleting keys set to null, and bumps the reported $version', async () => {
    const client = await open('reported');
    const twin = await client.getTwin();

    await report(twin, { models: { default: { version: '3', status: 'active' } }, scratch: 1 });
    await report(twin, { scratch: null });

    expect(hub.reported(DEVICE, 'reported')).toEqual({ models: { default: { version: '3', status: 'active' } } });
    expect(hub.getTwin(DEVICE, 'reported').properties.reported['$version']).toBe(3);
    const reread = await client.getTwin();
    expect(reread.properties.reported['models']).toEqual({ default: { version: '3', status: 'active' } });
  });

  it('delivers an input message with its properties and counts it completed when the module acknowledges it', async () => {
    const client = await open('inputs');
    const ready = subscribed(hub, 'inputs', INPUTS_TOPIC('inputs'));
    const received = new Promise<{ input: string; msg: InstanceType<typeof device.Message> }>((resolve) => {
      client.on('inputMessage', (input: string, msg: InstanceType<typeof device.Message>) => {
        void client.complete(msg).then(() => resolve({ input, msg }));
      });
    });
    await ready;
    const reading = { pumpId: 'pump-17', ts: '2026-11-23T10:00:00.000Z', values: { Pressure: 0.38 } };

    const messageId = await hub.deliverToInput(DEVICE, 'inputs', 'readings', JSON.stringify(reading), { source: 'sensor a/b' });

    const { input, msg } = await received;
    expect(input).toBe('readings');
    expect(msg.messageId).toBe(messageId);
    expect(msg.properties.getValue('source')).toBe('sensor a/b');
    expect(JSON.parse(msg.getData().toString())).toEqual(reading);
    await hub.completed(messageId);
    expect(hub.isCompleted(messageId)).toBe(true);
  });

  it('records an output sent with sendOutputEvent under its output name and properties', async () => {
    const client = await open('outputs');
    const seen = nextEvent(hub, 'output');
    const alert = new device.Message(JSON.stringify({ pumpId: 'pump-17', score: 0.93 }));
    alert.properties.add('severity', 'high');
    alert.contentType = 'application/json';

    await client.sendOutputEvent('alerts', alert);
    await seen;

    const [recorded, ...rest] = hub.outputs(DEVICE, 'outputs', 'alerts');
    expect(rest).toHaveLength(0);
    expect(recorded?.outputName).toBe('alerts');
    expect(recorded?.properties).toEqual({ severity: 'high' });
    expect(recorded?.systemProperties['$.ct']).toBe('application/json');
    expect(JSON.parse(recorded?.body.toString() ?? 'null')).toEqual({ pumpId: 'pump-17', score: 0.93 });
    expect(hub.outputs(DEVICE, 'outputs', 'other')).toHaveLength(0);
  });

  it('refuses a module that signs its token with the wrong key', async () => {
    const good = hub.addModule(DEVICE, 'bad-key');
    const forged = good.replace(/SharedAccessKey=[^;]+/, `SharedAccessKey=${Buffer.alloc(32, 7).toString('base64')}`);
    const refused = nextEvent<{ clientId: string; reason: string }>(hub, 'refused', (r) => r.clientId === `${DEVICE}/bad-key`);
    const client = await moduleClient(hub, forged);

    await expect(client.open()).rejects.toMatchObject({ name: 'UnauthorizedError' });

    expect((await refused).reason).toBe('signature does not match');
    expect(hub.isConnected(DEVICE, 'bad-key')).toBe(false);
    await client.close();
  });

  it('keeps twins through a broker outage; the module reads a change made while it was down after reconnecting', async () => {
    const client = await open('outage');
    const twin = await client.getTwin();
    await report(twin, { models: { default: { status: 'active' } } });
    const ready = subscribed(hub, 'outage', DESIRED_TOPIC);
    twin.on('properties.desired', () => undefined);
    await ready;
    const port = hub.mqttPort;
    const reconnected = nextEvent(client, 'connect');

    await hub.stopBroker();
    expect(hub.isConnected(DEVICE, 'outage')).toBe(false);
    const version = hub.updateDesired(DEVICE, 'outage', { models: { default: { version: '4' } } });
    await hub.startBroker();
    await reconnected;

    const fresh = await client.getTwin();
    expect(hub.mqttPort).toBe(port);
    expect(fresh.properties.desired['models']).toEqual({ default: { version: '4' } });
    expect(fresh.properties.desired['$version']).toBe(version);
    expect(hub.reported(DEVICE, 'outage')).toEqual({ models: { default: { status: 'active' } } });
    const afterwards = nextEvent<Record<string, unknown>>(twin, 'properties.desired', (p) => p['alerts'] !== undefined);
    const next = hub.updateDesired(DEVICE, 'outage', { alerts: { enabled: true } });
    expect(await afterwards).toEqual({ alerts: { enabled: true }, $version: next });
  });

  it('restarts its broker on its port once something that took the port meanwhile lets it go', async () => {
    const port = hub.mqttPort;
    await hub.stopBroker();
    // an outgoing connection given the port as its local one, say, while the broker was stopped
    const squatter = createServer((socket) => socket.destroy()); // the modules reconnecting meet it: it hangs up
    await new Promise<void>((resolve) => squatter.listen(port, '127.0.0.1', resolve));
    const restarted = hub.startBroker();
    await new Promise((resolve) => setTimeout(resolve, 300));
    await new Promise((resolve) => squatter.close(resolve));
    await restarted;
    expect(hub.mqttPort).toBe(port);
  });

  it('keeps an input for an offline module across a broker restart and delivers it when the module reconnects', async () => {
    const connectionString = hub.addModule(DEVICE, 'offline-input');
    const first = await connectModule(hub, connectionString);
    const ready = subscribed(hub, 'offline-input', INPUTS_TOPIC('offline-input'));
    first.on('inputMessage', () => undefined);
    await ready;
    await first.close();

    const messageId = await hub.deliverToInput(DEVICE, 'offline-input', 'readings', '{"pumpId":"pump-3"}');
    await hub.stopBroker();
    await hub.startBroker();
    const second = await moduleClient(hub, connectionString);
    clients.push(second);
    const received = new Promise<string>((resolve) => {
      second.on('inputMessage', (_input: string, msg: InstanceType<typeof device.Message>) => {
        void second.complete(msg).then(() => resolve(String(msg.messageId)));
      });
    });
    await openWithRetry(second);

    expect(await received).toBe(messageId);
    await hub.completed(messageId);
  });

  it('lets a module open once the broker listens, after the SDK misreports the refused connection as unauthorised', async () => {
    const connectionString = hub.addModule(DEVICE, 'late-broker');
    await hub.stopBroker();
    const early = await moduleClient(hub, connectionString);
    await expect(early.open()).rejects.toMatchObject({ name: 'UnauthorizedError', message: expect.stringMatching(/ECONNREFUSED/) });
    await early.close();

    const client = await moduleClient(hub, connectionString);
    clients.push(client);
    const opening = openWithRetry(client);
    await hub.startBroker();
    await opening;

    expect(hub.isConnected(DEVICE, 'late-broker')).toBe(true);
  });

  it('closes the older connection when a second client opens one with the same identity, as IoT Hub does', async () => {
    const connectionString = hub.addModule(DEVICE, 'twice');
    const first = await connectModule(hub, connectionString);
    clients.push(first);
    // Without its own retry the first client says when the hub closed it, instead of taking the connection back.
    first.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => -1 } as never);
    const closed = nextEvent(first, 'disconnect');

    const second = await connectModule(hub, connectionString);
    clients.push(second);
    await closed;

    expect(hub.isConnected(DEVICE, 'twice')).toBe(true);
    const twin = await second.getTwin();
    expect(twin.properties.desired.$version).toBeTypeOf('number');
  });
});
