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
import { MAX_CARRY_READINGS, readModelMetadata, STOP_MIN_MS, STOP_MIN_READINGS, stoppedState, type StoppedRule } from '../../inference/contract.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import { TEST_FEATURES } from '../support/models.js';
import { readingsWithStops, stopModels } from '../support/stops.js';
import { stoppedRows } from '../../trainer/data/stopped.js';

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
const reasonKind = (r: PredictionRow) => (r.score !== null ? 'scored' : (r.unscoredReason ?? '').replace(/:.*/, ''));

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

  it.each(['Current', 'Flow'] as const)('scores and flags a dead %s sensor on a running pump once held a minute (no stop, no warm-up), and still takes the real stop after it for one', async (dead) => {
    const rows = await run(two, withDeadSensor(dead));
    // held as a stop in the making for a minute (one reading a second), then scored on the window kept: flagged at once
    expect(rows.slice(150, 210).every((r) => r.score === null && r.unscoredReason?.startsWith('pump stopping: '))).toBe(true);
    const deadRows = rows.slice(210, 250);
    expect(deadRows.every((r) => r.score !== null && r.unscoredReason === null)).toBe(true);
    expect(deadRows.map((r, i) => (r.anomaly === true ? -1 : 210 + i)).filter((i) => i >= 0)).toEqual([]);
    const flagged = deadRows[0]!;
    expect(flagged.contributions, 'the dead sensor named').toBeTruthy();
    const top = Object.entries(flagged.contributions ?? {}).sort((a, b) => b[1] - a[1])[0]![0];
    expect(top).toBe(dead);
    expect(rows.slice(0, 300).some((r) => /^pump (stopped|starting): /.test(r.unscoredReason ?? ''))).toBe(false);
    expect(rows.slice(0, 300).filter((r) => r.unscoredReason?.startsWith('pump stopping: ')).length).toBe(60);
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

  it('a model of two conditions swapped in for one of the current alone that took a dead current sensor for a stop does not take over that stop: scored and flagged at once, as if it had scored from the start', async () => {
    const readings = withDeadSensor('Current');
    const expected = await run(two, readings);
    const engine = new InferenceEngine();
    engine.setModel('default', one);
    const before = await scoreAll(engine, readings.slice(0, 220));
    expect(before.slice(150, 220).every((r) => r.unscoredReason?.startsWith('pump stopped: ')), 'the one-condition rule takes it for a stop').toBe(true);
    engine.setModel('default', two);
    const rest = await scoreAll(engine, readings.slice(220));
    // before the fix: "pump starting" (the old rule's stop, inside the readings the new rule had judged itself) for its 30 s warm-up, no alarm
    expect(rest.slice(0, 30).map((r) => r.unscoredReason ?? r.anomaly)).toEqual(rest.slice(0, 30).map(() => true));
    expect(verdicts(rest)).toEqual(verdicts(expected.slice(220)));
  });

  describe('a stop in the making: some of the rule\'s conditions met, not all', () => {
    const STEP = 20_000;
    /**
     * Readings 20 s apart, running but for a stop at 300-399 whose first two readings (300, 301)
     * still show the flow (a meter that averages its last counts), the current already ~0; the
     * current transmitter reads 0 at 150-199 while the pump runs (a dead sensor).
     */
    function coastingStop(): Reading[] {
      const rs = readingsWithStops(600, (i) => i >= 302 && i < 400).map((r, i) => ({ ...r, ts: Date.UTC(2026, 5, 1) + i * STEP }));
      for (const i of [300, 301]) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Current: 0.01 } };
      for (let i = 150; i < 200; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Current: 0 } };
      return rs;
    }
    const held = (r: PredictionRow) => r.score === null && r.anomaly === null && (r.unscoredReason ?? '').startsWith('pump stopping: ');

    it('holds a stop\'s first readings that still show flow unscored as "pump stopping" (no anomaly), then takes the stop and its warm-up as before', async () => {
      const rows = await run(two, coastingStop());
      expect(rows[300]!.unscoredReason).toMatch(/^pump stopping: "Current" = 0\.01, below 0\.5; "Flow" = \d+(\.\d+)?, not yet below 5 \(model r2's stopped-when rule: held as a stop's beginning for 3 readings and 60 s, then scored as a sensor failing\)$/);
      expect(rows.slice(300, 302).every(held)).toBe(true);
      expect(rows.slice(302, 400).every((r) => r.score === null && r.unscoredReason?.startsWith('pump stopped: '))).toBe(true);
      expect(rows[400]!.unscoredReason).toMatch(/^pump starting: 20 s since its last stopped reading/);
      expect(rows.slice(300).filter((r) => r.anomaly === true)).toEqual([]);
      expect(rows.slice(410).every((r) => r.score !== null)).toBe(true);
    });

    it(`scores a dead current transmitter on a running pump after ${STOP_MIN_READINGS} readings held (${STOP_MIN_MS / 1000} s at most here), on a full window, and flags it`, async () => {
      const rows = await run(two, coastingStop());
      expect(rows.slice(150, 153).every(held)).toBe(true);
      const dead = rows.slice(153, 200);
      // the window was not dropped for the held readings: scored at once, on a window of 4 dead readings in 5
      expect(dead.every((r) => r.score !== null && r.unscoredReason === null)).toBe(true);
      expect(dead.slice(1).every((r) => r.anomaly === true)).toBe(true);
      expect(rows.slice(0, 150).filter((r) => r.anomaly === true || r.score === null).length).toBeLessThanOrEqual(4); // the first window filling
    });

    /** One reading a second, running; the current transmitter reads 0 at 150-299. */
    function deadAtOneHertz(): Reading[] {
      const rs = readingsWithStops(400, () => false);
      for (let i = 150; i < 300; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Current: 0 } };
      return rs;
    }

    it('holds a dead sensor\'s readings for a minute at one reading a second (a real flow coasts down over several)', async () => {
      const rows = await run(two, deadAtOneHertz());
      expect(rows.slice(150, 210).every(held)).toBe(true);
      expect(rows.slice(210, 300).every((r) => r.score !== null && r.anomaly === true)).toBe(true);
    });

    it('reaches the same verdicts after a restart in a hold, or with only the end of a hold that ran out read back', async () => {
      const cases = [
        [coastingStop(), [[0, 151], [0, 153], [0, 301], [0, 302], [150, 160]]],
        // read back from 200 or 240: the hold's first readings are not among them, the rows stored scored say it ran out
        [deadAtOneHertz(), [[0, 180], [0, 215], [200, 215], [240, 250]]],
      ] as const;
      for (const [readings, cuts] of cases) {
        const expected = await run(two, readings);
        for (const [from, cut] of cuts) {
          const before = new InferenceEngine();
          before.setModel('default', two);
          const stored = await scoreAll(before, readings.slice(0, cut));
          const after = new InferenceEngine();
          after.setModel('default', two);
          // `from` > 0: the rows read back begin inside the hold (the agent reads back only the newest rows)
          after.seed('p1', stored.slice(from).map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason })));
          const rest = await scoreAll(after, readings.slice(cut));
          expect(verdicts(rest), `restart at ${cut}, rows read back from ${from}`).toEqual(verdicts(expected.slice(cut)));
        }
      }
    });

    it('is left out of training as the agent leaves it unscored: the trainer\'s stoppedRows marks the same rows', async () => {
      for (const readings of [coastingStop(), withDeadSensor('Current'), withDeadSensor('Flow')]) {
        const rows = await run(two, readings);
        const marks = stoppedRows(TWO, TEST_FEATURES, readings.map((r) => r.ts), readings.map((r) => TEST_FEATURES.map((f) => r.values[f] as number)));
        const agent = rows.map((r) => (/^pump (stopped|starting|stopping): /.test(r.unscoredReason ?? '') ? 1 : 0));
        expect([...marks.out]).toEqual(agent);
        expect(marks.stopping).toBe(rows.filter(held).length);
      }
      const marks = stoppedRows(TWO, TEST_FEATURES, coastingStop().map((r) => r.ts), coastingStop().map((r) => TEST_FEATURES.map((f) => r.values[f] as number)));
      expect(marks.stopping).toBe(5); // 150-152, 300-301
    });
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
    // held a minute as a stop in the making (one reading a second), then scored and flagged
    expect(rows.slice(600, 660).every((r) => r.score === null && r.unscoredReason?.startsWith('pump stopping: "Current" = 0, below 0.2; "Volume Flow RateRMS" = '))).toBe(true);
    const dead = rows.slice(660, 1200);
    expect(dead.some((r) => r.unscoredReason?.startsWith('pump stopped: '))).toBe(false);
    expect(dead.every((r) => r.score !== null && r.anomaly === true)).toBe(true);
  });

  it('raises an alarm for a dead flow meter (0 l/min) on a running pump, the current normal', async () => {
    const rs = simulated(4444);
    for (let i = 600; i < 1200; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, 'Volume Flow RateRMS': 0 } };
    const rows = await run(bundled, rs);
    expect(rows.slice(600, 660).every((r) => r.score === null && r.unscoredReason?.startsWith('pump stopping: "Current" = '))).toBe(true);
    const dead = rows.slice(660, 1200);
    expect(dead.every((r) => r.score !== null && r.anomaly === true)).toBe(true);
  });

  /**
   * An hour of a simulated pump, one reading a second, stopped for 15 minutes from reading 601;
   * `sparse` sent only every k-th reading (null in the others, carried forward for scoring).
   */
  function sparseAtStop(seed: number, sparse: 'Current' | 'Volume Flow RateRMS', k: number): Reading[] {
    const start = Date.UTC(2026, 2, 1);
    const sim = new PumpSimulator({ pumpId: 'p1', seed, startTs: start, faults: 'none', stops: [{ startTs: start + 601_000 - 500, durationMs: 900_000 }] });
    return Array.from({ length: 3600 }, (_, i) => {
      const r = sim.next().reading;
      return i % k === 0 ? r : { ...r, values: { ...r.values, [sparse]: null } };
    });
  }

  it.each([
    ['Volume Flow RateRMS', 10],
    ['Volume Flow RateRMS', 30],
    ['Current', 10],
    ['Current', 30],
  ] as const)('raises no alarm at a stop when %s is sent every %i readings: a reading with one condition met and the other unknown is held, not scored on a carried value', async (sparse, k) => {
    const rs = sparseAtStop(20 + k, sparse, k);
    const rows = await run(bundled, rs);
    // from the stop to the end of its warm-up (a current carried 30 s on a running pump may be flagged later in the hour, stop or not)
    expect(rows.slice(0, 3300).filter((r) => r.anomaly === true).map((r) => (r.ts - rs[0]!.ts) / 1000)).toEqual([]);
    // the stop's first readings, before the sparse sensor's value comes in: held (the other value known below its bound)
    const stop = rows.slice(601, 1501);
    const first = stop.findIndex((r) => r.unscoredReason?.startsWith('pump stopping: '));
    expect(first).toBeGreaterThanOrEqual(0);
    expect(first, 'the flow coasts down over two readings').toBeLessThan(3);
    expect(stop[first]!.unscoredReason).toMatch(sparse === 'Current'
      ? /^pump stopping: "Current" = unknown \(bound 0\.2\); "Volume Flow RateRMS" = [\d.]+, below 5 \(model [^ ]+'s stopped-when rule: held until "Current" is known, at most 60 readings\)$/
      : /^pump stopping: "Current" = [\d.]+, below 0\.2; "Volume Flow RateRMS" = unknown \(bound 5\) \(model [^ ]+'s stopped-when rule: held until "Volume Flow RateRMS" is known, at most 60 readings\)$/);
    // the stop counted: unscored to its end, then its warm-up, then scored again
    expect(stop.slice(first).every((r) => r.score === null)).toBe(true);
    expect(rows.slice(1501, 3290).every((r) => r.score === null && /^pump (starting|stopping): /.test(r.unscoredReason ?? ''))).toBe(true);
    expect(rows.slice(3400).every((r) => r.score !== null)).toBe(true);
  });

  describe('inside a stop that counted, a reading without one of the rule\'s values (a sparse sensor)', () => {
    const rule = () => bundled.meta.stoppedWhen!;
    /** The rows from the stop's third reading with both values known below their bounds (the stop counted) to its last. */
    function countedStop(rs: readonly Reading[]): [number, number] {
      const known = rs.flatMap((r, i) => (stoppedState(rule(), r.values) === true ? [i] : []));
      return [known[STOP_MIN_READINGS - 1]!, known.at(-1)!];
    }

    it.each([
      ['Volume Flow RateRMS', 10],
      ['Current', 10],
      ['Volume Flow RateRMS', 30],
    ] as const)('is stored "pump stopped" (the value not yet known ends no stop), not "pump starting", when %s is sent every %i readings; the warm-up runs from the last of them', async (sparse, k) => {
      const rs = sparseAtStop(20 + k, sparse, k);
      const rows = await run(bundled, rs);
      const [from, to] = countedStop(rs);
      const inside = rows.slice(from, to + 1);
      // before the fix: every reading between two with both values known was "pump starting: 1 s since its last stopped reading …", the pump still stopped
      expect(inside.map(reasonKind)).toEqual(inside.map(() => 'pump stopped'));
      const unknown = inside.filter((r) => r.values[sparse] === null);
      expect(unknown.length).toBeGreaterThan(20);
      const other = sparse === 'Current' ? 'Volume Flow RateRMS' : 'Current';
      for (const r of unknown) {
        expect(r.unscoredReason).toMatch(new RegExp(`"${sparse}" = unknown \\(bound [\\d.]+\\)`));
        expect(r.unscoredReason).toMatch(new RegExp(`"${other}" = [\\d.e-]+, below [\\d.]+`));
        expect(r.unscoredReason).toMatch(new RegExp(`\\(model [^ ]+'s stopped-when rule: "${sparse}" is not yet known, and a value not known ends no stop\\)$`));
      }
      // the readings after the stop: its warm-up, timed from the last reading taken as stopped
      const after = rows.slice(to + 1).findIndex((r) => !(r.unscoredReason ?? '').startsWith('pump stopped: ')) + to + 1;
      expect(rows[after]!.unscoredReason).toMatch(new RegExp(`^pump starting: [01] s since its last stopped reading at ${new Date(rows[after - 1]!.ts).toISOString().replace(/\./g, '\\.')}, `));
      expect(rows.filter((r) => r.anomaly === true && r.ts < rs[3300]!.ts)).toEqual([]);
    });

    it('a rule\'s only sensor going silent inside a stop keeps the pump stopped for at most MAX_CARRY_READINGS readings: a dead transmitter does not hold a running pump "stopped" (and its frozen sensors unjudged)', async () => {
      const model = await LoadedModel.fromBytes(stopModels({ version: 'silent-current' }).withRule, 'test');
      // Current<0.5: 120 running, 30 stopped, then 450 running with the current transmitter silent
      const rs = readingsWithStops(600, (i) => i >= 120 && i < 150, { seed: 5 });
      for (let i = 150; i < 600; i++) rs[i]!.values = { ...rs[i]!.values, Current: null };
      const rows = await run(model, rs);
      const kinds = rows.slice(150).map(reasonKind);
      // before the fix: all 450 "pump stopped: "Current" = unknown …", the pump shown stopped for good
      expect(kinds.slice(0, MAX_CARRY_READINGS)).toEqual(kinds.slice(0, MAX_CARRY_READINGS).map(() => 'pump stopped'));
      expect(kinds.slice(MAX_CARRY_READINGS).filter((k) => k === 'pump stopped')).toEqual([]);
      expect(rows.at(-1)!.unscoredReason).toMatch(/no value known yet for feature "Current"/);
      // the trainer's row filter agrees
      const features = model.meta.features;
      const marks = stoppedRows(model.meta.stoppedWhen!, features, rs.map((r) => r.ts), rs.map((r) => features.map((f) => r.values[f] ?? Number.NaN)));
      expect(marks.stopped).toBe(rows.map(reasonKind).filter((k) => k === 'pump stopped').length);
      await model.release();
    });

    it('the trainer\'s stoppedRows tells every row as the agent does: stopped, starting, stopping', async () => {
      for (const [sparse, k] of [['Volume Flow RateRMS', 10], ['Current', 10], ['Volume Flow RateRMS', 30]] as const) {
        const rs = sparseAtStop(20 + k, sparse, k);
        const rows = await run(bundled, rs);
        const features = bundled.meta.features;
        const marks = stoppedRows(rule(), features, rs.map((r) => r.ts), rs.map((r) => features.map((f) => r.values[f] ?? Number.NaN)));
        const kinds = rows.map(reasonKind);
        expect([...marks.out], `${sparse} every ${k}`).toEqual(kinds.map((kind) => (/^pump (stopped|starting|stopping)$/.test(kind) ? 1 : 0)));
        expect({ stopped: marks.stopped, starting: marks.starting, stopping: marks.stopping }).toEqual({
          stopped: kinds.filter((kind) => kind === 'pump stopped').length,
          starting: kinds.filter((kind) => kind === 'pump starting').length,
          stopping: kinds.filter((kind) => kind === 'pump stopping').length,
        });
      }
    });

    it('reaches the same verdicts after a restart inside the stop, also when the rows read back begin inside it', async () => {
      const rs = sparseAtStop(30, 'Volume Flow RateRMS', 10);
      const expected = await run(bundled, rs);
      const [from, to] = countedStop(rs);
      for (const cut of [from + 5, from + 200, to - 3, to + 1, to + 5]) {
        for (const back of [Number.POSITIVE_INFINITY, 400, 15]) {
          const before = new InferenceEngine();
          before.setModel('default', bundled);
          const stored = await scoreAll(before, rs.slice(0, cut));
          const after = new InferenceEngine();
          after.setModel('default', bundled);
          after.seed('p1', stored.slice(Math.max(0, cut - back)).map((r) => ({ ts: r.ts, values: r.values, unscoredReason: r.unscoredReason })));
          const rest = await scoreAll(after, rs.slice(cut, to + 400));
          expect(verdicts(rest), `restart at ${cut}, ${back} rows read back`).toEqual(verdicts(expected.slice(cut, to + 400)));
        }
      }
    });
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
