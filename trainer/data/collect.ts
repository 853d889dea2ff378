/**
 * Readings → the numeric series `train` cleans, wherever they come from: the blobs the agents
 * uploaded (data/load.ts, through the sync reader) or the agent's own buffer rows (the first model
 * a gateway fits: agent/first-model/). Storage-free: nothing here reads Blob Storage.
 *
 * Rows are put in time order (stable: readings with the same time keep the order they came in),
 * a reading repeated with the same time and values is kept once (dropRepeats), and counters are
 * left out when asked (data/counters.ts).
 */
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

/** Collects one pump's readings, in the order they come, into a LoadResult. */
export class ReadingsCollector {
  private readonly builder: SeriesBuilder;
  private readonly keep: ReadonlySet<string>;
  private readonly devices = new Set<string>();
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
    this.builder.add(ts, values);
    if (deviceId !== undefined) this.devices.add(deviceId);
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
      devices: [...this.devices].sort(),
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
