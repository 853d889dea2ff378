import { MAX_CARRY_READINGS } from './contract.js';

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
  /**
   * The first feature missing from more than MAX_CARRY_READINGS readings in a row (`readings`: how
   * many), when not ready for that reason: its last value is too old to carry, and the window
   * starts again (it fills anew once the value is back).
   */
  stale: { feature: string; readings: number } | null;
  /** Readings the window holds now (it is ready at `window`). */
  filled: number;
}

export class FeatureWindow {
  private readonly ring: Float32Array;
  private readonly lastKnown: Float64Array;
  /** Per feature: readings in a row without a value of its own (carried, or too old to carry). */
  private readonly missingRun: Uint32Array;
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
    this.missingRun = new Uint32Array(this.width);
  }

  /** Adds one reading's values. Values missing, null or non-finite are carried forward (MAX_CARRY_READINGS in a row at most). */
  push(values: Readonly<Record<string, number | null | undefined>>): PushResult {
    let imputed = false;
    let missing: string | null = null;
    let stale: PushResult['stale'] = null;
    for (let f = 0; f < this.width; f++) {
      const v = values[this.features[f]!];
      if (typeof v === 'number' && Number.isFinite(v)) {
        this.lastKnown[f] = v;
        this.missingRun[f] = 0;
      } else if (Number.isNaN(this.lastKnown[f]!)) {
        missing ??= this.features[f]!;
      } else if (++this.missingRun[f]! > MAX_CARRY_READINGS) {
        stale ??= { feature: this.features[f]!, readings: this.missingRun[f]! };
      } else {
        imputed = true;
      }
    }
    if (stale !== null) this.count = 0;
    if (missing !== null || stale !== null) return { ready: false, imputed, missing, stale, filled: this.count };
    const at = this.head * this.width;
    for (let f = 0; f < this.width; f++) this.ring[at + f] = this.lastKnown[f]!;
    this.head = (this.head + 1) % this.window;
    if (this.count < this.window) this.count++;
    return { ready: this.count === this.window, imputed, missing: null, stale: null, filled: this.count };
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
