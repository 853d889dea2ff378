/**
 * Sync's encoder thread reads the buffer file the store has open, and only that one, when the file
 * at the path changes under the agent (deleted, or replaced by an operator's backup): a real store,
 * the real encoder thread, a real Azurite. Before, a thread started in the moment between the file
 * being deleted and the store restoring it (the store notices at its next commit or /healthz)
 * failed to open it, and the thread rested for 10 minutes: every batch after the restore was read
 * and encoded on the scoring thread. A thread started while an operator's file was at the path
 * read that file's rows for batches the store planned in its own file: the blobs held the other
 * file's readings, and the store marked its own rows synced without uploading them.
 */
import { mkdirSync, mkdtempSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { BufferError } from '../../buffer/errors.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import type { EncodedOn } from '../../sync/cycle.js';
import { EncoderThread } from '../../sync/encoder-thread.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { recentStartOffMidnight } from '../support/clock.js';

const T0 = recentStartOffMidnight(); // never crosses a UTC midnight, where the sync starts a new blob

const row = (i: number, values: Record<string, number>): PredictionRow => ({
  pumpId: 'pump-a', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values, score: 0.25, anomaly: false,
  modelVersion: 'm-1', imputed: false, unscoredReason: null,
});
const rows = (from: number, n: number, key = 'Pressure'): PredictionRow[] => Array.from({ length: n }, (_, k) => row(from + k, { [key]: from + k }));

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

let az: TestAzurite;
let containerNo = 0;
let dir: string;
let data: string;
let path: string;
let store: BufferStore;
let thread: EncoderThread;
let worker: SyncWorker;
let container: string;
let encoded: Record<EncodedOn, number>;

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-encoder-file-'));
  data = join(dir, 'data');
  mkdirSync(data);
  path = join(data, 'buffer.sqlite');
  store = new BufferStore({ path, maxBytes: 2 ** 30 });
  store.open();
  // Ends 50 ms after its last batch, so the next cycle starts a new one (as after 30 s idle in the agent).
  thread = new EncoderThread(path, { idleMs: 50 });
  container = `encoder-file-${++containerNo}`;
  encoded = { thread: 0, main: 0 };
  worker = new SyncWorker({
    buffer: store,
    uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true }),
    deviceId: 'gw-file',
    agentVersion: '0.0.0-test',
    // every cycle on the thread, however small
    settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 100, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 }, threadAboveRows: 0 }),
    logger: createLogger('silent'),
    encoderThread: thread,
    onEncoded: (on) => encoded[on]++,
  });
});
afterEach(async () => {
  await worker.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** Appends until the store takes the rows (it refuses with PW_BUFFER_MOVED while it sorts the file out). */
async function appendUntilTaken(batch: PredictionRow[]): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      store.appendBatch(batch);
      return;
    } catch (err) {
      if (!(err instanceof BufferError) || err.code !== 'PW_BUFFER_MOVED') throw err;
      await sleep(20);
    }
  }
  throw new Error('the store never took the rows');
}

/** Uploads the first rows on the thread, then waits for the thread to end (idle), as between cycles in the agent. */
async function uploadedAndIdle(): Promise<void> {
  store.appendBatch(rows(1, 100));
  expect((await worker.runOnce()).failure).toBeNull();
  expect(encoded).toEqual({ thread: 1, main: 0 });
  await vi.waitFor(() => expect(thread.running, 'the encoder thread is still running (it ends 50 ms after its last batch)').toBe(false), { timeout: 60_000, interval: 10 });
}

function removeBufferFiles(): void {
  for (const f of readdirSync(data)) if (f.startsWith('buffer.sqlite')) rmSync(join(data, f));
}

/** Every line uploaded, by seq, with the values it carries. */
async function uploaded(): Promise<Map<number, Array<Record<string, number | null>>>> {
  const bySeq = new Map<number, Array<Record<string, number | null>>>();
  for (const blob of await decodeAllBlobs(az.container(container))) {
    for (const line of blob.lines) bySeq.set(line.seq, [...(bySeq.get(line.seq) ?? []), line.values]);
  }
  return bySeq;
}

describe("sync's encoder thread and the buffer file at the path", () => {
  it('encodes on the thread again once the store restored a deleted file, when a thread had started before the store noticed', async () => {
    await uploadedAndIdle();
    store.appendBatch(rows(101, 100));
    removeBufferFiles();
    // A cycle before the store noticed: the rows are still readable through the store's connection.
    const inWindow = await worker.runOnce();
    expect(inWindow.failure).toBeNull();
    expect(inWindow.rows).toBe(100);
    // The store notices (its commits look at the path at most every 250 ms, so a quick cycle could end
    // before the next look, and the rows below would go into the deleted file: made explicit here),
    // restores the file at the path, and takes the rows.
    expect(store.checkFile()).toBe(false);
    await appendUntilTaken(rows(201, 100));
    const before = { ...encoded };
    const after = await worker.runOnce();
    expect(after).toMatchObject({ rows: 100, failure: null });
    // The batch after the restore is the thread's (before: it rested 10 minutes, and this was the main thread's).
    expect(encoded.main - before.main).toBe(0);
    expect(encoded.thread - before.thread).toBe(1);
    const lines = await uploaded();
    expect([...lines.keys()].sort((a, b) => a - b)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    for (const [seq, values] of lines) expect(values).toEqual([{ Pressure: seq }]);
  });

  it("never uploads another file's rows for batches the store planned in its own, when a thread started while an operator's file was at the path", async () => {
    await uploadedAndIdle();
    store.appendBatch(rows(101, 100));
    // An operator puts another buffer (a backup whose sequence numbers overlap) at the path.
    const other = join(dir, 'backup.sqlite');
    const backup = new BufferStore({ path: other, maxBytes: 2 ** 30 });
    backup.open();
    backup.appendBatch(rows(1, 300, 'Backup'));
    backup.close();
    removeBufferFiles();
    renameSync(other, path);
    const inWindow = await worker.runOnce();
    expect(inWindow).toMatchObject({ rows: 100, failure: null });
    // The store's rows 101..200, marked synced in its file, are the ones in Blob Storage.
    const lines = await uploaded();
    for (let seq = 101; seq <= 200; seq++) expect(lines.get(seq)).toEqual([{ Pressure: seq }]);
    expect(store.checkFile()).toBe(false); // the store notices (as above)
    await appendUntilTaken(rows(301, 10)); // and opens the operator's file
    const before = { ...encoded };
    expect((await worker.runOnce()).failure).toBeNull();
    expect(encoded.main - before.main).toBe(0);
    expect(encoded.thread - before.thread).toBeGreaterThan(0);
    const after = await uploaded();
    expect(after.get(250)).toEqual([{ Backup: 250 }]); // the operator's file's own rows, from that file
  });
});
