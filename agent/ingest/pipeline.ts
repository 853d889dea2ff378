import type { BufferStore } from '../../buffer/store.js';
import type { PredictionRow, Reading, RejectedItem } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import type { AgentMetrics } from '../metrics.js';
import type { PumpRoster } from './pump-roster.js';
import { jsonPreview } from './untrusted-json.js';
import { safeErrorMessage } from '../../sync/redact.js';
import { DEFAULT_LIMITS, PUMP_ID_PATTERN, validateReading, type Validated, type ValidationLimits } from './validate.js';

export interface IngestResult {
  accepted: number;
  rejected: Array<{ index: number; error: string }>;
  /** Sequence numbers of the accepted readings, in order. */
  seqs: number[];
}

/** Called after a micro-batch is committed, with its rows and their sequence numbers (alerts, page). */
export type CommitListener = (rows: readonly PredictionRow[], seqs: readonly number[]) => void;

/** A refused item whose pumpId could be read (a string that passes the pump-id rule). */
export interface RefusedReading {
  pumpId: string;
  reason: string;
  receivedAt: number;
  /** Refused because the gateway is at PUMPWATCH_MAX_PUMPS, not for its content. */
  overLimit: boolean;
  /** The pump is one whose readings are taken (counted against PUMPWATCH_MAX_PUMPS); false when unknown or over the limit. */
  knownPump: boolean;
}

/**
 * Called after refused items are stored, with those whose pump could be read: a pump whose every
 * reading is refused (a firmware update sends values as strings) must not look silent on the page.
 */
export type RefusalListener = (refused: readonly RefusedReading[]) => void;

/**
 * A reading that reached the agent and could not be stored (the buffer failed: a full disk, a
 * read-only or closed buffer, its scoring failed): `ts` its own time when it was valid, null for a
 * refused one whose refusal could not be stored either. The sender is told nothing was stored.
 */
export interface UnstoredReading {
  pumpId: string;
  ts: number | null;
  receivedAt: number;
}

/**
 * Called with readings that reached the agent and could not be stored: a pump that keeps sending
 * while the disk is full has not gone quiet (the silence alerts count it heard).
 */
export type UnstoredListener = (unstored: readonly UnstoredReading[]) => void;

interface Pending {
  readings: Reading[];
  acceptedAt: number;
  resolve: (seqs: number[]) => void;
  reject: (err: unknown) => void;
}

export interface PipelineDeps {
  engine: InferenceEngine;
  buffer: BufferStore;
  metrics: AgentMetrics;
  clock?: () => number;
  maxBatch?: number;
  limits?: () => ValidationLimits;
  /** The pumps readings are taken of (at most PUMPWATCH_MAX_PUMPS); default: any number. */
  pumps?: PumpRoster;
  onError?: (err: unknown) => void;
}

/**
 * Raw items sorted: the good readings (not yet queued) and the refused items (already stored);
 * `refused` those whose pump can be read, for `tellRefused` once the good readings are submitted.
 */
export interface Screened {
  readings: Reading[];
  rejected: IngestResult['rejected'];
  refused: RefusedReading[];
}

/**
 * The one path every reading takes, whatever its source (HTTP, IoT Edge input, simulator):
 * validate → queue → micro-batch (across sources and pumps) → inference → one SQLite transaction.
 * A caller's promise resolves only after its readings are committed. Batches run one at a time,
 * so per-pump windows advance in arrival order and model swaps happen between batches.
 */
export class IngestPipeline {
  private queue: Pending[] = [];
  private running: Promise<void> | null = null;
  private readonly listeners: CommitListener[] = [];
  private readonly refusalListeners: RefusalListener[] = [];
  private readonly unstoredListeners: UnstoredListener[] = [];
  private readonly clock: () => number;
  private readonly maxBatch: number;
  /** The micro-batch being scored and committed now, if any. */
  private inFlight: Promise<void> | null = null;

  constructor(private readonly deps: PipelineDeps) {
    this.clock = deps.clock ?? Date.now;
    this.maxBatch = deps.maxBatch ?? 8192;
  }

  onCommit(listener: CommitListener): void {
    this.listeners.push(listener);
  }

  onRefuse(listener: RefusalListener): void {
    this.refusalListeners.push(listener);
  }

  onUnstored(listener: UnstoredListener): void {
    this.unstoredListeners.push(listener);
  }

