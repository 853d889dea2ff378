import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PRIORITY, RETENTION_STEP_ROWS, SyncBatches, type PlanLimits } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { deleteExpiredSynced } from '../../sync/retention.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const SHA = 'c'.repeat(64);
const LIMITS: PlanLimits = { maxRows: 1_000, maxBytes: 1 << 24, anomalyContextRows: 0 };
const namer = (p: string, a: number, b: number, ts: number): string =>
  `readings/${p}/${new Date(ts).toISOString().slice(0, 10)}/${String(a).padStart(12, '0')}-${String(b).padStart(12, '0')}.jsonl.gz`;

function reading(pumpId: string, i: number, anomaly = false): PredictionRow {
  return {
    pumpId,
    ts: T0 + i * 1000,
    receivedAt: T0 + i * 1000,
    values: { Pressure: (i % 50) / 50, Flow: i },
    score: anomaly ? 0.99 : 0.1,
    anomaly,
    modelVersion: 'v1',
    imputed: false,
    unscoredReason: null,
  };
}

const count = (store: BufferStore, sql: string): number => (store.db.prepare(sql).get() as { n: number }).n;

/** The in-memory counts must always equal what the file holds. */
function expectCountsMatchFile(store: BufferStore): void {
  expect(store.stats()).toMatchObject({
    rows: count(store, 'SELECT count(*) AS n FROM readings'),
    unsynced: count(store, 'SELECT count(*) AS n FROM readings_sync_state WHERE synced = 0'),
    rejected: count(store, 'SELECT count(*) AS n FROM rejected'),
  });
}

