/**
 * The sliding window of one pump for one model: the last `window` readings mapped to the model's
 * features by name, with missing values carried forward from the last known one.
 */
export interface PushResult {
  /** True when the reading completed the window (every feature has a value, known or carried). */
  ready: boolean;
  /** At least one value was carried forward. */
  imputed: boolean;
  /** The first feature that has never had a value, when not ready. */
  missing: string | null;
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
    if (missing !== null) return { ready: false, imputed, missing };
    const at = this.head * this.width;
    for (let f = 0; f < this.width; f++) this.ring[at + f] = this.lastKnown[f]!;
    this.head = (this.head + 1) % this.window;
    if (this.count < this.window) this.count++;
    return { ready: true, imputed, missing: null };
  }

  /**
   * Writes the window, oldest first, into `target` at `offset` (window × n_features floats).
   * Until `window` readings were seen, the oldest slots repeat the first reading.
   */
  writeTo(target: Float32Array, offset: number): void {
    const w = this.window;
    const width = this.width;
    const pad = w - this.count;
    const oldest = this.count < w ? 0 : this.head;
    const ring = this.ring;
    for (let i = 0; i < w; i++) {
      const slot = i < pad ? oldest : (oldest + (i - pad)) % w;
      // A plain loop: subarray() would allocate a view per slot on the hot path.
      const from = slot * width;
      const to = offset + i * width;
      for (let f = 0; f < width; f++) target[to + f] = ring[from + f]!;
    }
  }
}
