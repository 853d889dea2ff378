/**
 * "Not scoring" never looks like silence or "normal" on output `alerts` (agent/edge/status-messages.ts),
 * the agent as an IoT Edge module on the local hub (the real azure-iot-device MQTT client):
 * `agent-health` once connected and at each change of what /healthz computes, the buffer failing
 * included (SQLite's `max_page_count` caps the file, as in edge-silent-pump-hub.test.ts: SQLite answers
 * SQLITE_FULL as on a full disk); `pump-not-scored` with the reason for a pump that keeps sending
 * with nothing scored for `alerts.notScoredAfterSeconds` (from the twin), once, and `pump-scored`
 * when it is scored again; each sent counted on /status (`alerts.statusMessages`) and /metrics. The agent's monotonic clock is moved by the test (AgentOptions.monotonic).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import { postJson, startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { normalValues, rng } from '../support/models.js';

const DEVICE = 'gw-status';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let t: TestAgent;
let skew = 0;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
/** The messages of `type` on output `alerts`, parsed, with their message properties. */
const messagesOf = (type: string) => hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.type === type).map((m) => ({ properties: m.properties, body: JSON.parse(m.body.toString()) }));
const health = () => messagesOf('agent-health').map((m) => m.body);
const about = (type: string, pumpId: string) => messagesOf(type).filter((m) => m.properties.pumpId === pumpId).map((m) => m.body);
/** The check the agent's timer runs, run now, and what it decided handed to the hub. */
async function check(): Promise<void> {
  const messages = edgeRuntimeOf(t.agent)!.statusMessages;
  messages.check();
  await messages.idle();
}
const r = rng(5);
/** `n` readings of `pumpId` at 1 Hz from `start`; `without` a sensor left out of each. */
const readings = (pumpId: string, start: number, n: number, without?: string) =>
  Array.from({ length: n }, (_, i) => {
    const values: Record<string, number> = normalValues(r, i);
    if (without) delete values[without];
    return { pumpId, ts: new Date(start + i * 1000).toISOString(), values };
  });

beforeAll(async () => {
  hub = await LocalHub.start();
  t = await startHubAgent(hub, hub.addModule(DEVICE, MODULE), DEVICE, {}, { monotonic: () => performance.now() + skew });
  hub.updateDesired(DEVICE, MODULE, { alerts: { notScoredAfterSeconds: 60 } });
  await until(() => expect(reported().alerts).toMatchObject({ value: { notScoredAfterSeconds: 60 }, ac: 200 }));
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
});

