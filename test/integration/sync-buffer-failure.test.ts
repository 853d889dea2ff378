/**
 * A damaged page of the buffer file met by the sync (a bad SD-card sector), on real files: rows
 * written with the real store, the file closed, one page overwritten in the middle of a b-tree,
 * then a real sync to Azurite, on the encoder thread and on the main thread, and the agent's
 * /healthz, /status and /metrics.
 *
 * A leaf of the readings table: before, the sync failed with PW_BUFFER_CORRUPT on the batch
 * holding it at every cycle, for ever, and no reading received after it was ever uploaded (3 000
 * rows: 1 200 uploaded, 1 800 stuck). Now every row that can still be read goes up, and the
 * unreadable ones are set aside by seq range, counted and said (PW_BUFFER_ROWS_UNREADABLE).
 * Retention and eviction under the cap met the same page: retention threw "database disk image is
 * malformed" at every run, eviction made /healthz fail; now they delete what they can and say once
 * what they cannot.
 * The page of the anomalies index the planner finds alerts by: the buffer cannot be planned from,
 * and that stays PW_BUFFER_CORRUPT, named as the buffer's failure (before that, "Blob Storage is
 * unreachable … database disk image is malformed", connectivity offline, /healthz 200). A damaged
 * page of the (pump_id, seq) index failed the buffer's open (SQLite counts rows by it): it is built
 * again from the table at the open now.
 */
