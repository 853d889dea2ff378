/**
 * What a first model's fit takes and gives (fit.ts, on a thread or not), and what crosses to its
 * worker thread: apart from the fit, so the fit's core and thread import them without importing
 * fit.ts, which imports them.
 */
import type { StoredRow } from '../../buffer/types.js';
import type { ModelMetadata, StoppedRule } from '../../inference/contract.js';
import type { PackedRows } from './pack.js';

export interface FirstModelFitRequest {
  pumpId: string;
  /** The pump's rows as the buffer stores them, oldest first (StoredRow from buffer/types.ts). */
  rows: readonly StoredRow[];
  /** The metadata of the default model that scores the pump now (its stopped-when rule, features). */
  defaultModel: ModelMetadata;
  /** Running hours the rows must span to be fitted; 0: fitted whatever span they hold (the most rows a fit reads reached). */
  afterHours: number;
  /** The stopped-when rule to fit with (PUMPWATCH_FIRST_MODEL_STOPPED_WHEN): null to fit without one; undefined: the default model's. */
  stoppedWhen?: StoppedRule | null;
}

export type FirstModelFitResult =
  | {
      kind: 'fitted';
      bytes: Uint8Array;
      sha256: string;
      version: string;
      metadata: ModelMetadata;
      trainRows: number;
      heldOutRows: number;
      heldOutFlagged: number;
      /** Runs of flagged held-out readings: the false alarms the model would have raised on them. */
      heldOutEpisodes: number;
      /** The running hours the held-out readings span. */
      heldOutHours: number;
      spanHours: number;
    }
  | { kind: 'waiting'; spanHours: number; reason: string } // not enough running readings yet
  | { kind: 'refused'; reason: string; spanHours: number; heldOutRows?: number; heldOutFlagged?: number; heldOutEpisodes?: number; heldOutHours?: number };


/** `metrics.origin` of a first model (the reported properties and /status say `origin: "gateway"`). */
export const FIRST_MODEL_ORIGIN = 'gateway';
/** First models' versions: `gw-YYYYMMDD-<12 hex>` (the date of the last trained reading, hex from the data). */
export const FIRST_MODEL_VERSION_PREFIX = 'gw-';

/**
 * A request as it crosses to the worker thread: the rows as columns (one Float64Array of values,
 * NaN where a row has no value or null), not an object per row.
 */
export interface PackedFitRequest {
  pumpId: string;
  defaultModel: ModelMetadata;
  afterHours: number;
  stoppedWhen?: StoppedRule | null;
  rows: PackedRows;
}
