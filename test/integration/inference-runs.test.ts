/**
 * Scoring with real onnxruntime sessions on models the trainer exports: a micro-batch larger than
 * one session.run (RUN_WINDOWS) scores exactly as window-by-window, and a pump's window rebuilt
 * from its kept history after a model swap equals the window of an engine that had the model all along.
 */
import { describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import { MAX_CARRY_READINGS } from '../../inference/contract.js';
import { EXTREME_VALUE, InferenceEngine, LATE_RUN_RESTART, leftOutOfHistory, type ModelFault } from '../../inference/engine.js';
import { LoadedModel, RUN_WINDOWS } from '../../inference/model.js';
import { nanBelowModel, overflowModel } from '../support/broken-models.js';
import { makeModel, normalValues, rng } from '../support/models.js';

describe('LoadedModel.run in runs of RUN_WINDOWS', () => {
  it('scores a batch of 2.5 runs like each window on its own, contributions included', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ window: 3 }), 'test');
    try {
      const { window, features } = model.meta;
      const stride = window * features.length;
      const n = Math.floor(RUN_WINDOWS * 2.5);
      const r = rng(5);
      const input = new Float32Array(n * stride);
      for (let k = 0; k < n; k++) {
        for (let w = 0; w < window; w++) {
          const v = normalValues(r, k + w);
          features.forEach((f, j) => (input[k * stride + w * features.length + j] = v[f]!));
        }
      }
      const all = await model.run(input, n);
      expect(all.scores).toHaveLength(n);
      expect(all.contributions).toHaveLength(n * features.length);
      for (const k of [0, RUN_WINDOWS - 1, RUN_WINDOWS, 2 * RUN_WINDOWS + 7, n - 1]) {
        const one = await model.run(input.slice(k * stride, (k + 1) * stride), 1);
        expect(all.scores[k]).toBeCloseTo(one.scores[0]!, 3);
        for (let j = 0; j < features.length; j++) expect(all.contributions![k * features.length + j]).toBeCloseTo(one.contributions![j]!, 3);
      }
    } finally {
      await model.release();
    }
  });
});

describe('window rebuilt from history after a swap', () => {
  it('scores the readings after the swap as an engine that had the new model from the start', async () => {
    const first = await LoadedModel.fromBytes(makeModel({ version: 'a', window: 2 }), 'a');
    const second = await LoadedModel.fromBytes(makeModel({ version: 'b', window: 5, seed: 11 }), 'b');
    try {
      const r = rng(9);
      const readings: Reading[] = Array.from({ length: 400 }, (_, i) => {
        const values: Record<string, number | null> = normalValues(r, i);
        if (i % 7 === 3) values.Flow = null; // carried forward, in the history as in the window
        if (i % 11 === 5) delete values.Current;
        return { pumpId: `p${i % 3}`, ts: 1_000 + i, values };
      });
      const swapped = new InferenceEngine();
      swapped.setModel('default', first);
      await swapped.score(readings.slice(0, 200), 0);
      swapped.setModel('default', second);
      const after = await swapped.score(readings.slice(200), 0);

      const reference = new InferenceEngine();
      reference.setModel('default', second);
      const expected = (await reference.score(readings, 0)).slice(200);
      expect(after.map((row) => [row.score, row.imputed])).toEqual(expected.map((row) => [row.score, row.imputed]));
      expect(after.every((row) => row.modelVersion === 'b' && row.score !== null)).toBe(true);
    } finally {
      await first.release();
      await second.release();
    }
  });
});

