/**
 * Sync's encoder thread on a real SQLite file and a real Azurite: the bytes it produces are the
 * main thread's to the byte (a re-upload after a crash must match), it plans the rows the
 * main-thread planner would, it uploads the bytes it holds and sends failures back classified, it
 * ends when idle (never while it holds bytes), and a thread that cannot run, or stops in the middle
 * of a drain, leaves the sync working on the main thread with every row uploaded exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { SyncBatches, type PlanLimits } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { ClassifiedFailure, classifyFailure } from '../../sync/backoff.js';
import { containerClient, type BlobTarget } from '../../sync/client.js';
import type { SyncLogger } from '../../sync/cycle.js';
import { encodeRawRows } from '../../sync/encoder.js';
import { EncoderThread, EncoderThreadError, HeldBody } from '../../sync/encoder-thread.js';
import { BufferReader } from '../../buffer/reader.js';
import { uploaderFor } from '../../sync/uploader.js';
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
  // The buffer's checkpoint thread closes its connection after store.close() returns: retry while it does.
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('sync encoder thread (real SQLite)', () => {
  it('encodes a planned batch to the same bytes as the main thread, and plans the rows the main-thread planner plans', async () => {
    const batches = new SyncBatches(store);
    const t = thread();
    for (let k = 0; k < 4; k++) {
      const pick = batches.pick(LIMITS)!;
      const onThread = await t.encode({ kind: 'plan', pumpId: pick.pumpId, from: pick.from, bound: pick.bound, maxRows: LIMITS.maxRows, maxBytes: LIMITS.maxBytes, deviceId: 'gw-1', hold: false });
      const planned = batches.planWithRows(LIMITS, namer, T0)!;
      expect(onThread).toMatchObject({ firstSeq: planned.batch.firstSeq, lastSeq: planned.batch.lastSeq, rowCount: planned.batch.rowCount });
      const main = await encodeRawRows(planned.rows, 'gw-1');
      expect(onThread!.encoded.sha256).toBe(main.sha256);
      expect(Buffer.compare(onThread!.body as Buffer, main.body)).toBe(0);
      const again = await t.encode({ kind: 'range', pumpId: pick.pumpId, firstSeq: planned.batch.firstSeq, lastSeq: planned.batch.lastSeq, deviceId: 'gw-1', hold: false });
      expect(again!.encoded.sha256).toBe(main.sha256);
      batches.markUploaded(planned.batch, main.sha256, T0);
    }
  });

  it('answers null for a range with no rows, and ends after idleMs, starting again on the next batch', async () => {
    const t = thread({ idleMs: 100 });
    expect(await t.encode({ kind: 'range', pumpId: 'pump-none', firstSeq: 1, lastSeq: 10, deviceId: 'gw-1', hold: false })).toBeNull();
    expect(t.running).toBe(true);
    await vi.waitFor(() => expect(t.running).toBe(false), { timeout: 5_000 });
    expect(await t.encode({ kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 1, deviceId: 'gw-1', hold: false })).toMatchObject({ rowCount: 1 });
  });

  it('holds bytes for an upload to come: no idle end while it holds them; released, it ends', async () => {
    const t = thread({ idleMs: 100 });
    const rows = await t.encode({ kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 99, deviceId: 'gw-1', hold: true });
    expect(rows!.body).toBeInstanceOf(HeldBody);
    await new Promise((r) => setTimeout(r, 400));
    expect(t.running).toBe(true);
    t.release(rows!.body as HeldBody);
    await vi.waitFor(() => expect(t.running).toBe(false), { timeout: 5_000 });
  });

  it('rejects with EncoderThreadError when the thread cannot run, then rests instead of respawning for every batch', async () => {
    const t = thread({ entry: new URL('file:///nonexistent/encoder-thread-main.js'), restMs: 60_000 });
    const req = { kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 1, deviceId: 'gw-1', hold: false } as const;
    const first = await t.encode(req).catch((e: unknown) => e);
    expect(first).toBeInstanceOf(EncoderThreadError);
    expect(first).toMatchObject({ repeat: false, message: expect.stringContaining('the encoder thread failed') as string });
    const second = t.encode(req).catch((e: unknown) => e);
    expect(t.running).toBe(false); // refused without starting a thread
    expect(await second).toMatchObject({ repeat: true });
  });

  it('tries the thread again once its rest is over, though NTP stepped the wall clock back 2 h meanwhile', async () => {
    vi.useFakeTimers({ toFake: ['Date'], shouldAdvanceTime: true });
    try {
      const t = thread({ entry: new URL('file:///nonexistent/encoder-thread-main.js'), restMs: 300 });
      const req = { kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 1, deviceId: 'gw-1', hold: false } as const;
      expect(await t.encode(req).catch((e: unknown) => e)).toMatchObject({ repeat: false });
      vi.setSystemTime(Date.now() - 2 * 3_600_000);
      await new Promise((r) => setTimeout(r, 600)); // twice the rest, on the monotonic clock
      // A new attempt (which fails again: the script is missing), not a refusal while resting: before, it rested 2 h more.
      expect(await t.encode(req).catch((e: unknown) => e)).toMatchObject({ repeat: false, message: expect.stringContaining('the encoder thread failed') as string });
    } finally {
      vi.useRealTimers();
    }
  });
});

const DEVSTORE_KEY = 'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==';
/** Every cycle on the thread, however small (threadAboveRows 0). */
const settings = () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 400, batchMaxBytes: 40_000, anomalyContextRows: 5, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000, jitter: 0 }, threadAboveRows: 0 });

