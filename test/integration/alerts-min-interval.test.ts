/**
 * PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS (README configuration table: "an open anomaly alarm repeats
 * at most once per pump in this interval, …", live as twin `alerts.minIntervalSeconds`), from the environment variable
 * to what reaches the hub's output `alerts`: the agent on the local hub (the real azure-iot-device
 * MQTT client), a real SQLite buffer and onnxruntime session, with its monotonic clock injected so
 * the interval is crossed without waiting. The publisher's own rule is tested in alerts-episode and
 * edge-alerts with the interval handed to it; this one checks the setting reaches it.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';

const DEVICE = 'gw-interval';
const MODULE = 'pumpwatch';
/** An anomaly for the test model (as in edge.test.ts). */
const SPIKE = { Pressure: 4, Flow: 30, Current: 1.4 };
let hub: LocalHub;
let t: TestAgent;
let mono = 1_000_000;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const alertsOf = (pumpId: string) =>
  hub.outputs(DEVICE, MODULE, 'alerts').map((m) => JSON.parse(m.body.toString())).filter((a) => a.pumpId === pumpId && (a.kind ?? 'anomaly') === 'anomaly');

/** Posts one anomaly of `pumpId` and waits until the agent handed every alert it decided to the hub. */
async function spike(pumpId: string): Promise<void> {
  const r = await postJson(`${t.url}/readings`, [{ pumpId, ts: new Date().toISOString(), values: SPIKE }]);
  expect(r.json).toMatchObject({ accepted: 1 });
  await edgeRuntimeOf(t.agent)!.alerts.idle();
}

beforeAll(async () => {
  hub = await LocalHub.start();
  const cs = hub.addModule(DEVICE, MODULE);
  t = await startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: cs, PUMPWATCH_DEVICE_ID: DEVICE, PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS: '120' },
    { hubCa: hub.ca, monotonic: () => mono },
  );
  await until(async () => expect(((await (await fetch(`${t.url}/status`)).json()) as any).connectivity.hub).toBe('connected'));
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
});

describe('PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS', () => {
  it('sends no second anomaly alert of a pump within the configured interval, and the next one after it with the count held back', async () => {
    await spike('pump-i');
    expect(alertsOf('pump-i')).toHaveLength(1);

    // 100 s later: past the default 60 s, within the configured 120 s
    mono += 100_000;
    await spike('pump-i');
    await spike('pump-j'); // another pump has an interval of its own
    expect(alertsOf('pump-i')).toHaveLength(1);
    expect(alertsOf('pump-j')).toHaveLength(1);
    expect(edgeRuntimeOf(t.agent)!.alerts.status()).toMatchObject({ suppressed: 1, pending: 0 });

    mono += 21_000; // 121 s after the first alert
    await spike('pump-i');
    expect(alertsOf('pump-i').map((a) => a.suppressedSinceLast)).toEqual([0, 1]);
  });

  it('takes a new interval from the twin (alerts.minIntervalSeconds) at run time', async () => {
    mono += 3_600_000;
    await spike('pump-k');
    const v = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 10 } });
    await until(() => expect(reported().alerts).toMatchObject({ ac: 200, av: v }));

    mono += 11_000; // within the start-up 120 s, past the twin's 10 s
    await spike('pump-k');
    expect(alertsOf('pump-k')).toHaveLength(2);
    mono += 5_000;
    await spike('pump-k');
    expect(alertsOf('pump-k')).toHaveLength(2);
  });
});