describe('a restart or a swap leaves no window to fill again', () => {
  it('seeds a window of 100 from the buffer\'s last readings (as many as the engine needs), so the first reading after a restart is scored as without it', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'w100', window: 100 }), 'w100');
    try {
      const r = rng(31);
      const readings = Array.from({ length: 601 }, (_, i): Reading => ({ pumpId: 'p', ts: 1_000_000 + i * 1000, values: normalValues(r, i) }));
      const running = new InferenceEngine();
      running.setModel('default', model);
      const want = await running.score(readings, 0);
      const restarted = new InferenceEngine();
      restarted.setModel('default', model);
      expect(restarted.historyNeeded()).toBe(256); // 100 + MAX_CARRY_READINGS is less
      restarted.seed('p', readings.slice(600 - restarted.historyNeeded(), 600)); // the buffer's last rows, as the agent reads them back
      const first = await restarted.score([readings[600]!], 0);
      expect(first[0]!.unscoredReason).toBeNull();
      expect(first[0]!.score).toBeCloseTo(want[600]!.score!, 5); // one window against a batch of 501: float32 sums in another order
    } finally {
      await model.release();
    }
  });

  it('rebuilds a new model\'s window over a sensor that reports every 30th reading, carried between its reports', async () => {
    const first = await LoadedModel.fromBytes(makeModel({ version: 's-a', window: 10 }), 's-a');
    const second = await LoadedModel.fromBytes(makeModel({ version: 's-b', window: 10, seed: 12 }), 's-b');
    try {
      const r = rng(32);
      const readings = Array.from({ length: 148 }, (_, i): Reading => {
        const values: Record<string, number> = normalValues(r, i);
        if (i % 30 !== 0) delete values.Current; // polled slowly: last reported at reading 120
        return { pumpId: 'p', ts: 1_000_000 + i * 1000, values };
      });
      const swapped = new InferenceEngine();
      swapped.setModel('default', first);
      await swapped.score(readings.slice(0, 147), 0);
      swapped.setModel('default', second); // 27 readings after Current's last report
      const after = await swapped.score([readings[147]!], 0);
      const reference = new InferenceEngine();
      reference.setModel('default', second);
      const want = await reference.score(readings, 0);
      expect(after[0]!.unscoredReason).toBeNull();
      expect(after[0]!.score).toBeCloseTo(want[147]!.score!, 5);
    } finally {
      await first.release();
      await second.release();
    }
  });

  it('keeps as much history as the longest window in use needs, from the moment such a model is set', async () => {
    const long = await LoadedModel.fromBytes(makeModel({ version: 'w300', window: 300 }), 'w300');
    const short = await LoadedModel.fromBytes(makeModel({ version: 'w3', window: 3 }), 'w3');
    try {
      const r = rng(33);
      const readings = Array.from({ length: 701 }, (_, i): Reading => ({ pumpId: 'p', ts: 1_000_000 + i * 1000, values: normalValues(r, i) }));
      const engine = new InferenceEngine();
      engine.setModel('default', short);
      engine.setShadow('default', long); // a 300-reading model in use: every pump keeps 360
      expect(engine.historyNeeded()).toBe(300 + MAX_CARRY_READINGS);
      await engine.score(readings.slice(0, 700), 0);
      engine.setShadow('default', null);
      engine.setModel('default', long); // promoted: its window is rebuilt whole
      const after = await engine.score([readings[700]!], 0);
      expect(typeof after[0]!.score).toBe('number');
    } finally {
      await long.release();
      await short.release();
    }
  });
});

describe('a window that is not full yet', () => {
  it('leaves a pump\'s first window-1 readings unscored with the reason, so one noisy first reading cannot raise an alarm', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'w4', window: 4 }), 'w4');
    try {
      const r = rng(3);
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      // The first reading is far off (a sensor's start-up spike): padded into a whole window it scored as four of it.
      const spike = { ...normalValues(r, 0), Pressure: 40 };
      const readings: Reading[] = [spike, ...Array.from({ length: 6 }, (_, i) => normalValues(r, i + 1))].map((values, i) => ({ pumpId: 'p1', ts: 1_000 + i, values }));
      const rows = await engine.score(readings, 0);
      expect(rows.slice(0, 3).map((row) => [row.score, row.anomaly, row.unscoredReason])).toEqual([
        [null, null, 'window filling: 1 of 4 readings'],
        [null, null, 'window filling: 2 of 4 readings'],
        [null, null, 'window filling: 3 of 4 readings'],
      ]);
      expect(rows.slice(3).every((row) => typeof row.score === 'number' && row.unscoredReason === null)).toBe(true);
      expect(rows.slice(4).every((row) => row.anomaly === false)).toBe(true); // the spike has left the window
    } finally {
      await model.release();
    }
  });
});

