import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncBatches, type PlanLimits } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow } from '../../buffer/types.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;
const reading = (pumpId: string, i: number, anomaly = false): PredictionRow => ({
  pumpId, ts: T0 + i * 1000, receivedAt: T0 + i * 1000, values: { Flow: i }, score: anomaly ? 0.99 : 0.1,
  anomaly, modelVersion: 'v1', imputed: false, unscoredReason: null,
});

describe('a dropped plan', () => {
  let dir: string;
  let store: BufferStore;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pw-dropplan-'));
    store = new BufferStore({ path: join(dir, 'b.db'), maxBytes: 1 << 30 });
    store.open();
  });
  afterEach(() => {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const anomalies of [[], [2]]) {
    it(`has its rows planned again, even when later rows were planned after it (anomalies at ${JSON.stringify(anomalies)})`, () => {
      const batches = new SyncBatches(store);
      const limits: PlanLimits = { maxRows: 5, maxBytes: 1 << 24, anomalyContextRows: 0 };
      store.appendBatch(Array.from({ length: 10 }, (_, k) => reading('p', k, anomalies.includes(k))));
      const plans = [];
      for (let p = batches.plan(limits, namer, T0); p !== null; p = batches.plan(limits, namer, T0)) plans.push(p);
      expect(plans.reduce((n, p) => n + p.rowCount, 0)).toBe(10); // every row planned, later ones after the first plan
      const first = plans.reduce((a, b) => (a.firstSeq < b.firstSeq ? a : b));
      batches.dropPlan(first);
      const again = batches.plan(limits, namer, T0);
      expect(again).not.toBeNull();
      expect([again!.firstSeq, again!.lastSeq]).toEqual([first.firstSeq, first.lastSeq]);
      expect(batches.plan(limits, namer, T0)).toBeNull();
    });
  }
});
