/**
 * The trainer's carry-forward and a pause in a pump's readings: a value missing in the first
 * readings after a pause (longer than GAP_FACTOR × the pump's usual interval and GAP_MIN_MS) is
 * never carried into a training row from before the pause, as the agent's window, started again
 * after the pause, holds nothing from before it. Real blobs in Azurite read by the trainer's
 * prepareData (the cleaning `train`, `evaluate` and `drift` share), and the agent's engine on a
 * model the trainer fitted.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import type { Prepared } from '../../trainer/train/prepare.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { makeModel } from '../support/models.js';
import { readingsWithStops, silence } from '../support/stops.js';
import { preparedReadings } from '../support/trainer.js';

const T0 = Date.UTC(2026, 4, 1);
const N = 900;
/** Ten minutes without readings before reading 300 and before reading 500 (the pause rule's limit here: 60 s). */
const PAUSE_MS = 600_000;
const pausesBefore = (i: number) => (i >= 300 ? 1 : 0) + (i >= 500 ? 1 : 0);

/**
 * One reading a second on a running pump (no stop), with two pauses: the flow meter silent in the
 * three readings after the first (300-302), the pressure transmitter silent across the second
 * (496-504: four readings before it, five after), and the flow silent at 700-702 with no pause
 * near (carried as always).
 */
function readings(): Reading[] {
  const rs = readingsWithStops(N, () => false, { pumpId: 'pump-pause', start: T0 }).map((r, i) => ({ ...r, ts: r.ts + pausesBefore(i) * PAUSE_MS }));
  silence(rs, 'Flow', [300, 301, 302, 700, 701, 702]);
  silence(rs, 'Pressure', Array.from({ length: 9 }, (_, k) => 496 + k));
  return rs;
}

let az: TestAzurite;
let container: ContainerClient;
let prepared: Prepared;

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-pause-carry');
  await container.create();
  prepared = await preparedReadings(container, readings(), { source: 'pump-pause', from: T0, to: T0 + N * 1000 + 2 * PAUSE_MS });
}, 60_000);

afterAll(async () => {
  await az?.stop();
});

/** The cleaned (training) rows by reading index: feature name to value. */
function trainingRows(): Map<number, Record<string, number>> {
  const { series } = prepared.cleaned;
  const index = new Map(readings().map((r, i) => [r.ts, i]));
  return new Map(series.timestamps.map((ts, k) => [index.get(ts)!, Object.fromEntries(series.features.map((f, j) => [f, series.rows[k]![j]!]))]));
}

describe("the trainer's carry-forward at a pause in the readings", () => {
  it('carries no value from before a pause into a training row after it: such a row is dropped as missing that value', () => {
    const kept = trainingRows();
    expect(kept.size).toBe(N - 8);
    // before the fix: 300-302 trained on with the flow read at 299 (ten minutes before), and 500-504 on the pressure read at 495
    for (const i of [300, 301, 302, 500, 501, 502, 503, 504]) expect(kept.has(i), `reading ${i}`).toBe(false);
    for (const i of [303, 505]) expect(kept.has(i), `reading ${i}`).toBe(true);
    expect(prepared.cleaned.stats.droppedMissing).toBe(8);
    expect(prepared.cleaned.stats.missingByFeature).toMatchObject({ Flow: 3, Pressure: 5 });
    // the first row kept after each pause starts a segment, as it did before (the pause itself)
    const { segmentStarts, series } = prepared.cleaned;
    const index = new Map(readings().map((r, i) => [r.ts, i]));
    expect(segmentStarts.map((k) => index.get(series.timestamps[k]!))).toEqual([0, 303, 505]);
  });

  it('still carries a value up to a pause, and on a running pump with no pause in between', () => {
    const kept = trainingRows();
    for (const i of [700, 701, 702]) expect(kept.get(i)?.Flow, `reading ${i}`).toBe(kept.get(699)!.Flow);
    for (let i = 496; i < 500; i++) expect(kept.get(i)?.Pressure, `reading ${i}`).toBe(kept.get(495)!.Pressure);
  });

  it('keeps the rows the agent scores with the values it scores them on: the agent (its window started again after the pause) cannot score those readings either', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'pause', window: 1 }), 'pause');
    try {
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      const rs = readings();
      const rows = [];
      for (let i = 0; i < rs.length; i += 50) rows.push(...(await engine.score(rs.slice(i, i + 50), 0)));
      for (const i of [300, 301, 302]) expect(rows[i]!.unscoredReason, `reading ${i}`).toBe('no value known yet for feature "Flow"');
      for (const i of [500, 501, 502, 503, 504]) expect(rows[i]!.unscoredReason, `reading ${i}`).toBe('no value known yet for feature "Pressure"');
      for (const i of [303, 505]) expect(rows[i]!.score, `reading ${i}`).not.toBeNull();
      for (const i of [496, 497, 498, 499, 700, 701, 702]) expect(rows[i]!.imputed, `reading ${i}`).toBe(true);
      // the rows the agent scores are exactly the rows the trainer keeps
      const kept = trainingRows();
      const scored = rows.flatMap((row, i) => (row.score === null ? [] : [i]));
      expect(scored).toEqual([...kept.keys()]);
    } finally {
      await model.release();
    }
  });
});
