import { describe, expect, it } from 'vitest';
import { columnVariance, horizonScale, rowOf, variogramLags, windowMeans } from '../../trainer/algorithms/horizon.js';
import { fitMset, medianNearestSq, MSET_DEFAULTS, msetAlgorithm, selectMemory } from '../../trainer/algorithms/mset.js';
import { FitError } from '../../trainer/errors.js';
import { normalQuantile } from '../../trainer/linalg/normal.js';
import { slidingWindows } from '../../trainer/windows.js';
import { mulberry32 as rng } from '../../trainer/eval/criterion.js';

/** Deterministic uniform [0, 1) generator (mulberry32). */

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Feature 0: white noise; feature 1: a random walk with the same step noise. */
function noiseAndWalk(n: number, seed = 1): Float64Array[] {
  const rand = rng(seed);
  let walk = 0;
  return Array.from({ length: n }, () => {
    walk += 0.3 * gaussian(rand);
    return Float64Array.of(gaussian(rand), walk);
  });
}

describe('normalQuantile', () => {
  it('matches tabulated quantiles of the standard normal distribution', () => {
    expect(normalQuantile(0.5)).toBeCloseTo(0, 9);
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 6);
    expect(normalQuantile(0.001)).toBeCloseTo(-3.090232, 6);
    expect(normalQuantile(1 - 0.01 / 16)).toBeCloseTo(3.227218, 5);
    expect(() => normalQuantile(1)).toThrow(RangeError);
  });
});

describe('window means and the horizon scale', () => {
  it('computes the same window means as the agent-style padded sliding windows', () => {
    const rows = noiseAndWalk(50);
    const fast = windowMeans(rows, 7);
    expect(fast.rows).toBe(50);
    slidingWindows(rows, 7).forEach((w, i) => {
      for (let f = 0; f < 2; f++) expect(rowOf(fast, i)[f]).toBeCloseTo(w.reduce((s, r) => s + r[f]!, 0) / 7, 10);
    });
    const full = windowMeans(rows, 7, 6);
    expect(full.rows).toBe(44);
    expect(rowOf(full, 0)[1]).toBeCloseTo(rowOf(fast, 6)[1]!, 12);
  });

  it('measures the variogram at up to 20 lags from the window length to half the training rows', () => {
    expect(variogramLags(400, 10)).toEqual([10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200]);
    expect(variogramLags(15, 10)).toEqual([]);
    expect(variogramLags(1_000_000, 10)).toHaveLength(20);
  });

  it('keeps the scale of a noise feature near its window-mean spread and widens that of a wandering one', () => {
    const rows = noiseAndWalk(4000, 2);
    const means = windowMeans(rows, 10, 9);
    const fit = horizonScale(means, { window: 10, trainRows: rows.length, horizon: rows.length });
    const sd = (f: number) => Math.sqrt(columnVariance(means)[f]!);
    // White noise averaged over 10 readings: about 1/sqrt(10); the horizon adds nothing.
    expect(fit.scale[0]!).toBeGreaterThan(0.25);
    expect(fit.scale[0]!).toBeLessThan(0.45);
    expect(fit.slope[0]!).toBeLessThan(1e-4);
    // A random walk: γ(h) grows with the lag, so the scale exceeds the training spread itself.
    expect(fit.slope[1]!).toBeGreaterThan(0.005);
    expect(fit.scale[1]!).toBeGreaterThan(sd(1));
    expect(fit.scale[1]!).toBeGreaterThan(10 * fit.scale[0]!);
  });
});

