/**
 * PUMPWATCH_MODEL_DOWNLOAD_TIMEOUT_SECONDS (README configuration table: "model download timeout";
 * error codes: `PW_MODEL_TIMEOUT` retried with backoff): a model download from a server that takes
 * the request and then sends nothing more is given up after the configured time, said in the log
 * with its code, and the model running goes on scoring. The agent on the local hub (the real
 * azure-iot-device MQTT client) takes the model from its twin, with real model files over a real
 * HTTP server, real onnxruntime sessions and a real SQLite buffer.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';
import { LocalHub } from '../support/local-hub.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

const DEVICE = 'gw-download-timeout';
const MODULE = 'pumpwatch';
let hub: LocalHub;
let server: ModelServer;
let t: TestAgent;
const logLines: Array<Record<string, any>> = [];
const until = <T>(fn: () => T) => vi.waitFor(fn, { timeout: 30_000, interval: 50 });
const reported = () => hub.reported(DEVICE, MODULE) as Record<string, any>;

beforeAll(async () => {
  hub = await LocalHub.start();
  server = await ModelServer.start();
  const cs = hub.addModule(DEVICE, MODULE);
  hub.updateDesired(DEVICE, MODULE, { models: { default: server.add('v1.onnx', makeModel({ version: 'v1', seed: 51 }), 'v1') } });
  t = await startTestAgent(
    { PUMPWATCH_HUB: 'auto', PUMPWATCH_MODULE_CONNECTION_STRING: cs, PUMPWATCH_DEVICE_ID: DEVICE, PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1', PUMPWATCH_MODEL_DOWNLOAD_TIMEOUT_SECONDS: '1' },
    { hubCa: hub.ca, logger: createLogger('warn', { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, any>) }) },
  );
  await until(() => expect(reported().models?.default).toMatchObject({ version: 'v1', status: 'active' }));
});

afterAll(async () => {
  await t?.stop(); // the module client closes before the broker
  await hub?.stop();
  await server?.stop();
});

describe('PUMPWATCH_MODEL_DOWNLOAD_TIMEOUT_SECONDS', () => {
  it('gives up a download that stalls after the configured time with PW_MODEL_TIMEOUT, and keeps scoring with the model running', async () => {
    const stalled = server.add('v2-stalls.onnx', makeModel({ version: 'v2', seed: 52 }), 'v2', { kind: 'hang' });
    hub.updateDesired(DEVICE, MODULE, { models: { default: stalled } });
    // the first request stalls: the agent closes its connection after 1 s (120 s by default) and asks again
    await until(() => expect(server.requests.filter((r) => r.path === '/models/v2-stalls.onnx').length).toBeGreaterThanOrEqual(2));
    const timeouts = logLines.filter((l) => l.code === 'PW_MODEL_TIMEOUT');
    expect(timeouts[0]).toMatchObject({ level: 40, model: 'default', version: 'v2', msg: 'model download attempt failed' });
    expect(timeouts[0]!.reason).toMatch(/^no complete answer from http:\/\/127\.0\.0\.1:\d+\/models\/v2-stalls\.onnx\S* within 1000 ms$/);
    expect(JSON.stringify(logLines)).not.toContain('sig=secret');

    expect(reported().models.default).toMatchObject({ version: 'v2', status: 'downloading', activeVersion: 'v1' });
    const r = await postJson(`${t.url}/readings`, [{ pumpId: 'pump-t', ts: new Date().toISOString(), values: normalValues(rng(5), 0) }]);
    expect(r.json).toMatchObject({ accepted: 1 });
    const [row] = t.agent.buffer.db.prepare("SELECT model_version AS v FROM readings WHERE pump_id = 'pump-t'").all() as Array<{ v: string }>;
    expect(row!.v).toBe('v1');
  });
});
