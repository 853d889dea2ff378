/** Shared helpers of the benchmarks: timing, percentiles, RSS sampling, simulated data, a model. */
import { closeSync, fsyncSync, ftruncateSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { PumpSimulator, SIMULATED_FEATURES } from '../agent/simulator.js';
import type { BufferStore } from '../buffer/store.js';
import type { PredictionRow, Reading } from '../buffer/types.js';
import { DEFAULT_MODEL_KEY, InferenceEngine } from '../inference/engine.js';
import type { LoadedModel } from '../inference/model.js';
import type { CsvTable } from '../trainer/csv.js';
import { fitTable } from '../trainer/fit.js';

export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** The kernel's peak RSS of this process (VmHWM, Linux) in MB, or NaN where /proc is not there. */
function kernelPeakMb(): number {
  try {
    const kb = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    return kb === undefined ? Number.NaN : Number(kb) / 1024;
  } catch {
    return Number.NaN;
  }
}

/**
 * This process's peak RSS from now on (MB). On Linux the kernel's peak (VmHWM) is reset here and
 * read at `peak()`, so a peak reached while the event loop is blocked (a synchronous fit, a big
 * transaction) counts; sampling every 50 ms misses those. Elsewhere, the sampled peak.
 */
export function rssSampler(): { peak: () => number; stop: () => void } {
  let kernel = false;
  try {
    writeFileSync('/proc/self/clear_refs', '5'); // 5: reset the peak RSS to the current RSS
    kernel = Number.isFinite(kernelPeakMb());
  } catch {
    kernel = false;
  }
  let peak = process.memoryUsage.rss();
  const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage.rss())), 50);
  timer.unref();
  let stopped: number | null = null;
  const now = (): number => Math.max(peak / 1024 / 1024, process.memoryUsage.rss() / 1024 / 1024, kernel ? kernelPeakMb() : 0);
  return {
    peak: () => stopped ?? now(),
    stop: () => {
      clearInterval(timer);
      stopped = now();
    },
  };
}

/**
 * Paced submissions: tick `i` is due `i * tickMs` after the start; `submit(i)` resolves when tick
 * i's readings are committed. Latency counts from when the tick was due, not from when the event
 * loop got round to submitting it: a loop blocked by the previous commit delays the readings that
 * arrive meanwhile, and that wait is part of their reading-to-commit time (no coordinated omission).
 * A timer that fires a little early counts from the submission.
 */
export async function pacedLatencies(ticks: number, tickMs: number, submit: (tick: number) => Promise<unknown>): Promise<number[]> {
  const latencies = new Array<number>(ticks);
  const pending: Promise<void>[] = [];
  const start = performance.now();
  for (let tick = 0; tick < ticks; tick++) {
    const due = start + tick * tickMs;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const from = Math.min(due, performance.now());
    pending.push(submit(tick).then(() => void (latencies[tick] = performance.now() - from)));
  }
  await Promise.all(pending);
  return latencies; // in tick order (stallsOf needs it)
}

/**
 * Stalls in paced latencies (in tick order): runs of consecutive ticks slower than `overMs`. One
 * blocked commit of X ms makes about X / tick ticks late in a row (the ticks due meanwhile queue
 * behind it, each 10 ms less late than the one before), so the runs count the events, the ticks
 * how much of the p99 they make: with 100 ticks a second, 1 % of a 60 s run is 60 ticks.
 */
export function stallsOf(latencies: readonly number[], overMs: number): { events: number; ticks: number } {
  let events = 0;
  let ticks = 0;
  for (let i = 0; i < latencies.length; i++) {
    if (latencies[i]! <= overMs) continue;
    ticks++;
    if (i === 0 || latencies[i - 1]! <= overMs) events++;
  }
  return { events, ticks };
}

/**
 * The disk's own fsync latency in `dir`, without SQLite or the agent: `bytes` appended and fsynced
 * every `everyMs` for `seconds` (the paced run's commits do as much to the WAL), on this thread.
 * Sorted, in ms. The file is cut back to nothing every 4 MiB, as a WAL is reused after a checkpoint.
 */
