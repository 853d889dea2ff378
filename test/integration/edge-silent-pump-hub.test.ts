/**
 * A pump that stops sending, the agent as an IoT Edge module on the local hub (the real
 * azure-iot-device MQTT client): `alerts.silentAfterSeconds` from the twin, live (a value below 60
 * refused with the reason); ONE message of kind `pump-silent` on output `alerts` (message property
 * `type: pump-silent`) however long it stays silent, shown on /status and /metrics, none for a pump
 * whose readings keep coming refused; ONE `pump-resumed` (`type: pump-resumed`) when its readings
 * come back. The agent's monotonic clock is moved by the test (AgentOptions.monotonic), as a
 * minute passing: the gateway clock and the readings' times go on as they are.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';

const DEVICE = 'gw-silent';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
/** How far the agent's monotonic clock is ahead of this process's. */
let skew = 0;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const getJson = async (path: string): Promise<any> => (await fetch(`${t.url}${path}`)).json();
const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const alertsOf = (type: string) => hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.type === type);
const r = rng(3);

/** `n` readings of `pumpId` at 1 Hz from `start` (its own time). */
const readings = (pumpId: string, start: number, n: number) => Array.from({ length: n }, (_, i) => ({ pumpId, ts: new Date(start + i * 1000).toISOString(), values: normalValues(r, i) }));

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  t = await startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: DEVICE },
    { hubCa: hub.ca, monotonic: () => performance.now() + skew },
  );
  await until(async () => expect((await getJson('/status')).connectivity.hub).toMatch(/^connected/));
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
});

describe('a silent pump on the local hub', () => {
  it('takes alerts.silentAfterSeconds from the twin live, and refuses a value below 60 with the reason', async () => {
    expect(t.agent.config.alertsSilentAfterSeconds).toBe(900);
    hub.updateDesired(DEVICE, MODULE, { alerts: { silentAfterSeconds: 30 } });
    await until(() => expect(reported().alerts).toMatchObject({ ac: 400, ad: 'alerts.silentAfterSeconds=30: either 0 (off) or at least 60 s' }));
    expect(t.agent.config.alertsSilentAfterSeconds).toBe(900);
    hub.updateDesired(DEVICE, MODULE, { alerts: { silentAfterSeconds: 60 } });
    await until(() => expect(reported().alerts).toMatchObject({ value: { silentAfterSeconds: 60 }, ac: 200 }));
    expect(t.agent.config.alertsSilentAfterSeconds).toBe(60);
  });

  it('sends one pump-silent alert for a pump that stops sending, none for one whose readings come refused, and one pump-resumed when it sends again', async () => {
    const start = Date.now() - 20_000;
    expect((await postJson(`${t.url}/readings`, [...readings('pump-s', start, 20), ...readings('pump-r', start, 20)])).status).toBe(202);
    skew += 30_000;
    // pump-r goes on sending, every reading refused (a firmware update sends text)
    const refused = await postJson(`${t.url}/readings`, { pumpId: 'pump-r', ts: new Date().toISOString(), values: { Pressure: 'high' } });
    expect(refused.status).toBe(400);
    skew += 31_000; // pump-s: 61 s without a reading

    await until(() => expect(alertsOf('pump-silent')).toHaveLength(1));
    const [message] = alertsOf('pump-silent');
    expect(message!.properties).toMatchObject({ type: 'pump-silent', pumpId: 'pump-s' });
    const alert = JSON.parse(message!.body.toString());
    const last = new Date(start + 19_000).toISOString();
    expect(alert).toMatchObject({
      kind: 'pump-silent',
      deviceId: DEVICE,
      pumpId: 'pump-s',
      ts: last,
      score: null,
      topFeatures: [],
      silence: { since: expect.any(String), lastReading: { ts: last, receivedAt: alert.silence.since }, beganBeforeRestart: false, intervalSeconds: 1 },
    });
    expect(alert.silence.silentSeconds).toBeGreaterThanOrEqual(61);
    expect(alert.silence).not.toHaveProperty('missedReadings');

    // silent on: the next checks send nothing more
    const alerts = edgeRuntimeOf(t.agent)!.alerts;
    alerts.checkSilence();
    await alerts.idle();
    expect(alertsOf('pump-silent')).toHaveLength(1);
    const status = (await getJson('/status')).alerts;
    expect(status).toMatchObject({ pumpsSilent: 1, silentAlerts: 1, silentPumps: { 'pump-s': { since: alert.silence.since, alerted: true, beganBeforeRestart: false } } });
    expect(Object.keys(status.silentPumps)).toEqual(['pump-s']);
    expect(await (await fetch(`${t.url}/metrics`)).text()).toMatch(/^pumpwatch_pumps_silent 1$/m);

    // back: its own time 62 s after its last reading, 61 readings missed at 1 Hz
    expect((await postJson(`${t.url}/readings`, readings('pump-s', start + 19_000 + 62_000, 5))).status).toBe(202);
    await until(() => expect(alertsOf('pump-resumed')).toHaveLength(1));
    const [resumed] = alertsOf('pump-resumed');
    expect(resumed!.properties).toMatchObject({ type: 'pump-resumed', pumpId: 'pump-s' });
    expect(JSON.parse(resumed!.body.toString())).toMatchObject({
      kind: 'pump-resumed',
      pumpId: 'pump-s',
      ts: new Date(start + 81_000).toISOString(),
      silence: { since: alert.silence.since, lastReading: { ts: last }, beganBeforeRestart: false, intervalSeconds: 1, missedReadings: 61 },
    });
    expect((await postJson(`${t.url}/readings`, readings('pump-s', start + 86_000, 5))).status).toBe(202);
    alerts.checkSilence();
    await alerts.idle();
    expect(alertsOf('pump-resumed')).toHaveLength(1);
    expect(alertsOf('pump-silent')).toHaveLength(1);
    expect(hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.pumpId === 'pump-r')).toEqual([]);
    expect((await getJson('/status')).alerts).toMatchObject({ pumpsSilent: 0, silentPumps: {}, resumedAlerts: 1 });
  });
});
