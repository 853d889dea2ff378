/**
 * Window means and the horizon scale: how far a feature's window mean normally moves over one
 * training span, the scale the MSET-like model measures deviations in.
 *
 * A short training period shows a feature's reading-to-reading scatter but only part of its slow
 * wander (a temperature following the room, a flow rate following demand). The semivariogram of
 * the window means, γ(h) = ½·mean((m[t+h] - m[t])²), says how the typical change grows with the
 * lag h: flat for noise, growing for wander. It is measured at up to 20 lags evenly spaced from W
 * to L/2 (L training rows), fitted as γ(h) ≈ a + c·h (c ≥ 0, least squares) and read at h = L:
 * the change to expect over one more training span, the time until the model is retrained.
 *   scale² = max(2·(a + c·L), variance of the window means)
 *
 * Window means never span a pause (TrainingSet.segmentStarts), but the variogram pairs them across
 * one, counting the lag in readings: how far a pump is from where it was before a night's stop is
 * wander it will show again. Pairs within a run only were tried: on a pump that stops every night,
 * the within-day trend then read at L made every scale about 3 times wider, and a stopped pump's
 * zero flow scored 3.3 against a threshold of 3.0 instead of 9.9 (trainer-messy-data).
 *
 * Matrices are flat row-major Float64Arrays (`rows × n`): a million window means are one buffer,
 * not a million small arrays.
 */

import { segmentBounds } from '../windows.js';

const MAX_LAGS = 20;

/** A flat row-major matrix. */
export interface Flat {
  data: Float64Array;
  rows: number;
  cols: number;
}

export const rowOf = (m: Flat, i: number): Float64Array => m.data.subarray(i * m.cols, (i + 1) * m.cols);

/**
 * The mean of the `window` rows ending at each row, padded with the first row before the start
 * (as the agent and `slidingWindows` build windows), from row `from` on. Running sums.
 */
export function windowMeans(rows: readonly ArrayLike<number>[], window: number, from = 0): Flat {
  const n = rows[0]?.length ?? 0;
  const first = rows[0] ?? new Float64Array(n);
  const sum = Float64Array.from({ length: n }, (_, f) => (first[f] as number) * window);
  const out = new Float64Array(Math.max(0, rows.length - from) * n);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i] as ArrayLike<number>;
    const leaving = i - window >= 0 ? (rows[i - window] as ArrayLike<number>) : first;
    for (let f = 0; f < n; f++) sum[f] = (sum[f] as number) + (row[f] as number) - (leaving[f] as number);
    if (i >= from) for (let f = 0; f < n; f++) out[(i - from) * n + f] = (sum[f] as number) / window;
  }
  return { data: out, rows: Math.max(0, rows.length - from), cols: n };
}

/**
 * Window means of each run (segmentBounds), never across a run's start; `full`: only windows whose
 * readings all lie in their run (else padded with the run's first row). One run: windowMeans.
 */
export function segmentWindowMeans(rows: readonly ArrayLike<number>[], window: number, starts: readonly number[] | undefined, full: boolean): Flat {
  const bounds = segmentBounds(starts, rows.length);
  if (bounds.length <= 1) return windowMeans(rows, window, full ? window - 1 : 0);
  const parts = bounds.map(([from, to]) => windowMeans(rows.slice(from, to), window, full ? window - 1 : 0));
  const cols = rows[0]?.length ?? 0;
  const total = parts.reduce((a, p) => a + p.rows, 0);
  const data = new Float64Array(total * cols);
  let at = 0;
  for (const p of parts) {
    data.set(p.data, at * cols);
    at += p.rows;
  }
  return { data, rows: total, cols };
}

/** The lags (in rows) the variogram is measured at: up to 20, evenly spaced from W to L/2. */
export function variogramLags(rows: number, window: number): number[] {
  const last = Math.floor(rows / 2);
  if (last < window) return [];
  const count = Math.min(MAX_LAGS, Math.floor(last / window));
  const step = count > 1 ? (last - window) / (count - 1) : 0;
  return [...new Set(Array.from({ length: count }, (_, i) => Math.round(window + i * step)))];
}

/** γ(h) per feature for one lag. */
export function semivariance(m: Flat, lag: number): Float64Array {
  const n = m.cols;
  const out = new Float64Array(n);
  const pairs = m.rows - lag;
  const d = m.data;
  for (let t = 0; t < pairs; t++) {
    const a = t * n;
    const b = (t + lag) * n;
    for (let f = 0; f < n; f++) out[f] = (out[f] as number) + ((d[b + f] as number) - (d[a + f] as number)) ** 2;
  }
  return out.map((s) => s / (2 * Math.max(1, pairs)));
}

export function columnMeans(m: Flat): Float64Array {
  const out = new Float64Array(m.cols);
  for (let i = 0; i < m.data.length; i++) out[i % m.cols] = (out[i % m.cols] as number) + (m.data[i] as number);
  return out.map((s) => s / Math.max(1, m.rows));
}

export function columnVariance(m: Flat): Float64Array {
  const mean = columnMeans(m);
  const out = new Float64Array(m.cols);
  for (let i = 0; i < m.data.length; i++) out[i % m.cols] = (out[i % m.cols] as number) + ((m.data[i] as number) - (mean[i % m.cols] as number)) ** 2;
  return out.map((s) => s / Math.max(1, m.rows - 1));
}

export interface HorizonFit {
  /** Scale per feature (0 when the feature never varies). */
  scale: Float64Array;
  /** Fitted γ(h) = intercept + slope·h per feature. */
  intercept: Float64Array;
  slope: Float64Array;
  lags: number[];
}

/**
 * Horizon scales from window means in time order: lags up to half of `trainRows`, read at
 * `horizon` rows ahead (the training length). With fewer than two lags, a flat variogram.
 */
export function horizonScale(means: Flat, opts: { window: number; trainRows: number; horizon: number }): HorizonFit {
  const n = means.cols;
  const lags = variogramLags(opts.trainRows, opts.window).filter((h) => h < means.rows);
  const gammas = lags.map((h) => semivariance(means, h));
  const meanLag = lags.reduce((a, b) => a + b, 0) / Math.max(1, lags.length);
  const sxx = lags.reduce((s, h) => s + (h - meanLag) ** 2, 0);
  const variance = columnVariance(means);
  const intercept = new Float64Array(n);
  const slope = new Float64Array(n);
  const scale = new Float64Array(n);
  for (let f = 0; f < n; f++) {
    const g = gammas.map((v) => v[f] as number);
    const meanG = g.reduce((a, b) => a + b, 0) / Math.max(1, g.length);
    const c = lags.length >= 2 && sxx > 0 ? Math.max(0, lags.reduce((s, h, i) => s + (h - meanLag) * ((g[i] as number) - meanG), 0) / sxx) : 0;
    const a = lags.length >= 2 ? meanG - c * meanLag : meanG;
    intercept[f] = a;
    slope[f] = c;
    const expected = lags.length > 0 ? 2 * (Math.max(0, a) + c * opts.horizon) : 0;
    scale[f] = Math.sqrt(Math.max(expected, variance[f] as number));
  }
  return { scale, intercept, slope, lags };
}
