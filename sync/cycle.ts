/**
 * One sync cycle: upload every batch planned before (after a crash or a failure), then plan and
 * upload new batches until the backlog is empty. The next batch is read and encoded while the
 * current one uploads; a batch is marked synced only after the service confirmed its blob.
 * Between batches the cycle yields to the event loop, so ingest keeps its pace during a drain.
 */
import { setImmediate as yieldNow } from 'node:timers/promises';
import type { PlanLimits, PlannedBatch, SyncBatches } from '../buffer/batches.js';
import type { BufferStore } from '../buffer/store.js';
import type { TokenBucket } from './bandwidth.js';
import { classifyFailure } from './backoff.js';
import { batchRawRows } from './batch-rows.js';
import { batchMetadata, encodeRawRows, type EncodedBatch } from './encoder.js';
import { parseReadingsBlobName, readingsBlobName } from './layout.js';
import type { BlobUploader, UploadOutcome } from './uploader.js';

export interface LogFn {
  (obj: object, msg: string): void;
}
/** The part of a pino logger the sync uses (sync/ never imports the agent). */
export interface SyncLogger {
  debug: LogFn;
  info: LogFn;
  warn: LogFn;
  error: LogFn;
}

export interface UploadedEvent {
  batch: PlannedBatch;
  outcome: UploadOutcome;
  rows: number;
  bytes: number;
  rawBytes: number;
  seconds: number;
}

export interface CycleDeps {
  store: BufferStore;
  batches: SyncBatches;
  uploader: BlobUploader;
  bucket: TokenBucket;
  limits: PlanLimits;
  /** Planner bytes per row seen in the last batch (kept across cycles), to size the next plan. */
  rowBytes: { estimate: number | null };
  deviceId: string;
  agentVersion: string;
  clock: () => number;
  signal: AbortSignal;
  logger: SyncLogger;
  onUploaded: (e: UploadedEvent) => void;
  /** A batch that can never upload (its name taken by a different blob): marked failed, the cycle goes on. */
  onBatchFailed: (batch: PlannedBatch, message: string) => void;
}

interface Prepared {
  batch: PlannedBatch;
  encoded: EncodedBatch;
  metadata: Record<string, string>;
}

/** Planner bytes of a row beyond its values text (buffer/batches.ts counts JSON length + 200). */
const ROW_OVERHEAD = 200;

/** Plan limits whose row cap never asks the planner for more candidates than the byte cap lets through. */
export function planLimits(maxRows: number, maxBytes: number, anomalyContextRows: number): PlanLimits {
  return { maxRows: Math.max(1, Math.min(maxRows, Math.floor(maxBytes / ROW_OVERHEAD) + 1)), maxBytes, anomalyContextRows };
}

/**
 * The limits of the next plan: its row cap sized from the rows of the last batch, so the planner
 * reads about as many candidate rows as the byte cap will take (not up to the row cap).
 */
function sized(deps: CycleDeps): PlanLimits {
  const per = deps.rowBytes.estimate;
  if (per === null) return deps.limits;
  const rows = Math.ceil((deps.limits.maxBytes / per) * 1.05) + 1;
  return { ...deps.limits, maxRows: Math.max(1, Math.min(deps.limits.maxRows, rows)) };
}

/** Runs one cycle; resolves with the rows uploaded, throws the first failure that stops it. */
export async function runCycle(deps: CycleDeps): Promise<{ rows: number; blobs: number }> {
  const done = { rows: 0, blobs: 0 };
  const upload = async (p: Prepared | null): Promise<void> => {
    if (p !== null && (await uploadPrepared(deps, p))) {
      done.rows += p.encoded.rowCount;
      done.blobs++;
    }
  };
  for (let batch = deps.batches.pending(); batch !== null && !deps.signal.aborted; batch = deps.batches.pending()) {
    deps.logger.debug({ event: 'sync-batch-recovered', blob: batch.blobName, rows: batch.rowCount }, 'uploading a batch planned earlier');
    await upload(await prepare(deps, batch));
    await yieldNow();
  }
  let current = await planNext(deps);
  while (current !== undefined && !deps.signal.aborted) {
    const uploading = upload(current);
    const preparing = planNext(deps);
    const [u, p] = await Promise.allSettled([uploading, preparing]);
    if (u.status === 'rejected') throw u.reason;
    if (p.status === 'rejected') throw p.reason;
    current = p.value;
  }
  return done;
}

