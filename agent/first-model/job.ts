/**
 * The check that fits a pump's first model on the gateway (README, "A first model fitted on the
 * gateway"): every 10 minutes and once shortly after start (agent/wiring/first-model.ts), while
 * PUMPWATCH_FIRST_MODEL_AFTER_HOURS (twin `firstModel.afterHours`) is not 0. A pump is fitted when
 * it is scored by the `default` model, the twin names no model for it, it never ran one from the
 * cloud, and it has no first model yet (or its last refusal is past its retry); one pump at a time
 * for the whole gateway. Its rows are read from the buffer in pages with a turn of the event loop
 * between them (the newest 7 days, at most 250 000 rows), each page packed into columns as it comes
 * (pack.ts PackedPages: the rows are never all held as objects), the fit runs off the event loop
 * (first-model/fit.ts), and a fitted model is written to the model store, recorded (state.ts), then
 * handed to the model updater as a local entry: it is loaded, validated on the pump's recent
 * readings and switched in as a model from the cloud is. The setting is read at each step: lowered,
 * it applies to the pumps waiting or refused at the next check; set to 0 (off), no fit starts, one
 * running is not installed, and the first models installed go out of service (settingChanged).
 */
import type { BufferStore } from '../../buffer/store.js';
import type { InferenceEngine } from '../../inference/engine.js';
import { DEFAULT_MODEL_KEY } from '../../inference/engine.js';
import type { ModelStore } from '../../inference/model-store.js';
import { GATEWAY_ORIGIN, type ModelUpdater } from '../../inference/updater.js';
import type { Logger } from '../logger.js';
import type { FirstModelFitResult, PackedFitRequest } from './types.js';
import { PackedPages, type PackedRows } from './pack.js';
import type { FirstModelStates, FirstModelsView } from './state.js';
import { firstModelStoppedRule } from './stopped-when.js';

const HOUR_MS = 3_600_000;
/** The newest readings a fit takes, by reading time and by count. */
export const FIRST_MODEL_WINDOW_MS = 7 * 24 * HOUR_MS;
export const FIRST_MODEL_MAX_ROWS = 250_000;
/** Rows read per page (one synchronous SQLite read: a few milliseconds each). */
const PAGE_ROWS = 5_000;
/**
 * The least PUMPWATCH_RETENTION_HOURS that counts as a bound of what a fit reads (retentionBound):
 * under it a pump waits for `afterHours` instead of being fitted on so short a span (the shortest
 * fit bench/field measured is 24 h).
 */
export const FIRST_MODEL_MIN_RETENTION_HOURS = 24;
/** Retention runs every 10 minutes: its horizon counts as reached this much short of it, and is looked at this much past it. */
const RETENTION_SLACK_MS = 30 * 60_000;

export interface FirstModelJobDeps {
  /** The setting in force (0: off). */
  afterHours: () => number;
  /** PUMPWATCH_FIRST_MODEL_STOPPED_WHEN in force (undefined: the default model's rule; a pump refused or waiting under another is looked at again). */
  stoppedWhen?: () => string | undefined;
  buffer: Pick<BufferStore, 'pumpIds' | 'predictions'>;
  engine: Pick<InferenceEngine, 'model'>;
  store: ModelStore;
  states: FirstModelStates;
  updater: ModelUpdater;
  /** The fit (default: fitFirstModelPacked, in a worker thread). */
  fit?: (req: PackedFitRequest) => Promise<FirstModelFitResult>;
  clock: () => number;
  logger: Logger;
  /** Rows per page read from the buffer (default 5 000). */
  pageRows?: number;
  /** The most rows a fit reads (default FIRST_MODEL_MAX_ROWS; tests make it small). */
  maxRows?: number;
  /** PUMPWATCH_RETENTION_HOURS: synced rows older are deleted, so with the sync running a pump's rows may never span more. */
  retentionHours?: () => number;
}

