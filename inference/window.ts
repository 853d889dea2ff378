/**
 * The sliding window of one pump for one model: the last `window` readings mapped to the model's
 * features by name, with missing values carried forward from the last known one.
 */
export interface PushResult {
  /**
   * True when the window can be scored: every feature has a value (known or carried) and the
   * window holds `window` readings. A window padded with its first reading would be scored as if
   * it averaged `window` readings, and one noisy reading would then raise an alarm.
   */
  ready: boolean;
  /** At least one value was carried forward. */
  imputed: boolean;
  /** The first feature that has never had a value, when not ready for that reason. */
  missing: string | null;
  /** Readings the window holds now (it is ready at `window`). */
  filled: number;
}

export class FeatureWindow {
  private readonly ring: Float32Array;
  private readonly lastKnown: Float64Array;
  private readonly width: number;
  private count = 0;
  private head = 0; // index of the next slot to write

  constructor(
    readonly features: readonly string[],
    readonly window: number,
  ) {
    this.width = features.length;
    this.ring = new Float32Array(window * this.width);
    this.lastKnown = new Float64Array(this.width).fill(Number.NaN);
  }

  /** Adds one reading's values. Values missing, null or non-finite are carried forward. */
  push(values: Readonly<Record<string, number | null | undefined>>): PushResult {
    let imputed = false;
    let missing: string | null = null;
    for (let f = 0; f < this.width; f++) {
      const v = values[this.features[f]!];
      if (typeof v === 'number' && Number.isFinite(v)) {
        this.lastKnown[f] = v;
      } else if (Number.isNaN(this.lastKnown[f]!)) {
        missing ??= this.features[f]!;
      } else {
        imputed = true;
      }
    }
    if (missing !== null) return { ready: false, imputed, missing, filled: this.count };
    const at = this.head * this.width;
    for (let f = 0; f < this.width; f++) this.ring[at + f] = this.lastKnown[f]!;
    this.head = (this.head + 1) % this.window;
    if (this.count < this.window) this.count++;
    return { ready: this.count === this.window, imputed, missing: null, filled: this.count };
  }

  /** Writes the full window, oldest first, into `target` at `offset` (window × n_features floats). */
  writeTo(target: Float32Array, offset: number): void {
    const w = this.window;
    if (this.count < w) throw new Error(`the window holds ${this.count} of ${w} readings: only a full window is scored`);
    const width = this.width;
    const ring = this.ring;
    for (let i = 0; i < w; i++) {
      // A plain loop: subarray() would allocate a view per slot on the hot path.
      const from = ((this.head + i) % w) * width;
      const to = offset + i * width;
      for (let f = 0; f < width; f++) target[to + f] = ring[from + f]!;
    }
  }
}
