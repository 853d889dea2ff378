/**
 * Brings the models in line with the desired `models` map. Each key (pump or `default`) has its
 * own job, so one slow or hanging download never holds up another key: downloads run side by side
 * (a few at once), while loading, validating and switching a model into service run one at a time.
 * For each changed entry: download (or reuse the stored file), verify, store atomically, check the
 * contract and that the file is the version the entry names, load a session, validate it on recent
 * readings, and only then switch the pump between two micro-batches. The latest desired map always
 * wins: a download for an entry that changed or was deleted meanwhile is cancelled, and a model
 * that became stale is never switched in; an entry whose URL alone changed (refresh-urls) is the
 * same model, whose download goes on and asks the new URL for what it still needs. A deleted entry takes the key's model, refusal and status
 * with it. A transient download failure is retried later with backoff. A download refused for what
 * its URL answered (403, 404, wrong bytes) is tried again when the entry names another URL.
 *
 * Beside the twin's map, the models fitted on this gateway (agent/first-model: `local`) are
 * entries too, for the keys the twin names no model for: their bytes are in the model store
 * already, so they are read from it (never downloaded), then loaded, validated, switched in,
 * persisted and rolled back on a fault as any other. A local entry is made here from
 * UpdaterDeps.local alone (LocalEntry): nothing in the desired map can be one, nor point at a file.
 * A local model running for a key that has no entry any more is removed (the pump goes back to
 * `default`) unless UpdaterDeps.keepLocal keeps it. Before the first desired map only local
 * entries and those removals run (nothing else is removed or pruned then).
 */
import { createHash } from 'node:crypto';
import type { BackoffPolicy } from './backoff.js';
import { backoffDelay } from './backoff.js';
import { FRESH_URL_ADVICE, ModelDownloadError, safeUrl } from './download.js';
import { LoadedModel } from './model.js';
import { ModelStoreError, type ModelStore } from './model-store.js';
import type { ModelManager, ModelRef } from './models.js';
import { ConcurrencyLimit, SerialQueue } from './serial.js';
import { checkVersion, validateModel, type RecentByPump } from './validate.js';

/** The origin of a model fitted on this gateway: what /status and the reported properties show for it. */
export const GATEWAY_ORIGIN = 'gateway';

export interface DesiredModel {
  version: string;
  url: string;
  sha256: string;
  size: number;
  /** Score beside the live model (stored, never alerted) instead of replacing it. */
  shadow?: boolean;
}

/** A model fitted on this gateway whose bytes the model store holds under its key (see UpdaterDeps.local). */
export interface LocalModel {
  version: string;
  sha256: string;
  size: number;
}

/** A local model as an entry of the updater: built only from UpdaterDeps.local, never from the twin. */
class LocalEntry {
  readonly shadow = false;
  constructor(
    readonly version: string,
    readonly sha256: string,
    readonly size: number,
  ) {}
}

type Entry = DesiredModel | LocalEntry;

const isLocal = (entry: Entry | null | undefined): entry is LocalEntry => entry instanceof LocalEntry;

export interface UpdaterDeps {
  manager: ModelManager;
  /**
   * The models fitted on this gateway, by key (agent/first-model): each is the key's entry while
   * the twin has no entry for it (a malformed one holds the key as it is). Asked at every reconcile.
   */
  local?: () => ReadonlyMap<string, LocalModel>;
  /**
   * Whether a local model running for `key`, now neither its local entry nor named by the twin,
   * keeps scoring (a retired first model, until the cloud's model replaces it); when false it is
   * removed, before the first desired map too (the setting turned off). Default: kept.
   */
  keepLocal?: (key: string) => boolean;
  /** Called (before any key runs) with the keys each desired map names a valid entry for: their local models are retired. */
  onTwinNamed?: (keys: readonly string[]) => void;
  /** A local model could not be installed (its file unreadable, refused by validation): refused as a model is, and said here. */
  onLocalRefused?: (key: string, version: string, reason: string) => void;
  store: ModelStore;
  /**
   * `latestUrl`: the URL each new request of the download uses (a resume, a retry): the desired
   * entry's newest for the same model, which a URL refresh changes while the download runs.
   */
  download: (entry: DesiredModel, signal: AbortSignal, key: string, latestUrl: () => string) => Promise<Uint8Array>;
  /** Recent readings of the pumps `key` would score. */
  recent: (key: string) => RecentByPump;
  /**
   * The agent's own download settings a refusal can depend on (size limit, plain http allowed),
   * as one string: a refused download is tried again once they change (see downloadScope).
   */
  limits?: () => string;
  /** Downloads running at once, over all keys (default 4). */
  parallelDownloads?: number;
  /** When to try a transient failure again (default 30 s doubling to 15 min). */
  retry?: BackoffPolicy;
  /** The caller names the component (agent/edge/model-updates.ts: a child logger), as for its own lines. */
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
}