/**
 * Whether a pump not yet fitted is looked at again, its newest reading at `newestTs`, with
 * `afterHours` in force: a refused one once its readings span another `retryAfterSpanHours` (or
 * `afterHours`, if lower: the setting lowered since) past the refused ones; a waiting one once its
 * running span can have grown enough (stopped readings do not count, so it cannot have grown by
 * more than the time the readings moved on), or its readings can have reached the most a fit reads
 * (`fullByTs`, fullBy), judged against the hours it was looked at for (with the setting changed
 * since, it is looked at again). bench/field-first.ts decides with it too.
 */
export function fitDue(
  newestTs: number,
  afterHours: number,
  refused: { lastTs: number; retryAfterSpanHours: number } | null,
  waiting: { neededHours: number; spanHours: number; newestTs: number; fullByTs?: number | null } | null,
): boolean {
  if (refused && newestTs < refused.lastTs + Math.min(refused.retryAfterSpanHours, afterHours) * HOUR_MS) return false;
  if (waiting && waiting.neededHours === afterHours && newestTs < Math.min(waiting.newestTs + (waiting.neededHours - waiting.spanHours) * HOUR_MS, waiting.fullByTs ?? Infinity)) return false;
  return true;
}

/**
 * When the newest of a pump's readings would make the rows a fit read (`count` of them, from
 * `oldestTs` to `newestTs`: fewer than `maxRows`, none older than `windowMs` before the newest, so
 * its oldest rows) all a fit reads: `maxRows` of them at their pace, or `windowMs` past the oldest,
 * whichever comes first. From then on it is fitted on them whatever span they hold, so a waiting
 * pump is looked at again then if its span has not grown enough before.
 */
export function fullBy(read: { count: number; oldestTs: number; newestTs: number }, maxRows: number, windowMs: number): number {
  const { count, oldestTs, newestTs } = read;
  const byWindow = oldestTs + windowMs;
  if (count < 2 || !(newestTs > oldestTs)) return byWindow;
  return Math.min(byWindow, newestTs + (Math.max(0, maxRows - count) * (newestTs - oldestTs)) / (count - 1));
}

/**
 * The third bound of what a fit reads, after the count and the window: with the sync uploading,
 * synced rows received more than `retentionHours` ago are deleted (sync/retention.ts, by receive
 * time), so a pump's rows never span more, and an `afterHours` above it is never reached.
 * `reached` when rows of the pump were `removed` since the last look and the first received of
 * those left arrived the horizon ago (`firstReceivedAt`, by the gateway clock `now`; within 30
 * minutes and the readings' mean interval, as retention runs every 10 minutes): retention is
 * what trims them, and the pump is fitted on them whatever running span they hold, as at the other
 * bounds. (A backlog delivered late, or rows evicted under the buffer's cap, were received
 * recently: they are no bound.) `lookTs`, when it is not reached: the newest reading time at
 * which to look again (when the first received row can be past the horizon; at the first look
 * with it already past, shortly); Infinity when nothing more can be told (past the horizon and no
 * row removed: the sync is not deleting). Only a retention of at least
 * FIRST_MODEL_MIN_RETENTION_HOURS and below `afterHours` is a bound.
 */
export function retentionBound(
  read: { newestTs: number; firstReceivedAt: number; intervalMs: number },
  looked: { removed: boolean; before: boolean },
  now: number,
  afterHours: number,
  retentionHours: number | undefined,
): { reached: boolean; lookTs: number } {
  if (retentionHours === undefined || retentionHours < FIRST_MODEL_MIN_RETENTION_HOURS || retentionHours >= afterHours) return { reached: false, lookTs: Infinity };
  const horizonAt = read.firstReceivedAt + retentionHours * HOUR_MS;
  // The first row left after a retention run came up to one reading interval after its cut-off.
  if (looked.removed && now >= horizonAt - RETENTION_SLACK_MS - read.intervalMs) return { reached: true, lookTs: Infinity };
  // In reading time: the readings move on as the clock does.
  const at = Math.max(horizonAt, looked.before ? Number.NEGATIVE_INFINITY : now) + RETENTION_SLACK_MS;
  return { reached: false, lookTs: at > now ? read.newestTs + (at - now) : Infinity };
}

