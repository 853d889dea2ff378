/**
 * A frozen sensor (a transmitter repeating its last value) with real onnxruntime sessions on a
 * model the trainer fitted with a stopped-when rule: found when its run of identical readings on
 * the running pump reaches the model's bound (`pumpwatch.stuck_after`), not before, never during
 * a stop, cleared when the value changes, found again at once after a restart (from the rows the
 * buffer gives back) without being announced twice, and a failed commit's readings are not counted.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { metadataToProps } from '../../inference/contract.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { TRAINER_VERSION } from '../../trainer/fit.js';
import { encodeModel } from '../../trainer/onnx/model.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

let model: LoadedModel;
let bound: number;

beforeAll(async () => {
  model = await LoadedModel.fromBytes(stopModels({ version: 'f1' }).withRule, 'f1');
  bound = model.meta.stuckAfter!.Current!;
});

afterAll(async () => {
  await model.release();
});

/** Running, Current frozen at reading 99's value from `from` to `to` (exclusive); stopped (Current 0.02 flat, Flow 0) where `stopped` says. */
function readings(n: number, frozen: { from: number; to: number } | null, stopped: (i: number) => boolean = () => false): Reading[] {
  const rs = readingsWithStops(n, stopped, { pumpId: 'p1' });
  for (let i = 0; i < n; i++) {
    if (stopped(i)) rs[i]!.values = { ...rs[i]!.values, Current: 0.02 };
    else if (frozen && i >= frozen.from && i < frozen.to) rs[i]!.values = { ...rs[i]!.values, Current: rs[frozen.from - 1]!.values.Current! };
  }
  return rs;
}

async function scoreAll(engine: InferenceEngine, rs: readonly Reading[], batch = 37): Promise<PredictionRow[]> {
  const rows: PredictionRow[] = [];
  for (let i = 0; i < rs.length; i += batch) rows.push(...(await engine.score(rs.slice(i, i + batch), 0)));
  return rows;
}

const began = (rows: readonly PredictionRow[]) => rows.flatMap((r, i) => (r.sensorFaultsBegan ?? []).map((f) => [i, f.feature, f.readings]));