describe('a pause in a pump\'s readings', () => {
  it('starts its window again after a pause longer than ten typical intervals (the trainer\'s segment rule), and not for a slow but steady pump', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'w3', window: 3 }), 'w3');
    try {
      const r = rng(4);
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      const at = (pumpId: string, ts: number): Reading => ({ pumpId, ts, values: normalValues(r, ts / 1000) });
      // Every 10 s for a minute, then back after 3 h of maintenance: not scored on readings from before it.
      const before = Array.from({ length: 6 }, (_, i) => at('p1', i * 10_000));
      const after = Array.from({ length: 4 }, (_, i) => at('p1', 3 * 3_600_000 + i * 10_000));
      const rows = await engine.score([...before, ...after], 0);
      expect(rows.slice(2, 6).every((row) => typeof row.score === 'number')).toBe(true);
      expect(rows.slice(6).map((row) => row.unscoredReason)).toEqual(['window filling: 1 of 3 readings', 'window filling: 2 of 3 readings', null, null]);
      // A pump that reports every 5 minutes is scored from its third reading on: its pauses are its rhythm.
      const slow = await engine.score(Array.from({ length: 6 }, (_, i) => at('p2', i * 300_000)), 0);
      expect(slow.map((row) => row.score === null)).toEqual([true, true, false, false, false, false]);
    } finally {
      await model.release();
    }
  });
});

describe('a value missing for longer than the carry limit', () => {
  it('is carried for MAX_CARRY_READINGS readings, then leaves readings unscored with the reason, and the window fills again once it is back', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ window: 4 }), 'test');
    try {
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      const r = rng(12);
      const gone = MAX_CARRY_READINGS + 5; // readings without Flow
      const readings: Reading[] = Array.from({ length: 10 + gone + 10 }, (_, i) => {
        const values: Record<string, number | null> = normalValues(r, i);
        if (i >= 10 && i < 10 + gone) delete values.Flow;
        return { pumpId: 'p', ts: 1_000 + i * 1000, values };
      });
      const rows = await engine.score(readings, 0);
      const carried = rows.slice(10, 10 + MAX_CARRY_READINGS);
      expect(carried.every((row) => row.score !== null && row.imputed)).toBe(true);
      const stale = rows.slice(10 + MAX_CARRY_READINGS, 10 + gone);
      expect(stale.map((row) => row.unscoredReason)).toEqual(
        Array.from({ length: 5 }, (_, k) => `no value for feature "Flow" in the last ${MAX_CARRY_READINGS + 1 + k} readings (a missing value is carried forward for at most ${MAX_CARRY_READINGS})`),
      );
      expect(stale.every((row) => row.score === null)).toBe(true);
      // Flow is back: the window starts again from the first reading that has it.
      const back = rows.slice(10 + gone);
      expect(back.map((row) => row.unscoredReason)).toEqual([
        'window filling: 1 of 4 readings', 'window filling: 2 of 4 readings', 'window filling: 3 of 4 readings',
        ...Array.from({ length: 7 }, () => null),
      ]);
      expect(back.slice(3).every((row) => row.score !== null && !row.imputed)).toBe(true);
    } finally {
      await model.release();
    }
  });
});

