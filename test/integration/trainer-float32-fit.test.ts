/**
 * The agent holds readings as float32 (inference/window.ts), so the trainer fits on float32 values
 * too: a feature far from zero that varies by less than its float32 spacing (1e12 + U(0, 1000):
 * spacing 65 536) is one value in the agent. Fitted on its float64 values, such a feature put
 * every agent window 31 horizon scales off: the model flagged 100 % of readings, its own training
 * rows included, while the trainer's float64 scores flagged none. Through `fit` (CSV) and `train`
 * (readings from Azurite), scored in onnxruntime-node with float32 inputs.
 */
import { ContainerClient } from '@azure/storage-blob';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INPUT_NAME, OUTPUT_NAME, readModelMetadata } from '../../inference/contract.js';
import { ALGORITHM_NAMES } from '../../trainer/algorithms/index.js';
import { parseCsv } from '../../trainer/csv.js';
import { fitTable } from '../../trainer/fit.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { slidingWindows, toInputTensor } from '../../trainer/windows.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const FEATURES = ['Current', 'Voltage', 'Temp', 'Flow', 'Big'];

/** Pump-like readings plus `Big` = 1e12 + U(0, 1000): one float32 value (999 999 995 904). */
function reading(r: () => number): number[] {
  const load = r();
  return [1.3 + 0.5 * load + 0.05 * r(), 230 + 5 * r(), 80 + r(), 32 + 3 * load + 0.3 * r(), 1e12 + 1000 * r()];
}

/** Share of the windows over `rows` the model's ONNX flags, fed float32 as the agent feeds it. */
async function flaggedShare(bytes: Uint8Array, rows: readonly Float64Array[]): Promise<number> {
  const meta = readModelMetadata(bytes);
  const n = meta.features.length;
  const batch = slidingWindows(rows.map((row) => Float64Array.from(Float32Array.from(row))), meta.window).slice(meta.window - 1);
  const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1 });
  try {
    const out = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', toInputTensor(batch, n), [batch.length, meta.window, n]) });
    const scores = out[OUTPUT_NAME]!.data as Float32Array;
    return scores.filter((s) => s > meta.threshold).length / scores.length;
  } finally {
    await session.release();
  }
}

describe('fit on a feature far from zero that varies less than its float32 spacing', () => {
  const r = rng(5);
  const start = Date.UTC(2026, 0, 1);
  const lines = Array.from({ length: 2000 }, (_, i) => `${new Date(start + i * 1000).toISOString()},${reading(r).join(',')}`);
  const table = parseCsv(`timestamp,${FEATURES.join(',')}\n${lines.join('\n')}\n`);

  it('reads the CSV values as the float32 values the agent scores', () => {
    expect(table.rows.every((row) => row[4] === 999_999_995_904)).toBe(true);
    expect(table.rows[0]![0]).toBe(Math.fround(table.rows[0]![0]!));
  });

  it.each(ALGORITHM_NAMES)('%s: the exported model flags at most one in a hundred of its own training rows, and notes the feature as constant', async (algorithm) => {
    const { bytes, model } = fitTable(table, { algorithm, trainRows: 1500 });
    expect(await flaggedShare(bytes, table.rows.slice(0, 1500))).toBeLessThanOrEqual(0.01);
    expect(await flaggedShare(bytes, table.rows.slice(1500))).toBeLessThanOrEqual(0.01);
    expect(model.metrics.constantFeatures).toEqual(['Big']);
  });
});

describe('train on readings with a feature far from zero that varies less than its float32 spacing', () => {
  const T0 = Date.UTC(2026, 0, 1);
  const STEP = 20_000;
  const COUNT = 8640; // two days at 20 s
  let az: TestAzurite;
  let container: ContainerClient;

  const readingsOf = () => {
    const r = rng(21);
    return Array.from({ length: COUNT }, () => Float64Array.from(reading(r)));
  };

  beforeAll(async () => {
    az = await startTestAzurite();
    container = az.container('trainer-float32');
    await container.create();
    const all = readingsOf();
    await seedReadings(container, 'pump-big', 'gw-1', T0, COUNT, (i) => Object.fromEntries(FEATURES.map((f, j) => [f, all[i]![j]!])), { step: STEP, batch: 1000 });
  }, 60_000);

  afterAll(async () => {
    await az?.dispose();
  });

  it('fits on the float32 values: the feature is noted as not varying, and the model flags at most 1 % of the readings', async () => {
    const { code, out, err } = await runTrainer(['train', '--source', 'pump-big', '--from', '2026-01-01', '--to', '2026-01-03'], trainerContext(container, { now: new Date(T0 + 30 * 86_400_000) }));
    expect(code, err).toBe(0);
    const best = await readBest(container, 'pump-big');
    const record = await readModelRecord(container, 'pump-big', best!.pointer.version);
    // The raw held-out readings through the agent's own engine (float32 windows), in percent.
    expect(record.evaluation.asAgent!.challenger.far).toBeLessThanOrEqual(1);
    const bytes = await container.getBlockBlobClient(record.model.blob).downloadToBuffer();
    // Every reading, training rows included; features in the series' name order.
    const order = [...FEATURES].sort().map((f) => FEATURES.indexOf(f));
    expect(await flaggedShare(bytes, readingsOf().map((v) => Float64Array.from(order, (j) => v[j]!)))).toBeLessThanOrEqual(0.01);
    expect(readModelMetadata(bytes).metrics).toMatchObject({ constantFeatures: ['Big'] });
    expect(out).toMatch(/Big did not vary in the trained rows/);
  }, 120_000);
});
