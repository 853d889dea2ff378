/**
 * Readings → the numeric series `train` cleans, wherever they come from: the blobs the agents
 * uploaded (data/load.ts, through the sync reader) or the agent's own buffer rows (the first model
 * a gateway fits: agent/first-model/). Storage-free: nothing here reads Blob Storage.
 *
 * Rows are put in time order (stable: readings with the same time keep the order they came in),
 * a reading repeated with the same time and values is kept once (dropRepeats), and counters are
 * left out when asked (data/counters.ts).
 */
import { lowerBound, upperBound } from '../linalg/stats.js';
import { findCounters, withoutFeatures } from './counters.js';
import { SeriesBuilder, type Series } from './series.js';

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
   * reader's (device, buffer, seq) de-duplication cannot see those). Trained twice, such a stretch would
   * weigh double and its windows would span half the time.
   */
  repeatedReadings: number;
  devices: string[];
  /**
   * Stretches where two devices sent readings of this pump over the same time (devicesOverlap):
   * one pump id on two gateways (a commissioning mistake, or a gateway writing another's data).
   * Empty when the devices took turns (a gateway replaced) or there is one.
   */
  deviceOverlaps: DeviceOverlap[];
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

/** Two devices' readings of one pump over the same stretch: from, to (epoch ms) and each one's readings in it. */
export interface DeviceOverlap {
  devices: [string, string];
  from: number;
  to: number;
  readings: [number, number];
}

/**
 * How long two devices' readings of one pump must run side by side, each with this many readings
 * in that time, to be an overlap: a gateway replaced by another is never sending with it for an
 * hour (a handover of minutes stays under it), while two gateways posting the same pump id do so
 * for as long as both run.
 */
export const OVERLAP_MIN_MS = 3_600_000;
export const OVERLAP_MIN_READINGS = 60;

/**
 * The overlaps (DeviceOverlap) of the devices' readings, `timestamps[i]` sent by device
 * `deviceOf[i]` (an index into `names`), in any order: for each pair whose first-to-last spans
 * overlap by at least OVERLAP_MIN_MS, with at least OVERLAP_MIN_READINGS of each inside.
 */
export function devicesOverlap(timestamps: readonly number[], deviceOf: Uint16Array, names: readonly string[]): DeviceOverlap[] {
  if (names.length < 2) return [];
  // Each device's times, sorted: a pair's readings inside a stretch are counted by two binary searches.
  const counts = new Uint32Array(names.length);
  for (let i = 0; i < timestamps.length; i++) counts[deviceOf[i] as number] = (counts[deviceOf[i] as number] as number) + 1;
  const times = [...counts].map((n) => new Float64Array(n));
  const filled = new Uint32Array(names.length);
  for (let i = 0; i < timestamps.length; i++) {
    const d = deviceOf[i] as number;
    const k = filled[d] as number;
    (times[d] as Float64Array)[k] = timestamps[i] as number;
    filled[d] = k + 1;
  }
  for (const t of times) t.sort();
  const inside = (t: Float64Array, from: number, to: number): number => upperBound(t, to) - lowerBound(t, from);
  const out: DeviceOverlap[] = [];
  for (let a = 0; a < names.length; a++) {
    for (let b = a + 1; b < names.length; b++) {
      const ta = times[a] as Float64Array;
      const tb = times[b] as Float64Array;
      if (ta.length === 0 || tb.length === 0) continue;
      const from = Math.max(ta[0] as number, tb[0] as number);
      const to = Math.min(ta[ta.length - 1] as number, tb[tb.length - 1] as number);
      if (to - from < OVERLAP_MIN_MS) continue;
      const readings: [number, number] = [inside(ta, from, to), inside(tb, from, to)];
      if (readings[0] >= OVERLAP_MIN_READINGS && readings[1] >= OVERLAP_MIN_READINGS) out.push({ devices: [names[a] as string, names[b] as string], from, to, readings });
    }
  }
  return out;
}

/** Collects one pump's readings, in the order they come, into a LoadResult. */
export class ReadingsCollector {
  private readonly builder: SeriesBuilder;
  private readonly keep: ReadonlySet<string>;
  /** Device names in the order first seen, and each reading's (index into it; 0 when the caller names none). */
  private readonly deviceNames: string[] = [];
  private readonly deviceIndex = new Map<string, number>();
  private deviceOf = new Uint16Array(1024);
  private lastTs = -Infinity;
  private sorted = true;