describe('MSET-like model', () => {
  /** Two operating points (flow 10 or 30), pressure follows flow, a noise feature beside. */
  function twoModes(n: number, seed = 5): Float64Array[] {
    const rand = rng(seed);
    return Array.from({ length: n }, (_, i) => {
      const flow = (Math.floor(i / 100) % 2 === 0 ? 10 : 30) + 0.2 * gaussian(rand);
      return Float64Array.of(flow, 5 + 0.1 * flow + 0.02 * gaussian(rand), 1 + 0.1 * gaussian(rand));
    });
  }
  const set = { features: ['flow', 'pressure', 'noise'], rows: twoModes(800), window: 5 };
  const model = fitMset(set, MSET_DEFAULTS);
  const steady = (row: Float64Array) => [Array.from({ length: 5 }, () => row)];

  it('scores both operating points it was trained on below the threshold', () => {
    expect(model.score(steady(Float64Array.of(10, 6, 1))).scores[0]!).toBeLessThan(model.threshold);
    expect(model.score(steady(Float64Array.of(30, 8, 1))).scores[0]!).toBeLessThan(model.threshold);
  });

  it('flags a state that breaks the flow-pressure relation and names pressure as the main contributor', () => {
    // Pressure 1 at flow 30, where it is 8 in training (both modes have pressure 6 to 8).
    const broken = model.score(steady(Float64Array.of(30, 1, 1)));
    expect(broken.scores[0]!).toBeGreaterThan(model.threshold);
    const shares = broken.contributions[0]!;
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(shares[1]!).toBeGreaterThan(shares[0]!);
    expect(shares[1]!).toBeGreaterThan(shares[2]!);
  });

  it('sets the threshold from the Bonferroni-normal quantile of the varying features, not from scores', () => {
    expect(model.threshold).toBeCloseTo(normalQuantile(1 - 0.01 / 6), 5);
    expect(model.metrics).toMatchObject({ trainRows: 800, alpha: 0.01, constantFeatures: [] });
  });

  it('raises few alarms on fresh normal data of the same process', () => {
    const fresh = twoModes(2000, 99);
    const scores = model.score(slidingWindows(fresh, 5).slice(4)).scores;
    expect(scores.filter((s) => s > model.threshold).length / scores.length).toBeLessThan(0.02);
  });

  it('tolerates a wandering feature further than a noise feature of the same training spread', () => {
    const rows = noiseAndWalk(400, 7);
    const m = fitMset({ features: ['noise', 'walk'], rows, window: 10 }, MSET_DEFAULTS);
    const scale = m.metrics.horizonScale as Record<string, number>;
    expect(scale.walk!).toBeGreaterThan(scale.noise! * 2);
  });

  it('gives a feature that never varies in training no weight and reports it', () => {
    const rows = twoModes(300).map((r) => Float64Array.of(r[0]!, r[1]!, 3));
    const m = fitMset({ features: ['flow', 'pressure', 'flat'], rows, window: 1 }, MSET_DEFAULTS);
    expect(m.metrics.constantFeatures).toEqual(['flat']);
    const a = m.score([[Float64Array.of(10, 6, 3)]]).scores[0]!;
    const b = m.score([[Float64Array.of(10, 6, 300)]]).scores[0]!;
    expect(b).toBeCloseTo(a, 12);
    expect(m.threshold).toBeCloseTo(normalQuantile(1 - 0.01 / 4), 5);
  });

  it('keeps at most 64 memory states, including each feature’s extremes', () => {
    const states = twoModes(500).map((r) => Float64Array.of(r[0]! / 10, r[1]!, r[2]!));
    const memory = selectMemory({ data: Float64Array.from(states.flatMap((s) => [...s])), rows: states.length, cols: 3 }, 64);
    expect(memory.length).toBeLessThanOrEqual(64);
    for (let f = 0; f < 3; f++) {
      expect(memory.some((m) => m[f] === Math.max(...states.map((s) => s[f]!)))).toBe(true);
      expect(memory.some((m) => m[f] === Math.min(...states.map((s) => s[f]!)))).toBe(true);
    }
    expect(medianNearestSq([Float64Array.of(0), Float64Array.of(1), Float64Array.of(3)])).toBe(1);
  });

  it('gives the same parameters for the same rows', () => {
    const again = fitMset(set, MSET_DEFAULTS);
    expect(again.score(steady(Float64Array.of(20, 7, 1))).scores[0]).toBe(model.score(steady(Float64Array.of(20, 7, 1))).scores[0]);
    expect(again.metrics).toEqual(model.metrics);
  });

  it('refuses too few rows and data in which nothing varies', () => {
    const algo = msetAlgorithm();
    expect(() => algo.fit({ features: ['x'], rows: twoModes(5), window: 1 })).toThrow(FitError);
    const flat = Array.from({ length: 50 }, () => Float64Array.of(1, 2));
    expect(() => algo.fit({ features: ['a', 'b'], rows: flat, window: 1 })).toThrow(/no feature varies/);
  });
});

