/**
 * Sync's encoder thread: reading a batch's rows, serialising them, and uploading the blob run on a
 * worker thread with its own read-only connection and its own Blob Storage client, so a drain of a
 * large backlog uses the second core and leaves live scoring on the main thread alone (bench/sync
 * measures both). The main thread only picks where a batch starts, persists the plan, and marks
 * it synced: the rows, the compressed bytes, the HTTP requests and their garbage stay here.
 *
 * A batch's bytes stay on the thread ("held") between encoding and upload, so the plan can be
 * persisted first; they are dropped after the upload attempt or on `release`. Upload failures are
 * classified on the thread and cross as data (codes, status, Retry-After, a safe message).
 *
 * The thread starts on the first batch and ends after `idleMs` without work or held bytes, so an
 * agent with nothing to upload carries no second V8 isolate. If the thread cannot run (its script
 * missing, out of memory), calls reject with EncoderThreadError and the cycle does the work on the
 * main thread instead: slower, never stuck. The thread is then tried again after `restMs`.
 */
import { Worker } from 'node:worker_threads';
import { RowsUnreadableError, type UnreadableRun } from '../buffer/unreadable.js';
import { ClassifiedFailure, type SyncFailure } from './backoff.js';
import { monotonicNow } from './clock.js';
import type { EncodedBatch, RowsExtent } from './encoder.js';
import type { UploaderSpec, UploadOutcome } from './uploader.js';

export type EncodeRequest =
  | { id: number; kind: 'plan'; pumpId: string; from: number; bound: number | null; maxRows: number; maxBytes: number; deviceId: string; bufferId?: string | null; hold: boolean; file?: string | null }
  | { id: number; kind: 'range'; pumpId: string; firstSeq: number; lastSeq: number; deviceId: string; bufferId?: string | null; hold: boolean; file?: string | null };

export interface UploadHeldRequest {
  id: number;
  kind: 'upload';
  /** The id of the encode request whose bytes the thread holds. */
  bodyId: number;
  blobName: string;
  metadata: Record<string, string>;
  spec: UploaderSpec;
}

export type ThreadMessage = EncodeRequest | UploadHeldRequest | { kind: 'abort'; id: number } | { kind: 'release'; bodyId: number } | { kind: 'stop' };

/** Distributes Omit over the request union (a plain Omit would merge its members). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

/** An encoded batch without its bytes, plus their length. */
export type EncodedSummary = Omit<EncodedBatch, 'body'> & { bytes: number };

/** A batch's bytes kept on the encoder thread until it uploads them. */
export class HeldBody {
  constructor(
    readonly id: number,
    readonly bytes: number,
  ) {}
}

export interface EncodedRows extends RowsExtent {
  encoded: EncodedSummary;
  /** The bytes themselves (encoded on the main thread, or not held), or where the thread keeps them. */
  body: Buffer | HeldBody;
  /**
   * Rows of the batch whose contributions cannot be decoded, encoded with `contributions: null`:
   * their PW_BUFFER_INVALID_ROW messages (read on the encoder thread; the main thread's reads record them themselves).
   */
  undecodable?: string[];
}

export type EncodeReply =
  | { id: number; ok: true; batch: (RowsExtent & EncodedSummary & { body: Uint8Array | null; undecodable?: string[] }) | null }
  | { id: number; ok: true; outcome: UploadOutcome }
  | { id: number; ok: false; error: string; failure?: SyncFailure; lost?: boolean; elsewhere?: boolean; unreadable?: UnreadableRun };

/** The thread could not do the work (not a problem of the rows): do it on the main thread instead. */
export class EncoderThreadError extends Error {
  constructor(
    message: string,
    options?: { cause?: unknown },
    /**
     * True when worth no new warning: it repeats an earlier failure (the thread is resting), or the
     * buffer file at the path is not the store's for a moment (the store reports that event itself).
     */
    readonly repeat = false,
  ) {
    super(message, options);
    this.name = 'EncoderThreadError';
  }
}

/** The compiled entry: beside this file in dist/, or in dist/ when the sources run under the test runner. */
function entryUrl(): URL {
  const here = import.meta.url;
  return here.endsWith('.ts') ? new URL('../dist/sync/encoder-thread-main.js', here) : new URL('./encoder-thread-main.js', here);
}

/** V8 heap limits of the thread (MB): a batch is at most a few MB of rows and text. */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 8, maxOldGenerationSizeMb: 128 };

interface Pending {
  resolve: (value: EncodedRows | UploadOutcome | null) => void;
  reject: (err: Error) => void;
}

