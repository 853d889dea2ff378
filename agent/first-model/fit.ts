/**
 * A pump's first model, fitted on the gateway from its own buffered readings, until the cloud
 * names one (which pumps, when, and its install are the agent's side of agent/first-model/; this
 * file is the fit). The trainer's own code
 * does the work, as `train` does it on a range: the readings are loaded as train loads blobs
 * (trainer/data/collect.ts), cleaned by train's cleaning with the default model's stopped-when
 * rule (trainer/train/prepare-loaded.ts), split into the oldest 80 % to fit on and the newest 20 %
 * to check on (trainer/train/split.ts), fitted (trainer/fit.ts, `mset`), and the held-out rows are
 * scored through the exported bytes in onnxruntime (trainer/eval/score.ts). The rows the default
 * model flagged are left out like maintenance rows: a fault it saw must not be learnt as normal.
 *
 * `fitFirstModel` runs it on a worker thread (fit-thread.ts) so scoring and commits never wait
 * for it (`fitFirstModelPacked` on rows packed page by page as the agent reads them: PackedPages);
 * `fitFirstModelHere` in the calling thread. All give the same bytes for the same rows.
 */
import { fitPacked } from './fit-core.js';
import { fitOnThread, type FitThreadOptions } from './fit-thread.js';
import { checkOwnRows, packAll, packRowsYielding } from './pack.js';
import type { FirstModelFitRequest, FirstModelFitResult, PackedFitRequest } from './types.js';

export { PackedPages, type PackedRows } from './pack.js';
export { FIRST_MODEL_ORIGIN, FIRST_MODEL_VERSION_PREFIX, type FirstModelFitRequest, type FirstModelFitResult, type PackedFitRequest } from './types.js';

/** Runs in a worker thread; resolves with the result, rejects only on a defect (with a clear message). */
export async function fitFirstModel(req: FirstModelFitRequest, options: FitThreadOptions = {}): Promise<FirstModelFitResult> {
  const checked = checkRequest(req);
  return fitOnThread({ pumpId: checked.pumpId, defaultModel: checked.defaultModel, afterHours: checked.afterHours, ...stoppedOf(checked), rows: await packRowsYielding(checked.rows) }, options);
}

/**
 * The same on rows packed already (PackedPages: what the agent's check reads from the buffer, page
 * by page, so it never holds all the pump's rows as objects). Its columns are transferred to the thread.
 */
export async function fitFirstModelPacked(req: PackedFitRequest, options: FitThreadOptions = {}): Promise<FirstModelFitResult> {
  checkParams(req);
  const n = req.rows.ts.length;
  if (req.rows.anomaly.length !== n || req.rows.values.length !== n * req.rows.names.length) {
    throw new TypeError(`first model of "${req.pumpId}": packed rows of ${n} times, ${req.rows.anomaly.length} anomaly marks and ${req.rows.values.length} values for ${req.rows.names.length} names do not match`);
  }
  return fitOnThread(req, options);
}

/** The same in the calling thread (for tests; the worker thread runs the same fitPacked on the same packed rows). */
export async function fitFirstModelHere(req: FirstModelFitRequest): Promise<FirstModelFitResult> {
  const checked = checkRequest(req);
  return fitPacked({ pumpId: checked.pumpId, defaultModel: checked.defaultModel, afterHours: checked.afterHours, ...stoppedOf(checked), rows: packAll(checked.rows) });
}

/** The pump and the hours: a request the fit cannot run on is the caller's defect, said with what is wrong. */
function checkParams(req: { pumpId: string; afterHours: number }): void {
  if (typeof req.pumpId !== 'string' || req.pumpId === '') throw new TypeError(`first model: pumpId must be a non-empty string, got ${JSON.stringify(req.pumpId)}`);
  // 0: fitted on the rows whatever running span they hold (the job: the most rows a fit reads reached).
  if (!(typeof req.afterHours === 'number' && Number.isFinite(req.afterHours) && req.afterHours >= 0)) {
    throw new TypeError(`first model of "${req.pumpId}": afterHours must be a number ≥ 0, got ${String(req.afterHours)}`);
  }
}

/** A request the fit cannot run on is the caller's defect: said with what is wrong. */
function checkRequest(req: FirstModelFitRequest): FirstModelFitRequest {
  checkParams(req);
  if (!Array.isArray(req.rows)) throw new TypeError(`first model of "${req.pumpId}": rows must be an array of buffer rows`);
  checkOwnRows(req.pumpId, req.rows);
  return req;
}

/** The rule of the request, when it names one (or none): undefined is the default model's. */
function stoppedOf(req: FirstModelFitRequest): Pick<PackedFitRequest, 'stoppedWhen'> {
  return req.stoppedWhen === undefined ? {} : { stoppedWhen: req.stoppedWhen };
}
