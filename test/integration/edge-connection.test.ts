/**
 * The module client's life cycle against the local hub with the real SDK: the first open retried
 * until the hub listens, and a new client built when the SDK gives up after an outage (here at
 * once, through the SDK's own retry-policy hook, instead of after its four minutes).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createModuleClient } from '../../agent/edge/client.js';
import { EdgeConnection, type ModuleClient } from '../../agent/edge/connection.js';
import { AckGate, commitAckTransport } from '../../agent/edge/transport.js';
import { createLogger } from '../../agent/logger.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-conn';
let hub: LocalHub;
const connections: EdgeConnection[] = [];
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });

function connection(
  moduleId: string,
  opts: { giveUpAtOnce?: boolean; connectionString?: string } = {},
): { conn: EdgeConnection; twins: Array<Record<string, unknown>> } {
  const source = { kind: 'connection-string' as const, connectionString: opts.connectionString ?? hub.addModule(DEVICE, moduleId), ca: hub.ca };
  const transport = commitAckTransport({ gate: new AckGate(), onTransportDisconnect: (err) => conn.transportLost(err) });
  const twins: Array<Record<string, unknown>> = [];
  const conn: EdgeConnection = new EdgeConnection({
    create: async () => {
      const client = await createModuleClient(source, transport);
      if (opts.giveUpAtOnce) client.setRetryPolicy({ shouldRetry: () => false, nextRetryTimeout: () => 0 } as never);
      return client;
    },
    attach: () => undefined,
    onConnected: async (client: ModuleClient) => {
      twins.push({ ...(await client.getTwin()).properties.desired });
    },
    logger: createLogger('silent'),
    backoff: { baseMs: 50, capMs: 200 },
  });
  connections.push(conn);
  return { conn, twins };
}

beforeAll(async () => {
  hub = await LocalHub.start();
});

afterAll(async () => {
  for (const c of connections) await c.stop();
  await hub?.stop();
});

describe('EdgeConnection with the real module client', () => {
  it('retries the first open until the hub listens, then reads the twin', async () => {
    const { conn, twins } = connection('late');
    await hub.stopBroker();
    conn.start();
    // Not the SDK's "Failure on first connection (Not authorized): connect ECONNREFUSED", which sent technicians hunting for keys.
    await until(() => expect(conn.status().lastError).toMatch(/^the IoT hub \(edgeHub\) could not be reached: connection refused \(connect ECONNREFUSED [^)]+\)$/));
    expect(conn.status().lastError).not.toMatch(/authoriz/i);
    expect(conn.status().state).not.toBe('connected');
    const version = hub.updateDesired(DEVICE, 'late', { alerts: { minIntervalSeconds: 5 } });

    await hub.startBroker();

    await until(() => expect(conn.status()).toMatchObject({ state: 'connected', connects: 1, lastError: null }));
    await until(() => expect(twins).toEqual([{ alerts: { minIntervalSeconds: 5 }, $version: version }]));
  });

  it('keeps a wrong key worded as an authorization failure, not as an unreachable hub', async () => {
    const good = hub.addModule(DEVICE, 'wrong-key');
    const key = /SharedAccessKey=([^;]+)/.exec(good)![1]!;
    const wrongKey = Buffer.from(Buffer.from(key, 'base64').map((b) => b ^ 0xff)).toString('base64');
    const { conn } = connection('wrong-key', { connectionString: good.replace(key, wrongKey) });
    conn.start();
    await until(() => expect(conn.status().lastError).toMatch(/Not authorized/));
    expect(conn.status().lastError).not.toMatch(/could not be reached|ECONNREFUSED/);
    expect(conn.status().lastError).not.toContain(wrongKey);
    expect(conn.status().state).not.toBe('connected');
  });

  it('recreates the client when the SDK gives up, and reads the whole twin again on the new one', async () => {
    const { conn, twins } = connection('gives-up', { giveUpAtOnce: true });
    conn.start();
    await until(() => expect(conn.status().state).toBe('connected'));
    const first = conn.current();

    await hub.stopBroker();
    await until(() => expect(conn.status().recreated).toBe(1));
    const version = hub.updateDesired(DEVICE, 'gives-up', { sync: { intervalSeconds: 10 } });
    await hub.startBroker();

    await until(() => expect(conn.status()).toMatchObject({ state: 'connected', connects: 2 }));
    expect(conn.current()).not.toBe(first);
    await until(() => expect(twins.at(-1)).toEqual({ sync: { intervalSeconds: 10 }, $version: version }));
  });
});
