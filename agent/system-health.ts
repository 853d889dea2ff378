import { statfs } from 'node:fs/promises';
import { resolve } from 'node:path';
import { HousekeepingThread } from './housekeeping.js';

/** How long a sample waits for the data dir's statfs. */
const DISK_TIMEOUT_MS = 5_000;

export interface SystemSnapshot {
  sampledAt: string | null;
  cpu: { loadPercent: number | null; cores: number | null };
  memory: { totalBytes: number | null; availableBytes: number | null; usedPercent: number | null };
  disk: { path: string; totalBytes: number | null; freeBytes: number | null; usedPercent: number | null };
  temperature: { mainCelsius: number | null; maxCelsius: number | null };
  processRssBytes: number;
  error?: string;
}

/**
 * The gateway's health, sampled by a scheduled job and served from the last sample, so /status
 * never waits on the OS. CPU, memory and temperature come from systeminformation, which runs shell
 * commands synchronously (spawnSync/execSync): on the event loop that would stall scoring and HTTP
 * for tens of milliseconds, so it runs on the housekeeping thread (agent/housekeeping.ts). The disk
 * is the data dir's own file system, from statfs (see sampleDisk).
 */
export class SystemHealth {
  private snapshot: SystemSnapshot;
  private readonly thread: HousekeepingThread;
  /** A statfs of the data dir has not returned yet. */
  private diskPending = false;
  /** ...and it was already late at a sample (see held). */
  private diskLate = false;
  /** True when this instance started the thread itself (it then ends it in close()). */
  private readonly ownsThread: boolean;

  /**
   * `thread`: the agent's housekeeping thread, shared with the buffer's checkpoints; without one,
   * a thread of its own that only samples.
   */
  constructor(
    private readonly dataDir: string,
    thread?: HousekeepingThread,
  ) {
    this.thread = thread ?? new HousekeepingThread();
    this.ownsThread = thread === undefined;
    this.snapshot = {
      sampledAt: null,
      cpu: { loadPercent: null, cores: null },
      memory: { totalBytes: null, availableBytes: null, usedPercent: null },
      disk: { path: dataDir, totalBytes: null, freeBytes: null, usedPercent: null },
      temperature: { mainCelsius: null, maxCelsius: null },
      processRssBytes: process.memoryUsage.rss(),
    };
  }

  latest(): SystemSnapshot {
    return { ...this.snapshot, processRssBytes: process.memoryUsage.rss() };
  }

  /**
   * Samples every figure; those that come are kept, those that do not are null and named in
   * `error` (a hung `df`-like call on one figure must not blank the others).
   */
  async sample(): Promise<SystemSnapshot> {
    const [raw, disk] = await Promise.all([this.thread.sample(), this.sampleDisk()]);
    const problems = [...(raw.error !== undefined ? [raw.error] : []), ...(raw.errors ?? []), ...('error' in disk ? [disk.error] : [])];
    const any = raw.load !== undefined || raw.mem !== undefined || raw.temp !== undefined || !('error' in disk);
    const mem = raw.mem;
    this.snapshot = {
      sampledAt: any ? new Date().toISOString() : this.snapshot.sampledAt,
      cpu: { loadPercent: raw.load ? round(raw.load.currentLoad) : null, cores: raw.load?.cores || null },
      memory: {
        totalBytes: mem?.total ?? null,
        availableBytes: mem?.available ?? null,
        usedPercent: mem ? round(((mem.total - mem.available) / mem.total) * 100) : null,
      },
      disk: 'error' in disk ? { path: this.dataDir, totalBytes: null, freeBytes: null, usedPercent: null } : { path: this.dataDir, ...disk },
      temperature: { mainCelsius: finiteOrNull(raw.temp?.main), maxCelsius: finiteOrNull(raw.temp?.max) },
      processRssBytes: process.memoryUsage.rss(),
      ...(problems.length > 0 ? { error: problems.join('; ') } : {}),
    };
    return this.snapshot;
  }

  /**
   * The data dir's own file system, from statfs (the figures `df` shows for it): no child process,
   * and no mount table to match the path against. Never two at once: while one is stuck (a hung
   * network mount) the next sample says so instead of starting another.
   */
  private async sampleDisk(): Promise<{ totalBytes: number; freeBytes: number; usedPercent: number | null } | { error: string }> {
    if (this.diskPending) return { error: 'disk: the previous statfs of the data directory has not returned' };
    const pending = statfs(resolve(this.dataDir));
    this.diskPending = true;
    const settle = () => {
      this.diskPending = false;
      this.diskLate = false;
    };
    pending.then(settle, settle);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((done) => {
      timer = setTimeout(() => done('late'), DISK_TIMEOUT_MS);
    });
    try {
      const s = await Promise.race([pending, late]);
      if (s === 'late') {
        this.diskLate = this.diskPending;
        return { error: `disk: statfs of the data directory gave no answer in ${DISK_TIMEOUT_MS / 1000} s` };
      }
      const used = s.blocks - s.bfree;
      return {
        totalBytes: s.blocks * s.bsize,
        freeBytes: s.bavail * s.bsize,
        // As df's Use%: of the blocks an unprivileged process may use (root's reserve left out).
        usedPercent: used + s.bavail > 0 ? round((used / (used + s.bavail)) * 100) : null,
      };
    } catch (err) {
      return { error: `disk: ${(err as Error).message}` };
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * What would keep node's exit waiting forever: a statfs of the data dir the OS has not answered
   * (it holds a thread of node's pool, which node's exit waits for), else null.
   */
  held(): string | null {
    return this.diskLate ? `a statfs of the data directory has not returned (more than ${DISK_TIMEOUT_MS / 1000} s)` : null;
  }

  /** Ends its own sampling thread (idempotent); a shared thread is ended by its owner (agent/main.ts). */
  async close(): Promise<void> {
    if (this.ownsThread) await this.thread.close();
  }
}

const round = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
const finiteOrNull = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);
