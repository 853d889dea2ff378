import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { PRIORITY, SyncBatches, type PlanLimits, type PlannedBatch } from '../../buffer/batches.js';
import { UNPLANNED_SQL } from '../../buffer/ranges.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { rng } from '../support/models.js';

/**
 * The planner's pick (SyncBatches.pick) keeps what it knows of each pump between picks, and looks
 * at only the few pumps that can hold the oldest unplanned row. Here it is checked against the
 * question asked of the whole file in SQL, after every step of a long random run that does what a
 * gateway does to the buffer: pumps appear, rows arrive with and without anomalies, cycles plan
 * batches up to a horizon, batches go up, fail and are dropped, retention deletes synced rows, and
 * the file is reopened.
 */

const T0 = Date.UTC(2026, 11, 6, 10);
const SHA = 'd'.repeat(64);
const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;

function reading(pumpId: string, i: number, anomaly: boolean): PredictionRow {
  return {
    pumpId, ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Pressure: 1, Flow: i }, score: anomaly ? 0.99 : 0.1,
    anomaly, modelVersion: 'v1', imputed: false, unscoredReason: null,
  };
}

describe('the planner\'s pick against the whole file', () => {
  let dir: string;
  let path: string;
  let store: BufferStore;
  let batches: SyncBatches;
  const open = (): void => {
    store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    batches = new SyncBatches(store);
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-pick-order-'));
    path = join(dir, 'buffer.db');
    open();
  });
  afterEach(async () => {
    store.close();
    await vi.waitFor(() => expect(store.checkpointsEnded()).toBe(true), { timeout: 10_000, interval: 20 });
    rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
  });

  /** What a pick must return, asked of every row in SQL (no state kept between questions). */
  function expected(horizon: number): { pumpId: string; from: number; bound: number | null; priority: number } | null {
    const db = store.db;
    const anomaly = db.prepare(`SELECT seq, pump_id AS pumpId FROM readings r WHERE anomaly = 1 AND seq <= ? AND ${UNPLANNED_SQL} ORDER BY seq DESC LIMIT 1`).get(horizon) as
      | { seq: number; pumpId: string }
      | undefined;
    const oldest = db.prepare(`SELECT seq, pump_id AS pumpId FROM readings r WHERE seq <= ? AND ${UNPLANNED_SQL} ORDER BY seq LIMIT 1`).get(horizon) as
      | { seq: number; pumpId: string }
      | undefined;
    const row = anomaly ?? oldest;
    if (row === undefined) return null;
    const next = db.prepare('SELECT min(first_seq) AS s FROM sync_batches WHERE pump_id = ? AND first_seq > ?').get(row.pumpId, row.seq) as { s: number | null };
    return { pumpId: row.pumpId, from: row.seq, bound: Math.min(next.s ?? Number.MAX_SAFE_INTEGER, horizon + 1), priority: anomaly ? PRIORITY.anomalies : PRIORITY.bulk };
  }

  it.each([1, 2, 3, 4])('picks the newest unplanned anomaly, else the oldest unplanned row, at every step of a random run (seed %i)', (seed) => {
    const rnd = rng(seed); // the same run every time, a seed per case
    const pick = (n: number): number => Math.floor(rnd() * n);
    let pumps = 3;
    let clock = 0;
    const planned: PlannedBatch[] = [];
    let picks = 0;
    let bulkPicks = 0;
    for (let step = 0; step < 600; step++) {
      const op = rnd();
      if (op < 0.35) {
        // Readings arrive: from one pump or several, now and then from a pump never seen before.
        if (rnd() < 0.05) pumps++;
        const rows = Array.from({ length: 1 + pick(12) }, () => reading(`pump-${pick(pumps)}`, clock++, rnd() < 0.03));
        store.appendBatch(rows);
      } else if (op < 0.8) {
        // A cycle plans up to its horizon: the newest seq, or (rows arrived since it began) one below it.
        const last = batches.lastSeq();
        const horizon = rnd() < 0.5 ? last : Math.max(-1, last - pick(40));
        const limits: PlanLimits = { maxRows: 1 + pick(30), maxBytes: 1 << 24, anomalyContextRows: 0, horizon };
        const want = expected(horizon);
        expect(batches.pick(limits), `step ${step}, horizon ${horizon}`).toEqual(want);
        picks++;
        if (want?.priority === PRIORITY.bulk) bulkPicks++;
        const batch = want === null ? null : batches.plan(limits, namer, T0);
        if (batch !== null) planned.push(batch);
      } else if (op < 0.9 && planned.length > 0) {
        // A planned batch goes up, or its rows turn out unreadable and it is dropped (planned again).
        const batch = planned.splice(pick(planned.length), 1)[0]!;
        if (rnd() < 0.75) batches.markUploaded(batch, SHA, T0);
        else batches.dropPlan(batch);
      } else if (op < 0.95) {
        // Retention: synced rows go.
        batches.deleteSyncedBefore(Number.MAX_SAFE_INTEGER, 1 + pick(50));
      } else if (op < 0.97) {
        store.close();
        open();
      } else {
        // The status page asks where the oldest unsynced row is (it shares the pick's knowledge).
        const pending = store.db.prepare("SELECT min(first_seq) AS s FROM sync_batches WHERE state <> 'uploaded' AND kind = 'readings'").get() as { s: number | null };
        const unplanned = expected(Number.MAX_SAFE_INTEGER) === null ? null : (store.db.prepare(`SELECT min(seq) AS s FROM readings r WHERE ${UNPLANNED_SQL}`).get() as { s: number }).s;
        const want = [pending.s, unplanned].filter((s): s is number => s !== null);
        expect(store.ranges.oldestUnsyncedSeq()).toBe(want.length === 0 ? null : Math.min(...want));
      }
    }
    // The run went through the cases that matter: many picks, most of them bulk, and pumps added.
    expect(picks).toBeGreaterThan(200);
    expect(bulkPicks).toBeGreaterThan(100);
    expect(pumps).toBeGreaterThan(3);
    // Drained to the end, nothing is left unplanned.
    for (let batch = batches.plan({ maxRows: 50, maxBytes: 1 << 24, anomalyContextRows: 0 }, namer, T0); batch !== null; batch = batches.plan({ maxRows: 50, maxBytes: 1 << 24, anomalyContextRows: 0 }, namer, T0)) {
      batches.markUploaded(batch, SHA, T0);
    }
    expect(expected(Number.MAX_SAFE_INTEGER)).toBeNull();
  });

  it('a pump that first reports during a cycle waits for the next cycle, and is picked then', () => {
    store.appendBatch(Array.from({ length: 5 }, (_, i) => reading('pump-a', i, false)));
    const horizon = batches.lastSeq();
    const limits: PlanLimits = { maxRows: 2, maxBytes: 1 << 24, anomalyContextRows: 0, horizon };
    const first = batches.plan(limits, namer, T0)!;
    const [newPumpSeq] = store.appendBatch([reading('pump-new', 99, false)]);
    const inCycle: PlannedBatch[] = [first];
    for (let b = batches.plan(limits, namer, T0); b !== null; b = batches.plan(limits, namer, T0)) inCycle.push(b);
    expect(inCycle.map((b) => b.pumpId)).toEqual(['pump-a', 'pump-a', 'pump-a']);
    expect(batches.pick({ ...limits, horizon: batches.lastSeq() })).toMatchObject({ pumpId: 'pump-new', from: newPumpSeq });
  });
});