/**
 * Roughly when (ISO, by the gateway clock `now`) a waiting pump is fitted: its running span grows at
 * the share of its readings' time it ran so far (`spanHours` over `oldestTs`–`newestTs`), so it
 * reaches `neededHours` that much later, or its readings reach all a fit reads (`fullByTs`, reading
 * time) first; null when it has not run at all yet (no rate to go by) and nothing bounds it.
 */
export function expectedFitAt(w: { spanHours: number; neededHours: number; oldestTs: number; newestTs: number; fullByTs: number | null }, now: number): string | null {
  const elapsed = w.newestTs - w.oldestTs;
  const share = elapsed > 0 ? (w.spanHours * HOUR_MS) / elapsed : 0;
  const bySpan = share > 0 ? ((w.neededHours - w.spanHours) * HOUR_MS) / share : Infinity;
  const byFull = w.fullByTs === null ? Infinity : w.fullByTs - w.newestTs;
  const ahead = Math.max(0, Math.min(bySpan, byFull));
  return Number.isFinite(ahead) ? new Date(now + ahead).toISOString() : null;
}

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A pump's rows read for a fit (readFitRows): `full` when they are all a fit reads. */
export interface FitRows {
  rows: PackedRows;
  lastTs: number;
  oldestTs: number;
  /** The first received of the rows (the lowest seq), and when it was received (the gateway clock). */
  first: { seq: number; receivedAt: number };
  full: boolean;
}

