/**
 * Sync's encoder thread: reading a batch's rows and serialising them (a few milliseconds of CPU per
 * batch) run on a worker thread with its own read-only connection, so a drain of a large backlog
 * uses the second core and never holds up live scoring on the main thread (bench/sync measures
 * both). The thread starts on the first batch and ends after `idleMs` without work, so an agent
 * with nothing to upload carries no second V8 isolate. If the thread cannot run (its script
 * missing, out of memory), `encode` rejects with EncoderThreadError and the cycle encodes on the
 * main thread instead: slower, never stuck. The thread is then tried again after `restMs`.
 */
import { Worker } from 'node:worker_threads';
import type { EncodedBatch, RowsExtent } from './encoder.js';

export type EncodeRequest =
  | { id: number; kind: 'plan'; pumpId: string; from: number; bound: number | null; maxRows: number; maxBytes: number; deviceId: string }
  | { id: number; kind: 'range'; pumpId: string; firstSeq: number; lastSeq: number; deviceId: string };

/** Distributes Omit over the request union (a plain Omit would merge its members). */
type WithoutId<T> = T extends unknown ? Omit<T, 'id'> : never;

export interface EncodedRows extends RowsExtent {
  encoded: EncodedBatch;
}

export type EncodeReply =
  | {
      id: number;
      ok: true;
      batch: (Omit<EncodedRows, 'encoded'> & { body: Uint8Array; sha256: string; rawSha256: string; rawBytes: number }) | null;
    }
  | { id: number; ok: false; error: string };

/** The thread could not do the work (not a problem of the rows): encode on the main thread instead. */
export class EncoderThreadError extends Error {
  constructor(
    message: string,
    options?: { cause?: unknown },
    /** True when this repeats an earlier failure (the thread is resting): worth no new warning. */
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
  resolve: (rows: EncodedRows | null) => void;
  reject: (err: Error) => void;
}

export class EncoderThread {
  private worker: Worker | null = null;
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private idleTimer: NodeJS.Timeout | null = null;
  /** After a failure the thread rests (no respawn per batch); until then work is refused at once. */
  private failure: { message: string; until: number } | null = null;

  constructor(
    private readonly dbPath: string,
    private readonly options: { idleMs?: number; entry?: URL; restMs?: number } = {},
  ) {}

  /** True while a thread is running (for tests and /status). */
  get running(): boolean {
    return this.worker !== null;
  }

  /** Reads, sizes and encodes rows on the thread; null when the buffer holds no such rows. */
  encode(req: WithoutId<EncodeRequest>): Promise<EncodedRows | null> {
    if (this.failure !== null && Date.now() < this.failure.until) {
      return Promise.reject(new EncoderThreadError(this.failure.message, undefined, true));
    }
    const worker = this.ensure();
    const id = this.nextId++;
    this.stopIdleTimer();
    return new Promise<EncodedRows | null>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id } as EncodeRequest);
    });
  }

  /** Ends the thread (pending work is rejected). */
  close(): void {
    const worker = this.worker;
    if (worker === null) return;
    this.worker = null;
    this.stopIdleTimer();
    this.failAll(new EncoderThreadError('the encoder thread was stopped'));
    worker.postMessage('stop');
  }

  private ensure(): Worker {
    if (this.worker !== null) return this.worker;
    const worker = new Worker(this.options.entry ?? entryUrl(), { workerData: { path: this.dbPath }, resourceLimits: THREAD_LIMITS });
    worker.unref();
    worker.on('message', (reply: EncodeReply) => this.settle(reply));
    worker.on('error', (err) => this.lost(worker, err));
    worker.on('exit', (code) => this.lost(worker, new Error(`exited with code ${code}`)));
    this.worker = worker;
    return worker;
  }

  private settle(reply: EncodeReply): void {
    const p = this.pending.get(reply.id);
    if (p === undefined) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.startIdleTimer();
    if (!reply.ok) {
      p.reject(new Error(reply.error));
      return;
    }
    const b = reply.batch;
    if (b === null) {
      p.resolve(null);
      return;
    }
    const { body, sha256, rawSha256, rawBytes, ...range } = b;
    p.resolve({ ...range, encoded: { body: Buffer.from(body.buffer, body.byteOffset, body.byteLength), sha256, rawSha256, rawBytes, rowCount: b.rowCount } });
  }

  private lost(worker: Worker, err: Error): void {
    if (this.worker !== worker) return;
    this.worker = null;
    this.stopIdleTimer();
    const message = `the encoder thread failed: ${err.message}`;
    this.failure = { message, until: Date.now() + (this.options.restMs ?? 600_000) };
    this.failAll(new EncoderThreadError(message, { cause: err }));
  }

  private failAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private startIdleTimer(): void {
    this.stopIdleTimer();
    this.idleTimer = setTimeout(() => this.close(), this.options.idleMs ?? 30_000);
    this.idleTimer.unref();
  }

  private stopIdleTimer(): void {
    if (this.idleTimer !== null) clearTimeout(this.idleTimer);
    this.idleTimer = null;
  }
}
