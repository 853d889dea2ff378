/**
 * The held-out readings as the agent would see them in the field: raw (before cleaning: stuck
 * runs, outliers, rows with a missing value and maintenance are all still there), in time order,
 * scored by the agent's own InferenceEngine (features by name, missing values carried for at
 * most MAX_CARRY_READINGS, full windows only, windows restarted after a pause).
 *
 * The decision compares models on cleaned rows, as the metric in trainer/QUALITY.md says; this is
 * what the field would get from them: the share of normal readings each model would flag. A large
 * difference means the cleaning removed states the pump really has (a nightly stop, a set point
 * held for hours), and the agent will raise alarms on them.
 */
import type { Reading } from '../../buffer/types.js';
import { DEFAULT_MODEL_KEY, InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import type { Target } from '../data/clean.js';

/** Readings fed to the engine per score call (the agent's micro-batches are of this order). */
const CHUNK = 4096;
/** Raw readings before the scored ones given to the engine first, so its window is full at the first one. */
const HISTORY = 256;

/** The raw readings of a range, in time order, kept before cleaning altered them in place. */
export interface RawReadings {
  features: readonly string[];
  timestamps: readonly number[];
  /**
   * Row-major, `features.length` values per reading; NaN = not sent. Float32, as the agent's
   * window holds them (the model's input is float32): half the memory, the same scores.
   */
  values: Float32Array;
  targets: readonly Target[];
}

/** Counts over the raw readings from `from` on; rates in %, like Evaluation. */
export interface AgentView {
  readings: number;
  /** Readings the agent could not score (window filling after a pause, a value too old to carry, …). */
  unscored: number;
  /** Inside maintenance labels: scored by the agent but counted neither way. */
  maintenance: number;
  /** Scored readings outside confirmed-fault and maintenance labels, and how many of them were flagged. */
  normal: number;
  flaggedNormal: number;
  far: number;
  /** Scored readings inside confirmed-fault labels, and how many were not flagged (MAR null when there are none). */
  faults: number;
  missedFaults: number;
  mar: number | null;
}

/** Copies the readings' values before cleaning (which works in place). */
export function keepRaw(series: { features: string[]; timestamps: number[]; rows: Float64Array[] }, targets: readonly Target[]): RawReadings {
  const width = series.features.length;
  const values = new Float32Array(series.rows.length * width);
  series.rows.forEach((row, i) => values.set(row, i * width));
  return { features: series.features, timestamps: series.timestamps, values, targets };
}

/**
 * Scores the raw readings from index `from` on with the model in `bytes` as the agent would for
 * pump `source`, after giving the engine the readings just before (as the agent seeds a pump's
 * window from its buffer). The model must need only features of `raw` (the caller checks).
 */
export async function scoreAsAgent(bytes: Uint8Array, source: string, raw: RawReadings, from: number): Promise<AgentView> {
  const model = await LoadedModel.fromBytes(bytes, 'the registry');
  const engine = new InferenceEngine();
  engine.setModel(DEFAULT_MODEL_KEY, model);
  const view: AgentView = { readings: 0, unscored: 0, maintenance: 0, normal: 0, flaggedNormal: 0, far: 0, faults: 0, missedFaults: 0, mar: null };
  try {
    const history: Reading[] = [];
    for (let i = Math.max(0, from - HISTORY); i < from; i++) history.push(readingAt(raw, source, i));
    engine.seed(source, history);
    const n = raw.timestamps.length;
    for (let start = from; start < n; start += CHUNK) {
      const chunk: Reading[] = [];
      for (let i = start; i < Math.min(n, start + CHUNK); i++) chunk.push(readingAt(raw, source, i));
      const rows = await engine.score(chunk, raw.timestamps[start] as number);
      rows.forEach((row, k) => count(view, row.anomaly, raw.targets[start + k] ?? null));
    }
  } finally {
    await model.release();
  }
  view.far = rate(view.flaggedNormal, view.normal);
  view.mar = view.faults === 0 ? null : rate(view.missedFaults, view.faults);
  return view;
}

function count(view: AgentView, anomaly: boolean | null, target: Target): void {
  view.readings++;
  if (anomaly === null) view.unscored++;
  else if (target === 'exclude') view.maintenance++;
  else if (target === 'anomaly') {
    view.faults++;
    if (!anomaly) view.missedFaults++;
  } else {
    view.normal++;
    if (anomaly) view.flaggedNormal++;
  }
}

function readingAt(raw: RawReadings, pumpId: string, i: number): Reading {
  const width = raw.features.length;
  const values: Record<string, number | null> = {};
  for (let f = 0; f < width; f++) {
    const v = raw.values[i * width + f] as number;
    values[raw.features[f] as string] = Number.isNaN(v) ? null : v;
  }
  return { pumpId, ts: raw.timestamps[i] as number, values };
}

function rate(part: number, whole: number): number {
  return whole === 0 ? 0 : Number(((100 * part) / whole).toFixed(6));
}

/** `flags 6.12 % of 4 300 normal readings, misses 10.00 % of 300 in confirmed faults, 9 unscored` as `train` prints it. */
export function formatAgentView(v: AgentView): string {
  // "readings", as in the normal readings' part: these are raw readings, not the cleaned rows the decision and its warnings count.
  const faults = v.mar === null ? '' : `, misses ${v.mar.toFixed(2)} % of ${v.faults} readings in confirmed faults`;
  return `flags ${v.far.toFixed(2)} % of ${v.normal} normal readings${faults}${v.unscored > 0 ? `, ${v.unscored} unscored` : ''}`;
}
