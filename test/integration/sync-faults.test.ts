/**
 * The sync worker against a real Azurite when things go wrong: a blob of other content under a
 * planned name, the same content already there (a crash after the upload), wrong credentials,
 * a missing container, a throttling service with Retry-After, a restart in the middle of a cycle.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { DEVSTORE_KEY } from '../../agent/azurite.js';
import { createLogger } from '../../agent/logger.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { containerClient, type BlobTarget } from '../../sync/client.js';
import { batchMetadata, decodeBatch, encodeRows, toLine } from '../../sync/encoder.js';
import { besideName, parseReadingsBlobName, readingsBlobName } from '../../sync/layout.js';
import { readAllReadings } from '../../sync/reader.js';
import { BlobUploader, uploaderFor } from '../../sync/uploader.js';
import { SyncWorker, type SyncSettings, type SyncWorkerDeps } from '../../sync/worker.js';
import type { UploadedEvent } from '../../sync/cycle.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';

const DEVICE = 'gw-faults';
const T0 = Date.UTC(2026, 10, 20, 8);
const SLOW_MS = 600_000;
const DAY = 86_400_000;
const SETTINGS: SyncSettings = {
  intervalMs: 60_000,
  maxBytesPerSecond: 0,
  batchMaxRows: 100,
  batchMaxBytes: 1 << 20,
  anomalyContextRows: 10,
  backoff: { initialMs: 1000, maxMs: 8000, slowMs: SLOW_MS, jitter: 0 },
};

let az: TestAzurite;
let dir: string;
let store: BufferStore;
let logs: string[];
let onLog: ((line: string) => void) | null = null;
let events: UploadedEvent[];
let containerNo = 0;
let container: string;

function row(pumpId: string, i: number, anomaly = false): PredictionRow {
  return {
    pumpId,
    ts: T0 + i * 1000,
    receivedAt: T0 + i * 1000,
    values: { Pressure: 1 + (i % 7) / 10, Flow: 30 + (i % 11), Current: null },
    score: anomaly ? 9.5 : 0.25,
    anomaly,
    modelVersion: 'm-3',
    imputed: i % 5 === 0,
    unscoredReason: null,
  };
}

interface WorkerOptions {
  createContainer?: boolean;
  settings?: Partial<SyncSettings>;
  afterReadings?: SyncWorkerDeps['afterReadings'];
  kickFloorMs?: number;
}

function worker(target: BlobTarget, opts: WorkerOptions = {}): SyncWorker {
  return new SyncWorker({
    afterReadings: opts.afterReadings,
    kickFloorMs: opts.kickFloorMs,
    buffer: store,
    uploader: () => uploaderFor({ target, createContainer: opts.createContainer ?? true }),
    deviceId: DEVICE,
    agentVersion: '0.0.0-test',
    settings: () => ({ ...SETTINGS, ...opts.settings }),
    logger: createLogger('debug', {
      write: (line: string) => {
        logs.push(line);
        onLog?.(line);
      },
    }),
    onUploaded: (e) => void events.push(e),
    random: () => 0.5,
  });
}

const target = (name = container): BlobTarget => ({ kind: 'connection-string', connectionString: az.connectionString, container: name });
const WRONG_KEY = DEVSTORE_KEY.replace(/^..../, 'AAAA');
const wrongCredentials = (): BlobTarget => ({ kind: 'connection-string', connectionString: az.connectionString.replace(DEVSTORE_KEY, WRONG_KEY), container });
const allRows = () => store.rowsBySeq(0, Number.MAX_SAFE_INTEGER);

/** Every buffered row is in exactly one blob, as its JSON line. */
async function expectEveryRowOnce(name = container): Promise<void> {
  const lines = (await decodeAllBlobs(az.container(name))).flatMap((b) => b.lines);
  const rows = allRows();
  expect(lines.map((l) => l.seq).sort((a, b) => a - b)).toEqual(rows.map((r) => r.seq));
  const bySeq = new Map(lines.map((l) => [l.seq, l]));
  for (const r of rows) expect(bySeq.get(r.seq)).toEqual(toLine(r, DEVICE, store.bufferId()));
}

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-sync-faults-'));
  store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
  store.open();
  logs = [];
  events = [];
  container = `faults-${++containerNo}`;
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('sync worker faults (real Azurite)', () => {
  it('uploads a batch whose name holds other content beside it, never overwriting that blob, and says so', async () => {
    const seqs = store.appendBatch(Array.from({ length: 50 }, (_, i) => row('pump-a', i)));
    store.appendBatch(Array.from({ length: 30 }, (_, i) => row('pump-b', i)));
    const name = readingsBlobName('pump-a', DEVICE, seqs[0]!, seqs.at(-1)!, T0);
    await az.container(container).createIfNotExists();
    await az.container(container).getBlockBlobClient(name).upload('someone else', 12);

    const w = worker(target());
    const result = await w.runOnce();
    expect(result).toMatchObject({ failure: null, rows: 80 });
    expect((await az.container(container).getBlockBlobClient(name).downloadToBuffer()).toString()).toBe('someone else');
    expect(w.status()).toMatchObject({ failedBatches: 0, uploadedRows: 80 });
    expect(w.health()).toEqual({ ok: true });
    expect(store.stats().unsynced).toBe(0);
    const warned = logs.map((l) => JSON.parse(l) as { msg: string; blob?: string; uploadedAs?: string }).filter((l) => l.msg.startsWith('a blob of other content had this batch'));
    expect(warned).toHaveLength(1);
    expect(warned[0]!.blob).toBe(name);
    expect(warned[0]!.uploadedAs).toMatch(new RegExp(`^${name.replace('.jsonl.gz', '')}~[0-9a-f]{12}\\.jsonl\\.gz$`));
    expect(parseReadingsBlobName(warned[0]!.uploadedAs!)).toMatchObject({ pumpId: 'pump-a', deviceId: DEVICE, firstSeq: seqs[0], lastSeq: seqs.at(-1) });
    const beside = await az.container(container).getBlockBlobClient(warned[0]!.uploadedAs!).downloadToBuffer();
    expect((await decodeBatch(beside, warned[0]!.uploadedAs!)).map((l) => l.seq)).toEqual(seqs);
  });

  it('reports a batch as a conflict only when the name beside its own holds other content too, and never overwrites either', async () => {
    store.appendBatch(Array.from({ length: 40 }, (_, i) => row('pump-a', i)));
    const w = worker(target());
    const batch = w.batches.next({ maxRows: 100, maxBytes: 1 << 20, anomalyContextRows: 0 }, (p, a, b, ts) => readingsBlobName(p, DEVICE, a, b, ts), T0)!;
    const encoded = await encodeRows(w.batches.rows(batch), DEVICE, store.bufferId());
    const beside = besideName(batch.blobName, encoded.sha256);
    await az.container(container).createIfNotExists();
    for (const taken of [batch.blobName, beside]) await az.container(container).getBlockBlobClient(taken).upload('someone else', 12);

    const result = await w.runOnce();
    expect(result.failure).toBeNull();
    expect(w.status()).toMatchObject({ failedBatches: 1 });
    expect(w.status().lastError).toMatch(new RegExp(`${beside.replace(/[.~]/g, '\\$&')}.*already exists with different content.*neither is overwritten`));
    expect(w.health()).toMatchObject({ ok: false });
    for (const taken of [batch.blobName, beside]) expect((await az.container(container).getBlockBlobClient(taken).downloadToBuffer()).toString()).toBe('someone else');
    expect(store.stats().unsynced).toBe(40);

    // Someone moves the blob away, as the message says; the agent's next start tries the batch again.
    await az.container(container).getBlockBlobClient(beside).delete();
    const restarted = worker(target());
    restarted.start();
    await vi.waitFor(() => expect(store.stats().unsynced).toBe(0), { timeout: 10_000 });
    await restarted.stop();
    expect(restarted.health()).toEqual({ ok: true });
    expect(logs.join('')).toContain('1 batch(es) that could not be uploaded before are tried again');
    const uploaded = await az.container(container).getBlockBlobClient(beside).downloadToBuffer();
    expect((await decodeBatch(uploaded, beside)).map((l) => l.seq)).toEqual(w.batches.rows(batch).map((r) => r.seq));
  });

  it('keeps every reading of a device whose buffer started again at sequence 1 (a replaced data volume), on another day or the same', async () => {
    const w1 = worker(target());
    const firstLife = store.appendBatch(Array.from({ length: 60 }, (_, i) => row('pump-a', i)));
    expect((await w1.runOnce()).failure).toBeNull();
    // The volume is replaced: a new buffer file under the same device id numbers its rows from 1 again.
    store.close();
    rmSync(join(dir, 'buffer.sqlite'), { force: true });
    for (const suffix of ['-wal', '-shm']) rmSync(join(dir, `buffer.sqlite${suffix}`), { force: true });
    store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
    store.open();
    const sameDay = store.appendBatch(Array.from({ length: 60 }, (_, i) => row('pump-a', 1_000 + i)));
    store.appendBatch(Array.from({ length: 60 }, (_, i) => row('pump-a', DAY / 1000 + i)));
    expect(sameDay[0]).toBe(firstLife[0]); // the numbers are reused
    const w2 = worker(target());
    expect((await w2.runOnce()).failure).toBeNull();
    expect(store.stats().unsynced).toBe(0);
    const read = await readAllReadings(az.container(container), { pumpId: 'pump-a', from: T0 - DAY, to: T0 + 3 * DAY });
    expect(read).toHaveLength(180);
    expect(read.map((l) => Date.parse(l.ts))).toEqual([...Array.from({ length: 60 }, (_, i) => T0 + i * 1000), ...Array.from({ length: 60 }, (_, i) => T0 + (1_000 + i) * 1000), ...Array.from({ length: 60 }, (_, i) => T0 + DAY + i * 1000)]);
  });

  it('marks each buffer file\'s lines with its own id, so a consumer keeps both lives\' readings of a seq even at the same time, and still drops a blob read twice', async () => {
    const firstId = store.bufferId();
    expect(firstId).toMatch(/^[0-9a-f]{16}$/);
    store.appendBatch(Array.from({ length: 30 }, (_, i) => row('pump-a', i)));
    expect((await worker(target()).runOnce()).failure).toBeNull();
    // The buffer file is deleted and made again under the same device id: the same seq numbers,
    // and (a sender replaying the same clock) the same times, for other readings.
    store.close();
    for (const suffix of ['', '-wal', '-shm']) rmSync(join(dir, `buffer.sqlite${suffix}`), { force: true });
    store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
    store.open();
    const secondId = store.bufferId();
    expect(secondId).not.toBe(firstId);
    store.appendBatch(Array.from({ length: 30 }, (_, i) => ({ ...row('pump-a', i), values: { Pressure: 7, Flow: i, Current: 2 } })));
    expect((await worker(target()).runOnce()).failure).toBeNull();

    const blobs = await decodeAllBlobs(az.container(container));
    expect(blobs).toHaveLength(2); // the second life's batch went beside the first one's name
    expect(blobs.map((b) => b.metadata.bufferid).sort()).toEqual([firstId, secondId].sort());
    for (const b of blobs) expect(b.lines.every((l) => l.bufferId === b.metadata.bufferid)).toBe(true);
    const read = await readAllReadings(az.container(container), { pumpId: 'pump-a', from: T0, to: T0 + DAY });
    expect(read).toHaveLength(60);
    expect(read.filter((l) => l.seq === 1).map((l) => [l.bufferId, l.ts, l.values.Pressure]).sort()).toEqual(
      [[firstId, new Date(T0).toISOString(), 1], [secondId, new Date(T0).toISOString(), 7]].sort(),
    );

    // A true duplicate (the same buffer's batch uploaded again under another name) is read once.
    const copy = blobs.find((b) => b.metadata.bufferid === secondId)!;
    const body = await az.container(container).getBlockBlobClient(copy.name).downloadToBuffer();
    const again = besideName(readingsBlobName('pump-a', DEVICE, 1, 30, T0), 'c0ffeec0ffee');
    await az.container(container).getBlockBlobClient(again).upload(body, body.length, { metadata: copy.metadata });
    expect(await readAllReadings(az.container(container), { pumpId: 'pump-a', from: T0, to: T0 + DAY })).toHaveLength(60);
  });

  it('counts a blob that already holds the same rows as uploaded (a crash after the upload) and adds nothing', async () => {
    store.appendBatch(Array.from({ length: 40 }, (_, i) => row('pump-a', i)));
    const w = worker(target());
    const batch = w.batches.next({ maxRows: 100, maxBytes: 1 << 20, anomalyContextRows: 0 }, (p, a, b, ts) => readingsBlobName(p, DEVICE, a, b, ts), T0)!;
    const encoded = await encodeRows(w.batches.rows(batch), DEVICE, store.bufferId());
    const meta = batchMetadata(encoded, { agentVersion: 'x', deviceId: DEVICE, pumpId: 'pump-a', firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, bufferId: store.bufferId() });
    const uploader = new BlobUploader(containerClient(target()), { createContainer: true });
    expect(await uploader.upload({ blobName: batch.blobName, encoded, metadata: meta })).toBe('created');

    const result = await w.runOnce();
    expect(result).toMatchObject({ rows: 40, blobs: 1, failure: null });
    expect(events.map((e) => e.outcome)).toEqual(['already-present']);
    expect(store.stats().unsynced).toBe(0);
    await expectEveryRowOnce();
  });

  it('ends every blob at midnight UTC, so the trainer finds a sparse pump and a replayed old reading by their day', async () => {
    const day0 = Date.UTC(2026, 10, 17);
    const at = (ts: number, i: number): PredictionRow => ({ ...row('pump-a', i), ts, receivedAt: ts });
    // A pump that reports every 5 minutes for three days (one 1 MiB batch would hold all of it),
    // then a reading replayed from five days before, between two live ones.
    const sparse = Array.from({ length: 3 * 288 }, (_, i) => at(day0 + i * 300_000, i));
    store.appendBatch(sparse);
    store.appendBatch([at(day0 + 3 * DAY, 1), at(day0 - 5 * DAY + 42_000, 2), at(day0 + 3 * DAY + 1000, 3)]);
    expect((await worker(target(), { settings: { batchMaxRows: 5000 } }).runOnce()).failure).toBeNull();
    expect(store.stats().unsynced).toBe(0);

    const blobs = await decodeAllBlobs(az.container(container));
    for (const blob of blobs) {
      const day = parseReadingsBlobName(blob.name)!.day;
      for (const line of blob.lines) expect(Math.floor(Date.parse(line.ts) / DAY) * DAY, blob.name).toBe(day);
    }
    expect(blobs).toHaveLength(6); // three days; the fourth day, cut by the replayed reading's day between its two rows
    const all = allRows();
    for (const day of [day0 - 5 * DAY, day0, day0 + DAY, day0 + 2 * DAY, day0 + 3 * DAY]) {
      const got = await readAllReadings(az.container(container), { pumpId: 'pump-a', from: day, to: day + DAY });
      const want = all.filter((r) => r.ts >= day && r.ts < day + DAY).map((r) => r.seq);
      expect(want.length).toBeGreaterThan(0);
      expect(got.map((l) => l.seq).sort((a, b) => a - b)).toEqual(want);
    }
  });

  it('drains completely and exactly once after being stopped at each step of a cycle, again and again', async () => {
    const steps = ['sync-batch-planned', 'sync-batch-uploaded', 'sync-batch-synced'];
    for (let round = 0; round < 9; round++) {
      store.appendBatch(Array.from({ length: 120 }, (_, i) => row(`pump-${round % 3}`, round * 1000 + i, i === 77)));
      // Stop at the n-th time the cycle reaches this step (a stop aborts the upload in flight).
      const step = steps[round % 3]!;
      const nth = 1 + Math.floor(round / 3);
      let seen = 0;
      let stopping: Promise<void> | null = null;
      const w = worker(target(), { settings: { batchMaxRows: 25 } });
      onLog = (line) => {
        if (line.includes(`"event":"${step}"`) && ++seen === nth) stopping ??= w.stop();
      };
      w.start();
      await w.runOnce();
      await (stopping ?? w.stop());
      onLog = null;
      // an agent restart: the same file opened again
      store.close();
      store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
      store.open();
    }
    expect(store.stats().unsynced).toBeGreaterThan(0);
    // The drain retries a failure that heals, as the running worker does: on a loaded machine a
    // kept-alive socket that Azurite closes as it is reused answers "socket hang up" once in a while.
    const drain = worker(target(), { settings: { batchMaxRows: 25 } });
    let result = await drain.runOnce();
    for (let retry = 0; result.failure?.heals === true && retry < 3; retry++) result = await drain.runOnce();
    expect(result.failure).toBeNull();
    expect(store.stats().unsynced).toBe(0);
    await expectEveryRowOnce();
  });

  it('reports wrong credentials clearly, never with the key, and retries them slowly', async () => {
    store.appendBatch([row('pump-a', 1)]);
    const w = worker(wrongCredentials());
    const result = await w.runOnce();
    expect(result.failure).toMatchObject({ kind: 'unauthorized', heals: false, status: 403 });
    expect(result.nextDelayMs).toBe(SLOW_MS);
    expect(w.status()).toMatchObject({ state: 'blocked', connectivity: 'unauthorized' });
    expect(w.status().lastError).toMatch(/refused the credentials/);
    expect(w.health().ok).toBe(false);
    const everything = JSON.stringify(w.status()) + logs.join('');
    expect(logs.join('')).toMatch(/refused the credentials/);
    expect(everything).not.toContain(WRONG_KEY);
    expect(everything).not.toContain(WRONG_KEY.slice(10, 30));
    expect(store.stats().unsynced).toBe(1);
  });

  it('records no success and no connectivity from a cycle with nothing to upload, and none after wrong credentials', async () => {
    const w = worker(wrongCredentials());
    expect(await w.runOnce()).toMatchObject({ rows: 0, failure: null, nextDelayMs: SETTINGS.intervalMs });
    expect(w.status()).toMatchObject({ state: 'idle', connectivity: 'unknown', lastSuccessAt: null });

    store.appendBatch([row('pump-a', 1)]);
    expect((await w.runOnce()).failure).toMatchObject({ kind: 'unauthorized', heals: false });
    expect(w.status()).toMatchObject({ state: 'blocked', connectivity: 'unauthorized', lastSuccessAt: null });
    expect(w.health().ok).toBe(false);
  });

  it('keeps a failure that needs a person when the next cycle has nothing to send, and still runs kicked cycles', async () => {
    let calls = 0;
    // Labels-like uploads after the readings: the first sends a real request (refused), later ones have nothing to send.
    const afterReadings = async (uploader: BlobUploader): Promise<{ contacted: boolean }> => {
      if (++calls === 1) await uploader.containerClient.getBlockBlobClient('labels/x.json').upload('{}', 2);
      return { contacted: false };
    };
    const w = worker(wrongCredentials(), { afterReadings, kickFloorMs: 0 });
    w.start(); // the first cycle runs at once
    await vi.waitFor(() => expect(w.status().state).toBe('blocked'), { timeout: 10_000 });
    const failedAt = w.status().lastErrorAt;

    expect(await w.runOnce()).toMatchObject({ failure: null, nextDelayMs: SETTINGS.intervalMs });
    expect(calls).toBe(2);
    expect(w.status()).toMatchObject({ state: 'idle', connectivity: 'unauthorized', lastSuccessAt: null, lastErrorAt: failedAt });
    expect(w.status().lastError).toMatch(/refused the credentials/);
    expect(w.health()).toMatchObject({ ok: false, error: expect.stringMatching(/refused the credentials/) });
    expect(logs.join('')).not.toContain('sync works again');

    // idle, not backing off: an anomaly's kick starts a cycle at once (not after the slow pace), which sends and fails again
    store.appendBatch([row('pump-a', 1, true)]);
    w.kick();
    await vi.waitFor(() => expect(w.status().state).toBe('blocked'), { timeout: 10_000 });
    await w.stop();
    expect(w.status()).toMatchObject({ lastSuccessAt: null, connectivity: 'unauthorized' });
    expect(calls).toBe(2);
    expect(store.stats().unsynced).toBe(1);
  });

  it('counts the uploads after the readings as contact only when they sent a request', async () => {
    await az.container(container).createIfNotExists();
    let send = false;
    const afterReadings = async (uploader: BlobUploader): Promise<{ contacted: boolean }> => {
      if (!send) return { contacted: false };
      await uploader.containerClient.getBlockBlobClient('labels/gw-faults/x.json').upload('{}', 2);
      return { contacted: true };
    };
    const w = worker(target(), { afterReadings });
    await w.runOnce();
    expect(w.status()).toMatchObject({ connectivity: 'unknown', lastSuccessAt: null });
    send = true;
    await w.runOnce();
    expect(w.status()).toMatchObject({ state: 'idle', connectivity: 'online', uploadedBlobs: 0 });
    expect(w.status().lastSuccessAt).not.toBeNull();
    expect(await az.container(container).getBlockBlobClient('labels/gw-faults/x.json').exists()).toBe(true);
  });

  it('creates a missing container when the credentials allow it', async () => {
    store.appendBatch([row('pump-a', 1), row('pump-a', 2)]);
    expect(await az.container(container).exists()).toBe(false);
    const result = await worker(target()).runOnce();
    expect(result).toMatchObject({ rows: 2, failure: null });
    await expectEveryRowOnce();
  });

  it('reports a missing container it may not create (container SAS, or creation disabled) and retries slowly', async () => {
    store.appendBatch([row('pump-a', 1)]);
    const viaSas = worker({ kind: 'sas-url', sasUrl: az.containerSasUrl(container) });
    const r1 = await viaSas.runOnce();
    expect(r1.failure).toMatchObject({ kind: 'container-missing', heals: false });
    expect(r1.failure!.message).toMatch(new RegExp(`container "${container}" does not exist and these credentials may not create it`));
    expect(r1.nextDelayMs).toBe(SLOW_MS);
    expect(viaSas.status().connectivity).toBe('container-missing');
    expect(JSON.stringify(viaSas.status()) + logs.join('')).not.toMatch(/sig=(?!\[redacted\])/);

    const disabled = worker(target(), { createContainer: false });
    const r2 = await disabled.runOnce();
    expect(r2.failure?.message).toMatch(/PUMPWATCH_SYNC_CREATE_CONTAINER=0/);
    expect(await az.container(container).exists()).toBe(false);
  });

  it('uploads through a container SAS URL when the container exists', async () => {
    await az.container(container).create();
    store.appendBatch(Array.from({ length: 5 }, (_, i) => row('pump-s', i)));
    const result = await worker({ kind: 'sas-url', sasUrl: az.containerSasUrl(container) }).runOnce();
    expect(result).toMatchObject({ rows: 5, failure: null });
    await expectEveryRowOnce();
  });

  it('waits at least Retry-After when the service throttles, backs off exponentially on server errors, and recovers', async () => {
    const proxy = await faultProxy(az.port);
    try {
      store.appendBatch([row('pump-a', 1)]);
      const viaProxy = az.connectionString.replace(`127.0.0.1:${az.port}`, `127.0.0.1:${proxy.port}`);
      const w = worker({ kind: 'connection-string', connectionString: viaProxy, container });
      proxy.fault = { status: 503, retryAfter: '30' };
      const r1 = await w.runOnce();
      expect(r1.failure).toMatchObject({ kind: 'throttled', heals: true, retryAfterMs: 30_000 });
      expect(r1.nextDelayMs).toBe(30_000);
      expect(w.status().connectivity).toBe('throttled');
      proxy.fault = { status: 500 };
      const delays = [(await w.runOnce()).nextDelayMs, (await w.runOnce()).nextDelayMs, (await w.runOnce()).nextDelayMs, (await w.runOnce()).nextDelayMs];
      // the 2nd to 5th failures in a row: 2 s, 4 s, 8 s, then the 8 s cap (jitter 0 here)
      expect(delays).toEqual([2000, 4000, 8000, 8000]);
      proxy.fault = null;
      expect(await w.runOnce()).toMatchObject({ rows: 1, failure: null, nextDelayMs: SETTINGS.intervalMs });
      expect(w.status()).toMatchObject({ state: 'idle', connectivity: 'online' });
    } finally {
      await proxy.close();
    }
  });
});