describe('SyncBatches on a real SQLite file', () => {
  let dir: string;
  let path: string;
  let store: BufferStore;
  let batches: SyncBatches;
  /** Appends readings of one pump, `anomalies` naming the indexes that are anomalous; returns the seqs. */
  const append = (pumpId: string, from: number, n: number, anomalies: number[] = []): number[] =>
    store.appendBatch(Array.from({ length: n }, (_, k) => reading(pumpId, from + k, anomalies.includes(from + k))));
  const reopen = (): void => {
    store.close();
    store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    batches = new SyncBatches(store);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-buffer-batches-'));
    path = join(dir, 'buffer.db');
    store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    batches = new SyncBatches(store);
  });
  afterEach(async () => {
    store.close();
    // The checkpoint thread closes its connection after close() returns (SQLite then deletes -wal and -shm): on a busy machine, after rmSync's retries.
    await vi.waitFor(() => expect(store.checkpointsEnded()).toBe(true), { timeout: 10_000, interval: 20 });
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  it('returns null when there is nothing to upload', () => {
    expect(batches.next(LIMITS, namer, T0)).toBeNull();
  });

  it('plans the oldest unplanned rows of one pump, in sequence order, when no anomaly waits', () => {
    const a = append('pump-a', 0, 3);
    const b = append('pump-b', 0, 4);
    const a2 = append('pump-a', 3, 2);
    const batch = batches.next(LIMITS, namer, T0)!;
    expect(batch).toMatchObject({ pumpId: 'pump-a', firstSeq: a[0], lastSeq: a2[1], rowCount: 5, priority: PRIORITY.bulk, state: 'planned', createdAt: T0 });
    expect(batch.blobName).toBe(namer('pump-a', a[0]!, a2[1]!, T0));
    expect(batches.rows(batch).map((r) => r.seq)).toEqual([...a, ...a2]);
    expect(batches.rows(batch).every((r) => r.pumpId === 'pump-a')).toBe(true);
    batches.markUploaded(batch, SHA, T0);
    const next = batches.next(LIMITS, namer, T0)!;
    expect(batches.rows(next).map((r) => r.seq)).toEqual(b);
  });

  it('caps a batch at maxRows and at about maxBytes of JSON', () => {
    append('pump-a', 0, 50);
    expect(batches.next({ ...LIMITS, maxRows: 20 }, namer, T0)!.rowCount).toBe(20);
    const small = batches.plan({ ...LIMITS, maxBytes: 5 * 230 }, namer, T0)!;
    expect(small.rowCount).toBeGreaterThanOrEqual(1);
    expect(small.rowCount).toBeLessThan(6);
    expect(batches.plan({ ...LIMITS, maxBytes: 1 }, namer, T0)!.rowCount).toBe(1); // never an empty batch
  });

  it('plans the newest anomaly first, with anomalyContextRows rows of its own pump before it', () => {
    append('pump-a', 0, 20, [5]);
    const b = append('pump-b', 0, 30, [25]);
    append('pump-a', 20, 10);
    const batch = batches.next({ ...LIMITS, anomalyContextRows: 10 }, namer, T0)!;
    expect(batch.priority).toBe(PRIORITY.anomalies);
    expect(batch.pumpId).toBe('pump-b');
    const seqs = batches.rows(batch).map((r) => r.seq);
    expect(seqs[0]).toBe(b[15]); // ten rows of context before the anomaly at index 25
    expect(seqs).toContain(b[25]);
    expect(seqs).toEqual(b.slice(15)); // then the rest of that pump, in order
    batches.markUploaded(batch, SHA, T0);
    const older = batches.next({ ...LIMITS, anomalyContextRows: 3 }, namer, T0)!;
    expect(older).toMatchObject({ pumpId: 'pump-a', priority: PRIORITY.anomalies });
    expect(batches.rows(older)[0]!.ts).toBe(T0 + 2_000); // three rows before the anomaly at index 5
  });

  it('takes an anomaly\'s context from its own UTC day only, and plans the rows before midnight on their own', () => {
    const midnight = Date.UTC(2026, 10, 24);
    const rows = Array.from({ length: 10 }, (_, k) => ({ ...reading('pump-a', k, k === 7), ts: midnight + (k - 5) * 1000 }));
    const seqs = store.appendBatch(rows); // rows 0–4 before midnight, 5–9 after it; the anomaly is row 7
    const alert = batches.next({ ...LIMITS, anomalyContextRows: 5 }, namer, T0)!;
    expect(batches.rows(alert).map((r) => r.seq)).toEqual(seqs.slice(5));
    expect(alert.blobName).toContain('2026-11-24');
    batches.markUploaded(alert, SHA, T0);
    const before = batches.next(LIMITS, namer, T0)!;
    expect(batches.rows(before).map((r) => r.seq)).toEqual(seqs.slice(0, 5));
    expect(before.blobName).toContain('2026-11-23');
  });

  it('keeps the anomaly in its batch when the wanted context is larger than a batch', () => {
    const a = append('pump-a', 0, 100, [80]);
    const batch = batches.next({ ...LIMITS, maxRows: 10, anomalyContextRows: 50 }, namer, T0)!;
    const seqs = batches.rows(batch).map((r) => r.seq);
    expect(seqs).toHaveLength(10);
    expect(seqs.at(-1)).toBe(a[80]);
    const [, , , later] = append('pump-a', 100, 5, [103]);
    const tight = batches.plan({ ...LIMITS, maxBytes: 1, anomalyContextRows: 50 }, namer, T0)!;
    expect(batches.rows(tight).map((r) => r.seq)).toEqual([later]); // no room for context, but the anomaly
  });

  it('returns the unfinished planned batch again, with the same rows, before planning a new one', () => {
    append('pump-a', 0, 10);
    const first = batches.next({ ...LIMITS, maxRows: 4 }, namer, T0)!;
    append('pump-a', 10, 5, [12]); // an anomaly arriving later does not jump the batch already planned
    const again = batches.next({ ...LIMITS, maxRows: 4 }, namer, T0 + 60_000)!;
    expect(again).toEqual(first);
    expect(batches.pending()).toEqual(first);
  });

  it('re-uploads the same planned batch after a crash: after reopening, next() gives the same batch and rows', () => {
    append('pump-a', 0, 40, [30]);
    const planned = batches.next({ ...LIMITS, anomalyContextRows: 5 }, namer, T0)!;
    const plannedRows = batches.rows(planned);
    batches.noteError(planned, 'connection reset');
    reopen(); // closed without markUploaded, like a crash between upload and confirmation
    append('pump-a', 40, 10, [45]);
    const recovered = batches.next({ ...LIMITS, maxRows: 3 }, namer, T0 + 3_600_000)!;
    expect(recovered).toEqual(planned);
    expect(batches.rows(recovered)).toEqual(plannedRows);
    batches.markUploaded(recovered, SHA, T0);
    expect(batches.next(LIMITS, namer, T0)!.id).not.toBe(planned.id);
  });

  it('plans every row exactly once across pumps and anomalies: no gaps, no duplicates', () => {
    const all: number[] = [];
    for (let k = 0; k < 6; k++) {
      all.push(...append(`pump-${k % 3}`, k * 50, 50, [k * 50 + 7, k * 50 + 33]));
    }
    const seen: number[] = [];
    const names = new Set<string>();
    for (let guard = 0; guard < 1000; guard++) {
      const batch = batches.next({ maxRows: 37, maxBytes: 1 << 20, anomalyContextRows: 9 }, namer, T0);
      if (batch === null) break;
      const batchRows = batches.rows(batch);
      expect(batchRows).toHaveLength(batch.rowCount);
      expect(new Set(batchRows.map((r) => r.pumpId))).toEqual(new Set([batch.pumpId]));
      expect(batchRows.map((r) => r.seq)).toEqual([...batchRows.map((r) => r.seq)].sort((x, y) => x - y));
      expect(names.has(batch.blobName)).toBe(false);
      names.add(batch.blobName);
      seen.push(...batchRows.map((r) => r.seq));
      batches.markUploaded(batch, SHA, T0);
    }
    expect([...seen].sort((x, y) => x - y)).toEqual(all);
    expect(store.stats().unsynced).toBe(0);
  });

  it('marks a batch uploaded and its rows synced in one transaction, and counts them', () => {
    append('pump-a', 0, 10);
    const batch = batches.next({ ...LIMITS, maxRows: 6 }, namer, T0)!;
    batches.markUploaded(batch, SHA, T0 + 5);
    expect(count(store, 'SELECT count(*) AS n FROM readings_sync_state WHERE synced = 1')).toBe(6);
    expect(store.db.prepare('SELECT state, sha256, uploaded_at FROM sync_batches WHERE id = ?').get(batch.id)).toEqual({ state: 'uploaded', sha256: SHA, uploaded_at: T0 + 5 });
    expect(batches.pending()).toBeNull();
    expect(store.stats()).toMatchObject({ rows: 10, unsynced: 4, oldestUnsyncedTs: T0 + 6_000 });
    batches.markUploaded(batch, SHA, T0 + 6); // a repeated confirmation changes nothing
    expect(store.stats().unsynced).toBe(4);
  });

  it('plans and marks a batch of 5 000 rows by writing one sync_batches row, never the readings it covers', () => {
    append('pump-a', 0, 5_000);
    const changes = (): number => (store.db.prepare('SELECT total_changes() AS n').get() as { n: number }).n;
    const before = changes();
    const batch = batches.next({ ...LIMITS, maxRows: 5_000 }, namer, T0)!;
    batches.markUploaded(batch, SHA, T0);
    expect(batch.rowCount).toBe(5_000);
    expect(changes() - before).toBe(2); // the batch inserted, then its state updated
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2); // FULL again after the relaxed mark
    expect(store.stats()).toMatchObject({ rows: 5_000, unsynced: 0 });
  });

  it('persists a plan committed at once and durable once its WAL fsync on the pool resolves: synchronous=FULL again after it', async () => {
    append('pump-a', 0, 20);
    const pick = batches.pick(LIMITS)!;
    const rows = store.ranges.candidates(pick.pumpId, pick.from, pick.bound, 10);
    const planned = batches.persistPlan(pick, { firstSeq: rows[0]!.seq, lastSeq: rows[7]!.seq, rowCount: 8 }, 'b-1', T0)!;
    const batch = planned.batch;
    expect(batch).toMatchObject({ pumpId: 'pump-a', firstSeq: rows[0]!.seq, lastSeq: rows[7]!.seq, rowCount: 8, state: 'planned' });
    expect(store.db.pragma('synchronous', { simple: true })).toBe(2);
    expect(batches.pending()).toEqual(batch); // committed: the next plan sees it before the fsync ends
    await expect(planned.durable).resolves.toBeUndefined();
    // A range that lost rows since it was read is not planned (rows evicted meanwhile).
    expect(batches.persistPlan(batches.pick(LIMITS)!, { firstSeq: rows[8]!.seq, lastSeq: rows[9]!.seq, rowCount: 3 }, 'b-2', T0)).toBeNull();
    store.db.pragma('wal_checkpoint(TRUNCATE)');
    await expect(store.syncWal()).resolves.toBeUndefined();
  });

  it('finds an older unplanned anomaly below planned anomaly batches of the same pump, before any bulk row', () => {
    const a = append('pump-a', 0, 60, [10, 30, 31, 50]);
    const limits = { ...LIMITS, maxRows: 5, anomalyContextRows: 1 };
    const planned = [];
    for (let k = 0; k < 4; k++) {
      const b = batches.next(limits, namer, T0)!;
      batches.markUploaded(b, SHA, T0);
      planned.push(b);
    }
    expect(planned.map((b) => [b.priority, b.firstSeq, b.lastSeq])).toEqual([
      [PRIORITY.anomalies, a[49], a[53]], // the newest anomaly (50) with one row of context
      [PRIORITY.anomalies, a[30], a[34]], // 31, found by stepping over 50's batch; 30 is its context
      [PRIORITY.anomalies, a[9], a[13]], // 10, found by stepping over two planned batches
      [PRIORITY.bulk, a[0], a[4]], // then bulk from the oldest row
    ]);
    const all = planned.flatMap((b) => batches.rows(b).map((r) => r.seq));
    expect(new Set(all).size).toBe(all.length); // disjoint
  });

  it('always plans the newest unplanned anomaly of any pump next, across interleaved pumps, rows arriving between plans, a horizon and a dropped plan', () => {
    // The planner walks all pumps' anomalies in seq order and remembers what it found planned; the
    // oracle: every anomaly not inside a planned range of its pump, by brute force.
    const newestUnplanned = (horizon = Number.MAX_SAFE_INTEGER): number | null =>
      (
        store.db
          .prepare(
            `SELECT max(r.seq) AS n FROM readings r WHERE r.anomaly = 1 AND r.seq <= ?
             AND NOT EXISTS (SELECT 1 FROM sync_batches b WHERE b.pump_id = r.pump_id AND r.seq BETWEEN b.first_seq AND b.last_seq)`,
          )
          .get(horizon) as { n: number | null }
      ).n;
    const pumps = ['pump-a', 'pump-b', 'pump-c', 'pump-d'];
    let i = 0;
    const arrive = (n: number): void => {
      const rows: PredictionRow[] = [];
      for (let k = 0; k < n; k++, i++) rows.push(reading(pumps[(i * 7) % pumps.length]!, i, (i * 13) % 10 < 6 || i % 37 === 0));
      store.appendBatch(rows);
    };
    arrive(400);
    const limits = { ...LIMITS, maxRows: 6, anomalyContextRows: 2 };
    let anomalyBatches = 0;
    for (let step = 0; step < 1000; step++) {
      const horizon = step % 5 === 0 ? batches.lastSeq() - 30 : undefined;
      const expected = newestUnplanned(horizon);
      expect(batches.newestUnplannedAnomaly(horizon), `step ${step}`).toBe(expected);
      const pick = batches.pick({ ...limits, horizon });
      if (expected === null) {
        expect(pick?.priority ?? PRIORITY.bulk, `step ${step}`).toBe(PRIORITY.bulk);
      } else {
        expect(pick).toMatchObject({ priority: PRIORITY.anomalies });
        anomalyBatches++;
      }
      const batch = batches.plan({ ...limits, horizon }, namer, T0);
      if (batch === null) break;
      if (expected !== null) expect(batch.firstSeq <= expected && expected <= batch.lastSeq, `step ${step}`).toBe(true);
      if (step === 40) batches.dropPlan(batch); // its anomalies wait again, and are planned again first
      else batches.markUploaded(batch, SHA, T0);
      if (step % 3 === 0 && step < 150) arrive(9);
    }
    expect(anomalyBatches).toBeGreaterThan(50);
    expect(newestUnplanned()).toBeNull();
    expect(count(store, 'SELECT count(*) AS n FROM readings_sync_state WHERE batch_id IS NULL')).toBe(0);
  });

  it('keeps a failed batch out of the queue with its reason', () => {
    append('pump-a', 0, 5);
    const batch = batches.next(LIMITS, namer, T0)!;
    batches.markFailed(batch, 'a different blob already has this name');
    expect(batches.pending()).toBeNull();
    expect(batches.failed()).toEqual([{ ...batch, state: 'failed' }]);
    expect(batches.next(LIMITS, namer, T0)).toBeNull();
  });

  it('deletes only synced rows received before the retention cutoff', () => {
    append('pump-a', 0, 10);
    batches.markUploaded(batches.next({ ...LIMITS, maxRows: 8 }, namer, T0)!, SHA, T0);
    expect(batches.deleteSyncedBefore(T0 + 5_000)).toBe(5); // synced rows 0..4
    expect(store.rowsBySeq(1, 100).map((r) => r.ts)).toEqual(Array.from({ length: 5 }, (_, k) => T0 + (k + 5) * 1000));
    expect(store.stats()).toMatchObject({ rows: 5, unsynced: 2 });
    expect(batches.deleteSyncedBefore(Number.MAX_SAFE_INTEGER)).toBe(3); // never the unsynced ones
    expectCountsMatchFile(store);
  });

  it('deletes a large retention backlog in short steps, with the event loop running between them (one statement held every request)', async () => {
    append('pump-a', 0, 9_000);
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0);
    append('pump-a', 9_000, 10); // unsynced: never retention's
    expect(batches.deleteSyncedBefore(Number.MAX_SAFE_INTEGER)).toBe(RETENTION_STEP_ROWS); // one step at most
    const seen: number[] = [];
    let done = false;
    const look = (): void => {
      if (done) return; // one may still be queued when retention ends, and the store closes after the test
      seen.push(store.stats().rows);
      setImmediate(look);
    };
    setImmediate(look);
    const { deleted } = await deleteExpiredSynced(batches, 0, T0 + 86_400_000);
    done = true;
    expect(deleted).toBe(9_000 - RETENTION_STEP_ROWS);
    // Something else ran while retention was under way: after its first step, before its last.
    expect(seen.some((rows) => rows < 9_010 - RETENTION_STEP_ROWS && rows > 10)).toBe(true);
    expect(store.stats()).toMatchObject({ rows: 10, unsynced: 10 });
    expect(count(store, "SELECT count(*) AS n FROM sync_batches WHERE state = 'uploaded'")).toBe(0); // forgotten at the last step
    expectCountsMatchFile(store);
  });

  it('stops its search at the first row received after the cutoff: a run with nothing to delete reads a step of rows, not every synced row', () => {
    append('pump-a', 0, 6_000); // received at T0 + k s
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0);
    expect(batches.retentionBoundStep(T0 - 1, 0)).toEqual({ bound: 1, last: 1 }); // everything is newer: the search stops at once
    expect(batches.retentionBoundStep(T0 + 4_500_000, 0)).toEqual({ bound: null, last: RETENTION_STEP_ROWS });
    expect(batches.retentionBoundStep(T0 + 4_500_000, 4_000)).toEqual({ bound: 4_501, last: 4_501 });
    expect(batches.retentionBoundStep(T0 + 99_000_000, 4_000)).toEqual({ bound: null, last: 6_000 });
    expect(batches.retentionBoundStep(T0 + 99_000_000, 6_000)).toEqual({ bound: null, last: null });
    // Below the bound, the rows received before the cutoff; the rows above it are not looked at.
    expect(batches.deleteSyncedBefore(T0 + 4_500_000, 10_000, 4_501)).toBe(4_500);
    expect(batches.deleteSyncedBefore(Number.MAX_SAFE_INTEGER, 10_000, 4_501)).toBe(0);
    expect(store.stats().rows).toBe(1_500);
  });

  it('keeps synced rows received before NTP stepped the clock 3 years forward for the retention hours since they arrived, not since the old clock\'s time', async () => {
    const YEARS = 3 * 365 * 86_400_000;
    const at = (pumpId: string, i: number, receivedAt: number): PredictionRow => ({ ...reading(pumpId, i), ts: receivedAt, receivedAt });
    // Received on a clock 3 years behind (a gateway that booted with an old clock), then the step at T0,
    // then rows received on the new clock before the scheduler noticed it (5 s later).
    store.appendBatch(Array.from({ length: 20 }, (_, k) => at('pump-a', k, T0 - YEARS - 60_000 + k * 1000)));
    store.appendBatch(Array.from({ length: 5 }, (_, k) => at('pump-a', 20 + k, T0 + k * 1000)));
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 5_000);
    // The scheduler's last check of the clocks before the step came after the 15th row.
    expect(batches.recordClockStep(YEARS, T0 + 5_000, 15)).toBe(20); // the last row on the old clock
    expect(batches.recordClockStep(30_000, T0 + 5_000, 25)).toBeNull(); // a small step changes nothing worth a record
    // Before: all 20 deleted at the first run (3 years "old"), a minute after they arrived.
    expect((await deleteExpiredSynced(batches, 72, T0 + 60_000)).deleted).toBe(0);
    expect(store.stats().rows).toBe(25);
    // 72 h after they arrived (on the new clock) they go, the rows since the step 5 s later.
    expect((await deleteExpiredSynced(batches, 72, T0 + 72 * 3_600_000)).deleted).toBe(20);
    expect((await deleteExpiredSynced(batches, 72, T0 + 72 * 3_600_000 + 10_000)).deleted).toBe(5);
    expect(count(store, 'SELECT count(*) AS n FROM clock_steps')).toBe(0); // forgotten with the rows it corrected
    expectCountsMatchFile(store);
  });

  it('records a step with 12 000 rows on each side of it since the last check of the clocks (a busy gateway), and retention keeps the rows before it', async () => {
    const YEARS = 3 * 365 * 86_400_000;
    const at = (i: number, receivedAt: number): PredictionRow => ({ ...reading('pump-a', i), ts: receivedAt, receivedAt });
    // 20 rows, then the scheduler's check of the clocks (newest seq 20); then 2 400 readings/s for
    // 5 s on the clock 3 years behind, the step, 5 s more on the new clock, and the next check.
    store.appendBatch(Array.from({ length: 20 }, (_, k) => at(k, T0 - YEARS - 60_000 + k * 1000)));
    const checked = batches.lastSeq();
    for (let b = 0; b < 12; b++) store.appendBatch(Array.from({ length: 1_000 }, (_, k) => at(20 + b * 1_000 + k, T0 - YEARS - 5_000 + Math.floor((b * 1_000 + k) / 2.4))));
    const lastOld = batches.lastSeq();
    for (let b = 0; b < 12; b++) store.appendBatch(Array.from({ length: 1_000 }, (_, k) => at(12_020 + b * 1_000 + k, T0 + Math.floor((b * 1_000 + k) / 2.4))));
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 5_000);
    expect(store.stats()).toMatchObject({ rows: 24_020, unsynced: 0 });
    // Before: null, with nothing logged (the newest 10 000 rows were all on the new clock)...
    expect(batches.recordClockStep(YEARS, T0 + 5_000, checked)).toBe(lastOld);
    // ...and this run deleted all 12 020 rows received before the step, a minute after they arrived.
    expect((await deleteExpiredSynced(batches, 72, T0 + 60_000)).deleted).toBe(0);
    expect(store.stats().rows).toBe(24_020);
    expect((await deleteExpiredSynced(batches, 72, T0 + 72 * 3_600_000)).deleted).toBe(12_020); // 72 h after they arrived
  });

  it('finds the last row before a step among every row when the newest seq at the last check is unknown, and records nothing on an empty buffer', () => {
    const YEARS = 3 * 365 * 86_400_000;
    const at = (i: number, receivedAt: number): PredictionRow => ({ ...reading('pump-a', i), ts: receivedAt, receivedAt });
    expect(batches.recordClockStep(YEARS, T0, null)).toBeNull();
    expect(batches.recordClockStep(YEARS, T0, -1)).toBeNull();
    store.appendBatch(Array.from({ length: 20 }, (_, k) => at(k, T0 - YEARS - 60_000 + k * 1000)));
    store.appendBatch(Array.from({ length: 11_000 }, (_, k) => at(20 + k, T0 + Math.floor(k / 3))));
    expect(batches.recordClockStep(YEARS, T0 + 5_000, null)).toBe(20);
    // A check newer than every row (a buffer file put back from before): the newest row, never a seq not used yet.
    expect(batches.recordClockStep(-YEARS, T0 + 5_000, 50_000)).toBe(11_020);
    expect(store.db.prepare('SELECT after_seq AS afterSeq FROM clock_steps ORDER BY rowid').all()).toEqual([{ afterSeq: 20 }, { afterSeq: 11_020 }]);
  });

  it('corrects only the rows of the run that noticed a step: a reboot at 1970 after running on the right clock keeps the age of the rows from before it', async () => {
    const YEARS56 = Date.UTC(2026, 0, 1) - Date.UTC(1970, 0, 1);
    const H72 = 72 * 3_600_000;
    const at = (i: number, receivedAt: number): PredictionRow => ({ ...reading('pump-a', i), ts: receivedAt, receivedAt });
    // On the right clock (T0 - 10 s .. T0 - 1 s), then a power cut of 30 s: no clock battery, the
    // gateway boots at 1970 and the agent opens its buffer there, its newest row seq 10.
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(k, T0 - 10_000 + k * 1000)));
    const boot = T0 + 30_000 - YEARS56;
    // Ten rows at 1970; NTP sets the clock 60 s after the boot, the scheduler notices it 5 s later.
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(10 + k, boot + k * 1000)));
    store.appendBatch(Array.from({ length: 5 }, (_, k) => at(20 + k, T0 + 90_000 + k * 100)));
    expect(batches.recordClockStep(T0 + 30_000 - boot, T0 + 95_000, 12, 10)).toBe(20);
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 100_000);
    // Today's clock: every row as it came; the rows from before the reboot untouched by NTP's step.
    const corrected = store.receiveTimeCorrection();
    expect(store.rowsBySeq(1, 25).map((r) => corrected(r.seq, r.receivedAt) - (r.seq <= 10 ? r.receivedAt : r.seq <= 20 ? T0 + 30_000 + (r.seq - 11) * 1000 : r.receivedAt))).toEqual(Array<number>(25).fill(0));
    expect((await deleteExpiredSynced(batches, 72, T0 - 10_001 + H72)).deleted).toBe(0); // nothing early
    // Before the run boundary: 0 here and at every later run (retention stopped at the first row, "received" in 2082).
    expect((await deleteExpiredSynced(batches, 72, T0 + 40_000 + H72)).deleted).toBe(20);
    expect((await deleteExpiredSynced(batches, 72, T0 + 100_000 + H72)).deleted).toBe(5);
    expect(count(store, 'SELECT count(*) AS n FROM clock_steps')).toBe(0);
  });

  it('corrects the rows of an earlier boot at 1970 too when NTP steps the clock by years, and not those from before it on the right clock', async () => {
    const H24 = 24 * 3_600_000;
    const at = (i: number, receivedAt: number): PredictionRow => ({ ...reading('pump-a', i), ts: receivedAt, receivedAt });
    // 10 rows on the right clock, 50 h ago; off for 50 h; boot 1 at 1970 (10 rows), boot 2 at 1970 (10 rows, from seq 20), NTP.
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(k, T0 - 50 * 3_600_000 + k * 1000)));
    const boot = Date.UTC(1970, 0, 1);
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(10 + k, boot + k * 1000)));
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(20 + k, boot + k * 1000)));
    expect(batches.recordClockStep(T0 - (boot + 20_000), T0, 25, 20)).toBe(30);
    expect(store.db.prepare('SELECT from_seq AS fromSeq FROM clock_steps').get()).toEqual({ fromSeq: 10 });
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 1_000);
    // Retention of 24 h: the rows on the right clock are due (50 h old); boot 1's, minutes old, are not
    // (with the step for boot 2's rows only, they read 1970 and went here too).
    expect((await deleteExpiredSynced(batches, 24, T0 + 60_000)).deleted).toBe(10);
    expect(store.stats().rows).toBe(20);
    expect((await deleteExpiredSynced(batches, 24, T0 + H24)).deleted).toBe(20); // a day on, all due
  });

  it('never deletes a row of an earlier run early for a step back noticed later: a restart on a clock that came up 20 min ahead, and NTP stepping it back', async () => {
    const AHEAD = 20 * 60_000;
    const H72 = 72 * 3_600_000;
    const at = (i: number, receivedAt: number): PredictionRow => ({ ...reading('pump-a', i), ts: receivedAt, receivedAt });
    // An earlier run on the right clock (T0 - 60 s .. T0 - 51 s); a restart on a clock 20 min ahead; ten rows; NTP.
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(k, T0 - 60_000 + k * 1000)));
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(10 + k, T0 + AHEAD + k * 1000)));
    expect(batches.recordClockStep(-AHEAD, T0 + 15_000, 15, 10)).toBe(20);
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 20_000);
    // Before the run boundary the step moved the earlier run's rows 20 min back too: all 10 went here, 10 min early.
    expect((await deleteExpiredSynced(batches, 72, T0 - 51_000 - AHEAD / 2 + H72)).deleted).toBe(0);
    expect((await deleteExpiredSynced(batches, 72, T0 - 50_000 + H72)).deleted).toBe(10); // when due
    expect((await deleteExpiredSynced(batches, 72, T0 + 10_000 + H72)).deleted).toBe(10); // this run's, when due on today's clock
  });

  it('never corrects a row past the time the step after it was noticed: a step misapplied to rows from before a reboot keeps them only until then', async () => {
    const YEARS56 = Date.UTC(2026, 0, 1) - Date.UTC(1970, 0, 1);
    const H72 = 72 * 3_600_000;
    const at = (i: number, receivedAt: number): PredictionRow => ({ ...reading('pump-a', i), ts: receivedAt, receivedAt });
    // The step back at the reboot not recorded (a buffer from an agent before it): only NTP's, at the last 1970 row.
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(k, T0 - 10_000 + k * 1000)));
    const boot = T0 + 30_000 - YEARS56;
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at(10 + k, boot + k * 1000)));
    expect(batches.recordClockStep(T0 + 30_000 - boot, T0 + 95_000, 12)).toBe(20);
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 100_000);
    const corrected = store.receiveTimeCorrection();
    expect(corrected(1, T0 - 10_000)).toBe(T0 + 95_000); // before: T0 + 56 years
    expect(batches.retentionBoundStep(T0 + 95_001 + H72, 0)).toEqual({ bound: null, last: null }); // before: bound 1
    // The rows at 1970 wait behind them (retention stops at the first row not due), a minute late at most.
    expect((await deleteExpiredSynced(batches, 72, T0 + 40_000 + H72)).deleted).toBe(0);
    // Before: 0, and 0 for 56 years.
    expect((await deleteExpiredSynced(batches, 72, T0 + 95_001 + H72)).deleted).toBe(20);
  });

  it('ages rows received on a clock 2 h ahead by their arrival once NTP stepped it back, not 2 h younger', async () => {
    const HOURS2 = 2 * 3_600_000;
    const at = (pumpId: string, i: number, receivedAt: number): PredictionRow => ({ ...reading(pumpId, i), ts: receivedAt, receivedAt });
    store.appendBatch(Array.from({ length: 10 }, (_, k) => at('pump-a', k, T0 + HOURS2 - 60_000 + k * 1000))); // the clock 2 h ahead
    store.appendBatch(Array.from({ length: 3 }, (_, k) => at('pump-a', 10 + k, T0 + k * 1000))); // since the step, at T0
    for (let b = batches.next(LIMITS, namer, T0); b !== null; b = batches.next(LIMITS, namer, T0)) batches.markUploaded(b, SHA, T0 + 5_000);
    expect(batches.recordClockStep(-HOURS2, T0 + 5_000, 8)).toBe(10);
    expect((await deleteExpiredSynced(batches, 72, T0 + 72 * 3_600_000)).deleted).toBe(10); // without the record: 0, kept 2 h more
    expect(store.stats().rows).toBe(3);
  });

  it('forgets uploaded batches whose rows are all gone, and keeps planned ones, so the batch table stays bounded', () => {
    append('pump-a', 0, 30);
    for (let k = 0; k < 2; k++) batches.markUploaded(batches.next({ ...LIMITS, maxRows: 10 }, namer, T0)!, SHA, T0 + k);
    const planned = batches.next({ ...LIMITS, maxRows: 10 }, namer, T0)!;
    batches.deleteSyncedBefore(T0 + 5_000); // half of the first batch's rows
    expect(count(store, 'SELECT count(*) AS n FROM sync_batches')).toBe(3);
    batches.deleteSyncedBefore(T0 + 20_000);
    expect(store.db.prepare('SELECT id, state FROM sync_batches').all()).toEqual([{ id: planned.id, state: 'planned' }]);
    expect(batches.next(LIMITS, namer, T0)).toEqual(planned);
    expect(batches.rows(planned)).toHaveLength(10);
  });

  it('keeps rows, unsynced and rejected counts right through append, eviction, upload, retention and reopen', () => {
    const check = (): void => expectCountsMatchFile(store);
    append('pump-a', 0, 300);
    store.appendRejected([{ source: 'http', raw: 'x'.repeat(3000), reason: 'bad', receivedAt: T0 }]);
    check();
    batches.markUploaded(batches.next({ ...LIMITS, maxRows: 120 }, namer, T0)!, SHA, T0);
    check();
    batches.next({ ...LIMITS, maxRows: 50 }, namer, T0); // planned, not uploaded
    check();
    store.setMaxBytes(store.stats().bytes - 8 * 4096); // forces eviction
    expect(store.stats().evicted.total).toBeGreaterThan(0);
    check();
    batches.deleteSyncedBefore(Number.MAX_SAFE_INTEGER);
    check();
    reopen();
    check();
    append('pump-a', 300, 10);
    check();
  });
});