export class EncoderThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  /** Ids of the bytes the running thread holds for uploads to come. */
  private readonly held = new Set<number>();
  private idleTimer: NodeJS.Timeout | null = null;
  /**
   * After a failure the thread rests (no respawn per batch); until then (monotonic ms: a clock
   * stepped back by NTP must not stretch the rest by hours) work is refused at once.
   */
  private failure: { message: string; until: number } | null = null;

  constructor(
    private readonly dbPath: string,
    /** `onStart`: a thread was started (a second V8 isolate: /metrics counts them). */
    private readonly options: { idleMs?: number; entry?: URL; restMs?: number; onStart?: () => void } = {},
  ) {}

  /** True while a thread is running (for tests and /status). */
  get running(): boolean {
    return this.worker !== null;
  }

  /**
   * Reads, sizes and encodes rows on the thread; null when the buffer holds no such rows. With
   * `hold`, the bytes stay there for `upload`. Rejects with RowsUnreadableError, as the buffer's own
   * reads do, when a damaged page keeps the first rows (a planned range: any row) from being read.
   */
  encode(req: WithoutId<EncodeRequest>): Promise<EncodedRows | null> {
    return this.call<EncodedRows | null>(req).done;
  }

  /** Uploads bytes the thread holds, with an uploader built there from `spec`; failures reject as ClassifiedFailure. */
  upload(body: HeldBody, req: Omit<UploadHeldRequest, 'id' | 'kind' | 'bodyId'>, signal?: AbortSignal): Promise<UploadOutcome> {
    if (!this.held.has(body.id)) {
      return Promise.reject(new EncoderThreadError(`the bytes of ${req.blobName} were lost with the encoder thread that held them`));
    }
    if (signal?.aborted) {
      this.release(body);
      return Promise.reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    }
    this.held.delete(body.id); // the thread drops them after this upload, whatever its outcome
    const { id, done } = this.call<UploadOutcome>({ kind: 'upload', bodyId: body.id, ...req });
    if (signal === undefined) return done;
    const onAbort = (): void => {
      this.worker?.postMessage({ kind: 'abort', id } satisfies ThreadMessage);
      this.settle({ id, ok: false, error: signal.reason instanceof Error ? signal.reason.message : 'aborted' });
    };
    signal.addEventListener('abort', onAbort, { once: true });
    return done.finally(() => signal.removeEventListener('abort', onAbort));
  }

  /** Drops bytes held for an upload that will not happen. */
  release(body: HeldBody): void {
    if (!this.held.delete(body.id)) return;
    this.worker?.postMessage({ kind: 'release', bodyId: body.id } satisfies ThreadMessage);
    this.idleIfDone();
  }

  /** Ends the thread (pending work is rejected, held bytes dropped). */
  close(): void {
    const worker = this.worker;
    if (worker === null) return;
    this.worker = null;
    this.stopIdleTimer();
    this.failAll(new EncoderThreadError('the encoder thread was stopped'));
    worker.postMessage({ kind: 'stop' } satisfies ThreadMessage);
  }

  private call<T extends EncodedRows | UploadOutcome | null>(req: WithoutId<EncodeRequest> | Omit<UploadHeldRequest, 'id'>): { id: number; done: Promise<T> } {
    const id = this.nextId++;
    if (this.failure !== null && monotonicNow() < this.failure.until) {
      return { id, done: Promise.reject(new EncoderThreadError(this.failure.message, undefined, true)) };
    }
    const worker = this.ensure();
    this.stopIdleTimer();
    const done = new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as Pending['resolve'], reject });
      worker.postMessage({ ...req, id } satisfies ThreadMessage);
    });
    return { id, done };
  }

  private ensure(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(this.options.entry ?? entryUrl(), { workerData: { path: this.dbPath }, resourceLimits: THREAD_LIMITS });
    worker.unref();
    worker.on('message', (reply: EncodeReply) => this.settle(reply));
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', (code) => this.lost(worker, new Error(`exited with code ${code}`)));
    this.worker = worker;
    this.options.onStart?.();
    return worker;
  }

  private settle(reply: EncodeReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined) return;
    this.pending.delete(reply.id);
    const b = reply.ok && 'batch' in reply ? reply.batch : null;
    if (b?.body === null) this.held.add(reply.id); // before the idle check: held bytes keep the thread
    this.idleIfDone();
    if (!reply.ok) {
      if (reply.unreadable) p.reject(new RowsUnreadableError(reply.unreadable));
      else if (reply.failure) p.reject(new ClassifiedFailure(reply.failure));
      // `elsewhere`: the file at the path is not the store's yet (the store says so itself): this batch only, quietly.
      else if (reply.lost || reply.elsewhere) p.reject(new EncoderThreadError(reply.error, undefined, reply.elsewhere === true));
      else p.reject(new Error(reply.error));
      return;
    }
    if ('outcome' in reply) {
      p.resolve(reply.outcome);
      return;
    }
    if (b === null) {
      p.resolve(null);
      return;
    }
    const { body, sha256, rawSha256, rawBytes, bytes, undecodable, ...extent } = b;
    const encoded: EncodedSummary = { sha256, rawSha256, rawBytes, rowCount: b.rowCount, bytes };
    const rows: EncodedRows = { ...extent, encoded, body: body === null ? new HeldBody(reply.id, bytes) : Buffer.from(body.buffer, body.byteOffset, body.byteLength) };
    if (undecodable !== undefined) rows.undecodable = undecodable;
    p.resolve(rows);
  }

  private lost(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.stopIdleTimer();
    const message = `the encoder thread failed: ${err.message}`;
    this.failure = { message, until: monotonicNow() + (this.options.restMs ?? 600_000) };
    this.failAll(new EncoderThreadError(message, { cause: err }));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.held.clear();
  }

  /** Starts the idle countdown once nothing is pending and no bytes are held. */
  private idleIfDone(): void {
    if (this.worker === null || this.pending.size > 0 || this.held.size > 0) return;
    this.stopIdleTimer();
    this.idleTimer = setTimeout(() => this.close(), this.options.idleMs ?? 30_000);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}
