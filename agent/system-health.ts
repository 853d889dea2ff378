import si from 'systeminformation';

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
 * The gateway's health from systeminformation, sampled by a scheduled job (its calls take tens
 * of milliseconds) and served from the last sample, so /status never waits on the OS.
 */
export class SystemHealth {
  private snapshot: SystemSnapshot;

  constructor(private readonly dataDir: string) {
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
    try {
      const [load, mem, disks, temp] = await Promise.all([si.currentLoad(), si.mem(), si.fsSize(), si.cpuTemperature()]);
      const disk = pickDisk(disks, this.dataDir);
      this.snapshot = {
        sampledAt: new Date().toISOString(),
        cpu: { loadPercent: round(load.currentLoad), cores: load.cpus?.length ?? null },
        memory: { totalBytes: mem.total, availableBytes: mem.available, usedPercent: round(((mem.total - mem.available) / mem.total) * 100) },
        disk: { path: this.dataDir, totalBytes: disk?.size ?? null, freeBytes: disk?.available ?? null, usedPercent: disk ? round(disk.use) : null },
        temperature: { mainCelsius: finiteOrNull(temp.main), maxCelsius: finiteOrNull(temp.max) },
        processRssBytes: process.memoryUsage.rss(),
      };
    } catch (err) {
      this.snapshot = { ...this.snapshot, error: (err as Error).message };
    }
    return this.snapshot;
  }
}

/** The mounted file system that holds `dir` (longest mount point prefix). */
function pickDisk(disks: si.Systeminformation.FsSizeData[], dir: string): si.Systeminformation.FsSizeData | undefined {
  let best: si.Systeminformation.FsSizeData | undefined;
  for (const d of disks) {
    if (dir.startsWith(d.mount) && (!best || d.mount.length > best.mount.length)) best = d;
  }
  return best ?? disks[0];
}

const round = (v: number): number | null => (Number.isFinite(v) ? Math.round(v * 10) / 10 : null);
const finiteOrNull = (v: number | null | undefined): number | null => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : null);
