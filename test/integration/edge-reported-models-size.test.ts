/**
 * The `models` section of the reported properties stays within IoT Hub's 32 KB too, with the real
 * azure-iot-device MQTT client against the local hub (which refuses, as IoT Hub does, an update
 * that would grow them past it): 100 pumps whose models are refused, each refusal naming a long
 * URL, are all acknowledged, and so is a later settings change. And when the hub does refuse the
 * reported properties, /status and /healthz say so.
 */
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';
import { twinSize } from '../../agent/local-hub/json.js';
import { createLogger, type Logger } from '../../agent/logger.js';
import { Reporter } from '../../agent/edge/reported.js';
import { edgeRuntimeOf } from '../../agent/wiring/edge.js';
import { startHubAgent, type TestAgent } from '../support/agent.js';
import { LocalHub, type JsonObject } from '../support/local-hub.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel } from '../support/models.js';

const DEVICE = 'gw-models';
const MODULE = 'pumpwatch';
const PUMPS = 100; // the default PUMPWATCH_MAX_PUMPS
const VERSION = '20260104-33db560843eb';
let hub: LocalHub;
let server: ModelServer;
let t: TestAgent;
let warn: MockInstance;
let lastModels: number;
const model = makeModel({ version: VERSION });

const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 45_000, interval: 100 });
const pumpId = (i: number) => `station-north-${String(i).padStart(5, '0')}`;
const status = async () => (await (await fetch(`${t.url}/status`)).json()) as Record<string, any>;
const healthz = async () => {
  const res = await fetch(`${t.url}/healthz`);
  return { status: res.status, json: (await res.json()) as Record<string, any> };
};
const warnings = (code: string) => warn.mock.calls.filter(([fields]) => (fields as { code?: string } | undefined)?.code === code);

/**
 * A desired entry whose URL (without its query) is `length` characters, as long as a real storage
 * account's blob URL, on a server that answers 404: the agent refuses the model with a reason that
 * names the URL.
 */
function refusedEntry(pump: string, length: number): { version: string; url: string; sha256: string; size: number } {
  const file = `${pump}/${VERSION}/model.onnx`;
  const folder = 'pumpwatch-models-archive/'.repeat(20).slice(0, length - `${server.baseUrl}/models//${file}`.length);
  const e = server.add(`${folder}/${file}`, model, VERSION, { kind: 'status', status: 404 });
  const url = e.url.split('?')[0]!;
  expect(url).toHaveLength(length);
  return { ...e, url };
}

