/**
 * One sync cycle: upload every batch planned before (after a crash or a failure), then plan and
 * upload new batches until the backlog as it stood when the cycle began is empty (see Horizon).
 * The next batch is read and encoded while the current one uploads; a batch is marked synced
 * only after the service confirmed its blob. Between batches the cycle yields to the event loop,
 * so ingest keeps its pace during a drain.
 */
import { setImmediate as yieldNow } from 'node:timers/promises';
import { PRIORITY, type BlobNamer, type PlanLimits, type PlannedBatch, type SyncBatches } from '../buffer/batches.js';
import { RowsUnreadableError, runText, unreadableCause } from '../buffer/unreadable.js';
import type { TokenBucket } from './bandwidth.js';
import { classifyFailure } from './backoff.js';
import { monotonicNow } from './clock.js';
import { batchMetadata, encodeRawRows, rowsExtent, sourceJson, type RawRow } from './encoder.js';
import { EncoderThreadError, HeldBody, type EncodedRows, type EncodedSummary, type EncoderThread } from './encoder-thread.js';
import { besideName, parseReadingsBlobName, readingsBlobName } from './layout.js';
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
  batches: SyncBatches;
  /**
   * Reads and encodes batches off the main thread; null: on the main thread. Read at every batch:
   * it may change within a cycle (the worker gives it once the target answered after a failure).
   */
  readonly encoder: EncoderThread | null;
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
  /**
   * A batch that can never upload, marked failed; the cycle goes on. `answered`: the service said so
   * (its name taken by a different blob); false when its rows were gone from the buffer (no request made).
   */
  onBatchFailed: (batch: PlannedBatch, message: string, answered: boolean) => void;
  /** Shortest time between two moves of a cycle's horizon for anomalies committed while it runs (see Horizon). */
  anomalyFloorMs: number;
  /**
   * A batch's rows were read and encoded: on the encoder thread, or on the main thread (no thread,
   * or it could not do this batch). Counted in /metrics, so work the thread exists to keep off the
   * scoring thread is seen when it lands there.
   */
  onEncoded?: (on: EncodedOn) => void;
}

/** Where a batch was read and encoded. */
export type EncodedOn = 'thread' | 'main';

/**
 * The part of the backlog a cycle takes: rows up to `seq`, the newest committed when the cycle
 * began (PlanLimits.horizon says why). An anomaly committed while the cycle runs moves the horizon
 * to the newest row, no sooner than `anomalyFloorMs` after the buffer was last asked: during a long
 * drain a new alert's rows still go within a blob or two, and a pump stuck in an anomaly adds a
 * blob per floor, not one per reading. One committed after the cycle's last plan waits for the
 * next cycle, which its kick brings forward (SyncWorker.kick).
 */
interface Horizon {
  seq: number;
  /** When the buffer was last asked for anomalies beyond `seq` (or `seq` was set). */
  checkedAt: number;
}

interface Prepared {
  batch: PlannedBatch;
  encoded: EncodedSummary;
  /** The bytes, or where the encoder thread holds them for its own upload. */
  body: Buffer | HeldBody;
  /** The device id in the lines (and the planned name). */
  deviceId: string;
  /** The buffer id in the lines: the file the rows were read from; null for a plan made before the file had one. */
  bufferId: string | null;
  metadata: Record<string, string>;
  /** Resolves once the plan is durable: the upload never starts before. */
  durable: Promise<void>;
}

/** Fewer bytes than the planner counts for a line beyond its values text (buffer/batches.ts storedLineBytes, at least 216): row caps from the byte cap never stop a batch first. */
const ROW_OVERHEAD = 200;

/** Plan limits whose row cap never asks the planner for more candidates than the byte cap lets through. */
export function planLimits(maxRows: number, maxBytes: number, anomalyContextRows: number): PlanLimits {
  return { maxRows: Math.max(1, Math.min(maxRows, Math.floor(maxBytes / ROW_OVERHEAD) + 1)), maxBytes, anomalyContextRows };
}

/**
 * The limits of the next plan: its row cap sized from the rows of the last batch, so the planner
 * reads about as many candidate rows as the byte cap will take (not up to the row cap).
 */
function sized(deps: CycleDeps, horizon: Horizon): PlanLimits {
  // Every line carries the device id and the buffer's id, which the rows do not hold: counted against the byte cap.
  const limits = { ...deps.limits, horizon: horizon.seq, lineExtra: Buffer.byteLength(sourceJson(deps.deviceId, deps.batches.bufferId())) };
  const per = deps.rowBytes.estimate;
  if (per === null) return limits;
  const rows = Math.ceil((deps.limits.maxBytes / per) * 1.05) + 1;
  return { ...limits, maxRows: Math.max(1, Math.min(deps.limits.maxRows, rows)) };
}

