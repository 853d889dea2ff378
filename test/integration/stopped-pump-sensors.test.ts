/**
 * A stop, or a sensor failing? A stopped-when rule on one sensor cannot tell a stop from that
 * sensor failing: a current transmitter reading 0 A on a running pump was stored unscored as
 * "pump stopped", no alarm. A rule of two conditions (current AND flow low) tells them apart. Real
 * onnxruntime sessions on models the trainer fitted, and on the bundled default model with
 * readings of the agent's own simulator.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bundledModelPath } from '../../agent/paths.js';
import { PumpSimulator } from '../../agent/simulator.js';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { readModelMetadata, type StoppedRule } from '../../inference/contract.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { readingsWithStops, stopModels } from '../support/stops.js';

/** A stop is the current AND the flow low (test pumps run at about 1.4 A and 30 l/min; stopped: 0.02 A, 0 l/min). */
const TWO: StoppedRule = { when: [{ feature: 'Current', below: 0.5 }, { feature: 'Flow', below: 5 }], afterStartSeconds: 30 };

let two: LoadedModel;
let one: LoadedModel;

async function scoreAll(engine: InferenceEngine, rs: readonly Reading[], batch = 37): Promise<PredictionRow[]> {
  const rows: PredictionRow[] = [];
  for (let i = 0; i < rs.length; i += batch) rows.push(...(await engine.score(rs.slice(i, i + batch), 0)));
  return rows;
}

const verdicts = (rows: readonly PredictionRow[]) => rows.map((r) => [r.score, r.anomaly, r.unscoredReason]);

/** Running 0-599 but for a real stop at 300-399 (1 Hz); `dead` reads 0 from 150 to 249 while the pump runs. */
function withDeadSensor(dead: 'Current' | 'Flow'): Reading[] {
  const rs = readingsWithStops(600, (i) => i >= 300 && i < 400);
  for (let i = 150; i < 250; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, [dead]: 0 } };
  return rs;
}

async function run(model: LoadedModel, rs: readonly Reading[]): Promise<PredictionRow[]> {
  const engine = new InferenceEngine();
  engine.setModel('default', model);
  return scoreAll(engine, rs);
}

describe('a stop, or a sensor failing on a running pump', () => {
  beforeAll(async () => {
    two = await LoadedModel.fromBytes(stopModels({ version: 'r2', rule: TWO }).withRule, 'r2');
    one = await LoadedModel.fromBytes(stopModels({ version: 'r1' }).withRule, 'r1');
  });
  afterAll(async () => {
    await two?.release();
    await one?.release();
  });

  it('writes the two conditions into the model, in the "all" form, and reads them back', () => {
    expect(two.meta.stoppedWhen).toEqual(TWO);
  });

  it('a rule on the current alone takes a dead current sensor on a running pump for a stop: unscored, no alarm (the defect)', async () => {
    const rows = await run(one, withDeadSensor('Current'));
    const dead = rows.slice(150, 250);
    expect(dead.every((r) => r.score === null && /^pump stopped: "Current" = 0, below 0\.5 /.test(r.unscoredReason ?? ''))).toBe(true);
    expect(rows.filter((r) => r.anomaly === true)).toEqual([]);
  });

  it('stores a real stop (current and flow low) unscored with both values in its reason, warms up after it, then scores; no anomaly', async () => {
    const rows = await run(two, readingsWithStops(600, (i) => i >= 300 && i < 400));
    const stop = rows.slice(300, 400);
    expect(stop.every((r) => r.score === null && r.anomaly === null)).toBe(true);
    expect(stop[0]!.unscoredReason).toMatch(/^pump stopped: "Current" = 0\.0\d+, below 0\.5 and "Flow" = 0, below 5 \(model r2's stopped-when rule\)$/);
    expect(rows.slice(400, 429).every((r) => r.score === null && r.unscoredReason?.startsWith('pump starting: '))).toBe(true);
    expect(rows.slice(429, 433).map((r) => r.unscoredReason)).toEqual([1, 2, 3, 4].map((n) => `window filling: ${n} of 5 readings`));
    expect(rows.slice(433).every((r) => r.score !== null)).toBe(true);
    expect(rows.filter((r) => r.anomaly === true)).toEqual([]);
  });

  it.each(['Current', 'Flow'] as const)('scores and flags a dead %s sensor on a running pump (no stop, no warm-up), and still takes the real stop after it for one', async (dead) => {
    const rows = await run(two, withDeadSensor(dead));
    const deadRows = rows.slice(150, 250);
    expect(deadRows.every((r) => r.score !== null && r.unscoredReason === null)).toBe(true);
    // flagged once the window of 5 holds the dead readings (a window of 1 dead reading in 5 may pass)
    expect(deadRows.slice(4).map((r, i) => (r.anomaly === true ? -1 : 154 + i)).filter((i) => i >= 0)).toEqual([]);
    const flagged = deadRows[4]!;
    expect(flagged.contributions, 'the dead sensor named').toBeTruthy();
    const top = Object.entries(flagged.contributions ?? {}).sort((a, b) => b[1] - a[1])[0]![0];
    expect(top).toBe(dead);
    expect(rows.slice(0, 300).some((r) => /^pump (stopped|starting): /.test(r.unscoredReason ?? ''))).toBe(false);
    expect(rows.slice(300, 400).every((r) => r.unscoredReason?.startsWith('pump stopped: '))).toBe(true);
    expect(rows.slice(433).every((r) => r.score !== null && r.anomaly === false)).toBe(true);
  });

  it('reaches the same verdicts after a restart in the dead sensor\'s readings, in the stop, or in its warm-up', async () => {
    for (const dead of ['Current', 'Flow'] as const) {
      const readings = withDeadSensor(dead);
      const expected = await run(two, readings);
      for (const cut of [200, 260, 350, 410]) {
        const before = new InferenceEngine();
        before.setModel('default', two);
        const stored = await scoreAll(before, readings.slice(0, cut));
        const after = new InferenceEngine();
        after.setModel('default', two);
        after.seed('p1', stored.map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason })));
        const rest = await scoreAll(after, readings.slice(cut));
        expect(verdicts(rest), `${dead} dead, restart at ${cut}`).toEqual(verdicts(expected.slice(cut)));
      }
    }
  });
});

