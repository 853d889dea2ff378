/**
 * The sync worker's order and loop against a real Azurite: anomalies with their context before a
 * backlog of normal rows, a new alert during a long drain, the interval and backoff schedule, the
 * kick on an anomaly, and retention of synced rows.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import { freePort } from '../support/ports.js';
import { createLogger } from '../../agent/logger.js';
import { PRIORITY } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import type { BlobTarget } from '../../sync/client.js';
import type { UploadedEvent } from '../../sync/cycle.js';
import { deleteExpiredSynced } from '../../sync/retention.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker, type SyncSettings } from '../../sync/worker.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';

const T0 = Date.UTC(2026, 10, 20, 8);
const SETTINGS: SyncSettings = {
  intervalMs: 60_000,
  maxBytesPerSecond: 0,
  batchMaxRows: 50,
  batchMaxBytes: 1 << 20,
  anomalyContextRows: 10,
  backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000, jitter: 0 },
};

let az: TestAzurite;
let dir: string;
let store: BufferStore;
let events: UploadedEvent[];
let onUploaded: ((e: UploadedEvent) => void) | null;
let containerNo = 0;
let container: string;

const row = (pumpId: string, i: number, anomaly = false, receivedAt = T0 + i * 1000): PredictionRow => ({
  pumpId,
  ts: T0 + i * 1000,
  receivedAt,
  values: { Pressure: 1 + (i % 7) / 10, Flow: 30 + (i % 11) },
  score: anomaly ? 9.5 : 0.25,
  anomaly,
  modelVersion: 'm-1',
  imputed: false,
  unscoredReason: null,
});

function worker(target: BlobTarget, settings: Partial<SyncSettings> = {}, kickFloorMs = 0, clock?: () => number): SyncWorker {
  return new SyncWorker({
    kickFloorMs,
    clock,
    buffer: store,
    uploader: () => uploaderFor({ target, createContainer: true }),
    deviceId: 'gw-order',
    agentVersion: '0.0.0-test',
    settings: () => ({ ...SETTINGS, ...settings }),
    logger: createLogger('silent'),
    onUploaded: (e) => {
      events.push(e);
      onUploaded?.(e);
    },
    random: () => 0.5,
  });
}

const azurite = (): BlobTarget => ({ kind: 'connection-string', connectionString: az.connectionString, container });

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
});
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-sync-worker-'));
  store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 2 ** 30 });
  store.open();
  events = [];
  onUploaded = null;
  container = `order-${++containerNo}`;
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('sync worker order and loop (real Azurite)', () => {
  it('uploads an anomaly with the rows before it ahead of an older backlog of normal rows', async () => {
    store.appendBatch(Array.from({ length: 1000 }, (_, i) => row('pump-a', i)));
    const b = store.appendBatch(Array.from({ length: 30 }, (_, i) => row('pump-b', 2000 + i, i === 29)));
    await worker(azurite()).runOnce();
    const first = events[0]!;
    expect(first.batch).toMatchObject({ pumpId: 'pump-b', priority: PRIORITY.anomalies, firstSeq: b[29 - 10], lastSeq: b[29] });
    expect(events.slice(1).every((e) => e.batch.priority === PRIORITY.bulk)).toBe(true);
    expect(store.stats().unsynced).toBe(0);
  });

  // A 3 000-row backlog encoded on the main thread, or on the encoder thread: the planning ahead differs, and an alert seen while a plan was on its way went
  // two blobs late on the main thread in 1 run of 4 (the plan took it; the one made to overtake
  // took a bulk batch and went first).
  it.each([
    ['', 0, 5000],
    [' after NTP steps the gateway clock an hour back', -3_600_000, 5000],
    [' (encoder thread)', 0, 0],
    [' after NTP steps the gateway clock an hour back (encoder thread)', -3_600_000, 0],
  ])('sends an alert committed during a long drain within the next two blobs%s', async (_, step, threadAboveRows) => {
    store.appendBatch(Array.from({ length: 3000 }, (_, i) => row('pump-a', i)));
    let alertSeq = -1;
    let alertAfter = -1;
    let offset = 0;
    onUploaded = () => {
      if (events.length === 5) {
        offset = step;
        alertSeq = store.appendBatch([row('pump-z', 9000, true)])[0]!;
        alertAfter = events.length;
      }
    };
    await worker(azurite(), { threadAboveRows }, 0, () => Date.now() + offset).runOnce();
    const alertBlob = events.findIndex((e) => e.batch.firstSeq <= alertSeq && e.batch.lastSeq >= alertSeq);
    expect(alertBlob).toBeGreaterThanOrEqual(alertAfter);
    expect(alertBlob - alertAfter).toBeLessThanOrEqual(1);
    expect(events.length).toBe(3000 / 50 + 1);
  });

  it('takes the backlog as it stood when the cycle began: rows committed meanwhile go in the next cycle, one blob per pump', async () => {
    const pumps = ['pump-a', 'pump-b', 'pump-c', 'pump-d'];
    for (const p of pumps) store.appendBatch(Array.from({ length: 50 }, (_, i) => row(p, i)));
    // Live readings while the cycle uploads: three per pump after each blob.
    let live = true;
    let n = 100;
    onUploaded = () => {
      if (!live) return;
      for (const p of pumps) store.appendBatch(Array.from({ length: 3 }, () => row(p, n++)));
    };
    const w = worker(azurite());
    expect(await w.runOnce()).toMatchObject({ rows: 200, blobs: 4 });
    live = false;
    expect(store.stats().unsynced).toBe(4 * 4 * 3);
    expect(await w.runOnce()).toMatchObject({ rows: 48, blobs: 4 });
    expect(events.slice(4).map((e) => e.rows)).toEqual([12, 12, 12, 12]);
    expect(store.stats().unsynced).toBe(0);
  });

  it('leaves an anomaly committed during a cycle for a cycle due the kick floor after this one began, not the interval', async () => {
    for (const p of ['pump-a', 'pump-b']) store.appendBatch(Array.from({ length: 50 }, (_, i) => row(p, i)));
    let alert = -1;
    onUploaded = () => {
      if (alert >= 0) return;
      alert = store.appendBatch([row('pump-z', 500, true)])[0]!;
      w.kick(); // as the agent does on every anomaly it commits: ignored while the cycle runs, remembered
    };
    const w = worker(azurite(), {}, 20_000);
    w.start();
    await vi.waitFor(() => expect(w.status()).toMatchObject({ uploadedRows: 100, state: 'idle' }), { timeout: 10_000 });
    const s = w.status();
    const wait = Date.parse(s.nextAttemptAt!) - Date.parse(s.lastAttemptAt!);
    expect(wait).toBeGreaterThanOrEqual(20_000); // from when the cycle took its horizon, a moment after it began
    expect(wait).toBeLessThan(21_000);
    expect(events.some((e) => e.batch.firstSeq <= alert && e.batch.lastSeq >= alert)).toBe(false);
    await w.stop();
  });

  it('waits for the interval after a cycle that emptied the backlog, and runs at once when kicked', async () => {
    const w = worker(azurite());
    store.appendBatch([row('pump-a', 1)]);
    w.start();
    await vi.waitFor(() => expect(w.status().uploadedRows).toBe(1), { timeout: 10_000 });
    await vi.waitFor(() => expect(w.status().state).toBe('idle'));
    const s = w.status();
    expect(Date.parse(s.nextAttemptAt!) - Date.parse(s.lastAttemptAt!)).toBeGreaterThanOrEqual(SETTINGS.intervalMs);
    store.appendBatch([row('pump-a', 2, true)]);
    w.kick();
    await vi.waitFor(() => expect(w.status().uploadedRows).toBe(2), { timeout: 10_000 });
    await w.stop();
    expect(w.status()).toMatchObject({ state: 'stopped', nextAttemptAt: null });
  });

  it('lets a kick start a cycle no sooner than the floor after the last one began', async () => {
    const w = worker(azurite(), {}, 30_000);
    store.appendBatch([row('pump-a', 1)]);
    w.start();
    await vi.waitFor(() => expect(w.status()).toMatchObject({ uploadedRows: 1, state: 'idle' }), { timeout: 10_000 });
    w.kick();
    const s = w.status();
    const wait = Date.parse(s.nextAttemptAt!) - Date.parse(s.lastAttemptAt!);
    expect(wait).toBeGreaterThanOrEqual(30_000); // kept on the monotonic clock, shown on the wall clock: a millisecond may part them
    expect(wait).toBeLessThan(31_000);
    await w.stop();
  });

  it.each([
    ['back', -3_600_000],
    ['forward', 3_600_000],
  ])('lets a kick start a cycle within the floor after NTP steps the gateway clock an hour %s', async (_, step) => {
    let offset = 0;
    const clock = (): number => Date.now() + offset;
    const w = worker(azurite(), {}, 1000, clock);
    store.appendBatch([row('pump-a', 1)]);
    w.start();
    await vi.waitFor(() => expect(w.status()).toMatchObject({ uploadedRows: 1, state: 'idle' }), { timeout: 10_000 });
    offset = step;
    store.appendBatch([row('pump-a', 2, true)]);
    w.kick();
    expect(Date.parse(w.status().nextAttemptAt!) - clock()).toBeLessThanOrEqual(1000);
    await vi.waitFor(() => expect(w.status().uploadedRows).toBe(2), { timeout: 10_000 });
    await w.stop();
  });

  it('schedules the next attempt by the backoff policy while offline, and a kick does not hurry it', async () => {
    const closedPort = await freePort();
    const offline = az.connectionString.replace(`127.0.0.1:${az.port}`, `127.0.0.1:${closedPort}`);
    const w = worker({ kind: 'connection-string', connectionString: offline, container });
    store.appendBatch([row('pump-a', 1)]);
    w.start();
    await vi.waitFor(() => expect(w.status().state).toBe('retrying'), { timeout: 10_000 });
    const s = w.status();
    expect(s.connectivity).toBe('offline');
    expect(s.lastError).toMatch(/unreachable \(ECONNREFUSED\)/);
    const wait = Date.parse(s.nextAttemptAt!) - Date.parse(s.lastErrorAt!);
    expect(wait).toBeGreaterThanOrEqual(500); // 1 s with jitter 0.5 taking half off at most
    w.kick();
    expect(w.status().nextAttemptAt).toBe(s.nextAttemptAt);
    await w.stop();
    expect(store.stats().unsynced).toBe(1);
  });

  it('deletes synced rows once they are older than the retention time, and never unsynced ones', async () => {
    store.appendBatch(Array.from({ length: 20 }, (_, i) => row('pump-a', i)));
    const w = worker(azurite());
    await w.runOnce();
    store.appendBatch(Array.from({ length: 5 }, (_, i) => row('pump-a', 100 + i, false, T0 - 86_400_000)));
    const early = await deleteExpiredSynced(w.batches, 72, T0 + 3_600_000);
    expect(early.deleted).toBe(0);
    const { deleted } = await deleteExpiredSynced(w.batches, 72, T0 + 73 * 3_600_000);
    expect(deleted).toBe(20);
    expect(store.stats()).toMatchObject({ rows: 5, unsynced: 5 });
    expect((await decodeAllBlobs(az.container(container))).flatMap((b) => b.lines)).toHaveLength(20);
  });
});
