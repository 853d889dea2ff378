import type { PredictionRow, Reading } from '../buffer/types.js';

/**
 * The last few committed readings of each pump, in memory, for validating a new model on real
 * field data before it goes live. Fed from the ingest pipeline's commit listener.
 */
export class RecentReadings {
  private readonly rings = new Map<string, { items: Reading[]; head: number }>();

  constructor(private readonly perPump = 128) {}

  record(rows: readonly PredictionRow[]): void {
    for (const r of rows) {
      let ring = this.rings.get(r.pumpId);
      if (!ring) {
        ring = { items: [], head: 0 };
        this.rings.set(r.pumpId, ring);
      }
      const reading: Reading = { pumpId: r.pumpId, ts: r.ts, values: r.values };
      if (ring.items.length < this.perPump) ring.items.push(reading);
      else {
        ring.items[ring.head] = reading;
        ring.head = (ring.head + 1) % this.perPump;
      }
    }
  }

  pumpIds(): string[] {
    return [...this.rings.keys()];
  }

  /** Oldest first. */
  of(pumpId: string): Reading[] {
    const ring = this.rings.get(pumpId);
    if (!ring) return [];
    return [...ring.items.slice(ring.head), ...ring.items.slice(0, ring.head)];
  }
}
