/**
 * A buffer that cannot open at start-up (a folder where buffer.sqlite should be, as in
 * agent-outages.test.ts) and opens later (agent/main.ts reopenBuffer): the last run's unsent alerts
 * and the quiet times of its sensor alerts come back then, not lost to the first save after the
 * buffer opened. The agent on the local hub (the real azure-iot-device MQTT client), a real SQLite
 * file, its default model fitted by the trainer (`pumpwatch.stuck_after`: Current 60 readings).
 */
import { existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import type { Reading } from '../../buffer/types.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

const DEVICE = 'gw-reopen';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let cs: string;
let dir: string;
const model = stopModels({ version: 'reopen' }).withRule;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const getJson = async (t: TestAgent, path: string): Promise<any> => (await fetch(`${t.url}${path}`)).json();
const post = async (t: TestAgent, rs: readonly Reading[]) => expect((await postJson(`${t.url}/readings`, rs.map((r) => ({ ...r, ts: new Date(r.ts).toISOString() })))).status).toBe(202);
const sensorAlerts = (pumpId: string) => hub.outputs(DEVICE, MODULE, 'alerts').map((m) => JSON.parse(m.body.toString())).filter((a) => a.kind === 'sensor-frozen' && a.pumpId === pumpId);
const hubState = async (t: TestAgent) => (await getJson(t, '/status')).connectivity.hub as string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-alerts-reopen-'));
  hub = await LocalHub.start();
  cs = hub.addModule(DEVICE, MODULE);
});

afterAll(async () => {
  await hub?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const startAgent = (data: string) =>
  startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: cs, PUMPWATCH_DEVICE_ID: DEVICE, PUMPWATCH_DATA_DIR: data, PUMPWATCH_SENSOR_ALERTS_MIN_INTERVAL_SECONDS: '600' },
    { hubCa: hub.ca, model },
  );

describe('sensor alerts of the last run, with a buffer that opens only after start-up', () => {
  it('sends the unsent alert and keeps the quiet time and its held-back count once the buffer opens', async () => {
    const data = join(dir, 'data');
    const t0 = Date.now() - 3600_000;
    // pump-q: Current held, one other value every 61st reading: found at each cycle, alerted once
    const q = readingsWithStops(6 * 61, () => false, { pumpId: 'pump-q', start: t0, seed: 13 });
    const held = q[0]!.values.Current!;
    q.forEach((r, i) => (r.values = { ...r.values, Current: i % 61 === 60 ? held + 0.05 : held }));
    // pump-p: Current frozen from its first reading
    const p = readingsWithStops(80, () => false, { pumpId: 'pump-p', start: t0, seed: 14 });
    p.forEach((r) => (r.values = { ...r.values, Current: p[0]!.values.Current! }));

    const a = await startAgent(data);
    await until(async () => expect(await hubState(a)).toMatch(/^connected/));
    for (let c = 0; c < 3; c++) await post(a, q.slice(c * 61, (c + 1) * 61));
    await edgeRuntimeOf(a.agent)?.alerts.idle();
    expect(sensorAlerts('pump-q')).toHaveLength(1);
    expect((await getJson(a, '/status')).alerts.sensorsSuppressed['pump-q']).toMatchObject({ Current: { suppressedSinceLast: 2 } });
    // The hub goes away: pump-p's alert stays unsent, kept in the buffer.
    await hub.stopBroker();
    await until(async () => expect(await hubState(a)).not.toMatch(/^connected/));
    await post(a, p.slice(0, 70));
    await edgeRuntimeOf(a.agent)?.alerts.idle();
    expect((await getJson(a, '/status')).alerts.pending).toBe(1);
    await a.stop();
    await hub.startBroker();

    // The next run starts with its buffer out of reach: a folder where the file should be.
    const file = join(data, 'buffer.sqlite');
    const kept = join(dir, 'kept.sqlite');
    for (const sfx of ['', '-wal', '-shm']) if (existsSync(file + sfx)) renameSync(file + sfx, kept + sfx);
    mkdirSync(file);
    const b = await startAgent(data);
    try {
      await until(async () => expect(await hubState(b)).toMatch(/^connected/));
      expect((await getJson(b, '/status')).alerts).toMatchObject({ pending: 0, sent: 0 });

      // The file is back: the scheduler's retry opens it.
      rmSync(file, { recursive: true });
      for (const sfx of ['', '-wal', '-shm']) if (existsSync(kept + sfx)) renameSync(kept + sfx, file + sfx);
      await b.agent.reopenBuffer();
      await post(b, p.slice(70));
      await post(b, q.slice(3 * 61, 4 * 61)); // found again, in the quiet time of its alert of the last run
      await until(() => expect(sensorAlerts('pump-p')).toHaveLength(1));
      await edgeRuntimeOf(b.agent)?.alerts.idle();
      expect(sensorAlerts('pump-p')[0]).toMatchObject({ sensor: { feature: 'Current', readings: 60, after: 60 }, suppressedSinceLast: 0 });
      expect(sensorAlerts('pump-q')).toHaveLength(1);
      const alerts = (await getJson(b, '/status')).alerts;
      expect(alerts).toMatchObject({ pending: 0, sent: 1, sensorsSuppressed: { 'pump-q': { Current: { suppressedSinceLast: 3 } } } });
    } finally {
      await b.stop();
    }
  });
});
