/**
 * Model hot-swap with real model files over a real HTTP server, real onnxruntime sessions and a
 * real SQLite buffer, while readings keep flowing through the ingest pipeline: every case checks
 * the outcome, the status and reason the twin would report, and that no reading was lost or failed.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../agent/config.js';
import { createModelUpdater } from '../../agent/edge/model-updates.js';
import { createLogger } from '../../agent/logger.js';
import { Agent } from '../../agent/main.js';
import type { ModelUpdater } from '../../inference/updater.js';
import { alwaysNanModel, extraFeatureModel, modelWithoutMetadata, nanBelowModel, slowModel, wrongInputShapeModel } from '../support/broken-models.js';
import { ModelServer, sha256 } from '../support/model-server.js';
import { makeModel, makeModelWithProps, normalValues, rng } from '../support/models.js';

const MAX_BYTES = 64 * 1024;
let dir: string;
let server: ModelServer;
let agent: Agent;
let updater: ModelUpdater;
let feeding = true;
let feeder: Promise<void>;
const totals = { accepted: 0, failed: 0 };
const random = rng(5);
let t = 0;

function makeAgent(): Agent {
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'),
    PUMPWATCH_HTTP_PORT: '0',
    PUMPWATCH_SIMULATE: '0',
    PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off',
    PUMPWATCH_LOG_LEVEL: 'silent',
    PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
    PUMPWATCH_MODEL_MAX_BYTES: String(MAX_BYTES),
  });
  return new Agent({ config, logger: createLogger('silent'), defaultModelPath: join(dir, 'bundled.onnx') });
}

let lastTs = 0;
function readings(pumpId: string, n: number, values?: Record<string, number>): Array<{ pumpId: string; ts: number; values: Record<string, number> }> {
  // Each reading a time of its own: two with the same time and values are one resent, not scored again.
  return Array.from({ length: n }, () => ({ pumpId, ts: (lastTs = Math.max(Date.now(), lastTs + 1)), values: values ?? normalValues(random, t++) }));
}

async function ingest(items: unknown[]): Promise<number[]> {
  try {
    const r = await agent.pipeline.ingest(items, 'test');
    totals.accepted += r.accepted;
    return r.seqs;
  } catch (err) {
    totals.failed += items.length;
    throw err;
  }
}

/** Readings flow all the time, from two pumps, while models change. */
async function feed(): Promise<void> {
  while (feeding) {
    await ingest([...readings('pump-a', 20), ...readings('pump-b', 20)]);
    await new Promise((r) => setImmediate(r));
  }
}

async function desire(models: Record<string, object>): Promise<void> {
  updater.setDesired(models as never);
  await updater.idle();
}

const status = (key = 'default') => agent.models.status()[key]!;
const versionsOnDisk = (key = 'default') => agent.modelStore.versions(key);
/** The persisted live model of `key` (its file in the store is named by version and sha256). */
const liveModel = (key = 'default') => (JSON.parse(agent.buffer.getMeta('models.state')!) as { live: Record<string, { version: string; sha256: string }> }).live[key]!;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-hotswap-'));
  writeFileSync(join(dir, 'bundled.onnx'), makeModel({ version: 'bundled-1' }));
  server = await ModelServer.start();
  agent = makeAgent();
  await agent.start();
  updater = createModelUpdater(agent, { downloadBackoff: { baseMs: 5, capMs: 20 }, downloadAttempts: 3, retryBackoff: { baseMs: 3_600_000, capMs: 3_600_000 } }).updater;
  await ingest(readings('pump-a', 50));
  feeder = feed();
});

