import { DEFAULT_MODEL_KEY, type InferenceEngine, type ModelFault } from './engine.js';
import { LoadedModel } from './model.js';
import { loadModelFile } from './model-file.js';
import { emptyState, loadState, saveState, type KeyValueStore, type PersistedModels, type PreviousModel, type RefusedRecord } from './model-state.js';
import type { ModelStore } from './model-store.js';
import { SerialQueue } from './serial.js';
import { ModelStatusBoard, type ModelStatus, type ModelStatusName } from './model-status.js';

export type { ModelStatus, ModelStatusName } from './model-status.js';

/** A model as the cloud identifies it: the desired entry's version and the file's sha256. */
export interface ModelRef {
  version: string;
  sha256: string;
}

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;

/**
 * Which model scores which pump, and its status. Swaps go through the engine (effective from the
 * next micro-batch); the old session is released only after the batch in flight has finished.
 * Changes (activate, rollback, shadow, removal) run one at a time; the active model of each key
 * is persisted so a restart without network comes back on the same models.
 */
/** How a download refused by HTTP status was worded (`<url> answered HTTP 403`) by every version of the agent. */
const LEGACY_URL_REFUSAL = / answered HTTP \d{3}/;

export class ModelManager {
  private readonly board: ModelStatusBoard;
  private persisted: PersistedModels = emptyState();
  private bundledPath: string | null = null;
  private readonly serial = new SerialQueue();
  private readonly rollingBack = new Set<string>();
  /** The persisted models are loaded: until then the store holds files of models this process knows nothing of, and nothing is pruned. */
  private stateLoaded = false;
  private readonly listeners: Array<(key: string) => void> = [];
  private readonly restoredListeners: Array<() => void> = [];
  private readonly rolledBackListeners: Array<(key: string, rolledBack: { version: string; origin: 'gateway' | undefined; reason: string }) => void> = [];
  /** The model each key's desired entry names (see setWanted); null when no updater is wired (no twin). */
  private wanted: ((key: string) => ModelRef | null | undefined) | null = null;

  constructor(
    private readonly deps: {
      engine: InferenceEngine;
      /** Resolves when the micro-batch in flight (if any) is done (IngestPipeline.afterCurrentBatch). */
      afterCurrentBatch: () => Promise<void>;
      clock?: () => number;
      /** The model store on disk (needed for restore and rollback). */
      store?: ModelStore;
      /** Where the active model per key is persisted (BufferStore.getMeta/setMeta). */
      kv?: KeyValueStore;
      log?: Log;
    },
  ) {
    this.board = new ModelStatusBoard(deps.clock);
  }

