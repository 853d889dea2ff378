/**
 * What the agent knows of each pump's first model (README, "A first model fitted on the gateway"),
 * persisted in the buffer's meta under `models.first` so a restart (a SIGKILL too) comes back on the
 * same first model without fitting it again:
 * - `fitted`: the model is in the model store under the pump's key; it is the pump's entry in the
 *   model updater (UpdaterDeps.local) while the module twin names no model for the pump;
 * - `refused`: the last fit was refused (the held-out check, too few rows), the model could not be
 *   installed, or it was rolled back for a fault on live readings; tried again once the pump's
 *   readings span another `retryAfterSpanHours` (or `afterHours` now, if lower) past `lastReadingTs`;
 * - `retired`: the module twin named a model for the pump (with `version`, the first model it
 *   replaced, if any), or the pump was found running a model of its own from the cloud: never
 *   fitted or used again.
 * A pump still short of readings is `waiting`, kept in memory only (it is found again at the next
 * check). The record is written after the model's file and before the updater is told of it: a fit a
 * crash cut short leaves no record and simply runs again. With the setting at 0 (off) the `fitted`
 * and `refused` records are cleared (turnedOff): the first models go out of service, and turned on
 * again the pumps are fitted anew from the buffer.
 */
import type { KeyValueStore } from '../../inference/model-state.js';
import type { LocalModel } from '../../inference/updater.js';
import { DEFAULT_MODEL_KEY } from '../../inference/engine.js';
import type { Logger } from '../logger.js';

export const FIRST_MODELS_META_KEY = 'models.first';

export type FirstModelRecord =
  | { state: 'fitted'; version: string; sha256: string; size: number; fittedAt: string; rows: number; spanHours: number }
  // stoppedWhen: PUMPWATCH_FIRST_MODEL_STOPPED_WHEN it was refused under ('' unset); another looks at it again (absent: a rollback, or recorded before it).
  | { state: 'refused'; reason: string; at: string; spanHours: number; lastReadingTs: string | null; retryAfterSpanHours: number; stoppedWhen?: string }
  | { state: 'retired'; at: string; reason: string; version: string | null };

/** A pump whose running readings do not span the hours needed yet (memory only). */
export interface FirstModelWaiting {
  spanHours: number;
  neededHours: number;
  /** The newest reading time when it was looked at (epoch ms): nothing to fit before more readings came. */
  newestTs: number;
  /** When its readings, at their pace then, would reach all a fit reads (job.ts fullBy); null when they had. */
  fullByTs: number | null;
  /** The lowest seq (the first received) among the rows the fit read then (a higher one next time: rows were removed, by retention or eviction). */
  firstSeq: number;
  reason: string;
  /** PUMPWATCH_FIRST_MODEL_STOPPED_WHEN it was looked at under ('' unset): another looks at it again. */
  stoppedWhen: string;
  /** Roughly when it is fitted (ISO, gateway clock; job.ts expectedFitAt), null when its rate cannot tell. */
  expectedAt: string | null;
}

/** The `firstModels` block of /status. */
export interface FirstModelsView {
  afterHours: number;
  /** When the last check ran (ISO), and how many ran since the start. */
  lastCheckAt: string | null;
  checks: number;
  /** A fit in progress: its pump. */
  fitting: string | null;
  pumps: Record<string, { state: 'fitted' | 'refused' | 'retired' | 'waiting'; version: string | null; reason: string | null; spanHours: number | null; neededHours: number | null; at: string | null; rows?: number; expectedAt?: string | null }>;
  /** The first models the setting at 0 (off) took out of service (since the start; null once on again): when, and per pump the version. */
  turnedOff: { at: string; pumps: Record<string, string> } | null;
  error: string | null;
}

const TWIN_NAMED_REASON = 'the module twin names a model for this pump';

export class FirstModelStates {
  /** Null until read from the buffer (it may open late). */
  private records: Map<string, FirstModelRecord> | null = null;
  /** Keys the twin named before the records could be read: retired once they are. */
  private namedEarly = new Set<string>();
  readonly waiting = new Map<string, FirstModelWaiting>();
  private error: string | null = null;
  private off: FirstModelsView['turnedOff'] = null;