/** One key's reconciliation: `again` when the desired map changed while it ran. */
interface KeyJob {
  again: boolean;
  /** The entry being installed now and how to cancel it. */
  entry: Entry | null;
  abort: AbortController | null;
  done: Promise<void>;
}

const yieldToBatches = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sameEntry(a: Entry | undefined | null, b: Entry | undefined | null): boolean {
  return sameModel(a, b) && urlOf(a!) === urlOf(b!);
}

const urlOf = (entry: Entry): string | null => (isLocal(entry) ? null : entry.url);

/**
 * The same model in the same role, wherever its URL points: `refresh-urls` signs a new URL for the
 * same blob every few days, and a download or an install of the model is not started again for it.
 */
function sameModel(a: Entry | undefined | null, b: Entry | undefined | null): boolean {
  return !!a && !!b && isLocal(a) === isLocal(b) && a.version === b.version && a.sha256.toLowerCase() === b.sha256.toLowerCase() && a.size === b.size && !!a.shadow === !!b.shadow;
}

export class ModelUpdater {
  private desired = new Map<string, DesiredModel>();
  private hold = new Set<string>();
  /** A desired map came (setDesired): until then nothing is known to be undesired, and no key is removed or pruned. */
  private received = false;
  private stopped = false;
  /** The running look for store folders of keys nobody knows (see sweepStore). */
  private sweeping: Promise<void> = Promise.resolve();
  private readonly jobs = new Map<string, KeyJob>();
  private readonly downloads: ConcurrencyLimit;
  /** Loading, validation and the switch: one model at a time (CPU and memory of the gateway). */
  private readonly installs = new SerialQueue();
  /** How long the steps of the last successful install took (ms), for benchmarks and logs. */
  lastTimings: { obtainMs: number; loadMs: number; validateMs: number; switchMs: number } | null = null;
  /** Transient failures waiting for their retry timer; `due` once it fired (a timer never follows the wall clock's steps). */
  private readonly retries = new Map<string, { attempt: number; due: boolean; timer: NodeJS.Timeout }>();

  constructor(private readonly deps: UpdaterDeps) {
    this.downloads = new ConcurrencyLimit(deps.parallelDownloads ?? 4);
    // Every prune (a rollback's too) keeps what the desired entry names; none runs before the first desired map.
    deps.manager.setWanted((key) => this.wanted(key));
    // The persisted models came back after the twin was read (the buffer opened late).
    deps.manager.onRestored(() => this.resync());
  }

  /**
   * Replaces the desired map (keys absent from it lose their own model); keys in `hold` (their
   * entry is malformed) keep whatever they run now. Returns at once; work runs in the background.
   */
  setDesired(models: Readonly<Record<string, DesiredModel>>, hold: readonly string[] = []): void {
    this.hold = new Set(hold);
    const next = new Map(Object.entries(models).filter(([key]) => !this.hold.has(key)));
    for (const [key, r] of this.retries) {
      if (!sameEntry(next.get(key), this.desired.get(key))) {
        clearTimeout(r.timer);
        this.retries.delete(key);
      }
    }
    this.desired = next;
    this.received = true;
    // The keys the twin names now retire their local models before any key runs.
    this.deps.onTwinNamed?.([...next.keys()]);
    this.entriesChanged();
  }

  /**
   * The local models changed (one fitted, one retired): every key runs against them again. Keys the
   * twin names are not touched (its entry wins). Before the first desired map, only local keys run.
   */
  localChanged(): void {
    this.entriesChanged();
  }

