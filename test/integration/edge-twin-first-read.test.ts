/**
 * A desired change made while the agent's first twin read is in flight, with the real
 * azure-iot-device MQTT client against the local hub holding its answer to that read. The SDK
 * subscribes to desired patches only once a listener is added, after the read: a patch published
 * before that subscription reaches neither the read (answered as the twin was) nor the patch
 * handler. The agent must still apply and acknowledge it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-first-read';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent | undefined;

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 20_000, interval: 50 });

beforeAll(async () => {
  hub = await LocalHub.start();
});

afterAll(async () => {
  await t?.stop();
  await hub?.stop();
});

describe('a desired patch during the first twin read', () => {
  it('is applied and acknowledged, though it came before the agent subscribed to patches', async () => {
    const connectionString = hub.addModule(DEVICE, MODULE);
    hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 45 } });
    const hold = hub.holdTwinReads(DEVICE, MODULE, { answerAt: 'request' }); // the answer: the twin before the patch
    t = await startHubAgent(hub, connectionString, DEVICE);
    let patched: number;
    try {
      await hold.requested();
      patched = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 300 } });
      await new Promise((r) => setTimeout(r, 500)); // a subscribed client would have the patch by now
    } finally {
      hold.release();
    }

    await until(() => expect(reported().alerts).toEqual({ value: { minIntervalSeconds: 300 }, ac: 200, av: patched, ad: 'applied' }));
    expect(t.agent.config.alertsMinIntervalSeconds).toBe(300);
    expect(reported().sync).toMatchObject({ value: { intervalSeconds: 45 }, ac: 200 });
    expect(hub.subscriptions(DEVICE, MODULE)).toContain('$iothub/twin/PATCH/properties/desired/#');
  });
});
