import { describe, expect, it } from 'vitest';
import { GAP_INTERVALS, GAP_MIN_MS, pauseLimitMs, pauseStarts } from '../../inference/contract.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';
import { holesOf } from '../../trainer/report/svg.js';

/** The rule read literally: the median of the last GAP_INTERVALS intervals since the last start, sorted afresh at each reading. */
function reference(ts: readonly number[]): { starts: number[]; limits: number[] } {
  const starts = ts.length > 0 ? [0] : [];
  const limits = ts.length > 0 ? [Infinity] : [];
  let from = 0;
  for (let i = 1; i < ts.length; i++) {
    const since = ts.slice(from, i);
    const intervals = since
      .slice(1)
      .map((t, k) => t - since[k]!)
      .slice(-GAP_INTERVALS)
      .sort((a, b) => a - b);
    const n = intervals.length;
    const limit = n === 0 ? Infinity : pauseLimitMs(n % 2 === 1 ? intervals[(n - 1) / 2]! : (intervals[n / 2 - 1]! + intervals[n / 2]!) / 2);
    limits.push(limit);
    if (n > 0 && ts[i]! - ts[i - 1]! > GAP_MIN_MS && ts[i]! - ts[i - 1]! > limit) {
      starts.push(i);
      from = i;
    }
  }
  return { starts, limits };
}

/** Readings whose rate changes every few hundred (1 s to 3 min), with long steps now and then. */
function series(seed: number, n: number): number[] {
  const r = mulberry32(seed);
  const rates = [1000, 2000, 10_000, 30_000, 180_000];
  const ts = [0];
  let rate = 1000;
  for (let i = 1; i < n; i++) {
    if (r() < 0.005) rate = rates[Math.floor(r() * rates.length)]!;
    const long = r() < 0.01 ? 5 + r() * 50 : 1;
    ts.push(ts[i - 1]! + Math.round(rate * long * (0.5 + r())));
  }
  return ts;
}

describe('pauseStarts, the pause rule the trainer shares with the agent', () => {
  it('finds the pauses and limits of the rule read literally, on series whose rate changes', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const ts = series(seed, 5000);
      const limits = new Float64Array(ts.length);
      const want = reference(ts);
      expect(pauseStarts(ts, limits)).toEqual(want.starts);
      expect(Array.from(limits)).toEqual(want.limits);
      expect(want.starts.length).toBeGreaterThan(5);
    }
  });

  it('judges a step at the pace of the last readings, not of the whole range', () => {
    // An hour at 1 Hz, then ten minutes at one every 10 s with a 90 s step: not a pause (limit 100 s)
    const ts = Array.from({ length: 3600 }, (_, i) => i * 1000);
    for (let k = 0; k < 60; k++) ts.push(ts.at(-1)! + (k === 40 ? 90_000 : 10_000));
    expect(pauseStarts(ts)).toEqual([0]);
    // and a 70 s step in the 1 Hz hour is one (limit 60 s)
    const slow = Array.from({ length: 200 }, (_, i) => i * 10_000);
    const fast = Array.from({ length: 100 }, (_, i) => slow.at(-1)! + 10_000 + i * 1000 + (i >= 50 ? 70_000 : 0));
    expect(pauseStarts([...slow, ...fast])).toEqual([0, 250]);
  });

  it('calls no step a pause before two readings give an interval to judge by, as the agent does', () => {
    // the hour between the first two readings is the typical interval the next step is judged by
    expect(pauseStarts([0, 3_600_000, 7_200_000, 7_201_000])).toEqual([0]);
    expect(pauseStarts([0, 1000, 2000, 3_600_000, 7_200_000])).toEqual([0, 3]);
    expect(pauseStarts([])).toEqual([]);
  });

  it("shades the report's holes where the rule finds pauses among the scored rows", () => {
    const ts = series(9, 3000);
    expect(holesOf(ts)).toEqual(reference(ts).starts.slice(1));
  });
});
