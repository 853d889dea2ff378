/**
 * The sync worker: runs sync cycles one at a time (never two at once), each until the backlog is
 * empty, then waits for the interval; after a failure it waits as the backoff policy says (fast
 * for an outage, slow for credentials or a missing container, never sooner than Retry-After).
 * It keeps what /status, /healthz and /metrics report: state, connectivity, last error, counts.
 */
import { SyncBatches, type PlannedBatch } from '../buffer/batches.js';
import { BufferError, classifySqliteError } from '../buffer/errors.js';
import type { BufferStore } from '../buffer/store.js';
import { TokenBucket } from './bandwidth.js';
import { monotonicNow } from './clock.js';
import { Backoff, classifyFailure, explainExpiry, isSqliteError, type BackoffOptions, type FailureKind, type SyncFailure } from './backoff.js';
import { DEFAULT_IDLE_MS, requestCapMs } from './deadline.js';
import { planLimits, runCycle, type EncodedOn, type SyncLogger, type UploadedEvent } from './cycle.js';
import { EncoderThread } from './encoder-thread.js';
import type { BlobUploader } from './uploader.js';

export interface SyncSettings {
  intervalMs: number;
  /** Upload cap in bytes per second; 0: none. */
  maxBytesPerSecond: number;
  batchMaxRows: number;
  /** Approximate uncompressed bytes per blob at most. */
  batchMaxBytes: number;
  /** Earlier rows of an anomaly's pump uploaded with it. */
  anomalyContextRows: number;
  backoff: BackoffOptions;
  /** A cycle uses the encoder thread only when more rows than this wait at its start (default THREAD_ABOVE_ROWS; 0: always). */
  threadAboveRows?: number;
}

/** Default shortest time between the start of a cycle and one an anomaly brings forward. */
const KICK_FLOOR_MS = 5000;

/**
 * A cycle uses the encoder thread only when its backlog is larger than this (SyncSettings
 * threadAboveRows). The steady trickle of a gateway (50 pumps at 1 Hz: 1 500 rows per 30-s cycle)
 * is read, encoded and uploaded on the main thread, in blocks of the scoring thread (a 30-s cycle
 * of 50 pumps 0.07-0.13 s in all, in pieces of a few ms; a full blob of about 1 150-1 400 rows 15-30 ms
 * in one piece; the bound keeps a cycle of few pumps to about one full blob there: bench/steady
 * --cycle). So the thread is not kept alive by it: a cycle every 30 s kept its 30-s idle end from
 * ever coming, and it held 25-30 MB of RSS (a second isolate and storage SDK) for good. A drain
 * (after an outage, or a buffer filling faster than a cycle takes) goes to the thread.
 */
export const THREAD_ABOVE_ROWS = 2000;

export type SyncState = 'stopped' | 'idle' | 'uploading' | 'retrying' | 'blocked';
export type BlobConnectivity = 'unknown' | 'online' | 'offline' | 'throttled' | 'unauthorized' | 'container-missing';

export interface SyncWorkerDeps {
  buffer: BufferStore;
  /** Built at the first cycle (the target may only be known once a local Azurite runs). */
  uploader: () => BlobUploader;
  deviceId: string;
  agentVersion: string;
  settings: () => SyncSettings;
  logger: SyncLogger;
  onUploaded?: (e: UploadedEvent) => void;
  onFailure?: (f: SyncFailure) => void;
  /** A batch was read and encoded on the encoder thread or on the main thread (cycle.ts CycleDeps.onEncoded). */
  onEncoded?: (on: EncodedOn) => void;
  /**
   * Smaller uploads that ride on each successful cycle, after the readings (technicians' labels,
   * refused items), under the same upload cap (`bucket`). It counts as contact with the target only
   * when it returns `{ contacted: true }` (it sent a request).
   */
  afterReadings?: (uploader: BlobUploader, signal: AbortSignal, bucket: TokenBucket) => Promise<{ contacted: boolean } | void>;
  /** Reads and encodes batches off the main thread (default: one on the buffer's file; null: the main thread does it). */
  encoderThread?: EncoderThread | null;
  /** The default encoder thread was started (not called for an `encoderThread` given). */
  onEncoderThreadStarted?: () => void;
  /** Shortest time between the start of a cycle and one started by a kick (default 5 s). */
  kickFloorMs?: number;
  /** When the target's SAS credential expires (epoch ms; null: an account key, or unknown), so a refusal after it says so. */
  credentialExpiresAt?: () => number | null;
  /** Wall clock: the times in status() and in the batches. */
  clock?: () => number;
  /** Monotonic ms for the kick floor, the next cycle and the upload cap (default performance.now()). */
  monotonic?: () => number;
  random?: () => number;
}

