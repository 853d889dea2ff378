/**
 * The page's stopped pumps (PumpBoard) against a real SQLite buffer, scored by a real engine with a
 * model the trainer fitted with a stopped-when rule (Current<0.5, warm-up 30 s): a reading without
 * the rule's feature leaves a stop running, and after a restart "Stopped since" is when the stop
 * began, found by looking back past the 200 rows read back.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PumpBoard, STOP_LOOKBACK_ROWS, type PumpSummary } from '../../agent/http/pump-board.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { ModelManager } from '../../inference/models.js';
import { STOPPED_PREFIX } from '../../inference/stopped.js';
import { queryPlans } from '../support/query-plans.js';
import { readingsWithStops, stopModels, stoppedValues } from '../support/stops.js';

let dir: string;
let buffer: BufferStore;
let engine: InferenceEngine;
let models: ModelManager;
let model: LoadedModel;
const T0 = Date.UTC(2026, 5, 1);

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-board-stops-'));
  buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
  buffer.open();
  model = await LoadedModel.fromBytes(stopModels({ version: 'rule-1' }).withRule, 'test');
  engine = new InferenceEngine();
  engine.setModel('default', model);
  models = new ModelManager({ engine, afterCurrentBatch: async () => undefined });
});

afterAll(async () => {
  await model.release();
  buffer.close();
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** As the agent's page sees them: the wall clock at the readings' end, so none is stale. */
const board = (): PumpBoard => new PumpBoard({ buffer, engine, models, clock: () => T0 + 10 * 86_400_000, monotonic: () => 0, staleAfterMs: Number.POSITIVE_INFINITY });
const pump = (b: PumpBoard, pumpId: string): PumpSummary => b.summaries().find((p) => p.pumpId === pumpId)!;
const withoutCurrent = (rs: Reading[], odd = (i: number) => i % 2 === 1): Reading[] => {
  rs.forEach((r, i) => {
    if (odd(i)) delete (r.values as Record<string, number | null>).Current;
  });
  return rs;
};

/** Scores the readings (in batches of `batch`) and stores them, as the pipeline does; `after` sees the board after each batch. */
async function feed(rs: readonly Reading[], b?: PumpBoard, batch = 50, after?: (first: number) => void): Promise<void> {
  for (let i = 0; i < rs.length; i += batch) {
    const rows = await engine.score(rs.slice(i, i + batch), rs[i]!.ts);
    const seqs = buffer.appendBatch(rows);
    b?.record(rows, seqs);
    after?.(i);
  }
}

