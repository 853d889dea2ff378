/**
 * The life of a desired model entry beyond one swap, with real model files over a real HTTP
 * server, real onnxruntime sessions and a real SQLite buffer: the cloud going back to the running
 * model after a refused one, a hanging download beside other pumps' updates, deleted entries
 * (refused, downloading, `default`), shadows (refused, and whom a default shadow scores), a file
 * whose version is not the entry's, a refusal over a local limit, and what the logs say.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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
let updater: ModelUpdater;
const logLines: Array<Record<string, unknown>> = [];
const random = rng(17);
let t = 0;

function readings(pumpId: string, n: number): Array<{ pumpId: string; ts: number; values: Record<string, number> }> {
  return Array.from({ length: n }, () => ({ pumpId, ts: Date.now(), values: normalValues(random, t++) }));
}

async function ingest(items: unknown[]): Promise<number[]> {
  return (await agent.pipeline.ingest(items, 'test')).seqs;
}

async function desire(models: Record<string, DesiredModel>): Promise<void> {
  updater.setDesired(models);
  await updater.idle();
}

const until = (fn: () => unknown) => vi.waitFor(fn, { timeout: 20_000, interval: 50 });
const status = (key = 'default') => agent.models.status()[key];
const persisted = () => JSON.parse(agent.buffer.getMeta('models.state') ?? '{}') as { live: Record<string, unknown>; refused: Record<string, unknown> };
const missing = (version: string, shadow?: boolean): DesiredModel => ({
  ...server.add(`${version}.onnx`, makeModel({ version, seed: 40 }), version),
  url: `${server.baseUrl}/models/missing-${version}.onnx`,
  ...(shadow ? { shadow } : {}),
});
let pumpA: DesiredModel;
let pumpB: DesiredModel;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-lifecycle-'));
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'bundled-1' }));
  server = await ModelServer.start();
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  const logger = createLogger('warn', { write: (line: string) => void logLines.push(JSON.parse(line) as Record<string, unknown>) });
  agent = new Agent({ config, logger, defaultModelPath: join(dir, 'bundled.onnx') });
  await agent.start();
  updater = createModelUpdater(agent, { downloadBackoff: { baseMs: 5, capMs: 20 }, downloadAttempts: 2, retryBackoff: { baseMs: 3_600_000, capMs: 3_600_000 } }).updater;
  await ingest([...readings('pump-a', 20), ...readings('pump-b', 20), ...readings('pump-c', 20)]);
  pumpA = server.add('pa-1.onnx', makeModel({ version: 'pa-1', source: 'pump-a', seed: 31 }), 'pa-1');
  pumpB = server.add('pb-1.onnx', makeModel({ version: 'pb-1', source: 'pump-b', seed: 32 }), 'pb-1');
});

afterAll(async () => {
  await updater?.stop();
  await agent?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('the life of a desired model entry', () => {
  it('shows the running model as active again, and forgets the refusal, when the cloud goes back to it after a refused one', async () => {
    await desire({ 'pump-a': pumpA });
    const bad = missing('pa-2');
    await desire({ 'pump-a': bad });
    expect(status('pump-a')).toMatchObject({ version: 'pa-2', status: 'rejected', activeVersion: 'pa-1' });

    await desire({ 'pump-a': pumpA });
    expect(status('pump-a')).toMatchObject({ version: 'pa-1', status: 'active', error: null, activeVersion: 'pa-1' });
    expect(persisted().refused['pump-a']).toBeUndefined();
    // the refused version is tried again when the cloud sends it once more
    const asked = server.requests.filter((r) => r.path === '/models/missing-pa-2.onnx').length;
    await desire({ 'pump-a': bad });
    expect(server.requests.filter((r) => r.path === '/models/missing-pa-2.onnx')).toHaveLength(asked + 1);
    await desire({ 'pump-a': pumpA });
    expect(status('pump-a')).toMatchObject({ version: 'pa-1', status: 'active' });
  });

  it("installs a pump's model while another pump's download hangs, and cancels that download when its entry is deleted", async () => {
    const hanging = server.add('pc-hang.onnx', makeModel({ version: 'pc-1', seed: 33 }), 'pc-1', { kind: 'hang' });
    updater.setDesired({ 'pump-a': pumpA, 'pump-c': hanging });
    await until(() => expect(server.hanging).toBe(1));
    updater.setDesired({ 'pump-a': pumpA, 'pump-c': hanging, 'pump-b': pumpB });

    await until(() => expect(status('pump-b')).toMatchObject({ version: 'pb-1', status: 'active' }));
    expect(status('pump-c')).toMatchObject({ version: 'pc-1', status: 'downloading' });
    expect(server.hanging).toBe(1);

    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
    expect(status('pump-c')).toBeUndefined();
    await until(() => expect(server.hanging).toBe(0));
    const seqs = await ingest(readings('pump-c', 1));
    expect(agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion).toBe('bundled-1');
  });

  it('forgets a refused pump entry, its status and its refusal, once the entry is deleted', async () => {
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, 'pump-c': missing('pc-2') });
    expect(status('pump-c')).toMatchObject({ version: 'pc-2', status: 'rejected' });

    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
    expect(status('pump-c')).toBeUndefined();
    expect(persisted().refused['pump-c']).toBeUndefined();
    expect(agent.models.keysInUse()).not.toContain('pump-c');
  });

  it('goes back to the start-up model when the default entry is deleted', async () => {
    const d2 = server.add('d-2.onnx', makeModel({ version: 'd-2', seed: 34 }), 'd-2');
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, default: d2 });
    expect(status()).toMatchObject({ version: 'd-2', status: 'active' });

    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
    expect(status()).toMatchObject({ version: 'bundled-1', status: 'active', error: null, activeVersion: 'bundled-1', origin: join(dir, 'bundled.onnx') });
    expect(persisted().live['default']).toBeUndefined();
    expect(await agent.modelStore.versions('default')).toEqual([]);
    const seqs = await ingest(readings('pump-c', 2));
    expect(agent.buffer.rowsBySeq(seqs[0]!, seqs[1]!).map((r) => r.modelVersion)).toEqual(['bundled-1', 'bundled-1']);
    // the pumps with a model of their own keep it
    expect(status('pump-a')).toMatchObject({ version: 'pa-1', status: 'active' });
  });

  it('shows a shadow entry of a pump without a model of its own as downloading, then rejected, never as a running shadow', async () => {
    const hanging = { ...server.add('pc-sh-hang.onnx', makeModel({ version: 'pc-sh-1', seed: 35 }), 'pc-sh-1', { kind: 'hang' }), shadow: true };
    updater.setDesired({ 'pump-a': pumpA, 'pump-b': pumpB, 'pump-c': hanging });
    await until(() => expect(status('pump-c')).toMatchObject({ version: 'pc-sh-1', status: 'downloading', activeVersion: null, shadow: { status: 'downloading' } }));

    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, 'pump-c': missing('pc-sh-2', true) });
    expect(status('pump-c')).toMatchObject({ version: 'pc-sh-2', status: 'rejected', activeVersion: null, shadow: { version: 'pc-sh-2', status: 'rejected' } });
    expect(status('pump-c')!.error).toMatch(/answered HTTP 404/);
    await until(() => expect(server.hanging).toBe(0));

    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
    expect(status('pump-c')).toBeUndefined();
  });

  it('scores a default shadow only for the pumps the default model scores', async () => {
    const shadow = { ...server.add('d-sh.onnx', makeModel({ version: 'd-sh', seed: 36 }), 'd-sh'), shadow: true };
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, default: shadow });
    expect(status()).toMatchObject({ version: 'bundled-1', status: 'active', shadow: { version: 'd-sh', status: 'shadow' } });

    const seqs = await ingest([...readings('pump-a', 2), ...readings('pump-c', 2)]);
    const rows = agent.buffer.rowsBySeq(seqs[0]!, seqs.at(-1)!);
    expect(rows.map((r) => [r.pumpId, r.modelVersion, r.shadowModelVersion ?? null])).toEqual([
      ['pump-a', 'pa-1', null],
      ['pump-a', 'pa-1', null],
      ['pump-c', 'bundled-1', 'd-sh'],
      ['pump-c', 'bundled-1', 'd-sh'],
    ]);
    expect(rows.filter((r) => r.pumpId === 'pump-c').every((r) => typeof r.shadowScore === 'number')).toBe(true);
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
    expect(status()!.shadow).toBeNull();
  });

  it('refuses a model file whose version is not the one its desired entry names', async () => {
    const entry = server.add('mismatch.onnx', makeModel({ version: 'file-7', seed: 37 }), 'twin-7');
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, 'pump-c': entry });

    expect(status('pump-c')).toMatchObject({ version: 'twin-7', status: 'rejected', activeVersion: null });
    expect(status('pump-c')!.error).toBe('the model file is version "file-7" (its pumpwatch.version metadata), the desired entry says "twin-7"');
    expect(agent.engine.model('pump-c')).toBeUndefined();
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
  });

  it('tries a model refused over the size limit again once the limit is raised', async () => {
    const entry = server.add('pc-big.onnx', makeModel({ version: 'pc-big', seed: 38 }), 'pc-big');
    const limit = agent.config.modelMaxBytes;
    agent.config.modelMaxBytes = 1024; // what a modelDownloads.maxBytes patch does
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, 'pump-c': entry });
    expect(status('pump-c')).toMatchObject({ version: 'pc-big', status: 'rejected' });
    expect(status('pump-c')!.error).toMatch(/over the limit of 1024 bytes/);

    agent.config.modelMaxBytes = limit;
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB, 'pump-c': entry });
    expect(status('pump-c')).toMatchObject({ version: 'pc-big', status: 'active', error: null });
    expect(persisted().refused['pump-c']).toBeUndefined();
  });

  it('names the model key in the warning of each failed download attempt', async () => {
    const busy = server.add('pb-busy.onnx', makeModel({ version: 'pb-2', seed: 39 }), 'pb-2', { kind: 'status', status: 503 });
    await desire({ 'pump-a': pumpA, 'pump-b': busy });

    const attempts = logLines.filter((l) => l.msg === 'model download attempt failed');
    expect(attempts).toHaveLength(1);
    expect(attempts[0]).toMatchObject({ component: 'model-updater', model: 'pump-b', version: 'pb-2', attempt: 1, code: 'PW_MODEL_HTTP_STATUS' });
    expect(status('pump-b')).toMatchObject({ version: 'pb-2', status: 'downloading', activeVersion: 'pb-1' });
  });

  it('warns for each pump whose model goes with its desired entry, naming the pump and the version (a manifest that replaced the desired properties empties them at once)', async () => {
    await desire({ 'pump-a': pumpA, 'pump-b': pumpB });
    expect(status('pump-b')).toMatchObject({ version: 'pb-1', status: 'active' });
    const before = logLines.length;
    await desire({});

    const removed = logLines.slice(before).filter((l) => String(l.msg).startsWith('model removed'));
    expect(removed.map((l) => ({ level: l.level, model: l.model, version: l.version })).sort((a, b) => String(a.model).localeCompare(String(b.model)))).toEqual([
      { level: 40, model: 'pump-a', version: 'pa-1' },
      { level: 40, model: 'pump-b', version: 'pb-1' },
    ]);
    expect(status('pump-a')).toBeUndefined();
    expect(status('pump-b')).toBeUndefined();
  });
});
