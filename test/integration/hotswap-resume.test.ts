/**
 * A large model on a slow link that keeps failing: with the agent's own updater and model store,
 * a real HTTP server that cuts its connections part-way (Range support, ETags), real onnxruntime
 * sessions and a real SQLite buffer. Once all attempts of one download are used up, the updater's
 * next round, and an agent started again, resume from the bytes kept in the model store instead
 * of starting from byte 0; bytes that are not the model's (damaged on disk, from a blob replaced
 * since) are never resumed onto, and a server that ignores Range sends the whole file again.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { loadConfig } from '../../agent/config.js';
import { createModelUpdater } from '../../agent/edge/model-updates.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import type { DesiredModel, ModelUpdater } from '../../inference/updater.js';
import { ModelServer } from '../support/model-server.js';
import { makeModel, normalValues, rng } from '../support/models.js';

let dir: string;
let server: ModelServer;
let agent: Agent;
let updater: ModelUpdater | null = null;
const random = rng(91);

function startAgent(): Promise<Agent> {
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  const a = new Agent({ config, logger: createLogger('warn', { write: () => undefined }), defaultModelPath: join(dir, 'bundled.onnx') });
  return a.start().then(() => a);
}

/** The agent's updater; `attempts` requests per download, and the updater's next round `retryMs` later. */
function makeUpdater(attempts: number, retryMs: number): ModelUpdater {
  updater = createModelUpdater(agent, { downloadBackoff: { baseMs: 5, capMs: 10 }, downloadAttempts: attempts, retryBackoff: { baseMs: retryMs, capMs: retryMs } }).updater;
  return updater;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-resume-'));
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'bundled-1' }));
  server = await ModelServer.start();
  agent = await startAgent();
});

afterEach(async () => {
  await updater?.stop();
  updater = null;
});

afterAll(async () => {
  await agent?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 20_000, interval: 20 });
const status = (key: string) => agent.models.status()[key];
const ranges = (name: string) => server.requests.filter((r) => r.path === `/models/${name}`).map((r) => r.range);
const partialOf = (key: string, entry: DesiredModel) => agent.modelStore.downloadPathOf(key, entry);
const filesOf = (key: string) => readdirSync(join(dir, 'data', 'models', key)).sort();

async function scoredBy(pumpId: string): Promise<string | null> {
  const seqs = (await agent.pipeline.ingest([{ pumpId, ts: Date.now(), values: normalValues(random, 0) }], 'test')).seqs;
  return agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion;
}

