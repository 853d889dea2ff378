/**
 * Sync's encoder thread on a real SQLite file (and a real Azurite for the fallback): the bytes it
 * produces are the main thread's to the byte (a re-upload after a crash must match), it plans the
 * rows the main-thread planner would, it ends when idle, and a thread that cannot run leaves the
 * sync working on the main thread.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { SyncBatches, type PlanLimits } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { containerClient } from '../../sync/client.js';
import { encodeRawRows } from '../../sync/encoder.js';
import { EncoderThread, EncoderThreadError } from '../../sync/encoder-thread.js';
import { BlobUploader } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';

const T0 = Date.UTC(2026, 10, 23, 9);
const LIMITS: PlanLimits = { maxRows: 400, maxBytes: 40_000, anomalyContextRows: 5 };
const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;

const row = (pumpId: string, i: number): PredictionRow => ({
  pumpId,
  ts: T0 + i * 1000,
  receivedAt: T0 + i * 1000 + 7,
  values: { Pressure: 1 + (i % 7) / 10, Flow: i % 13 === 0 ? null : 30 + (i % 11) / 3 },
  score: i % 5 === 0 ? null : 0.25 + i / 1e4,
  anomaly: i % 5 === 0 ? null : i % 97 === 0,
  modelVersion: i % 5 === 0 ? null : 'm-1',
  imputed: i % 13 === 0,
  unscoredReason: i % 5 === 0 ? 'no model yet' : null,
  ...(i % 97 === 0 ? { contributions: { Pressure: 0.75, Flow: 0.25 } } : {}),
  ...(i % 3 === 0 ? { shadowScore: 0.5, shadowModelVersion: 'm-2' } : {}),
});

let dir: string;
let store: BufferStore;
let threads: EncoderThread[];
const thread = (options: ConstructorParameters<typeof EncoderThread>[1] = {}): EncoderThread => {
  const t = new EncoderThread(store.path, options);
  threads.push(t);
  return t;
};

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-encoder-thread-'));
  store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
  store.open();
  store.appendBatch(Array.from({ length: 1500 }, (_, i) => row(i % 2 === 0 ? 'pump-a' : 'pump-b', i)));
  threads = [];
});
afterEach(() => {
  for (const t of threads) t.close();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('sync encoder thread (real SQLite)', () => {
  it('encodes a planned batch to the same bytes as the main thread, and plans the rows the main-thread planner plans', async () => {
    const batches = new SyncBatches(store);
    const t = thread();
    for (let k = 0; k < 4; k++) {
      const pick = batches.pick(LIMITS)!;
      const onThread = await t.encode({ kind: 'plan', pumpId: pick.pumpId, from: pick.from, bound: pick.bound, maxRows: LIMITS.maxRows, maxBytes: LIMITS.maxBytes, deviceId: 'gw-1' });
      const planned = batches.planWithRows(LIMITS, namer, T0)!;
      expect(onThread).toMatchObject({ firstSeq: planned.batch.firstSeq, lastSeq: planned.batch.lastSeq, rowCount: planned.batch.rowCount });
      const main = await encodeRawRows(planned.rows, 'gw-1');
      expect(onThread!.encoded.sha256).toBe(main.sha256);
      expect(Buffer.compare(onThread!.encoded.body, main.body)).toBe(0);
      const again = await t.encode({ kind: 'range', pumpId: pick.pumpId, firstSeq: planned.batch.firstSeq, lastSeq: planned.batch.lastSeq, deviceId: 'gw-1' });
      expect(again!.encoded.sha256).toBe(main.sha256);
      batches.markUploaded(planned.batch, main.sha256, T0);
    }
  });

  it('answers null for a range with no rows, and ends after idleMs, starting again on the next batch', async () => {
    const t = thread({ idleMs: 100 });
    expect(await t.encode({ kind: 'range', pumpId: 'pump-none', firstSeq: 1, lastSeq: 10, deviceId: 'gw-1' })).toBeNull();
    expect(t.running).toBe(true);
    await vi.waitFor(() => expect(t.running).toBe(false), { timeout: 5_000 });
    expect(await t.encode({ kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 1, deviceId: 'gw-1' })).toMatchObject({ rowCount: 1 });
  });

  it('rejects with EncoderThreadError when the thread cannot run, then rests instead of respawning for every batch', async () => {
    const t = thread({ entry: new URL('file:///nonexistent/encoder-thread-main.js'), restMs: 60_000 });
    const req = { kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 1, deviceId: 'gw-1' } as const;
    const first = await t.encode(req).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(EncoderThreadError);
    expect(first).toMatchObject({ repeat: false, message: expect.stringContaining('the encoder thread failed') as string });
    const second = t.encode(req).catch((e: unknown) => e);
    expect(t.running).toBe(false); // refused without starting a thread
    expect(await second).toMatchObject({ repeat: true });
  });
});

describe('sync without its encoder thread (real Azurite)', () => {
  let az: TestAzurite;
  beforeAll(async () => {
    az = await startTestAzurite();
  });
  afterAll(async () => {
    await az?.dispose();
  });

  it('uploads every row on the main thread when the thread cannot run', async () => {
    const target = { kind: 'connection-string' as const, connectionString: az.connectionString, container: 'no-thread' };
    const w = new SyncWorker({
      buffer: store,
      uploader: () => new BlobUploader(containerClient(target), { createContainer: true }),
      encoderThread: thread({ entry: new URL('file:///nonexistent/encoder-thread-main.js') }),
      deviceId: 'gw-1',
      agentVersion: '0.0.0-test',
      settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 400, batchMaxBytes: 40_000, anomalyContextRows: 5, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000, jitter: 0 } }),
      logger: createLogger('silent'),
      random: () => 0.5,
    });
    const result = await w.runOnce();
    expect(result.failure).toBeNull();
    expect(store.stats().unsynced).toBe(0);
    const blobs = await decodeAllBlobs(containerClient(target));
    const seqs = blobs.flatMap((b) => b.lines.map((l) => l.seq)).sort((x, y) => x - y);
    expect(seqs).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
  });
});
