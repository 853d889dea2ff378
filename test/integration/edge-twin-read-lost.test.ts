/**
 * A twin read whose answer is lost. The agent reads the whole twin on every (re)connect, and the
 * desired patches that arrive meanwhile wait for that read. The SDK sends the read at QoS 0 and
 * never fails one whose answer did not come (lost with its connection, or by the hub), so the read
 * waited for ever and every later patch (model deployments, settings) with it. Real agent, real
 * azure-iot-device client, real local hub.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-read-lost';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
// Past the agent's 30 s bound on a twin read and its first backoff.
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 90_000, interval: 100 });
const hubState = async () => ((await (await fetch(`${t.url}/status`)).json()) as { connectivity: { hub: string } }).connectivity.hub;

beforeAll(async () => {
  hub = await LocalHub.start();
  t = await startHubAgent(hub, hub.addModule(DEVICE, MODULE), DEVICE);
  await until(() => expect(reported().models?.default).toMatchObject({ status: 'active' }));
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker, or the process hangs
  await hub?.stop();
});

describe('a twin read whose answer was lost', () => {
  it('does not hold back the desired patches after it: a setting patched meanwhile is applied and acknowledged', { timeout: 240_000 }, async () => {
    const lost = hub.loseTwinReads(DEVICE, MODULE, 1);
    await hub.stopBroker();
    await until(async () => expect(await hubState()).toMatch(/^reconnecting/));
    await hub.startBroker();
    await lost; // the agent, connected again, asked for the twin and got no answer
    expect(await hubState()).toMatch(/^connected/);

    const patched = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 301 } });
    await until(() => expect(reported().alerts).toEqual({ value: { minIntervalSeconds: 301 }, ac: 200, av: patched, ad: 'applied' }));
    expect(t.agent.config.alertsMinIntervalSeconds).toBe(301);

    // And the patches after it go straight through.
    const next = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 302 } });
    await until(() => expect(reported().alerts).toEqual({ value: { minIntervalSeconds: 302 }, ac: 200, av: next, ad: 'applied' }));
  });
});