  /** Whether the desired map names `key` (a valid entry, or a malformed one that holds it): no local model is its entry. */
  named(key: string): boolean {
    return this.desired.has(key) || this.hold.has(key);
  }

  private entriesChanged(): void {
    // A new URL alone does not cancel a download: it goes on, and asks the new URL for what it still needs.
    for (const [key, job] of this.jobs) if (job.entry && !sameModel(this.entryOf(key), job.entry)) job.abort?.abort();
    this.kick();
  }

  /** The local models as entries, by key. */
  private localEntries(): Map<string, LocalEntry> {
    const out = new Map<string, LocalEntry>();
    for (const [key, m] of this.deps.local?.() ?? []) out.set(key, new LocalEntry(m.version, m.sha256.toLowerCase(), m.size));
    return out;
  }

  /** The key's entry: the twin's, else (unless a malformed twin entry holds the key) its local model's. */
  private entryOf(key: string): Entry | undefined {
    const desired = this.desired.get(key);
    if (desired || this.hold.has(key)) return desired;
    return this.localEntries().get(key);
  }

  /**
   * Runs every key against the last desired map again (nothing before the first one came): the
   * persisted models came back late (the buffer opened after the twin was read), and one of them
   * may be a key the twin removed meanwhile, or keep files its desired entry no longer needs.
   */
  resync(): void {
    this.kick();
  }

