/**
 * The return to normal of an anomaly alarm, the agent as an IoT Edge module on the local hub (the
 * real azure-iot-device MQTT client), its default model fitted by the trainer with a stopped-when
 * rule (window 1: a reading's score is its own): an `anomaly` raise, its repeats carrying the
 * raise's seq as `episode`, and ONE `anomaly-cleared` (message property `type: anomaly-cleared`)
 * after the page's off-delay of normal scored readings; a stopped pump stays in alarm (its readings
 * are unscored); a new agent on the same data dir in the middle of the off-delay keeps the open
 * alarm and clears it once. `/status` (`alerts.openAlarms`) and `/metrics` (`pumpwatch_alarms_open`)
 * show the alarm while it is open. Every message carries an `id` unique on the gateway, and the output's
 * schema version (body and message property), alerts an older agent left pending too.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { CLEAR_AFTER_NORMALS } from '../../agent/http/pump-board.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import type { Reading } from '../../buffer/types.js';
import { postJson, startTestAgent, testAgentConfig, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

const DEVICE = 'gw-clear';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
let env: Record<string, string>;
/** The agent answering now: the test's, or the one restarted on its data dir. */
let agent: Agent;
let url: string;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const messages = () => hub.outputs(DEVICE, MODULE, 'alerts');
const about = (pumpId: string) => messages().filter((m) => m.properties.pumpId === pumpId).map((m) => ({ type: m.properties.type, ...JSON.parse(m.body.toString()) }));
const settled = async (): Promise<void> => edgeRuntimeOf(agent)!.alerts.idle();
/** `/status` `alerts.openAlarms` and `/metrics` `pumpwatch_alarms_open`, now. */
const alarmsShown = async (): Promise<{ openAlarms: unknown; gauge: string | undefined }> => ({
  openAlarms: ((await (await fetch(`${url}/status`)).json()) as any).alerts.openAlarms,
  gauge: /^pumpwatch_alarms_open (\d+)$/m.exec(await (await fetch(`${url}/metrics`)).text())?.[1],
});

/** A spike: far over the threshold of the trainer's model. */
const SPIKE = { Pressure: 4, Flow: 30, Current: 1.4 };

/** `n` running readings of `pumpId` at 1 Hz from `start`, anomalous where `anomalous(i)` says, stopped where `stopped(i)` says. */
function readings(pumpId: string, start: number, n: number, anomalous: (i: number) => boolean, stopped: (i: number) => boolean = () => false): Reading[] {
  return readingsWithStops(n, stopped, { pumpId, start, seed: 9 }).map((r, i) => (anomalous(i) ? { ...r, values: SPIKE } : r));
}
async function post(rs: readonly Reading[]): Promise<void> {
  const res = await postJson(`${url}/readings`, rs.map((r) => ({ ...r, ts: new Date(r.ts).toISOString() })));
  expect(res.status).toBe(202);
  await settled();
}

beforeAll(async () => {
  hub = await LocalHub.start();
  env = { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: hub.addModule(DEVICE, MODULE), PUMPWATCH_DEVICE_ID: DEVICE, PUMPWATCH_ALERTS_MIN_INTERVAL_SECONDS: '0' };
  t = await startTestAgent(env, { hubCa: hub.ca, model: stopModels({ version: 'clear-hub', window: 1 }).withRule });
  agent = t.agent;
  url = t.url;
  await until(async () => expect(((await (await fetch(`${url}/status`)).json()) as any).connectivity.hub).toMatch(/^connected/));
});

afterAll(async () => {
  if (agent !== t.agent) await agent.stop();
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
});

/** Starts of each pump's readings: an hour apart, ending before now. */
const START = Date.now() - 4 * 3_600_000;