/** Moves the horizon to the newest row when an anomaly waits beyond it, asking at most once per floor. */
function advance(deps: CycleDeps, horizon: Horizon): void {
  const now = monotonicNow(); // an interval: the wall clock may be stepped during a long drain
  if (now - horizon.checkedAt < deps.anomalyFloorMs) return;
  horizon.checkedAt = now;
  if ((deps.batches.newestUnplannedAnomaly() ?? -1) > horizon.seq) horizon.seq = deps.batches.lastSeq();
}

/** Runs one cycle; resolves with the rows uploaded, throws the first failure that stops it. */
export async function runCycle(deps: CycleDeps): Promise<{ rows: number; blobs: number }> {
  const horizon: Horizon = { seq: deps.batches.lastSeq(), checkedAt: monotonicNow() };
  const done = { rows: 0, blobs: 0 };
  const upload = async (p: Prepared | null): Promise<void> => {
    if (p === null) return;
    try {
      if (await uploadPrepared(deps, p)) {
        done.rows += p.encoded.rowCount;
        done.blobs++;
      }
    } finally {
      release(deps, p); // bytes still held when the upload never started (aborted, or its plan's fsync failed)
    }
  };
  // A plan left by an earlier cycle may never have been fsynced (its fsync failed, or that cycle was
  // stopped before it ran): one fsync of the WAL makes them all durable before the first goes up.
  if (deps.batches.pending() !== null) await deps.batches.syncPlans();
  for (let batch = deps.batches.pending(); batch !== null && !deps.signal.aborted; batch = deps.batches.pending()) {
    deps.logger.debug({ event: 'sync-batch-recovered', blob: batch.blobName, rows: batch.rowCount }, 'uploading a batch planned earlier');
    await upload(await prepare(deps, batch));
    await yieldNow();
  }
  await uploadPlanned(deps, horizon, upload);
  return done;
}

/**
 * Batches planned (and encoded) ahead of the upload: while one uploads, up to this many more are
 * planned, one after the other, so the encoder thread has the next batch to encode the moment it
 * is free instead of waiting for the upload, its mark and the next pick to go round. An alert
 * committed meanwhile does not wait behind them: it is planned and uploaded next.
 */
const PLANNED_AHEAD = 2;

/** Plans and uploads new batches until the backlog is empty; on a failure, releases what was planned ahead and throws. */
async function uploadPlanned(deps: CycleDeps, horizon: Horizon, upload: (p: Prepared | null) => Promise<void>): Promise<void> {
  const ahead: Array<Promise<Prepared | null | undefined>> = [];
  let chain: Promise<unknown> = Promise.resolve();
  const plan = (): Promise<Prepared | null | undefined> => {
    const next = chain.then(() => planNext(deps, horizon)); // picks depend on the plans before them: one at a time
    next.catch(() => undefined); // observed when its turn comes; not an unhandled rejection meanwhile
    chain = next.catch(() => undefined);
    return next;
  };
  let exhausted = false;
  let overtaken: Prepared | null = null;
  let overtaking: Promise<Prepared | null | undefined> | null = null;
  for (let i = 0; i < PLANNED_AHEAD; i++) ahead.push(plan());
  try {
    while (ahead.length > 0) {
      const next = ahead.shift()!;
      const p = await next;
      if (p === undefined || deps.signal.aborted) {
        exhausted = true; // the backlog is empty (or the cycle stops): what is planned already still goes
        if (deps.signal.aborted) release(deps, p);
        continue;
      }
      if (next === overtaking) {
        overtaking = null;
        // The alert went into a plan already on its way when it was seen (between its pick and its
        // start): this plan took a bulk batch, which goes last, not before the alert's.
        if (p !== null && p.batch.priority === PRIORITY.bulk && ahead.length > 0) {
          ahead.push(Promise.resolve(p));
          continue;
        }
      }
      if (!exhausted && p !== null && p !== overtaken && p.batch.priority === PRIORITY.bulk && overtakes(deps, horizon)) {
        overtaken = p; // an alert arrived after this bulk batch was planned: it goes first
        overtaking = plan();
        ahead.unshift(overtaking, Promise.resolve(p));
        continue;
      }
      if (!exhausted && ahead.length < PLANNED_AHEAD) ahead.push(plan());
      await upload(p);
    }
  } finally {
    // After a failure: bytes the encoder thread holds for batches planned ahead are dropped (the
    // plans stay in SQLite and are uploaded by the next cycle).
    for (const r of await Promise.allSettled(ahead)) if (r.status === 'fulfilled') release(deps, r.value);
  }
}