import Database from 'better-sqlite3';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../agent/logger.js';
import { SyncBatches } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { EncoderThread } from '../../sync/encoder-thread.js';
import { readingsBlobName } from '../../sync/layout.js';
import { deleteExpiredSynced } from '../../sync/retention.js';
import { uploaderFor } from '../../sync/uploader.js';
import { SyncWorker } from '../../sync/worker.js';
import { startTestAgent } from '../support/agent.js';
import { decodeAllBlobs, startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { recentStartOffMidnight } from '../support/clock.js';

const T0 = recentStartOffMidnight(); // never crosses a UTC midnight, where the sync starts a new blob
const ROWS = 3000;
const DEVICE = 'gw-corrupt';

let az: TestAzurite;
let containerNo = 0;
const dirs: string[] = [];

beforeAll(async () => {
  az = await startTestAzurite();
});
afterAll(async () => {
  await az?.dispose();
  for (const d of dirs) rmSync(d, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

const pumpOf = (i: number): string => (i % 3 === 0 ? 'pump-b' : 'pump-a');

const row = (i: number): PredictionRow => ({
  pumpId: pumpOf(i),
  ts: T0 + i * 1000,
  receivedAt: T0 + i * 1000,
  values: { Pressure: 1 + (i % 7) / 10, Flow: 30 + (i % 11) },
  score: 0.25,
  anomaly: i % 500 === 0, // a few, one of them (seq 1501) among the damaged page's rows: planned first, with its context
  modelVersion: 'm-1',
  imputed: false,
  unscoredReason: null,
});

type Fill = 'zeros' | 'garbage';

/** A page of bytes that is no b-tree page: zeros, or a fixed pseudo-random pattern. */
function pageOf(fill: Fill, size: number): Buffer {
  const page = Buffer.alloc(size);
  if (fill === 'zeros') return page;
  let x = 12345;
  for (let i = 0; i < size; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    page[i] = x >>> 24;
  }
  return page;
}

/** The anomaly the damaged page of the readings table holds: the sync plans it first, with its context. */
const DAMAGED_ANOMALY_SEQ = 1501;

/** A SQLite varint at `at` in `page`: its value and the offset after it (rowids here fit in a double). */
function varint(page: Buffer, at: number): [number, number] {
  let value = 0;
  for (let i = 0; i < 9; i++) {
    const byte = page[at + i]!;
    if (i === 8) return [value * 256 + byte, at + 9];
    value = value * 128 + (byte & 0x7f);
    if (byte < 0x80) return [value, at + i + 1];
  }
  return [value, at + 9];
}

/** Whether the table leaf `page` holds the row `rowid` (its cells' rowids span it). */
function leafHolds(page: Buffer, rowid: number): boolean {
  const cells = page.readUInt16BE(3);
  const rowids = Array.from({ length: cells }, (_, i) => varint(page, varint(page, page.readUInt16BE(8 + 2 * i))[1])[0]);
  return rowids.length > 0 && Math.min(...rowids) <= rowid && rowid <= Math.max(...rowids);
}

/**
 * Overwrites a leaf page of `btree` (a table or index of the buffer) in the closed file at `path`:
 * for the readings table the leaf holding DAMAGED_ANOMALY_SEQ (found by the rowids of its cells,
 * so a change of the rows' size does not move the anomaly off the damaged page), else the middle leaf.
 */
function damage(path: string, btree: 'readings' | 'readings_anomalies_seq_pump' | 'readings_pump_seq', fill: Fill): void {
  const db = new Database(path);
  db.pragma('wal_checkpoint(TRUNCATE)');
  const leaves = db.prepare("SELECT pageno FROM dbstat WHERE name = ? AND pagetype = 'leaf' ORDER BY pageno").all(btree) as Array<{ pageno: number }>;
  const pageSize = db.pragma('page_size', { simple: true }) as number;
  db.close();
  const file = readFileSync(path);
  const pageAt = (pageno: number): Buffer => file.subarray((pageno - 1) * pageSize, pageno * pageSize);
  const page = btree === 'readings' ? leaves.find((l) => leafHolds(pageAt(l.pageno), DAMAGED_ANOMALY_SEQ))!.pageno : leaves[Math.floor(leaves.length / 2)]!.pageno;
  const fd = openSync(path, 'r+');
  writeSync(fd, pageOf(fill, pageSize), 0, pageSize, (page - 1) * pageSize);
  closeSync(fd);
}

/**
 * A buffer of ROWS unsent rows in `dataDir`, closed, its checkpoint thread's connection too (the
 * last connection to close checkpoints the log into the file: after the damage, that wrote the
 * page back; close() waits for it); `before` may plan batches in it first.
 */
async function writeBuffer(dataDir: string, before?: (store: BufferStore) => void): Promise<string> {
  const path = join(dataDir, 'buffer.sqlite');
  const store = new BufferStore({ path, maxBytes: 2 ** 30 });
  store.open();
  store.appendBatch(Array.from({ length: ROWS }, (_, i) => row(i)));
  before?.(store);
  store.close();
  expect(store.checkpointsEnded()).toBe(true);
  return path;
}

/** The seqs SQLite can no longer read, by pump, found by reading each row alone (the test's own oracle). */
function unreadableSeqs(path: string, upTo: number): Map<string, number[]> {
  const db = new Database(path, { readonly: true });
  const one = db.prepare('SELECT seq FROM readings WHERE seq = ?');
  const lost = new Map<string, number[]>();
  for (let seq = 1; seq <= upTo; seq++) {
    try {
      if (one.get(seq) !== undefined) continue;
    } catch {
      // unreadable
    }
    const pump = pumpOf(seq - 1);
    lost.set(pump, [...(lost.get(pump) ?? []), seq]);
  }
  db.close();
  return lost;
}

/** Each pump's ranges set aside hold exactly its unreadable seqs (a range holds only its pump's rows). */
function expectSetAside(ranges: ReadonlyArray<{ pumpId: string; firstSeq: number; lastSeq: number; rows: number }>, lost: Map<string, number[]>): void {
  expect(new Set(ranges.map((r) => r.pumpId))).toEqual(new Set(lost.keys()));
  for (const [pumpId, seqs] of lost) {
    const mine = ranges.filter((r) => r.pumpId === pumpId);
    expect(mine.reduce((n, r) => n + r.rows, 0)).toBe(seqs.length);
    for (const seq of seqs) expect(mine.some((r) => r.firstSeq <= seq && seq <= r.lastSeq), `seq ${seq} of ${pumpId}`).toBe(true);
  }
}

const bySeq = (a: { pumpId?: string; firstSeq?: number }, b: { pumpId?: string; firstSeq?: number }): number => (a.firstSeq ?? 0) - (b.firstSeq ?? 0) || String(a.pumpId).localeCompare(String(b.pumpId));

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'pw-sync-buffer-failure-'));
  dirs.push(d);
  return d;
}

interface LogLine {
  level: number;
  code?: string;
  msg: string;
  pumpId?: string;
  firstSeq?: number;
  lastSeq?: number;
  rows?: number;
}

function worker(store: BufferStore, container: string, thread: boolean, logs: LogLine[] = []): SyncWorker {
  return new SyncWorker({
    buffer: store,
    uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: az.connectionString, container }, createContainer: true }),
    deviceId: DEVICE,
    agentVersion: '0.0.0-test',
    // every cycle on the thread when there is one, however small
    settings: () => ({ intervalMs: 60_000, maxBytesPerSecond: 0, batchMaxRows: 200, batchMaxBytes: 1 << 20, anomalyContextRows: 10, backoff: { initialMs: 1000, maxMs: 8000, slowMs: 600_000 }, threadAboveRows: 0 }),
    logger: createLogger('warn', { write: (s: string) => void logs.push(JSON.parse(s) as LogLine) }),
    encoderThread: thread ? new EncoderThread(store.path) : null,
  });
}