  /**
   * Validates raw items and commits the good ones; bad ones are stored in `rejected` with their
   * reason and counted. Resolves after the commit; rejects (nothing committed) when the buffer fails.
   * The refusals are stored after the good readings commit: when that fails the caller is told
   * nothing was stored and sends the request again, which then stores its refusals once.
   */
  async ingest(items: readonly unknown[], source: string, rawOf: (i: number) => string = (i) => jsonPreview(items[i])): Promise<IngestResult> {
    const now = this.clock();
    const { readings, rejected, refused } = this.validate(items, now);
    const refusals = refusalsOf(rejected, source, rawOf, now);
    if (readings.length === 0) {
      this.rejectOrTell(refusals, refused);
      this.tellRefused(refused);
      return { accepted: 0, rejected, seqs: [] };
    }
    let seqs: number[];
    try {
      seqs = await this.submit(readings); // a failed batch tells its readings unstored (runBatch)
    } catch (err) {
      this.tellUnstored(refused.map(unstoredRefusal)); // nor was any refusal of the request stored
      throw err;
    }
    try {
      this.reject(refusals);
    } catch (err) {
      // The good readings are committed, and the answer lists every refusal: failing it now would
      // have the sender send them again.
      this.deps.metrics.rejected.inc(refusals.length);
      this.deps.onError?.(err);
    }
    this.tellRefused(refused);
    return { accepted: readings.length, rejected, seqs };
  }

  /**
   * Validates raw items and stores the refused ones with their reason, once; the good readings are
   * returned for `submit`. A caller that retries a failed commit retries `submit` only, so a
   * refusal is never stored twice. Throws (nothing stored) when the refusals cannot be stored. The
   * refusal listeners are told by the caller (`tellRefused`) after it submitted the good readings,
   * as ingest() tells them after the commit: a pump alerted silent whose message holds a refused
   * reading among good ones resumes at its first good reading, with the readings it missed.
   */
  screen(items: readonly unknown[], source: string, rawOf: (i: number) => string = (i) => jsonPreview(items[i])): Screened {
    const now = this.clock();
    const screened = this.validate(items, now);
    this.rejectOrTell(refusalsOf(screened.rejected, source, rawOf, now), screened.refused);
    return screened;
  }

  /** Stores refused items; when they cannot be stored, tells their readings unstored, and throws. */
  private rejectOrTell(refusals: readonly RejectedItem[], refused: readonly RefusedReading[]): void {
    try {
      this.reject(refusals);
    } catch (err) {
      this.tellUnstored(refused.map(unstoredRefusal));
      throw err;
    }
  }

  /**
   * The good readings of raw items, the index and reason of each refused one, and the refused
   * ones whose pump can be read (for the page).
   */
  private validate(items: readonly unknown[], now: number): Screened {
    const limits = this.deps.limits?.() ?? DEFAULT_LIMITS;
    const readings: Reading[] = [];
    const rejected: IngestResult['rejected'] = [];
    const refused: RefusedReading[] = [];
    for (let i = 0; i < items.length; i++) {
      const v = validatedOrFault(items[i], now, limits);
      if (v.ok) {
        const overLimit = this.deps.pumps?.admit(v.reading.pumpId) ?? null;
        if (overLimit === null) {
          readings.push(v.reading);
          continue;
        }
        rejected.push({ index: i, error: overLimit });
        refused.push({ pumpId: v.reading.pumpId, reason: overLimit, receivedAt: now, overLimit: true, knownPump: false });
      } else {
        rejected.push({ index: i, error: v.error });
        const pumpId = readablePumpId(items[i]);
        if (pumpId !== null) refused.push({ pumpId, reason: v.error, receivedAt: now, overLimit: false, knownPump: this.deps.pumps?.has(pumpId) ?? false });
      }
    }
    return { readings, rejected, refused };
  }

  /** Tells the refusal listeners (the page's board, the silence alerts) of stored refusals; a listener's fault is logged, never thrown. */
  tellRefused(refused: readonly RefusedReading[]): void {
    if (refused.length === 0) return;
    for (const l of this.refusalListeners) this.notify(l, refused);
  }

  /** Tells the unstored listeners of readings that reached the agent and could not be stored. */
  private tellUnstored(unstored: readonly UnstoredReading[]): void {
    if (unstored.length === 0) return;
    for (const l of this.unstoredListeners) this.notify(l, unstored);
  }

  /** Stores refused items (with their reason) and counts them. */
  reject(items: readonly RejectedItem[]): void {
    if (items.length === 0) return;
    this.deps.buffer.appendRejected(items);
    this.deps.metrics.rejected.inc(items.length);
  }

  /** Queues validated readings; resolves with their sequence numbers once committed. */
  submit(readings: Reading[]): Promise<number[]> {
    return new Promise<number[]>((resolve, reject) => {
      this.queue.push({ readings, acceptedAt: this.clock(), resolve, reject });
      this.running ??= this.drain();
    });
  }