describe('a frozen sensor', () => {
  it('the model carries a bound for each noisy sensor, the floor of 60 readings here', () => {
    expect(model.meta.stuckAfter).toEqual({ Pressure: 60, Flow: 60, Current: 60 });
  });

  it('is found when its run reaches the bound, not before; scoring goes on; it clears when the value changes', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', model);
    const rs = readings(400, { from: 100, to: 300 });
    const before = await scoreAll(engine, rs.slice(0, 99 + bound - 1));
    // the run began at reading 99 (the value it froze at): 59 readings in a row so far
    expect(began(before)).toEqual([]);
    expect(engine.sensorFaults('p1')).toEqual([]);
    const at = await scoreAll(engine, rs.slice(99 + bound - 1, 300));
    expect(began(at)).toEqual([[0, 'Current', bound]]);
    expect(engine.sensorFaults('p1')).toEqual([{ feature: 'Current', kind: 'frozen', since: rs[99]!.ts, readings: 201, value: rs[99]!.values.Current, after: bound }]);
    // nothing silently dropped: the frozen readings are scored as ever
    expect(at.every((r) => r.score !== null)).toBe(true);
    const after = await scoreAll(engine, rs.slice(300));
    expect(began(after)).toEqual([]);
    expect(engine.sensorFaults('p1')).toEqual([]);
  });

  it('is not found on a stopped pump whose current sits still (the stopped-when rule), nor counted from the stop', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', model);
    // stopped 100-399: Current 0.02 and Flow 0 throughout, 300 readings of each unchanged
    const rs = readings(600, null, (i) => i >= 100 && i < 400);
    const rows = await scoreAll(engine, rs);
    expect(rows.slice(100, 400).every((r) => r.unscoredReason?.startsWith('pump stopped: '))).toBe(true);
    expect(began(rows)).toEqual([]);
    expect(engine.sensorFaults('p1')).toEqual([]);
  });

  it('counts a run that began before a stop again from the restart', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', model);
    // frozen 100-149 (51 readings with 99), stopped 150-199, frozen again at the same value 200-250
    const rs = readings(400, { from: 100, to: 251 }, (i) => i >= 150 && i < 200);
    const rows = await scoreAll(engine, rs);
    // 51 readings in a row before the stop, 51 after: never 60 in a row while running
    expect(began(rows)).toEqual([]);
  });

  it('after a restart, is known frozen from the rows read back, and not announced again', async () => {
    const first = new InferenceEngine();
    first.setModel('default', model);
    const rs = readings(500, { from: 100, to: 450 });
    const rows = await scoreAll(first, rs.slice(0, 300));
    expect(began(rows)).toEqual([[99 + bound - 1, 'Current', bound]]);

    const again = new InferenceEngine();
    again.setModel('default', model);
    expect(again.frozenReadBack()).toBe(bound);
    again.seed('p1', rows.map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason })));
    expect(again.sensorFaults('p1')).toEqual([expect.objectContaining({ feature: 'Current', since: rs[99]!.ts, readings: 201 })]);
    const later = await scoreAll(again, rs.slice(300));
    expect(began(later)).toEqual([]);
    expect(again.sensorFaults('p1')).toEqual([]);
  });

  it('forgets the run of readings whose commit failed: sent again, the sensor is found once', async () => {
    const engine = new InferenceEngine();
    engine.setModel('default', model);
    const rs = readings(300, { from: 100, to: 300 });
    await scoreAll(engine, rs.slice(0, 150));
    const failed = await engine.score(rs.slice(150, 200), 0);
    expect(began(failed)).toEqual([[99 + bound - 1 - 150, 'Current', bound]]);
    engine.forgetLastScore();
    expect(engine.sensorFaults('p1')).toEqual([]);
    const retried = await engine.score(rs.slice(150, 200), 0);
    expect(began(retried)).toEqual([[99 + bound - 1 - 150, 'Current', bound]]);
  });

  it('is found once at the next reading after a swap to a model with a lower bound, its run already past it; a swap back to the higher bound does not find it again', async () => {
    const high = await LoadedModel.fromBytes(stopModels({ version: 'f-high', stuckAfter: { Pressure: 200, Flow: 200, Current: 200 } }).withRule, 'f-high');
    try {
      expect(high.meta.stuckAfter).toEqual({ Pressure: 200, Flow: 200, Current: 200 });
      const engine = new InferenceEngine();
      engine.setModel('default', high);
      const rs = readings(600, { from: 100, to: 600 });
      // the run began at reading 99: 150 readings in a row under the bound of 200, not found
      expect(began(await scoreAll(engine, rs.slice(0, 249)))).toEqual([]);
      expect(engine.sensorFaults('p1')).toEqual([]);
      engine.setModel('default', model); // the bound of 60
      expect(engine.sensorFaults('p1')).toEqual([expect.objectContaining({ feature: 'Current', readings: 150, after: bound })]);
      const after = await scoreAll(engine, rs.slice(249, 400));
      expect(began(after)).toEqual([[0, 'Current', 151]]);
      engine.setModel('default', high);
      expect(began(await scoreAll(engine, rs.slice(400)))).toEqual([]);
    } finally {
      await high.release();
    }
  });

  it('after a restart, finds once a run that reached the bound only at rows another model scored (a swap to a lower bound just before)', async () => {
    const high = await LoadedModel.fromBytes(stopModels({ version: 'f-high2', stuckAfter: { Pressure: 200, Flow: 200, Current: 200 } }).withRule, 'f-high2');
    try {
      const first = new InferenceEngine();
      first.setModel('default', high);
      const rs = readings(500, { from: 100, to: 500 });
      const rows = await scoreAll(first, rs.slice(0, 250));
      expect(began(rows)).toEqual([]);
      // the restart comes after the swap to the bound of 60, before the pump's next reading
      const again = new InferenceEngine();
      again.setModel('default', model);
      again.seed('p1', rows.map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason, modelVersion: r.modelVersion })));
      expect(again.sensorFaults('p1')).toEqual([expect.objectContaining({ feature: 'Current', readings: 151 })]);
      expect(began(await scoreAll(again, rs.slice(250)))).toEqual([[0, 'Current', 152]]);

      // rows the current model scored, the run found among them: not found again
      const third = new InferenceEngine();
      third.setModel('default', model);
      const scored = await scoreAll(third, rs.slice(0, 250));
      expect(began(scored)).toEqual([[99 + bound - 1, 'Current', bound]]);
      const fourth = new InferenceEngine();
      fourth.setModel('default', model);
      fourth.seed('p1', scored.map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason, modelVersion: r.modelVersion })));
      expect(began(await scoreAll(fourth, rs.slice(250)))).toEqual([]);
    } finally {
      await high.release();
    }
  });

  it('is not judged by a model without pumpwatch.stuck_after (one from before it)', async () => {
    const { fit } = stopModels({ version: 'f0' });
    const { stuckAfter: _bounds, ...rest } = fit.metadata;
    const without = await LoadedModel.fromBytes(encodeModel(fit.model.toOnnxGraph(), { metadata: metadataToProps(rest), producerVersion: TRAINER_VERSION, docString: 'without its bounds' }), 'f0');
    expect(without.meta).not.toHaveProperty('stuckAfter');
    const engine = new InferenceEngine();
    engine.setModel('default', without);
    const rows = await scoreAll(engine, readings(300, { from: 100, to: 300 }));
    expect(began(rows)).toEqual([]);
    expect(engine.sensorFaults('p1')).toEqual([]);
    expect(engine.frozenReadBack()).toBe(0);
    await without.release();
  });
});
