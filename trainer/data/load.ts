/**
 * Loads one pump's readings for a time range from Blob Storage through the sync reader (each
 * (device, seq) once, in time order) into a numeric series. Memory stays proportional to the
 * rows kept (8 bytes per value), never to the decoded JSON.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { readReadings } from '../../sync/reader.js';
import { idleLimitOf } from '../cloud/blob-limits.js';
import { findCounters, withoutFeatures } from './counters.js';
import { SeriesBuilder, type Series } from './series.js';

export interface LoadRange {
  pumpId: string;
  /** Inclusive, epoch ms. */
  from: number;
  /** Exclusive, epoch ms. */
  to: number;
}

export interface LoadOptions {
  /** Value names never read as features (`train --exclude`). */
  exclude?: readonly string[];
  /** Leave out features that only grow (data/counters.ts): `train` does; `evaluate` and `drift` read what a model needs. */
  leaveOutCounters?: boolean;
  /**
   * Features kept in the series even when excluded or counters (the live model's: it is scored
   * on the same rows as the challenger); they are still listed in `leftOut`, and the challenger
   * is not fitted on them.
   */
  keep?: readonly string[];
}

export interface LoadResult {
  series: Series;
  /** Readings read (after de-duplication, both kinds). */
  readings: number;
  /**
   * Readings dropped because an earlier one of the pump had the same timestamp and the same values:
   * a sensor module that re-sent them after a crash, ingested again under new sequence numbers (the
   * reader's (device, seq, time) de-duplication cannot see those). Trained twice, such a stretch would
   * weigh double and its windows would span half the time.
   */
  repeatedReadings: number;
  devices: string[];
  /** Features seen in fewer than half of the readings, left out. */
  droppedFeatures: string[];
  /** Features seen in at least half of the readings but in none of the most recent 10 %, left out (the pump no longer sends them). */
  staleFeatures: string[];
  /** Of the names `exclude` gave, those the pump sent in the range (left out of the challenger). */
  excludedFeatures: string[];
  /** Features left out of the challenger as counters, with their rises and falls (only with `leaveOutCounters`). */
  counterFeatures: Array<{ name: string; rises: number; falls: number }>;
  /** Excluded features and counters that `keep` held in the series: not for the challenger. */
  leftOutButKept: string[];
}

export async function loadReadings(container: ContainerClient, range: LoadRange, onProgress?: (readings: number) => void, options: LoadOptions = {}): Promise<LoadResult> {
  const keep = new Set(options.keep ?? []);
  const builder = new SeriesBuilder((options.exclude ?? []).filter((name) => !keep.has(name)), options.exclude ?? []);
  const devices = new Set<string>();
  let lastTs = -Infinity;
  let sorted = true;
  for await (const line of readReadings(container, { pumpId: range.pumpId, from: range.from, to: range.to }, { concurrency: 8, idleMs: idleLimitOf(container) })) {
    const ts = Date.parse(line.ts);
    if (ts < lastTs) sorted = false;
    lastTs = Math.max(lastTs, ts);
    builder.add(ts, line.values);
    devices.add(line.deviceId);
    if (onProgress && builder.length % 10_000 === 0) onProgress(builder.length);
  }
  onProgress?.(builder.length);
  const built = builder.build();
  let series = built.series;
  if (!sorted) sortByTime(series);
  const repeatedReadings = dropRepeats(series);
  const counterFeatures = options.leaveOutCounters ? findCounters(series) : [];
  // In place: nothing else holds the builder's rows yet.
  series = withoutFeatures(series, counterFeatures.map((c) => c.name).filter((name) => !keep.has(name)), true);
  const keptExcluded = (options.exclude ?? []).filter((name) => keep.has(name) && series.features.includes(name));
  const leftOutButKept = [...new Set([...keptExcluded, ...counterFeatures.map((c) => c.name).filter((name) => keep.has(name))])].sort();
  return {
    series,
    readings: series.rows.length,
    repeatedReadings,
    devices: [...devices].sort(),
    droppedFeatures: built.dropped,
    staleFeatures: built.stale,
    // Every excluded name some reading had, kept for the live model or not, in the series or dropped as sparse or stale.
    excludedFeatures: [...new Set(options.exclude ?? [])].filter((name) => builder.hasSeen(name)).sort(),
    counterFeatures,
    leftOutButKept,
  };
}

/** Drops, from a series in time order, each row whose timestamp and values (NaN as a value) equal an earlier row's; returns how many. */
export function dropRepeats(series: Series): number {
  const { timestamps, rows } = series;
  const same = (a: Float64Array, b: Float64Array) => a.every((v, f) => v === b[f] || (Number.isNaN(v) && Number.isNaN(b[f] as number)));
  const keep: number[] = [];
  let runStart = 0; // first kept row of the current timestamp, in `keep`
  for (let i = 0; i < rows.length; i++) {
    const ts = timestamps[i] as number;
    if (keep.length === 0 || timestamps[keep[keep.length - 1] as number] !== ts) runStart = keep.length;
    let repeated = false;
    for (let k = runStart; k < keep.length && !repeated; k++) repeated = same(rows[keep[k] as number] as Float64Array, rows[i] as Float64Array);
    if (!repeated) keep.push(i);
  }
  if (keep.length === rows.length) return 0;
  series.timestamps = keep.map((i) => timestamps[i] as number);
  series.rows = keep.map((i) => rows[i] as Float64Array);
  return rows.length - keep.length;
}

/** Stable sort by timestamp (the reader yields a clock jump's readings a day late). */
function sortByTime(series: Series): void {
  const order = series.timestamps.map((_, i) => i).sort((a, b) => (series.timestamps[a] as number) - (series.timestamps[b] as number) || a - b);
  series.timestamps = order.map((i) => series.timestamps[i] as number);
  series.rows = order.map((i) => series.rows[i] as Float64Array);
}