/** Every seq in the container's blobs, with how many times it was uploaded. */
async function uploadedSeqs(container: string): Promise<Map<number, number>> {
  const seen = new Map<number, number>();
  for (const blob of await decodeAllBlobs(az.container(container))) for (const line of blob.lines) seen.set(line.seq, (seen.get(line.seq) ?? 0) + 1);
  return seen;
}

describe('sync meeting a damaged page of the readings table', () => {
  it.each([
    ['on the encoder thread', true, 'garbage'],
    ['on the main thread', false, 'garbage'],
    ['on the encoder thread, a zeroed page', true, 'zeros'],
  ] as const)('uploads every row it can still read, sets the unreadable ones aside by seq range, and goes on (%s)', async (_, thread, fill) => {
    const path = await writeBuffer(tempDir());
    damage(path, 'readings', fill);
    const lost = unreadableSeqs(path, ROWS);
    const lostCount = [...lost.values()].reduce((n, s) => n + s.length, 0);
    expect(lostCount).toBeGreaterThan(10); // one leaf's rows
    expect(lostCount).toBeLessThan(200);
    expect(lost.get('pump-b')).toContain(DAMAGED_ANOMALY_SEQ); // an anomaly among them
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    const container = `unreadable-${++containerNo}`;
    const logs: LogLine[] = [];
    let sync = worker(store, container, thread, logs);
    try {
      const first = await sync.runOnce();
      expect(first.failure).toBeNull(); // before: PW_BUFFER_CORRUPT at this cycle and every one after
      const seqs = await uploadedSeqs(container);
      const lostSet = new Set([...lost.values()].flat());
      const readable = Array.from({ length: ROWS }, (_, i) => i + 1).filter((s) => !lostSet.has(s));
      expect([...seqs.keys()].sort((a, b) => a - b)).toEqual(readable); // the rows before and after the damage
      expect([...seqs.values()].every((n) => n === 1)).toBe(true);

      // Set aside exactly: the ranges of each pump hold its unreadable seqs, counted, each one said once.
      const stats = store.stats();
      const ranges = stats.unreadable.recent;
      expect(stats.unreadable).toMatchObject({ rows: lostCount, ranges: ranges.length });
      expectSetAside(ranges, lost);
      expect(stats.unsynced).toBe(lostCount); // never marked synced
      const warnings = logs.filter((l) => l.code === 'PW_BUFFER_ROWS_UNREADABLE');
      expect(warnings.map(({ pumpId, firstSeq, lastSeq, rows, level }) => ({ pumpId, firstSeq, lastSeq, rows, level })).sort(bySeq)).toEqual(
        ranges.map(({ pumpId, firstSeq, lastSeq, rows }) => ({ pumpId, firstSeq, lastSeq, rows, level: 40 })).sort(bySeq),
      );
      expect(warnings[0]!.msg).toMatch(/cannot be read from the buffer \(a damaged page of the file\): they are set aside, never uploaded nor marked synced/);
      // Running, degraded: /healthz 200 with the code; the sync itself healthy.
      expect(store.health()).toEqual({ ok: true, degraded: expect.stringMatching(new RegExp(`^PW_BUFFER_ROWS_UNREADABLE: ${lostCount} row\\(s\\) in ${ranges.length} range\\(s\\) cannot be read`)) });
      expect(sync.health()).toEqual({ ok: true });

      // Readings received after the damage go up, and the damaged page is not read again.
      store.appendBatch(Array.from({ length: 300 }, (_, i) => row(ROWS + i)));
      expect(await sync.runOnce()).toMatchObject({ rows: 300, failure: null });
      expect(logs.filter((l) => l.code === 'PW_BUFFER_ROWS_UNREADABLE')).toHaveLength(ranges.length);

      // After a restart: the ranges stay set aside (in the file), nothing is read or uploaded again.
      await sync.stop();
      store.close();
      store.open();
      sync = worker(store, container, thread, logs);
      expect(await sync.runOnce()).toMatchObject({ rows: 0, failure: null });
      expect(store.stats().unreadable).toMatchObject({ rows: lostCount, ranges: ranges.length });
      expect((await uploadedSeqs(container)).size).toBe(readable.length + 300);
    } finally {
      await sync.stop();
      store.close();
    }
  });

  it.each([
    ['on the encoder thread', true],
    ['on the main thread', false],
  ])('drops a batch planned before its page was damaged, uploads its readable rows again and sets the others aside (%s)', async (_, thread) => {
    const container = `unreadable-planned-${++containerNo}`;
    // Every row planned in batches of 100 (as by a sync that then lost power before uploading).
    const path = await writeBuffer(tempDir(), (store) => {
      const batches = new SyncBatches(store);
      while (batches.plan({ maxRows: 100, maxBytes: 1 << 20, anomalyContextRows: 0 }, (p, a, b, ts) => readingsBlobName(p, DEVICE, a, b, ts), Date.now()) !== null);
    });
    damage(path, 'readings', 'garbage');
    const lost = unreadableSeqs(path, ROWS);
    const lostCount = [...lost.values()].reduce((n, s) => n + s.length, 0);
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    const logs: LogLine[] = [];
    const sync = worker(store, container, thread, logs);
    try {
      expect((await sync.runOnce()).failure).toBeNull();
      const seqs = await uploadedSeqs(container);
      expect(seqs.size).toBe(ROWS - lostCount);
      expect([...lost.values()].flat().some((s) => seqs.has(s))).toBe(false);
      expect(store.stats()).toMatchObject({ unsynced: lostCount, unreadable: { rows: lostCount } });
      expectSetAside(store.stats().unreadable.recent, lost);
      expect(logs.filter((l) => /the plan is dropped/.test(l.msg)).length).toBeGreaterThan(0);
      expect(new SyncBatches(store).pending()).toBeNull();
      expect(await sync.runOnce()).toMatchObject({ rows: 0, failure: null });
    } finally {
      await sync.stop();
      store.close();
    }
  });
});

