/** Counters (trainer/data/counters.ts): features that only grow are told from sensors that drift. */
import { describe, expect, it } from 'vitest';
import { changesOf, findCounters, isCounter, withoutFeatures } from '../../trainer/data/counters.js';
import { SeriesBuilder, type Series } from '../../trainer/data/series.js';
import { rng } from '../support/models.js';

function series(columns: Record<string, number[]>): Series {
  const features = Object.keys(columns);
  const n = (Object.values(columns)[0] as number[]).length;
  return {
    features,
    timestamps: Array.from({ length: n }, (_, i) => i * 1000),
    rows: Array.from({ length: n }, (_, i) => Float64Array.from(features.map((f) => (columns[f] as number[])[i] as number))),
  };
}

describe('counters', () => {
  const r = rng(3);
  const n = 2000;
  const hours = Array.from({ length: n }, (_, i) => Math.round((1000 + i / 360) * 100) / 100);

  it('finds running hours in hundredths, also across one reset and with missing values, and no noisy sensor', () => {
    const reset = hours.map((h, i) => (i >= 1500 ? h - 1000 : h));
    const gappy = hours.map((h, i) => (i % 7 === 0 ? NaN : h));
    // A temperature warming over the whole range, with noise: it falls about as often as it rises.
    const warming = Array.from({ length: n }, (_, i) => 40 + i / 100 + 0.3 * (r() - 0.5));
    const s = series({ Hours: hours, Reset: reset, Gappy: gappy, Warming: warming });
    expect(findCounters(s).map((c) => c.name)).toEqual(['Hours', 'Reset', 'Gappy']);
    expect(changesOf(s.rows, 1)).toEqual({ rises: changesOf(s.rows, 0).rises - 1, falls: 1 });
    expect(isCounter(changesOf(s.rows, 3))).toBe(false);
  });

  it('does not take a set point that stepped up a few times, nor a counter reset too often, for a counter', () => {
    expect(isCounter({ rises: 9, falls: 0 })).toBe(false);
    expect(isCounter({ rises: 10, falls: 0 })).toBe(true);
    expect(isCounter({ rises: 990, falls: 10 })).toBe(true);
    expect(isCounter({ rises: 990, falls: 11 })).toBe(false);
    const setpoint = Array.from({ length: n }, (_, i) => 1450 + 10 * Math.floor(i / 500));
    expect(findCounters(series({ Setpoint: setpoint }))).toEqual([]);
  });

  it('leaves the features named out of a narrower copy, rows and timestamps unchanged', () => {
    const s = series({ A: [1, 2, 3], Hours: [5, 6, 7], B: [9, 8, 7] });
    const out = withoutFeatures(s, ['Hours']);
    expect(out.features).toEqual(['A', 'B']);
    expect(out.rows.map((row) => [...row])).toEqual([[1, 9], [2, 8], [3, 7]]);
    expect(out.timestamps).toBe(s.timestamps);
    expect(withoutFeatures(s, ['Other'])).toBe(s);
  });

  it('compacts the rows SeriesBuilder made in their own buffer, with the same values as a copy', () => {
    const b = new SeriesBuilder();
    for (let i = 0; i < 500; i++) b.add(i * 1000, { A: i, Hours: 1000 + i, B: -i, C: i % 7 });
    const { series: s } = b.build();
    const buffer = s.rows[0]!.buffer;
    // By default a copy: the caller's rows keep their values (train still reads them afterwards).
    const copy = withoutFeatures(s, ['Hours', 'C']);
    expect(copy.rows[0]!.buffer).not.toBe(buffer);
    s.rows.forEach((row, i) => expect([...row]).toEqual([i, -i, i % 7, 1000 + i]));
    const out = withoutFeatures(s, ['Hours', 'C'], true);
    expect(out.features).toEqual(['A', 'B']);
    expect(out.rows[0]!.buffer).toBe(buffer);
    out.rows.forEach((row, i) => expect([...row]).toEqual([i, -i]));
    expect(copy.rows.map((r) => [...r])).toEqual(out.rows.map((r) => [...r]));
  });
});
