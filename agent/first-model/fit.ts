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
 * for it; `fitFirstModelHere` in the calling thread. Both give the same bytes for the same rows.
 */
import type { StoredRow } from '../../buffer/types.js';
import type { ModelMetadata } from '../../inference/contract.js';
import { fitPacked } from './fit-core.js';
import { fitOnThread, type FitThreadOptions } from './fit-thread.js';

export interface FirstModelFitRequest {
  pumpId: string;
  /** The pump's rows as the buffer stores them, oldest first (StoredRow from buffer/types.ts). */
  rows: readonly StoredRow[];
  /** The metadata of the default model that scores the pump now (its stopped-when rule, features). */
  defaultModel: ModelMetadata;
  afterHours: number;
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
      spanHours: number;
    }
  | { kind: 'waiting'; spanHours: number; reason: string } // not enough running readings yet
  | { kind: 'refused'; reason: string; spanHours: number; heldOutRows?: number; heldOutFlagged?: number };

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
  rows: PackedRows;
}

export interface PackedRows {
  /** Every value name some row has, in the order first seen. */
  names: string[];
  /** Epoch ms per row. */
  ts: Float64Array;
  /** Row-major, `names.length` per row. */
  values: Float64Array;
  /** 1 where the default model flagged the row (`anomaly = 1`). */
  anomaly: Uint8Array;
}

/** Runs in a worker thread; resolves with the result, rejects only on a defect (with a clear message). */
export async function fitFirstModel(req: FirstModelFitRequest, options: FitThreadOptions = {}): Promise<FirstModelFitResult> {
  return fitOnThread(await packRowsYielding(checkRequest(req)), options);
}

/** The same in the calling thread (for tests; the worker thread runs the same fitPacked on the same packed rows). */
export async function fitFirstModelHere(req: FirstModelFitRequest): Promise<FirstModelFitResult> {
  const checked = checkRequest(req);
  return fitPacked({ pumpId: checked.pumpId, defaultModel: checked.defaultModel, afterHours: checked.afterHours, rows: packAll(checked.rows) });
}

/** A request the fit cannot run on is the caller's defect: said with what is wrong. */
function checkRequest(req: FirstModelFitRequest): FirstModelFitRequest {
  if (typeof req.pumpId !== 'string' || req.pumpId === '') throw new TypeError(`first model: pumpId must be a non-empty string, got ${JSON.stringify(req.pumpId)}`);
  if (!(typeof req.afterHours === 'number' && Number.isFinite(req.afterHours) && req.afterHours > 0)) {
    throw new TypeError(`first model of "${req.pumpId}": afterHours must be a number > 0, got ${String(req.afterHours)}`);
  }
  if (!Array.isArray(req.rows)) throw new TypeError(`first model of "${req.pumpId}": rows must be an array of buffer rows`);
  const other = req.rows.find((r) => r.pumpId !== req.pumpId);
  if (other !== undefined) throw new TypeError(`first model of "${req.pumpId}": a row of pump "${other.pumpId}" (seq ${other.seq}) is among its rows`);
  return req;
}

interface Packing {
  names: string[];
  index: Map<string, number>;
  rows: PackedRows;
}

/** Adds the value names of rows [from, to) to `index` (first seen first). */
function collectNames(rows: readonly StoredRow[], from: number, to: number, index: Map<string, number>): void {
  for (let i = from; i < to; i++) for (const name in (rows[i] as StoredRow).values) if (!index.has(name)) index.set(name, index.size);
}

/** The columns to fill for `n` rows with the names of `index`. */
function newPacking(index: Map<string, number>, n: number): Packing {
  const names = [...index.keys()];
  return { names, index, rows: { names, ts: new Float64Array(n), values: new Float64Array(n * names.length), anomaly: new Uint8Array(n) } };
}

/** Fills rows [from, to) of the packing; returns its rows. */
function packRows(rows: readonly StoredRow[], from: number, to: number, p: Packing): PackedRows {
  const width = p.names.length;
  // NaN (missing) first, slice by slice: filling 250 000 rows at once holds the thread for tens of ms.
  p.rows.values.fill(Number.NaN, from * width, to * width);
  for (let i = from; i < to; i++) {
    const row = rows[i] as StoredRow;
    p.rows.ts[i] = row.ts;
    if (row.anomaly === true) p.rows.anomaly[i] = 1;
    for (const name in row.values) {
      const v = row.values[name];
      if (typeof v === 'number') p.rows.values[i * width + (p.index.get(name) as number)] = v;
    }
  }
  return p.rows;
}

/** All rows at once (in the calling thread). */
function packAll(rows: readonly StoredRow[]): PackedRows {
  const index = new Map<string, number>();
  collectNames(rows, 0, rows.length, index);
  return packRows(rows, 0, rows.length, newPacking(index, rows.length));
}

/** Packs in slices with a turn of the event loop between them: 250 000 rows must not hold up a commit. */
async function packRowsYielding(req: FirstModelFitRequest): Promise<PackedFitRequest> {
  const SLICE = 8192;
  const n = req.rows.length;
  const turn = () => new Promise<void>((resolve) => setImmediate(resolve));
  const index = new Map<string, number>();
  for (let from = 0; from < n; from += SLICE) {
    collectNames(req.rows, from, Math.min(n, from + SLICE), index);
    await turn();
  }
  const p = newPacking(index, n);
  for (let from = 0; from < n; from += SLICE) {
    packRows(req.rows, from, Math.min(n, from + SLICE), p);
    await turn();
  }
  return { pumpId: req.pumpId, defaultModel: req.defaultModel, afterHours: req.afterHours, rows: p.rows };
}