describe('an anomaly alarm returns to normal on output alerts', () => {
  it('raises, repeats with the raise as episode, and clears once after the off-delay of normal readings', async () => {
    // 40 normal readings (the window fills), 3 anomalous, then normal ones: the off-delay less one, then the rest
    await post(readings('pump-c', START, 40 + 3 + CLEAR_AFTER_NORMALS - 1, (i) => i >= 40 && i < 43));
    const raised = about('pump-c');
    expect(raised.map((a) => a.kind)).toEqual(['anomaly', 'anomaly', 'anomaly']);
    const episode = raised[0]!.seq;
    expect(raised.map((a) => a.episode)).toEqual([episode, episode, episode]);
    // open, as the control room holds it, one normal reading short of its clear
    expect(await alarmsShown()).toEqual({ openAlarms: { 'pump-c': { episode, raisedAt: raised[0]!.ts, normalsInRow: CLEAR_AFTER_NORMALS - 1 } }, gauge: '1' });

    await post(readings('pump-c', START + 100_000, 20, () => false));
    const all = about('pump-c');
    const clears = all.filter((a) => a.kind === 'anomaly-cleared');
    expect(clears).toHaveLength(1);
    expect(clears[0]).toMatchObject({ type: 'anomaly-cleared', episode, raisedAt: raised[0]!.ts, modelVersion: 'clear-hub', suppressedSinceLast: 0, ts: new Date(START + 100_000).toISOString() });
    // the clear is the last message: the normal readings after it send nothing
    expect(all.at(-1)!.kind).toBe('anomaly-cleared');
    expect(await alarmsShown()).toEqual({ openAlarms: {}, gauge: '0' });

    // a new episode is raised anew, with its own episode
    await post(readings('pump-c', START + 200_000, 2, () => true));
    const next = about('pump-c').slice(all.length);
    expect(next.map((a) => [a.kind, a.episode])).toEqual([['anomaly', next[0]!.seq], ['anomaly', next[0]!.seq]]);
    expect(next[0]!.seq).toBeGreaterThan(episode);
  });

  it('keeps a stopped pump in alarm, and clears it on the normal readings after it runs again', async () => {
    const start = START + 3_600_000;
    // anomalous, then stopped for 60 readings (unscored), then running normally
    await post(readings('pump-s', start, 40 + 2 + 60, (i) => i >= 40 && i < 42, (i) => i >= 42));
    expect(about('pump-s').map((a) => a.kind)).toEqual(['anomaly', 'anomaly']);
    await post(readings('pump-s', start + 200_000, 60, () => false));
    const clears = about('pump-s').filter((a) => a.kind === 'anomaly-cleared');
    expect(clears).toHaveLength(1);
    expect(clears[0]!.episode).toBe(about('pump-s')[0]!.seq);
  });

  it('keeps the open alarm and its off-delay across a restart, and clears it once', async () => {
    const start = START + 2 * 3_600_000;
    // anomalous, then two normal readings of the off-delay before the restart
    await post(readings('pump-r', start, 40 + 1 + 2, (i) => i === 40));
    const [raise] = about('pump-r');
    expect(raise).toMatchObject({ kind: 'anomaly', episode: raise!.seq });

    // Left pending by older agents, as they saved them: one before ids (no id, no kind), one before
    // schema versions; both are sent by this one with schemaVersion 1 (the last test checks it).
    const older = { deviceId: DEVICE, pumpId: 'pump-old', ts: new Date(start).toISOString(), score: 0.9, threshold: 0.5, modelVersion: 'old', topFeatures: [], suppressedSinceLast: 0 };
    const frozen = { ...older, id: 'sensor-frozen:old:1000002:Flow', kind: 'sensor-frozen', seq: 1_000_002, sensor: { feature: 'Flow', value: 30, since: older.ts, readings: 60, after: 60 } };
    agent.buffer.setMeta('alerts.pending', JSON.stringify([{ alert: { ...older, seq: 1_000_001 }, at: start }, { alert: frozen, at: start }]));
    await agent.stop();
    agent = new Agent({ config: testAgentConfig(join(t.dir, 'data'), { EdgeModuleCACertificateFile: join(t.dir, 'hub-ca.pem'), ...env }), logger: createLogger('silent'), defaultModelPath: join(t.dir, 'default-model.onnx') });
    await agent.start();
    url = `http://127.0.0.1:${agent.httpAddress()!.port}`;
    await until(async () => expect(((await (await fetch(`${url}/status`)).json()) as any).connectivity.hub).toMatch(/^connected/));

    // the rest of the off-delay: the clear comes at its last reading, as without the restart
    await post(readings('pump-r', start + 43_000, CLEAR_AFTER_NORMALS - 2 + 10, () => false));
    // The restarted agent may commit the post after its answer, so after the publisher's idle: wait for the clear.
    await until(() => expect(about('pump-r').filter((a) => a.kind === 'anomaly-cleared')).toHaveLength(1));
    const clears = about('pump-r').filter((a) => a.kind === 'anomaly-cleared');
    expect(clears).toHaveLength(1);
    expect(clears[0]).toMatchObject({ episode: raise!.seq, raisedAt: raise!.ts, ts: new Date(start + 43_000 + (CLEAR_AFTER_NORMALS - 3) * 1000).toISOString() });
  });

  it('gives every message an id unique on the gateway', () => {
    const ids = messages().map((m) => JSON.parse(m.body.toString()).id as string);
    expect(ids.length).toBeGreaterThan(8);
    expect(ids.every((id) => typeof id === 'string')).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
  });

  it('gives every message the schema version 1, in the body and as the message property schemaVersion, those older agents left pending too', async () => {
    await until(() => expect(about('pump-old')).toHaveLength(2));
    expect(new Set(messages().map((m) => m.properties.type))).toEqual(new Set(['agent-health', 'anomaly', 'anomaly-cleared', 'sensor-fault']));
    for (const m of messages()) {
      expect(m.properties.schemaVersion).toBe('1');
      expect(JSON.parse(m.body.toString()).schemaVersion).toBe(1);
    }
  });
});