describe('agent-health, pump-not-scored and pump-scored on output alerts', () => {
  it('sends agent-health once connected, failing with its checks when the buffer stores nothing, and again when it is back', async () => {
    await until(() => expect(health()).toHaveLength(1));
    const first = health()[0];
    expect(first).toMatchObject({ kind: 'agent-health', deviceId: DEVICE, reason: 'connected', id: expect.any(String), ts: expect.any(String), notScoredPumps: [] });
    expect(first.problems.some((p: { check: string }) => p.check === 'buffer')).toBe(false);
    // No change: nothing more.
    await check();
    expect(health()).toHaveLength(1);

    const { db } = t.agent.buffer;
    db.pragma(`max_page_count = ${Number(db.pragma('page_count', { simple: true }))}`);
    let start = Date.now() - 3_600_000;
    try {
      expect((await postJson(`${t.url}/readings`, readings('pump-full', start, 300))).status).toBe(507);
      await check();
      await until(() => expect(health()).toHaveLength(2));
      expect(health()[1]).toMatchObject({ kind: 'agent-health', status: 'failing', reason: 'changed' });
      expect(health()[1].problems).toContainEqual({ check: 'buffer', state: 'failing', detail: expect.any(String) });
      // It keeps sending, nothing stored nor scored: not scored, the buffer said as the reason.
      skew += 61_000;
      start += 300_000;
      expect((await postJson(`${t.url}/readings`, readings('pump-full', start, 300))).status).toBe(507);
      await check();
      await until(() => expect(about('pump-not-scored', 'pump-full')).toHaveLength(1));
      expect(about('pump-not-scored', 'pump-full')[0].reason).toMatch(/^buffer failing/);
    } finally {
      db.pragma('max_page_count = 1073741823'); // room again
    }
    expect((await postJson(`${t.url}/readings`, readings('pump-full', start + 300_000, 30))).status).toBe(202);
    await check();
    await until(() => expect(health()).toHaveLength(3));
    expect(health()[2]).toMatchObject({ kind: 'agent-health', status: first.status, problems: first.problems, reason: 'changed' });
    await until(() => expect(about('pump-scored', 'pump-full')).toHaveLength(1));
    expect(new Set(health().map((h) => h.id)).size).toBe(3);
  });

  it('sends one pump-not-scored with the reason for a pump whose sensor went missing, and one pump-scored when it is scored again', async () => {
    let start = Date.now() - 600_000;
    expect((await postJson(`${t.url}/readings`, readings('pump-m', start, 20))).status).toBe(202);
    start += 20_000;
    // Flow gone: carried forward for 60 readings, then unscored
    expect((await postJson(`${t.url}/readings`, readings('pump-m', start, 70, 'Flow'))).status).toBe(202);
    start += 70_000;
    skew += 61_000;
    expect((await postJson(`${t.url}/readings`, readings('pump-m', start, 1, 'Flow'))).status).toBe(202);
    start += 1_000;
    await check();
    await until(() => expect(about('pump-not-scored', 'pump-m')).toHaveLength(1));
    const [notScored] = about('pump-not-scored', 'pump-m');
    expect(notScored).toMatchObject({ kind: 'pump-not-scored', deviceId: DEVICE, pumpId: 'pump-m', id: expect.any(String), notScoredSince: expect.any(String) });
    expect(notScored.reason).toMatch(/no value for feature "Flow"/);
    // Still not scored: not said again.
    expect((await postJson(`${t.url}/readings`, readings('pump-m', start, 5, 'Flow'))).status).toBe(202);
    start += 5_000;
    await check();
    expect(about('pump-not-scored', 'pump-m')).toHaveLength(1);

    expect((await postJson(`${t.url}/readings`, readings('pump-m', start, 20))).status).toBe(202);
    await until(() => expect(about('pump-scored', 'pump-m')).toHaveLength(1));
    expect(about('pump-scored', 'pump-m')[0]).toMatchObject({ kind: 'pump-scored', pumpId: 'pump-m', notScoredSince: notScored.notScoredSince, reason: notScored.reason });
    expect(about('pump-scored', 'pump-m')[0].notScoredSeconds).toBeGreaterThanOrEqual(61);
    expect(about('pump-scored', 'pump-m')[0].id).not.toBe(notScored.id);
    await check();
    expect(about('pump-not-scored', 'pump-m')).toHaveLength(1);
    expect(about('pump-scored', 'pump-m')).toHaveLength(1);
  });
  it('sends pump-not-scored for a pump whose every reading is refused (a sensor sending text), the refusal as the reason', async () => {
    const nan = (n: number) => Array.from({ length: n }, (_, i) => ({ pumpId: 'pump-nan', ts: new Date(Date.now() - 60_000 + i * 1000).toISOString(), values: { Pressure: 'NaN', Flow: 30, Current: 1.4 } }));
    expect((await postJson(`${t.url}/readings`, nan(5))).status).toBe(400);
    skew += 61_000;
    expect((await postJson(`${t.url}/readings`, nan(1))).status).toBe(400);
    await check();
    await until(() => expect(about('pump-not-scored', 'pump-nan')).toHaveLength(1));
    expect(about('pump-not-scored', 'pump-nan')[0].reason).toMatch(/^readings refused: /);
    // and the gateway's next agent-health lists it among the pumps not scored
    edgeRuntimeOf(t.agent)!.statusMessages.connected();
    await until(() => expect(health().at(-1).notScoredPumps).toContain('pump-nan'));
  });
  it('sends agent-heartbeat every alerts.heartbeatSeconds (off by default) with the health and the pumps per /pumps state', async () => {
    await check();
    skew += 3_600_000;
    await check();
    expect(messagesOf('agent-heartbeat')).toEqual([]); // 0: off
    hub.updateDesired(DEVICE, MODULE, { alerts: { heartbeatSeconds: 60 } });
    await until(() => expect(reported().alerts).toMatchObject({ value: { heartbeatSeconds: 60 }, ac: 200 }));
    await check(); // the interval starts
    const shown = async () => ({ status: ((await (await fetch(`${t.url}/status`)).json()) as any).alerts.statusMessages, metrics: await (await fetch(`${t.url}/metrics`)).text() });
    const before = (await shown()).status;
    expect(before).toMatchObject({ sent: health().length + messagesOf('pump-not-scored').length + messagesOf('pump-scored').length, pending: 0, replaced: expect.any(Number), failed: expect.any(Number) });
    skew += 61_000;
    await check();
    await until(() => expect(messagesOf('agent-heartbeat')).toHaveLength(1));
    // the heartbeat counted on /status and /metrics
    const after = await shown();
    expect(after.status).toMatchObject({ sent: before.sent + 1, pending: 0 });
    expect(after.metrics).toMatch(new RegExp(`^pumpwatch_status_messages_sent_total ${before.sent + 1}$`, 'm'));
    expect(after.metrics).toMatch(/^pumpwatch_status_messages_pending 0$/m);
    expect(after.metrics).toMatch(new RegExp(`^pumpwatch_status_messages_replaced_total ${after.status.replaced}$`, 'm'));
    const [beat] = messagesOf('agent-heartbeat');
    expect(beat!.properties).not.toHaveProperty('pumpId');
    expect(beat!.body).toMatchObject({ kind: 'agent-heartbeat', deviceId: DEVICE, id: expect.any(String), status: health().at(-1).status, intervalSeconds: 60, notScoredPumps: expect.any(Array) });
    const board = ((await (await fetch(`${t.url}/pumps`)).json()) as { pumps: Array<{ state: string }> }).pumps;
    const counts: Record<string, number> = {};
    for (const p of board) counts[p.state] = (counts[p.state] ?? 0) + 1;
    expect(beat!.body.pumps).toEqual(counts);
    await check();
    expect(messagesOf('agent-heartbeat')).toHaveLength(1); // not before the next interval
  });
  it('gives every message the schema version 1, in the body and as the message property schemaVersion', () => {
    const all = hub.outputs(DEVICE, MODULE, 'alerts');
    expect(new Set(all.map((m) => m.properties.type))).toEqual(new Set(['agent-health', 'pump-not-scored', 'pump-scored', 'agent-heartbeat']));
    for (const m of all) {
      expect(m.properties.schemaVersion).toBe('1');
      expect(JSON.parse(m.body.toString()).schemaVersion).toBe(1);
    }
  });
});
