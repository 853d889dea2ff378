import type { PredictionRow, Reading } from '../buffer/types.js';
import { ValueHistory } from './history.js';

/**
 * The last few committed readings of each pump, in memory, for validating a new model on real
 * field data before it goes live. Fed from the ingest pipeline's commit listener. Kept as numbers
 * (ValueHistory), so the committed readings' objects are not held: values that were null or
 * missing come back missing, which a model's window treats the same way.
 */
export class RecentReadings {
  private readonly rings = new Map<string, ValueHistory>();

  constructor(private readonly perPump = 128) {}

  record(rows: readonly PredictionRow[]): void {
    for (const r of rows) {
      let ring = this.rings.get(r.pumpId);
      if (!ring) {
        ring = new ValueHistory(this.perPump, true);
        this.rings.set(r.pumpId, ring);
      }
      ring.push(r.values, r.ts);
    }
  }

  pumpIds(): string[] {
    return [...this.rings.keys()];
  }

  /** Oldest first. */
  of(pumpId: string): Reading[] {
    const ring = this.rings.get(pumpId);
    if (!ring) return [];
    const out: Reading[] = [];
    for (let age = ring.size - 1; age >= 0; age--) out.push({ pumpId, ts: ring.tsAt(age), values: ring.valuesAt(age) });
    return out;
  }
}
