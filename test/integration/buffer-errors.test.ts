import { chmodSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncBatches } from '../../buffer/batches.js';
import { BufferError } from '../../buffer/errors.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

/*
 * How the failures are produced, for real:
 * - full disk: SQLite's own `PRAGMA max_page_count` caps the file, so SQLite answers SQLITE_FULL
 *   exactly as on a full disk;
 * - read-only: chmod 0444 on the file (and 0555 on its folder). Tests run as root here, and root
 *   ignores permission bits, so the open runs with the effective uid/gid of `nobody` (seteuid, back
 *   to root right after: better-sqlite3 is synchronous, nothing else runs meanwhile). As a normal
 *   user the chmod alone is enough. A database SQLite was told to keep read-only (`query_only`)
 *   stands for a file system remounted read-only while the agent runs;
 * - cannot open: a path whose folder is a regular file, and a new file in a read-only folder;
 * - corrupt: a text file at the path, and a real database with overwritten pages.
 */

const T0 = Date.UTC(2026, 10, 23, 10);
const NOBODY = 65534;

function reading(i: number): PredictionRow {
  const values: Record<string, number> = {};
  for (let k = 0; k < 10; k++) values[`Sensor_${k}`] = (i * 31 + k) / 7;
  return { pumpId: 'pump-1', ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values, score: 0.2, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null };
}
const batch = (from: number, n: number): PredictionRow[] => Array.from({ length: n }, (_, k) => reading(from + k));

/** Runs `fn` as an unprivileged user, so file permissions apply (root bypasses them). */
function asUnprivileged<T>(fn: () => T): T {
  if (process.getuid?.() !== 0 || !process.seteuid || !process.setegid) return fn();
  process.setegid(NOBODY);
  process.seteuid(NOBODY);
  try {
    return fn();
  } finally {
    process.seteuid(0);
    process.setegid(0);
  }
}

function expectBufferError(fn: () => unknown, code: string, mentions: string): BufferError {
  let thrown: unknown;
  try {
    fn();
  } catch (err) {
    thrown = err;
  }
  expect(thrown, `expected ${code}`).toBeInstanceOf(BufferError);
  const err = thrown as BufferError;
  expect({ code: err.code, message: err.message }).toMatchObject({ code, message: expect.stringContaining(mentions) });
  return err;
}

