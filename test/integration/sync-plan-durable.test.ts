/**
 * A sync cycle commits each plan without an fsync on the scoring thread and fsyncs the WAL on
 * libuv's pool (BufferStore.syncWal): a real store, the real sync worker, a real Azurite, on the
 * main thread (the steady trickle's path) and on the encoder thread (a drain's). No batch may go up
 * before its plan is durable: a crash then could upload rows under a name the buffer no longer
 * knows, and plan them again under another. Here the WAL's fsync is held back (the real one runs
 * once it is let go) and the container must stay empty until then; a failed fsync uploads nothing.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import type { EncodedOn } from '../../sync/cycle.js';
import { EncoderThread } from '../../sync/encoder-thread.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { recentStartOffMidnight } from '../support/clock.js';

const T0 = recentStartOffMidnight(); // never crosses a UTC midnight, where the sync starts a new blob
const reading = (pumpId: string, i: number): PredictionRow => ({
  pumpId, ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Pressure: i }, score: 0.25, anomaly: false,
  modelVersion: 'm-1', imputed: false, unscoredReason: null,
});
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

let az: TestAzurite;
let containerNo = 0;
beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});

describe.each([
  { on: 'main' as const, threadAboveRows: 1_000_000 },
  { on: 'thread' as const, threadAboveRows: 0 },
])('a plan is durable before its batch goes up (cycle on the $on thread)', ({ on, threadAboveRows }) => {
  let dir: string;
  let store: BufferStore;
  let thread: EncoderThread | undefined;
  let worker: SyncWorker;
  let container: string;
  let encoded: Record<EncodedOn, number>;
  /** Calls of the WAL's fsync that wait for `release`. */
  let held: number;
  let release: (outcome: 'sync' | 'fail') => void;
  /** Holds the fsyncs asked for from now on again. */
  let hold: () => void;

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-plan-durable-'));
    const path = join(dir, 'buffer.sqlite');
    store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    // Four pumps of 30 rows: a steady-state cycle of four blobs.
    store.appendBatch(Array.from({ length: 120 }, (_, i) => reading(`pump-${i % 4}`, i)));
    held = 0;
    let mode: 'hold' | 'sync' | 'fail' = 'hold';
    const waiting: Array<() => void> = [];
    release = (outcome) => {
      mode = outcome;
      for (const go of waiting.splice(0)) go();
    };
    hold = () => {
      mode = 'hold';
    };
    const realSync = store.syncWal.bind(store);
    store.syncWal = async () => {
      held++;
      if (mode === 'hold') await new Promise<void>((go) => waiting.push(go));
      if (mode === 'fail') throw new Error('EIO: i/o error, fsync');
      return realSync();
    };
    thread = on === 'thread' ? new EncoderThread(path, { idleMs: 50 }) : undefined;
    container = `plan-durable-${++containerNo}`;
    encoded = { thread: 0, main: 0 };
    worker = new SyncWorker({
      buffer: store,
      uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true }),
      deviceId: 'gw-durable',
      agentVersion: '0.0.0-test',
      settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 100, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 }, threadAboveRows }),
      logger: createLogger('silent'),
      ...(thread ? { encoderThread: thread } : {}),
      onEncoded: (o) => encoded[o]++,
    });
  });
  afterEach(async () => {
    await worker.stop();
    thread?.close();
    store.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  const blobs = async (): Promise<number> => {
    let n = 0;
    try {
      for await (const _ of az.container(container).listBlobsFlat()) n++;
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err; // the container is made with the first upload
    }
    return n;
  };

  it('plans with its fsync off the scoring thread, and uploads nothing until that fsync is done', async () => {
    const cycle = worker.runOnce();
    await vi.waitFor(() => expect(held).toBeGreaterThan(0), { timeout: 10_000 });
    // The plan is committed (the next one may be planned meanwhile) but not durable: nothing goes up.
    expect((store.db.prepare("SELECT count(*) AS n FROM sync_batches WHERE state = 'planned'").get() as { n: number }).n).toBeGreaterThanOrEqual(1);
    await sleep(500);
    expect(await blobs()).toBe(0);
    expect(store.stats().unsynced).toBe(120);
    release('sync');
    const result = await cycle;
    expect(result.failure).toBeNull();
    expect(encoded[on]).toBe(4);
    expect(held).toBe(4); // one fsync of the WAL per plan, none in the commits themselves
    const up = await decodeAllBlobs(az.container(container));
    expect(up.flatMap((b) => b.lines).length).toBe(120);
    expect(store.stats().unsynced).toBe(0);
  });

  it('a plan whose fsync failed is uploaded by the next cycle only once the WAL is fsynced', async () => {
    const cycle = worker.runOnce();
    await vi.waitFor(() => expect(held).toBeGreaterThan(0), { timeout: 10_000 });
    release('fail');
    expect((await cycle).failure?.message).toContain('fsync');
    expect((store.db.prepare("SELECT count(*) AS n FROM sync_batches WHERE state = 'planned'").get() as { n: number }).n).toBeGreaterThanOrEqual(1);
    hold();
    const heldBefore = held;
    const next = worker.runOnce();
    await vi.waitFor(() => expect(held).toBeGreaterThan(heldBefore), { timeout: 10_000 });
    await sleep(500);
    expect(await blobs()).toBe(0); // the plans left over wait for the fsync too
    release('sync');
    expect((await next).failure).toBeNull();
    expect((await decodeAllBlobs(az.container(container))).flatMap((b) => b.lines).length).toBe(120);
  });

  it('a failed fsync uploads nothing; the plan is uploaded by the next cycle', async () => {
    const cycle = worker.runOnce();
    await vi.waitFor(() => expect(held).toBeGreaterThan(0), { timeout: 10_000 });
    release('fail');
    const result = await cycle;
    expect(result.failure?.message).toContain('fsync');
    expect(await blobs()).toBe(0);
    expect(store.stats().unsynced).toBe(120);
    release('sync');
    expect((await worker.runOnce()).failure).toBeNull();
    expect((await decodeAllBlobs(az.container(container))).flatMap((b) => b.lines).length).toBe(120);
    expect(store.stats().unsynced).toBe(0);
  });
});