/** Every batch planned and marked uploaded, as by a sync that ran before the page was damaged. */
function syncAll(store: BufferStore): void {
  const batches = new SyncBatches(store);
  const limits = { maxRows: 100, maxBytes: 1 << 20, anomalyContextRows: 0 };
  const name = (p: string, a: number, b: number, ts: number): string => readingsBlobName(p, DEVICE, a, b, ts);
  for (let b = batches.next(limits, name, Date.now()); b !== null; b = batches.next(limits, name, Date.now())) batches.markUploaded(b, 'a'.repeat(64), Date.now());
}

/** How many rows the warnings say cannot be deleted. */
const said = (warnings: readonly string[]): number => warnings.reduce((n, w) => n + Number(/: (\d+) (?:synced|unsent) row\(s\)/.exec(w)?.[1] ?? 0), 0);

/** The seqs still in the buffer, listed by the (pump_id, seq) index (the table's damaged page is not read). */
function seqsLeft(store: BufferStore): number[] {
  return (store.db.prepare('SELECT seq FROM readings INDEXED BY readings_pump_seq').pluck().all() as number[]).sort((a, b) => a - b);
}

describe('retention and eviction meeting a damaged page of the readings table', () => {
  it('retention deletes every synced row it can and reports the ones it cannot, once, instead of failing at every run', async () => {
    const path = await writeBuffer(tempDir(), syncAll);
    damage(path, 'readings', 'garbage');
    const lost = [...unreadableSeqs(path, ROWS).values()].flat().sort((a, b) => a - b);
    const warnings: string[] = [];
    const store = new BufferStore({ path, maxBytes: 2 ** 30, onWarning: (m) => warnings.push(m) });
    store.open();
    try {
      const batches = new SyncBatches(store);
      expect(store.stats()).toMatchObject({ rows: ROWS, unsynced: 0 });
      // Every row was received more than 0 h ago: all synced rows are due. Before: PW_BUFFER_CORRUPT (database disk image is malformed).
      const first = await deleteExpiredSynced(batches, 0, Date.now());
      const left = seqsLeft(store);
      expect(left).toEqual(expect.arrayContaining(lost));
      // Kept: the damaged page's rows, and rows beside it whose delete has to rebalance with it; nothing else.
      expect(left.every((seq) => lost.includes(seq) || store.damaged.has(seq))).toBe(true);
      expect(left.length).toBeLessThan(3 * lost.length);
      expect(first.deleted).toBe(ROWS - left.length);
      expect(store.stats().rows).toBe(left.length);
      expect(warnings.length).toBeGreaterThan(0);
      for (const w of warnings) expect(w).toMatch(/^retention: \d+ synced row\(s\) of the buffer \(seq \d+–\d+\) cannot be deleted \(a damaged page of the file: database disk image is malformed\)/);
      expect(said(warnings)).toBe(left.length); // each row said once
      // The next run neither fails nor says them again.
      expect(await deleteExpiredSynced(batches, 0, Date.now())).toMatchObject({ deleted: 0 });
      expect(said(warnings)).toBe(left.length);
      expect(store.health()).toMatchObject({ ok: true });
    } finally {
      store.close();
    }
  });

  it('eviction under the cap evicts unsent rows past the damage, sets the unreadable ones aside, and /healthz stays ok', async () => {
    const path = await writeBuffer(tempDir());
    damage(path, 'readings', 'garbage');
    const lost = [...unreadableSeqs(path, ROWS).values()].flat().sort((a, b) => a - b);
    const warnings: string[] = [];
    const store = new BufferStore({ path, maxBytes: 2 ** 30, onWarning: (m) => warnings.push(m) });
    store.open();
    try {
      store.setMaxBytes(256 * 1024); // about a third of the rows fit
      const health = store.health();
      expect(health.ok, JSON.stringify(health)).toBe(true); // before: false, "evicting rows to stay under the cap: … database disk image is malformed"
      const left = seqsLeft(store);
      expect(left).toEqual(expect.arrayContaining(lost));
      const evicted = store.stats().evicted;
      expect(evicted.unsynced).toBe(ROWS - left.length);
      expect(evicted.unsynced).toBeGreaterThan(ROWS / 2);
      // The normal readings left are the newest, after the damage (anomalies stay: seq 1, 501, …), and
      // rows beside the damaged page whose delete has to rebalance with it (said once each).
      const normal = left.filter((seq) => !lost.includes(seq) && (seq - 1) % 500 !== 0);
      expect(normal.every((seq) => seq > lost.at(-1)! || store.damaged.has(seq))).toBe(true);
      expect(store.damaged.size).toBeLessThan(2 * lost.length);
      expect(said(warnings)).toBe(store.damaged.size);
      expect(warnings.filter((w) => /PW_BUFFER_ROWS_UNREADABLE/.test(w)).length).toBeGreaterThan(0);
      // The unreadable rows are set aside as the sync does, so nothing reads the page again.
      expect(store.stats().unreadable.rows).toBe(lost.length);
      expect(health.degraded).toMatch(/^PW_BUFFER_ROWS_UNREADABLE: /);
      // More readings keep evicting the oldest, without failing on the damage again.
      store.appendBatch(Array.from({ length: 1000 }, (_, i) => row(ROWS + i)));
      expect(store.health().ok).toBe(true);
      expect(store.stats().evicted.unsynced).toBeGreaterThan(evicted.unsynced);
      expect(store.stats().unreadable.rows).toBe(lost.length);
      expect(said(warnings)).toBe(store.damaged.size);
    } finally {
      store.close();
    }
  });

  it('eviction under the cap evicts synced rows past the damage and reports the ones it cannot delete, once', async () => {
    const path = await writeBuffer(tempDir(), syncAll);
    damage(path, 'readings', 'garbage');
    const lost = [...unreadableSeqs(path, ROWS).values()].flat();
    const warnings: string[] = [];
    const store = new BufferStore({ path, maxBytes: 2 ** 30, onWarning: (m) => warnings.push(m) });
    store.open();
    try {
      store.setMaxBytes(256 * 1024);
      const health = store.health();
      expect(health, JSON.stringify(health)).toEqual({ ok: true });
      const left = seqsLeft(store);
      expect(left).toEqual(expect.arrayContaining(lost));
      // Evicted oldest first up to the newest rows the cap holds, but for the damaged page's rows and
      // rows beside it whose delete has to rebalance with it.
      expect(left.filter((seq) => seq <= lost.at(-1)!).every((seq) => lost.includes(seq) || store.damaged.has(seq))).toBe(true);
      expect(left.at(-1)).toBe(ROWS);
      expect(store.stats().evicted.synced).toBe(ROWS - left.length);
      for (const w of warnings) expect(w).toMatch(/^eviction: \d+ synced row\(s\) of the buffer \(seq \d+–\d+\) cannot be deleted \(a damaged page of the file/);
      const kept = store.damaged.size;
      expect(kept).toBeGreaterThanOrEqual(lost.length);
      expect(kept).toBeLessThan(3 * lost.length);
      expect(said(warnings)).toBe(kept); // each row said once
      store.appendBatch(Array.from({ length: 1000 }, (_, i) => row(ROWS + i)));
      syncAll(store);
      store.appendBatch(Array.from({ length: 1000 }, (_, i) => row(ROWS + 1000 + i)));
      // working; the unsent rows the cap then evicted are told, as lost
      expect(store.health()).toEqual({ ok: true, degraded: expect.stringMatching(/^PW_BUFFER_UNSENT_EVICTED: /) });
      // Each said once: a row beside the page may turn out not to be deletable later (when the tree
      // around it changed), but none is said twice, and they stay few.
      expect(said(warnings)).toBe(store.damaged.size);
      expect(store.damaged.size).toBeLessThan(3 * lost.length);
      expect(store.stats().evicted.synced).toBeGreaterThan(ROWS - left.length);
    } finally {
      store.close();
    }
  });
});

describe('a damaged page of the (pump_id, seq) index at open', () => {
  it.each(['garbage', 'zeros'] as const)('builds the index again from the table, says so, and opens with every row, which the sync uploads (%s)', async (fill) => {
    const path = await writeBuffer(tempDir());
    damage(path, 'readings_pump_seq', fill);
    const warnings: string[] = [];
    const store = new BufferStore({ path, maxBytes: 2 ** 30, onWarning: (m) => warnings.push(m) });
    store.open(); // before: PW_BUFFER_CORRUPT (SQLite counts the rows by this index), at every open
    const container = `reindexed-${++containerNo}`;
    const sync = worker(store, container, false);
    try {
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/had a damaged page in its index readings_pump_seq .*built again from the table/);
      expect(store.db.prepare('PRAGMA integrity_check').pluck().all()).toEqual(['ok']); // the table and every index agree
      expect(store.stats()).toMatchObject({ rows: ROWS, unsynced: ROWS });
      expect(store.db.prepare("SELECT count(*) FROM meta WHERE key LIKE 'repairing_index:%'").pluck().get()).toBe(0);
      expect(await sync.runOnce()).toMatchObject({ rows: ROWS, failure: null });
      expect((await uploadedSeqs(container)).size).toBe(ROWS);
      await sync.stop();
      store.close();
      store.open(); // nothing left to do
      expect(warnings).toHaveLength(1);
    } finally {
      await sync.stop();
      store.close();
    }
  });

  it('finishes at the next open a rebuild a stop cut short after the damaged index left the schema', async () => {
    const path = await writeBuffer(tempDir());
    damage(path, 'readings_pump_seq', 'garbage');
    // The state the rebuild's first step leaves (its SQL kept in meta, its entry gone), as if the agent stopped there.
    const db = new Database(path);
    const sql = db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'readings_pump_seq'").pluck().get() as string;
    db.unsafeMode(true);
    db.pragma('writable_schema = ON');
    db.transaction(() => {
      db.prepare('INSERT INTO meta (key, value) VALUES (?, ?)').run('repairing_index:readings_pump_seq', sql);
      db.prepare("DELETE FROM sqlite_schema WHERE name = 'readings_pump_seq'").run();
    })();
    db.pragma('writable_schema = RESET');
    db.close();
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    try {
      expect(store.db.prepare("SELECT sql FROM sqlite_schema WHERE name = 'readings_pump_seq'").pluck().get()).toBe(sql);
      expect(store.db.prepare('PRAGMA integrity_check').pluck().all()).toEqual(['ok']);
      expect(store.stats()).toMatchObject({ rows: ROWS });
      expect(store.db.prepare("SELECT count(*) FROM meta WHERE key LIKE 'repairing_index:%'").pluck().get()).toBe(0);
    } finally {
      store.close();
    }
  });

  it('still refuses the file with PW_BUFFER_CORRUPT when a page of the table is damaged too, and leaves it as it was', async () => {
    const path = await writeBuffer(tempDir());
    damage(path, 'readings', 'garbage');
    damage(path, 'readings_pump_seq', 'garbage');
    const before = readFileSync(path);
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    let error: unknown;
    try {
      store.open();
    } catch (err) {
      error = err;
    }
    expect(error).toMatchObject({ code: 'PW_BUFFER_CORRUPT', message: expect.stringContaining('database disk image is malformed') });
    expect(readFileSync(path).equals(before)).toBe(true);
  });
});