  /**
   * Resolves when the batch in flight now (if any) has finished. A model swapped in before this call
   * is used by every later batch, so after this the old model's session is no longer in use.
   */
  async afterCurrentBatch(): Promise<void> {
    await this.inFlight;
  }

  /** Resolves when no batch is running and the queue is empty (clean stop). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0) {
        this.inFlight = this.runBatch(this.take());
        await this.inFlight;
        this.inFlight = null;
      }
    } finally {
      this.running = null;
    }
  }

  private take(): Pending[] {
    const batch: Pending[] = [];
    let n = 0;
    while (this.queue.length > 0 && (n === 0 || n + this.queue[0]!.readings.length <= this.maxBatch)) {
      const p = this.queue.shift()!;
      batch.push(p);
      n += p.readings.length;
    }
    return batch;
  }

  private async runBatch(batch: Pending[]): Promise<void> {
    const { engine, buffer, metrics } = this.deps;
    const readings = batch.length === 1 ? batch[0]!.readings : batch.flatMap((p) => p.readings);
    let uncommitted = false; // scored, and the commit has not succeeded
    try {
      const t0 = performance.now();
      const rows = await engine.score(readings, this.clock());
      uncommitted = true;
      const t1 = performance.now();
      const seqs = buffer.appendBatch(rows);
      uncommitted = false;
      const t2 = performance.now();
      this.count(rows, (t1 - t0) / 1000, (t2 - t1) / 1000);
      let offset = 0;
      const committedAt = this.clock();
      for (const p of batch) {
        p.resolve(seqs.slice(offset, offset + p.readings.length));
        offset += p.readings.length;
        metrics.readingLatencySeconds.observe((committedAt - p.acceptedAt) / 1000, p.readings.length);
      }
      for (const l of this.listeners) this.notify(l, rows, seqs);
    } catch (err) {
      // Nothing was committed: the windows forget these readings, so a retry does not count them twice.
      if (uncommitted) engine.forgetLastScore();
      for (const p of batch) p.reject(err);
      this.deps.onError?.(err);
      this.tellUnstored(batch.flatMap((p) => p.readings.map((r) => ({ pumpId: r.pumpId, ts: r.ts, receivedAt: p.acceptedAt }))));
    }
  }

  /** Calls a listener (of commits, of refusals); its fault is reported, never thrown into the pipeline. */
  private notify<A extends unknown[]>(listener: (...args: A) => void, ...args: A): void {
    try {
      listener(...args);
    } catch (err) {
      this.deps.onError?.(err);
    }
  }

  private count(rows: readonly PredictionRow[], inferenceS: number, commitS: number): void {
    const m = this.deps.metrics;
    let scored = 0;
    let anomalies = 0;
    let imputed = 0;
    for (const r of rows) {
      if (r.score !== null) scored++;
      if (r.anomaly) anomalies++;
      if (r.imputed) imputed++;
    }
    m.accepted.inc(rows.length);
    m.scored.inc(scored);
    m.unscored.inc(rows.length - scored);
    m.anomalies.inc(anomalies);
    m.imputed.inc(imputed);
    m.inferenceSeconds.observe(inferenceS);
    m.commitSeconds.observe(commitS);
    m.batchSize.observe(rows.length);
  }
}

/** The pumpId of a refused item when it is a string that passes the pump-id rule, else null (garbage makes no card). */
function readablePumpId(item: unknown): string | null {
  if (typeof item !== 'object' || item === null) return null;
  const id = (item as { pumpId?: unknown }).pumpId;
  return typeof id === 'string' && PUMP_ID_PATTERN.test(id) ? id : null;
}

const unstoredRefusal = (r: RefusedReading): UnstoredReading => ({ pumpId: r.pumpId, ts: null, receivedAt: r.receivedAt });

/** The refused items as the buffer keeps them: their raw text and reason. */
function refusalsOf(rejected: IngestResult['rejected'], source: string, rawOf: (i: number) => string, receivedAt: number): RejectedItem[] {
  return rejected.map((r) => ({ source, raw: rawOf(r.index), reason: r.error, receivedAt }));
}

/**
 * A reading's validation, where a fault of the validation itself (a value no check foresaw) refuses
 * that item with the fault named, instead of throwing for the whole batch: thrown, it answered a
 * 500 that lost the batch's good readings over HTTP, and held an edgeHub message (and every one
 * after it) in a retry that never ends, since the same message fails the same way each time.
 */
function validatedOrFault(item: unknown, now: number, limits: ValidationLimits): Validated {
  try {
    return validateReading(item, now, limits);
  } catch (err) {
    return { ok: false, error: `this reading could not be validated (an agent fault, please report it): ${safeErrorMessage(err)}` };
  }
}
