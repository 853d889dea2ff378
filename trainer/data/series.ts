/** A pump's readings as numbers: rows in time order, NaN where a value is missing. */

export interface Series {
  features: string[];
  /** Epoch milliseconds, ascending. */
  timestamps: number[];
  /** Values in `features` order, rounded to float32 as the agent holds them; NaN = missing. */
  rows: Float64Array[];
}

/** The most recent share of the readings in which a feature must appear to be kept (see build). */
export const RECENT_SHARE = 0.1;

/** The timestamp from which the most recent `share` of the readings lie. */
function recentCutoff(timestamps: readonly number[], share: number): number {
  if (timestamps.length === 0) return Infinity;
  const sorted = Float64Array.from(timestamps).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * (1 - share)))] as number;
}

/** Columns that grow as readings arrive; a feature first seen late is NaN before. */
export class SeriesBuilder {
  private readonly index = new Map<string, number>();
  private columns: Float64Array[] = [];
  private readonly timestamps: number[] = [];
  private capacity = 1024;
  private readonly exclude: ReadonlySet<string>;
  private readonly watch: ReadonlySet<string>;
  private readonly watched = new Set<string>();

  /** `exclude`: value names never read as features; `watch`: names whose presence `hasSeen` reports (a value or a null). */
  constructor(exclude: readonly string[] = [], watch: readonly string[] = exclude) {
    this.exclude = new Set(exclude);
    this.watch = new Set(watch);
  }

  get length(): number {
    return this.timestamps.length;
  }

  add(ts: number, values: Readonly<Record<string, number | null | undefined>>): void {
    const i = this.timestamps.length;
    if (i === this.capacity) this.grow();
    for (const col of this.columns) col[i] = NaN;
    for (const [name, v] of Object.entries(values)) {
      if (this.watch.has(name)) this.watched.add(name);
      if (this.exclude.has(name)) continue;
      if (typeof v !== 'number' || !Number.isFinite(v)) continue;
      let f = this.index.get(name);
      if (f === undefined) {
        f = this.columns.length;
        this.index.set(name, f);
        this.columns.push(new Float64Array(this.capacity).fill(NaN));
      }
      // Rounded to float32, as the agent's window holds readings: a model is fitted (and checked)
      // on exactly the values it will score (a feature at 1e12 varying by 1000 is constant in float32).
      (this.columns[f] as Float64Array)[i] = Math.fround(v);
    }
    this.timestamps.push(ts);
  }

  /**
   * Rows with the features present in at least `minCoverage` of them and in at least one of the
   * most recent `recentShare` of them (by timestamp), in name order (stable across runs whatever
   * order the readings came in). Rows are views on one buffer. `dropped`: features too sparse;
   * `stale`: features common enough but absent from the most recent readings (a sensor removed or
   * renamed, or dead): the pump no longer sends them, so a model that needs one could not score it.
   */
  build(minCoverage = 0.5, recentShare = RECENT_SHARE): { series: Series; dropped: string[]; stale: string[] } {
    const n = this.timestamps.length;
    const names = [...this.index.keys()].sort();
    const column = (name: string) => this.columns[this.index.get(name) as number] as Float64Array;
    const coverage = (name: string) => {
      const col = column(name);
      let present = 0;
      for (let i = 0; i < n; i++) if (!Number.isNaN(col[i])) present++;
      return n === 0 ? 0 : present / n;
    };
    const recentFrom = recentCutoff(this.timestamps, recentShare);
    const recent = (name: string) => {
      const col = column(name);
      for (let i = 0; i < n; i++) if ((this.timestamps[i] as number) >= recentFrom && !Number.isNaN(col[i])) return true;
      return false;
    };
    const common = names.filter((name) => coverage(name) >= minCoverage);
    const kept = common.filter(recent);
    const dropped = names.filter((name) => !common.includes(name));
    const stale = common.filter((name) => !kept.includes(name));
    const buffer = new Float64Array(n * kept.length);
    kept.forEach((name, f) => {
      const col = column(name);
      for (let i = 0; i < n; i++) buffer[i * kept.length + f] = col[i] as number;
    });
    this.columns = [];
    const rows = Array.from({ length: n }, (_, i) => buffer.subarray(i * kept.length, (i + 1) * kept.length));
    return { series: { features: kept, timestamps: [...this.timestamps], rows }, dropped, stale };
  }

  /** True when some reading had a value or a null under `name`, one of the `watch` names. */
  hasSeen(name: string): boolean {
    return this.watched.has(name);
  }

  private grow(): void {
    this.capacity *= 2;
    this.columns = this.columns.map((col) => {
      const next = new Float64Array(this.capacity).fill(NaN);
      next.set(col);
      return next;
    });
  }
}
