/**
 * Brings the models in line with the desired `models` map, one key at a time and one change at a
 * time: for each changed entry download (or reuse the stored file), verify, store atomically,
 * check the contract, load a session, validate it on recent readings, and only then switch the
 * pump between two micro-batches. The latest desired map always wins: a download for an entry
 * that changed meanwhile is cancelled, and a model that became stale is never switched in.
 * A transient download failure is retried later with backoff without holding up other keys.
 */
import type { BackoffPolicy } from './backoff.js';
import { backoffDelay } from './backoff.js';
import { ModelDownloadError, safeUrl } from './download.js';
import { LoadedModel } from './model.js';
import type { ModelStore } from './model-store.js';
import type { ModelManager, ModelRef } from './models.js';
import { validateModel, type RecentByPump } from './validate.js';

export interface DesiredModel {
  version: string;
  url: string;
  sha256: string;
  size: number;
  /** Score beside the live model (stored, never alerted) instead of replacing it. */
  shadow?: boolean;
}

export interface UpdaterDeps {
  manager: ModelManager;
  store: ModelStore;
  download: (entry: DesiredModel, signal: AbortSignal) => Promise<Uint8Array>;
  /** Recent readings of the pumps `key` would score. */
  recent: (key: string) => RecentByPump;
  /** When to try a transient failure again (default 30 s doubling to 15 min). */
  retry?: BackoffPolicy;
  clock?: () => number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>) => void;
}

const yieldToBatches = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function sameEntry(a: DesiredModel | undefined, b: DesiredModel | undefined): boolean {
  return !!a && !!b && a.version === b.version && a.sha256.toLowerCase() === b.sha256.toLowerCase() && a.url === b.url && a.size === b.size && !!a.shadow === !!b.shadow;
}

export class ModelUpdater {
  private desired = new Map<string, DesiredModel>();
  private hold = new Set<string>();
  private running: Promise<void> | null = null;
  private dirty = false;
  private stopped = false;
  private current: { key: string; entry: DesiredModel; abort: AbortController } | null = null;
  /** How long the steps of the last successful install took (ms), for benchmarks and logs. */
  lastTimings: { obtainMs: number; loadMs: number; validateMs: number; switchMs: number } | null = null;
  private readonly retries = new Map<string, { attempt: number; at: number; timer: NodeJS.Timeout }>();

