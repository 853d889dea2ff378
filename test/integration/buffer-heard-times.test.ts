/**
 * BufferStore.heardTimes on a real SQLite buffer: the seq, reading time and receive time of a
 * pump's newest rows before a seq, oldest first, exactly as predictions() gives them, read down the
 * (pump_id, seq) index without the rows' values (what the silence alerts read for every pump at
 * start-up: agent/edge/pump-silence.ts bufferedPumps).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferedPumps } from '../../agent/edge/pump-silence.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';
import { queryPlans } from '../support/query-plans.js';

const T0 = Date.UTC(2026, 11, 6);
const PUMPS = ['pump-a', 'pump-b', 'pump-c'];
let dir: string;
let store: BufferStore;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'pumpwatch-heard-times-'));
  store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1024 ** 3 });
  store.open();
  // 3 000 readings, pumps in turn; every 50th arrived late (received a minute after its time), and pump-c stops at 2 000.
  const rows: PredictionRow[] = [];
  for (let i = 0; i < 3000; i++) {
    const pumpId = PUMPS[i % 3]!;
    if (pumpId === 'pump-c' && i >= 2000) continue;
    const ts = T0 + i * 1000;
    rows.push({ pumpId, ts, receivedAt: ts + (i % 50 === 0 ? 60_000 : 5), values: { Pressure: i }, score: 0.1, anomaly: false, modelVersion: 'v1', imputed: false, unscoredReason: null });
  }
  store.appendBatch(rows);
});
afterAll(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('BufferStore.heardTimes', () => {
  it('gives the seq, time and receive time of the newest rows of a pump before a seq, oldest first, as predictions() does', () => {
    const narrow = (pumpId: string, limit: number, beforeSeq?: number) =>
      store.predictions(pumpId, { limit, beforeSeq }).map((r) => ({ seq: r.seq, ts: r.ts, receivedAt: r.receivedAt }));
    for (const pumpId of PUMPS) {
      expect(store.heardTimes(pumpId, 33)).toEqual(narrow(pumpId, 33));
      expect(store.heardTimes(pumpId, 33, 1500)).toEqual(narrow(pumpId, 33, 1500));
      expect(store.heardTimes(pumpId, 5000)).toEqual(narrow(pumpId, 5000));
    }
    expect(store.heardTimes('pump-c', 3).map((r) => r.ts)).toEqual([T0 + 1_991_000, T0 + 1_994_000, T0 + 1_997_000]);
    expect(store.heardTimes('pump-a', 33, 1)).toEqual([]);
    expect(store.heardTimes('pump-z', 33)).toEqual([]);
    expect(bufferedPumps(store).map((p) => [p.pumpId, p.rows.length, p.rows.at(-1)!.ts])).toEqual([
      ['pump-a', 32, T0 + 2_997_000],
      ['pump-b', 32, T0 + 2_998_000],
      ['pump-c', 32, T0 + 1_997_000],
    ]);
  });

  it('walks the (pump_id, seq) index and reads no values', () => {
    const plan = queryPlans(store.db, () => store.heardTimes('pump-b', 33, 2000)).join('\n');
    expect(plan).toMatch(/USING (COVERING )?INDEX/);
    expect(plan).not.toMatch(/SCAN readings\b(?! USING)/);
  });
});
