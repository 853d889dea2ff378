/**
 * Counts over a sliding window, kept in a ring of `buckets` slots of windowMs / buckets each: fixed
 * memory whatever the rate, and a count to the resolution of one slot. `at` and `now` are
 * milliseconds on one clock; a count older than the window counts for nothing.
 */
export class WindowCounts {
  private readonly counts: number[];
  private readonly slotMs: number;
  /** Slot number (ms / slotMs) of the newest slot written. */
  private slot: number;

  constructor(
    windowMs: number,
    private readonly buckets: number,
    now: number,
  ) {
    this.counts = new Array<number>(buckets).fill(0);
    this.slotMs = windowMs / buckets;
    this.slot = Math.floor(now / this.slotMs);
  }

  /** Counts `n` at `at`; false when `at` is older than the window (nothing counted). */
  add(at: number, n = 1): boolean {
    const slot = Math.floor(at / this.slotMs);
    // Moves on to `at`'s slot, emptying the slots that passed.
    for (let s = this.slot + 1; s <= Math.min(slot, this.slot + this.buckets); s++) this.counts[this.index(s)] = 0;
    this.slot = Math.max(this.slot, slot);
    if (slot <= this.slot - this.buckets) return false;
    this.counts[this.index(slot)]! += n;
    return true;
  }

  /** The count over the window ending at `now`. */
  sum(now: number): number {
    let total = 0;
    for (let s = Math.max(this.slot, Math.floor(now / this.slotMs)) - this.buckets + 1; s <= this.slot; s++) total += this.counts[this.index(s)]!;
    return total;
  }

  private index(slot: number): number {
    return ((slot % this.buckets) + this.buckets) % this.buckets;
  }
}
