/**
 * A desired patch that lands while the agent's full twin read is in flight (after a reconnect),
 * with the real azure-iot-device MQTT client against the local hub holding its answer to the read.
 * The SDK empties its desired cache before it asks; the agent must keep the document in force,
 * then apply the patch on top of the read's result, never going back to start-up values meanwhile.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub, type TwinReadHold } from '../support/local-hub.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel } from '../support/models.js';

const DEVICE = 'gw-read';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let server: ModelServer;
let t: TestAgent;
let startupAlertsInterval: number;

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const hubState = async () => ((await (await fetch(`${t.url}/status`)).json()) as { connectivity: { hub: string } }).connectivity.hub;
const desiredVersion = () => hub.getTwin(DEVICE, MODULE).properties.desired['$version'] as number;

/**
 * Everything that goes back to start-up values while `watch` runs: the settings and the default
 * model in force (sampled), and what the agent reports (every reported patch the hub takes).
 */
function watchForResets(): { stop: () => string[] } {
  const seen = new Set<string>();
  const sample = () => {
    if (t.agent.config.syncIntervalSeconds !== 45) seen.add(`sync.intervalSeconds in force: ${t.agent.config.syncIntervalSeconds}`);
    const model = t.agent.engine.model('default')?.version;
    if (model !== 'v2') seen.add(`default model in force: ${model}`);
  };
  const onReported = ({ patch }: { patch: Record<string, any> }) => {
    for (const [key, value] of Object.entries(patch)) {
      if (value && typeof value === 'object' && value.ad === 'reset to start-up values') seen.add(`reported ${key}: reset to start-up values`);
    }
    const def = patch.models?.default;
    if (def !== undefined && def?.version !== 'v2') seen.add(`reported models.default: ${JSON.stringify(def)}`);
  };
  const timer = setInterval(sample, 10);
  hub.on('reported', onReported);
  return {
    stop: () => {
      clearInterval(timer);
      hub.off('reported', onReported);
      sample();
      return [...seen];
    },
  };
}

/** Drops the connection; resolves once the agent, connected again, has asked for the twin (held). */
async function reconnectWithHeldRead(answerAt: 'request' | 'release'): Promise<TwinReadHold> {
  const hold = hub.holdTwinReads(DEVICE, MODULE, { answerAt });
  await hub.stopBroker();
  await until(async () => expect(await hubState()).toMatch(/^reconnecting/));
  await hub.startBroker();
  await hold.requested();
  return hold;
}

beforeAll(async () => {
  hub = await LocalHub.start();
  server = await ModelServer.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  const v2 = server.add('v2.onnx', makeModel({ version: 'v2', seed: 2 }), 'v2');
  hub.updateDesired(DEVICE, MODULE, { models: { default: v2 }, sync: { intervalSeconds: 45 }, alerts: { minIntervalSeconds: 3600 } });
  t = await startHubAgent(hub, connectionString, DEVICE, { PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1' });
  startupAlertsInterval = (await import('../../agent/config.js')).loadConfig({}).alertsMinIntervalSeconds;
  const v = desiredVersion();
  await until(() => expect(reported().models?.default).toMatchObject({ version: 'v2', status: 'active', ac: 200, av: v }));
  await until(() => expect(reported().sync).toEqual({ value: { intervalSeconds: 45 }, ac: 200, av: v, ad: 'applied' }));
});

afterAll(async () => {
  await t?.stop();
  await hub?.stop();
  await server?.stop();
});

describe('a desired patch during the twin read after a reconnect', () => {
  it('keeps the models and settings in force, then applies the patch on top of the older read', async () => {
    const setBy = desiredVersion();
    const hold = await reconnectWithHeldRead('request'); // the answer is the twin without the patch
    const watch = watchForResets();
    let seen: string[];
    let patched: number;
    try {
      patched = hub.updateDesired(DEVICE, MODULE, { buffer: { retentionHours: 12 } });
      await new Promise((r) => setTimeout(r, 1500)); // the patch reaches the agent while the read is held
    } finally {
      seen = watch.stop();
      hold.release();
    }
    expect(seen).toEqual([]);

    await until(() => expect(reported().buffer).toEqual({ value: { retentionHours: 12 }, ac: 200, av: patched, ad: 'applied' }));
    expect(t.agent.config.retentionHours).toBe(12);
    expect(reported().sync).toEqual({ value: { intervalSeconds: 45 }, ac: 200, av: setBy, ad: 'applied' });
    expect(reported().models.default).toMatchObject({ version: 'v2', status: 'active', ac: 200, av: setBy });
    expect(t.agent.config.syncIntervalSeconds).toBe(45);
    expect(t.agent.engine.model('default')?.version).toBe('v2');
  });

  it('applies a deletion sent during the read once, whether or not the read already holds it', async () => {
    const setBy = reported().sync.av as number;
    const hold = await reconnectWithHeldRead('release'); // the answer already holds the patch
    const watch = watchForResets();
    let seen: string[];
    let deleted: number;
    try {
      deleted = hub.updateDesired(DEVICE, MODULE, { alerts: null });
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      seen = watch.stop();
      hold.release();
    }
    expect(seen).toEqual([]);

    await until(() => expect(reported().alerts).toMatchObject({ ac: 200, av: deleted, ad: 'reset to start-up values' }));
    expect(t.agent.config.alertsMinIntervalSeconds).toBe(startupAlertsInterval);
    expect(reported().sync).toEqual({ value: { intervalSeconds: 45 }, ac: 200, av: setBy, ad: 'applied' });
    expect(reported().buffer).toMatchObject({ value: { retentionHours: 12 }, ac: 200 });
    expect(reported().models.default).toMatchObject({ version: 'v2', status: 'active', ac: 200 });
    expect(await hubState()).toBe('connected');
  });
});