afterAll(async () => {
  feeding = false;
  await feeder?.catch(() => undefined);
  await updater?.stop();
  await agent?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('model hot-swap from the desired models', () => {
  it('downloads, verifies, stores and switches to a good model between two micro-batches', async () => {
    const entry = server.add('v2.onnx', makeModel({ version: 'v2', seed: 11 }), 'v2');
    await desire({ default: entry });

    expect(status()).toMatchObject({ version: 'v2', status: 'active', error: null, activeVersion: 'v2' });
    expect(agent.engine.model('default')?.version).toBe('v2');
    expect(await versionsOnDisk()).toEqual(['v2']);
    const seqs = await ingest(readings('pump-a', 5));
    const rows = agent.buffer.rowsBySeq(seqs[0]!, seqs.at(-1)!);
    expect(rows.every((r) => r.modelVersion === 'v2' && typeof r.score === 'number')).toBe(true);
  });

  it('persists the active model so it survives a restart', () => {
    const state = JSON.parse(agent.buffer.getMeta('models.state')!);
    expect(state.live.default).toMatchObject({ version: 'v2', previous: { kind: 'bundled' } });
  });

  const refusals: Array<[string, () => object, RegExp]> = [
    ['a wrong sha256', () => ({ ...server.add('v3.onnx', makeModel({ version: 'v3', seed: 12 }), 'v3'), sha256: sha256(new Uint8Array([1])) }), /sha256 of the download is [0-9a-f]{64}, the desired entry says/],
    ['a truncated file', () => { const bytes = makeModel({ version: 'v4', seed: 13 }); return server.add('v4.onnx', bytes, 'v4', { kind: 'truncate', bytes: 100 }); }, /downloaded 100 bytes, the desired entry says \d+/],
    ['a file that is not ONNX', () => server.add('v5.onnx', Buffer.from('this is a text file, not a model\n'.repeat(4)), 'v5'), /not an ONNX model|model metadata lacks/],
    ['a model without the contract metadata', () => server.add('v6.onnx', modelWithoutMetadata(), 'v6'), /model metadata lacks "pumpwatch.contract"/],
    ['a model with the wrong input shape', () => server.add('v7.onnx', wrongInputShapeModel('v7'), 'v7'), /input "features" dimension 2 is 5, the metadata says 3/],
    // A model of a later trainer with a rule this agent would not apply: scored without it, its scores would mean something else.
    ['a contract-2 model requiring a rule this agent does not know', () => server.add('later-1.onnx', makeModelWithProps({ version: 'later-1', seed: 19 }, (p) => ({ ...p, 'pumpwatch.contract': '2', 'pumpwatch.requires': [p['pumpwatch.requires'], 'low-suction'].filter(Boolean).join(','), 'pumpwatch.low_suction': '{}' })), 'later-1'), /names a rule this agent does not know: "low-suction" .*; the model needs a newer agent$/],
    ['a model that outputs NaN on recent readings', () => server.add('v8.onnx', alwaysNanModel('v8'), 'v8'), /non-finite scores on \d+ windows of recent readings/],
    ['a model needing a feature the pumps do not send', () => server.add('v9.onnx', extraFeatureModel('v9'), 'v9'), /needs "Vibration", which pump-[ab] does not send/],
    ['a model too slow to score on the main thread', () => server.add('slow.onnx', slowModel('slow-1'), 'slow-1'), /^model took \d+\.\d ms per window on a test batch of \d+ \(at most 20 ms: the agent scores on its main thread/],
    ['a 404', () => ({ ...server.add('v10.onnx', makeModel({ version: 'v10' }), 'v10'), url: `${server.baseUrl}/models/missing.onnx` }), /answered HTTP 404/],
    ['a file over the size limit', () => server.add('v11.onnx', Buffer.alloc(MAX_BYTES + 1, 7), 'v11'), /is \d+ bytes, over the limit of 65536 bytes/],
    ['a download longer than its entry says', () => { const bytes = makeModel({ version: 'v12' }); return server.add('v12.onnx', bytes, 'v12', { kind: 'overflow', extra: 10 }); }, /larger than the \d+ bytes the desired entry states/],
  ];

  for (const [what, entry, reason] of refusals) {
    it(`refuses ${what} with its reason and keeps scoring with the current model`, async () => {
      const e = entry() as { version: string };
      await desire({ default: e });

      expect(status()).toMatchObject({ version: e.version, status: 'rejected', activeVersion: 'v2' });
      expect(status().error).toMatch(reason);
      expect(agent.engine.model('default')?.version).toBe('v2');
      expect(await versionsOnDisk()).toEqual(['v2']);
      const seqs = await ingest(readings('pump-b', 3));
      expect(agent.buffer.rowsBySeq(seqs[0]!, seqs.at(-1)!).map((r) => r.modelVersion)).toEqual(['v2', 'v2', 'v2']);
    });
  }

  it('keeps trying an unreachable URL later, reporting the error, while the current model scores', async () => {
    const e = { ...server.add('v13.onnx', makeModel({ version: 'v13' }), 'v13'), url: 'http://127.0.0.1:1/models/v13.onnx' };
    await desire({ default: e });

    expect(status()).toMatchObject({ version: 'v13', status: 'downloading', activeVersion: 'v2' });
    expect(status().error).toMatch(/ECONNREFUSED; next attempt in \d+ s/);
    expect(agent.engine.model('default')?.version).toBe('v2');
  });

  it('resumes a download cut half-way with a Range request', async () => {
    const bytes = makeModel({ version: 'v14', seed: 14 });
    const e = server.add('v14.onnx', bytes, 'v14', { kind: 'drop-once', bytes: 600 });
    await desire({ default: e });

    expect(status()).toMatchObject({ version: 'v14', status: 'active' });
    expect(server.requests.filter((r) => r.path === '/models/v14.onnx').map((r) => r.range)).toEqual([null, 'bytes=600-']);
    expect(await versionsOnDisk()).toEqual(expect.arrayContaining(['v14', 'v2']));
  });

  it('lets the latest of two quick patches win and never switches to the first', async () => {
    const first = server.add('v15.onnx', makeModel({ version: 'v15', seed: 15 }), 'v15');
    const second = server.add('v16.onnx', makeModel({ version: 'v16', seed: 16 }), 'v16');
    const from = (await ingest(readings('pump-a', 1)))[0]!;
    updater.setDesired({ default: first });
    updater.setDesired({ default: second });
    await updater.idle();
    const to = (await ingest(readings('pump-a', 1)))[0]!;

    expect(status()).toMatchObject({ version: 'v16', status: 'active' });
    expect(agent.buffer.rowsBySeq(from, to).some((r) => r.modelVersion === 'v15')).toBe(false);
    expect((await versionsOnDisk()).sort()).toEqual(['v14', 'v16']);
  });

  it('rolls back to the previous model when the new one gives non-finite scores on live data', async () => {
    const e = server.add('v17.onnx', nanBelowModel('v17'), 'v17');
    await desire({ default: e });
    expect(status()).toMatchObject({ version: 'v17', status: 'active' });

    const seqs = await ingest(readings('pump-a', 3, { Pressure: 0, Flow: 0, Current: 0 }));
    await agent.models.idle();

    expect(status()).toMatchObject({ version: 'v17', status: 'rolled-back', activeVersion: 'v16' });
    expect(status().error).toMatch(/3 of 3 scores were not finite/);
    expect(agent.buffer.rowsBySeq(seqs[0]!, seqs.at(-1)!).every((r) => r.unscoredReason?.includes('non-finite'))).toBe(true);
    const after = await ingest(readings('pump-a', 2));
    expect(agent.buffer.rowsBySeq(after[0]!, after[1]!).map((r) => r.modelVersion)).toEqual(['v16', 'v16']);
    // the same desired entry again (a twin re-read) is not retried
    await desire({ default: e });
    expect(status().status).toBe('rolled-back');
  });

  it('runs a shadow model beside the live one, storing its scores without alerting', async () => {
    const e = { ...server.add('v18.onnx', makeModel({ version: 'v18', seed: 18 }), 'v18'), shadow: true };
    await desire({ default: e });
    const seqs = await ingest(readings('pump-b', 2));

    expect(status()).toMatchObject({ status: 'active', activeVersion: 'v16', shadow: { version: 'v18', status: 'shadow' } });
    const rows = agent.buffer.rowsBySeq(seqs[0]!, seqs[1]!);
    expect(rows.every((r) => r.modelVersion === 'v16' && r.shadowModelVersion === 'v18' && typeof r.shadowScore === 'number')).toBe(true);

    await desire({ default: { ...e, shadow: false } }); // promotion: from the store, no second download
    expect(status()).toMatchObject({ version: 'v18', status: 'active', shadow: null });
    expect(server.requests.filter((r) => r.path === '/models/v18.onnx')).toHaveLength(1);
  });

  it('gives a pump its own model and falls back to default when the entry is removed', async () => {
    const e = server.add('pump-b-1.onnx', makeModel({ version: 'pb-1', source: 'pump-b', seed: 21 }), 'pb-1');
    await desire({ default: { ...server.add('v18b.onnx', makeModel({ version: 'v18', seed: 18 }), 'v18') }, 'pump-b': e });
    const own = await ingest(readings('pump-b', 1));
    expect(agent.buffer.rowsBySeq(own[0]!, own[0]!)[0]!.modelVersion).toBe('pb-1');
    expect(status('pump-b')).toMatchObject({ version: 'pb-1', status: 'active' });

    await desire({ default: { ...server.add('v18c.onnx', makeModel({ version: 'v18', seed: 18 }), 'v18') } });
    const back = await ingest(readings('pump-b', 1));
    expect(agent.buffer.rowsBySeq(back[0]!, back[0]!)[0]!.modelVersion).toBe('v18');
    expect(agent.models.status()['pump-b']).toBeUndefined();
  });

  it('lost no reading and failed none while models changed', () => {
    const db = new Database(join(dir, 'data', 'buffer.sqlite'), { readonly: true });
    try {
      const n = (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
      expect(totals.failed).toBe(0);
      expect(n).toBe(totals.accepted);
    } finally {
      db.close();
    }
  });

  it('comes back on the same models after a restart with no network', async () => {
    feeding = false;
    await feeder;
    await updater.stop();
    await agent.stop();
    await server.stop();
    agent = makeAgent();
    await agent.start();
    updater = createModelUpdater(agent).updater;

    expect(status()).toMatchObject({ version: 'v18', status: 'active' });
    expect(agent.engine.model('default')?.version).toBe('v18');
    expect(existsSync(agent.modelStore.pathOf('default', liveModel()))).toBe(true);
    const seqs = await ingest(readings('pump-a', 1));
    expect(agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion).toBe('v18');
  });

  it('shows a stored model that no longer loads at a restart on /status, with the reason, and scores with the start-up model', async () => {
    const file = agent.modelStore.pathOf('default', liveModel());
    await updater.stop();
    await agent.stop();
    truncateSync(file, 100); // a damaged card, a half-written copy
    agent = makeAgent();
    await agent.start();
    updater = createModelUpdater(agent).updater;

    expect(status()).toMatchObject({ version: 'v18', status: 'rejected', activeVersion: 'bundled-1' });
    expect(status().error).toMatch(/^the stored copy could not be loaded \(.+\); it is downloaded again at the next module twin read, and the start-up default model scores meanwhile$/);
    const seqs = await ingest(readings('pump-a', 1));
    expect(agent.buffer.rowsBySeq(seqs[0]!, seqs[0]!)[0]!.modelVersion).toBe('bundled-1');
  });
});
