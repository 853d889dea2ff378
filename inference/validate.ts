/**
 * Checks a loaded model against the pumps it is about to score, before it goes live:
 * every feature it needs is sent by each of those pumps, and it scores their recent readings
 * with finite values and the right output length. Without recent readings, one synthetic batch
 * must run (shape errors surface here, not on live data).
 */
import type { Reading } from '../buffer/types.js';
import type { LoadedModel } from './model.js';
import { FeatureWindow } from './window.js';

export class ModelValidationError extends Error {
  constructor(
    readonly code: 'PW_MODEL_FEATURES_MISSING' | 'PW_MODEL_RUN_FAILED' | 'PW_MODEL_NON_FINITE' | 'PW_MODEL_VERSION_MISMATCH',
    message: string,
  ) {
    super(message);
    this.name = 'ModelValidationError';
  }
}

/** Windows scored per pump during validation (the most recent ones), and pumps at most: one small batch. */
const WINDOWS_PER_PUMP = 8;
const MAX_PUMPS = 64;

export interface ValidationReport {
  pumps: number;
  windows: number;
}

/** Recent readings, oldest first, per pump that the model would score. */
export type RecentByPump = ReadonlyMap<string, readonly Reading[]>;

/**
 * The file is the version its desired entry names: /status and the twin show the entry's version,
 * the rows and the page the file's (`pumpwatch.version`). The trainer's deploy writes the same
 * version into both; a difference means the twin points at another file than it says.
 */
export function checkVersion(model: LoadedModel, version: string): void {
  if (model.meta.version !== version) {
    throw new ModelValidationError(
      'PW_MODEL_VERSION_MISMATCH',
      `the model file is version "${model.meta.version}" (its pumpwatch.version metadata), the desired entry says "${version}"`,
    );
  }
}

export async function validateModel(model: LoadedModel, recent: RecentByPump): Promise<ValidationReport> {
  checkFeatures(model, recent);
  const { input, count } = buildWindows(model, recent);
  if (count === 0) {
    await runChecked(model, new Float32Array(2 * model.meta.window * model.meta.features.length).fill(1), 2, false);
    return { pumps: recent.size, windows: 0 };
  }
  await runChecked(model, input, count, true);
  return { pumps: recent.size, windows: count };
}

function checkFeatures(model: LoadedModel, recent: RecentByPump): void {
  for (const [pumpId, readings] of recent) {
    if (readings.length === 0) continue;
    const seen = new Set<string>();
    for (const r of readings) for (const [k, v] of Object.entries(r.values)) if (typeof v === 'number') seen.add(k);
    const missing = model.meta.features.filter((f) => !seen.has(f));
    if (missing.length > 0) {
      throw new ModelValidationError(
        'PW_MODEL_FEATURES_MISSING',
        `model needs ${missing.map((f) => `"${f}"`).join(', ')}, which ${pumpId} does not send (it sends ${[...seen].sort().join(', ') || 'nothing'})`,
      );
    }
  }
}

function buildWindows(model: LoadedModel, recent: RecentByPump): { input: Float32Array; count: number } {
  const stride = model.meta.window * model.meta.features.length;
  const parts: Float32Array[] = [];
  for (const readings of [...recent.values()].slice(0, MAX_PUMPS)) {
    const win = new FeatureWindow(model.meta.features, model.meta.window);
    const ready: Float32Array[] = [];
    for (const r of readings) {
      if (!win.push(r.values).ready) continue;
      const w = new Float32Array(stride);
      win.writeTo(w, 0);
      ready.push(w);
    }
    parts.push(...ready.slice(-WINDOWS_PER_PUMP));
  }
  const input = new Float32Array(parts.length * stride);
  parts.forEach((w, i) => input.set(w, i * stride));
  return { input, count: parts.length };
}

async function runChecked(model: LoadedModel, input: Float32Array, batch: number, requireFinite: boolean): Promise<void> {
  let scores: Float32Array;
  try {
    ({ scores } = await model.run(input, batch));
  } catch (err) {
    throw new ModelValidationError('PW_MODEL_RUN_FAILED', `model failed on a test batch of ${batch}: ${(err as Error).message}`);
  }
  if (!requireFinite) return;
  const bad = scores.reduce((n, s) => (Number.isFinite(s) ? n : n + 1), 0);
  if (bad > 0) {
    throw new ModelValidationError('PW_MODEL_NON_FINITE', `model gave ${bad} non-finite scores on ${batch} windows of recent readings`);
  }
}