/** True when an anomaly within the horizon (moved first, if due) waits unplanned: it goes before a bulk batch. */
function overtakes(deps: CycleDeps, horizon: Horizon): boolean {
  advance(deps, horizon);
  return deps.batches.hasUnplannedAnomaly(horizon.seq);
}

/**
 * The next planned and encoded batch; undefined when the backlog (up to the horizon) is empty (null:
 * nothing to upload in it). Rows a damaged page keeps from being read, where a batch would start,
 * are set aside and the batch planned after them: the rows before and after such a page go up, and
 * a page read once as damaged is not read again.
 */
async function planNext(deps: CycleDeps, horizon: Horizon): Promise<Prepared | null | undefined> {
  for (;;) {
    try {
      return await planOnce(deps, horizon);
    } catch (err) {
      if (!(err instanceof RowsUnreadableError)) throw err;
      setAside(deps, err);
    }
  }
}

/** Records rows that cannot be read (never uploaded, never marked synced) and says so; throws when nothing could be recorded. */
function setAside(deps: CycleDeps, err: RowsUnreadableError): void {
  const { run } = err;
  if (!deps.batches.recordUnreadable(run, deps.clock())) throw err; // a batch planned meanwhile holds part of them: the next cycle plans again
  deps.logger.warn(
    { code: err.code, pumpId: run.pumpId, firstSeq: run.firstSeq, lastSeq: run.lastSeq, rows: run.rows, err: { message: run.error } },
    `${runText(run)} cannot be read from the buffer (${unreadableCause(run.error)}): they are set aside, never uploaded nor marked synced; the rows before and after them are uploaded`,
  );
}

async function planOnce(deps: CycleDeps, horizon: Horizon): Promise<Prepared | null | undefined> {
  await yieldNow(); // let the current upload's request go out first
  if (deps.signal.aborted) return undefined;
  advance(deps, horizon);
  if (deps.encoder !== null) {
    try {
      return await planOnThread(deps, deps.encoder, sized(deps, horizon));
    } catch (err) {
      if (!(err instanceof EncoderThreadError)) throw err;
      onMainThread(deps, err);
    }
  }
  const planned = deps.batches.planWithRows(sized(deps, horizon), namer(deps), deps.clock());
  if (planned === null) return undefined;
  const { batch, rows, durable } = planned;
  logPlanned(deps, batch);
  await yieldNow(); // planning read the rows: encoding is the next synchronous step, never back to back
  deps.onEncoded?.('main');
  const bufferId = deps.batches.bufferId();
  return prepared(deps, batch, await encodeOnMain(rows, deps.deviceId, bufferId), deps.deviceId, bufferId, durable);
}

/** Whether the encoder thread keeps a batch's bytes and uploads them itself (it can build the same uploader). */
const holds = (deps: CycleDeps): boolean => deps.uploader.spec !== null;

/** Drops bytes the encoder thread holds for a batch that will not be uploaded in this cycle. */
function release(deps: CycleDeps, p: Prepared | null | undefined): void {
  if (p?.body instanceof HeldBody) deps.encoder?.release(p.body);
}

/**
 * Plans on the encoder thread: the main thread picks where the batch starts (a few index probes),
 * the thread reads, sizes and encodes the rows, and the main thread persists the plan, unless rows
 * of that range were evicted meanwhile (then it plans again).
 */
async function planOnThread(deps: CycleDeps, encoder: EncoderThread, limits: PlanLimits): Promise<Prepared | null | undefined> {
  for (let attempt = 0; attempt < 3; attempt++) {
    const pick = deps.batches.pick(limits);
    if (pick === null) return undefined;
    const { maxRows, maxBytes } = limits;
    const hold = holds(deps);
    const bufferId = deps.batches.bufferId();
    const rows = await encoder.encode({ kind: 'plan', pumpId: pick.pumpId, from: pick.from, bound: pick.bound, maxRows, maxBytes, deviceId: deps.deviceId, bufferId, hold, file: deps.batches.bufferFile() });
    if (rows === null) continue;
    let planned: { batch: PlannedBatch; durable: Promise<void> } | null = null;
    try {
      if (!deps.signal.aborted) planned = deps.batches.persistPlan(pick, rows, namer(deps)(pick.pumpId, rows.firstSeq, rows.lastSeq, rows.firstTs), deps.clock());
    } finally {
      if (planned === null && rows.body instanceof HeldBody) encoder.release(rows.body);
    }
    if (deps.signal.aborted) return undefined; // a plan persisted just now is uploaded by the next cycle
    if (planned === null) continue;
    logPlanned(deps, planned.batch);
    deps.onEncoded?.('thread');
    return prepared(deps, planned.batch, rows, deps.deviceId, bufferId, planned.durable); // the name just planned carries deps.deviceId
  }
  throw new EncoderThreadError('rows were evicted under three plans in a row');
}

