import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncBatches, type PlanLimits } from '../../buffer/batches.js';
import { databaseBudget, walBudget } from '../../buffer/eviction.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const SHA = 'e'.repeat(64);
const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;
const bulk = (maxRows: number): PlanLimits => ({ maxRows, maxBytes: 1 << 24, anomalyContextRows: 0 });

/** A reading of ~20 sensors (~500 bytes of JSON), so a small cap fills quickly. */
function reading(pumpId: string, i: number, anomaly = false): PredictionRow {
  const values: Record<string, number> = {};
  for (let k = 0; k < 20; k++) values[`Sensor_${k}`] = Math.round(((i * 7919 + k * 104729) % 100_000) * 1.234567) / 1000;
  return { pumpId, ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values, score: anomaly ? 0.97 : 0.2, anomaly, modelVersion: 'v1', imputed: false, unscoredReason: null };
}

const seqsOf = (store: BufferStore, where: string): number[] =>
  (store.db.prepare(`SELECT r.seq FROM readings r JOIN readings_sync_state s USING (seq) WHERE ${where} ORDER BY r.seq`).all() as { seq: number }[]).map((r) => r.seq);
const count = (store: BufferStore, sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;

const NORMAL_UNSYNCED = 's.synced = 0 AND s.batch_id IS NULL AND r.anomaly = 0';
const ANOMALY_UNSYNCED = 's.synced = 0 AND s.batch_id IS NULL AND r.anomaly = 1';

/** What remains of a class of rows is always its newest part: eviction takes the oldest first. */
function expectNewestKept(original: number[], remaining: number[]): void {
  expect(remaining).toEqual(original.slice(original.length - remaining.length));
}

describe('Eviction under the disk cap (real SQLite file)', () => {
  let dir: string;
  let path: string;
  let store: BufferStore;
  let batches: SyncBatches;
  const append = (pumpId: string, from: number, n: number, anomaly = false): number[] =>
    store.appendBatch(Array.from({ length: n }, (_, k) => reading(pumpId, from + k, anomaly)));
  const openStore = (maxBytes: number): void => {
    store = new BufferStore({ path, maxBytes });
    store.open();
    batches = new SyncBatches(store);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-buffer-evict-'));
    path = join(dir, 'buffer.db');
    openStore(1 << 30);
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('keeps the database file, the WAL and its index within the cap together', async () => {
    const cap = 1 << 20; // the smallest the configuration accepts
    store.setMaxBytes(cap);
    const sizes = (): number[] => ['', '-wal', '-shm'].map((suffix) => fileSize(path + suffix));
    let largest = 0;
    for (let k = 0; k < 60; k++) {
      append('pump-a', k * 200, 200);
      let files = sizes();
      largest = Math.max(largest, files[1]! + files[2]!);
      // Each file may pass its share by what one commit writes (200 rows, or an eviction chunk of
      // 256 rows with its index pages: up to about 140 KiB here): eviction and the automatic
      // checkpoint run after a commit, not inside it. Before the WAL was counted it reached 12 MB.
      // The checkpoint thread runs beside this one: on a machine starved of CPU (a CI run beside
      // five other sessions, 2026-12-07: 1 423 720 bytes after 4 800 rows) its pass comes late and
      // the WAL grows past its share until it runs, as it would on a starved gateway; the cap's
      // promise is the bound once it has run, so a sample over it is read again for up to 5 s.
      for (let waited = 0; files[0]! + files[1]! + files[2]! > cap * 1.3 && waited < 5_000; waited += 20) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        files = sizes();
      }
      expect(files[0]! + files[1]! + files[2]!, `after ${(k + 1) * 200} rows: ${files.join(' + ')}`).toBeLessThanOrEqual(cap * 1.3);
      expect(store.stats().walBytes).toBe(files[1]! + files[2]!);
    }
    expect(store.stats().evicted.unsynced).toBeGreaterThan(0);
    // The WAL's share, and what one commit and one eviction chunk add before the checkpoint: with
    // incremental vacuum (2026-12-05) each also rewrites pointer-map pages (about 90 KiB more here).
    // The largest is the first sample: the new file's WAL holds what creating it wrote (every
    // schema step and the indexes made at open, not yet checkpointed) besides the first 200 rows.
    // So each step adds to it: the two partial anomaly-time indexes made at open (migrations.ts
    // OPEN_INDEXES) 14 888 bytes, schema 9 (two indexes dropped, one made) 20 600, schema 10 (the
    // contribution_names table) 20 600, to 514 840 bytes; the buffer id written at open and schema 11
    // (the threshold column, 2026-12-07) 16 480, to 531 320; 60 KiB more allowance for these, still
    // far from the 12 MB of old. Schema 12 (the label_withdrawals table and its index, 2026-12-07)
    // 57 680, to 589 000: 60 KiB more allowance. Schema 13 (the labels' follows_episode column,
    // 2026-12-07) 12 360, to 601 360: 16 KiB more.
    expect(largest).toBeLessThanOrEqual((cap - databaseBudget(cap)) * 2 + 280 * 1024);
    expect(walBudget(1 << 30)).toBe(64 << 20); // the default cap keeps the WAL limit it always had
  });

  it('keeps appending under a small cap by evicting the oldest unsynced normal rows, counting each', () => {
    store.setMaxBytes(512 * 1024);
    let appended = 0;
    for (let k = 0; k < 40; k++) {
      append('pump-a', appended, 100);
      appended += 100;
      const stats = store.stats();
      expect(stats.bytes).toBeLessThanOrEqual(512 * 1024);
      expect(stats.rows).toBe(count(store, 'SELECT count(*) AS n FROM readings'));
      expect(stats.evicted.unsynced).toBe(appended - stats.rows);
    }
    expect(store.stats().evicted.unsynced).toBeGreaterThan(1000);
    const left = seqsOf(store, '1');
    expect(left.at(-1)).toBe(appended); // the newest rows are the ones kept
    expect(left).toEqual(Array.from({ length: left.length }, (_, k) => appended - left.length + 1 + k));
  });

  it('evicts synced rows first, then rejected items, then unsynced normal rows, and anomalies last; planned rows never', () => {
    // Synced rows (uploaded), a planned batch not yet uploaded, rejected items, unsynced normal rows, anomalies.
    const synced = append('pump-a', 0, 400);
    for (let b = batches.next(bulk(100), namer, T0); b !== null; b = batches.next(bulk(100), namer, T0)) batches.markUploaded(b, SHA, T0);
    append('pump-c', 0, 60);
    const planned = batches.next(bulk(60), namer, T0)!;
    const plannedRows = batches.rows(planned);
    store.appendRejected(Array.from({ length: 300 }, (_, k) => ({ source: 'http', raw: `{"bad":${k}}`.padEnd(600, ' '), reason: `bad ${k}`, receivedAt: T0 + k })));
    const normal: number[] = [];
    const anomalies: number[] = [];
    for (let k = 0; k < 8; k++) {
      normal.push(...append('pump-a', 1000 + k * 50, 50));
      anomalies.push(...append('pump-b', k * 10, 10, true));
    }
    expect(store.stats().evicted.total).toBe(0);
    const rejectedIds = (store.db.prepare('SELECT id FROM rejected ORDER BY id').all() as { id: number }[]).map((r) => r.id);

    const seen = { synced: false, rejected: false, unsynced: false, anomalies: false };
    let cap = store.stats().bytes;
    while (cap > 16 * 4096) {
      cap = Math.floor(cap * 0.9);
      store.setMaxBytes(cap);
      const stats = store.stats();
      const left = {
        synced: seqsOf(store, 's.synced = 1'),
        rejected: (store.db.prepare('SELECT id FROM rejected ORDER BY id').all() as { id: number }[]).map((r) => r.id),
        normal: seqsOf(store, NORMAL_UNSYNCED),
        anomalies: seqsOf(store, ANOMALY_UNSYNCED),
      };
      // exact counts, per kind
      expect(stats.evicted).toEqual({
        synced: synced.length - left.synced.length,
        rejected: rejectedIds.length - left.rejected.length,
        unsynced: normal.length - left.normal.length,
        anomalies: anomalies.length - left.anomalies.length,
        total: synced.length - left.synced.length + rejectedIds.length - left.rejected.length + normal.length - left.normal.length + anomalies.length - left.anomalies.length,
      });
      expect(stats).toMatchObject({ rows: count(store, 'SELECT count(*) AS n FROM readings'), unsynced: count(store, 'SELECT count(*) AS n FROM readings_sync_state WHERE synced = 0'), rejected: left.rejected.length });
      // order between kinds
      if (stats.evicted.rejected > 0) expect(left.synced).toEqual([]);
      if (stats.evicted.unsynced > 0) expect(left.rejected).toEqual([]);
      if (stats.evicted.anomalies > 0) expect(left.normal).toEqual([]);
      // oldest first within a kind
      expectNewestKept(synced, left.synced);
      expectNewestKept(rejectedIds, left.rejected);
      expectNewestKept(normal, left.normal);
      expectNewestKept(anomalies, left.anomalies);
      // the planned batch is untouched: a retry uploads the same rows
      expect(batches.rows(planned)).toEqual(plannedRows);
      for (const kind of ['synced', 'rejected', 'unsynced', 'anomalies'] as const) seen[kind] ||= stats.evicted[kind] > 0;
    }
    expect(seen).toEqual({ synced: true, rejected: true, unsynced: true, anomalies: true });
    expect(store.stats().evicted.anomalies).toBe(anomalies.length);
    expect(store.stats()).toMatchObject({ rows: plannedRows.length, unsynced: plannedRows.length });
    expect(store.health().ok).toBe(true);
  });

  it('forgets the uploaded batches whose rows it evicted, so their records neither fill the cap nor slow later evictions', () => {
    // Rows uploaded in small blobs, as a busy gateway's sync makes them; then the cap falls so that
    // about half of them must go.
    append('pump-a', 0, 2000);
    for (let b = batches.next(bulk(10), namer, T0); b !== null; b = batches.next(bulk(10), namer, T0)) batches.markUploaded(b, SHA, T0);
    const batchCount = () => count(store, "SELECT count(*) AS n FROM sync_batches WHERE state = 'uploaded'");
    expect(batchCount()).toBe(200);
    store.setMaxBytes(Math.floor(store.stats().bytes * 0.6));
    const evicted = store.stats().evicted.synced;
    expect(evicted).toBeGreaterThan(0);
    // Every batch left still holds a row; the first ones, evicted whole, are gone (a batch evicted
    // in part stays).
    const empty = count(
      store,
      `SELECT count(*) AS n FROM sync_batches b WHERE NOT EXISTS (SELECT 1 FROM readings r WHERE r.pump_id = b.pump_id AND r.seq BETWEEN b.first_seq AND b.last_seq)`,
    );
    expect(empty).toBe(0);
    expect(batchCount()).toBe(200 - Math.floor(evicted / 10));
    // The rows left are still synced, and new rows plan and upload as before.
    expect(store.stats().unsynced).toBe(0);
    append('pump-a', 5000, 5);
    const next = batches.next(bulk(10), namer, T0)!;
    expect(next.rowCount).toBe(5);
  });

  it('keeps the eviction counts across a reopen', () => {
    append('pump-a', 0, 600);
    store.setMaxBytes(Math.floor(store.stats().bytes / 2));
    const before = store.stats();
    expect(before.evicted.unsynced).toBeGreaterThan(0);
    store.close();
    openStore(before.maxBytes);
    expect(store.stats()).toMatchObject({ rows: before.rows, unsynced: before.unsynced, evicted: before.evicted });
    expect(count(store, "SELECT value AS n FROM counters WHERE name = 'evicted_unsynced'")).toBe(before.evicted.unsynced);
  });

  it('drops an anomaly only when no normal unsynced row is left, even if the anomaly is older', () => {
    const old = append('pump-b', 0, 50, true);
    append('pump-a', 0, 400);
    store.setMaxBytes(capFor(Math.floor(store.stats().bytes * 0.6)));
    expect(store.stats().evicted).toMatchObject({ anomalies: 0, synced: 0, rejected: 0 });
    expect(store.stats().evicted.unsynced).toBeGreaterThan(0);
    expect(seqsOf(store, 'anomaly = 1')).toEqual(old);
  });
});

/** The smallest cap whose database budget holds `dbBytes` (the cap also holds the WAL's share). */
function capFor(dbBytes: number): number {
  let cap = dbBytes;
  while (databaseBudget(cap) < dbBytes) cap += 1024;
  return cap;
}

function fileSize(file: string): number {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
}
