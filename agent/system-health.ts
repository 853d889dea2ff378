import { createRequire } from 'node:module';
import { resolve } from 'node:path';
import { Worker } from 'node:worker_threads';

export interface SystemSnapshot {
  sampledAt: string | null;
  cpu: { loadPercent: number | null; cores: number | null };
  memory: { totalBytes: number | null; availableBytes: number | null; usedPercent: number | null };
  disk: { path: string; totalBytes: number | null; freeBytes: number | null; usedPercent: number | null };
  temperature: { mainCelsius: number | null; maxCelsius: number | null };
  processRssBytes: number;
  error?: string;
}

/** What the sampling thread sends back (plain data, structured-cloned). */
interface RawSample {
  id: number;
  error?: string;
  load?: { currentLoad: number; cores: number };
  mem?: { total: number; available: number };
  disks?: Array<{ mount: string; size: number; available: number; use: number }>;
  temp?: { main: number | null; max: number | null };
}

/**
 * systeminformation runs shell commands synchronously (spawnSync/execSync) for CPU and disk
 * figures: on the event loop that stalls scoring and HTTP for tens of milliseconds. So it runs in a
 * worker thread (an eval'd script that requires it by absolute path).
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require('node:worker_threads');
const si = require(workerData.si);
parentPort.on('message', async (id) => {
  try {
    const [load, mem, disks, temp] = await Promise.all([si.currentLoad(), si.mem(), si.fsSize(), si.cpuTemperature()]);
    parentPort.postMessage({
      id,
      load: { currentLoad: load.currentLoad, cores: (load.cpus || []).length },
      mem: { total: mem.total, available: mem.available },
      disks: disks.map((d) => ({ mount: d.mount, size: d.size, available: d.available, use: d.use })),
      temp: { main: temp.main, max: temp.max },
    });
  } catch (err) {
    parentPort.postMessage({ id, error: String((err && err.message) || err) });
  }
});
`;

const SAMPLE_TIMEOUT_MS = 20_000;

/**
 * V8 heap limits of the sampling thread (MB). Without them its isolate's young generation grows
 * like the main thread's (to 32 MB): measured, the thread held 25 MB of RSS after 20 samples,
 * 9 MB with these. Running out ends the thread with an error; the next sample starts a new one.
 */
const THREAD_LIMITS = { maxYoungGenerationSizeMb: 2, maxOldGenerationSizeMb: 16 };

/**
 * The gateway's health from systeminformation, sampled by a scheduled job in a worker thread and
 * served from the last sample, so /status never waits on the OS.
 */
export class SystemHealth {
  private snapshot: SystemSnapshot;
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, (s: RawSample) => void>();

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
    const raw = await this.ask();
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

  /** Ends the sampling thread (idempotent); a later sample() starts a new one. */
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    for (const resolve of this.waiting.values()) resolve({ id: -1, error: 'stopped' });
    this.waiting.clear();
    if (w) await w.terminate();
  }

  private ask(): Promise<RawSample> {
    const worker = this.ensureWorker();
    const id = this.nextId++;
    return new Promise<RawSample>((done) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        done({ id, error: `systeminformation gave no answer in ${SAMPLE_TIMEOUT_MS / 1000} s` });
      }, SAMPLE_TIMEOUT_MS);
      timer.unref();
      this.waiting.set(id, (s) => {
        clearTimeout(timer);
        done(s);
      });
      worker.postMessage(id);
    });
  }

  private ensureWorker(): Worker {
    if (this.worker) return this.worker;
    const si = createRequire(import.meta.url).resolve('systeminformation');
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { si }, resourceLimits: THREAD_LIMITS });
    worker.unref();
    worker.on('message', (s: RawSample) => {
      const resolve = this.waiting.get(s.id);
      this.waiting.delete(s.id);
      resolve?.(s);
    });
    worker.on('error', (err) => {
      for (const resolve of this.waiting.values()) resolve({ id: -1, error: err.message });
      this.waiting.clear();
      this.worker = null;
    });
    this.worker = worker;
    return worker;
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