  constructor(
    private readonly deps: {
      kv: KeyValueStore;
      clock: () => number;
      logger: Logger;
    },
  ) {}

  /** The records, read from the buffer the first time it can be read; null while it cannot. */
  loaded(): Map<string, FirstModelRecord> | null {
    if (this.records) return this.records;
    let text: string | null;
    try {
      text = this.deps.kv.getMeta(FIRST_MODELS_META_KEY);
    } catch {
      return null; // the buffer is not open: read at the next look
    }
    this.records = new Map();
    if (text !== null) {
      try {
        for (const [pump, rec] of Object.entries(JSON.parse(text) as Record<string, FirstModelRecord>)) if (isRecord(rec)) this.records.set(pump, rec);
      } catch (err) {
        this.deps.logger.warn({ err: { message: (err as Error).message } }, `${FIRST_MODELS_META_KEY} in the buffer is unreadable: the first models are fitted again`);
      }
    }
    const named = [...this.namedEarly];
    this.namedEarly.clear();
    if (named.length > 0) this.twinNamed(named);
    return this.records;
  }

  get(pump: string): FirstModelRecord | undefined {
    return this.loaded()?.get(pump);
  }

  /**
   * Sets a pump's record and persists them all (throws when the buffer cannot take it). A retired
   * pump stays retired (the twin named it while its model was fitted or stored): false, nothing set.
   */
  set(pump: string, rec: FirstModelRecord): boolean {
    const records = this.loaded();
    if (!records) throw new Error('the buffer is not open: the first model state cannot be saved');
    if (records.get(pump)?.state === 'retired' && rec.state !== 'retired') return false;
    records.set(pump, rec);
    this.waiting.delete(pump);
    this.persist(records, true);
    return true;
  }

  /** A refused pump looked at again (under another stopped-when rule) and now waiting: its refusal no longer stands. */
  waitingAgain(pump: string, w: FirstModelWaiting): void {
    const records = this.loaded();
    if (records?.get(pump)?.state === 'refused') {
      records.delete(pump);
      this.persist(records);
    }
    this.waiting.set(pump, w);
  }

  /**
   * The setting is 0 (off): the `fitted` and `refused` records are cleared (the pumps are fitted
   * anew once it is on again; `retired` ones stay: the cloud took those over) and the pumps waiting
   * forgotten. Returns the pumps whose first model was fitted, with its version (none: nothing changed).
   */
  turnedOff(): Map<string, string> {
    const records = this.loaded();
    const out = new Map<string, string>();
    this.waiting.clear();
    if (!records) return out;
    let changed = false;
    for (const [pump, rec] of records) {
      if (rec.state === 'retired') continue;
      if (rec.state === 'fitted') out.set(pump, rec.version);
      records.delete(pump);
      changed = true;
    }
    if (changed) this.persist(records);
    if (out.size > 0) this.off = { at: new Date(this.deps.clock()).toISOString(), pumps: { ...(this.off?.pumps ?? {}), ...Object.fromEntries(out) } };
    return out;
  }

  /** The setting is on (again). */
  turnedOn(): void {
    this.off = null;
  }

  /**
   * Whether a model fitted on this gateway may keep scoring `pump` while it is not the pump's local
   * entry: a retired one scores until the cloud's model replaces it; any other (the setting turned
   * off, rolled back, refused) goes. True while the records cannot be read (nothing is known yet).
   */
  keeps(pump: string): boolean {
    const records = this.loaded();
    return !records || records.get(pump)?.state === 'retired';
  }

  /** The fitted first models as the model updater's local entries (none while the buffer is not read). */
  local(): Map<string, LocalModel> {
    const out = new Map<string, LocalModel>();
    for (const [pump, rec] of this.loaded() ?? []) if (rec.state === 'fitted') out.set(pump, { version: rec.version, sha256: rec.sha256, size: rec.size });
    return out;
  }