describe('sync meeting a damaged page of the index it plans by', () => {
  it.each([
    ['on the encoder thread', true],
    ['on the main thread', false],
  ])('reports PW_BUFFER_CORRUPT as the buffer\'s failure (%s), leaving connectivity and the sync\'s own health alone', async (_, thread) => {
    const path = await writeBuffer(tempDir());
    damage(path, 'readings_anomalies_seq_pump', 'zeros'); // the planner finds alerts by it: it cannot plan
    const store = new BufferStore({ path, maxBytes: 2 ** 30 });
    store.open();
    const sync = worker(store, `corrupt-${++containerNo}`, thread);
    try {
      expect(store.health()).toEqual({ ok: true });
      const result = await sync.runOnce();
      expect(result.failure).toMatchObject({ kind: 'buffer', code: 'PW_BUFFER_CORRUPT', heals: false });
      const status = sync.status();
      expect(status.lastError).toMatch(/^the buffer failed \(PW_BUFFER_CORRUPT\): .*buffer\.sqlite is not a valid database \(database disk image is malformed\)/);
      expect(status.lastError).not.toMatch(/Blob Storage/);
      expect(sync.blobConnectivity()).not.toBe('offline'); // nothing was asked of the target
      const health = store.health();
      expect(health.ok).toBe(false);
      expect(health.error).toMatch(/^PW_BUFFER_CORRUPT \(met by the sync\): .*database disk image is malformed/);
      expect(sync.health()).toEqual({ ok: true }); // named once, by the buffer's check
    } finally {
      await sync.stop();
      store.close();
    }
  });
});