describe('the bundled default model', () => {
  let bundled: LoadedModel;
  beforeAll(async () => {
    const bytes = readFileSync(bundledModelPath());
    bundled = await LoadedModel.fromBytes(bytes, readModelMetadata(bytes).version);
  });
  afterAll(async () => {
    await bundled?.release();
  });

  /** 20 minutes of a simulated pump (its own duty point, running, no fault), one reading a second. */
  function simulated(seed: number): Reading[] {
    const sim = new PumpSimulator({ pumpId: 'p1', seed, startTs: Date.UTC(2026, 2, 1), faults: 'none' });
    return Array.from({ length: 1200 }, () => sim.next().reading);
  }

  it('stops a pump only when the current and the flow are both low', () => {
    expect(bundled.meta.stoppedWhen?.when.map((c) => c.feature)).toEqual(['Current', 'Volume Flow RateRMS']);
  });

  it('raises an alarm for a dead current transmitter (0 A) on a running pump, flow and the rest normal', async () => {
    const rs = simulated(4242);
    for (let i = 600; i < 1200; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Current: 0 } };
    const rows = await run(bundled, rs);
    expect(rows.slice(0, 600).filter((r) => r.anomaly === true)).toEqual([]);
    const dead = rows.slice(620, 1200);
    expect(dead.some((r) => r.unscoredReason?.startsWith('pump stopped: '))).toBe(false);
    expect(dead.every((r) => r.score !== null && r.anomaly === true)).toBe(true);
  });

  it('raises an alarm for a dead flow meter (0 l/min) on a running pump, the current normal', async () => {
    const rs = simulated(4444);
    for (let i = 600; i < 1200; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, 'Volume Flow RateRMS': 0 } };
    const rows = await run(bundled, rs);
    const dead = rows.slice(620, 1200);
    expect(dead.every((r) => r.score !== null && r.anomaly === true)).toBe(true);
  });

  it('still takes a real stop (current and flow near 0) for a stop: unscored, no alarm', async () => {
    const rs = simulated(4343);
    for (let i = 600; i < 900; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Current: 0.01, 'Volume Flow RateRMS': 0.2, Pressure: 0.01, Accelerometer1RMS: 0.001, Accelerometer2RMS: 0.001 } };
    const rows = await run(bundled, rs);
    expect(rows.slice(600, 900).every((r) => r.score === null && r.unscoredReason?.startsWith('pump stopped: "Current" = 0.01, below 0.2 and "Volume Flow RateRMS" = 0.2, below 5 '))).toBe(true);
    expect(rows.slice(900, 1200).every((r) => r.unscoredReason?.startsWith('pump starting: '))).toBe(true);
    expect(rows.filter((r) => r.anomaly === true)).toEqual([]);
  });
});
