/**
 * Row shapes shared by the buffer, inference and sync. The buffer imports nothing of ours,
 * so these types live here and the other layers import them.
 */

/** A validated reading (contract: DESIGN.md "Reading"). `ts` is epoch milliseconds. */
export interface Reading {
  pumpId: string;
  ts: number;
  /** Sensor values by name. `null` means the sensor reported no value (it is imputed, not rejected). */
  values: Record<string, number | null>;
}

/** One reading together with its prediction, as committed in one transaction. */
export interface PredictionRow {
  pumpId: string;
  ts: number;
  /** Gateway clock when the reading was accepted (epoch ms). */
  receivedAt: number;
  values: Record<string, number | null>;
  /** Anomaly score of the active model, or null when the reading could not be scored. */
  score: number | null;
  anomaly: boolean | null;
  modelVersion: string | null;
  /** True when at least one feature value was carried forward from an earlier reading. */
  imputed: boolean;
  /** Why the reading is unscored (no model, no value ever known for a feature, …); null when scored. */
  unscoredReason: string | null;
  /** Score of a shadow model running beside the live one (stored, never alerted). */
  shadowScore?: number | null;
  shadowModelVersion?: string | null;
  /** Per-feature contributions to the score, when the model outputs them. */
  contributions?: Record<string, number> | null;
  /** The threshold of the model that gave `score` (`score > threshold` is an anomaly); null when unscored. */
  threshold?: number | null;
  /**
   * Sensors found frozen at this reading (a run of identical values reaching its model's bound:
   * inference/frozen.ts), for the alert decided after the commit. Not stored: the readings are.
   */
  sensorFaultsBegan?: ReadonlyArray<{ feature: string; kind: 'frozen'; since: number; readings: number; value: number; after: number }>;
}

/** A stored row as read back from the buffer. */
export interface StoredRow extends PredictionRow {
  seq: number;
}

/** A reading (or a whole payload) refused by validation, kept with its reason. */
export interface RejectedItem {
  /** Where it came from: `http`, `edge`, `simulator`, … */
  source: string;
  /** The raw text of the item (truncated by the store to a bounded size). */
  raw: string;
  reason: string;
  receivedAt: number;
}
