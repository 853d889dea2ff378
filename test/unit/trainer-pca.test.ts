import { describe, expect, it } from 'vitest';
import { driftAllowance, fitPca, PCA_DEFAULTS, pcaAlgorithm } from '../../trainer/algorithms/pca.js';
import { FitError } from '../../trainer/errors.js';
import { symmetricEigen } from '../../trainer/linalg/jacobi.js';
import { slidingWindows } from '../../trainer/windows.js';
import { mulberry32 as rng } from '../../trainer/eval/criterion.js';

/** Deterministic uniform [0, 1) generator (mulberry32). */

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

/** Two strongly correlated features (y ≈ 2x + 10) and one independent noisy one. */
function correlatedRows(n: number, seed = 1): Float64Array[] {
  const rand = rng(seed);
  return Array.from({ length: n }, () => {
    const x = gaussian(rand);
    return Float64Array.of(x, 2 * x + 10 + 0.05 * gaussian(rand), 5 + gaussian(rand));
  });
}

describe('symmetricEigen', () => {
  it('finds the eigenpairs of a known 2x2 matrix, largest first', () => {
    const { values, vectors } = symmetricEigen([
      [2, 1],
      [1, 2],
    ]);
    expect(values[0]).toBeCloseTo(3, 12);
    expect(values[1]).toBeCloseTo(1, 12);
    expect(Math.abs(vectors[0]![0]!)).toBeCloseTo(Math.SQRT1_2, 12);
    expect(vectors[0]![0]! * vectors[0]![1]!).toBeGreaterThan(0);
  });

  it('returns orthonormal vectors with A·v = λ·v for a random symmetric matrix', () => {
    const rand = rng(7);
    const n = 8;
    const a = Array.from({ length: n }, () => new Float64Array(n));
    for (let i = 0; i < n; i++) for (let j = i; j < n; j++) a[i]![j] = a[j]![i] = rand() * 2 - 1;
    const { values, vectors } = symmetricEigen(a);
    for (let k = 0; k < n; k++) {
      const v = vectors[k]!;
      for (let i = 0; i < n; i++) {
        const av = a[i]!.reduce((s, aij, j) => s + aij * v[j]!, 0);
        expect(av).toBeCloseTo(values[k]! * v[i]!, 10);
      }
      for (let m = 0; m < n; m++) {
        const d = v.reduce((s, vi, i) => s + vi * vectors[m]![i]!, 0);
        expect(d).toBeCloseTo(k === m ? 1 : 0, 10);
      }
    }
    for (let k = 1; k < n; k++) expect(values[k]!).toBeLessThanOrEqual(values[k - 1]!);
  });
});

