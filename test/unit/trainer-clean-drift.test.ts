import { describe, expect, it } from 'vitest';
import { cleanSeries, CLEAN_DEFAULTS, rowsWith, type Target } from '../../trainer/data/clean.js';
import { SeriesBuilder } from '../../trainer/data/series.js';
import { baselineOf, binShares, featureBaseline } from '../../trainer/drift/baseline.js';
import { printDrift } from '../../trainer/commands/drift.js';
import { baselineCdf, compareWithBaseline, ksDistance, psiOf } from '../../trainer/drift/compare.js';
import { mulberry32 } from '../../trainer/eval/criterion.js';

function gaussian(rand: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

function series(values: number[][], step = 1000) {
  return { features: values[0]!.map((_, f) => `f${f}`), timestamps: values.map((_, i) => i * step), rows: values.map((v) => Float64Array.from(v)) };
}

describe('SeriesBuilder', () => {
  it('aligns readings with different features by name, drops sparse features, and orders features by name', () => {
    const b = new SeriesBuilder();
    for (let i = 0; i < 2000; i++) b.add(i, i % 4 === 0 ? { Zeta: i, Alpha: 1, rare: 5 } : { Zeta: i, Alpha: i % 4 === 1 ? null : 2 });
    const { series: s, dropped } = b.build();
    expect(s.features).toEqual(['Alpha', 'Zeta']);
    expect(dropped).toEqual(['rare']);
    expect(s.rows).toHaveLength(2000);
    expect(Array.from(s.rows[4]!)).toEqual([1, 4]);
    expect(Array.from(s.rows[6]!)).toEqual([2, 6]);
    expect(Number.isNaN(s.rows[5]![0])).toBe(true);
  });

  it('leaves out a feature the most recent readings no longer have (a sensor removed), and says so', () => {
    const b = new SeriesBuilder();
    // Vibration in the first 70 % of the readings, none after: a model needing it could not score the pump now.
    for (let i = 0; i < 1000; i++) b.add(i * 1000, i < 700 ? { Flow: i, Vibration: 1 + (i % 3) } : { Flow: i });
    const { series: s, dropped, stale } = b.build();
    expect(s.features).toEqual(['Flow']);
    expect(stale).toEqual(['Vibration']);
    expect(dropped).toEqual([]);
    expect(s.rows).toHaveLength(1000);
  });
});

describe('cleanSeries', () => {
  const targets = (n: number, t: Target = null) => Array.from({ length: n }, () => t);

  it('turns a gross outlier into a missing value and carries the last good reading forward', () => {
    const rand = mulberry32(1);
    const values = Array.from({ length: 500 }, () => [10 + gaussian(rand), 5 + gaussian(rand)]);
    values[100]![0] = 1e6;
    const c = cleanSeries(series(values), targets(500));
    expect(c.stats.outliers).toEqual({ f0: 1, f1: 0 });
    expect(c.series.rows[100]![0]).toBe(values[99]![0]);
    expect(c.stats.carriedValues).toBe(1);
    expect(c.series.rows).toHaveLength(500);
  });

  it('treats a long run of one repeated value as a stuck sensor, but not a constant feature', () => {
    const rand = mulberry32(2);
    const values = Array.from({ length: 2000 }, (_, i) => [i >= 500 && i < 1200 ? 7 : 10 + rand(), 3]);
    const c = cleanSeries(series(values), targets(2000));
    expect(c.stats.stuckValues).toEqual({ f0: 700, f1: 0 });
    // 60 rows carried forward after the last good reading, the rest of the run dropped.
    expect(c.stats.carriedValues).toBe(CLEAN_DEFAULTS.maxCarryRows);
    expect(c.stats.droppedMissing).toBe(700 - CLEAN_DEFAULTS.maxCarryRows);
  });

  it('never alters rows labelled as confirmed faults, and drops maintenance rows', () => {
    const values = Array.from({ length: 300 }, (_, i) => [i % 10, 1 + (i % 3)]);
    values[50]![0] = 1e9;
    const t = targets(300);
    t[50] = 'anomaly';
    for (let i = 200; i < 220; i++) t[i] = 'exclude';
    const c = cleanSeries(series(values), t);
    expect(c.series.rows[50]![0]).toBe(1e9);
    expect(c.stats.droppedMaintenance).toBe(20);
    expect(c.series.rows).toHaveLength(280);
    expect(c.targets[50]).toBe('anomaly');
  });

  it('keeps a state that holds much of the range (a pump stopped, then running) while still removing gross glitches', () => {
    const rand = mulberry32(3);
    // Stopped (flow near 0, noisy) for 70 % of the rows, then running at about 30: the MAD is that of the stopped rows.
    const values = Array.from({ length: 2000 }, (_, i) => [i < 1400 ? 0.02 * Math.abs(gaussian(rand)) : 30 + gaussian(rand)]);
    values[1700]![0] = 1e9;
    values[300]![0] = -999;
    const c = cleanSeries(series(values), targets(2000));
    expect(c.stats.outliers).toEqual({ f0: 2 });
    expect(c.series.rows).toHaveLength(2000);
    expect(c.series.rows.slice(1400).every((r) => r[0]! > 20 && r[0]! < 40)).toBe(true);
  });

  it('does not take a set point that changed once, an on/off status or a slow transmitter polled fast for a stuck sensor', () => {
    const rand = mulberry32(4);
    const values = Array.from({ length: 4000 }, (_, i) => [
      i < 2000 ? 1450 : 1480, // set point, changed once
      Math.floor(i / 700) % 2, // valve open/closed, runs of 700
      45 + Math.floor(i / 900) / 10, // a transmitter that updates every 900 readings
      10 + rand(), // an analog sensor, for contrast
    ]);
    const c = cleanSeries(series(values), targets(4000));
    expect(c.stats.stuckValues).toEqual({ f0: 0, f1: 0, f2: 0, f3: 0 });
    expect(c.stats.droppedMissing).toBe(0);
    expect(c.series.rows).toHaveLength(4000);
  });

  it('counts, per feature, the rows dropped for lacking it', () => {
    const values = Array.from({ length: 300 }, (_, i) => [i % 7, i >= 100 && i < 250 ? NaN : i % 5, i < 10 ? NaN : i % 3]);
    const c = cleanSeries(series(values), targets(300));
    // f1: 150 missing, 60 carried forward, 90 dropped; f2: nothing to carry at the start, 10 dropped.
    expect(c.stats.droppedMissing).toBe(100);
    expect(c.stats.missingByFeature).toEqual({ f0: 0, f1: 90, f2: 10 });
  });

  it('starts a new segment after a gap longer than ten median intervals', () => {
    const values = Array.from({ length: 100 }, (_, i) => [i % 7, i % 5]);
    const s = series(values);
    s.timestamps = s.timestamps.map((t, i) => (i >= 40 ? t + 3_600_000 : t));
    const c = cleanSeries(s, targets(100));
    expect(c.segmentStarts).toEqual([0, 40]);
    expect(c.stats).toMatchObject({ gaps: 1, gapsByCleaning: 0, longestGapSeconds: 3601 });
  });

  it('leaves a passive feature (kept only for the live model) as received: frozen, wild or missing values take no row', () => {
    // f1 frozen for 700 readings, with one wild value; f2 a noisy sensor the challenger uses.
    const values = Array.from({ length: 1000 }, (_, i) => [i % 7, i >= 300 ? 5 : i % 5, (i * 37) % 11]);
    values[100]![1] = 1e9;
    const passive = cleanSeries(series(values.map((v) => [...v])), targets(1000), CLEAN_DEFAULTS, ['f1']);
    expect(passive.stats).toMatchObject({ outputRows: 1000, droppedMissing: 0 });
    expect(passive.stats.stuckValues).not.toHaveProperty('f1');
    expect(passive.series.rows[100]![1]).toBe(1e9);
    // Cleaned like the others, the same feature would have lost the frozen run and the wild value.
    const active = cleanSeries(series(values.map((v) => [...v])), targets(1000));
    expect(active.stats.stuckValues.f1).toBe(700);
    expect(active.stats.outputRows).toBeLessThan(400);
    // Missing beyond the carry limit: the row stays for the model trained (the live model cannot
    // score it: rowsWith leaves it out of the comparison, with the segments cleaning would have made).
    const gap = values.map((v, i) => (i >= 500 && i < 600 ? [v[0]!, NaN, v[2]!] : [...v]));
    const missing = cleanSeries(series(gap), targets(1000), CLEAN_DEFAULTS, ['f1']);
    expect(missing.stats).toMatchObject({ outputRows: 1000, droppedMissing: 0, carriedValues: 0, missingByFeature: { f0: 0, f2: 0 } });
    expect(missing.series.rows.filter((r) => Number.isNaN(r[1])).length).toBe(40);
    expect(rowsWith(missing, []).index).toBeNull();
    const scorable = rowsWith(missing, ['f1']);
    expect(scorable.view.series.rows).toHaveLength(960);
    expect(scorable.index!.slice(558, 562)).toEqual([558, 559, 600, 601]);
    // The same rows and segments as cleaning f1 as an active feature after its outliers and stuck runs: dropped then.
    const dropped = cleanSeries(series(gap.map((v) => [v[0]!, Number.isNaN(v[1]!) ? NaN : 0, v[2]!])), targets(1000));
    expect(dropped.stats.droppedMissing).toBe(40);
    expect(scorable.view.series.timestamps).toEqual(dropped.series.timestamps);
    expect(scorable.view.segmentStarts).toEqual(dropped.segmentStarts);
  });

  it('tells a pause in the readings from a hole that rows dropped for a missing value left', () => {
    // One reading a second; f1 missing for 200 readings from 300 (60 carried, 140 dropped: a 141 s hole); a 1 h pause at 700.
    const values = Array.from({ length: 1000 }, (_, i) => [i % 7, i >= 300 && i < 500 ? NaN : i % 5]);
    const s = series(values);
    s.timestamps = s.timestamps.map((t, i) => (i >= 700 ? t + 3_600_000 : t));
    const c = cleanSeries(s, targets(1000));
    expect(c.stats).toMatchObject({ droppedMissing: 140, gaps: 2, gapsByCleaning: 1 });
    expect(c.segmentStarts).toEqual([0, 360, 560]);
  });

  it("carries no value across a pause in the readings, nor a passive feature's: the agent starts the window again after it", () => {
    // One reading a second, a 10 min pause before 500; f1 missing at 500-502, the passive f2 at 500-504 (both read at 499).
    const values = Array.from({ length: 1000 }, (_, i) => [i % 7, i >= 500 && i < 503 ? NaN : i % 5, i >= 500 && i < 505 ? NaN : (i * 37) % 11]);
    const s = series(values);
    s.timestamps = s.timestamps.map((t, i) => (i >= 500 ? t + 600_000 : t));
    const c = cleanSeries(s, targets(1000), CLEAN_DEFAULTS, ['f2']);
    expect(c.stats).toMatchObject({ outputRows: 997, carriedValues: 0, droppedMissing: 3, missingByFeature: { f0: 0, f1: 3 }, gaps: 1, gapsByCleaning: 0 });
    // 503 and 504 kept for the model trained, without the passive value (a model needing it cannot score them: rowsWith)
    expect(c.series.rows.flatMap((r, k) => (Number.isNaN(r[2]) ? [c.series.timestamps[k]! - 600_000] : []))).toEqual([503_000, 504_000]);
    expect(c.segmentStarts).toEqual([0, 500]);
    expect(rowsWith(c, ['f2']).view.series.rows).toHaveLength(995);
  });
});

describe('drift against a baseline', () => {
  const sample = (n: number, mean: number, seed: number) => {
    const rand = mulberry32(seed);
    return Array.from({ length: n }, () => Float64Array.of(mean + gaussian(rand)));
  };
  const base = baselineOf(['x'], sample(5000, 0, 1));

  it('keeps deciles, shares and percentiles of the training values', () => {
    expect(base.x!.edges).toHaveLength(9);
    expect(base.x!.shares.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 9);
    base.x!.shares.forEach((s) => expect(s).toBeCloseTo(0.1, 2));
    expect(base.x!.percentiles).toHaveLength(101);
    expect(base.x!.percentiles[50]).toBeCloseTo(0, 1);
    expect(binShares(Float64Array.of(1, 2, 3, 4), [2.5])).toEqual([0.5, 0.5]);
  });

  it('finds no drift in a fresh sample of the same distribution', () => {
    const r = compareWithBaseline(base, ['x'], sample(3000, 0, 2));
    expect(r.features[0]!.psi).toBeLessThan(0.02);
    expect(r.features[0]!.ks).toBeLessThan(0.05);
    expect(r.drifted).toBe(false);
  });

  it('flags a shift of one standard deviation by PSI and KS, and a missing feature', () => {
    const r = compareWithBaseline(base, ['x'], sample(3000, 1, 3));
    expect(r.features[0]!.psi).toBeGreaterThan(0.25);
    expect(r.features[0]!.ks).toBeGreaterThan(0.3);
    expect(r.drifted).toBe(true);
    const gone = compareWithBaseline(base, ['y'], sample(10, 0, 4));
    expect(gone).toMatchObject({ drifted: true, missing: ['x'], features: [] });
  });

  it('computes PSI, the baseline CDF and the KS distance as defined', () => {
    expect(psiOf([0.5, 0.5], [0.5, 0.5])).toBe(0);
    expect(psiOf([0.5, 0.5], [0.25, 0.75])).toBeCloseTo(0.25 * Math.log(0.75 / 0.5) - 0.25 * Math.log(0.25 / 0.5), 12);
    const p = featureBaseline(Float64Array.from({ length: 101 }, (_, i) => i)).percentiles;
    expect(baselineCdf(p, -1)).toBe(0);
    expect(baselineCdf(p, 50)).toBeCloseTo(0.5, 9);
    expect(baselineCdf(p, 100)).toBe(1);
    expect(ksDistance(Float64Array.from({ length: 101 }, (_, i) => i + 50), p)).toBeCloseTo(0.5, 1);
    // A quantised feature compared with itself: point masses do not look like drift (at most
    // one percentile step of resolution).
    const steps = Float64Array.from({ length: 1000 }, (_, i) => Math.floor(i / 250));
    expect(ksDistance(steps, featureBaseline(steps).percentiles)).toBeLessThanOrEqual(0.0100001);
  });

  it('finds no drift in the very readings the baseline was made of, whatever their digits (a constant float32 reading, a two-level status)', () => {
    // The baseline went through model.json: edges and percentiles rounded to 8 digits made 230.10000610351562 read 230.10001, KS 1.
    const stored = (b: ReturnType<typeof baselineOf>) => JSON.parse(JSON.stringify(b)) as ReturnType<typeof baselineOf>;
    const constant = Array.from({ length: 200 }, () => Float64Array.of(Math.fround(230.1), 0.123456789, 5.000000001));
    const r = compareWithBaseline(stored(baselineOf(['V', 'k', 's'], constant)), ['V', 'k', 's'], constant);
    expect(r.features.map((f) => [f.feature, f.psi, f.ks, f.drifted])).toEqual([
      ['V', 0, 0, false],
      ['k', 0, 0, false],
      ['s', 0, 0, false],
    ]);
    const status = Array.from({ length: 1000 }, (_, i) => Float64Array.of(i % 2 === 0 ? 0.123456789 : 0.223456789));
    const st = compareWithBaseline(stored(baselineOf(['st'], status)), ['st'], status).features[0]!;
    expect(st).toMatchObject({ psi: 0, drifted: false });
    expect(st.ks).toBeLessThanOrEqual(0.0100001); // one percentile step, as for any point mass
    // A constant that moved still drifts, from 4 rows on: KS 1 is above 1.95/√n_eff (n_eff =
    // n·N/(n + N), N = 200 baseline rows), what unchanged data stays below 99.9 % of the time; one
    // row cannot say it (1.95/√(200/201) > 1).
    const moved = stored(baselineOf(['V'], constant.map((r) => r.subarray(0, 1))));
    expect(compareWithBaseline(moved, ['V'], Array.from({ length: 4 }, () => Float64Array.of(230.2))).features[0]).toMatchObject({ ks: 1, drifted: true });
    expect(compareWithBaseline(moved, ['V'], [Float64Array.of(230.2)]).features[0]).toMatchObject({ ks: 1, drifted: false, effective: { psi: null, ks: 1.95 / Math.sqrt(200 / 201) } });
  });
});

describe('drift table', () => {
  it('lines up every column when a feature name is longer than 24 characters', () => {
    const rand = mulberry32(9);
    const rows = Array.from({ length: 500 }, () => Float64Array.of(rand(), 230 + rand(), rand()));
    const names = ['Flow', 'Motor_Bearing_Temperature_DriveEnd', 'Pressure'];
    const base = baselineOf(names, rows);
    const report = compareWithBaseline(base, ['Flow', 'Motor_Bearing_Temperature_DriveEnd'], rows.map((r) => Float64Array.of(r[0]! + 1, r[1]!)));
    const lines: string[] = [];
    printDrift({ out: (t: string) => lines.push(t), err: () => {} }, 'pump-1', 'v1', 500, report);
    const table = lines.slice(1, -1);
    expect(table).toHaveLength(4); // header, two features, one missing
    // PSI and KS end in the same column on every row.
    const psiEnd = table[0]!.indexOf('PSI') + 3;
    const ksEnd = table[0]!.indexOf('KS') + 2;
    for (const line of table.slice(1, 3)) {
      expect(line.slice(psiEnd - 5, psiEnd)).toMatch(/^\d+\.\d{3}$/);
      expect(line.slice(ksEnd - 5, ksEnd)).toMatch(/^\d\.\d{3}$/);
    }
    expect(table[3]!.slice(psiEnd - 1, psiEnd)).toBe('-');
    expect(table[1]).toMatch(/^ {2}Flow +\d/);
    expect(lines.at(-1)).toBe('  drift: Flow, Pressure');
  });
});