/**
 * Reads and encodes a batch planned earlier (after a crash or a failed upload); null (and the batch
 * marked failed) when its rows are gone. A batch some of whose rows can no longer be read (a page
 * damaged since it was planned) is dropped: its rows are planned again, the readable ones uploaded
 * under new names and the others set aside (null).
 */
async function prepare(deps: CycleDeps, batch: PlannedBatch): Promise<Prepared | null> {
  try {
    return await prepareRows(deps, batch);
  } catch (err) {
    if (!(err instanceof RowsUnreadableError)) throw err;
    deps.batches.dropPlan(batch);
    deps.logger.warn(
      { code: err.code, blob: batch.blobName, pumpId: err.run.pumpId, firstSeq: err.run.firstSeq, lastSeq: err.run.lastSeq, rows: err.run.rows, err: { message: err.run.error } },
      `planned batch ${batch.blobName}: ${runText(err.run)} can no longer be read from the buffer (${unreadableCause(err.run.error)}): the plan is dropped, and its rows are planned again (those that cannot be read are set aside)`,
    );
    return null;
  }
}

async function prepareRows(deps: CycleDeps, batch: PlannedBatch): Promise<Prepared | null> {
  await yieldNow();
  const deviceId = deviceIdOf(deps, batch);
  // As the plan was encoded when it was made: an older agent's plan carried no buffer id.
  const bufferId = deps.batches.bufferIdOf(batch);
  if (deps.encoder !== null) {
    try {
      const rows = await deps.encoder.encode({ kind: 'range', pumpId: batch.pumpId, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, deviceId, bufferId, hold: holds(deps), file: deps.batches.bufferFile() });
      if (rows !== null) deps.onEncoded?.('thread');
      return prepared(deps, batch, rows, deviceId, bufferId);
    } catch (err) {
      if (!(err instanceof EncoderThreadError)) throw err;
      onMainThread(deps, err);
    }
  }
  const rows = await encodeOnMain(deps.batches.rawRows(batch), deviceId, bufferId);
  if (rows !== null) deps.onEncoded?.('main');
  return prepared(deps, batch, rows, deviceId, bufferId);
}

/** A batch with its rows encoded for `deviceId` and the buffer `bufferId`, ready to upload; a batch whose rows are all gone is marked failed (null). */
function prepared(deps: CycleDeps, batch: PlannedBatch, rows: EncodedRows | null, deviceId: string, bufferId: string | null, durable = Promise.resolve()): Prepared | null {
  if (rows === null) {
    const message = `planned batch ${batch.blobName} has no rows left in the buffer: nothing to upload`;
    deps.batches.markFailed(batch, message);
    deps.onBatchFailed(batch, message, false);
    return null;
  }
  // Rows read on the encoder thread whose contributions cannot be decoded go up with `contributions: null`: recorded and said.
  if (rows.undecodable !== undefined) deps.batches.recordWithoutContributions(rows.undecodable);
  deps.rowBytes.estimate = rows.valsLength / rows.rowCount + ROW_OVERHEAD;
  if (rows.rowCount !== batch.rowCount) {
    deps.logger.warn({ blob: batch.blobName, planned: batch.rowCount, found: rows.rowCount }, 'a planned batch has fewer rows than planned; uploading those found');
  }
  const metadata = batchMetadata(rows.encoded, { agentVersion: deps.agentVersion, deviceId, pumpId: batch.pumpId, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, bufferId });
  return { batch, encoded: rows.encoded, body: rows.body, deviceId, bufferId, metadata, durable };
}

/** Encodes rows on the main thread (the fallback when the encoder thread cannot run). */
async function encodeOnMain(rows: RawRow[], deviceId: string, bufferId: string | null): Promise<(EncodedRows & { body: Buffer }) | null> {
  if (rows.length === 0) return null;
  const { body, ...encoded } = await encodeRawRows(rows, deviceId, bufferId);
  return { ...rowsExtent(rows), encoded: { ...encoded, bytes: body.length }, body };
}