/** A logger that keeps what sync says (for the fallback's warning). */
function recordingLogger(): SyncLogger & { messages: string[] } {
  const messages: string[] = [];
  const log = (_: object, msg: string): void => void messages.push(msg);
  return { messages, debug: log, info: log, warn: log, error: log };
}

/** A sync worker over the test's buffer uploading to `target`; `deps` replaces any of its parts. */
function syncWorker(target: BlobTarget, deps: Partial<ConstructorParameters<typeof SyncWorker>[0]>): SyncWorker {
  return new SyncWorker({
    buffer: store,
    uploader: () => uploaderFor({ target, createContainer: true }),
    deviceId: 'gw-1',
    agentVersion: '0.0.0-test',
    settings,
    logger: createLogger('silent'),
    random: () => 0.5,
    ...deps,
  });
}

async function uploadedSeqs(target: BlobTarget): Promise<number[]> {
  const blobs = await decodeAllBlobs(containerClient(target));
  return blobs.flatMap((b) => b.lines.map((l) => l.seq)).sort((x, y) => x - y);
}

describe('sync uploads from its encoder thread (real Azurite)', () => {
  let az: TestAzurite;
  beforeAll(async () => {
    az = await startTestAzurite();
  });
  afterAll(async () => {
    await az?.dispose();
  });

  it('uploads the bytes it holds (the main thread\'s bytes exactly), and sends a failure back classified, without the key', async () => {
    const target: BlobTarget = { kind: 'connection-string', connectionString: az.connectionString, container: 'held' };
    const t = thread();
    const req = { kind: 'range', pumpId: 'pump-a', firstSeq: 1, lastSeq: 199, deviceId: 'gw-1', hold: true } as const;
    const rows = await t.encode(req);
    const held = rows!.body as HeldBody;
    expect(held).toBeInstanceOf(HeldBody);
    expect(await t.upload(held, { blobName: 'readings/held-1.jsonl.gz', metadata: { sha256: rows!.encoded.sha256 }, spec: { target, createContainer: true } })).toBe('created');
    const reader = new BufferReader(store.path);
    const main = await encodeRawRows(reader.range('pump-a', 1, 199), 'gw-1');
    reader.close();
    const blob = await containerClient(target).getBlobClient('readings/held-1.jsonl.gz').downloadToBuffer();
    expect(Buffer.compare(blob, main.body)).toBe(0);
    expect(held.bytes).toBe(main.body.length);
    // Uploaded once, the bytes are gone from the thread: a second upload of them is refused.
    await expect(t.upload(held, { blobName: 'readings/held-1.jsonl.gz', metadata: {}, spec: { target, createContainer: true } })).rejects.toBeInstanceOf(EncoderThreadError);

    const wrongKey = DEVSTORE_KEY.replace(/^..../, 'AAAA');
    const wrong: BlobTarget = { ...target, connectionString: az.connectionString.replace(DEVSTORE_KEY, wrongKey) };
    const again = await t.encode(req);
    const err = await t.upload(again!.body as HeldBody, { blobName: 'readings/held-2.jsonl.gz', metadata: {}, spec: { target: wrong, createContainer: true } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ClassifiedFailure);
    expect(classifyFailure(err)).toMatchObject({ kind: 'unauthorized', heals: false, status: 403 });
    expect(JSON.stringify(classifyFailure(err))).not.toContain(wrongKey.slice(10, 30));
  });

  it('leaves a cycle of at most threadAboveRows rows to the main thread (no thread started), and a larger backlog to the thread', async () => {
    const target: BlobTarget = { kind: 'connection-string', connectionString: az.connectionString, container: 'by-size' };
    const t = thread();
    const encoded = { thread: 0, main: 0 };
    // 1 500 rows wait (beforeEach): at most 1 500 stays on the main thread, as the settings say
    const w = syncWorker(target, { encoderThread: t, settings: () => ({ ...settings(), threadAboveRows: 1500 }), onEncoded: (on) => void encoded[on]++ });
    expect(await w.runOnce()).toMatchObject({ rows: 1500, failure: null });
    expect(encoded.thread).toBe(0);
    expect(encoded.main).toBeGreaterThan(0);
    expect(t.running).toBe(false);
    // 1 501 waiting: the thread
    store.appendBatch(Array.from({ length: 1501 }, (_, i) => row(i % 2 === 0 ? 'pump-a' : 'pump-b', 2000 + i)));
    const before = encoded.main;
    expect(await w.runOnce()).toMatchObject({ rows: 1501, failure: null });
    expect(encoded.main).toBe(before);
    expect(encoded.thread).toBeGreaterThan(0);
    expect(t.running).toBe(true);
    expect(await uploadedSeqs(target)).toEqual(Array.from({ length: 3001 }, (_, i) => i + 1));
    await w.stop();
  });

  it('a thread stopped in the middle of a drain: the batches it held are encoded again on the main thread, every row uploaded exactly once', async () => {
    const target: BlobTarget = { kind: 'connection-string', connectionString: az.connectionString, container: 'stopped-midway' };
    const t = thread();
    const logger = recordingLogger();
    let uploads = 0;
    const w = syncWorker(target, {
      encoderThread: t,
      logger,
      onUploaded: () => {
        if (++uploads === 2) t.close(); // the next batch's bytes, encoded and held already, go with it
      },
    });
    const result = await w.runOnce();
    expect(result.failure).toBeNull();
    expect(logger.messages).toContain('sync encodes on the main thread: its encoder thread cannot run');
    expect(store.stats().unsynced).toBe(0);
    expect(await uploadedSeqs(target)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
  });
  it('encodes and uploads batches at a large byte cap (4 MiB) on the thread, within its heap limits: no fallback to the main thread', async () => {
    // Normal rows only: an anomaly's batch would split the bulk into small blobs (alerts first).
    store.appendBatch(Array.from({ length: 16_000 }, (_, i) => ({ ...row('pump-big', 2000 + i), anomaly: false, contributions: null })));
    const target: BlobTarget = { kind: 'connection-string', connectionString: az.connectionString, container: 'big-batches' };
    const logger = recordingLogger();
    const w = syncWorker(target, { settings: () => ({ ...settings(), batchMaxRows: 50_000, batchMaxBytes: 4 * 2 ** 20 }), logger });
    try {
      const result = await w.runOnce();
      expect(result.failure).toBeNull();
    } finally {
      await w.stop();
    }
    expect(logger.messages).not.toContain('sync encodes on the main thread: its encoder thread cannot run');
    expect(store.stats().unsynced).toBe(0);
    expect((await uploadedSeqs(target)).length).toBe(17_500);
    const biggest = Math.max(...(await decodeAllBlobs(containerClient(target))).map((b) => b.lines.length));
    expect(biggest).toBeGreaterThan(8_000); // over 2.5 MB of JSON in one blob
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
    const w = syncWorker(target, { encoderThread: thread({ entry: new URL('file:///nonexistent/encoder-thread-main.js') }) });
    const result = await w.runOnce();
    expect(result.failure).toBeNull();
    expect(store.stats().unsynced).toBe(0);
    expect(await uploadedSeqs(target)).toEqual(Array.from({ length: 1500 }, (_, i) => i + 1));
  });
});
