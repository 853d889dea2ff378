/**
 * A frozen sensor, the agent as an IoT Edge module on the local hub (the real azure-iot-device
 * MQTT client), its default model fitted by the trainer (`pumpwatch.stuck_after`): the pump's
 * frozen current shows in `GET /pumps` (`sensorFaults`), `/status` and `/metrics`, and ONE alert
 * of kind `sensor-frozen` goes out on output `alerts` (message property `type: sensor-fault`),
 * however long it stays frozen; it clears when the value changes. A sensor that thaws for one
 * reading a minute and freezes again makes ONE alert in its quiet time (the default 3 600 s), the
 * findings held back counted on /status and /metrics.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import type { Reading } from '../../buffer/types.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

const DEVICE = 'gw-frozen';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const getJson = async (path: string): Promise<any> => (await fetch(`${t.url}${path}`)).json();

beforeAll(async () => {
  hub = await LocalHub.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  t = await startTestAgent({ PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: connectionString, PUMPWATCH_DEVICE_ID: DEVICE }, { hubCa: hub.ca, model: stopModels({ version: 'frozen-hub' }).withRule });
  await until(async () => expect((await getJson('/status')).connectivity.hub).toMatch(/^connected/));
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
});

/** 400 readings at 1 Hz ending now: running, Current frozen at reading 99's value from 100 to 349. */
const START = Date.now() - 400_000;
const readings: Reading[] = readingsWithStops(400, () => false, { pumpId: 'pump-f', start: START, seed: 5 });
for (let i = 100; i < 350; i++) readings[i]!.values = { ...readings[i]!.values, Current: readings[99]!.values.Current! };
const post = (rs: readonly Reading[]) => postJson(`${t.url}/readings`, rs.map((r) => ({ ...r, ts: new Date(r.ts).toISOString() })));

describe('a frozen sensor on the local hub', () => {
  it('shows on /pumps, /status and /metrics, and sends one sensor-frozen alert', async () => {
    for (let i = 0; i < 300; i += 50) expect((await post(readings.slice(i, i + 50))).status).toBe(202);
    const pump = (await getJson('/pumps')).pumps.find((p: { pumpId: string }) => p.pumpId === 'pump-f');
    expect(pump.sensorFaults).toEqual([{ feature: 'Current', kind: 'frozen', since: new Date(START + 99_000).toISOString(), readings: 201, value: readings[99]!.values.Current, after: 60 }]);
    expect((await getJson('/status')).sensorFaults).toEqual({ 'pump-f': pump.sensorFaults });
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('# TYPE pumpwatch_sensors_frozen gauge');
    expect(metrics).toMatch(/^pumpwatch_sensors_frozen\{pump="pump-f"\} 1$/m);

    const frozenAlerts = () => hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.type === 'sensor-fault');
    await until(() => expect(frozenAlerts()).toHaveLength(1));
    const [message] = frozenAlerts();
    // any anomaly alert keeps its type and gains its kind (the type of an anomaly's clear is its kind too; agent-health, sent at the connection, is of no pump)
    for (const m of hub.outputs(DEVICE, MODULE, 'alerts').filter((x) => x.properties.type !== 'sensor-fault' && x.properties.type !== 'agent-health')) expect(JSON.parse(m.body.toString()).kind).toBe(m.properties.type);
    expect(message!.properties).toMatchObject({ type: 'sensor-fault', pumpId: 'pump-f', schemaVersion: '1' });
    const alert = JSON.parse(message!.body.toString());
    expect(alert).toMatchObject({
      schemaVersion: 1,
      kind: 'sensor-frozen',
      deviceId: DEVICE,
      pumpId: 'pump-f',
      ts: new Date(START + (99 + 59) * 1000).toISOString(),
      modelVersion: 'frozen-hub',
      topFeatures: [],
      sensor: { feature: 'Current', value: readings[99]!.values.Current, since: new Date(START + 99_000).toISOString(), readings: 60, after: 60 },
    });
    expect(alert.score).toEqual(expect.any(Number)); // the reading is scored as ever

    // still frozen for 50 more readings, then the value changes: no second alert, and the fault clears
    expect((await post(readings.slice(300, 400))).status).toBe(202);
    const after = (await getJson('/pumps')).pumps.find((p: { pumpId: string }) => p.pumpId === 'pump-f');
    expect(after.sensorFaults).toEqual([]);
    expect((await getJson('/status')).sensorFaults).toEqual({});
    await edgeRuntimeOf(t.agent)?.alerts.idle();
    expect(frozenAlerts()).toHaveLength(1);
    expect(hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => JSON.parse(m.body.toString()).kind === 'sensor-frozen')).toHaveLength(1);
  });

  it('sends one sensor-frozen alert for a sensor that thaws for one reading a minute and freezes again, and counts the findings held back', async () => {
    // 20 cycles at 1 Hz ending now: Current frozen for 60 readings (a finding), then one other value
    const cycles = 20;
    const flicker = readingsWithStops(cycles * 61, () => false, { pumpId: 'pump-g', start: Date.now() - cycles * 61_000, seed: 6 });
    const held = flicker[0]!.values.Current!;
    flicker.forEach((r, i) => (r.values = { ...r.values, Current: i % 61 === 60 ? held + 0.05 : held }));
    for (let c = 0; c < cycles; c++) expect((await post(flicker.slice(c * 61, (c + 1) * 61))).status).toBe(202);
    await edgeRuntimeOf(t.agent)?.alerts.idle();

    const flickerAlerts = hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.type === 'sensor-fault' && m.properties.pumpId === 'pump-g');
    expect(flickerAlerts).toHaveLength(1); // one per cycle (20) before the quiet time
    expect(JSON.parse(flickerAlerts[0]!.body.toString())).toMatchObject({ kind: 'sensor-frozen', pumpId: 'pump-g', suppressedSinceLast: 0, sensor: { feature: 'Current', value: held, readings: 60, after: 60 } });
    const alerts = (await getJson('/status')).alerts;
    expect(alerts).toMatchObject({ sensorSuppressed: cycles - 1, sensorsSuppressed: { 'pump-g': { Current: { suppressedSinceLast: cycles - 1 } } } });
    expect(alerts.sensorsSuppressed['pump-f']).toBeUndefined();
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`^pumpwatch_alerts_sensor_suppressed_total ${cycles - 1}$`, 'm'));
  });
});
