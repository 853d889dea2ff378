/**
 * The check that fits a pump's first model on the gateway (README, "A first model fitted on the
 * gateway"): every 10 minutes and once shortly after start (agent/wiring/first-model.ts), while
 * PUMPWATCH_FIRST_MODEL_AFTER_HOURS (twin `firstModel.afterHours`) is not 0. A pump is fitted when
 * it is scored by the `default` model, the twin names no model for it, it never ran one from the
 * cloud, and it has no first model yet (or its last refusal is past its retry); one pump at a time
 * for the whole gateway. Its rows are read from the buffer in pages with a turn of the event loop
 * between them (the newest 7 days, at most 250 000 rows, oldest first), the fit runs off the event
 * loop (first-model/fit.ts), and a fitted model is written to the model store, recorded
 * (state.ts), then handed to the model updater as a local entry: it is loaded, validated on the
 * pump's recent readings and switched in as a model from the cloud is.
 */
import type { BufferStore } from '../../buffer/store.js';
import type { StoredRow } from '../../buffer/types.js';
import type { InferenceEngine } from '../../inference/engine.js';
import { DEFAULT_MODEL_KEY } from '../../inference/engine.js';
import type { ModelStore } from '../../inference/model-store.js';
import { GATEWAY_ORIGIN, type ModelUpdater } from '../../inference/updater.js';
import type { Logger } from '../logger.js';
import type { FirstModelFitRequest, FirstModelFitResult } from './fit.js';
import type { FirstModelStates, FirstModelsView } from './state.js';

const HOUR_MS = 3_600_000;
/** The newest readings a fit takes, by reading time and by count. */
export const FIRST_MODEL_WINDOW_MS = 7 * 24 * HOUR_MS;
export const FIRST_MODEL_MAX_ROWS = 250_000;
/** Rows read per page (one synchronous SQLite read: a few milliseconds each). */
const PAGE_ROWS = 5_000;