beforeAll(async () => {
  hub = await LocalHub.start();
  server = await ModelServer.start();
  t = await startHubAgent(hub, hub.addModule(DEVICE, MODULE), DEVICE, { PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1' });
  warn = vi.spyOn((edgeRuntimeOf(t.agent)! as unknown as { log: Logger }).log, 'warn');
  await until(() => expect(reported().models?.default).toMatchObject({ status: 'active' }));
});

afterAll(async () => {
  await t?.stop();
  await server?.stop();
  await hub?.stop();
});

describe('reported models of a gateway whose model downloads are refused', () => {
  it('cuts the reported reason to 200 characters and writes <url> for the URL in ad; /status keeps the reason whole', async () => {
    const v = hub.updateDesired(DEVICE, MODULE, { models: { 'pump-long': refusedEntry('pump-long', 400) } });
    await until(() => expect(reported().models?.['pump-long']).toMatchObject({ version: VERSION, status: 'rejected', ac: 400, av: v }));
    const entry = reported().models['pump-long'];
    expect(Array.from(entry.error as string)).toHaveLength(200);
    expect(entry.error).toMatch(/…$/);
    expect(entry.ad).toMatch(/^rejected: <url> answered HTTP 404/);
    expect(Array.from(entry.ad as string).length).toBeLessThanOrEqual('rejected: '.length + 80);
    expect((await status()).models['pump-long'].error).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/models\/.{350,} answered HTTP 404/);

    hub.updateDesired(DEVICE, MODULE, { models: { 'pump-long': null } });
    await until(() => expect(reported().models).not.toHaveProperty('pump-long'));
  });

  it(`keeps the document under 32 KB with ${PUMPS} refused models: every one is acknowledged, and so is a later settings change`, async () => {
    const models: Record<string, unknown> = {};
    for (let i = 1; i <= PUMPS; i++) models[pumpId(i)] = refusedEntry(pumpId(i), 175);
    lastModels = hub.updateDesired(DEVICE, MODULE, { models });
    const v = lastModels;
    await until(() => {
      const acked = Object.entries(reported().models as Record<string, any>).filter(([, m]) => m.version === VERSION && m.status === 'rejected' && m.ac === 400 && m.av === v);
      expect(acked.map(([k]) => k).sort()).toEqual(Object.keys(models).sort());
    });
    expect(twinSize(hub.reported(DEVICE, MODULE) as JsonObject)).toBeLessThanOrEqual(32 * 1024);
    expect(Buffer.byteLength(JSON.stringify(hub.reported(DEVICE, MODULE)))).toBeLessThanOrEqual(32 * 1024);
    expect(reported().modelsTruncated).toBe(true);
    // the first step sufficed: the reasons left out, each entry's time and description kept
    const one = reported().models[pumpId(1)];
    expect(one).not.toHaveProperty('error');
    expect(one.since).toEqual(expect.any(String));
    expect(one.ad).toMatch(/^rejected: <url> answered HTTP 404/);
    expect((await status()).models[pumpId(1)].error).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/models\/pumpwatch-models-archive\/.* answered HTTP 404/);
    expect(warnings('PW_EDGE_REPORTED_MODELS_TRUNCATED')).toHaveLength(1);

    const v2 = hub.updateDesired(DEVICE, MODULE, { sync: { intervalSeconds: 50 } });
    await until(() => expect(reported().sync).toEqual({ value: { intervalSeconds: 50 }, ac: 200, av: v2, ad: 'applied' }));
    expect(edgeRuntimeOf(t.agent)!.reporter.error()).toBeNull();
    expect((await status()).connectivity.hubReportedError).toBeNull();
    expect(warnings('PW_EDGE_REPORTED_MODELS_TRUNCATED')).toHaveLength(1);
  });

  it('cuts every entry to version, status and acknowledgement in turn, and says so when even that does not fit', () => {
    const runtime = edgeRuntimeOf(t.agent)!;
    const logger = createLogger('silent');
    const error = vi.spyOn(logger, 'error');
    // the agent's own parts, with a budget this document cannot meet
    const reporter = new Reporter({ models: t.agent.models, twinSync: runtime.twinSync, status: t.agent.status, logger, budgetBytes: 4096 });
    const doc = reporter.document();
    expect(doc.modelsTruncated).toBe(true);
    for (let i = 1; i <= PUMPS; i++) {
      expect((doc.models as Record<string, unknown>)[pumpId(i)]).toEqual({
        version: VERSION, status: 'rejected', ac: 400, av: lastModels, error: null, since: null, activeVersion: null, shadow: null, ad: null,
      });
    }
    reporter.document();
    expect(error.mock.calls.filter(([fields]) => (fields as { code?: string }).code === 'PW_EDGE_REPORTED_TOO_LARGE')).toHaveLength(1);
  });

  it('deletes modelsTruncated once the entries fit whole again', async () => {
    const deleted = Object.fromEntries(Array.from({ length: PUMPS }, (_, i) => [pumpId(i + 1), null]));
    hub.updateDesired(DEVICE, MODULE, { models: deleted });
    await until(() => expect(Object.keys(reported().models)).toEqual(['default']));
    expect(reported()).not.toHaveProperty('modelsTruncated');
  });

  it("keeps a shadow's version and status when entries shrink: the acknowledgement may be about it", async () => {
    const live = server.add('s1.onnx', makeModel({ version: 'v1', source: 'pump-s', seed: 3 }), 'v1');
    hub.updateDesired(DEVICE, MODULE, { models: { 'pump-s': live } });
    await until(() => expect(reported().models?.['pump-s']).toMatchObject({ status: 'active', version: 'v1' }));
    const shadow = server.add('s2.onnx', makeModel({ version: 's2', source: 'pump-s', seed: 4 }), 's2', { kind: 'status', status: 404 });
    const v = hub.updateDesired(DEVICE, MODULE, { models: { 'pump-s': { ...shadow, shadow: true } } });
    await until(() => expect(reported().models?.['pump-s']).toMatchObject({ av: v, ac: 400 }));
    const runtime = edgeRuntimeOf(t.agent)!;
    let shrunkPastErrors = 0;
    for (const budgetBytes of [700, 500, 420, 300]) {
      const doc = new Reporter({ models: t.agent.models, twinSync: runtime.twinSync, status: t.agent.status, logger: createLogger('silent'), budgetBytes }).document();
      const entry = (doc.models as Record<string, Record<string, unknown>>)['pump-s']!;
      if (entry.since === null) shrunkPastErrors++;
      // Before: the second step set shadow to null, leaving {version: v1, status: active, ac: 400}.
      expect(entry, `budget ${budgetBytes}`).toMatchObject({ version: 'v1', status: 'active', ac: 400, av: v, shadow: { version: 's2', status: 'rejected' } });
    }
    expect(shrunkPastErrors).toBeGreaterThan(0);
    hub.updateDesired(DEVICE, MODULE, { models: { 'pump-s': null } });
    await until(() => expect(Object.keys(reported().models)).toEqual(['default']));
  });
});

describe('reported properties the hub refuses', () => {
  it('shows the refusal in /status and /healthz while it lasts, and clears both once an update goes through', async () => {
    // A key the agent does not write (an earlier version's, say) fills what its own document leaves of the 32 KB.
    const room = 32 * 1024 - twinSize(hub.reported(DEVICE, MODULE) as JsonObject);
    hub.updateReported(DEVICE, MODULE, { leftover: 'x'.repeat(room - 'leftover'.length - 10) });
    const v = hub.updateDesired(DEVICE, MODULE, { alerts: { minIntervalSeconds: 120 } }); // its acknowledgement grows the document

    await until(async () => expect((await status()).connectivity.hubReportedError).toMatch(/^not sent since .* attempts?\): .*over IoT Hub's limit of 32768 bytes/));
    expect((await status()).connectivity.hub).toMatch(/^connected/);
    const h = await healthz();
    expect(h.status).toBe(503);
    expect(h.json.failing).toContain('hub-reported');
    expect(h.json.checks['hub-reported']).toMatch(/^the connected hub does not take the reported properties .*32768 bytes/);
    expect(reported()).not.toHaveProperty('alerts');
    expect(warn.mock.calls.some(([, msg]) => /^reported properties not sent: .*sent again on the next change and by the periodic state report/.test(String(msg)))).toBe(true);

    hub.updateReported(DEVICE, MODULE, { leftover: null });
    await edgeRuntimeOf(t.agent)!.reporter.flush(); // what the next change or the periodic state report does
    await until(() => expect(reported().alerts).toEqual({ value: { minIntervalSeconds: 120 }, ac: 200, av: v, ad: 'applied' }));
    expect((await status()).connectivity.hubReportedError).toBeNull();
    expect((await healthz()).status).toBe(200);
  });
});