  /**
   * The module twin names a model for these keys: a pump's first model is retired for good (and a
   * pump with none is never fitted one). Kept in memory when the buffer cannot take it now.
   */
  twinNamed(keys: readonly string[]): void {
    const records = this.loaded();
    const pumps = keys.filter((k) => k !== DEFAULT_MODEL_KEY);
    if (!records) {
      for (const k of pumps) this.namedEarly.add(k);
      return;
    }
    let changed = false;
    const at = new Date(this.deps.clock()).toISOString();
    for (const pump of pumps) {
      const rec = records.get(pump);
      if (rec?.state === 'retired') continue;
      const version = rec?.state === 'fitted' ? rec.version : null;
      records.set(pump, { state: 'retired', at, reason: TWIN_NAMED_REASON, version });
      this.waiting.delete(pump);
      changed = true;
      if (version !== null) this.deps.logger.info({ pump, version }, 'first model fitted on the gateway retired: the module twin names a model for the pump, which replaces it');
    }
    if (changed) this.persist(records);
  }

  /**
   * The model updater could not install the pump's first model (its file unreadable, refused by
   * validation), or the model manager rolled it back for a fault on live readings: refused, and
   * fitted again once its readings span another `afterHours` past `newestTs` (the pump's newest
   * reading time: readings may come with old timestamps, so not the wall clock; null: none).
   */
  localRefused(pump: string, version: string, reason: string, afterHours: number, newestTs: number | null): void {
    const records = this.loaded();
    const rec = records?.get(pump);
    if (!records || rec?.state !== 'fitted' || rec.version !== version) return;
    const at = new Date(this.deps.clock()).toISOString();
    records.set(pump, { state: 'refused', reason, at, spanHours: rec.spanHours, lastReadingTs: newestTs === null ? null : new Date(newestTs).toISOString(), retryAfterSpanHours: Math.max(afterHours, 1) });
    this.persist(records);
  }

  /** Notes that a pump runs a model from the cloud already: it is never fitted one. */
  cloudModel(pump: string, version: string | null): void {
    const records = this.loaded();
    if (!records || records.get(pump)?.state === 'retired') return;
    records.set(pump, { state: 'retired', at: new Date(this.deps.clock()).toISOString(), reason: `it runs a model of its own from the cloud${version ? ` (${version})` : ''}`, version: null });
    this.persist(records);
  }

  view(afterHours: number, checks: { lastCheckAt: string | null; checks: number; fitting: string | null }): FirstModelsView {
    const pumps: FirstModelsView['pumps'] = {};
    for (const [pump, rec] of this.loaded() ?? []) {
      if (rec.state === 'fitted') pumps[pump] = { state: 'fitted', version: rec.version, reason: null, spanHours: round(rec.spanHours), neededHours: null, at: rec.fittedAt, rows: rec.rows };
      else if (rec.state === 'refused') pumps[pump] = { state: 'refused', version: null, reason: rec.reason, spanHours: round(rec.spanHours), neededHours: null, at: rec.at };
      else pumps[pump] = { state: 'retired', version: rec.version, reason: rec.reason, spanHours: null, neededHours: null, at: rec.at };
    }
    // The span needed is the setting in force (the check judges a pump by it, whatever it was when last looked at).
    for (const [pump, w] of this.waiting) pumps[pump] ??= { state: 'waiting', version: null, reason: w.reason, spanHours: round(w.spanHours), neededHours: afterHours, at: null, expectedAt: w.expectedAt };
    return { afterHours, ...checks, pumps, turnedOff: this.off, error: this.error };
  }

  /** Saves the records; a failure is said (and thrown with `rethrow`): the memory keeps them meanwhile. */
  private persist(records: Map<string, FirstModelRecord>, rethrow = false): void {
    try {
      this.deps.kv.setMeta(FIRST_MODELS_META_KEY, JSON.stringify(Object.fromEntries(records)));
      this.error = null;
    } catch (err) {
      this.error = `${FIRST_MODELS_META_KEY} could not be saved: ${(err as Error).message}`;
      this.deps.logger.error({ err: { message: (err as Error).message } }, `${FIRST_MODELS_META_KEY} could not be saved in the buffer`);
      if (rethrow) throw err;
    }
  }
}

const round = (h: number): number => Math.round(h * 100) / 100;

function isRecord(rec: unknown): rec is FirstModelRecord {
  const state = (rec as { state?: unknown } | null)?.state;
  return state === 'fitted' || state === 'refused' || state === 'retired';
}