export interface SyncWorkerStatus {
  state: SyncState;
  connectivity: BlobConnectivity;
  lastSuccessAt: string | null;
  lastAttemptAt: string | null;
  /** When the cycle running began (null: none runs). */
  uploadingSince: string | null;
  /** When the cycle running last moved: began, or uploaded (or gave up) a batch (null: none runs). */
  lastProgressAt: string | null;
  lastError: string | null;
  lastErrorAt: string | null;
  nextAttemptAt: string | null;
  uploadedRows: number;
  uploadedBlobs: number;
  uploadedBytes: number;
  failedBatches: number;
}

export interface CycleResult {
  rows: number;
  blobs: number;
  failure: SyncFailure | null;
  /** How long the worker waits before the next cycle. */
  nextDelayMs: number;
}

const CONNECTIVITY: Partial<Record<FailureKind, BlobConnectivity>> = {
  offline: 'offline',
  throttled: 'throttled',
  server: 'throttled',
  unauthorized: 'unauthorized',
  'container-missing': 'container-missing',
};

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export class SyncWorker {
  readonly batches: SyncBatches;
  private readonly clock: () => number;
  private readonly monotonic: () => number;
  private readonly backoff: Backoff;
  private readonly bucket: TokenBucket;
  private readonly encoder: EncoderThread | null;
  private uploaderInstance: BlobUploader | null = null;
  private running: Promise<CycleResult> | null = null;
  private timer: NodeJS.Timeout | null = null;
  private abort = new AbortController();
  private started = false;
  /** An anomaly was committed while a cycle ran (see kick). */
  private kickedWhileRunning = false;
  private state: SyncState = 'stopped';
  private connectivity: BlobConnectivity = 'unknown';
  private failure: SyncFailure | null = null;
  /** Whether the cycle running sent a request the service answered (a blob uploaded or found taken). */
  private contacted = false;
  private lastConflict: string | null = null;
  private lastError: string | null = null;
  private counts = { rows: 0, blobs: 0, bytes: 0 };
  private readonly rowBytes: { estimate: number | null } = { estimate: null };
  /** Wall-clock times, for status(). */
  private times = { success: null as number | null, attempt: null as number | null, error: null as number | null, next: null as number | null };
  /** When the last cycle began and when the next is due, on the monotonic clock (the wall clock steps). */
  private due = { attempt: null as number | null, next: null as number | null };
  /** When the cycle running last moved, wall and monotonic (null: none runs): health() sees a cycle that stopped moving. */
  private progress: { at: number; mono: number } | null = null;

  constructor(private readonly deps: SyncWorkerDeps) {
    this.clock = deps.clock ?? Date.now;
    this.monotonic = deps.monotonic ?? monotonicNow;
    this.batches = new SyncBatches(deps.buffer);
    this.encoder = deps.encoderThread === undefined ? new EncoderThread(deps.buffer.path, { onStart: deps.onEncoderThreadStarted }) : deps.encoderThread;
    this.backoff = new Backoff(deps.settings().backoff, deps.random);
    this.bucket = new TokenBucket(() => this.deps.settings().maxBytesPerSecond, this.monotonic);
  }

  /** Starts the loop: a cycle now, then one per interval (or per backoff delay). */
  start(): void {
    if (this.started) return;
    this.started = true;
    this.abort = new AbortController();
    this.state = 'idle';
    this.retryFailedBatches();
    this.schedule(0);
  }

  /** Failed batches are tried again at each start (the agent's, or the sync's after a stop). */
  private retryFailedBatches(): void {
    try {
      const n = this.batches.retryFailed();
      if (n > 0) this.deps.logger.info({ batches: n }, `${n} batch(es) that could not be uploaded before are tried again`);
    } catch (err) {
      this.deps.logger.warn({ err: { message: classifyFailure(err).message } }, 'failed batches could not be planned again');
    }
  }

  /** Stops the loop, aborts an upload in flight (its batch stays planned) and waits for the cycle to end. */
  async stop(): Promise<void> {
    this.started = false;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.times.next = null;
    this.due.next = null;
    this.abort.abort(new Error('sync stopping'));
    await this.running;
    this.encoder?.close();
    this.state = 'stopped';
  }

  /**
   * Runs a cycle soon when the worker is idle (an anomaly was committed): now, or `kickFloorMs`
   * after the last cycle began, so a pump stuck in an anomaly does not turn every reading into a
   * blob. No effect while backing off.
   */
  kick(): void {
    if (!this.started) return;
    if (this.running !== null) {
      // The anomaly may have come after the cycle's last plan: the next cycle is due at the floor.
      this.kickedWhileRunning = true;
      return;
    }
    if (this.state !== 'idle') return;
    const delay = this.kickDelay();
    if (this.due.next === null || this.monotonic() + delay < this.due.next) this.schedule(delay);
  }

  /** Time until a kicked cycle may start: `kickFloorMs` after the last one began (whole ms, never sooner). */
  private kickDelay(): number {
    if (this.due.attempt === null) return 0;
    return Math.max(0, Math.ceil(this.due.attempt + (this.deps.kickFloorMs ?? KICK_FLOOR_MS) - this.monotonic()));
  }

  /** Runs one cycle now, or joins the one running: cycles never overlap. */
  runOnce(): Promise<CycleResult> {
    this.running ??= this.cycle().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  private schedule(ms: number): void {
    if (this.timer) clearTimeout(this.timer);
    this.times.next = this.clock() + ms;
    this.due.next = this.monotonic() + ms;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.runOnce().then(
        (r) => {
          const kicked = this.kickedWhileRunning;
          this.kickedWhileRunning = false;
          if (this.started) this.schedule(kicked && r.failure === null ? Math.min(r.nextDelayMs, this.kickDelay()) : r.nextDelayMs);
        },
        (err: unknown) => this.deps.logger.error({ err: { message: classifyFailure(err).message } }, 'sync cycle crashed; the loop stops'),
      );
    }, ms);
  }

  private async cycle(): Promise<CycleResult> {
    this.kickedWhileRunning = false; // anomalies committed before the cycle takes its horizon go in it
    const settings = this.deps.settings();
    this.backoff.configure(settings.backoff);
    this.times.attempt = this.clock();
    this.due.attempt = this.monotonic();
    this.state = 'uploading';
    this.contacted = false;
    this.moved();
    const encoder = this.deps.buffer.unsyncedRows > (settings.threadAboveRows ?? THREAD_ABOVE_ROWS) ? this.encoder : null;
    // A retry while the target is known not to answer (offline, refusing, busy) starts on the main
    // thread: during a long outage every retry (up to PUMPWATCH_SYNC_BACKOFF_MAX_SECONDS apart) would
    // start the encoder thread, a second isolate of ~25 MB, only for its first upload to fail. The
    // cycle reads `encoder` at every batch: once the target answered, the drain goes to the thread.
    const untilAnswered = this.failure !== null && this.failure.kind !== 'buffer';
    const contacted = (): boolean => this.contacted;
    try {
      const done = await runCycle({
        batches: this.batches,
        get encoder() {
          return untilAnswered && !contacted() ? null : encoder;
        },
        uploader: this.uploader(),
        bucket: this.bucket,
        limits: planLimits(settings.batchMaxRows, settings.batchMaxBytes, settings.anomalyContextRows),
        rowBytes: this.rowBytes,
        deviceId: this.deps.deviceId,
        agentVersion: this.deps.agentVersion,
        clock: this.clock,
        signal: this.abort.signal,
        logger: this.deps.logger,
        onUploaded: (e) => this.uploaded(e),
        onBatchFailed: (b, m, answered) => this.batchFailed(b, m, answered),
        anomalyFloorMs: this.deps.kickFloorMs ?? KICK_FLOOR_MS,
        onEncoded: this.deps.onEncoded,
      });
      if (this.abort.signal.aborted) return { ...done, failure: null, nextDelayMs: 0 };
      if ((await this.deps.afterReadings?.(this.uploader(), this.abort.signal, this.bucket))?.contacted === true) this.contacted = true;
      this.reportToBuffer(null);
      if (this.contacted) this.succeeded();
      else if (this.failure?.kind === 'buffer') this.bufferWorksAgain(); // the target was not asked: no news of it
      else this.state = 'idle'; // nothing was sent: no news of the target, a failure known stays
      // Rows committed during the cycle wait for the next one; an anomaly's kick meanwhile makes it due sooner.
      return { ...done, failure: null, nextDelayMs: settings.intervalMs };
    } catch (err) {
      if (this.abort.signal.aborted) return { rows: 0, blobs: 0, failure: null, nextDelayMs: 0 };
      // A SQLite error the buffer did not word yet gets its code (PW_BUFFER_CORRUPT, …) and the file's name.
      const classified = classifyFailure(isSqliteError(err) ? classifySqliteError(err, this.deps.buffer.path, 'syncing') : err, this.clock());
      const failure = explainExpiry(classified, this.deps.credentialExpiresAt?.() ?? null, this.clock());
      const nextDelayMs = this.failed(failure);
      return { rows: 0, blobs: 0, failure, nextDelayMs };
    } finally {
      this.progress = null;
    }
  }

  private moved(): void {
    this.progress = { at: this.clock(), mono: this.monotonic() };
  }

  /**
   * How long a cycle may go without a batch done before health() calls it stuck: the limit of one
   * request carrying the largest batch (sync/deadline.ts; its uncompressed size, above any blob's)
   * plus the bandwidth cap's wait for it. Each request is given up well before; this catches a
   * hang anywhere else.
   */
  private stallLimitMs(): number {
    const { batchMaxBytes, maxBytesPerSecond } = this.deps.settings();
    const wait = maxBytesPerSecond > 0 ? Math.ceil((batchMaxBytes * 1000) / maxBytesPerSecond) : 0;
    return requestCapMs(batchMaxBytes, this.uploaderInstance?.idleTimeoutMs ?? DEFAULT_IDLE_MS) + wait;
  }

  private uploader(): BlobUploader {
    this.uploaderInstance ??= this.deps.uploader();
    return this.uploaderInstance;
  }

  private uploaded(e: UploadedEvent): void {
    this.counts.rows += e.rows;
    this.counts.blobs++;
    this.counts.bytes += e.bytes;
    this.contacted = true;
    this.moved();
    this.times.success = this.clock();
    this.setConnectivity('online');
    this.deps.onUploaded?.(e);
  }

  private batchFailed(batch: PlannedBatch, message: string, answered: boolean): void {
    this.moved();
    this.lastConflict = message;
    this.lastError = message;
    this.times.error = this.clock();
    if (answered) {
      this.contacted = true;
      this.setConnectivity('online');
    }
    this.deps.logger.error({ blob: batch.blobName, firstSeq: batch.firstSeq, lastSeq: batch.lastSeq, err: { message } }, 'a batch cannot be uploaded: reported, not overwritten');
    this.deps.onFailure?.({ kind: 'conflict', heals: false, message });
  }

  /**
   * Tells the buffer what the sync met of it, so its /healthz check names a corrupt page or a lock
   * the sync's reads hit (the store's own use may never touch those pages): set on a buffer failure,
   * cleared once a cycle gets past the buffer (it ends, or fails on something else).
   */
  private reportToBuffer(failure: SyncFailure | null): void {
    const error = failure?.kind === 'buffer' ? new BufferError(failure.code ?? 'PW_BUFFER_IO', failure.detail ?? failure.message) : null;
    try {
      this.deps.buffer.reportFailure('sync', error);
    } catch {
      // the sync's own status still says it
    }
  }

  /** A cycle got through the buffer after a buffer failure, without asking the target: connectivity stays as it was. */
  private bufferWorksAgain(): void {
    this.backoff.reset();
    this.deps.logger.info({ connectivity: this.connectivity }, 'sync reads the buffer again');
    this.failure = null;
    this.state = 'idle';
  }

  /** The cycle ended after the service answered: the target works (a failure known is over). */
  private succeeded(): void {
    this.backoff.reset();
    if (this.failure) this.deps.logger.info({ connectivity: this.connectivity }, 'sync works again');
    this.failure = null;
    this.state = 'idle';
    this.times.success = this.clock();
    this.setConnectivity('online');
  }

  /** Records a failure and returns the delay before the next cycle. */
  private failed(failure: SyncFailure): number {
    const delay = this.backoff.next(failure);
    const changed = this.failure?.kind !== failure.kind || this.failure?.message !== failure.message;
    const log = { kind: failure.kind, status: failure.status, code: failure.code, retryInMs: delay, err: { message: failure.message } };
    if (!changed) this.deps.logger.debug(log, 'sync failed again');
    else if (failure.heals) this.deps.logger.warn(log, 'sync failed; retrying with backoff');
    else this.deps.logger.error(log, 'sync failed and will not heal by itself; retrying slowly');
    this.failure = failure;
    this.lastError = failure.message;
    this.times.error = this.clock();
    this.state = failure.heals ? 'retrying' : 'blocked';
    this.reportToBuffer(failure);
    // Connectivity is news of the target only: a buffer failure says nothing of it ('buffer' has no entry).
    const connectivity = CONNECTIVITY[failure.kind];
    if (connectivity) this.setConnectivity(connectivity);
    this.deps.onFailure?.(failure);
    return delay;
  }

  private setConnectivity(c: BlobConnectivity): void {
    if (c === this.connectivity) return;
    this.deps.logger.info({ from: this.connectivity, to: c }, 'blob connectivity changed');
    this.connectivity = c;
  }

  blobConnectivity(): BlobConnectivity {
    return this.connectivity;
  }

  status(): SyncWorkerStatus {
    return {
      state: this.state,
      connectivity: this.connectivity,
      lastSuccessAt: iso(this.times.success),
      lastAttemptAt: iso(this.times.attempt),
      uploadingSince: this.progress === null ? null : iso(this.times.attempt),
      lastProgressAt: this.progress === null ? null : iso(this.progress.at),
      lastError: this.lastError,
      lastErrorAt: iso(this.times.error),
      nextAttemptAt: this.timer ? iso(this.times.next) : null,
      uploadedRows: this.counts.rows,
      uploadedBlobs: this.counts.blobs,
      uploadedBytes: this.counts.bytes,
      failedBatches: this.failedBatches(),
    };
  }

  /**
   * Unhealthy when a person must act: credentials (or a gateway clock the service refuses),
   * container, or a batch that can never upload; and when a cycle has stopped moving (stallLimitMs):
   * it looked healthy while one request hung for hours. A buffer failure is the buffer's check's to
   * name (reportToBuffer), not the sync's.
   */
  health(): { ok: boolean; error?: string } {
    const stuck = this.stuck();
    if (stuck !== null) return { ok: false, error: stuck };
    if (this.failure && (!this.failure.heals || this.failure.kind === 'unauthorized') && this.failure.kind !== 'buffer') return { ok: false, error: this.failure.message };
    const failed = this.failedBatches();
    if (failed > 0) return { ok: false, error: `${failed} batch(es) cannot be uploaded; last: ${this.lastConflict ?? 'see the sync_batches table'}` };
    return { ok: true };
  }

  private stuck(): string | null {
    if (this.progress === null) return null;
    const still = this.monotonic() - this.progress.mono;
    const limit = this.stallLimitMs();
    if (still <= limit) return null;
    return (
      `the sync cycle that began at ${iso(this.times.attempt)} has not moved for ${Math.round(still / 60_000)} min ` +
      `(since ${iso(this.progress.at)}; the limit is ${Math.round(limit / 60_000)} min): it is stuck`
    );
  }

  private failedBatches(): number {
    try {
      return this.batches.failed().length;
    } catch {
      return 0;
    }
  }
}