/** The device id in the lines is the one in the planned name, so a retry encodes the same bytes. */
function deviceIdOf(deps: CycleDeps, batch: PlannedBatch): string {
  return parseReadingsBlobName(batch.blobName)?.deviceId ?? deps.deviceId;
}

function namer(deps: CycleDeps): BlobNamer {
  return (pumpId, first, last, firstTs) => readingsBlobName(pumpId, deps.deviceId, first, last, firstTs);
}

function logPlanned(deps: CycleDeps, batch: PlannedBatch): void {
  deps.logger.debug({ event: 'sync-batch-planned', blob: batch.blobName, rows: batch.rowCount, priority: batch.priority }, 'batch planned');
}

function onMainThread(deps: CycleDeps, err: EncoderThreadError): void {
  const msg = 'sync encodes on the main thread: its encoder thread cannot run';
  if (err.repeat) deps.logger.debug({ err: { message: err.message } }, msg);
  else deps.logger.warn({ err: { message: err.message } }, msg);
}

/** Uploads one batch and marks it synced; false when it was a conflict (marked failed instead). */
async function uploadPrepared(deps: CycleDeps, p: Prepared): Promise<boolean> {
  const { batch, encoded } = p;
  await p.durable;
  await deps.bucket.take(encoded.bytes, deps.signal);
  const t0 = performance.now();
  let outcome: UploadOutcome;
  try {
    outcome = await send(deps, p);
  } catch (err) {
    const failure = classifyFailure(err);
    if (failure.kind === 'conflict') {
      deps.batches.markFailed(batch, failure.message);
      deps.onBatchFailed(batch, failure.message, true);
      return false;
    }
    if (!deps.signal.aborted) noteQuietly(deps, batch, failure.message);
    throw err;
  }
  const seconds = (performance.now() - t0) / 1000;
  deps.logger.debug({ event: 'sync-batch-uploaded', blob: batch.blobName, outcome, bytes: encoded.bytes }, 'batch uploaded');
  if (outcome === 'created-beside') {
    deps.logger.warn(
      { blob: batch.blobName, uploadedAs: besideName(batch.blobName, encoded.sha256) },
      'a blob of other content had this batch\'s name: uploaded beside it, nothing overwritten. Either an upload of this batch reached Blob Storage but its answer was lost, and its bytes differ now ' +
        '(an agent upgraded in between encodes the lines otherwise), or a second buffer under this device id (a replaced data volume, a deleted buffer file) numbered other readings the same; ' +
        'the lines tell which (their bufferId, ts and values)',
    );
  }
  deps.batches.markUploaded(batch, encoded.sha256, deps.clock());
  deps.logger.debug({ event: 'sync-batch-synced', blob: batch.blobName, rows: batch.rowCount }, 'batch marked synced');
  deps.onUploaded({ batch, outcome, rows: encoded.rowCount, bytes: encoded.bytes, rawBytes: encoded.rawBytes, seconds });
  return true;
}

/**
 * The upload itself: by the encoder thread when it holds the bytes, else by the main thread's
 * uploader. If the thread lost them (it failed or was stopped), the batch is encoded again on the
 * main thread, to the same bytes, and uploaded from here.
 */
async function send(deps: CycleDeps, p: Prepared): Promise<UploadOutcome> {
  const { batch, metadata } = p;
  const fromMain = (body: Buffer): Promise<UploadOutcome> => deps.uploader.upload({ blobName: batch.blobName, encoded: { ...p.encoded, body }, metadata }, deps.signal);
  if (!(p.body instanceof HeldBody)) return fromMain(p.body);
  try {
    return await deps.encoder!.upload(p.body, { blobName: batch.blobName, metadata, spec: deps.uploader.spec! }, deps.signal);
  } catch (err) {
    if (!(err instanceof EncoderThreadError)) throw err;
    onMainThread(deps, err);
    const again = await encodeOnMain(deps.batches.rawRows(batch), p.deviceId, p.bufferId);
    if (again === null) throw new EncoderThreadError(`the rows of ${batch.blobName} are no longer in the buffer`, { cause: err });
    deps.onEncoded?.('main');
    return fromMain(again.body);
  }
}

/** Keeps the batch's last error in SQLite; a buffer failure here must not hide the upload's. */
function noteQuietly(deps: CycleDeps, batch: PlannedBatch, message: string): void {
  try {
    deps.batches.noteError(batch, message);
  } catch {
    // the upload failure is the one to report
  }
}