describe('mset-rel: the relations channel', () => {
  /** A pump-like set: demand wanders over the range (a random walk); flow follows it, current and pressure follow flow, with noise. */
  function coupled(n: number, seed: number, flowOffset = 0): Float64Array[] {
    const rand = rng(seed);
    let demand = 0;
    return Array.from({ length: n }, () => {
      demand += 0.05 * gaussian(rand);
      const flow = 100 + 10 * Math.tanh(demand) + 0.3 * gaussian(rand);
      return Float64Array.of(flow + flowOffset, 2 + 0.02 * flow + 0.01 * gaussian(rand), 5 - 0.01 * flow + 0.01 * gaussian(rand));
    });
  }
  const features = ['Flow', 'Current', 'Pressure'];
  const set = { features, rows: coupled(6000, 11), window: 10 };
  const plain = fitMset(set, MSET_DEFAULTS);
  const rel = msetAlgorithm({ relations: true }).fit(set);

  it('is named mset-relations, counts both channels in its Bonferroni threshold and reports the relation scales', () => {
    expect(rel.algorithm).toBe('mset-relations');
    expect(plain.algorithm).toBe('mset-horizon');
    expect(rel.threshold).toBeCloseTo(normalQuantile(1 - 0.01 / (2 * 6)), 5);
    expect(Object.keys(rel.metrics.relationsScale as object)).toEqual(features);
    expect(rel.metrics.ridgeLambda).toBeCloseTo(0.001 * (rel.metrics.trainWindows as number), 3);
  });

  it('flags a flow meter reading off by less than the flow normally moves, which the state estimate alone lets pass', () => {
    // 1.5 units off, while flow wanders over about 20 units in training; current and pressure still say where flow is.
    const drifted = slidingWindows(coupled(600, 12, 1.5), 10).slice(9);
    const flaggedShare = (m: typeof rel) => m.score(drifted).scores.filter((s) => s > m.threshold).length / drifted.length;
    expect(flaggedShare(plain)).toBeLessThan(0.05);
    expect(flaggedShare(rel)).toBeGreaterThan(0.9);
  });

  it('names the drifted sensor first in the contributions of every window it flags', () => {
    const cases: Array<[number, number[]]> = [[0, [1.5, 0, 0]], [1, [0, 0.05, 0]], [2, [0, 0, -0.05]]];
    for (const [feature, offset] of cases) {
      const rand = rng(14);
      let demand = 0;
      const rows = Array.from({ length: 400 }, () => {
        demand += 0.05 * gaussian(rand);
        const flow = 100 + 10 * Math.tanh(demand) + 0.3 * gaussian(rand);
        return Float64Array.of(flow + offset[0]!, 2 + 0.02 * flow + 0.01 * gaussian(rand) + offset[1]!, 5 - 0.01 * flow + 0.01 * gaussian(rand) + offset[2]!);
      });
      const result = rel.score(slidingWindows(rows, 10).slice(9));
      const flagged = result.contributions.filter((_, i) => result.scores[i]! > rel.threshold);
      expect(flagged.length, features[feature]).toBeGreaterThan(300);
      for (const c of flagged) {
        expect(c.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
        expect(c.indexOf(Math.max(...c)), features[feature]).toBe(feature);
      }
    }
  });

  it('raises few alarms on normal readings of the same pump it was not trained on', () => {
    const later = slidingWindows(coupled(3000, 13), 10).slice(9);
    const scores = rel.score(later).scores;
    expect(scores.filter((s) => s > rel.threshold).length / scores.length).toBeLessThan(0.02);
  });
});