  /** Called with the key whenever a status changes (reported properties). */
  onChange(listener: (key: string) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Loads the model file bundled with the agent (or configured) as `default` unless a default is
   * active already. The file is checked either way (it is the fallback of a rollback): one that
   * cannot be used throws a ModelFileError saying why.
   */
  async loadBundledDefault(path: string): Promise<void> {
    this.bundledPath = path;
    const model = await loadModelFile(path);
    if (this.deps.engine.model(DEFAULT_MODEL_KEY)) {
      await model.release();
      return;
    }
    const unrestored = this.board.get(DEFAULT_MODEL_KEY);
    await this.swap(DEFAULT_MODEL_KEY, model);
    // A stored default that failed to load (restore) stays on /status, now running the start-up model.
    if (unrestored?.status === 'rejected') this.setStatus(DEFAULT_MODEL_KEY, model, 'rejected', unrestored.error, unrestored.version ?? undefined);
  }

  /**
   * Loads the persisted active (and shadow) models from the store; a key that fails falls back.
   * Runs at start-up, or when the buffer opens late. What the twin changed meanwhile (in memory
   * only, while nothing could be persisted) stays: a model it activated replaces the saved live
   * one, which becomes its fallback (and its shadow: the entry is a live one now), a shadow it started replaces the saved
   * shadow. A refusal does not: a refused entry leaves the model running, as it does when the
   * buffer is open, so the saved model comes back with the refusal shown beside it. A removal
   * meanwhile records nothing (the key was not known yet): the listeners of onRestored (the model
   * updater) run every key against the desired models again, which removes it then.
   * Only what can never be used is pruned here (temp files of writes a crash cut short, empty
   * folders): a complete file may be the one the desired entry names, stored but not switched in
   * when the agent stopped, and is taken from the store at the first reconcile, which prunes the rest.
   */
  restore(): Promise<void> {
    return this.serial.run(async () => {
      const { kv, store } = this.deps;
      if (!kv || !store) {
        this.stateLoaded = true; // nothing persisted: what runs is all there is
        return;
      }
      let saved: PersistedModels;
      try {
        saved = loadState(kv);
      } catch (err) {
        this.log('warn', 'persisted model state unreadable; the models running now stay', { err: (err as Error).message });
        return;
      }
      const p = this.persisted;
      const activated = new Set(Object.keys(p.live));
      const shadowChanged = new Set([...activated, ...Object.keys(p.shadow)]);
      // A refusal made meanwhile is about the entry the twin names now: it wins over the saved one.
      const refusals: Array<[string, RefusedRecord]> = [];
      for (const [key, rec] of Object.entries(saved.refused)) {
        if (shadowChanged.has(key) || p.refused[key]) continue;
        p.refused[key] = rec;
        refusals.push([key, rec]);
      }
      const restored = new Set<string>();
      for (const [key, rec] of Object.entries(saved.live)) {
        if (activated.has(key)) {
          // Activated while the saved state was unknown, its fallback could not be the saved live
          // model: it is now (the same model again keeps the saved fallback), so a fault of the new
          // one rolls back to the model that ran before, and the prune keeps that model's file.
          const now = p.live[key]!;
          if (now.version === rec.version && now.sha256 === rec.sha256) p.live[key] = { ...now, previous: rec.previous };
          // A first model fitted on the gateway is retired by the model that replaced it, never its fallback.
          else if (now.previous.kind !== 'store' && rec.origin === undefined) p.live[key] = { ...now, previous: { kind: 'store', version: rec.version, sha256: rec.sha256 } };
          continue;
        }
        p.live[key] = rec;
        restored.add(key);
        const shown = this.board.get(key);
        try {
          const model = await this.loadStored(key, rec, rec.origin);
          await this.swap(key, model, rec.version);
          // The desired entry's status shown meanwhile (refused, downloading) stays, beside the model restored.
          if (shown && shown.status !== 'active') this.setStatus(key, model, shown.status, shown.error, shown.version ?? undefined);
        } catch (err) {
          this.log('error', 'stored model could not be restored', { model: key, version: rec.version, err: (err as Error).message });
          delete p.live[key];
          // Shown on /status (not kept as refused: the next twin read downloads the entry again).
          const reason = `the stored copy could not be loaded (${(err as Error).message}); it is downloaded again at the next module twin read, and ${key === DEFAULT_MODEL_KEY ? 'the start-up default model' : 'the default model'} scores meanwhile`;
          this.setStatus(key, null, 'rejected', reason, rec.version);
        }
      }
      for (const [key, rec] of Object.entries(saved.shadow)) {
        if (shadowChanged.has(key)) continue;
        p.shadow[key] = rec;
        restored.add(key);
        const shown = this.board.get(key, true);
        try {
          const model = await this.loadStored(key, rec);
          this.deps.engine.setShadow(key, model);
          if (shown && shown.status !== 'shadow') this.setShadowStatus(key, model, shown.version ?? undefined, shown.status, shown.error);
          else this.setShadowStatus(key, model, rec.version);
        } catch (err) {
          this.log('warn', 'stored shadow model could not be restored', { model: key, version: rec.version, err: (err as Error).message });
          delete p.shadow[key];
        }
      }
      // The refusals saved are shown again beside the models restored, until the twin is read: a
      // gateway that stays offline showed its fallback as if no model had been refused or rolled
      // back. Not over a status shown meanwhile (a download, a refusal of the twin read); not a
      // refused download (below).
      for (const [key, rec] of refusals) {
        // A refused download holds only under the settings and URL it was refused under (refusal()),
        // and the twin's URL is not known yet: not shown, as it may no longer hold (a raised size limit).
        if (rec.limits !== undefined) continue;
        // Records older than the flag: a shadow's fault is the only shadow refusal they name so.
        const shadow = rec.shadow === true || rec.reason.startsWith('shadow model failed: ');
        const shown = this.board.get(key, shadow);
        if (shown && shown.status !== 'active' && shown.status !== 'shadow') continue;
        this.showEntry(key, shadow, rec.version, rec.status, rec.reason);
        restored.add(key);
      }
      this.persist();
      this.stateLoaded = true;
      // A late restore changes what the hub was told of these keys.
      for (const key of restored) this.changed(key);
      try {
        await store.pruneLeftovers();
      } catch (err) {
        this.log('warn', 'model store could not be pruned', { err: (err as Error).message });
      }
    }).then(() => {
      // Outside the queue: the listeners' work (activate, remove) queues behind it.
      for (const l of this.restoredListeners) l();
    });
  }

  /**
   * Called after each restore of the persisted models: the model updater runs every key against
   * the desired models again (a key removed from them while its model was not known yet goes now).
   */
  onRestored(listener: () => void): void {
    this.restoredListeners.push(listener);
  }

  /**
   * Called after a live model was rolled back for a fault, with the model rolled back (its version,
   * its origin: 'gateway' for a model fitted on the gateway, whose fitter records the refusal).
   */
  onRolledBack(listener: (key: string, rolledBack: { version: string; origin: 'gateway' | undefined; reason: string }) => void): void {
    this.rolledBackListeners.push(listener);
  }

  /**
   * The model updater says which model each key's desired entry names and still wants (not
   * refused): every prune keeps it (a copy stored before the agent stopped is its next install's).
   * `undefined` while no desired models came: nothing is pruned until they do.
   */
  setWanted(wanted: (key: string) => ModelRef | null | undefined): void {
    this.wanted = wanted;
  }

  /** Makes `model` the live model of `key` and releases the one it replaces once no batch uses it. */
  async swap(key: string, model: LoadedModel, version?: string): Promise<void> {
    const old = this.deps.engine.model(key);
    this.deps.engine.setModel(key, model);
    this.setStatus(key, model, 'active', null, version);
    if (old && old !== model) {
      await this.deps.afterCurrentBatch();
      await old.release();
    }
  }

  /**
   * Puts a validated model live for `key` (between two micro-batches) and persists it; the current
   * one becomes the fallback, unless it is a model fitted on the gateway (`origin` 'gateway', kept
   * with the record so a restart shows it again): the model that replaces one retires it for good,
   * so a fault rolls back to `default` instead.
   */
  activate(key: string, model: LoadedModel, ref: ModelRef, origin?: 'gateway'): Promise<void> {
    return this.serial.run(async () => {
      const current = this.persisted.live[key];
      const previous: PreviousModel =
        current && current.origin === undefined
          ? { kind: 'store', version: current.version, sha256: current.sha256 }
          : key === DEFAULT_MODEL_KEY
            ? { kind: 'bundled' }
            : { kind: 'none' };
      this.persisted.live[key] = { ...ref, previous, ...(origin ? { origin } : {}) };
      delete this.persisted.refused[key];
      const shadow = this.persisted.shadow[key];
      if (shadow?.sha256 === ref.sha256) await this.dropShadowNow(key);
      this.persist();
      await this.swap(key, model, ref.version);
      this.changed(key);
    });
  }

  /** Runs `model` beside the live model of `key` (or stops the shadow with null). */
  setShadow(key: string, model: LoadedModel | null, ref?: ModelRef): Promise<void> {
    return this.serial.run(async () => {
      if (!model) {
        if (!this.hasShadow(key) && !this.persisted.shadow[key]) return;
        await this.dropShadowNow(key);
        this.persist();
        this.changed(key);
        return;
      }
      const old = this.deps.engine.shadow(key);
      this.deps.engine.setShadow(key, model);
      if (ref) this.persisted.shadow[key] = ref;
      delete this.persisted.refused[key];
      this.persist();
      this.setShadowStatus(key, model, ref?.version);
      this.entryIsShadow(key);
      if (old && old !== model) {
        await this.deps.afterCurrentBatch();
        await old.release();
      }
      this.changed(key);
    });
  }

  /** Goes back to the model `key` ran before its last activation; false when there is nothing to go back to. */
  rollback(key: string, reason: string): Promise<boolean> {
    return this.serial.run(async () => {
      const rec = this.persisted.live[key];
      if (!rec) return false;
      this.persisted.refused[key] = { version: rec.version, sha256: rec.sha256, status: 'rolled-back', reason };
      const back = await this.loadPrevious(key, rec.previous);
      if (back.model && back.ref) this.persisted.live[key] = { ...back.ref, previous: key === DEFAULT_MODEL_KEY ? { kind: 'bundled' } : { kind: 'none' } };
      else delete this.persisted.live[key];
      this.persist();
      if (back.model) await this.swap(key, back.model, back.ref?.version);
      else await this.dropLive(key);
      this.setStatus(key, back.model ?? null, 'rolled-back', reason, rec.version);
      this.log('warn', 'model rolled back', { model: key, version: rec.version, reason, activeVersion: this.activeVersion(key) });
      this.changed(key);
      for (const l of this.rolledBackListeners) {
        try {
          l(key, { version: rec.version, origin: rec.origin, reason });
        } catch (err) {
          this.log('error', 'a rollback listener failed', { model: key, err: (err as Error).message });
        }
      }
      // The rolled-back model's file: nothing refers to it any more (the refusal holds no file).
      await this.pruneStore(key);
      return true;
    });
  }

  /** Routes an engine fault: a faulty shadow is dropped, a faulty update is rolled back once. */
  handleFault(fault: ModelFault): void {
    const { engine } = this.deps;
    if (engine.shadow(fault.key) === fault.model) {
      void this.serial.run(async () => {
        if (engine.shadow(fault.key) !== fault.model) return;
        const rec = this.persisted.shadow[fault.key];
        const reason = `shadow model failed: ${fault.reason}`;
        await this.dropShadowNow(fault.key);
        if (rec) {
          this.persisted.refused[fault.key] = { ...rec, status: 'rejected', reason, shadow: true };
          this.setShadowStatus(fault.key, null, rec.version, 'rejected', reason);
        }
        this.persist();
        this.changed(fault.key);
      });
      return;
    }
    if (engine.model(fault.key) !== fault.model || !this.persisted.live[fault.key] || this.rollingBack.has(fault.key)) {
      this.log('warn', 'model fault', { model: fault.key, reason: fault.reason });
      return;
    }
    this.rollingBack.add(fault.key);
    this.rollback(fault.key, fault.reason)
      .catch((err: unknown) => this.log('error', 'rollback failed', { model: fault.key, err: (err as Error).message }))
      .finally(() => this.rollingBack.delete(fault.key));
  }

  /**
   * The key's desired entry is gone. A pump loses its own model, shadow, refusal and status (it
   * falls back to `default` and leaves /status); `default` goes back to the start-up model (bundled,
   * or PUMPWATCH_DEFAULT_MODEL), as it runs when the twin never named one. Resolves true when
   * something changed, false when there was nothing to remove. `why`: the log line's message, when
   * not the desired entry's removal (a model fitted on the gateway taken out of service).
   */
  remove(key: string, why?: string): Promise<boolean> {
    return this.serial.run(async () => {
      if (key === DEFAULT_MODEL_KEY) return this.backToStartupDefault();
      if (!this.keysInUse().includes(key)) return false;
      // Said at warn: a deployment manifest that names the module's desired properties replaces
      // them whole, and every pump's entry goes at once (deployment/README.md, "Deploy").
      const { live, shadow, refused } = this.persisted;
      this.log('warn', why ?? 'model removed: its desired entry is gone; the pump is scored by the default model', {
        model: key,
        version: live[key]?.version ?? this.deps.engine.model(key)?.version ?? null,
        shadowVersion: shadow[key]?.version ?? null,
        refusedVersion: refused[key]?.version ?? null,
      });
      await this.dropShadowNow(key);
      delete this.persisted.refused[key];
      delete this.persisted.live[key];
      await this.dropLive(key);
      this.board.delete(key);
      this.persist();
      this.changed(key);
      return true;
    });
  }

  /** The model `key` runs is this one already. */
  isActive(key: string, ref: ModelRef): boolean {
    const rec = this.persisted.live[key];
    return rec?.version === ref.version && rec.sha256 === ref.sha256 && this.deps.engine.model(key) !== undefined;
  }

  isShadow(key: string, ref: ModelRef): boolean {
    const rec = this.persisted.shadow[key];
    return rec?.version === ref.version && rec.sha256 === ref.sha256 && this.deps.engine.shadow(key) !== undefined;
  }

  /**
   * This model was refused or rolled back already (not tried again until the cloud asks for
   * another). A refused download holds only while `scope` (the agent's download settings and the
   * entry's URL now, inference/updater.ts downloadScope) is the one it was refused under.
   */
  refusal(key: string, ref: ModelRef, scope?: string): { status: 'rejected' | 'rolled-back'; reason: string } | null {
    const r = this.persisted.refused[key];
    if (!r || r.version !== ref.version || r.sha256 !== ref.sha256) return null;
    if (r.limits !== undefined && r.limits !== scope) return null;
    // A refusal of what a URL answered, recorded before refusals carried their URL: tried once more
    // (its next refusal records the URL), or an expired URL would hold the version for good.
    if (r.limits === undefined && r.status === 'rejected' && LEGACY_URL_REFUSAL.test(r.reason) && scope !== undefined) return null;
    return { status: r.status, reason: r.reason };
  }

  /** A shadow runs for `key`, or its status is shown (refused, downloading). */
  hasShadow(key: string): boolean {
    return this.deps.engine.shadow(key) !== undefined || this.board.get(key, true) !== undefined;
  }

  /**
   * The desired entry is the model `key` runs (or shadows) already, e.g. the cloud went back to it
   * after a refused one: the refusal is forgotten and the status says so again.
   */
  confirm(key: string, ref: ModelRef, shadow: boolean): void {
    const refused = this.persisted.refused[key] !== undefined;
    if (refused) {
      delete this.persisted.refused[key];
      this.persist();
    }
    const want: ModelStatusName = shadow ? 'shadow' : 'active';
    const current = this.board.get(key, shadow);
    if (current?.status === want && current.version === ref.version && current.error === null) {
      if (refused) this.changed(key);
      return;
    }
    this.showEntry(key, shadow, ref.version, want, null);
    this.log('info', shadow ? 'desired shadow model is the one running' : 'desired model is the one running', { model: key, version: ref.version });
    this.changed(key);
  }

  /** Shows a persisted refusal again (after a restart) unless the status already says so. */
  showRefusal(key: string, ref: ModelRef, refusal: { status: 'rejected' | 'rolled-back'; reason: string }, shadow = false): void {
    const current = this.board.get(key, shadow);
    if (current?.status === refusal.status && current.version === ref.version) return;
    this.showEntry(key, shadow, ref.version, refusal.status, refusal.reason);
    this.changed(key);
  }

  /**
   * Models (version and sha256) the store must keep for `key`: the live one, its fallback, the
   * shadow, the one its desired entry names (setWanted); null while any stored file may be one of
   * them and none may be pruned: the persisted models are not loaded (the buffer did not open
   * yet), or the desired models are not known yet (the twin was not read since the start).
   */
  keepVersions(key: string): ModelRef[] | null {
    if (!this.stateLoaded) return null;
    const wanted = this.wanted ? this.wanted(key) : null;
    if (wanted === undefined) return null;
    const rec = this.persisted.live[key];
    const keep = [rec, rec?.previous.kind === 'store' ? rec.previous : undefined, this.persisted.shadow[key], wanted ?? undefined];
    return keep.filter((m): m is ModelRef => m !== undefined).map((m) => ({ version: m.version, sha256: m.sha256 }));
  }

  /** Keys whose live model was fitted on this gateway (persisted with origin 'gateway'). */
  gatewayKeys(): string[] {
    return Object.entries(this.persisted.live)
      .filter(([, rec]) => rec.origin !== undefined)
      .map(([key]) => key);
  }

  /** Keys the agent knows anything of (pumps and `default`): a live, shadow or persisted model, a refusal, a status. */
  keysInUse(): string[] {
    const p = this.persisted;
    return [...new Set([...this.deps.engine.keys(), ...Object.keys(p.live), ...Object.keys(p.shadow), ...Object.keys(p.refused), ...this.board.keys()])];
  }

  markDownloading(key: string, version: string, error: string | null = null, shadow = false): void {
    this.showEntry(key, shadow, version, 'downloading', error);
    this.changed(key);
  }

  /**
   * Records a refused model (the current one keeps running) and persists the refusal; `scope`: for
   * a refused download, the settings and URL it was refused under (see refusal()).
   */
  markRejected(key: string, ref: ModelRef, reason: string, shadow = false, scope?: string): void {
    this.persisted.refused[key] = { ...ref, status: 'rejected', reason, ...(scope !== undefined ? { limits: scope } : {}), ...(shadow ? { shadow: true as const } : {}) };
    this.persist();
    this.showEntry(key, shadow, ref.version, 'rejected', reason);
    this.changed(key);
  }

  /** A desired entry that is not even well formed: shown as rejected (the current model keeps running); nothing persisted. */
  markInvalid(key: string, reason: string, version: string | null): void {
    const current = this.board.get(key);
    if (current?.status === 'rejected' && current.error === reason) return;
    this.setStatus(key, this.deps.engine.model(key) ?? null, 'rejected', reason, version ?? undefined);
    this.changed(key);
  }

  setStatus(key: string, model: LoadedModel | null, status: ModelStatusName, error: string | null, version?: string): void {
    this.board.set(key, false, model, status, error, version, this.activeVersion(key, model));
  }

  status(): Record<string, ModelStatus> {
    return this.board.all();
  }

  /** At least one live model (readiness). */
  ready(): boolean {
    return this.deps.engine.keys().length > 0;
  }

  /** Resolves when every queued model change has finished. */
  async idle(): Promise<void> {
    await this.serial.idle();
  }

  async releaseAll(): Promise<void> {
    await this.serial.idle();
    await this.deps.afterCurrentBatch();
    for (const key of this.deps.engine.keys()) {
      const m = this.deps.engine.model(key);
      this.deps.engine.setModel(key, null);
      await m?.release();
    }
    for (const key of this.board.shadowKeys()) {
      const s = this.deps.engine.shadow(key);
      this.deps.engine.setShadow(key, null);
      await s?.release();
    }
  }

  private activeVersion(key: string, model?: LoadedModel | null): string | null {
    const live = model ?? this.deps.engine.model(key);
    if (!live) return null;
    return this.persisted.live[key]?.version ?? live.version;
  }

  private setShadowStatus(key: string, model: LoadedModel | null, version?: string, status: ModelStatusName = 'shadow', error: string | null = null): void {
    const running = this.deps.engine.shadow(key);
    this.board.set(key, true, model ?? running ?? null, status, error, version, running ? (this.persisted.shadow[key]?.version ?? running.version) : null);
  }

  /**
   * The key's desired entry is a shadow now: what an earlier live entry left on the live status
   * (a refusal, a download) no longer applies. A pump with a model of its own shows it active; one
   * without shows only its shadow.
   */
  private entryIsShadow(key: string): void {
    const status = this.board.get(key);
    if (!status || (status.status === 'active' && status.error === null)) return;
    this.showLiveOnly(key);
  }

  /** The status of the key's desired entry (live or shadow), beside the model it runs now. */
  private showEntry(key: string, shadow: boolean, version: string, status: ModelStatusName, error: string | null): void {
    if (shadow) {
      this.setShadowStatus(key, null, version, status, error);
      this.entryIsShadow(key);
    } else this.setStatus(key, this.deps.engine.model(key) ?? null, status, error, version);
  }

  /** The live status shows the running model as active, or goes when the key runs none. */
  private showLiveOnly(key: string): void {
    const live = this.deps.engine.model(key);
    if (live) this.setStatus(key, live, 'active', null, this.activeVersion(key) ?? undefined);
    else this.board.delete(key);
  }

  /** remove() of `default`: back to the start-up model, with no refusal, shadow or stale status left. */
  private async backToStartupDefault(): Promise<boolean> {
    const key = DEFAULT_MODEL_KEY;
    const p = this.persisted;
    const status = this.board.get(key);
    const downloaded = p.live[key];
    const stale = downloaded || p.refused[key] || p.shadow[key] || this.hasShadow(key) || status?.status !== 'active' || status.error !== null;
    if (!stale) return false;
    await this.dropShadowNow(key);
    delete p.refused[key];
    if (downloaded && this.bundledPath) {
      try {
        const model = await loadModelFile(this.bundledPath);
        delete p.live[key];
        this.persist();
        await this.swap(key, model);
        this.log('info', 'default model entry removed: back to the start-up model', { model: key, version: model.version, removedVersion: downloaded.version });
      } catch (err) {
        this.log('error', 'default model entry removed, but the start-up model cannot be loaded; the downloaded one keeps scoring', { model: key, version: downloaded.version, err: (err as Error).message });
      }
    } else this.showLiveOnly(key);
    this.persist();
    this.changed(key);
    return true;
  }

  /** A stored model, loaded; its origin the file's path, or `origin` (a model fitted on the gateway says so). */
  private async loadStored(key: string, ref: ModelRef, origin?: string): Promise<LoadedModel> {
    const store = this.deps.store;
    if (!store) throw new Error('no model store configured');
    const { bytes, path } = await store.load(key, ref);
    return LoadedModel.fromBytes(bytes, origin ?? path);
  }

  /** Deletes the key's files nothing refers to; a failure is logged (the files stay until the next prune). */
  private async pruneStore(key: string): Promise<void> {
    const keep = this.keepVersions(key);
    if (!keep) return;
    try {
      await this.deps.store?.prune(key, keep);
    } catch (err) {
      this.log('warn', 'model store could not be pruned', { model: key, err: (err as Error).message });
    }
  }

  /** The fallback model, loaded; for `default` the bundled one when the stored one is unusable. */
  private async loadPrevious(key: string, prev: PreviousModel): Promise<{ model: LoadedModel | null; ref: ModelRef | null }> {
    if (prev.kind === 'store') {
      try {
        return { model: await this.loadStored(key, prev), ref: prev };
      } catch (err) {
        this.log('error', 'previous model unusable', { model: key, version: prev.version, err: (err as Error).message });
      }
    }
    if (key === DEFAULT_MODEL_KEY && this.bundledPath) return { model: await loadModelFile(this.bundledPath), ref: null };
    return { model: null, ref: null };
  }

  private async dropLive(key: string): Promise<void> {
    const old = this.deps.engine.model(key);
    if (!old || key === DEFAULT_MODEL_KEY) return;
    this.deps.engine.setModel(key, null);
    await this.deps.afterCurrentBatch();
    await old.release();
  }

  private async dropShadowNow(key: string): Promise<void> {
    const old = this.deps.engine.shadow(key);
    this.deps.engine.setShadow(key, null);
    delete this.persisted.shadow[key];
    this.board.delete(key, true);
    if (old) {
      await this.deps.afterCurrentBatch();
      await old.release();
    }
  }

  private persist(): void {
    if (!this.deps.kv) return;
    try {
      saveState(this.deps.kv, this.persisted);
    } catch (err) {
      this.log('error', 'active models could not be persisted', { err: (err as Error).message });
    }
  }

  private changed(key: string): void {
    for (const l of this.listeners) l(key);
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void {
    this.deps.log?.(level, msg, { component: 'models', ...fields });
  }
}