export async function fsyncProbe(dir: string, bytes: number, everyMs: number, seconds: number): Promise<number[]> {
  const path = join(dir, 'fsync-probe');
  const fd = openSync(path, 'w');
  const chunk = Buffer.alloc(bytes, 7);
  const out: number[] = [];
  try {
    let written = 0;
    for (let i = 0; i < (seconds * 1000) / everyMs; i++) {
      if (written + bytes > 4 * 1024 * 1024) {
        ftruncateSync(fd, 0);
        written = 0;
      }
      writeSync(fd, chunk, 0, bytes, written);
      written += bytes;
      const t = performance.now();
      fsyncSync(fd);
      out.push(performance.now() - t);
      await new Promise((r) => setTimeout(r, everyMs));
    }
  } finally {
    closeSync(fd);
    rmSync(path, { force: true });
  }
  return out.sort((a, b) => a - b);
}

/** `n` simulated readings from `pumps` pumps, interleaved, with timestamps near now. */
export function simulatedReadings(n: number, pumps: number, seed = 1): Reading[] {
  const start = Date.now() - n * 10;
  const sims = Array.from({ length: pumps }, (_, i) => new PumpSimulator({ pumpId: `bench-pump-${i + 1}`, seed: seed + i, startTs: start, faults: 'random' }));
  const out: Reading[] = new Array(n);
  for (let i = 0; i < n; i++) out[i] = sims[i % pumps]!.next().reading;
  return out;
}

/** A model fitted by the project's trainer on normal simulated data (like the bundled default). */
export function benchModel(window?: number, algorithm?: string): Uint8Array {
  const sim = new PumpSimulator({ pumpId: 'train', seed: 99, startTs: Date.UTC(2026, 0, 1), faults: 'none' });
  return fitSimulated([sim], 5000, { source: 'default', version: 'bench', window, algorithm });
}

/** A model of the simulated pump's 8 sensors, fitted by the trainer on the next `rows` readings of each simulator, one after the other. */
export function fitSimulated(sims: readonly PumpSimulator[], rows: number, options: Parameters<typeof fitTable>[1]): Uint8Array {
  const table: CsvTable = { features: [...SIMULATED_FEATURES], rows: [], timestamps: [], timestampColumn: 'datetime', ignoredColumns: [] };
  for (const sim of sims) {
    for (let i = 0; i < rows; i++) {
      const r = sim.next().reading;
      table.rows.push(Float64Array.from(SIMULATED_FEATURES.map((f) => r.values[f] ?? 0)));
      table.timestamps.push(r.ts);
    }
  }
  return fitTable(table, options).bytes;
}

/** Serves model files by path on a loopback port (the download side of a twin change). */
export async function serveFiles(files: ReadonlyMap<string, Uint8Array>): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    const body = files.get(req.url ?? '');
    if (!body) res.writeHead(404).end();
    else res.writeHead(200, { 'content-length': body.length }).end(Buffer.from(body));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise<void>((r) => server.close(() => r())) };
}

/**
 * `count` readings from `next` (a simulator's, perhaps altered), scored by `model` with the agent's
 * own engine (as the agent scores a pump with no model of its own: stops by the model's rule, a
 * pause, …) and committed to `store` in batches, as the agent stores them. `edit` may change a
 * row before its commit (mark it flagged). Returns the number of rows the model flagged.
 */
export async function bufferSimulated(store: BufferStore, next: () => Reading, count: number, model: LoadedModel, edit?: (row: PredictionRow) => PredictionRow): Promise<{ flagged: number }> {
  const engine = new InferenceEngine();
  engine.setModel(DEFAULT_MODEL_KEY, model);
  let flagged = 0;
  for (let done = 0; done < count; ) {
    const batch: Reading[] = [];
    for (; batch.length < 4096 && done < count; done++) batch.push(next());
    const rows = (await engine.score(batch, batch[batch.length - 1]!.ts)).map((row) => (edit ? edit(row) : row));
    for (const row of rows) if (row.anomaly === true) flagged++;
    store.appendBatch(rows);
  }
  return { flagged };
}

/** Waits until the agent process at `base` answers /readyz with 200 (at most about 30 s). */
export async function untilReady(base: string): Promise<void> {
  for (let i = 0; ; i++) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) return;
    } catch {
      // not listening yet
    }
    if (i > 300) throw new Error('agent did not become ready');
    await new Promise((r) => setTimeout(r, 100));
  }
}