describe('a value beyond ±EXTREME_VALUE (a sensor\'s error code)', () => {
  it('leaves the windows holding it unscored with the value named, and is no fault of a working model; a NaN on plausible values still is', async () => {
    // Not a trainer model: those saturate (trainer/algorithms/saturation.ts) and score an error code.
    const model = await LoadedModel.fromBytes(overflowModel('x3', 3), 'x3');
    const nanOnZeros = await LoadedModel.fromBytes(nanBelowModel('nan-0'), 'nan-0');
    try {
      const faults: ModelFault[] = [];
      const engine = new InferenceEngine((f) => faults.push(f));
      engine.setModel('default', model);
      const r = rng(21);
      const readings: Reading[] = Array.from({ length: 10 }, (_, i) => {
        const values: Record<string, number | null> = normalValues(r, i);
        if (i === 4) values.Flow = 1e30; // finite in float32, its square is not
        return { pumpId: 'p', ts: 1_000 + i * 1000, values };
      });
      const rows = await engine.score(readings, 0);
      expect(1e30).toBeGreaterThan(EXTREME_VALUE);
      for (const row of rows.slice(4, 7)) {
        expect(row.score).toBeNull();
        expect(row.unscoredReason).toMatch(/^not scored: its window holds "Flow" = 1\.00e\+30, beyond ±1e\+15 \(an error code, not a measurement\), and model x3's score overflowed$/);
      }
      expect(rows.slice(7).every((row) => typeof row.score === 'number' && row.unscoredReason === null)).toBe(true);
      expect(faults).toEqual([]);

      // A stopped pump's zeros are measurements: a model that gives NaN on them is at fault.
      engine.setModel('default', nanOnZeros);
      const zeros = await engine.score([{ pumpId: 'q', ts: 1_000, values: { Pressure: 0, Flow: 0, Current: 0 } }], 0);
      expect(zeros[0]!.unscoredReason).toBe('model nan-0 produced a non-finite score');
      expect(faults.map((f) => f.reason)).toEqual(['1 of 1 scores were not finite']);

      // A shadow that gives NaN on plausible values is reported the same way (the manager drops it).
      faults.length = 0;
      engine.setModel('default', model);
      engine.setShadow('default', nanOnZeros);
      const shadowed = await engine.score([{ pumpId: 'q', ts: 2_000, values: { Pressure: 0, Flow: 0, Current: 0 } }], 0);
      expect(shadowed[0]!.shadowScore).toBeNull();
      expect(faults.map((f) => [f.model.version, f.reason])).toEqual([['nan-0', '1 of 1 scores were not finite']]);
    } finally {
      await model.release();
      await nanOnZeros.release();
    }
  });

  it("leaves a window with an error code unscored, not an anomaly, when a trainer model saturates on it; a value far off below the bound is an anomaly", async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 't3', window: 3 }), 't3');
    try {
      const faults: ModelFault[] = [];
      const engine = new InferenceEngine((f) => faults.push(f));
      engine.setModel('default', model);
      const r = rng(22);
      const values = (i: number, flow?: number): Record<string, number | null> => ({ ...normalValues(r, i), ...(flow === undefined ? {} : { Flow: flow }) });
      const errorCode = await engine.score(Array.from({ length: 8 }, (_, i) => ({ pumpId: 'e', ts: 1_000 + i * 1000, values: values(i, i === 3 ? 9.9e37 : undefined) })), 0);
      for (const row of errorCode.slice(3, 6)) {
        // Before: the saturated score made each an anomaly (an alert for a sensor's error code).
        expect(row.anomaly).toBeNull();
        expect(row.unscoredReason).toMatch(/^not scored: its window holds "Flow" = 9\.90e\+37, beyond ±1e\+15 \(an error code, not a measurement\), and model t3 scored it [\d.e+]+, an error code's score, not the pump's$/);
      }
      expect(errorCode.slice(6).every((row) => row.anomaly === false)).toBe(true);
      const farOff = await engine.score(Array.from({ length: 5 }, (_, i) => ({ pumpId: 'f', ts: 1_000 + i * 1000, values: values(i, i === 3 ? 1e9 : undefined) })), 0);
      expect(farOff[3]).toMatchObject({ anomaly: true, unscoredReason: null });
      expect(Object.entries(farOff[3]!.contributions ?? {}).sort((a, b) => b[1] - a[1])[0]![0]).toBe('Flow');
      expect(faults).toEqual([]);
    } finally {
      await model.release();
    }
  });
});

