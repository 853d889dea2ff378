/**
 * The threshold in force on each scored line: readings scored by real onnxruntime sessions on
 * models the trainer exports, committed to a real buffer file and encoded as the sync encodes a
 * planned batch (its rows as stored, the drain's string-built lines). A consumer of the lake can
 * tell how far a score was from alarming without a registry record of the model.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SyncBatches } from '../../buffer/batches.js';
import { BufferStore } from '../../buffer/store.js';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { decodeBatch, encodeRawRows, type ReadingLine } from '../../sync/encoder.js';
import { readingsBlobName } from '../../sync/layout.js';
import { fitTable } from '../../trainer/fit.js';
import { makeModel, normalValues, rng, trainingTable } from '../support/models.js';
import { schema9File } from '../support/schema9.js';

const T0 = Date.UTC(2026, 10, 23, 10);
const LIMITS = { maxRows: 10_000, maxBytes: 1 << 30, anomalyContextRows: 0 };

let dir: string;
let path: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pw-sync-threshold-'));
  path = join(dir, 'buffer.sqlite');
});
afterEach(() => {
  rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** The lines of the store's unplanned rows, planned and encoded as the sync does it. */
async function uploadedLines(store: BufferStore): Promise<ReadingLine[]> {
  const batches = new SyncBatches(store);
  const batch = batches.next(LIMITS, (p, a, b, ts) => readingsBlobName(p, 'gw', a, b, ts), T0)!;
  const encoded = await encodeRawRows(batches.rawRows(batch), 'gw', store.bufferId());
  return decodeBatch(encoded.body, batch.blobName);
}

describe('the threshold on readings lines', () => {
  it('carries the threshold of the model that scored each row, the new one after a hot swap, and none on unscored rows', async () => {
    const first = await LoadedModel.fromBytes(makeModel({ version: 'a', window: 2 }), 'a');
    // Another algorithm, so another threshold (every PCA model's is the same quantile).
    const second = await LoadedModel.fromBytes(fitTable(trainingTable(600, 11), { version: 'b', window: 2, source: 'default', algorithm: 'mset' }).bytes, 'b');
    const store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    try {
      expect(second.meta.threshold).not.toBe(first.meta.threshold);
      const r = rng(3);
      const readings: Reading[] = Array.from({ length: 40 }, (_, i) => ({ pumpId: 'pump-1', ts: T0 + i * 1000, values: normalValues(r, i) }));
      const engine = new InferenceEngine();
      engine.setModel('default', first);
      store.appendBatch(await engine.score(readings.slice(0, 20), T0));
      engine.setModel('default', second); // what the model manager does on a hot swap
      store.appendBatch(await engine.score(readings.slice(20), T0));

      const lines = await uploadedLines(store);
      expect(lines).toHaveLength(40);
      expect(lines[0]).toMatchObject({ modelVersion: 'a', score: null });
      expect(lines[0]!.unscoredReason).toBeDefined();
      expect(lines[0]).not.toHaveProperty('threshold'); // its window was not full: unscored
      for (const l of lines.slice(1, 20)) expect([l.modelVersion, l.threshold]).toEqual(['a', first.meta.threshold]);
      for (const l of lines.slice(20)) expect([l.modelVersion, l.threshold]).toEqual(['b', second.meta.threshold]);
      for (const l of lines.filter((x) => x.score !== null)) expect(l.anomaly).toBe(l.score! > l.threshold!);
    } finally {
      store.close();
      await first.release();
      await second.release();
    }
  });

  it('writes no threshold for rows a buffer made by an older agent holds (it kept none)', async () => {
    const old: PredictionRow = { pumpId: 'pump-1', ts: T0, receivedAt: T0, values: { Pressure: 1 }, score: 0.25, anomaly: false, modelVersion: 'm-1', imputed: false, unscoredReason: null };
    schema9File(path, [old, { ...old, ts: T0 + 1000 }]);
    const store = new BufferStore({ path, maxBytes: 1 << 30 });
    store.open();
    try {
      const lines = await uploadedLines(store);
      expect(lines.map((l) => [l.score, l.modelVersion])).toEqual([[0.25, 'm-1'], [0.25, 'm-1']]);
      for (const l of lines) expect(l).not.toHaveProperty('threshold');
    } finally {
      store.close();
    }
  });
});
