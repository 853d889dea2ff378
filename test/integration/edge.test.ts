/**
 * The agent as an IoT Edge module, with the real azure-iot-device MQTT client against the local
 * hub: twin read on connect, desired patches and their acknowledgements, input messages
 * committed before they are acknowledged, alerts on output `alerts`, and a broker outage.
 *
 * One agent serves every test, and each test stands alone (it passes run by itself with -t, and in
 * any order): beforeAll waits for the module to connect and apply the twin, and each test uses
 * pumps, twin keys and setting values of its own. A patch that sets a value the desired twin
 * already holds is not acknowledged again, so no two tests set a section to the same value.
 */
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { postJson, startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';
// @ts-expect-error: the page's modules are plain JavaScript without type declarations
import { fmtClock } from '../../agent/page/format.js';
// @ts-expect-error: as above
import { hubSummary } from '../../agent/page/render.js';

const DEVICE = 'gw-1';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let server: ModelServer;
let t: TestAgent;
let db: Database.Database;
let v2: { version: string; url: string; sha256: string; size: number };
/** The reported twin, the agent's sync interval and its hub state once it had connected and applied the twin. */
let onConnect: { reported: Record<string, any>; desiredVersion: number; syncIntervalSeconds: number; hub: string };
const random = rng(9);
let tick = 0;

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const count = (sql: string, ...args: unknown[]) => (db.prepare(sql).get(...args) as { n: number }).n;
const reading = (pumpId: string, values?: Record<string, number>) => ({ pumpId, ts: new Date().toISOString(), values: values ?? normalValues(random, tick++) });
const statusModels = async () => ((await (await fetch(`${t.url}/status`)).json()) as { models: Record<string, Record<string, unknown>> }).models;
const hubState = async () => ((await (await fetch(`${t.url}/status`)).json()) as { connectivity: { hub: string } }).connectivity.hub;
type ModelEntry = typeof v2;

/** Desires `entry` for `pumpKey` and waits until the agent runs it. */
async function makeActive(pumpKey: string, entry: ModelEntry): Promise<number> {
  const v = hub.updateDesired(DEVICE, MODULE, { models: { [pumpKey]: entry } });
  await until(() => expect(reported().models?.[pumpKey]).toMatchObject({ version: entry.version, status: 'active', ac: 200, av: v }));
  return v;
}

/** Makes v2 the model of `pumpKey`, then desires `version` from a URL that answers 404; gives that patch's version. */
async function refusedOverV2(pumpKey: string, version: string): Promise<number> {
  await makeActive(pumpKey, v2);
  const v = hub.updateDesired(DEVICE, MODULE, { models: { [pumpKey]: { ...server.add(`${version}.onnx`, makeModel({ version }), version), url: `${server.baseUrl}/models/gone-${version}.onnx` } } });
  await until(() => expect(reported().models[pumpKey]).toMatchObject({ version, status: 'rejected', ac: 400, av: v, activeVersion: 'v2' }));
  return v;
}

beforeAll(async () => {
  hub = await LocalHub.start();
  server = await ModelServer.start();
  const connectionString = hub.addModule(DEVICE, MODULE);
  v2 = server.add('v2.onnx', makeModel({ version: 'v2', seed: 2 }), 'v2');
  hub.updateDesired(DEVICE, MODULE, {
    models: { default: v2 },
    sync: { intervalSeconds: 45 },
    alerts: { minIntervalSeconds: 3600 },
  });
  t = await startHubAgent(hub, connectionString, DEVICE, { PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1' });
  db = new Database(join(t.dir, 'data', 'buffer.sqlite'), { readonly: true });
  // Every test needs the module connected and the twin applied; later tests change the twin.
  await vi.waitFor(() => expect(reported().models?.default).toMatchObject({ version: 'v2', status: 'active', ac: 200 }), { timeout: 60_000, interval: 50 });
  await vi.waitFor(async () => expect(await hubState()).toBe('connected'), { timeout: 60_000, interval: 50 });
  onConnect = {
    reported: structuredClone(reported()),
    desiredVersion: hub.getTwin(DEVICE, MODULE).properties.desired['$version'] as number,
    syncIntervalSeconds: t.agent.config.syncIntervalSeconds,
    hub: await hubState(),
  };
});

afterAll(async () => {
  db?.close();
  await t?.stop(); // the module client closes before the broker, or the process hangs
  await hub?.stop();
  await server?.stop();
});

describe('the agent as an IoT Edge module on the local hub', () => {
  it('reads the whole twin on connect, applies it, and reports each model and setting', () => {
    const { reported: first, desiredVersion } = onConnect;
    expect(first.models.default).toMatchObject({ version: 'v2', status: 'active', ac: 200, ad: 'active', av: desiredVersion });
    expect(first.sync).toEqual({ value: { intervalSeconds: 45 }, ac: 200, av: desiredVersion, ad: 'applied' });
    expect(onConnect.syncIntervalSeconds).toBe(45);
    expect(first.state.buffer).toMatchObject({ rows: expect.any(Number), maxBytes: t.agent.config.bufferMaxBytes });
    expect(onConnect.hub).toBe('connected');
  });

  it('acknowledges a desired patch, and refuses an invalid one with its reason while the last good value stays', async () => {
    const good = hub.updateDesired(DEVICE, MODULE, { buffer: { retentionHours: 11 } });
    await until(() => expect(reported().buffer).toEqual({ value: { retentionHours: 11 }, ac: 200, av: good, ad: 'applied' }));
    expect(t.agent.config.retentionHours).toBe(11);

    const bad = hub.updateDesired(DEVICE, MODULE, { buffer: { retentionHours: -3 } });
    await until(() => expect(reported().buffer).toMatchObject({ ac: 400, av: bad }));
    expect(reported().buffer.ad).toMatch(/^buffer.retentionHours=-3: /);
    expect(reported().buffer.value).toEqual({ retentionHours: 11 });
    expect(t.agent.config.retentionHours).toBe(11);
  });

  it('changes a limit of the ingest section at run time, and a deleted section brings back the start-up value', async () => {
    const twoHoursAgo = { pumpId: 'edge-3', ts: new Date(Date.now() - 2 * 3_600_000).toISOString(), values: normalValues(random, tick++) };
    const tighter = hub.updateDesired(DEVICE, MODULE, { ingest: { maxPastSeconds: 3600 } });
    await until(() => expect(reported().ingest).toEqual({ value: { maxPastSeconds: 3600 }, ac: 200, av: tighter, ad: 'applied' }));
    const refused = await postJson(`${t.url}/readings`, [twoHoursAgo]);
    expect(refused.status).toBe(400);
    expect(refused.json.rejected[0].error).toMatch(/^ts: .* is more than 3600 s \(PUMPWATCH_MAX_PAST_SECONDS, twin ingest\.maxPastSeconds\) behind the gateway clock/);

    const reset = hub.updateDesired(DEVICE, MODULE, { ingest: null });
    await until(() => expect(reported().ingest).toMatchObject({ ac: 200, av: reset, ad: 'reset to start-up values' }));
    expect(t.agent.config.maxPastSeconds).toBe(365 * 86_400);
    expect((await postJson(`${t.url}/readings`, [twoHoursAgo])).json).toMatchObject({ accepted: 1 });
  });

  it('a setting deleted from a section (set to null) leaves the reported value too, and goes back to its start-up value', async () => {
    const startupMaxBytes = t.agent.config.bufferMaxBytes;
    const both = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 120 }, buffer: { retentionHours: 6, maxBytes: 2 ** 28 } });
    await until(() => expect(reported().buffer).toEqual({ value: { retentionHours: 6, maxBytes: 2 ** 28 }, ac: 200, av: both, ad: 'applied' }));
    expect(t.agent.config.bufferMaxBytes).toBe(2 ** 28);
    const one = hub.updateDesired(DEVICE, MODULE, { buffer: { maxBytes: null } });
    // Before: the reported patch merged, and `maxBytes` stayed in the reported value as if in force.
    await until(() => expect(reported().buffer).toEqual({ value: { retentionHours: 6 }, ac: 200, av: one, ad: 'applied' }));
    expect(t.agent.config.bufferMaxBytes).toBe(startupMaxBytes);
    expect(t.agent.config.retentionHours).toBe(6);
    expect(reported().alerts).toEqual({ value: { minIntervalSeconds: 120 }, ac: 200, av: both, ad: 'applied' });
  });

  it('commits readings from input "readings" before acknowledging the message', async () => {
    const committedWhenAcked = new Promise<number>((resolve) => {
      hub.once('inputCompleted', () => resolve(count("SELECT count(*) n FROM readings WHERE pump_id = 'edge-1'")));
    });
    const id = await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify([reading('edge-1'), reading('edge-1'), reading('edge-1')]));
    await hub.completed(id);

    expect(await committedWhenAcked).toBe(3);
    const one = await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify(reading('edge-1')));
    await hub.completed(one);
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'edge-1' AND score IS NOT NULL")).toBe(4);
  });

  it('keeps bad input messages in the rejected table with the reason, and acknowledges them', async () => {
    const lastBefore = count('SELECT coalesce(max(id), 0) n FROM rejected');
    const notJson = await hub.deliverToInput(DEVICE, MODULE, 'readings', '{"pumpId": "edge-2", ');
    const badItem = await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify([reading('edge-2'), { pumpId: 'edge-2', ts: 'yesterday', values: {} }]));
    const otherInput = await hub.deliverToInput(DEVICE, MODULE, 'telemetry', JSON.stringify(reading('edge-2')));
    await Promise.all([hub.completed(notJson), hub.completed(badItem), hub.completed(otherInput)]);

    const rejected = db.prepare("SELECT raw, reason FROM rejected WHERE source = 'edge' AND id > ? ORDER BY id").all(lastBefore) as Array<{ raw: string; reason: string }>;
    expect(rejected.map((r) => r.reason)).toEqual([
      expect.stringMatching(/^body is not valid JSON/),
      expect.stringMatching(/^ts: /),
      'unknown input "telemetry" (this module reads "readings")',
    ]);
    expect(rejected[0]!.raw).toBe('{"pumpId": "edge-2", ');
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'edge-2'")).toBe(1);
  });

  it('refuses and acknowledges a message nested too deep, where its refusal overflowed the stack and the message was retried for ever', async () => {
    const nested = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    const deepValues = `[{"pumpId":"edge-deep","ts":${Date.now()},"values":${'['.repeat(5000)}${']'.repeat(5000)}}]`;
    const ids = [await hub.deliverToInput(DEVICE, MODULE, 'readings', nested), await hub.deliverToInput(DEVICE, MODULE, 'readings', deepValues)];
    await until(() => expect(ids.map((id) => hub.isCompleted(id))).toEqual([true, true]));
    const kept = db.prepare("SELECT raw, reason FROM rejected WHERE source = 'edge' ORDER BY id DESC LIMIT 2").all().reverse();
    expect(kept).toEqual([
      { raw: nested.slice(0, 4096) + `…[truncated ${nested.length - 4096} chars]`, reason: 'body has arrays and objects nested deeper than 16 levels (at line 1, column 17); a reading nests 3 deep at most' },
      { raw: deepValues.slice(0, 4096) + `…[truncated ${deepValues.length - 4096} chars]`, reason: 'body has arrays and objects nested deeper than 16 levels (at line 1, column 66); a reading nests 3 deep at most' },
    ]);
  });

  it('stores the refused readings of a message once when its good readings commit only on a retry', async () => {
    // A real SQLite failure: a trigger makes every insert into readings abort until it is dropped.
    const writer = new Database(join(t.dir, 'data', 'buffer.sqlite'));
    writer.exec("CREATE TRIGGER fail_readings BEFORE INSERT ON readings BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END");
    const refusedRaw = { pumpId: 'edge-4', ts: 'not-a-time-retry', values: { Pressure: 1 } };
    const id = await hub.deliverToInput(DEVICE, MODULE, 'readings', JSON.stringify([reading('edge-4'), refusedRaw]));
    try {
      await until(() => expect(count("SELECT count(*) n FROM rejected WHERE raw LIKE '%not-a-time-retry%'")).toBe(1));
      await new Promise((r) => setTimeout(r, 1500)); // at least one retry of the commit fails meanwhile
      expect(hub.isCompleted(id)).toBe(false);
    } finally {
      writer.exec('DROP TRIGGER fail_readings');
      writer.close();
    }
    await hub.completed(id);
    expect(count("SELECT count(*) n FROM readings WHERE pump_id = 'edge-4'")).toBe(1);
    expect(count("SELECT count(*) n FROM rejected WHERE raw LIKE '%not-a-time-retry%'")).toBe(1);
  });

  it('goes on reading twin patches while input messages wait for a buffer that cannot commit, then commits and acknowledges them in arrival order', async () => {
    const writer = new Database(join(t.dir, 'data', 'buffer.sqlite'));
    writer.exec("CREATE TRIGGER fail_readings BEFORE INSERT ON readings BEGIN SELECT RAISE(ABORT, 'simulated disk failure'); END");
    const completedOrder: string[] = [];
    const onCompleted = ({ messageId }: { messageId: string }) => completedOrder.push(messageId);
    hub.on('inputCompleted', onCompleted);
    const base = Date.now() - 60_000;
    const message = (i: number) => JSON.stringify({ pumpId: 'edge-5', ts: new Date(base + i * 1000).toISOString(), values: normalValues(random, i) });
    const ids: string[] = [];
    try {
      for (let i = 0; i < 3; i++) ids.push(await hub.deliverToInput(DEVICE, MODULE, 'readings', message(i)));
      const patch = hub.updateDesired(DEVICE, MODULE, { buffer: { retentionHours: 13 } });
      // More messages than the agent keeps waiting (16): the packet loop then waits, and nothing is lost.
      for (let i = 3; i < 20; i++) ids.push(await hub.deliverToInput(DEVICE, MODULE, 'readings', message(i)));
      await until(() => expect(reported().buffer).toMatchObject({ ac: 200, av: patch }));
      expect(t.agent.config.retentionHours).toBe(13);
      expect(ids.filter((id) => hub.isCompleted(id))).toEqual([]);
    } finally {
      writer.exec('DROP TRIGGER fail_readings');
      writer.close();
    }
    await Promise.all(ids.map((id) => hub.completed(id)));
    hub.off('inputCompleted', onCompleted);
    expect(completedOrder).toEqual(ids);
    const stored = db.prepare("SELECT ts FROM readings WHERE pump_id = 'edge-5' ORDER BY seq").all() as Array<{ ts: number }>;
    expect(stored.map((r) => r.ts)).toEqual(ids.map((_, i) => base + i * 1000));
  });

  it('sends one alert per pump and interval on output "alerts", with score, threshold, model and top features', async () => {
    await makeActive('pump-9', v2); // whatever another test made the default model
    const spike = { Pressure: 4, Flow: 30, Current: 1.4 };
    const r = await postJson(`${t.url}/readings`, [reading('pump-9', spike), reading('pump-9', spike), reading('pump-9', spike)]);
    expect(r.status).toBe(202);

    const alerts = () => hub.outputs(DEVICE, MODULE, 'alerts').filter((m) => m.properties.pumpId === 'pump-9');
    await until(() => expect(alerts()).toHaveLength(1));
    const [message] = alerts();
    const alert = JSON.parse(message!.body.toString());
    expect(alert).toMatchObject({ deviceId: DEVICE, pumpId: 'pump-9', modelVersion: 'v2', suppressedSinceLast: 0 });
    expect(alert.score).toBeGreaterThan(alert.threshold);
    expect(alert.topFeatures[0]).toEqual({ feature: 'Pressure', contribution: expect.any(Number) });
    expect(message!.properties).toMatchObject({ type: 'anomaly', pumpId: 'pump-9' });
    // the hub holds the message a moment before the client's send resolves and the agent records it
    await until(() => expect(JSON.parse(t.agent.buffer.getMeta('alerts.sent') ?? '{}')['pump-9']).toMatchObject({ seq: alert.seq }));
    // the gateway reports the pumps it serves (deploy --query finds it by them)
    await until(() => expect(reported().pumps).toContain('pump-9'));
    // the alerted reading itself is marked in SQLite; the suppressed ones are not
    const marks = t.agent.buffer.db.prepare("SELECT seq, alerted_at FROM readings WHERE pump_id = 'pump-9' ORDER BY seq").all() as Array<{ seq: number; alerted_at: number | null }>;
    expect(marks.filter((m) => m.alerted_at !== null).map((m) => m.seq)).toEqual([alert.seq]);
    // sent and suppressed only ever grow: Prometheus counters, not gauges
    const metrics = await (await fetch(`${t.url}/metrics`)).text();
    expect(metrics).toContain('# TYPE pumpwatch_alerts_sent_total counter');
    expect(metrics).toContain('# TYPE pumpwatch_alerts_suppressed_total counter');
    expect(metrics).toMatch(/^pumpwatch_alerts_sent_total [1-9]\d*$/m);
    expect(metrics).toContain('# TYPE pumpwatch_alerts_pending gauge');
  });

  it('reports a model it refuses with the reason, keeping the current one', async () => {
    const v = await refusedOverV2('pump-r', 'v3');
    expect(reported().models['pump-r']).toMatchObject({ version: 'v3', status: 'rejected', ac: 400, av: v, activeVersion: 'v2' });
    expect(reported().models['pump-r'].ad).toMatch(/^rejected: .*answered HTTP 404/);
  });

  it('reports the running model as active again when the cloud goes back to it after a refused one', async () => {
    await refusedOverV2('pump-back', 'v3b');
    const v = hub.updateDesired(DEVICE, MODULE, { models: { 'pump-back': v2 } });
    await until(() => expect(reported().models['pump-back']).toMatchObject({ version: 'v2', status: 'active', ac: 200, av: v, ad: 'active', activeVersion: 'v2' }));
    expect(reported().models['pump-back'].error ?? null).toBeNull(); // a null in a reported patch deletes the property
    expect((await statusModels())['pump-back']).toMatchObject({ version: 'v2', status: 'active', error: null });
  });

  it('refuses a malformed model entry with the field at fault, and keeps the last good entry in force', async () => {
    await makeActive('pump-x', v2);
    const v = hub.updateDesired(DEVICE, MODULE, { models: { 'pump-x': { version: 'v5', url: 'https://example.invalid/m.onnx', sha256: 'not-hex', size: 10 } } });
    await until(() => expect(reported().models['pump-x']).toMatchObject({ version: 'v5', status: 'rejected', ac: 400, av: v }));
    expect(reported().models['pump-x'].ad).toBe('rejected: sha256: expected 64 hex digits');
    expect(t.agent.engine.model('pump-x')?.version).toBe('v2');
    // A field of the wrong type is told as such, not as missing.
    const wrongType = hub.updateDesired(DEVICE, MODULE, { models: { 'pump-x': { version: 'v6', url: 12, sha256: 'ab'.repeat(32), size: 10 } } });
    await until(() => expect(reported().models['pump-x']).toMatchObject({ version: 'v6', status: 'rejected', ac: 400, av: wrongType }));
    expect(reported().models['pump-x'].ad).toBe('rejected: url: expected a URL string, got 12');
    expect(t.agent.engine.model('pump-x')?.version).toBe('v2');
  });

  it('applies twin changes made while the broker was down once it is back, and sends alerts held meanwhile', async () => {
    const lostBefore = Date.now();
    await hub.stopBroker();
    await until(async () => expect(await hubState()).toMatch(/^reconnecting/));
    const spike = { Pressure: 4, Flow: 30, Current: 1.4 };
    await postJson(`${t.url}/readings`, [reading('pump-10', spike)]);
    // The page says the control room has not been told, from the real /status of this agent (the
    // header only said "Cloud: …" of the blob uploads while alerts.pending was 1).
    const status = async () => (await (await fetch(`${t.url}/status`)).json()) as any;
    await until(async () => expect((await status()).alerts.pending).toBe(1));
    const down = await status();
    const since = down.connectivity.hubUnreachableSince as string;
    expect(Date.parse(since)).toBeGreaterThanOrEqual(lostBefore - 1000);
    expect(Date.parse(since)).toBeLessThanOrEqual(Date.now());
    expect(hubSummary(down)).toEqual({ text: `1 alert not yet delivered to the control room: the IoT hub is unreachable since ${fmtClock(since)}`, problem: true });
    const v = hub.updateDesired(DEVICE, MODULE, { models: { default: server.add('v4.onnx', makeModel({ version: 'v4', seed: 4 }), 'v4') }, sync: { intervalSeconds: 20 } });
    await hub.startBroker();

    await until(() => expect(reported().models.default).toMatchObject({ version: 'v4', status: 'active', av: v }));
    expect(reported().sync).toMatchObject({ ac: 200, av: v, value: { intervalSeconds: 20 } });
    expect(t.agent.config.syncIntervalSeconds).toBe(20);
    await until(() => expect(hub.outputs(DEVICE, MODULE, 'alerts').map((m) => JSON.parse(m.body.toString()).pumpId)).toContain('pump-10'));
    expect(await hubState()).toBe('connected');
    await until(async () => expect((await status()).alerts.pending).toBe(0));
    const up = await status();
    expect(up.connectivity.hubUnreachableSince).toBeNull();
    expect(hubSummary(up)).toBeNull();
  });

  it('acknowledges a refused shadow entry of a pump without a model of its own as refused, not as a running shadow', async () => {
    const entry = { ...server.add('s1.onnx', makeModel({ version: 's1' }), 's1'), url: `${server.baseUrl}/models/gone-s1.onnx`, shadow: true };
    const v = hub.updateDesired(DEVICE, MODULE, { models: { 'pump-s': entry } });
    await until(() => expect(reported().models['pump-s']).toMatchObject({ version: 's1', status: 'rejected', ac: 400, av: v, shadow: { version: 's1', status: 'rejected' } }));
    expect(reported().models['pump-s'].ad).toMatch(/^rejected: .*answered HTTP 404/);
  });

  it('deletes a pump from the reported models once its desired entry is deleted', async () => {
    await makeActive('pump-d', v2);
    hub.updateDesired(DEVICE, MODULE, { models: { 'pump-d': null } });
    await until(() => expect(reported().models['pump-d']).toBeUndefined());
    expect((await statusModels())['pump-d']).toBeUndefined();
  });

  it('goes back to the start-up model when models.default is deleted, and clears its acknowledgement', async () => {
    await makeActive('default', server.add('d1.onnx', makeModel({ version: 'd1', seed: 8 }), 'd1'));
    hub.updateDesired(DEVICE, MODULE, { models: { default: null } });
    await until(() => expect(reported().models.default).toMatchObject({ version: 'test-1', status: 'active', activeVersion: 'test-1' }));
    expect(reported().models.default).not.toHaveProperty('ac');
    expect(reported().models.default).not.toHaveProperty('av');
    expect(reported().models.default).not.toHaveProperty('ad');
    expect(t.agent.engine.model('default')?.version).toBe('test-1');
  });

  it('tries a model refused over modelDownloads.maxBytes again once the limit is raised', async () => {
    const entry = server.add('m1.onnx', makeModel({ version: 'm1', seed: 6 }), 'm1');
    const tight = hub.updateDesired(DEVICE, MODULE, { modelDownloads: { maxBytes: 1024 }, models: { 'pump-m': entry } });
    await until(() => expect(reported().models['pump-m']).toMatchObject({ version: 'm1', status: 'rejected', ac: 400, av: tight }));
    expect(reported().models['pump-m'].ad).toMatch(/over the limit of 1024 bytes/);

    hub.updateDesired(DEVICE, MODULE, { modelDownloads: null });
    await until(() => expect(reported().models['pump-m']).toMatchObject({ version: 'm1', status: 'active', ac: 200, ad: 'active' }));
    expect(t.agent.engine.model('pump-m')?.version).toBe('m1');
  });
});