const count = (store: BufferStore): number => (store.db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;

describe('buffer failures become BufferErrors with stable codes', () => {
  let root: string;
  let dir: string;
  let path: string;
  const stores: BufferStore[] = [];
  const openStore = (maxBytes = 1 << 30): BufferStore => {
    const store = new BufferStore({ path, maxBytes });
    stores.push(store);
    store.open();
    return store;
  };

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'pw-buffer-errors-'));
    chmodSync(root, 0o755); // reachable by the unprivileged user
    dir = join(root, 'data');
    path = join(dir, 'buffer.db');
  });
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
    chmodSync(root, 0o755);
    // Retried as the other buffer tests do (a checkpoint thread that close() gave up waiting for may
    // still hold its files).
    rmSync(root, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('reports a full disk as PW_BUFFER_DISK_FULL, stores nothing of the batch and keeps working', () => {
    const store = openStore();
    store.appendBatch(batch(0, 10));
    const pages = Number(store.db.pragma('page_count', { simple: true }));
    store.db.pragma(`max_page_count = ${pages + 4}`);
    expectBufferError(() => store.appendBatch(batch(10, 5_000)), 'PW_BUFFER_DISK_FULL', path);
    // A buffer that stores nothing is not healthy (/healthz fails) until a commit succeeds again.
    expect(store.health()).toEqual({ ok: false, error: expect.stringMatching(/^PW_BUFFER_DISK_FULL: committing readings: the disk holding .* is full/) });
    store.appendRejected([{ source: 'http', raw: '{}', reason: 'a small refusal still fits', receivedAt: T0 }]);
    expect(store.health().ok).toBe(false); // stored refusals do not say readings commit again
    expect(count(store)).toBe(10);
    expect(store.stats()).toMatchObject({ rows: 10, unsynced: 10 });
    const flood = Array.from({ length: 500 }, (_, k) => ({ source: 'http', raw: 'y'.repeat(5_000), reason: `bad ${k}`, receivedAt: T0 }));
    expectBufferError(() => store.appendRejected(flood), 'PW_BUFFER_DISK_FULL', 'full');
    expect(store.stats().rejected + store.stats().evicted.rejected).toBe(1); // none of the flood (making room may evict the small one)
    expect(store.appendBatch(batch(10, 1))).toEqual([11]); // a small batch still fits
    expect(store.health().ok).toBe(true);
  });

  it('makes room by evicting synced rows when the disk fills below the cap, then commits the batch', () => {
    const store = openStore();
    store.appendBatch(batch(0, 2_000));
    const batches = new SyncBatches(store);
    const limits = { maxRows: 500, maxBytes: 1 << 24, anomalyContextRows: 0 };
    for (let b = batches.next(limits, () => `b${Math.random()}`, T0); b; b = batches.next(limits, () => `b${Math.random()}`, T0)) {
      batches.markUploaded(b, 'a'.repeat(64), T0);
    }
    store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true }))}`);
    // The file may not grow any more: once its free pages are used up, the disk is "full".
    let appended = 0;
    while (store.stats().evicted.synced === 0 && appended < 2_000) {
      const seqs = store.appendBatch(batch(2_000 + appended, 50));
      expect(seqs).toEqual(Array.from({ length: 50 }, (_, k) => 2_001 + appended + k));
      appended += 50;
    }
    const stats = store.stats();
    expect(stats.evicted.synced).toBeGreaterThan(0);
    expect(stats.evicted).toMatchObject({ unsynced: 0, anomalies: 0, rejected: 0 });
    expect(stats).toMatchObject({ rows: count(store), unsynced: appended });
    expect(Number(store.db.pragma('page_count', { simple: true }))).toBeLessThanOrEqual(Number(store.db.pragma('max_page_count', { simple: true })));
  });

  it('keeps the newest readings when the disk fills with unsent ones below the cap: the oldest normal readings go first, anomalies stay', () => {
    const store = openStore();
    const first = batch(0, 2_000).map((r, i) => (i % 100 === 0 ? { ...r, anomaly: true, score: 9 } : r));
    store.appendBatch(first);
    store.db.pragma(`max_page_count = ${Number(store.db.pragma('page_count', { simple: true }))}`);
    let appended = 0;
    while (store.stats().evicted.unsynced === 0 && appended < 4_000) {
      expect(store.appendBatch(batch(2_000 + appended, 50))).toHaveLength(50);
      appended += 50;
    }
    const stats = store.stats();
    expect(stats.evicted.unsynced).toBeGreaterThan(0);
    expect(stats.evicted).toMatchObject({ synced: 0, anomalies: 0 });
    expect(stats).toMatchObject({ rows: count(store), unsynced: count(store) });
    const seqs = (store.db.prepare('SELECT seq FROM readings ORDER BY seq').pluck().all() as number[]);
    expect(seqs.at(-1)).toBe(2_000 + appended); // the newest is kept
    expect(seqs[0]).toBe(1); // the first anomaly (seq 1) outlives the normal readings after it
    expect(seqs[1]).toBeGreaterThan(2);
    // The buffer works; the readings evicted unsent are lost, which /healthz names (degraded).
    const lost = stats.evicted.unsynced;
    expect(store.health()).toEqual({ ok: true, degraded: expect.stringMatching(new RegExp(`^PW_BUFFER_UNSENT_EVICTED: ${lost} reading\\(s\\) evicted before they were uploaded since start \\(${lost} since the buffer was created\\)`)) });
  });

  it('refuses a read-only file in a read-only folder with PW_BUFFER_READONLY', () => {
    openStore().close();
    chmodSync(path, 0o444);
    chmodSync(dir, 0o555);
    expectBufferError(() => asUnprivileged(() => openStore()), 'PW_BUFFER_READONLY', path);
  });

  it('refuses a read-only file in a writable folder at open, not at the first reading', () => {
    openStore().close();
    chmodSync(path, 0o444);
    chmodSync(dir, 0o777);
    expectBufferError(() => asUnprivileged(() => openStore()), 'PW_BUFFER_READONLY', 'read-only');
  });

  it('reports writes to a database that became read-only as PW_BUFFER_READONLY, committing nothing', () => {
    const store = openStore();
    store.appendBatch(batch(0, 3));
    store.db.pragma('query_only = ON');
    expectBufferError(() => store.appendBatch(batch(3, 3)), 'PW_BUFFER_READONLY', path);
    expectBufferError(() => store.setMeta('k', 'v'), 'PW_BUFFER_READONLY', 'saving k');
    expectBufferError(() => new SyncBatches(store).next({ maxRows: 10, maxBytes: 1 << 20, anomalyContextRows: 0 }, () => 'b', T0), 'PW_BUFFER_READONLY', 'planning');
    expect(store.stats()).toMatchObject({ rows: 3, unsynced: 3 });
    expect(store.health()).toEqual({ ok: false, error: expect.stringMatching(/^PW_BUFFER_READONLY: /) });
    store.db.pragma('query_only = OFF'); // the volume is writable again
    store.appendBatch(batch(3, 1));
    expect(store.health()).toEqual({ ok: true });
  });

  it('refuses a path whose folder is a regular file with PW_BUFFER_CANNOT_OPEN', () => {
    writeFileSync(join(root, 'not-a-folder'), 'plain file');
    path = join(root, 'not-a-folder', 'buffer.db');
    expectBufferError(() => openStore(), 'PW_BUFFER_CANNOT_OPEN', path);
  });

  it('refuses to create a buffer in a folder it may not write with PW_BUFFER_CANNOT_OPEN', () => {
    mkdirSync(dir, { mode: 0o555 });
    chmodSync(dir, 0o555);
    expectBufferError(() => asUnprivileged(() => openStore()), 'PW_BUFFER_CANNOT_OPEN', path);
  });

  it('refuses a file that is not a database with PW_BUFFER_CORRUPT and leaves it as it was', () => {
    mkdirSync(dir);
    const text = 'timestamp,Pressure\n2026-11-23 10:00:00,0.38\n'.repeat(200);
    writeFileSync(path, text);
    expectBufferError(() => openStore(), 'PW_BUFFER_CORRUPT', path);
    expect(readFileSync(path, 'utf8')).toBe(text);
  });

  it('refuses a database whose pages were overwritten with PW_BUFFER_CORRUPT', async () => {
    const store = openStore();
    store.appendBatch(batch(0, 3_000));
    store.close();
    // The last connection to close checkpoints the log into the file: damage written before then
    // could be overwritten by the good pages of the log (when close() did not wait for the
    // checkpoint thread's connection, the test opened the file 2–3 times in 10). close() waits now.
    expect(store.checkpointsEnded()).toBe(true);
    const fd = openSync(path, 'r+');
    // Every page after the header page: the schema's root pages among them, which any open reads
    // (with incremental vacuum, pages 5 to 68 can all be row pages a count through an index skips).
    writeSync(fd, Buffer.alloc(64 * 4096, 0x5a), 0, 64 * 4096, 1 * 4096);
    closeSync(fd);
    const err = expectBufferError(() => openStore(), 'PW_BUFFER_CORRUPT', 'not a valid database');
    expect(err.message).toContain(path);
  });
});