  constructor(private readonly deps: UpdaterDeps) {}

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
    if (this.current && !sameEntry(next.get(this.current.key), this.current.entry)) this.current.abort.abort();
    this.kick();
  }

  /** Resolves when no reconciliation is running (tests, clean stop). */
  async idle(): Promise<void> {
    while (this.running) await this.running;
    await this.deps.manager.idle();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.current?.abort.abort();
    for (const r of this.retries.values()) clearTimeout(r.timer);
    this.retries.clear();
    await this.idle();
  }

  private kick(): void {
    if (this.stopped) return;
    this.dirty = true;
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.dirty && !this.stopped) {
        this.dirty = false;
        await this.reconcileAll();
      }
    } catch (err) {
      this.log('error', 'model reconciliation failed', { err: (err as Error).message });
    } finally {
      this.running = null;
    }
  }

  private async reconcileAll(): Promise<void> {
    const desired = this.desired;
    const { manager } = this.deps;
    for (const key of manager.keysInUse()) if (!desired.has(key) && !this.hold.has(key)) await manager.remove(key);
    for (const [key, entry] of desired) {
      if (this.dirty || this.stopped) return;
      await this.reconcileKey(key, entry);
    }
  }

  private async reconcileKey(key: string, entry: DesiredModel): Promise<void> {
    const { manager } = this.deps;
    const ref: ModelRef = { version: entry.version, sha256: entry.sha256.toLowerCase() };
    const shadow = entry.shadow === true;
    if (shadow ? manager.isShadow(key, ref) : manager.isActive(key, ref)) {
      if (shadow === false && manager.isShadow(key, ref)) await manager.setShadow(key, null);
      return;
    }
    if (!shadow && manager.hasShadow(key) && !manager.isShadow(key, ref)) await manager.setShadow(key, null);
    const refused = manager.refusal(key, ref);
    if (refused) {
      manager.showRefusal(key, ref, refused, shadow);
      return;
    }
    const retry = this.retries.get(key);
    if (retry && retry.at > this.now()) return;
    const abort = new AbortController();
    this.current = { key, entry, abort };
    try {
      manager.markDownloading(key, entry.version, null, shadow);
      const t0 = performance.now();
      const bytes = await this.obtain(key, entry, ref, abort.signal);
      // Each step below runs on the event loop; yielding between them lets micro-batches run in between.
      await yieldToBatches();
      const t1 = performance.now();
      const model = await LoadedModel.fromBytes(bytes, safeUrl(entry.url));
      const t2 = performance.now();
      try {
        await yieldToBatches();
        const t3 = performance.now();
        const report = await validateModel(model, this.deps.recent(key));
        const t4 = performance.now();
        await yieldToBatches();
        if (abort.signal.aborted || !sameEntry(this.desired.get(key), entry)) throw abort.signal.reason ?? new Error('superseded');
        const t5 = performance.now();
        if (shadow) await manager.setShadow(key, model, ref);
        else await manager.activate(key, model, ref);
        this.lastTimings = { obtainMs: t1 - t0, loadMs: t2 - t1, validateMs: t4 - t3, switchMs: performance.now() - t5 };
        this.log('info', shadow ? 'shadow model started' : 'model activated', { model: key, version: entry.version, validatedWindows: report.windows, timings: this.lastTimings });
      } catch (err) {
        await model.release();
        throw err;
      }
      this.clearRetry(key);
    } catch (err) {
      this.failed(key, entry, ref, shadow, err, abort.signal.aborted);
    } finally {
      this.current = null;
      await this.deps.store.prune(key, manager.keepVersions(key)).catch(() => undefined);
    }
  }

  /** The verified bytes: from the store when a good copy is there (restart, promotion), else downloaded and stored. */
  private async obtain(key: string, entry: DesiredModel, ref: ModelRef, signal: AbortSignal): Promise<Uint8Array> {
    const { store } = this.deps;
    if (await store.has(key, entry.version)) {
      try {
        return await store.read(key, entry.version, ref.sha256);
      } catch {
        // a stale or damaged copy: download again
      }
    }
    const bytes = await this.deps.download(entry, signal);
    await store.write(key, entry.version, bytes);
    return bytes;
  }

  private failed(key: string, entry: DesiredModel, ref: ModelRef, shadow: boolean, err: unknown, aborted: boolean): void {
    if (aborted) return; // superseded by a newer desired entry: the loop runs again with it
    const reason = (err as Error).message;
    if (err instanceof ModelDownloadError && err.transient) {
      const attempt = (this.retries.get(key)?.attempt ?? 0) + 1;
      const delay = backoffDelay(this.deps.retry ?? { baseMs: 30_000, capMs: 15 * 60_000 }, attempt);
      const timer = setTimeout(() => this.kick(), delay);
      timer.unref();
      this.retries.set(key, { attempt, at: this.now() + delay, timer });
      this.deps.manager.markDownloading(key, entry.version, `${reason}; next attempt in ${Math.ceil(delay / 1000)} s`, shadow);
      this.log('warn', 'model download failed; will retry', { model: key, version: entry.version, reason, retryInMs: delay });
      return;
    }
    this.clearRetry(key);
    this.deps.manager.markRejected(key, ref, reason, shadow);
    this.log('warn', 'model rejected', { model: key, version: entry.version, code: (err as { code?: string }).code, reason });
  }

  private clearRetry(key: string): void {
    const r = this.retries.get(key);
    if (r) clearTimeout(r.timer);
    this.retries.delete(key);
  }

  private now(): number {
    return (this.deps.clock ?? Date.now)();
  }

  private log(level: 'info' | 'warn' | 'error', msg: string, fields: Record<string, unknown>): void {
    this.deps.log?.(level, msg, { component: 'model-updater', ...fields });
  }
}
