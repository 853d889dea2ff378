/**
 * When a model update is tried again, with real model files over a real HTTP server, real
 * onnxruntime sessions and a real SQLite buffer: a transient failure is retried when its timer
 * fires, and a model the agent could not store (disk full), or whose server certificate is not
 * valid yet by the gateway's clock, is tried again instead of refused.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { Agent } from '../../agent/main.js';
import { downloadModel } from '../../inference/download.js';
import { ModelUpdater, type DesiredModel } from '../../inference/updater.js';
import { startTestAgent, type TestAgent } from '../support/agent.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

let t: TestAgent;
let dir: string;
let server: ModelServer;
let agent: Agent;
let updater: ModelUpdater | null = null;
const random = rng(23);

const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 20_000, interval: 25 });
const status = (key: string) => agent.models.status()[key];
const persisted = () => JSON.parse(agent.buffer.getMeta('models.state') ?? '{}') as { refused: Record<string, unknown> };

/** The agent's updater (as agent/edge/model-updates.ts builds it), one download attempt each time, retries 50 to 100 ms apart. */
function makeUpdater(ca?: string): ModelUpdater {
  return new ModelUpdater({
    manager: agent.models,
    store: agent.modelStore,
    download: (entry, signal) => downloadModel(entry, { maxBytes: 1 << 20, timeoutMs: 10_000, allowInsecure: true, attempts: 1, signal, ca }),
    recent: (key) => new Map([[key, []]]),
    retry: { baseMs: 50, capMs: 100 },
  });
}

beforeAll(async () => {
  server = await ModelServer.start();
  t = await startTestAgent({ PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1' }, { model: makeModel({ version: 'bundled-1' }) });
  agent = t.agent;
  dir = t.dir;
});

afterEach(async () => {
  await updater?.stop();
  updater = null;
});

afterAll(async () => {
  await t?.stop();
  await server?.stop();
});

async function scoredBy(pumpId: string): Promise<string | null> {
  const seqs = (await agent.pipeline.ingest([{ pumpId, ts: Date.now(), values: normalValues(random, 0) }], 'test')).seqs;
  return agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion;
}

describe('trying a model update again', () => {
  it('tries a transient failure again when its retry timer fires', async () => {
    // The timer alone makes the retry due (Node's timers may fire up to 1 ms before performance.now()
    // says their delay has passed, which once left a pump "downloading" for good).
    updater = makeUpdater();
    const entry: DesiredModel = server.add('pr-1.onnx', makeModel({ version: 'pr-1', source: 'pump-r', seed: 51 }), 'pr-1', { kind: 'drop-once', bytes: 100 });
    updater.setDesired({ 'pump-r': entry });
    await until(() => expect(server.requests.filter((r) => r.path === '/models/pr-1.onnx').length).toBeGreaterThanOrEqual(1));

    await until(() => expect(status('pump-r')).toMatchObject({ version: 'pr-1', status: 'active', error: null }));
    expect(server.requests.filter((r) => r.path === '/models/pr-1.onnx').map((r) => r.range)).toEqual([null, null]);
    expect(await scoredBy('pump-r')).toBe('pr-1');
  });

  it('shows a model it cannot store (disk full, a file in the way) as downloading with the reason, never refuses it, and installs it once the store can be written', async () => {
    updater = makeUpdater();
    const blocker = join(dir, 'data', 'models', 'pump-s');
    mkdirSync(join(dir, 'data', 'models'), { recursive: true });
    writeFileSync(blocker, 'not a folder');
    const entry: DesiredModel = server.add('ps-1.onnx', makeModel({ version: 'ps-1', source: 'pump-s', seed: 52 }), 'ps-1');
    updater.setDesired({ 'pump-s': entry });

    await until(() => expect(status('pump-s')?.error).toMatch(/^cannot write model pump-s\/ps-1: .+; next attempt in \d+ s$/));
    expect(status('pump-s')).toMatchObject({ version: 'ps-1', status: 'downloading', activeVersion: null });
    expect(persisted().refused['pump-s']).toBeUndefined();
    expect(await scoredBy('pump-s')).toBe('bundled-1');

    rmSync(blocker);
    await until(() => expect(status('pump-s')).toMatchObject({ version: 'ps-1', status: 'active', error: null }));
    expect(await agent.modelStore.versions('pump-s')).toEqual(['ps-1']);
    expect(await scoredBy('pump-s')).toBe('ps-1');
  });

  it("shows a model whose server certificate is not valid yet by the gateway's clock as downloading, never refuses it, and installs it once the certificate is valid", async () => {
    const early = await ModelServer.start({ certValidFrom: new Date(Date.now() + 24 * 3600 * 1000) });
    try {
      updater = makeUpdater(early.ca!);
      const entry: DesiredModel = early.add('pt-1.onnx', makeModel({ version: 'pt-1', source: 'pump-t', seed: 53 }), 'pt-1');
      updater.setDesired({ 'pump-t': entry });

      await until(() => expect(status('pump-t')?.error).toMatch(/CERT_NOT_YET_VALID \(the server's certificate is not valid yet by this gateway's clock\); next attempt in \d+ s$/));
      expect(status('pump-t')).toMatchObject({ version: 'pt-1', status: 'downloading', activeVersion: null });
      expect(persisted().refused['pump-t']).toBeUndefined();

      await early.useValidCertificate();
      await until(() => expect(status('pump-t')).toMatchObject({ version: 'pt-1', status: 'active', error: null }));
      expect(await scoredBy('pump-t')).toBe('pt-1');
    } finally {
      await updater?.stop();
      await early.stop();
    }
  });

  it('tries a throttled download again no sooner than the Retry-After of the server, and says when', async () => {
    updater = makeUpdater();
    const entry: DesiredModel = server.add('pu-1.onnx', makeModel({ version: 'pu-1', source: 'pump-u', seed: 54 }), 'pu-1', { kind: 'status', status: 503, retryAfter: '600' });
    updater.setDesired({ 'pump-u': entry });

    await until(() => expect(status('pump-u')?.error).toMatch(/answered HTTP 503; next attempt in \d+ s$/));
    expect(status('pump-u')!.error).toMatch(/; next attempt in 600 s$/);
    await new Promise((resolve) => setTimeout(resolve, 300)); // three times the longest backoff of this updater
    expect(server.requests.filter((r) => r.path === '/models/pu-1.onnx')).toHaveLength(1);
  });
});