  constructor(private readonly options: LoadOptions = {}) {
    this.keep = new Set(options.keep ?? []);
    this.builder = new SeriesBuilder((options.exclude ?? []).filter((name) => !this.keep.has(name)), options.exclude ?? []);
  }

  get length(): number {
    return this.builder.length;
  }

  /** One reading: `ts` epoch ms; a value that is not a finite number is missing. */
  add(ts: number, values: Readonly<Record<string, number | null | undefined>>, deviceId?: string): void {
    if (ts < this.lastTs) this.sorted = false;
    this.lastTs = Math.max(this.lastTs, ts);
    const i = this.builder.length;
    this.builder.add(ts, values);
    if (deviceId === undefined) return;
    let d = this.deviceIndex.get(deviceId);
    if (d === undefined) {
      d = this.deviceNames.length;
      this.deviceIndex.set(deviceId, d);
      this.deviceNames.push(deviceId);
    }
    if (i >= this.deviceOf.length) {
      const grown = new Uint16Array(this.deviceOf.length * 2);
      grown.set(this.deviceOf);
      this.deviceOf = grown;
    }
    this.deviceOf[i] = d;
  }

  /**
   * The series and what was left out. `origins[k]`: which reading (0-based, in the order added)
   * row k of the series is; null when row k is reading k (nothing reordered or dropped).
   */
  finish(): { loaded: LoadResult; origins: number[] | null } {
    const { options, keep, builder } = this;
    const built = builder.build();
    let series = built.series;
    const n = series.rows.length;
    // In the order added (each row is one add), before sorting and repeats reorder the rows.
    const deviceOverlaps = devicesOverlap(series.timestamps, this.deviceOf, this.deviceNames);
    const order = this.sorted ? null : sortByTime(series);
    const kept = repeatsDropped(series);
    const origins = kept === null ? order : order === null ? kept : kept.map((k) => order[k] as number);
    const repeatedReadings = kept === null ? 0 : n - kept.length;
    const counterFeatures = options.leaveOutCounters ? findCounters(series) : [];
    // In place: nothing else holds the builder's rows yet.
    series = withoutFeatures(series, counterFeatures.map((c) => c.name).filter((name) => !keep.has(name)), true);
    const keptExcluded = (options.exclude ?? []).filter((name) => keep.has(name) && series.features.includes(name));
    const leftOutButKept = [...new Set([...keptExcluded, ...counterFeatures.map((c) => c.name).filter((name) => keep.has(name))])].sort();
    const loaded: LoadResult = {
      series,
      readings: series.rows.length,
      repeatedReadings,
      devices: [...this.deviceNames].sort(),
      deviceOverlaps,
      droppedFeatures: built.dropped,
      staleFeatures: built.stale,
      // Every excluded name some reading had, kept for the live model or not, in the series or dropped as sparse or stale.
      excludedFeatures: [...new Set(options.exclude ?? [])].filter((name) => builder.hasSeen(name)).sort(),
      counterFeatures,
      leftOutButKept,
    };
    return { loaded, origins };
  }
}

/** Drops, from a series in time order, each row whose timestamp and values (NaN as a value) equal an earlier row's; returns how many. */
export function dropRepeats(series: Series): number {
  const n = series.rows.length;
  const kept = repeatsDropped(series);
  return kept === null ? 0 : n - kept.length;
}

/** dropRepeats; the indices of the rows kept, or null when none was dropped. */
function repeatsDropped(series: Series): number[] | null {
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
  if (keep.length === rows.length) return null;
  series.timestamps = keep.map((i) => timestamps[i] as number);
  series.rows = keep.map((i) => rows[i] as Float64Array);
  return keep;
}

/** Stable sort by timestamp (the reader yields a clock jump's readings a day late); returns the old index of each row. */
function sortByTime(series: Series): number[] {
  const order = series.timestamps.map((_, i) => i).sort((a, b) => (series.timestamps[a] as number) - (series.timestamps[b] as number) || a - b);
  series.timestamps = order.map((i) => series.timestamps[i] as number);
  series.rows = order.map((i) => series.rows[i] as Float64Array);
  return order;
}
