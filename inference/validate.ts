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
    readonly code: 'PW_MODEL_FEATURES_MISSING' | 'PW_MODEL_RUN_FAILED' | 'PW_MODEL_NON_FINITE' | 'PW_MODEL_VERSION_MISMATCH' | 'PW_MODEL_TOO_SLOW',
    message: string,
  ) {
    super(message);
    this.name = 'ModelValidationError';
  }
}

/**
 * The longest a model may take to score one window. onnxruntime-node runs a session on the agent's
 * main thread, so a slow graph holds HTTP, sync and alerts while it runs: at 20 ms a window, 50
 * readings a second would take the whole thread. The trainer's models take about 0.01 ms.
 */
export const MAX_MS_PER_WINDOW = 20;

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
  const { scores } = await timedRun(model, input, batch);
  if (requireFinite) {
    const bad = scores.reduce((n, s) => (Number.isFinite(s) ? n : n + 1), 0);
    if (bad > 0) {
      throw new ModelValidationError('PW_MODEL_NON_FINITE', `model gave ${bad} non-finite scores on ${batch} windows of recent readings`);
    }
  }
  // One window alone too: under light traffic a micro-batch holds one reading, and a graph's cost
  // per run (not per window) is what the main thread waits for then.
  if (batch > 1) await timedRun(model, input.subarray(0, input.length / batch), 1);
}

/**
 * Runs a batch within the speed budget, up to three times while over it (the first run may pay
 * for warming up, and a busy gateway may take the CPU away once): the fastest counts. Scores of the first run.
 */
async function timedRun(model: LoadedModel, input: Float32Array, batch: number): Promise<{ scores: Float32Array }> {
  let first: { scores: Float32Array } | null = null;
  let fastest = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3 && fastest > MAX_MS_PER_WINDOW * batch; attempt++) {
    // onnxruntime-node starts a run from setImmediate: what the main thread does before (a commit,
    // a body being parsed) is not the model's. This marker runs just before it; without it, from the call.
    let started = performance.now();
    const marker = setImmediate(() => (started = performance.now()));
    try {
      const result = await model.run(input, batch);
      first ??= result;
    } catch (err) {
      throw new ModelValidationError('PW_MODEL_RUN_FAILED', `model failed on a test batch of ${batch}: ${(err as Error).message}`);
    } finally {
      clearImmediate(marker);
    }
    fastest = Math.min(fastest, performance.now() - started);
  }
  if (fastest > MAX_MS_PER_WINDOW * batch) {
    throw new ModelValidationError(
      'PW_MODEL_TOO_SLOW',
      `model took ${(fastest / batch).toFixed(1)} ms per window on a test batch of ${batch} (at most ${MAX_MS_PER_WINDOW} ms: the agent scores on its main thread, which a slower model would hold from HTTP, sync and alerts)`,
    );
  }
  return first as { scores: Float32Array };
}