describe('PCA T²+Q', () => {
  const set = { features: ['x', 'y', 'z'], rows: correlatedRows(500), window: 1 };
  const model = fitPca(set, PCA_DEFAULTS);

  it('scores a reading that breaks the correlation far above the threshold', () => {
    const off = Float64Array.of(1, -8, 5); // y should be about 12 for x = 1
    expect(model.score([[off]]).scores[0]!).toBeGreaterThan(10 * model.threshold);
  });

  it('scores a reading on the correlation line, inside the training range, below the threshold', () => {
    const on = Float64Array.of(0.5, 11, 5);
    expect(model.score([[on]]).scores[0]!).toBeLessThan(model.threshold);
  });

  it('splits the residual between the two features whose correlation broke', () => {
    const shares = model.score([[Float64Array.of(1, -8, 5)]]).contributions[0]!;
    expect(shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    expect(shares[0]! + shares[1]!).toBeGreaterThan(0.99);
    expect(shares[2]!).toBeLessThan(0.01);
  });

  it('scales scores so that 1 % of training windows score above 1, and puts the threshold at 2.5', () => {
    const scores = model.score(slidingWindows(set.rows, 1)).scores;
    const aboveOne = scores.filter((s) => s > 1).length / scores.length;
    expect(aboveOne).toBeGreaterThan(0.005);
    expect(aboveOne).toBeLessThanOrEqual(0.015);
    expect(model.threshold).toBe(2.5);
    expect(scores.filter((s) => s > model.threshold).length / scores.length).toBeLessThan(0.005);
  });

  it('gives a drifting feature a drift allowance and leaves noise-like features alone', () => {
    const rand = rng(3);
    const rows = Array.from({ length: 400 }, (_, i) => Float64Array.of(gaussian(rand), 20 + i * 0.01 + 0.01 * gaussian(rand)));
    const allowance = driftAllowance(rows);
    expect(allowance[0]).toBeCloseTo(1, 6);
    expect(allowance[1]!).toBeGreaterThan(100);
    const m = fitPca({ features: ['noise', 'temperature'], rows, window: 1 }, PCA_DEFAULTS);
    expect((m.metrics.driftAllowance as Record<string, number>).temperature).toBeGreaterThan(100);
    // The trade-off: a feature that only ramped in training (20 to 24) weighs little, so half an
    // envelope width further along its ramp it does not raise an alarm on its own ...
    expect(m.score([[Float64Array.of(0, 24 + 2)]]).scores[0]!).toBeLessThan(m.threshold);
    // ... but the envelope guard does, ten training ranges along (it used to stay quiet there),
    // and the contributions name the feature outside its envelope.
    const far = m.score([[Float64Array.of(0, 20 + 40)]]);
    expect(far.scores[0]!).toBeGreaterThan(m.threshold);
    expect(far.contributions[0]![1]!).toBeCloseTo(1, 6);
  });

  it('reaches the threshold through the envelope guard exactly one envelope width outside the training window means', () => {
    const rand = rng(4);
    const rows = Array.from({ length: 400 }, (_, i) => Float64Array.of(gaussian(rand), 20 + i * 0.01 + 0.01 * gaussian(rand)));
    const m = fitPca({ features: ['noise', 'temperature'], rows, window: 1 }, PCA_DEFAULTS);
    const temps = rows.map((r) => r[1]!);
    const lo = Math.min(...temps);
    const hi = Math.max(...temps);
    const score = (t: number) => m.score([[Float64Array.of(0, t)]]).scores[0]!;
    expect(score(hi + 1.01 * (hi - lo))).toBeGreaterThan(m.threshold);
    expect(score(lo - 1.01 * (hi - lo))).toBeGreaterThan(m.threshold);
    expect(score(hi + 0.99 * (hi - lo))).toBeLessThan(m.threshold);
    expect(m.metrics.envelopeMargin).toBe(1);
  });

  it('averages the standardised readings over the window, so one spike in a long window scores lower', () => {
    const w5 = fitPca({ ...set, window: 5 }, PCA_DEFAULTS);
    const normal = Float64Array.of(0, 10, 5);
    const spike = Float64Array.of(1, -8, 5);
    const alone = w5.score([[spike, spike, spike, spike, spike]]).scores[0]!;
    const diluted = w5.score([[normal, normal, normal, normal, spike]]).scores[0]!;
    expect(diluted).toBeLessThan(alone);
    expect(diluted).toBeGreaterThan(0);
  });

  it('gives a feature that never varies in training no weight and reports it', () => {
    const rows = correlatedRows(200).map((r) => Float64Array.of(r[0]!, r[1]!, 3));
    const m = fitPca({ features: ['x', 'y', 'flat'], rows, window: 1 }, PCA_DEFAULTS);
    expect(m.metrics.constantFeatures).toEqual(['flat']);
    const a = m.score([[Float64Array.of(0.2, 10.4, 3)]]).scores[0]!;
    const b = m.score([[Float64Array.of(0.2, 10.4, 300)]]).scores[0]!;
    expect(b).toBeCloseTo(a, 12);
  });

  it('refuses too few rows and data in which nothing varies', () => {
    const algo = pcaAlgorithm();
    expect(() => algo.fit({ features: ['x'], rows: correlatedRows(5), window: 1 })).toThrow(FitError);
    const flat = Array.from({ length: 50 }, () => Float64Array.of(1, 2));
    expect(() => algo.fit({ features: ['a', 'b'], rows: flat, window: 1 })).toThrow(/no feature varies/);
  });
});
