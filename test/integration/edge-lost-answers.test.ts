/**
 * Twin requests whose answer is lost. The SDK sends them at QoS 0 and never fails one whose answer
 * did not come (lost with its connection, or by the hub). Real agent, real azure-iot-device client,
 * real local hub; each test its own device and agent on one hub.
 * - A reported update: the agent's update waited for ever, every later update (acknowledgements,
 *   model statuses, the state report) queued behind it, and the cloud's view of the gateway froze
 *   until a restart. Seen with two agents under one identity, whose connections drop every few
 *   seconds; any reconnect at the wrong moment does it.
 * - A twin read: the agent reads the whole twin on every (re)connect, and the desired patches that
 *   arrive meanwhile wait for that read, so the read waited for ever and every later patch (model
 *   deployments, settings) with it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const MODULE = 'pumpwatch';
let hub: LocalHub;
const agents: TestAgent[] = [];

const reported = (device: string) => hub.reported(device, MODULE) as Record<string, any>;
const waitUpTo = (timeout: number) => <T>(fn: () => T) => vi.waitFor(fn, { timeout, interval: 50 });
const hubState = async (t: TestAgent) => ((await (await fetch(`${t.url}/status`)).json()) as { connectivity: { hub: string } }).connectivity.hub;

/** An agent of its own device, connected, its default model reported active. */
async function hubAgent(device: string, until: ReturnType<typeof waitUpTo>): Promise<TestAgent> {
  const t = await startHubAgent(hub, hub.addModule(device, MODULE), device);
  agents.push(t);
  await until(() => expect(reported(device).models?.default).toMatchObject({ status: 'active' }));
  return t;
}

beforeAll(async () => {
  hub = await LocalHub.start();
});

afterEach(async () => {
  for (const t of agents.splice(0)) await t.stop(); // the module client closes before the broker, or the process hangs
});

afterAll(async () => {
  await hub?.stop();
});

describe('a reported update whose answer was lost with the connection', () => {
  it('does not hold back the updates after the reconnect: the acknowledgement of a patch reaches the hub', async () => {
    const DEVICE = 'gw-lost';
    const until = waitUpTo(60_000);
    const t = await hubAgent(DEVICE, until);
    const lost = hub.loseReportedUpdates(DEVICE, MODULE, 1);
    const first = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 31 } });
    await lost; // the acknowledgement of `first` was sent, and the hub did not answer it

    await hub.stopBroker();
    await hub.startBroker();
    await until(async () => expect(await hubState(t)).toMatch(/^connected/));

    await until(() => expect(reported(DEVICE).alerts).toMatchObject({ ac: 200, av: first, value: { minIntervalSeconds: 31 } }));
    const second = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 32 } });
    await until(() => expect(reported(DEVICE).alerts).toMatchObject({ ac: 200, av: second, value: { minIntervalSeconds: 32 } }));
  });
});

describe('a twin read whose answer was lost', () => {
  it('does not hold back the desired patches after it: a setting patched meanwhile is applied and acknowledged', { timeout: 240_000 }, async () => {
    const DEVICE = 'gw-read-lost';
    // Past the agent's 30 s bound on a twin read and its first backoff.
    const until = waitUpTo(90_000);
    const t = await hubAgent(DEVICE, until);
    const lost = hub.loseTwinReads(DEVICE, MODULE, 1);
    await hub.stopBroker();
    await until(async () => expect(await hubState(t)).toMatch(/^reconnecting/));
    await hub.startBroker();
    await lost; // the agent, connected again, asked for the twin and got no answer
    expect(await hubState(t)).toMatch(/^connected/);

    const patched = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 301 } });
    await until(() => expect(reported(DEVICE).alerts).toEqual({ value: { minIntervalSeconds: 301 }, ac: 200, av: patched, ad: 'applied' }));
    expect(t.agent.config.alertsMinIntervalSeconds).toBe(301);
    // And the patches after it go straight through.
    const next = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 302 } });
    await until(() => expect(reported(DEVICE).alerts).toEqual({ value: { minIntervalSeconds: 302 }, ac: 200, av: next, ad: 'applied' }));
  });
});
