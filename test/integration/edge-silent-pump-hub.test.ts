/**
 * A pump that stops sending, the agent as an IoT Edge module on the local hub (the real
 * azure-iot-device MQTT client): `alerts.silentAfterSeconds` from the twin, live (a value below 60
 * refused with the reason); ONE message of kind `pump-silent` on output `alerts` (message property
 * `type: pump-silent`) however long it stays silent, shown on /status and /metrics, none for a pump
 * whose readings keep coming refused; ONE `pump-resumed` (`type: pump-resumed`) when its readings
 * come back. Readings the buffer could not store (a full disk: SQLite's `max_page_count` caps the
 * file, as in agent-ingest.test.ts, so SQLite answers SQLITE_FULL as on a full disk) count as heard;
 * a refused reading in an edgeHub input message among good ones resumes the pump at its first good
 * one, as over HTTP. The agent's monotonic clock is moved by the test (AgentOptions.monotonic), as a
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
const getJson = async (path: string, agent: TestAgent = t): Promise<any> => (await fetch(`${agent.url}${path}`)).json();
const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const alertsOf = (type: string) => hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.type === type);
/** The alerts of `type` about `pumpId` on the hub, parsed. */
const alertsAbout = (type: string, pumpId: string) => alertsOf(type).filter((m) => m.properties.pumpId === pumpId).map((m) => JSON.parse(m.body.toString()));
const iso = (ms: number): string => new Date(ms).toISOString();
/** The silence check the agent's timer runs, run now, and the alerts it decided handed to the hub. */
async function checkSilence(): Promise<void> {
  const alerts = edgeRuntimeOf(t.agent)!.alerts;
  alerts.checkSilence();
  await alerts.idle();
}
/** A pump silent for the setting (60 s) after `n` readings at 1 Hz from `start`, alerted `pump-silent`; its last reading's time. */
async function silentPump(pumpId: string, start: number, n = 20): Promise<number> {
  expect((await postJson(`${t.url}/readings`, readings(pumpId, start, n))).status).toBe(202);
  skew += 61_000;
  await checkSilence();
  await until(() => expect(alertsAbout('pump-silent', pumpId)).toHaveLength(1));
  return start + (n - 1) * 1000;
}
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

  it('takes readings the buffer could not store (a full disk, 507) as heard: no pump-silent for a pump that keeps sending, and one pump-resumed for a pump alerted before, not counting the readings that arrived as missed', async () => {
    const start = Date.now() - 2 * 3_600_000;
    const lastBack = await silentPump('pump-back', start);
    let fullTs = start;
    expect((await postJson(`${t.url}/readings`, readings('pump-full', fullTs, 20))).status).toBe(202);
    fullTs += 20_000;
    // The disk fills: no page more for the buffer.
    const { db } = t.agent.buffer;
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
    let backTs = lastBack + 120_000;
    try {
      // pump-full sends on, 300 readings every 5 s for 70 s; pump-back is back, 2 min of its own time after its last reading
      const answers = new Set<number>();
      for (let k = 0; k < 14; k++) {
        answers.add((await postJson(`${t.url}/readings`, [...readings('pump-full', fullTs, 300), ...readings('pump-back', backTs, 5)])).status);
        fullTs += 300_000;
        backTs += 5_000;
        skew += 5_000;
        await checkSilence();
      }
      expect([...answers]).toEqual([507]);
      expect(alertsAbout('pump-silent', 'pump-full')).toEqual([]);
      expect(alertsAbout('pump-silent', 'pump-back')).toHaveLength(1);
      // back while the disk was full: resumed at its last reading stored, 119 readings missed at 1 Hz (not those that came)
      await until(() => expect(alertsAbout('pump-resumed', 'pump-back')).toHaveLength(1));
      expect(alertsAbout('pump-resumed', 'pump-back')[0]).toMatchObject({ ts: iso(lastBack), silence: { lastReading: { ts: iso(lastBack) }, intervalSeconds: 1, missedReadings: 119 } });
      const silent = (await getJson('/status')).alerts.silentPumps;
      expect(silent).not.toHaveProperty('pump-full');
      expect(silent).not.toHaveProperty('pump-back');
    } finally {
      db.pragma('max_page_count = 1073741823'); // room again
    }
    // The senders send again what was refused; nothing more is alerted of either pump.
    expect((await postJson(`${t.url}/readings`, [...readings('pump-full', fullTs - 300_000, 300), ...readings('pump-back', backTs - 5_000, 5)])).status).toBe(202);
    await checkSilence();
    expect(alertsAbout('pump-silent', 'pump-full')).toEqual([]);
    expect(alertsAbout('pump-resumed', 'pump-full')).toEqual([]);
    expect(alertsAbout('pump-silent', 'pump-back')).toHaveLength(1);
    expect(alertsAbout('pump-resumed', 'pump-back')).toHaveLength(1);
  });

  it('resumes a pump alerted silent whose edgeHub input message holds a refused reading among good ones at its first good reading, with the readings it missed, as over HTTP', async () => {
    const start = Date.now() - 600_000;
    const last = await silentPump('pump-in', start);
    // back 61 s of its own time after its last reading: a text value first (a firmware glitch), then five good readings
    const back = [{ pumpId: 'pump-in', ts: iso(last + 60_000), values: { Pressure: 'n/a' } }, ...readings('pump-in', last + 61_000, 5)];
    const id = await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify(back));
    await hub.completed(id);
    await until(() => expect(alertsAbout('pump-resumed', 'pump-in')).toHaveLength(1));
    expect(alertsAbout('pump-resumed', 'pump-in')[0]).toMatchObject({ ts: iso(last + 61_000), silence: { lastReading: { ts: iso(last) }, intervalSeconds: 1, missedReadings: 60 } });
    expect((await getJson('/status')).readings.refusedByPump['pump-in']).toMatchObject({ total: 1 });
  });

  it('with PUMPWATCH_MAX_PUMPS at 1 200, sends a pump-silent for each of 1 200 pumps silent at once, none dropped, and one pump-resumed after it for each that comes back', async () => {
    const device = 'gw-silent-many';
    let many: TestAgent | null = null;
    let manySkew = 0;
    try {
      many = await startTestAgent(
        { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: hub.addModule(device, MODULE), PUMPWATCH_DEVICE_ID: device, PUMPWATCH_MAX_PUMPS: '1200', PUMPWATCH_ALERTS_SILENT_AFTER_SECONDS: '60' },
        { hubCa: hub.ca, monotonic: () => performance.now() + manySkew },
      );
      const { url } = many;
      await until(async () => expect((await getJson('/status', many!)).connectivity.hub).toMatch(/^connected/));
      const pumps = Array.from({ length: 1200 }, (_, i) => `many-${String(i).padStart(4, '0')}`);
      const start = Date.now() - 60_000;
      for (let k = 0; k < pumps.length; k += 200) expect((await postJson(`${url}/readings`, pumps.slice(k, k + 200).flatMap((p) => readings(p, start, 3)))).status).toBe(202);
      manySkew += 61_000; // the sensor module stops: every pump at once
      const alerts = edgeRuntimeOf(many.agent)!.alerts;
      alerts.checkSilence();
      await alerts.idle();
      const on = (type: string) => hub.outputs(device, MODULE, 'alerts').filter((m) => m.properties.type === type);
      await until(() => expect(on('pump-silent')).toHaveLength(1200));
      expect(new Set(on('pump-silent').map((m) => m.properties.pumpId))).toEqual(new Set(pumps));
      expect(alerts.status()).toMatchObject({ dropped: 0, pending: 0, silentAlerts: 1200, pumpsSilent: 1200 });
      // the first 200 come back
      expect((await postJson(`${url}/readings`, pumps.slice(0, 200).flatMap((p) => readings(p, start + 120_000, 2)))).status).toBe(202);
      await until(() => expect(on('pump-resumed')).toHaveLength(200));
      const order = hub.outputs(device, MODULE, 'alerts').map((m) => `${String(m.properties.type)} ${String(m.properties.pumpId)}`);
      for (const pump of pumps.slice(0, 200)) expect(order.indexOf(`pump-silent ${pump}`)).toBeLessThan(order.indexOf(`pump-resumed ${pump}`));
      expect(alerts.status()).toMatchObject({ dropped: 0, pumpsSilent: 1000 });
    } finally {
      await many?.stop();
    }
  }, 120_000);
});