  /** Resolves when no key is being reconciled (tests, clean stop). */
  async idle(): Promise<void> {
    await this.sweeping;
    while (this.jobs.size > 0) await Promise.all([...this.jobs.values()].map((j) => j.done));
    await this.deps.manager.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const job of this.jobs.values()) job.abort?.abort();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await this.idle();
  }

  /**
   * Starts (or re-runs) the job of every key that is desired or has a local model, or known to the
   * agent and no longer desired. Before the first desired map, only the keys with a local model.
   */
  private kick(): void {
    if (this.stopped) return;
    const local = [...this.localEntries().keys()].filter((key) => !this.named(key));
    if (!this.received) {
      for (const key of [...local, ...this.localsToRemove()]) this.startJob(key);
      return;
    }
    const keys = new Set([...this.desired.keys(), ...local, ...this.deps.manager.keysInUse(), ...this.jobs.keys()]);
    for (const key of keys) if (this.desired.has(key) || !this.hold.has(key)) this.startJob(key);
    this.sweeping = this.sweeping.then(() => this.sweepStore()).catch((err: unknown) => this.log('warn', 'model store folders could not be listed', { err: (err as Error).message }));
  }

  /**
   * The store's folders of keys neither desired nor known to the agent (a pump removed while the
   * agent was down, a removal a crash cut short) get a job too: it has nothing to remove and
   * prunes the folder. Not at start-up: a folder may hold a model stored but not switched in
   * when the agent stopped, which its desired entry takes from the store.
   */
  private async sweepStore(): Promise<void> {
    const keys = await this.deps.store.keys();
    if (this.stopped) return;
    const known = new Set([...this.deps.manager.keysInUse(), ...this.localEntries().keys()]);
    for (const key of keys) if (!this.desired.has(key) && !this.hold.has(key) && !known.has(key) && !this.jobs.has(key)) this.startJob(key);
  }

  /** Keys running a local model that is no longer their entry, and that UpdaterDeps.keepLocal does not keep. */
  private localsToRemove(): string[] {
    const local = this.localEntries();
    return this.deps.manager.gatewayKeys().filter((key) => this.removableLocal(key, local));
  }

  private isLocalToRemove(key: string): boolean {
    return this.deps.manager.gatewayKeys().includes(key) && this.removableLocal(key, this.localEntries());
  }

  /** A key running a local model (the caller knows) that neither its local entry nor the twin names, and keepLocal does not keep. */
  private removableLocal(key: string, local: ReadonlyMap<string, LocalEntry>): boolean {
    const keep = this.deps.keepLocal;
    return keep !== undefined && !this.named(key) && !local.has(key) && !keep(key);
  }

  private startJob(key: string): void {
    const running = this.jobs.get(key);
    if (running) {
      running.again = true;
      return;
    }
    const job: KeyJob = { again: true, entry: null, abort: null, done: Promise.resolve() };
    this.jobs.set(key, job);
    job.done = this.runJob(key, job);
  }

  private async runJob(key: string, job: KeyJob): Promise<void> {
    try {
      while (job.again && !this.stopped) {
        job.again = false;
        const entry = this.entryOf(key);
        if (entry) await this.reconcileKey(key, entry, job);
        // Before the first desired map nothing is known to be undesired, but a local model no longer kept.
        else if (!this.hold.has(key) && (this.received || this.isLocalToRemove(key))) await this.removeKey(key);
      }
    } catch (err) {
      this.log('error', 'model reconciliation failed', { model: key, err: (err as Error).message });
    } finally {
      // No await between the last look at `again` and here: a change made meanwhile starts a new job.
      this.jobs.delete(key);
    }
  }

  private async removeKey(key: string): Promise<void> {
    const local = this.deps.manager.gatewayKeys().includes(key);
    await this.deps.manager.remove(key, local ? 'first model fitted on the gateway taken out of service; the pump is scored by the default model' : undefined);
    await this.prune(key);
  }

  /**
   * Brings `key` to its desired entry, then prunes its files whatever the way out: a restart or a
   * rollback leaves files nothing refers to while the entry stays the same, and a reconcile that
   * finds the model running already would never get rid of them (one readdir).
   */
  private async reconcileKey(key: string, entry: Entry, job: KeyJob): Promise<void> {
    try {
      await this.reconcileEntry(key, entry, job);
    } finally {
      await this.prune(key);
    }
  }

  private async reconcileEntry(key: string, entry: Entry, job: KeyJob): Promise<void> {
    const { manager } = this.deps;
    const ref: ModelRef = { version: entry.version, sha256: entry.sha256.toLowerCase() };
    const shadow = entry.shadow === true;
    const current = (): boolean => !this.stopped && sameModel(this.entryOf(key), entry);
    if (!shadow && manager.hasShadow(key) && !manager.isShadow(key, ref)) await manager.setShadow(key, null);
    if (!current()) return; // changed meanwhile: the job runs again
    if (shadow ? manager.isShadow(key, ref) : manager.isActive(key, ref)) {
      if (!shadow && manager.isShadow(key, ref)) await manager.setShadow(key, null);
      // The cloud came back to the model running now (after a refused one, say): that is the status again.
      if (current()) manager.confirm(key, ref, shadow);
      this.clearRetry(key);
      return;
    }
    const refused = manager.refusal(key, ref, this.scopeOf(entry));
    if (refused) {
      manager.showRefusal(key, ref, refused, shadow);
      return;
    }
    const retry = this.retries.get(key);
    if (retry && !retry.due) return;
    const abort = new AbortController();
    job.entry = entry;
    job.abort = abort;
    let release = (): void => undefined;
    try {
      // A local model is not downloaded: its status changes when it is switched in (or refused).
      if (!isLocal(entry)) manager.markDownloading(key, entry.version, null, shadow);
      // Its file is not the key's live model or shadow until the switch: a prune meanwhile (a rollback, a late restore) leaves it.
      release = this.deps.store.hold(key, ref);
      const t0 = performance.now();
      const bytes = await this.downloads.run(() => this.obtain(key, entry, ref, abort.signal), abort.signal);
      await this.installs.run(() => this.install(key, entry, ref, bytes, abort.signal, performance.now() - t0));
      this.clearRetry(key);
    } catch (err) {
      this.failed(key, entry, ref, shadow, err, abort.signal.aborted);
    } finally {
      release();
      job.entry = null;
      job.abort = null;
    }
  }

  /** Deletes the key's files nothing needs (ModelManager.keepVersions: its models and the desired entry's). */
  private async prune(key: string): Promise<void> {
    const keep = this.deps.manager.keepVersions(key);
    if (keep) await this.deps.store.prune(key, keep).catch(() => undefined);
  }

  /**
   * The model the key's desired entry names, unless it was refused: a file stored before the agent
   * stopped, not switched in yet, is its next install's copy. Undefined while it cannot be told
   * (before the first desired map, or the key's entry is malformed): any file may be the one it
   * names. Null for a key with no entry.
   */
  private wanted(key: string): ModelRef | null | undefined {
    if (!this.received || this.hold.has(key)) return undefined;
    const entry = this.entryOf(key);
    if (!entry) return null;
    const ref: ModelRef = { version: entry.version, sha256: entry.sha256.toLowerCase() };
    return this.deps.manager.refusal(key, ref, this.scopeOf(entry)) ? null : ref;
  }

  /** Loads, checks and validates verified bytes, then switches them into service unless the entry changed meanwhile. */
  private async install(key: string, entry: Entry, ref: ModelRef, bytes: Uint8Array, signal: AbortSignal, obtainMs: number): Promise<void> {
    const { manager } = this.deps;
    const shadow = entry.shadow === true;
    const stale = (): boolean => signal.aborted || !sameModel(this.entryOf(key), entry);
    if (stale()) throw (signal.reason as Error | undefined) ?? new Error('superseded');
    // Each step below runs on the event loop; yielding between them lets micro-batches run in between.
    await yieldToBatches();
    const t1 = performance.now();
    const model = await LoadedModel.fromBytes(bytes, isLocal(entry) ? GATEWAY_ORIGIN : safeUrl(entry.url));
    const t2 = performance.now();
    try {
      checkVersion(model, entry.version);
      await yieldToBatches();
      const t3 = performance.now();
      const report = await validateModel(model, this.deps.recent(key));
      const t4 = performance.now();
      await yieldToBatches();
      if (stale()) throw (signal.reason as Error | undefined) ?? new Error('superseded');
      const t5 = performance.now();
      if (shadow) await manager.setShadow(key, model, ref);
      else await manager.activate(key, model, ref, isLocal(entry) ? GATEWAY_ORIGIN : undefined);
      this.lastTimings = { obtainMs, loadMs: t2 - t1, validateMs: t4 - t3, switchMs: performance.now() - t5 };
      const what = shadow ? 'shadow model started' : isLocal(entry) ? 'first model fitted on the gateway activated' : 'model activated';
      this.log('info', what, { model: key, version: entry.version, ...(isLocal(entry) ? { origin: GATEWAY_ORIGIN } : {}), validatedWindows: report.windows, timings: this.lastTimings });
    } catch (err) {
      await model.release();
      throw err;
    }
  }

  /** The verified bytes: from the store when a good copy is there (restart, promotion), else downloaded and stored. */
  private async obtain(key: string, entry: Entry, ref: ModelRef, signal: AbortSignal): Promise<Uint8Array> {
    const { store } = this.deps;
    // A local model is in the store or nowhere: its file, sha256-checked (a missing or damaged one is refused).
    if (isLocal(entry)) return store.read(key, ref);
    if (await store.has(key, ref)) {
      try {
        return await store.read(key, ref);
      } catch {
        // a damaged copy, or other bytes under the version's pre-upgrade name: download again
      }
    }
    const latestUrl = (): string => {
      const now = this.desired.get(key);
      return now && sameModel(now, entry) ? now.url : entry.url;
    };
    const bytes = await this.deps.download(entry, signal, key, latestUrl);
    if (signal.aborted) throw signal.reason as Error;
    // Under its own name (version and sha256): bytes not loaded yet never replace the file of the model running.
    await store.write(key, ref, bytes);
    return bytes;
  }

  private failed(key: string, entry: Entry, ref: ModelRef, shadow: boolean, err: unknown, aborted: boolean): void {
    if (aborted) return; // superseded or deleted: the key's job runs again with the desired map as it is now
    const reason = (err as Error).message;
    if (isLocal(entry)) {
      // Nothing to download again: refused as a model is (not tried again), and its fitter told.
      this.clearRetry(key);
      this.deps.manager.markRejected(key, ref, reason);
      this.log('warn', 'first model fitted on the gateway refused', { model: key, version: entry.version, origin: GATEWAY_ORIGIN, code: (err as { code?: string }).code, reason });
      this.deps.onLocalRefused?.(key, entry.version, reason);
      return;
    }
    // A download that may work later, or verified bytes this agent could not store (disk full): tried again, never refused.
    if ((err instanceof ModelDownloadError && err.transient) || (err instanceof ModelStoreError && err.code === 'PW_MODEL_STORE_IO')) {
      const attempt = (this.retries.get(key)?.attempt ?? 0) + 1;
      // Never sooner than the server's Retry-After (trusted up to an hour: lib/retry-after.ts caps it).
      const retryAfter = err instanceof ModelDownloadError ? (err.retryAfterMs ?? 0) : 0;
      const delay = Math.max(backoffDelay(this.deps.retry ?? { baseMs: 30_000, capMs: 15 * 60_000 }, attempt), retryAfter);
      // The timer alone says when the retry is due. A time compared with a clock of ours disagreed
      // with it: Node's timers may fire up to 1 ms before performance.now() reaches their delay.
      const timer = setTimeout(() => {
        const r = this.retries.get(key);
        if (r?.timer === timer) r.due = true;
        this.kick();
      }, delay);
      timer.unref();
      this.retries.set(key, { attempt, due: false, timer });
      this.deps.manager.markDownloading(key, entry.version, `${reason}; next attempt in ${Math.ceil(delay / 1000)} s`, shadow);
      this.log('warn', err instanceof ModelStoreError ? 'model could not be stored; will retry' : 'model download failed; will retry', { model: key, version: entry.version, reason, retryInMs: delay });
      return;
    }
    this.clearRetry(key);
    // Under the URL that was refused: a newer one for the same model (a refresh meanwhile) is tried when the job runs again.
    const scope = this.refusalScope(err, err instanceof ModelDownloadError && err.url !== null ? { ...entry, url: err.url } : entry);
    // The desired key is the trainer's source (it writes models.<source>), so the command can be named in full here.
    const command = `pumpwatch-trainer deploy --source ${key} --version ${entry.version}${shadow ? ' --shadow' : ''}`;
    const refusal = err instanceof ModelDownloadError && err.code === 'PW_MODEL_URL_EXPIRED' ? reason.replace(FRESH_URL_ADVICE, `${FRESH_URL_ADVICE} (${command})`) : reason;
    this.deps.manager.markRejected(key, ref, refusal, shadow, scope);
    this.log('warn', 'model rejected', { model: key, version: entry.version, code: (err as { code?: string }).code, reason: refusal });
  }

  private clearRetry(key: string): void {
    const r = this.retries.get(key);
    if (r) clearTimeout(r.timer);
    this.retries.delete(key);
  }

  /**
   * What a refused download depends on: this agent's download settings (a model over the size
   * limit passes once it is raised) and the URL. What one URL answered says nothing of another: the
   * trainer's `deploy` signs a new URL for the same version (an expired SAS, a blob that moved), and
   * the version and sha256 the refusal is recorded under stay the same. The URL is kept as a hash:
   * it holds a SAS token, and this is persisted.
   */
  /**
   * What a refusal holds under (see ModelManager.refusal): a refused download, while this agent's
   * settings and the URL stay as they are (downloadScope); bytes that are not the entry's (their
   * size or sha256), for good, as a model refused for its content: another URL of the same blob
   * gives the same bytes, and refresh-urls signs one every few days, so each would be downloaded
   * in full and refused again. Only a limit of this agent's own makes those worth another try.
   */
  private refusalScope(err: unknown, entry: DesiredModel): string | undefined {
    if (!(err instanceof ModelDownloadError)) return undefined;
    const bytes = err.code === 'PW_MODEL_SIZE_MISMATCH' || err.code === 'PW_MODEL_SHA256_MISMATCH' || (err.code === 'PW_MODEL_TOO_LARGE' && !err.local);
    if (bytes) return undefined;
    return this.downloadScope(entry);
  }

  /** What a refusal of the entry holds under: a download's scope; none for a local model (refused for good). */
  private scopeOf(entry: Entry): string | undefined {
    return isLocal(entry) ? undefined : this.downloadScope(entry);
  }

  private downloadScope(entry: DesiredModel): string {
    const url = createHash('sha256').update(entry.url).digest('hex').slice(0, 32);
    return `${this.deps.limits?.() ?? ''} url:${url}`;
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void {
    this.deps.log?.(level, msg, fields);
  }
}
