/**
 * `pumpwatch-trainer refresh-urls` signs a new SAS URL for a model already deployed: the desired
 * entry changes only by its URL (same version, sha256 and size). With the agent's own updater and
 * model store, a real HTTP server (Range support, a response held part-way on purpose), real
 * onnxruntime sessions and a real SQLite buffer: a download running when that happens is not
 * started again from byte 0, a resume after a cut connection asks the new URL for the bytes
 * missing, and a model already active is not downloaded again.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../agent/config.js';
import { createModelUpdater } from '../../agent/edge/model-updates.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import { downloadModel } from '../../inference/download.js';
import type { DesiredModel, ModelUpdater } from '../../inference/updater.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

let dir: string;
let server: ModelServer;
let agent: Agent;
let updater: ModelUpdater;
const random = rng(71);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-url-refresh-'));
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'bundled-1' }));
  server = await ModelServer.start();
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  agent = new Agent({ config, logger: createLogger('warn', { write: () => undefined }), defaultModelPath: join(dir, 'bundled.onnx') });
  await agent.start();
  updater = createModelUpdater(agent, { downloadBackoff: { baseMs: 5, capMs: 20 }, downloadAttempts: 3, retryBackoff: { baseMs: 3_600_000, capMs: 3_600_000 } }).updater;
});

afterAll(async () => {
  await updater?.stop();
  await agent?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const status = (key: string) => agent.models.status()[key];
const requests = (name: string) => server.requests.filter((r) => r.path === `/models/${name}`);
/** The same blob under a new signature, as refresh-urls writes it. */
const resigned = (entry: DesiredModel, sig: string): DesiredModel => ({ ...entry, url: entry.url.replace('sig=secret', `sig=${sig}`) });

async function scoredBy(pumpId: string): Promise<string | null> {
  const seqs = (await agent.pipeline.ingest([{ pumpId, ts: Date.now(), values: normalValues(random, 0) }], 'test')).seqs;
  return agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion;
}

describe('a desired model whose URL alone changes (refresh-urls)', () => {
  it('keeps the download running on the URL it started with, instead of starting again from byte 0', async () => {
    const bytes = makeModel({ version: 'pa-1', source: 'pump-a', seed: 72 });
    const half = Math.floor(bytes.length / 2);
    const entry = server.add('pa-1.onnx', bytes, 'pa-1', { kind: 'gate', bytes: half, then: 'send' });
    updater.setDesired({ 'pump-a': entry });
    await vi.waitFor(() => expect(server.gated('pa-1.onnx')).toBe(true), { timeout: 10_000, interval: 10 });
    expect(status('pump-a')).toMatchObject({ version: 'pa-1', status: 'downloading' });

    updater.setDesired({ 'pump-a': resigned(entry, 'refreshed') }); // half of the bytes are in
    await new Promise((r) => setImmediate(r));
    if (server.gated('pa-1.onnx')) server.open('pa-1.onnx');
    await updater.idle();

    expect(status('pump-a')).toMatchObject({ version: 'pa-1', status: 'active', error: null, activeVersion: 'pa-1' });
    expect(await scoredBy('pump-a')).toBe('pa-1');
    // One request: the bytes already received were not asked for again.
    expect(requests('pa-1.onnx')).toEqual([{ path: '/models/pa-1.onnx', range: null, sig: 'secret' }]);
  });

  it('asks the new URL for the missing bytes only (Range) when the connection of the old one is cut after the change', async () => {
    const bytes = makeModel({ version: 'pb-1', source: 'pump-b', seed: 73 });
    const half = Math.floor(bytes.length / 2);
    const entry = server.add('pb-1.onnx', bytes, 'pb-1', { kind: 'gate', bytes: half, then: 'drop' });
    updater.setDesired({ 'pump-b': entry });
    await vi.waitFor(() => expect(server.gated('pb-1.onnx')).toBe(true), { timeout: 10_000, interval: 10 });

    updater.setDesired({ 'pump-b': resigned(entry, 'refreshed') });
    await new Promise((r) => setImmediate(r));
    if (server.gated('pb-1.onnx')) server.open('pb-1.onnx'); // the old URL's connection is cut half-way
    await updater.idle();

    expect(status('pump-b')).toMatchObject({ version: 'pb-1', status: 'active', error: null });
    expect(await scoredBy('pump-b')).toBe('pb-1');
    expect(requests('pb-1.onnx')).toEqual([
      { path: '/models/pb-1.onnx', range: null, sig: 'secret' },
      { path: '/models/pb-1.onnx', range: `bytes=${half}-`, sig: 'refreshed' },
    ]);
  });

  it('does not download again a model already active, and keeps its status', async () => {
    const entry = server.add('pc-1.onnx', makeModel({ version: 'pc-1', source: 'pump-c', seed: 74 }), 'pc-1');
    updater.setDesired({ 'pump-c': entry });
    await updater.idle();
    const active = status('pump-c');
    expect(active).toMatchObject({ version: 'pc-1', status: 'active' });

    updater.setDesired({ 'pump-c': resigned(entry, 'refreshed') });
    await updater.idle();
    expect(requests('pc-1.onnx')).toHaveLength(1);
    expect(status('pump-c')).toEqual(active);
    expect(await scoredBy('pump-c')).toBe('pc-1');
  });
});

describe('downloadModel with a URL that may change while it runs', () => {
  it('asks the newest URL at once, not counted as an attempt, when the one it used was refused after being replaced', async () => {
    const bytes = makeModel({ version: 'pd-1', source: 'pump-d', seed: 75 });
    // The old URL is refused (403); the refresh came while its request was on the way.
    const old = server.add('pd-old.onnx', bytes, 'pd-1', { kind: 'status', status: 403 });
    const fresh = server.add('pd-1.onnx', bytes, 'pd-1');
    let asked = 0;
    const latestUrl = (): string => (asked++ === 0 ? old.url : fresh.url);
    const got = await downloadModel(old, { maxBytes: 1 << 20, timeoutMs: 10_000, allowInsecure: true, attempts: 1, latestUrl });

    expect(Buffer.compare(Buffer.from(got), Buffer.from(bytes))).toBe(0);
    expect(requests('pd-old.onnx')).toHaveLength(1);
    expect(requests('pd-1.onnx')).toEqual([{ path: '/models/pd-1.onnx', range: null, sig: 'secret' }]);
  });

  it('gives up with the refusal when the URL it used is still the newest', async () => {
    const bytes = makeModel({ version: 'pe-1', source: 'pump-e', seed: 76 });
    const entry = server.add('pe-1.onnx', bytes, 'pe-1', { kind: 'status', status: 403 });
    const err = await downloadModel(entry, { maxBytes: 1 << 20, timeoutMs: 10_000, allowInsecure: true, latestUrl: () => entry.url }).then(
      () => null,
      (e: unknown) => e as { code: string; url: string | null; message: string },
    );
    expect(err).toMatchObject({ code: 'PW_MODEL_HTTP_STATUS', url: entry.url });
    expect(JSON.stringify(err)).not.toContain('sig='); // the failing URL is kept off what a logger serializes
    expect(requests('pe-1.onnx')).toHaveLength(1);
  });
});
