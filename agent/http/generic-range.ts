/**
 * Pumps whose readings lie outside what the generic default model knows. The default model was
 * fitted on simulated pumps at six duty points; a real pump at a duty point far from them has every
 * reading flagged by it (measured 2026-12-06: every normal row of SKAB's 16 valve1 recordings,
 * 11 707, scored through the agent's engine), and its page shows a pump in permanent alarm. Such
 * a pump is told apart from the data: over the last GENERIC_RANGE_WINDOW_MS, nearly all the
 * readings the generic model scored were anomalies. Nothing is suppressed: scores, verdicts and
 * alerts stay as they are; the pump is only marked, so a technician reads its alarms for what they
 * are worth.
 */
import { WindowCounts } from '../window-counts.js';

/**
 * The span the share is taken over. An hour: a real fault of minutes on a pump the generic model
 * does fit does not mark it, while a pump at another duty point (flagged all the time) is marked
 * within the hour; and it clears within the hour once readings the model knows come back.
 */
export const GENERIC_RANGE_WINDOW_MS = 60 * 60_000;
/**
 * Fewer scored readings than this in the span mark nothing: a pump just started (or one reporting
 * rarely) with a short fault would otherwise read as "outside the range". 30 is half a minute at
 * 1 Hz, and still reached within the hour by a pump reporting every two minutes.
 */
export const GENERIC_RANGE_MIN_SCORED = 30;
/**
 * The share of anomalies over the span at or above which the pump is marked. The bundled model
 * flags none of the readings of a simulated pump at its own duty point within its training pumps'
 * spread (0 of 431 955, five pumps a day each), and every normal row of SKAB's valve1
 * (test/integration/generic-range.test.ts); a simulated pump on its curve at valve1's flow and
 * current, 33–62 % over a day, no hour above 78 % (measured 2026-12-06, make-default-model.sh).
 * 90 %: far from the first (a simulated pump's faults come and go), and reached even when a few
 * readings fall back in range.
 */
export const GENERIC_RANGE_SHARE = 0.9;
/** One-minute buckets. */
const BUCKETS = 60;

/** A pump marked outside the generic model's range (GET /status, GET /pumps). */
export interface GenericRangeView {
  /** The generic model's version whose verdicts were counted. */
  modelVersion: string;
  /** Readings it scored in the last `windowMinutes` (to the minute) and how many it flagged. */
  scored: number;
  anomalies: number;
  /** anomalies / scored, rounded to 3 decimals. */
  share: number;
  windowMinutes: number;
}

interface Entry {
  modelVersion: string;
  scored: WindowCounts;
  anomalies: WindowCounts;
}

/**
 * Per pump, the verdicts of the generic default model over the last hour, in one-minute buckets
 * (bounded: 120 numbers per pump, whatever the reading rate). The verdicts of one model version
 * only: a new default model, or a pump's own model, starts again.
 */
export class GenericRange {
  private readonly entries = new Map<string, Entry>();

  /** A reading of `pumpId`, scored by the generic model `modelVersion`, that arrived at monotonic `at`. */
  record(pumpId: string, modelVersion: string, anomaly: boolean, at: number): void {
    let e = this.entries.get(pumpId);
    if (!e || e.modelVersion !== modelVersion) {
      e = { modelVersion, scored: new WindowCounts(GENERIC_RANGE_WINDOW_MS, BUCKETS, at), anomalies: new WindowCounts(GENERIC_RANGE_WINDOW_MS, BUCKETS, at) };
      this.entries.set(pumpId, e);
    }
    // a reading older than the span (one read back at start-up) counts for nothing
    if (e.scored.add(at) && anomaly) e.anomalies.add(at);
  }

  /** The pump is no longer scored by the generic model (its own model scores it): forget its verdicts. */
  forget(pumpId: string): void {
    this.entries.delete(pumpId);
  }

  /**
   * The pump's mark when the generic model `modelVersion` scores it now and flagged at least
   * GENERIC_RANGE_SHARE of its GENERIC_RANGE_MIN_SCORED or more readings in the span; null otherwise.
   */
  view(pumpId: string, modelVersion: string, now: number): GenericRangeView | null {
    const e = this.entries.get(pumpId);
    if (!e || e.modelVersion !== modelVersion) return null;
    const scored = e.scored.sum(now);
    const anomalies = e.anomalies.sum(now);
    if (scored < GENERIC_RANGE_MIN_SCORED || anomalies < GENERIC_RANGE_SHARE * scored) return null;
    return { modelVersion, scored, anomalies, share: Math.round((anomalies / scored) * 1000) / 1000, windowMinutes: GENERIC_RANGE_WINDOW_MS / 60_000 };
  }
}
