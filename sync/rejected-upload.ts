/**
 * Items the agent refused (bad JSON, values out of range, a pump past PUMPWATCH_MAX_PUMPS, …) go
 * up to `rejected/{deviceId}/{yyyy}/{mm}/{dd}/{firstId}-{lastId}.jsonl.gz` after the readings, so
 * the cloud sees a gateway whose sensor sends garbage, not one with fewer readings.
 *
 * Exactly once, as readings: a batch is persisted (buffer/rejected-sync.ts) before its upload, the
 * blob is created only if absent (BlobUploader: the same bytes found there count as done, other
 * content goes beside it), and its rows are marked uploaded only after the service confirmed it.
 * The bytes are a pure function of the rows and the device id, so a retry after a crash finds its
 * own blob. Reasons and raw text are stored as received: secrets in them (a SAS URL pasted into a
 * reading) are redacted here, as in every log line, before they leave the gateway.
 */
import type { RejectedPlan, RejectedRow, RejectedSync } from '../buffer/rejected-sync.js';
import type { TokenBucket } from './bandwidth.js';
import type { SyncLogger } from './cycle.js';
import { encodeLines, linesMetadata, type EncodedBatch } from './encoder.js';
import { besideName, rejectedBlobName } from './layout.js';
import { redactSecrets } from './redact.js';
import type { BlobUploader } from './uploader.js';

/** Version of the line format of `rejected/` blobs (their `schemaversion` metadata). */
export const REJECTED_SCHEMA_VERSION = 1;
/**
 * Batches of refused items one sync cycle uploads at most: they follow the readings and alerts and
 * must never hold up the next cycle's; a larger backlog goes over the next cycles.
 */
export const REJECTED_BATCHES_PER_CYCLE = 4;
const DAY_MS = 86_400_000;

/** One line of a `rejected/` blob. */
export interface RejectedLine {
  id: number;
  deviceId: string;
  /** The buffer file whose `rejected` table numbered `id` (a new file counts from 1 again): as on readings lines. */
  bufferId: string;
  /** ISO 8601, UTC. */
  receivedAt: string;
  source: string;
  reason: string;
  /** The refused item's text as the buffer kept it (a bounded preview), secrets redacted. */
  raw: string;
}

export function rejectedLine(row: RejectedRow, deviceId: string, bufferId: string): RejectedLine {
  return {
    id: row.id,
    deviceId,
    bufferId,
    receivedAt: new Date(row.receivedAt).toISOString(),
    source: row.source,
    reason: redactSecrets(row.reason),
    raw: redactSecrets(row.raw),
  };
}

export interface RejectedUploadOptions {
  deviceId: string;
  agentVersion: string;
  /** PUMPWATCH_SYNC_BATCH_MAX_ROWS and _BYTES (the uncompressed JSON lines), as readings' batches. */
  maxRows: number;
  maxBytes: number;
  maxBatches?: number;
  /** The upload cap readings share (PUMPWATCH_SYNC_MAX_BYTES_PER_SECOND). */
  bucket?: TokenBucket;
  signal?: AbortSignal;
  logger?: SyncLogger;
}

/**
 * Uploads the batch left planned by an earlier cycle, then plans and uploads new ones, at most
 * `maxBatches` in all. Throws the first failure (the plan stays for the next cycle).
 */
export async function uploadPendingRejected(uploader: BlobUploader, store: RejectedSync, opts: RejectedUploadOptions): Promise<{ rows: number; blobs: number }> {
  const done = { rows: 0, blobs: 0 };
  for (let i = 0; i < (opts.maxBatches ?? REJECTED_BATCHES_PER_CYCLE) && opts.signal?.aborted !== true; i++) {
    const recovered = store.planned();
    const next = recovered === null ? planBatch(store, opts) : { plan: recovered, rows: store.rowsOf(recovered) };
    if (next === null) break;
    if (recovered !== null) opts.logger?.debug({ event: 'sync-rejected-recovered', blob: recovered.blobName, rows: recovered.rowCount }, 'uploading a batch of refused items planned earlier');
    await uploadBatch(uploader, store, next.plan, next.rows, opts);
    done.rows += next.rows.length;
    done.blobs++;
  }
  return done;
}

/** The next batch of items not uploaded, persisted: rows of one UTC day of receipt, within the row and byte caps. */
function planBatch(store: RejectedSync, opts: RejectedUploadOptions): { plan: RejectedPlan; rows: RejectedRow[] } | null {
  const candidates = store.candidates(opts.maxRows);
  const first = candidates[0];
  if (first === undefined) return null;
  const day = Math.floor(first.receivedAt / DAY_MS);
  const rows: RejectedRow[] = [];
  let bytes = 0;
  for (const r of candidates) {
    const lineBytes = Buffer.byteLength(JSON.stringify(rejectedLine(r, opts.deviceId, store.bufferId()))) + 1;
    if (rows.length > 0 && (Math.floor(r.receivedAt / DAY_MS) !== day || bytes + lineBytes > opts.maxBytes)) break;
    rows.push(r);
    bytes += lineBytes;
  }
  const lastId = rows[rows.length - 1]!.id;
  const plan: RejectedPlan = { firstId: first.id, lastId, rowCount: rows.length, blobName: rejectedBlobName(opts.deviceId, first.id, lastId, first.receivedAt), deviceId: opts.deviceId };
  store.persistPlan(plan);
  opts.logger?.debug({ event: 'sync-rejected-planned', blob: plan.blobName, rows: plan.rowCount }, 'batch of refused items planned');
  return { plan, rows };
}

/** The gzip JSON lines of rows and their hashes: the same rows and device id give the same bytes. */
export async function encodeRejected(rows: readonly RejectedRow[], deviceId: string, bufferId: string): Promise<EncodedBatch> {
  return encodeLines(Buffer.from(rows.map((r) => `${JSON.stringify(rejectedLine(r, deviceId, bufferId))}\n`).join(''), 'utf8'), rows.length);
}

async function uploadBatch(uploader: BlobUploader, store: RejectedSync, plan: RejectedPlan, rows: RejectedRow[], opts: RejectedUploadOptions): Promise<void> {
  if (rows.length === 0) {
    // Eviction never takes a planned batch's rows: only a person deleting them gets here.
    opts.logger?.warn({ blob: plan.blobName }, 'a planned batch of refused items has no rows left in the buffer: nothing to upload');
    store.markUploaded(plan);
    return;
  }
  const bufferId = store.bufferId();
  const encoded = await encodeRejected(rows, plan.deviceId, bufferId);
  const metadata = {
    ...linesMetadata(encoded, REJECTED_SCHEMA_VERSION, { agentVersion: opts.agentVersion, deviceId: plan.deviceId }),
    firstid: String(plan.firstId),
    lastid: String(plan.lastId),
    bufferid: bufferId,
  };
  if (opts.bucket !== undefined) await opts.bucket.take(encoded.body.length, opts.signal);
  const outcome = await uploader.upload({ blobName: plan.blobName, encoded, metadata }, opts.signal);
  opts.logger?.debug({ event: 'sync-rejected-uploaded', blob: plan.blobName, outcome, rows: rows.length }, 'batch of refused items uploaded');
  if (outcome === 'created-beside') {
    opts.logger?.warn({ blob: plan.blobName, uploadedAs: besideName(plan.blobName, encoded.sha256) }, 'a blob of other content had this batch\'s name: uploaded beside it, nothing overwritten');
  }
  store.markUploaded(plan);
}