export class FirstModelJob {
  private running: Promise<void> | null = null;
  private stopped = false;
  private checks = 0;
  private lastCheckAt: number | null = null;
  private fitting: string | null = null;
  /** The setting and retention last warned about (once per pair). */
  private warnedRetention = '';

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
      if (!deps.states.loaded()) return; // the buffer is not open
      if (deps.afterHours() <= 0) {
        this.turnOff();
        return;
      }
      this.warnRetention(deps.afterHours());
      const defaultModel = deps.engine.model(DEFAULT_MODEL_KEY);
      if (!defaultModel) return;
      for (const pump of [...deps.buffer.pumpIds()].sort()) {
        // Read for each pump: the setting may change while another pump is fitted.
        const afterHours = deps.afterHours();
        if (this.stopped || afterHours <= 0) return;
        const newestTs = this.due(pump, afterHours);
        if (newestTs === null) continue;
        await this.fitPump(pump, afterHours, defaultModel.meta, this.ruleText());
      }
    } finally {
      this.checks++;
      this.lastCheckAt = deps.clock();
    }
  }

  /**
   * The setting changed (the module twin; at the start, the one in force): at 0 (off) the first
   * models go out of service (their records cleared: turned on again, the pumps are fitted anew).
   */
  settingChanged(): void {
    if (this.deps.afterHours() > 0) this.deps.states.turnedOn();
    else this.turnOff();
  }

  /**
   * A first model was rolled back for a fault on live readings: refused with the fault as the
   * reason, and fitted again once the pump's readings span another `afterHours`.
   */
  rolledBack(pump: string, version: string, reason: string): void {
    const rec = this.deps.states.get(pump);
    if (rec?.state !== 'fitted' || rec.version !== version) return;
    const afterHours = this.deps.afterHours();
    let newestTs: number | null = null;
    try {
      newestTs = this.deps.buffer.predictions(pump, { limit: 1 })[0]?.ts ?? null;
    } catch {
      // the buffer cannot be read now: tried again once the pump's readings span the hours from its first
    }
    this.deps.states.localRefused(pump, version, `${version} was rolled back: ${reason}`, afterHours, newestTs);
    this.deps.logger.warn({ pump, version, reason, retryAfterSpanHours: Math.max(afterHours, 1) }, 'first model fitted on the gateway rolled back; fitted again once the pump\'s readings span another PUMPWATCH_FIRST_MODEL_AFTER_HOURS');
  }

  /** Once per setting and retention: afterHours past what the buffer keeps of synced readings. */
  private warnRetention(afterHours: number): void {
    const retention = this.deps.retentionHours?.();
    // At 7 days or more, the window (all a fit reads) comes first: nothing to say.
    if (retention === undefined || afterHours <= retention || retention * HOUR_MS >= FIRST_MODEL_WINDOW_MS) return;
    const key = `${afterHours}/${retention}`;
    if (key === this.warnedRetention) return;
    this.warnedRetention = key;
    this.deps.logger.warn(
      { afterHours, retentionHours: retention },
      `first model: PUMPWATCH_FIRST_MODEL_AFTER_HOURS (${afterHours} h) is more than PUMPWATCH_RETENTION_HOURS (${retention} h): with the sync uploading, synced readings older than ${retention} h are deleted, so a pump's buffered readings never span ${afterHours} h; ${
        retention >= FIRST_MODEL_MIN_RETENTION_HOURS
          ? `a pump is fitted on the ${retention} h they keep, whatever running span they hold`
          : `a retention under ${FIRST_MODEL_MIN_RETENTION_HOURS} h is too short to fit on, so a pump stays waiting`
      }; raise the retention above it to fit on ${afterHours} h (or lower the hours)`,
    );
  }

  private turnOff(): void {
    const out = this.deps.states.turnedOff();
    if (out.size === 0) return;
    this.deps.logger.warn(
      { pumps: Object.fromEntries(out) },
      'first models fitted on the gateway taken out of service: PUMPWATCH_FIRST_MODEL_AFTER_HOURS (firstModel.afterHours) is 0 (off); their pumps are scored by the default model, and fitted anew if it is turned on again',
    );
    this.deps.updater.localChanged();
  }

  /** The pump's newest reading time when it is to be fitted now (with `afterHours` in force); null when it is not. */
  private due(pump: string, afterHours: number): number | null {
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
    const rule = this.ruleText();
    // Refused or waiting under another stopped-when rule: looked at again (the rule decides the refusal and the span).
    const refused = rec?.state === 'refused' && (rec.stoppedWhen === undefined || rec.stoppedWhen === rule) ? { lastTs: rec.lastReadingTs === null ? Number.NEGATIVE_INFINITY : Date.parse(rec.lastReadingTs), retryAfterSpanHours: rec.retryAfterSpanHours } : null;
    const waiting = states.waiting.get(pump);
    return fitDue(newest.ts, afterHours, refused, waiting && waiting.stoppedWhen === rule ? waiting : null) ? newest.ts : null;
  }

  /** The stopped-when setting as set ('' when unset: the default model's rule). */
  private ruleText(): string {
    return this.deps.stoppedWhen?.()?.trim() ?? '';
  }

  private async fitPump(pump: string, afterHours: number, defaultModel: PackedFitRequest['defaultModel'], rule: string): Promise<void> {
    const { deps } = this;
    const log = deps.logger;
    this.fitting = pump;
    try {
      const read = await this.readRows(pump);
      if (this.stopped || read === null) return;
      const { rows, lastTs, oldestTs, first, full } = read;
      const count = rows.ts.length;
      const maxRows = deps.maxRows ?? FIRST_MODEL_MAX_ROWS;
      // Rows removed since the last look (the first received of them went): retention or eviction.
      const before = deps.states.waiting.get(pump)?.firstSeq;
      const removed = before !== undefined && first.seq > before;
      const retentionHours = deps.retentionHours?.();
      const retention = retentionBound({ newestTs: lastTs, firstReceivedAt: first.receivedAt, intervalMs: count > 1 ? (lastTs - oldestTs) / (count - 1) : 0 }, { removed, before: before !== undefined }, deps.clock(), afterHours, retentionHours);
      // All a fit reads, and still short of the hours set (a fast pump: 250 000 readings are 69 h
      // at 1 Hz; or 7 days; or all retention leaves of the synced rows): fitted on them, as no later
      // check could read more.
      const all = full || retention.reached;
      const neededHours = all ? 0 : afterHours;
      // The pace says when the rows reach the most a fit reads only while none is removed: held
      // just under it by retention or eviction (the oldest row moved on), they would be read at
      // every check, so only the window's bound is kept then.
      const fullByTs = all ? null : Math.min(fullBy({ count, oldestTs, newestTs: lastTs }, removed ? Infinity : maxRows, FIRST_MODEL_WINDOW_MS), retention.lookTs);
      if (full) {
        log.info(
          { pump, rows: count, afterHours },
          `first model: the pump's newest ${count} readings, the most a fit reads (${maxRows} readings or ${FIRST_MODEL_WINDOW_MS / (24 * HOUR_MS)} days), are fitted whatever running span they hold (PUMPWATCH_FIRST_MODEL_AFTER_HOURS is ${afterHours} h)`,
        );
      } else if (retention.reached) {
        log.info(
          { pump, rows: count, afterHours, retentionHours },
          `first model: the pump's readings are all the buffer keeps of them (they span ${((lastTs - oldestTs) / HOUR_MS).toFixed(1)} h, the first received ${((deps.clock() - first.receivedAt) / HOUR_MS).toFixed(1)} h ago: synced readings received more than PUMPWATCH_RETENTION_HOURS, ${retentionHours} h, ago are deleted), and are fitted whatever running span they hold (PUMPWATCH_FIRST_MODEL_AFTER_HOURS is ${afterHours} h)`,
        );
      }
      let result: FirstModelFitResult;
      try {
        // Loaded at the first fit: an agent with the setting off never loads the trainer's code.
        const fit = deps.fit ?? (await import('./fit.js')).fitFirstModelPacked;
        // The setting was checked when it was set: a rule, or null for none.
        const stoppedWhen = rule === '' ? undefined : firstModelStoppedRule(rule);
        result = await fit({ pumpId: pump, rows, defaultModel, afterHours: neededHours, ...(stoppedWhen === undefined ? {} : { stoppedWhen }) });
      } catch (err) {
        if (this.stopped || this.turnedOffMeanwhile(pump)) return;
        const reason = `the fit failed: ${(err as Error).message}`;
        log.error({ pump, rows: count, err: { message: (err as Error).message } }, 'first model fit failed; tried again once the pump\'s readings span another PUMPWATCH_FIRST_MODEL_AFTER_HOURS');
        this.refuse(pump, reason, 0, lastTs, afterHours, rule);
        return;
      }
      if (this.stopped || this.turnedOffMeanwhile(pump)) return;
      if (result.kind === 'waiting') {
        // Rows removed and no bound reached (eviction under the cap, or a retention too short to count): said, as they may never span the hours.
        const reason = removed ? `${result.reason}; its oldest readings are being removed (retention of synced readings, PUMPWATCH_RETENTION_HOURS ${retentionHours ?? '?'} h, or the buffer's cap), so they may never span that` : result.reason;
        const expectedAt = expectedFitAt({ spanHours: result.spanHours, neededHours: afterHours, oldestTs, newestTs: lastTs, fullByTs }, deps.clock());
        deps.states.waitingAgain(pump, { spanHours: result.spanHours, neededHours: afterHours, newestTs: lastTs, fullByTs, firstSeq: first.seq, reason, stoppedWhen: rule, expectedAt });
        log.debug({ pump, spanHours: result.spanHours, neededHours: afterHours }, 'first model: not enough running readings yet');
        return;
      }
      if (result.kind === 'refused') {
        log.warn(
          { pump, reason: result.reason, spanHours: result.spanHours, heldOutRows: result.heldOutRows ?? null, heldOutFlagged: result.heldOutFlagged ?? null, heldOutEpisodes: result.heldOutEpisodes ?? null, heldOutHours: result.heldOutHours ?? null, retryAfterSpanHours: afterHours },
          'first model fitted on the gateway refused; the default model keeps scoring the pump',
        );
        this.refuse(pump, result.reason, result.spanHours, lastTs, afterHours, rule);
        return;
      }
      // The twin may have named a model for the pump while it was fitted: that one wins.
      if (this.takenOver(pump)) return;
      const ref = { version: result.version, sha256: result.sha256 };
      const release = deps.store.hold(pump, ref);
      try {
        // The file first, then the record: a crash between the two leaves a file nothing names (pruned) and no record (fitted again).
        await deps.store.write(pump, ref, result.bytes);
        // Looked at again: the twin may have named the pump, or the setting gone to 0, while the file was written.
        if (this.stopped || this.turnedOffMeanwhile(pump) || this.takenOver(pump)) return;
        const recorded = deps.states.set(pump, {
          state: 'fitted',
          version: result.version,
          sha256: result.sha256,
          size: result.bytes.length,
          fittedAt: new Date(deps.clock()).toISOString(),
          rows: result.trainRows,
          spanHours: result.spanHours,
        });
        if (!recorded) return; // retired meanwhile (the set never replaces it)
        log.info(
          { pump, version: result.version, trainRows: result.trainRows, spanHours: Math.round(result.spanHours * 100) / 100, heldOutRows: result.heldOutRows, heldOutFlagged: result.heldOutFlagged, heldOutEpisodes: result.heldOutEpisodes, heldOutHours: result.heldOutHours, features: result.metadata.features },
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

  /** The twin names the pump, it runs a model of its own, or its first model was retired: no first model of ours is installed. */
  private takenOver(pump: string): boolean {
    return this.deps.updater.named(pump) || this.deps.engine.model(pump) !== undefined || this.deps.states.get(pump)?.state === 'retired';
  }

  /** The setting went to 0 (off) while the pump was fitted: nothing is recorded or installed (said once). */
  private turnedOffMeanwhile(pump: string): boolean {
    if (this.deps.afterHours() > 0) return false;
    this.deps.logger.warn({ pump }, 'first model fitted on the gateway not installed: PUMPWATCH_FIRST_MODEL_AFTER_HOURS (firstModel.afterHours) went to 0 (off) while it was fitted');
    this.turnOff();
    return true;
  }

  private refuse(pump: string, reason: string, spanHours: number, lastTs: number, afterHours: number, stoppedWhen: string): void {
    this.deps.states.set(pump, { state: 'refused', reason, at: new Date(this.deps.clock()).toISOString(), spanHours, lastReadingTs: new Date(lastTs).toISOString(), retryAfterSpanHours: afterHours, stoppedWhen });
  }

  private readRows(pump: string): Promise<FitRows | null> {
    return readFitRows(this.deps.buffer, pump, { pageRows: this.deps.pageRows, maxRows: this.deps.maxRows, stopped: () => this.stopped });
  }
}

/**
 * A pump's rows to fit on, in buffer order: walking back from its newest row in pages, each one
 * synchronous read packed into columns at once (its row objects go), with a turn of the event loop
 * between them (scoring and commits go on); the newest FIRST_MODEL_MAX_ROWS within
 * FIRST_MODEL_WINDOW_MS of the newest. With the newest and oldest reading times among them, the first
 * received of them, and `full` when
 * they are all a fit reads (FIRST_MODEL_MAX_ROWS of them, or a row older than the window was met);
 * null when none (or `stopped` said so before any was read). Exported for bench/first-model.ts.
 */
export async function readFitRows(
  buffer: Pick<BufferStore, 'predictions'>,
  pump: string,
  opts: { pageRows?: number; maxRows?: number; stopped?: () => boolean } = {},
): Promise<FitRows | null> {
  const page = opts.pageRows ?? PAGE_ROWS;
  const max = opts.maxRows ?? FIRST_MODEL_MAX_ROWS;
  const stopped = opts.stopped ?? (() => false);
  const newest = buffer.predictions(pump, { limit: 1 })[0];
  if (!newest) return null;
  const from = newest.ts - FIRST_MODEL_WINDOW_MS;
  const pages = new PackedPages(pump);
  let before = newest.seq + 1;
  // A row older than the window seen: the newest 7 days are all a fit reads, as the most rows are.
  let windowed = false;
  while (pages.rows < max && !stopped()) {
    const rows = buffer.predictions(pump, { beforeSeq: before, limit: Math.min(page, max - pages.rows) });
    if (rows.length === 0) break;
    before = rows[0]!.seq;
    const kept = rows.filter((r) => r.ts >= from);
    if (kept.length < rows.length) windowed = true;
    pages.addOlder(kept);
    if (kept.length === 0) break; // a whole page older than the window: the rest is older still
    await turn();
  }
  const lastTs = pages.newest;
  const oldestTs = pages.oldest;
  const first = pages.first;
  if (lastTs === null || oldestTs === null || first === null) return null;
  return { rows: await pages.finish(), lastTs, oldestTs, first, full: pages.rows >= max || windowed };
}