/** The next planned and encoded batch; undefined when the backlog is empty (null: nothing to upload in it). */
async function planNext(deps: CycleDeps): Promise<Prepared | null | undefined> {
  await yieldNow(); // let the current upload's request go out first
  if (deps.signal.aborted) return undefined;
  const namer = (pumpId: string, first: number, last: number, firstTs: number): string =>
    readingsBlobName(pumpId, deps.deviceId, first, last, firstTs);
  const batch = deps.batches.plan(sized(deps), namer, deps.clock());
  if (batch === null) return undefined;
  deps.logger.debug({ event: 'sync-batch-planned', blob: batch.blobName, rows: batch.rowCount, priority: batch.priority }, 'batch planned');
  return prepare(deps, batch);
}

/** Reads and encodes a planned batch; null (and the batch marked failed) when its rows are gone. */
async function prepare(deps: CycleDeps, batch: PlannedBatch): Promise<Prepared | null> {
  await yieldNow(); // planning and reading are the longest synchronous steps: never back to back
  const rows = batchRawRows(deps.store, batch);
  if (rows.length === 0) {
    const message = `planned batch ${batch.blobName} has no rows left in the buffer: nothing to upload`;
    deps.batches.markFailed(batch, message);
    deps.onBatchFailed(batch, message);
    return null;
  }
  let valsLength = 0;
  for (const r of rows) valsLength += r.vals.length;
  deps.rowBytes.estimate = valsLength / rows.length + ROW_OVERHEAD;
  if (rows.length !== batch.rowCount) {
    deps.logger.warn({ blob: batch.blobName, planned: batch.rowCount, found: rows.length }, 'a planned batch has fewer rows than planned; uploading those found');
  }
  // The device id in the lines is the one in the planned name, so a retry encodes the same bytes.
  const deviceId = parseReadingsBlobName(batch.blobName)?.deviceId ?? deps.deviceId;
  const encoded = await encodeRawRows(rows, deviceId);
  const metadata = batchMetadata(encoded, { agentVersion: deps.agentVersion, deviceId, pumpId: batch.pumpId, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq });
  return { batch, encoded, metadata };
}

/** Uploads one batch and marks it synced; false when it was a conflict (marked failed instead). */
async function uploadPrepared(deps: CycleDeps, p: Prepared): Promise<boolean> {
  const { batch, encoded } = p;
  await deps.bucket.take(encoded.body.length, deps.signal);
  const t0 = performance.now();
  let outcome: UploadOutcome;
  try {
    outcome = await deps.uploader.upload({ blobName: batch.blobName, encoded, metadata: p.metadata }, deps.signal);
  } catch (err) {
    const failure = classifyFailure(err);
    if (failure.kind === 'conflict') {
      deps.batches.markFailed(batch, failure.message);
      deps.onBatchFailed(batch, failure.message);
      return false;
    }
    if (!deps.signal.aborted) noteQuietly(deps, batch, failure.message);
    throw err;
  }
  const seconds = (performance.now() - t0) / 1000;
  deps.logger.debug({ event: 'sync-batch-uploaded', blob: batch.blobName, outcome, bytes: encoded.body.length }, 'batch uploaded');
  deps.batches.markUploaded(batch, encoded.sha256, deps.clock());
  deps.logger.debug({ event: 'sync-batch-synced', blob: batch.blobName, rows: batch.rowCount }, 'batch marked synced');
  deps.onUploaded({ batch, outcome, rows: encoded.rowCount, bytes: encoded.body.length, rawBytes: encoded.rawBytes, seconds });
  return true;
}

/** Keeps the batch's last error in SQLite; a buffer failure here must not hide the upload's. */
function noteQuietly(deps: CycleDeps, batch: PlannedBatch, message: string): void {
  try {
    deps.batches.noteError(batch, message);
  } catch {
    // the upload failure is the one to report
  }
}
