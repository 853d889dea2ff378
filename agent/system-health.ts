import { resolve } from 'node:path';
import { HousekeepingThread } from './housekeeping.js';

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
 * The gateway's health from systeminformation, sampled by a scheduled job and served from the last
 * sample, so /status never waits on the OS. systeminformation runs shell commands synchronously
 * (spawnSync/execSync) for CPU and disk figures: on the event loop that would stall scoring and
 * HTTP for tens of milliseconds, so it runs on the housekeeping thread (agent/housekeeping.ts).
 */
export class SystemHealth {
  private snapshot: SystemSnapshot;
  private readonly thread: HousekeepingThread;
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

  async sample(): Promise<SystemSnapshot> {
    const raw = await this.thread.sample();
    if (raw.error !== undefined || !raw.load || !raw.mem || !raw.disks || !raw.temp) {
      this.snapshot = { ...this.snapshot, error: raw.error ?? 'incomplete sample' };
      return this.snapshot;
    }
    const disk = pickDisk(raw.disks, resolve(this.dataDir));
    const { total, available } = raw.mem;
    this.snapshot = {
      sampledAt: new Date().toISOString(),
      cpu: { loadPercent: round(raw.load.currentLoad), cores: raw.load.cores || null },
      memory: { totalBytes: total, availableBytes: available, usedPercent: round(((total - available) / total) * 100) },
      disk: { path: this.dataDir, totalBytes: disk?.size ?? null, freeBytes: disk?.available ?? null, usedPercent: disk ? round(disk.use) : null },
      temperature: { mainCelsius: finiteOrNull(raw.temp.main), maxCelsius: finiteOrNull(raw.temp.max) },
      processRssBytes: process.memoryUsage.rss(),
    };
    return this.snapshot;
  }

  /** Ends its own sampling thread (idempotent); a shared thread is ended by its owner (agent/main.ts). */
  async close(): Promise<void> {
    if (this.ownsThread) await this.thread.close();
  }
}

/** The mounted file system that holds `dir` (longest mount point prefix). */
function pickDisk<T extends { mount: string }>(disks: T[], dir: string): T | undefined {
  let best: T | undefined;
  for (const d of disks) {
    if (dir.startsWith(d.mount) && (!best || d.mount.length > best.mount.length)) best = d;
  }
  return best ?? disks[0];
}

const round = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
const finiteOrNull = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);
