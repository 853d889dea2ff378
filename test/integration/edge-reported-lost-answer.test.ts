/**
 * A reported update whose answer is lost with the connection. The SDK sends twin requests at QoS 0
 * and never fails one whose answer did not come, so the agent's update waited for ever; every later
 * update (acknowledgements, model statuses, the state report) queued behind it, and the cloud's view
 * of the gateway froze until a restart. Seen with two agents under one identity, whose connections
 * drop every few seconds; any reconnect at the wrong moment does it. Real agent, real local hub.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-lost';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 60_000, interval: 50 });
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

describe('a reported update whose answer was lost with the connection', () => {
  it('does not hold back the updates after the reconnect: the acknowledgement of a patch reaches the hub', async () => {
    const lost = hub.loseReportedUpdates(DEVICE, MODULE, 1);
    const first = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 31 } });
    await lost; // the acknowledgement of `first` was sent, and the hub did not answer it

    await hub.stopBroker();
    await hub.startBroker();
    await until(async () => expect(await hubState()).toMatch(/^connected/));

    await until(() => expect(reported().alerts).toMatchObject({ ac: 200, av: first, value: { minIntervalSeconds: 31 } }));
    const second = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 32 } });
    await until(() => expect(reported().alerts).toMatchObject({ ac: 200, av: second, value: { minIntervalSeconds: 32 } }));
  });
});