describe('the page\'s stopped pump', () => {
  it('stays "stopped" through readings without the rule\'s feature (the rule cannot tell), and runs again at the first reading with it', async () => {
    // running 0-199, stopped 200-399, Current in every other reading only
    const rs = withoutCurrent(readingsWithStops(440, (i) => i >= 200 && i < 400, { pumpId: 'sparse', start: T0 }));
    const b = board();
    b.summaries(); // the page is open: the board follows the commits
    const states: string[] = [];
    await feed(rs.slice(0, 200), b);
    await feed(rs.slice(200, 400), b, 1, () => states.push(`${pump(b, 'sparse').state} ${pump(b, 'sparse').stoppedSince}`));
    // before the fix, a reading without Current ended the stop: "not-scored" (pump starting) every other reading, and the stop started anew at each stopped one
    expect(new Set(states)).toEqual(new Set([`stopped ${new Date(rs[200]!.ts).toISOString()}`]));
    await feed(rs.slice(400, 402), b, 1);
    expect(pump(b, 'sparse')).toMatchObject({ state: 'not-scored', running: true, stoppedSince: null });
    expect(pump(b, 'sparse').detail).toMatch(/^pump starting: /);
  });

  it('says when a night\'s stop began after a restart, looking back past the 200 rows it reads back, over readings without the feature, a resend and a late reading', async () => {
    // running 0-299, stopped from 300 on (5 000 readings), Current missing from one reading in three
    const rs = withoutCurrent(readingsWithStops(5300, (i) => i >= 300, { pumpId: 'night', start: T0 }), (i) => i % 3 === 1);
    await feed(rs);
    // a resend and a reading from an hour back (both left out of the history) in the stop
    const [again] = await engine.score([rs.at(-1)!], 0);
    const [late] = await engine.score([{ pumpId: 'night', ts: T0, values: { Pressure: 1.4, Flow: 30, Current: 1.4 } }], 0);
    expect(again!.unscoredReason).toMatch(/^not scored: repeats a reading this pump already sent/);
    expect(late!.unscoredReason).toMatch(/^not scored: older/);
    buffer.appendBatch([again!, late!]);
    const more = readingsWithStops(601, () => true, { pumpId: 'night', start: rs.at(-1)!.ts + 1000, seed: 9 });
    await feed(withoutCurrent(more));
    const p = pump(board(), 'night'); // a fresh board: as after a restart, seeded from the buffer
    expect(p).toMatchObject({ state: 'stopped', running: false, stoppedSince: new Date(rs[300]!.ts).toISOString(), stoppedSinceAtLeast: false });
  });

  it('reads the reasons down the (pump_id, seq) index, and says "since at least" for a stop older than it looks back over', () => {
    const n = STOP_LOOKBACK_ROWS + 2000;
    const t0 = T0 + 86_400_000;
    const r = (i: number): PredictionRow => {
      const running = i < 1000;
      return {
        pumpId: 'long', ts: t0 + i * 1000, receivedAt: t0 + i * 1000,
        values: running ? { Pressure: 1.4, Flow: 30, Current: 1.4 } : stoppedValues(() => 0.5),
        score: running ? 0.3 : null, anomaly: running ? false : null, modelVersion: 'rule-1', imputed: false,
        unscoredReason: running ? null : `${STOPPED_PREFIX}"Current" = 0.025, below 0.5 (model rule-1's stopped-when rule)`,
      };
    };
    for (let i = 0; i < n; i += 10_000) buffer.appendBatch(Array.from({ length: Math.min(10_000, n - i) }, (_, k) => r(i + k)));
    const b = board();
    let p: PumpSummary | undefined;
    const planned = queryPlans(buffer.db, () => (p = pump(b, 'long')));
    // the oldest row looked at: STOP_LOOKBACK_ROWS before the 200 read back
    const oldest = buffer.predictions('long', { limit: STOP_LOOKBACK_ROWS + 200 })[0]!;
    expect(p).toMatchObject({ state: 'stopped', stoppedSince: new Date(oldest.ts).toISOString(), stoppedSinceAtLeast: true });
    // no statement scans the readings table; the look back walks the (pump_id, seq) index down, stopping at the row it finds
    for (const plan of planned) expect(plan).not.toMatch(/^SCAN readings/m);
    const lookBack = planned.filter((plan) => plan.includes('json_each'));
    expect(lookBack.length).toBeGreaterThan(0);
    for (const plan of lookBack) expect(plan).toMatch(/^CO-ROUTINE .*\nSEARCH readings USING INDEX readings_pump_seq \(pump_id=\? AND seq<\?\)$/m);
  });

  it('after a restart, keeps a pump that stopped in alarm in anomaly and one that stopped after its alarm cleared stopped, however long the stop, reading down indexes', () => {
    const t0 = T0 + 3 * 86_400_000;
    const stopRows = 5000;
    // 100 anomalous readings, then `normals` normal ones, then a stop of 5 000 readings
    const rows = (pumpId: string, normals: number): PredictionRow[] =>
      Array.from({ length: 100 + normals + stopRows }, (_, i) => {
        const running = i < 100 + normals;
        return {
          pumpId, ts: t0 + i * 1000, receivedAt: t0 + i * 1000,
          values: running ? { Pressure: 1.4, Flow: 30, Current: 1.4 } : stoppedValues(() => 0.5),
          score: running ? (i < 100 ? 9 : 0.3) : null, anomaly: running ? i < 100 : null, modelVersion: 'rule-1', imputed: false,
          unscoredReason: running ? null : `${STOPPED_PREFIX}"Current" = 0.025, below 0.5 (model rule-1's stopped-when rule)`,
        };
      });
    buffer.appendBatch(rows('latched-stop', 4)); // four normal readings: too few to clear the alarm
    buffer.appendBatch(rows('cleared-stop', 5));
    const b = board();
    const planned = queryPlans(buffer.db, () => b.summaries());
    // before: both "stopped", the alarm cleared by the restart
    expect(pump(b, 'latched-stop')).toMatchObject({ state: 'anomaly', anomalySince: new Date(t0).toISOString(), anomalySinceAtLeast: false, running: false });
    expect(pump(b, 'cleared-stop')).toMatchObject({ state: 'stopped', anomalySince: null, stoppedSince: new Date(t0 + 105_000).toISOString() });
    for (const plan of planned) expect(plan).not.toMatch(/^SCAN readings/m);
    expect(planned.some((plan) => /^SEARCH readings USING COVERING INDEX readings_anomalies_pump_ts \(pump_id=\?\)$/m.test(plan))).toBe(true);
  });

  it('leaves a pump as it was through readings held as a stop in the making (`pump stopping`): running at a stop\'s beginning, stopped at a start, after a restart too', async () => {
    // a rule of two conditions, no warm-up: the readings where only one holds are held, not starting
    const rule = { when: [{ feature: 'Current', below: 0.5 }, { feature: 'Flow', below: 5 }], afterStartSeconds: 0 };
    const two = await LoadedModel.fromBytes(stopModels({ version: 'two-0', rule }).withRule, 'two-0');
    engine.setModel('coasting', two);
    try {
      // 20 s apart: running 0-99; the current down at 100-101, the flow still read; stopped 102-199; at 200-201 the current up, the flow not yet
      const rs = readingsWithStops(260, (i) => i >= 102 && i < 200, { pumpId: 'coasting', start: T0 }).map((r, i) => ({ ...r, ts: T0 + i * 20_000 }));
      for (const i of [100, 101]) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Current: 0.01 } };
      for (const i of [200, 201]) rs[i] = { ...rs[i]!, values: { ...rs[i - 2]!.values, Current: 1.4 } };
      const b = board();
      b.summaries();
      await feed(rs.slice(0, 100), b);
      const seen: Array<Partial<PumpSummary>> = [];
      const look = (): void => {
        const { state, running, stoppedSince } = pump(b, 'coasting');
        seen.push({ state, running, stoppedSince });
      };
      await feed(rs.slice(100, 103), b, 1, look);
      const since = new Date(rs[102]!.ts).toISOString();
      expect(seen).toEqual([
        { state: 'not-scored', running: true, stoppedSince: null },
        { state: 'not-scored', running: true, stoppedSince: null },
        { state: 'stopped', running: false, stoppedSince: since },
      ]);
      expect(buffer.predictions('coasting', { limit: 200 }).filter((r) => r.unscoredReason?.startsWith('pump stopping: ')).map((r) => r.ts)).toEqual([rs[100]!.ts, rs[101]!.ts]);
      await feed(rs.slice(103, 200), b);
      seen.length = 0;
      await feed(rs.slice(200, 202), b, 1, look);
      expect(seen).toEqual([
        { state: 'stopped', running: false, stoppedSince: since },
        { state: 'stopped', running: false, stoppedSince: since },
      ]);
      expect(pump(b, 'coasting').detail).toMatch(/^pump stopped: /);
      // a restart now: the board read back from the buffer says the same
      expect(pump(board(), 'coasting')).toMatchObject({ state: 'stopped', running: false, stoppedSince: since });
      seen.length = 0;
      await feed(rs.slice(202, 203), b, 1, look);
      // running again; its window holds the two held readings (not dropped for them)
      expect(seen).toEqual([{ state: 'not-scored', running: true, stoppedSince: null }]);
      expect(pump(b, 'coasting').detail).toBe('window filling: 3 of 5 readings');
    } finally {
      engine.setModel('coasting', null);
      await two.release();
    }
  });
});