describe('a model download tried again later', () => {
  it("resumes from the bytes kept when the updater tries again after all of a download's attempts failed, instead of starting from byte 0", async () => {
    const bytes = makeModel({ version: 'ra-1', source: 'pump-ra', seed: 92 });
    const step = Math.ceil(bytes.length / 6);
    // Five connections in a row are cut, each after `step` bytes; each download makes 2 attempts.
    const entry = server.add('ra-1.onnx', bytes, 'ra-1', { kind: 'drip', bytes: step, drops: 5 });
    makeUpdater(2, 50).setDesired({ 'pump-ra': entry });

    await until(() => expect(status('pump-ra')).toMatchObject({ version: 'ra-1', status: 'active', error: null }));
    expect(await scoredBy('pump-ra')).toBe('ra-1');
    // Each request asks for the bytes after the ones already received, across the updater's rounds.
    expect(ranges('ra-1.onnx')).toEqual([null, `bytes=${step}-`, `bytes=${2 * step}-`, `bytes=${3 * step}-`, `bytes=${4 * step}-`, `bytes=${5 * step}-`]);
    // The bytes kept were deleted once the model was stored.
    expect(filesOf('pump-ra').filter((f) => f.includes('.download'))).toEqual([]);
  });

  it('resumes after the agent started again, from the bytes a cut download left in the model store, with If-Range', async () => {
    const bytes = makeModel({ version: 'rb-1', source: 'pump-rb', seed: 93 });
    const step = Math.ceil(bytes.length / 3);
    const entry = server.add('rb-1.onnx', bytes, 'rb-1', { kind: 'drip', bytes: step, drops: 1 });
    makeUpdater(1, 3_600_000).setDesired({ 'pump-rb': entry });
    await until(() => expect(status('pump-rb')?.error).toMatch(/; next attempt in \d+ s$/));
    await updater!.stop();
    updater = null;
    expect(statSync(partialOf('pump-rb', entry)).size).toBe(step);

    await agent.stop();
    agent = await startAgent();
    makeUpdater(1, 3_600_000).setDesired({ 'pump-rb': entry });

    await until(() => expect(status('pump-rb')).toMatchObject({ version: 'rb-1', status: 'active', error: null }));
    expect(await scoredBy('pump-rb')).toBe('rb-1');
    const asked = server.requests.filter((r) => r.path === '/models/rb-1.onnx');
    expect(asked.map((r) => r.range)).toEqual([null, `bytes=${step}-`]);
    // Only for the bytes the server still calls by the ETag they came with.
    expect(asked[1]!.ifRange).toMatch(/^"0x[0-9A-F]{16}"$/);
    expect(existsSync(partialOf('pump-rb', entry))).toBe(false);
  });

  it('takes the whole file again from byte 0 when the server ignores Range (200 instead of 206), and installs the right bytes', async () => {
    const bytes = makeModel({ version: 'rc-1', source: 'pump-rc', seed: 94 });
    const step = Math.ceil(bytes.length / 4);
    const entry = server.add('rc-1.onnx', bytes, 'rc-1', { kind: 'drip', bytes: step, drops: 2, ignoreRange: true });
    makeUpdater(1, 50).setDesired({ 'pump-rc': entry });

    await until(() => expect(status('pump-rc')).toMatchObject({ version: 'rc-1', status: 'active', error: null }));
    expect(await scoredBy('pump-rc')).toBe('rc-1');
    // Asked for the rest each time; answered from byte 0 each time, which replaced the bytes kept.
    expect(ranges('rc-1.onnx')).toEqual([null, `bytes=${step}-`, `bytes=${step}-`]);
  });

  it("never resumes onto bytes that are not the model's: damaged bytes kept on disk are downloaded again from byte 0 and the model installed, not refused", async () => {
    const bytes = makeModel({ version: 'rd-1', source: 'pump-rd', seed: 95 });
    const entry = server.add('rd-1.onnx', bytes, 'rd-1');
    const kept = partialOf('pump-rd', entry);
    mkdirSync(dirname(kept), { recursive: true });
    const third = Math.floor(bytes.length / 3);
    // What the model store holds after a cut download, but its bytes damaged (a power cut, a bad sector).
    writeFileSync(kept, Buffer.alloc(third, 0x55));
    writeFileSync(`${kept}.json`, JSON.stringify({ sha256: entry.sha256, size: entry.size, etag: null, lastModified: null }));
    // And the bytes of an older version's download nobody wants any more.
    const stale = join(dirname(kept), 'rd-0.0123456789abcdef.onnx.download');
    writeFileSync(stale, Buffer.alloc(10, 1));
    writeFileSync(`${stale}.json`, '{}');
    makeUpdater(1, 50).setDesired({ 'pump-rd': entry });

    await until(() => expect(status('pump-rd')).toMatchObject({ version: 'rd-1', status: 'active', error: null }));
    expect(await scoredBy('pump-rd')).toBe('rd-1');
    expect(ranges('rd-1.onnx')).toEqual([`bytes=${third}-`, null]);
    await updater!.idle();
    expect(filesOf('pump-rd').filter((f) => f.includes('.download'))).toEqual([]);
    expect(Buffer.compare(readFileSync(agent.modelStore.pathOf('pump-rd', entry)), Buffer.from(bytes))).toBe(0);
  });

  it('drops bytes kept under another ETag (the blob was written again since) and asks from byte 0', async () => {
    const bytes = makeModel({ version: 're-1', source: 'pump-re', seed: 96 });
    const entry = server.add('re-1.onnx', bytes, 're-1', { kind: 'drip', bytes: 0, drops: 0 });
    const kept = partialOf('pump-re', entry);
    mkdirSync(dirname(kept), { recursive: true });
    const half = Math.floor(bytes.length / 2);
    writeFileSync(kept, Buffer.from(bytes).subarray(0, half));
    writeFileSync(`${kept}.json`, JSON.stringify({ sha256: entry.sha256, size: entry.size, etag: '"0xOLDERVERSION00"', lastModified: null }));
    makeUpdater(1, 50).setDesired({ 'pump-re': entry });

    await until(() => expect(status('pump-re')).toMatchObject({ version: 're-1', status: 'active', error: null }));
    const asked = server.requests.filter((r) => r.path === '/models/re-1.onnx');
    // This server ignores If-Range: its 206 carries another ETag, so the bytes kept are not used.
    expect(asked.map((r) => [r.range, r.ifRange])).toEqual([[`bytes=${half}-`, '"0xOLDERVERSION00"'], [null, undefined]]);
  });
});