describe('a reading older than its pump\'s newest one by more than a pause', () => {
  it('is scored in arrival order when it is only a little older (two senders, clock jitter)', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'j3', window: 3 }), 'j3');
    try {
      const r = rng(24);
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      const ts = [0, 1_000, 2_000, 3_000, 2_990, 4_000, 5_000].map((t) => 1_000_000 + t);
      const rows = await engine.score(ts.map((t, i) => ({ pumpId: 'p', ts: t, values: normalValues(r, i) })), 0);
      expect(rows.slice(2).every((row) => typeof row.score === 'number' && row.unscoredReason === null)).toBe(true);
    } finally {
      await model.release();
    }
  });

  it('is stored unscored with the reason, and the pump\'s window goes on as if it had not come', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'o3', window: 3 }), 'o3');
    try {
      const r = rng(22);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 10_000) });
      const live = Array.from({ length: 8 }, (_, i) => at(7_200_000 + i * 10_000));
      const replayed = at(0); // two hours older, e.g. a sender's backlog
      const withLate = new InferenceEngine();
      withLate.setModel('default', model);
      const rows = await withLate.score([...live.slice(0, 5), replayed, ...live.slice(5)], 0);
      expect(rows[5]!.score).toBeNull();
      expect(rows[5]!.unscoredReason).toBe(`not scored: older than this pump's newest reading (${new Date(live[4]!.ts).toISOString()}) by more than a pause; windows are scored in time order`);

      const reference = new InferenceEngine();
      reference.setModel('default', model);
      const want = await reference.score(live, 0);
      expect([...rows.slice(0, 5), ...rows.slice(6)].map((row) => [row.score, row.unscoredReason])).toEqual(want.map((row) => [row.score, row.unscoredReason]));
    } finally {
      await model.release();
    }
  });

  /** An engine on a clock the test moves: readings arrive when the test says (monotonic ms). */
  function clocked(model: LoadedModel): { engine: InferenceEngine; arrive: (readings: Reading[], atMs: number) => Promise<Awaited<ReturnType<InferenceEngine['score']>>> } {
    let clock = 0;
    const engine = new InferenceEngine(() => {}, () => clock);
    engine.setModel('default', model);
    return { engine, arrive: (readings, atMs) => ((clock = atMs), engine.score(readings, 0)) };
  }

  it('never leaves a pump unscored for long after one reading dated hours ahead: the live readings after it, arriving at their pace, are its stream again from the third', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'f3', window: 3 }), 'f3');
    try {
      const r = rng(25);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const { arrive } = clocked(model);
      const T = 10_000_000;
      await arrive(Array.from({ length: 10 }, (_, i) => at(T + i * 1000)), 0);
      const wrong = await arrive([at(T + 10_000 + 2 * 3_600_000)], 1_000); // a sender's clock two hours ahead, once
      expect(wrong[0]!.unscoredReason).toBe('window filling: 1 of 3 readings'); // it looks like a reading after a pause
      const tail: Array<string | null> = [];
      for (let i = 0; i < 10; i++) tail.push((await arrive([at(T + 11_000 + i * 1000)], 2_000 + i * 1000))[0]!.unscoredReason);
      expect(LATE_RUN_RESTART).toBe(3);
      expect(tail.slice(0, 2).every((reason) => /^not scored: older than this pump's newest reading/.test(reason ?? ''))).toBe(true);
      expect(tail.slice(2)).toEqual(Array.from({ length: 8 }, () => null)); // scored again: the window holds the three
    } finally {
      await model.release();
    }
  });

  it('starts the windows again from the late readings when the pump\'s clock moved back, whether they come one by one or in batches', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'b3', window: 3 }), 'b3');
    try {
      const r = rng(27);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const T = 10_000_000;
      // One by one at 1 Hz: the third late reading restarts, and is scored on the three.
      const single = clocked(model);
      await single.arrive(Array.from({ length: 20 }, (_, i) => at(T + i * 1000)), 0);
      const back = T + 20_000 - 3_600_000;
      const reasons: Array<string | null> = [];
      for (let i = 0; i < 6; i++) reasons.push((await single.arrive([at(back + i * 1000)], 1_000 + i * 1000))[0]!.unscoredReason);
      expect(reasons.slice(0, 2).every((reason) => /^not scored: older/.test(reason ?? ''))).toBe(true);
      expect(reasons.slice(2)).toEqual([null, null, null, null]);
      // A sender that posts a minute of readings at once: no reading near the newest for a pause
      // (60 s on the monotonic clock) while late ones keep coming, and its windows start again.
      const batched = clocked(model);
      await batched.arrive(Array.from({ length: 60 }, (_, i) => at(T + i * 1000)), 0);
      const minute = (m: number): Reading[] => Array.from({ length: 60 }, (_, i) => at(back + m * 60_000 + i * 1000));
      const first = await batched.arrive(minute(0), 60_000);
      expect(first.every((row) => /^not scored: older/.test(row.unscoredReason ?? ''))).toBe(true);
      const second = await batched.arrive(minute(1), 120_001);
      expect(second.slice(2).every((row) => typeof row.score === 'number')).toBe(true);
    } finally {
      await model.release();
    }
  });

  it('leaves the window alone when a sender that uploads every 90 s sends an old reading or chunk between two uploads', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'u3', window: 3 }), 'u3');
    try {
      const r = rng(34);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const T = 10_000_000;
      for (const backlog of [1, 30]) {
        const { arrive } = clocked(model);
        const upload = (k: number): Reading[] => Array.from({ length: 90 }, (_, i) => at(T + k * 90_000 + i * 1000));
        await arrive(upload(0), 90_000);
        await arrive(upload(1), 180_000);
        const old = await arrive(Array.from({ length: backlog }, (_, i) => at(T - 7_200_000 + i * 1000)), 255_000); // 75 s after the last upload
        expect(old.every((row) => /^not scored: older/.test(row.unscoredReason ?? '')), `backlog of ${backlog}`).toBe(true);
        const next = await arrive(upload(2), 270_000);
        expect(next.map((row) => row.unscoredReason), `backlog of ${backlog}`).toEqual(next.map(() => null));
      }
    } finally {
      await model.release();
    }
  });

  it('leaves the live readings scored while a replayed backlog comes in between them, at once or in chunks', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'k3', window: 3 }), 'k3');
    try {
      const r = rng(28);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const T = 10_000_000;
      const backlog = Array.from({ length: 100 }, (_, i) => at(T - 7_200_000 + i * 1000)); // two hours old
      const { arrive } = clocked(model);
      for (let i = 0; i < 100; i++) await arrive([at(T + i * 1000)], i * 1000); // live, one a second
      const rows = await arrive(backlog.slice(0, 30), 99_500); // 30 at once
      expect(rows.every((row) => row.score === null && /^not scored: older/.test(row.unscoredReason ?? ''))).toBe(true);
      const live: Array<number | null> = [];
      for (let i = 0; i < 70; i++) {
        live.push((await arrive([at(T + 100_000 + i * 1000)], 100_000 + i * 1000))[0]!.score);
        if (i % 10 === 5) await arrive(backlog.slice(30 + i, 37 + i), 100_500 + i * 1000); // chunks between live readings
      }
      expect(live.every((score) => typeof score === 'number')).toBe(true);
    } finally {
      await model.release();
    }
  });

  it('measures the pause rule from the pump\'s newest reading, so a reading a little late does not restart the window of the next', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'l3', window: 3 }), 'l3');
    try {
      const r = rng(29);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const T = 10_000_000;
      const { arrive } = clocked(model);
      await arrive(Array.from({ length: 100 }, (_, i) => at(T + i * 1000)), 0);
      const late = await arrive([at(T + 99_000 - 59_500)], 100); // 59.5 s late: under a pause, scored in arrival order
      expect(typeof late[0]!.score).toBe('number');
      const next = await arrive(Array.from({ length: 10 }, (_, i) => at(T + 100_000 + i * 1000)), 1_000);
      expect(next.map((row) => row.unscoredReason)).toEqual(Array.from({ length: 10 }, () => null));
      // And a second reading 110 s behind the newest is late, though only 50 s behind the one before it.
      const later = await arrive([at(T + 109_000 - 110_000)], 2_000);
      expect(later[0]!.unscoredReason).toMatch(/^not scored: older/);
    } finally {
      await model.release();
    }
  });

  it('reads a resend stored with the reason written before 2026-12-07 as a resend still, so a restart leaves it out of the window', () => {
    expect(leftOutOfHistory('not scored again: repeats a reading of this pump already scored (same time, same values)')).toBe(true);
    expect(leftOutOfHistory('not scored: repeats a reading this pump already sent (same time, same values)')).toBe(true);
    expect(leftOutOfHistory('window filling: 1 of 10 readings')).toBe(false);
  });

  it('scores a resent reading (same time, same values) once: the copy is stored unscored and the window goes on as if it had not come', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'd3', window: 3 }), 'd3');
    try {
      const r = rng(30);
      const readings = Array.from({ length: 40 }, (_, i): Reading => ({ pumpId: 'p', ts: 1_000_000 + i * 1000, values: normalValues(r, i) }));
      const once = new InferenceEngine();
      once.setModel('default', model);
      const want = await once.score(readings, 0);
      const twice = new InferenceEngine();
      twice.setModel('default', model);
      const rows = await twice.score([...readings.slice(0, 21), { ...readings[20]!, values: { ...readings[20]!.values } }, ...readings.slice(21)], 0);
      expect(rows[21]!.score).toBeNull();
      expect(rows[21]!.unscoredReason).toMatch(/^not scored: repeats a reading this pump already sent \(same time, same values\)$/);
      expect([...rows.slice(0, 21), ...rows.slice(22)].map((row) => [row.score, row.unscoredReason])).toEqual(want.map((row) => [row.score, row.unscoredReason]));
      // The same time with other values is another reading (two senders), scored in arrival order.
      const other = await twice.score([{ pumpId: 'p', ts: readings[39]!.ts, values: normalValues(r, 99) }], 0);
      expect(typeof other[0]!.score).toBe('number');
    } finally {
      await model.release();
    }
  });

  it('is left out of a pump\'s history when the agent starts again, so the first live reading is not taken for one after a pause', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 's3', window: 3 }), 's3');
    try {
      const r = rng(26);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const T = 10_000_000;
      const stored = [...Array.from({ length: 20 }, (_, i) => at(T + i * 1000)), at(T - 3_600_000)]; // the buffer's last row is a replayed one
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      engine.seed('p', stored);
      const rows = await engine.score([at(T + 21_000), at(T + 22_000)], 0);
      expect(rows.map((row) => [typeof row.score, row.unscoredReason])).toEqual([['number', null], ['number', null]]);
    } finally {
      await model.release();
    }
  });

  it('is left out again when the agent starts again, however many of the buffer\'s last rows it fills, and a restart of the stream is replayed where it happened', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'r3', window: 3 }), 'r3');
    try {
      const r = rng(35);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const T = 10_000_000;
      // The rows as the buffer holds them: what a running engine stored, reasons included.
      const { arrive } = clocked(model);
      const stored = [];
      for (let i = 0; i < 20; i++) stored.push(...(await arrive([at(T + i * 1000)], i * 1000)));
      stored.push(...(await arrive(Array.from({ length: 300 }, (_, i) => at(T - 7_200_000 + i * 1000)), 20_500))); // a backlog, last in the buffer
      const next = at(T + 21_000);
      const restarted = new InferenceEngine();
      restarted.setModel('default', model);
      restarted.seed('p', stored);
      const rows = await restarted.score([next], 0);
      expect(rows[0]!.unscoredReason).toBeNull();

      // A sensor clock three hours ahead once, then the live readings: the stream moved back.
      const moved = clocked(model);
      const seen = [];
      for (let i = 0; i < 10; i++) seen.push(...(await moved.arrive([at(T + i * 1000)], i * 1000)));
      seen.push(...(await moved.arrive([at(T + 10_000 + 3 * 3_600_000)], 10_000)));
      for (let i = 0; i < 8; i++) seen.push(...(await moved.arrive([at(T + 11_000 + i * 1000)], 11_000 + i * 1000)));
      expect(seen.at(-1)!.unscoredReason).toBeNull();
      const last = at(T + 19_000);
      const want = await moved.engine.score([last], 0);
      const again = new InferenceEngine();
      again.setModel('default', model);
      again.seed('p', seen);
      const got = await again.score([last], 0);
      expect([got[0]!.unscoredReason, got[0]!.score]).toEqual([null, want[0]!.score]);
    } finally {
      await model.release();
    }
  });

  it('is not counted when a failed commit makes the engine forget the last score call', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'f3', window: 3 }), 'f3');
    try {
      const r = rng(23);
      const at = (ts: number): Reading => ({ pumpId: 'p', ts, values: normalValues(r, ts / 1000) });
      const first = Array.from({ length: 6 }, (_, i) => at(100_000 + i * 1000));
      const batch = [at(106_000), at(10_000), at(107_000), at(108_000)]; // the second is late by more than a pause (60 s)
      const retried = new InferenceEngine();
      retried.setModel('default', model);
      await retried.score(first, 0);
      await retried.score(batch, 0);
      retried.forgetLastScore(); // the commit failed
      const again = await retried.score(batch, 0);

      const once = new InferenceEngine();
      once.setModel('default', model);
      await once.score(first, 0);
      const want = await once.score(batch, 0);
      expect(again.map((row) => [row.score, row.unscoredReason])).toEqual(want.map((row) => [row.score, row.unscoredReason]));
      expect(again[1]!.unscoredReason).toMatch(/^not scored: older than this pump's newest reading/);
    } finally {
      await model.release();
    }
  });
});