describe('Retry-After of the service', () => {
  it('reads it as model downloads do: a negative number is no Retry-After, a fraction of seconds is one, and an hour at most', async () => {
    const proxy = await faultProxy(az.port);
    try {
      store.appendBatch([row('pump-r', 1)]);
      const viaProxy = az.connectionString.replace(`127.0.0.1:${az.port}`, `127.0.0.1:${proxy.port}`);
      const w = worker({ kind: 'connection-string', connectionString: viaProxy, container });
      const seen: Array<number | undefined> = [];
      for (const value of ['-5', '1.5', '86400']) {
        proxy.fault = { status: 503, retryAfter: value };
        seen.push((await w.runOnce()).failure?.retryAfterMs);
      }
      // Before, Date.parse read "-5" as 1 May 2001, already past: 0 ms, as if the service had asked for no wait; and a day was a day.
      expect(seen).toEqual([undefined, 1500, 3_600_000]);
    } finally {
      await proxy.close();
    }
  });
});

/** A loopback proxy in front of Azurite that answers with a chosen error while `fault` is set. */
async function faultProxy(upstreamPort: number): Promise<{ port: number; fault: { status: number; retryAfter?: string } | null; close: () => Promise<void> }> {
  const state: { fault: { status: number; retryAfter?: string } | null } = { fault: null };
  const server: Server = createServer((req, res) => {
    const fault = state.fault;
    if (fault) {
      req.resume();
      res.writeHead(fault.status, fault.retryAfter ? { 'retry-after': fault.retryAfter } : {});
      res.end();
      return;
    }
    const up = request({ host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers: req.headers }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    get fault() {
      return state.fault;
    },
    set fault(f) {
      state.fault = f;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