describe("the agent's answers", () => {
  async function agentOn(data: string, container: string) {
    return startTestAgent({
      PUMPWATCH_DATA_DIR: data,
      PUMPWATCH_SYNC: 'auto',
      PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
      PUMPWATCH_BLOB_CONTAINER: container,
      PUMPWATCH_SYNC_BATCH_MAX_ROWS: '200',
      PUMPWATCH_DEVICE_ID: DEVICE,
    });
  }

  /** /healthz until `done` says so: the agent's first sync cycle runs at its start (40 s at most on a busy machine). */
  async function healthUntil(url: string, done: (h: { status: number; json: any }) => boolean): Promise<{ status: number; json: any }> {
    let health: { status: number; json: any } | null = null;
    for (let i = 0; i < 400; i++) {
      const res = await fetch(`${url}/healthz`);
      health = { status: res.status, json: await res.json() };
      if (done(health)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    return health!;
  }

  it('/healthz answers 200 degraded naming PW_BUFFER_ROWS_UNREADABLE, /status and /metrics count the rows set aside, and every other row is uploaded', async () => {
    const data = join(tempDir(), 'data');
    const path = await writeBuffer(data);
    damage(path, 'readings', 'garbage');
    const lost = unreadableSeqs(path, ROWS);
    const lostCount = [...lost.values()].reduce((n, s) => n + s.length, 0);
    const container = `unreadable-agent-${++containerNo}`;
    const t = await agentOn(data, container);
    try {
      const health = await healthUntil(t.url, (h) => h.json.status === 'degraded');
      expect(health, JSON.stringify(health)).toMatchObject({ status: 200, json: { status: 'degraded', failing: [], degraded: ['buffer'] } });
      // Said as soon as they are set aside (the cycle goes on with the rows after them): wait for its end.
      let status: { buffer: { unreadable: { rows: number; ranges: number; recent: Array<{ pumpId: string; firstSeq: number; lastSeq: number; rows: number; foundAt: string }> } }; sync: { uploadedRows: number } };
      for (let i = 0; ; i++) {
        status = (await (await fetch(`${t.url}/status`)).json()) as typeof status;
        if (status.sync.uploadedRows >= ROWS - lostCount || i === 400) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      const { unreadable } = status.buffer;
      expect(unreadable).toMatchObject({ rows: lostCount, ranges: unreadable.recent.length });
      expectSetAside(unreadable.recent, lost);
      expect(unreadable.recent.every((r) => !Number.isNaN(Date.parse(r.foundAt)))).toBe(true);
      const checks = ((await (await fetch(`${t.url}/healthz`)).json()) as { checks: { buffer: string } }).checks;
      expect(checks.buffer).toMatch(new RegExp(`^PW_BUFFER_ROWS_UNREADABLE: ${lostCount} row\\(s\\) in ${unreadable.ranges} range\\(s\\) cannot be read \\(a damaged page of the file\\)`));
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).toMatch(new RegExp(`^pumpwatch_buffer_unreadable_rows ${lostCount}$`, 'm'));
      expect(metrics).toMatch(new RegExp(`^pumpwatch_buffer_unreadable_ranges ${unreadable.ranges}$`, 'm'));
      const seqs = await uploadedSeqs(container);
      expect(seqs.size).toBe(ROWS - lostCount);
      expect([...lost.values()].flat().some((seq) => seqs.has(seq))).toBe(false);
    } finally {
      await t.stop();
    }
  });

  it('counts the rows uploaded without their undecodable contributions in /metrics, as in /status and /healthz', async () => {
    const data = join(tempDir(), 'data');
    // Two rows whose stored contributions (a BLOB) are cut short: uploaded with contributions: null.
    await writeBuffer(data, (store) => {
      const cut = store.db.prepare('UPDATE readings SET contributions = ? WHERE seq = ?');
      for (const seq of [501, 1001]) cut.run(Buffer.from([1, 0, 0]), seq);
    });
    const container = `without-contributions-${++containerNo}`;
    const t = await agentOn(data, container);
    try {
      let status: { buffer: { withoutContributions: { rows: number } }; sync: { uploadedRows: number } };
      for (let i = 0; ; i++) {
        status = (await (await fetch(`${t.url}/status`)).json()) as typeof status;
        if (status.sync.uploadedRows >= ROWS || i === 400) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(status.sync.uploadedRows).toBe(ROWS);
      expect(status.buffer.withoutContributions.rows).toBe(2);
      const metrics = await (await fetch(`${t.url}/metrics`)).text();
      expect(metrics).toMatch(/^# TYPE pumpwatch_buffer_rows_without_contributions_total counter$/m);
      expect(metrics).toMatch(/^pumpwatch_buffer_rows_without_contributions_total 2$/m);
      expect((await healthUntil(t.url, (h) => h.json.status === 'degraded')).json.checks.buffer).toMatch(/^PW_BUFFER_INVALID_ROW: 2 row\(s\) were uploaded without their contributions/);
    } finally {
      await t.stop();
    }
  });

  it('makes the agent\'s /healthz answer 503 naming the buffer when the planner\'s index is damaged, with /status sync.lastError naming it too', async () => {
    const data = join(tempDir(), 'data');
    damage(await writeBuffer(data), 'readings_anomalies_seq_pump', 'zeros');
    const t = await agentOn(data, `corrupt-agent-${++containerNo}`);
    try {
      const health = await healthUntil(t.url, (h) => h.status === 503);
      expect(health, JSON.stringify(health)).toMatchObject({ status: 503 });
      expect(health.json.checks.buffer).toMatch(/^PW_BUFFER_CORRUPT \(met by the sync\): .*database disk image is malformed/);
      expect(health.json.checks.sync).toBe('ok');
      const status = (await (await fetch(`${t.url}/status`)).json()) as { sync: { lastError: string }; connectivity: { blob: string } };
      expect(status.sync.lastError).toMatch(/^the buffer failed \(PW_BUFFER_CORRUPT\)/);
      expect(status.connectivity.blob).not.toBe('offline');
    } finally {
      await t.stop();
    }
  });
});