export interface FirstModelJobDeps {
  /** The setting in force (0: off). */
  afterHours: () => number;
  buffer: Pick<BufferStore, 'pumpIds' | 'predictions'>;
  engine: Pick<InferenceEngine, 'model'>;
  store: ModelStore;
  states: FirstModelStates;
  updater: ModelUpdater;
  /** The fit (default: fitFirstModel, in a worker thread). */
  fit?: (req: FirstModelFitRequest) => Promise<FirstModelFitResult>;
  clock: () => number;
  logger: Logger;
  /** Rows per page read from the buffer (default 5 000). */
  pageRows?: number;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class FirstModelJob {
  private running: Promise<void> | null = null;
  private stopped = false;
  private checks = 0;
  private lastCheckAt: number | null = null;
  private fitting: string | null = null;

  constructor(private readonly deps: FirstModelJobDeps) {}

  /** One check of every pump; a call while one runs waits for it (one fit at a time for the gateway). */
  run(): Promise<void> {
    this.running ??= this.check().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** No fit starts after this; a fit running finishes without touching the buffer or the store. */
  stop(): void {
    this.stopped = true;
  }

  view(): FirstModelsView {
    return this.deps.states.view(this.deps.afterHours(), {
      lastCheckAt: this.lastCheckAt === null ? null : new Date(this.lastCheckAt).toISOString(),
      checks: this.checks,
      fitting: this.fitting,
    });
  }

  private async check(): Promise<void> {
    if (this.stopped) return;
    const { deps } = this;
    try {
      const afterHours = deps.afterHours();
      if (afterHours <= 0) return;
      if (!deps.states.loaded()) return; // the buffer is not open
      const defaultModel = deps.engine.model(DEFAULT_MODEL_KEY);
      if (!defaultModel) return;
      for (const pump of [...deps.buffer.pumpIds()].sort()) {
        if (this.stopped) return;
        const newestTs = this.due(pump);
        if (newestTs === null) continue;
        await this.fitPump(pump, afterHours, defaultModel.meta);
      }
    } finally {
      this.checks++;
      this.lastCheckAt = deps.clock();
    }
  }

  /** The pump's newest reading time when it is to be fitted now; null when it is not. */
  private due(pump: string): number | null {
    const { states, updater, engine, buffer } = this.deps;
    const rec = states.get(pump);
    if (rec?.state === 'fitted' || rec?.state === 'retired') return null;
    if (updater.named(pump)) return null;
    const own = engine.model(pump);
    if (own) {
      if (own.origin !== GATEWAY_ORIGIN) states.cloudModel(pump, own.version);
      return null;
    }
    const newest = buffer.predictions(pump, { limit: 1 })[0];
    if (!newest) return null;
    if (rec?.state === 'refused') {
      const from = rec.lastReadingTs === null ? Number.NEGATIVE_INFINITY : Date.parse(rec.lastReadingTs);
      if (newest.ts < from + rec.retryAfterSpanHours * HOUR_MS) return null;
    }
    const waiting = states.waiting.get(pump);
    // Stopped readings do not count: the span cannot have grown by more than the time the readings moved on.
    if (waiting && newest.ts < waiting.newestTs + (waiting.neededHours - waiting.spanHours) * HOUR_MS) return null;
    return newest.ts;
  }

  private async fitPump(pump: string, afterHours: number, defaultModel: FirstModelFitRequest['defaultModel']): Promise<void> {
    const { deps } = this;
    const log = deps.logger;
    this.fitting = pump;
    try {
      const rows = await this.readRows(pump);
      if (this.stopped || rows.length === 0) return;
      const lastTs = rows.at(-1)!.ts;
      let result: FirstModelFitResult;
      try {
        // Loaded at the first fit: an agent with the setting off never loads the trainer's code.
        const fit = deps.fit ?? (await import('./fit.js')).fitFirstModel;
        result = await fit({ pumpId: pump, rows, defaultModel, afterHours });
      } catch (err) {
        if (this.stopped) return;
        const reason = `the fit failed: ${(err as Error).message}`;
        log.error({ pump, rows: rows.length, err: { message: (err as Error).message } }, 'first model fit failed; tried again once the pump\'s readings span another PUMPWATCH_FIRST_MODEL_AFTER_HOURS');
        this.refuse(pump, reason, 0, lastTs, afterHours);
        return;
      }
      if (this.stopped) return;
      if (result.kind === 'waiting') {
        deps.states.waiting.set(pump, { spanHours: result.spanHours, neededHours: afterHours, newestTs: lastTs, reason: result.reason });
        log.debug({ pump, spanHours: result.spanHours, neededHours: afterHours }, 'first model: not enough running readings yet');
        return;
      }
      if (result.kind === 'refused') {
        log.warn(
          { pump, reason: result.reason, spanHours: result.spanHours, heldOutRows: result.heldOutRows ?? null, heldOutFlagged: result.heldOutFlagged ?? null, retryAfterSpanHours: afterHours },
          'first model fitted on the gateway refused; the default model keeps scoring the pump',
        );
        this.refuse(pump, result.reason, result.spanHours, lastTs, afterHours);
        return;
      }
      // The twin may have named a model for the pump while it was fitted: that one wins.
      if (deps.updater.named(pump) || deps.engine.model(pump) || deps.states.get(pump)?.state === 'retired') return;
      const ref = { version: result.version, sha256: result.sha256 };
      const release = deps.store.hold(pump, ref);
      try {
        // The file first, then the record: a crash between the two leaves a file nothing names (pruned) and no record (fitted again).
        await deps.store.write(pump, ref, result.bytes);
        if (this.stopped) return;
        deps.states.set(pump, {
          state: 'fitted',
          version: result.version,
          sha256: result.sha256,
          size: result.bytes.length,
          fittedAt: new Date(deps.clock()).toISOString(),
          rows: result.trainRows,
          spanHours: result.spanHours,
        });
        log.info(
          { pump, version: result.version, trainRows: result.trainRows, spanHours: Math.round(result.spanHours * 100) / 100, heldOutRows: result.heldOutRows, heldOutFlagged: result.heldOutFlagged, features: result.metadata.features },
          'first model fitted on the gateway; installing it',
        );
        deps.updater.localChanged();
      } finally {
        release();
      }
    } finally {
      this.fitting = null;
    }
  }

  private refuse(pump: string, reason: string, spanHours: number, lastTs: number, afterHours: number): void {
    this.deps.states.set(pump, { state: 'refused', reason, at: new Date(this.deps.clock()).toISOString(), spanHours, lastReadingTs: new Date(lastTs).toISOString(), retryAfterSpanHours: afterHours });
  }

  /**
   * The pump's rows to fit on, oldest first by reading time: walking back from its newest row in
   * pages, each one synchronous read, with a turn of the event loop between them (scoring and
   * commits go on); the newest FIRST_MODEL_MAX_ROWS within FIRST_MODEL_WINDOW_MS of the newest.
   */
  private async readRows(pump: string): Promise<StoredRow[]> {
    const { buffer } = this.deps;
    const page = this.deps.pageRows ?? PAGE_ROWS;
    const newest = buffer.predictions(pump, { limit: 1 })[0];
    if (!newest) return [];
    const from = newest.ts - FIRST_MODEL_WINDOW_MS;
    const pages: StoredRow[][] = [];
    let total = 0;
    let before = newest.seq + 1;
    while (total < FIRST_MODEL_MAX_ROWS && !this.stopped) {
      const rows = buffer.predictions(pump, { beforeSeq: before, limit: Math.min(page, FIRST_MODEL_MAX_ROWS - total) });
      if (rows.length === 0) break;
      before = rows[0]!.seq;
      const kept = rows.filter((r) => r.ts >= from);
      pages.push(kept);
      total += kept.length;
      if (kept.length === 0) break; // a whole page older than the window: the rest is older still
      await turn();
    }
    const rows = pages.reverse().flat();
    rows.sort((a, b) => a.ts - b.ts || a.seq - b.seq);
    return rows;
  }
}
