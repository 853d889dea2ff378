/**
 * Sync drain benchmark (issue 3): a backlog of N rows (default 1 000 000) in the agent's SQLite
 * buffer is drained to a local Azurite by the real agent while live readings are scored, and, in
 * the same run, the raw ceiling: the same rows serialised, gzipped and uploaded in batches of the
 * same size without the agent (no SQLite, no planning, no hashes, no bookkeeping).
 * Prints rows/s, MB/s, the compression ratio, and the scoring latency (p50/p99) idle and during
 * the drain. Figures only: it never fails on time.
 *
 *   node dist/bench/sync.js [--rows N] [--rate READINGS_PER_S] [--batch-bytes B]
 *
 * The agent runs in this process, so the bench re-runs itself with the agent's node flags and
 * environment (agent/node-flags.ts), as the deployed agent runs; the ceiling runs under the same.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { constants as perfConstants, monitorEventLoopDelay, performance, PerformanceObserver, type IntervalHistogram } from 'node:perf_hooks';
import { parseArgs, promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { startAzurite } from '../agent/azurite.js';
import { loadConfig } from '../agent/config.js';
import { AGENT_ENV, AGENT_NODE_FLAGS, applyRuntimeV8Flags } from '../agent/node-flags.js';
import { createLogger } from '../agent/logger.js';
import { Agent } from '../agent/main.js';
import { storedLineBytes, SyncBatches } from '../buffer/batches.js';
import { BufferStore } from '../buffer/store.js';
import { fromDbRow } from '../buffer/rows.js';
import type { PredictionRow, StoredRow } from '../buffer/types.js';
import { containerClient } from '../sync/client.js';
import { GZIP_LEVEL, sourceJson, toLine } from '../sync/encoder.js';
import { fitTable } from '../trainer/fit.js';

const FEATURES = ['Accelerometer1RMS', 'Accelerometer2RMS', 'Current', 'Pressure', 'Temperature', 'Thermocouple', 'Voltage', 'Volume Flow RateRMS'];
const PUMPS = ['pump-1', 'pump-2', 'pump-3'];
const DEVICE = 'gw-bench';
const gzipAsync = promisify(gzip);

const { values: args } = parseArgs({
  options: {
    rows: { type: 'string', default: '1000000' },
    rate: { type: 'string', default: '100' },
    'batch-bytes': { type: 'string' },
    /** Internal: measure only the raw ceiling of this buffer file (run in a child process by main). */
    'ceiling-of': { type: 'string' },
  },
});
const ROWS = Number(args.rows);
const RATE = Number(args.rate);

/** A plausible pump reading: slow drifts plus noise, a few decimals as sensors report them. */
function values(i: number): Record<string, number> {
  const out: Record<string, number> = {};
  FEATURES.forEach((f, k) => {
    const v = 10 * (k + 1) + 3 * Math.sin(i / (400 + 37 * k)) + ((i * 7919 + k * 104729) % 1000) / 1000;
    out[f] = Math.round(v * 1e4) / 1e4;
  });
  return out;
}

function fillBacklog(path: string, rows: number): number {
  const t0 = performance.now();
  const store = new BufferStore({ path, maxBytes: 2 ** 40 });
  store.open();
  const start = Date.now() - 7 * 86_400_000;
  for (let from = 0; from < rows; from += 20_000) {
    const chunk: PredictionRow[] = [];
    for (let i = from; i < Math.min(rows, from + 20_000); i++) {
      const anomaly = i % 10_007 === 5_000;
      const ts = start + Math.floor(i / PUMPS.length) * 1000;
      chunk.push({ pumpId: PUMPS[i % PUMPS.length]!, ts, receivedAt: ts, values: values(i), score: anomaly ? 12.5 : 0.1 + (i % 100) / 1000, anomaly, modelVersion: 'bench-1', imputed: false, unscoredReason: null });
    }
    store.appendBatch(chunk);
  }
  store.close();
  return (performance.now() - t0) / 1000;
}

/**
 * The same rows in the batches the agent's planner forms: per pump, in order, each line counted as
 * the planner counts it (buffer/batches.ts storedLineBytes: the widest it can be written, the device
 * and buffer ids included) up to maxBytes, or maxRows. Until 2026-12-07 the ceiling counted its
 * values plus 200 bytes a row, as the planner did before: once the planner counted a line at its
 * widest, the ceiling packed about 20 % more rows a blob than the agent could (738 blobs against 912)
 * and the agent / ceiling ratio compared different blob counts.
 */
function ceilingBatches(path: string, maxBytes: number, maxRows: number): { batches: StoredRow[][]; bufferId: string } {
  const store = new BufferStore({ path, maxBytes: 2 ** 40 });
  store.open();
  const bufferId = store.bufferId();
  const lineExtra = Buffer.byteLength(sourceJson(DEVICE, bufferId));
  const batches: StoredRow[][] = [];
  const open = new Map<string, { rows: StoredRow[]; bytes: number }>();
  for (let from = 1; ; from += 50_000) {
    const rows = store.dbRowsBySeq(from, from + 49_999);
    if (rows.length === 0) break;
    for (const stored of rows) {
      const r = fromDbRow(stored);
      const cur = open.get(r.pumpId) ?? { rows: [], bytes: 0 };
      const bytes = storedLineBytes(stored, lineExtra);
      if (cur.rows.length > 0 && (cur.bytes + bytes > maxBytes || cur.rows.length >= maxRows)) {
        batches.push(cur.rows);
        cur.rows = [];
        cur.bytes = 0;
      }
      cur.rows.push(r);
      cur.bytes += bytes;
      open.set(r.pumpId, cur);
    }
  }
  for (const cur of open.values()) if (cur.rows.length > 0) batches.push(cur.rows);
  store.close();
  return { batches, bufferId };
}

/** Serialise + gzip + upload, the next batch prepared while the current one uploads (as the agent does). */
async function rawCeiling(batches: StoredRow[][], bufferId: string, container: ContainerClient): Promise<{ seconds: number; raw: number; gz: number }> {
  await container.createIfNotExists();
  let raw = 0;
  let gz = 0;
  const t0 = performance.now();
  let uploading: Promise<unknown> = Promise.resolve();
  for (let i = 0; i < batches.length; i++) {
    let text = '';
    for (const r of batches[i]!) text += `${JSON.stringify(toLine(r, DEVICE, bufferId))}\n`;
    const body = await gzipAsync(Buffer.from(text), { level: GZIP_LEVEL });
    raw += Buffer.byteLength(text);
    gz += body.length;
    await uploading;
    uploading = container.getBlockBlobClient(`ceiling/${String(i).padStart(6, '0')}.jsonl.gz`).upload(body, body.length);
  }
  await uploading;
  return { seconds: (performance.now() - t0) / 1000, raw, gz };
}

/**
 * Live readings at `rate` per second into the pipeline; latency from when each reading was due
 * (not when the timer managed to fire) to its commit, so a blocked event loop is counted in full.
 */
function liveLoad(agent: Agent, rate: number): { stop: () => Promise<number[]> } {
  const latencies: number[] = [];
  if (rate <= 0) return { stop: () => Promise.resolve(latencies) };
  const inFlight = new Set<Promise<void>>();
  const period = 1000 / rate;
  const t0 = performance.now();
  let n = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    while (t0 + n * period <= now) {
      const due = t0 + n * period;
      // values from the model's training range: live readings are normal (see the report for a stream of anomalies)
      const reading = { pumpId: PUMPS[n % PUMPS.length], ts: Date.now(), values: values(n % 600) };
      n++;
      const p = agent.pipeline.ingest([reading], 'bench').then(
        () => void latencies.push(performance.now() - due),
        () => undefined,
      );
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    }
  }, Math.max(1, period / 2));
  return {
    stop: async () => {
      clearInterval(timer);
      await Promise.all(inFlight);
      return latencies;
    },
  };
}

/** Main-thread time spent in the buffer's batch bookkeeping (planning, marking synced), measured by wrapping it. */
function timeBookkeeping(): { plan: number; mark: number } {
  const spent = { plan: 0, mark: 0 };
  const proto = SyncBatches.prototype as unknown as Record<string, (...a: unknown[]) => unknown>;
  const wrap = (name: string, into: 'plan' | 'mark'): void => {
    const original = proto[name]!;
    proto[name] = function (this: unknown, ...a: unknown[]) {
      const t = performance.now();
      try {
        return original.apply(this, a);
      } finally {
        spent[into] += performance.now() - t;
      }
    };
  };
  for (const name of ['pick', 'persist']) wrap(name, 'plan'); // the rows are read and encoded on the encoder thread
  wrap('markUploaded', 'mark');
  return spent;
}

/** How long scoring is measured with the agent idle (no backlog to sync). */
const IDLE_SECONDS = 10;

const pct = (xs: number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? Number.NaN;
};

/** GC pauses of the agent's thread over one window. */
interface GcSummary {
  /** Pauses of 10 ms or more (where its longest stalls come from): how many, the longest, their sum (ms). */
  count: number;
  max: number;
  total: number;
  /** All pauses: scavenges of the young generation, and the rest (mark-compact and its steps). */
  minor: { count: number; total: number };
  major: { count: number; total: number };
}

/** GC on the agent's thread, as it happens: every pause, by kind, and those of 10 ms or more. */
function gcPauses(): { stop: () => GcSummary } {
  const pauses: number[] = [];
  const minor = { count: 0, total: 0 };
  const major = { count: 0, total: 0 };
  const obs = new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as { detail?: { kind?: number } }).detail?.kind;
      const k = kind === perfConstants.NODE_PERFORMANCE_GC_MINOR ? minor : major;
      k.count++;
      k.total += e.duration;
      if (e.duration >= 10) pauses.push(e.duration);
    }
  });
  obs.observe({ entryTypes: ['gc'] });
  return {
    stop: () => {
      obs.disconnect();
      return { count: pauses.length, max: Math.max(0, ...pauses), total: pauses.reduce((a, b) => a + b, 0), minor, major };
    },
  };
}

/** Live commits (each with its fsync, synchronous=FULL, on the agent's thread) slower than `le` seconds, from the agent's histogram. */
function slowCommits(agent: Agent, le: string): number {
  const text = agent.registry.render();
  const count = Number(/^pumpwatch_commit_seconds_count (\S+)$/m.exec(text)?.[1] ?? Number.NaN);
  const within = Number(new RegExp(`^pumpwatch_commit_seconds_bucket\\{le="${le}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? Number.NaN);
  return count - within;
}

function metric(agent: Agent, name: string): number {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(agent.registry.render());
  return m ? Number(m[1]) : Number.NaN;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-bench-sync-'));
  // In memory: in the field Blob Storage is remote, its writes never compete with the agent's fsyncs.
  const azurite = await startAzurite({ location: join(dir, 'azurite'), inMemory: true });
  try {
    const modelPath = join(dir, 'model.onnx');
    const train = Array.from({ length: 600 }, (_, i) => Float64Array.from(FEATURES.map((f) => values(i)[f]!)));
    writeFileSync(modelPath, fitTable({ features: FEATURES, rows: train, timestamps: train.map((_, i) => i * 1000), timestampColumn: 'ts', ignoredColumns: [] }, { version: 'bench-1', window: 1, algorithm: 'pca' }).bytes);
    const env = {
      PUMPWATCH_DATA_DIR: join(dir, 'data'),
      PUMPWATCH_HTTP_PORT: '0',
      PUMPWATCH_SIMULATE: '0',
      PUMPWATCH_HUB: 'off',
      PUMPWATCH_BLOB_CONNECTION_STRING: azurite.connectionString,
      PUMPWATCH_BLOB_CONTAINER: 'bench',
      PUMPWATCH_DEVICE_ID: DEVICE,
      PUMPWATCH_LOG_LEVEL: 'warn',
      ...(args['batch-bytes'] ? { PUMPWATCH_SYNC_BATCH_MAX_BYTES: args['batch-bytes'] } : {}),
    };
    const config = loadConfig({ ...env, PUMPWATCH_SYNC: 'off' });
    const dbPath = join(config.dataDir, 'buffer.sqlite');
    process.stdout.write(`sync bench: ${ROWS} rows backlog, ${PUMPS.length} pumps, ${FEATURES.length} values per row, blobs of <= ${config.syncBatchMaxBytes} JSON bytes, gzip level ${GZIP_LEVEL}\n`);
    process.stdout.write(`  backlog written in ${fillBacklog(dbPath, ROWS).toFixed(1)} s\n`);

    // The ceiling holds all rows in memory: it runs in a process of its own, so the agent measured
    // below starts with a clean heap, as on a gateway (its GC pauses would count against it).
    const ceil = ceilingInChild(dbPath, azurite.connectionString, config.syncBatchMaxBytes, config.syncBatchMaxRows);
    const blobCount = ceil.blobs;
    const ceilRate = ROWS / ceil.seconds;

    const logger = createLogger('warn');
    const idleAgent = new Agent({ config, logger, defaultModelPath: modelPath });
    await idleAgent.start();
    const idleLoad = liveLoad(idleAgent, RATE);
    const idleLoop = monitorEventLoopDelay({ resolution: 1 });
    idleLoop.enable();
    const idleGc = gcPauses();
    await new Promise((r) => setTimeout(r, IDLE_SECONDS * 1000));
    const idle = await idleLoad.stop();
    idleLoop.disable();
    const idleGcPauses = idleGc.stop();
    const idleSlow = [slowCommits(idleAgent, '0.025'), slowCommits(idleAgent, '0.1')];
    await idleAgent.stop();

    const liveSince = Date.now() - 60_000;
    const agent = new Agent({ config: loadConfig({ ...env, PUMPWATCH_SYNC: 'auto' }), logger, defaultModelPath: modelPath });
    const bookkeeping = timeBookkeeping();
    const t0 = performance.now();
    await agent.start();
    const busyLoad = liveLoad(agent, RATE);
    const busyLoop = monitorEventLoopDelay({ resolution: 1 });
    busyLoop.enable();
    const busyGc = gcPauses();
    // Drained when no backlog row is left unsynced (live rows are newer than the backlog).
    const backlogDone = (): boolean => {
      const oldest = agent.buffer.stats().oldestUnsyncedTs;
      return oldest === null || oldest >= liveSince;
    };
    while (!backlogDone()) await new Promise((r) => setTimeout(r, 100));
    const drainS = (performance.now() - t0) / 1000;
    const busy = await busyLoad.stop();
    busyLoop.disable();
    const busyGcPauses = busyGc.stop();
    const busySlow = [slowCommits(agent, '0.025'), slowCommits(agent, '0.1')];
    const uploaded = metric(agent, 'pumpwatch_sync_uploaded_rows_total');
    const gzBytes = metric(agent, 'pumpwatch_sync_uploaded_bytes_total');
    const rawBytes = metric(agent, 'pumpwatch_sync_uploaded_raw_bytes_total');
    const blobs = agent.status.snapshot().sync as { uploadedBlobs: number };
    const liveAnomalies = agent.metrics.anomalies.get();
    await agent.stop();

    const MB = 1e6;
    const agentRate = ROWS / drainS;
    const line = (label: string, s: number, rows: number, raw: number, gz: number): string =>
      `  ${label.padEnd(44)} ${s.toFixed(1).padStart(6)} s  ${Math.round(rows / s).toLocaleString('en').padStart(9)} rows/s  ${(raw / MB / s).toFixed(1).padStart(6)} MB/s JSON  ${(gz / MB / s).toFixed(2).padStart(6)} MB/s gzip\n`;
    process.stdout.write(line(`raw ceiling (serialise+gzip+upload, ${blobCount} blobs)`, ceil.seconds, ROWS, ceil.raw, ceil.gz));
    process.stdout.write(line(`agent drain (${blobs.uploadedBlobs} blobs, ${uploaded} rows incl. live)`, drainS, ROWS, rawBytes * (ROWS / uploaded), gzBytes * (ROWS / uploaded)));
    process.stdout.write(`  agent / ceiling: ${((agentRate / ceilRate) * 100).toFixed(0)} % (target >= 70 %); 1 M rows in ${((1e6 / agentRate)).toFixed(1)} s (target < 60 s)\n`);
    process.stdout.write(`  of the drain, on the main thread: buffer planning (pick + persist) ${(bookkeeping.plan / 1000).toFixed(1)} s, marking synced ${(bookkeeping.mark / 1000).toFixed(1)} s (SQLite, buffer/batches.ts)\n`);
    process.stdout.write(`  compression ratio (JSON / gzip): ${(rawBytes / gzBytes).toFixed(2)} (ceiling ${(ceil.raw / ceil.gz).toFixed(2)})\n`);
    const ratio = pct(busy, 99) / pct(idle, 99);
    process.stdout.write(
      `  scoring latency at ${RATE} readings/s, due-to-commit: idle p50 ${pct(idle, 50).toFixed(2)} ms p99 ${pct(idle, 99).toFixed(2)} ms (${idle.length} readings); ` +
        `during drain p50 ${pct(busy, 50).toFixed(2)} ms p99 ${pct(busy, 99).toFixed(2)} ms (${busy.length} readings, ${liveAnomalies} anomalies): p99 x${ratio.toFixed(2)} (target <= 2)\n`,
    );
    const loop = (h: IntervalHistogram): string => `p99 ${(h.percentile(99) / 1e6).toFixed(1)} ms, max ${(h.max / 1e6).toFixed(1)} ms`;
    process.stdout.write(`  event-loop delay of the agent's thread: idle ${loop(idleLoop)}; during drain ${loop(busyLoop)}\n`);
    const gc = (g: GcSummary): string => `${g.count} (longest ${g.max.toFixed(0)} ms, ${g.total.toFixed(0)} ms in all)`;
    process.stdout.write(`  GC pauses >= 10 ms on the agent's thread: idle ${gc(idleGcPauses)}; during drain ${gc(busyGcPauses)}\n`);
    const all = (g: GcSummary, seconds: number): string =>
      `${(g.minor.count / seconds).toFixed(1)} scavenges/s (${((g.minor.total / seconds / 1000) * 100).toFixed(1)} % of the time), ${(g.major.count / seconds).toFixed(1)} other pauses/s (${((g.major.total / seconds / 1000) * 100).toFixed(1)} %)`;
    process.stdout.write(`  all GC pauses on the agent's thread: idle ${all(idleGcPauses, IDLE_SECONDS)}; during drain ${all(busyGcPauses, drainS)}\n`);
    process.stdout.write(`  live commits (fsync included) slower than 25 / 100 ms: idle ${idleSlow[0]} / ${idleSlow[1]}; during drain ${busySlow[0]} / ${busySlow[1]}\n`);
  } finally {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

interface Ceiling {
  seconds: number;
  raw: number;
  gz: number;
  blobs: number;
}

/** The raw ceiling measured by a child process running this script with --ceiling-of. */
function ceilingInChild(dbPath: string, connectionString: string, maxBytes: number, maxRows: number): Ceiling {
  const r = spawnSync(process.execPath, [...process.execArgv, process.argv[1]!, '--ceiling-of', dbPath], {
    env: { ...process.env, BENCH_SYNC_AS_DEPLOYED: '1', BENCH_CEILING_CONNECTION: connectionString, BENCH_CEILING_LIMITS: `${maxBytes},${maxRows}` },
    encoding: 'utf8',
    maxBuffer: 1 << 20,
  });
  if (r.status !== 0) throw new Error(`the ceiling's process failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as Ceiling;
}

/** In the child: the ceiling of the buffer file at `path`, printed as JSON. */
async function ceilingMain(path: string): Promise<void> {
  const [maxBytes, maxRows] = (process.env.BENCH_CEILING_LIMITS ?? '').split(',').map(Number);
  const { batches, bufferId } = ceilingBatches(path, maxBytes!, maxRows!);
  const target = { kind: 'connection-string' as const, connectionString: process.env.BENCH_CEILING_CONNECTION ?? '', container: 'ceiling' };
  const ceil = await rawCeiling(batches, bufferId, containerClient(target));
  process.stdout.write(JSON.stringify({ ...ceil, blobs: batches.length } satisfies Ceiling));
}

/** Re-runs this script under the agent's node flags and environment; null when already under them. */
function asDeployed(): number | null {
  if (process.env.BENCH_SYNC_AS_DEPLOYED === '1') return null;
  const r = spawnSync(process.execPath, [...AGENT_NODE_FLAGS, ...process.argv.slice(1)], {
    stdio: 'inherit',
    env: { ...process.env, ...AGENT_ENV, BENCH_SYNC_AS_DEPLOYED: '1' },
  });
  return r.status ?? 1;
}

const code = asDeployed();
if (code !== null) process.exit(code);
applyRuntimeV8Flags();
(args['ceiling-of'] ? ceilingMain(args['ceiling-of']) : main()).catch((err: unknown) => {
  process.stderr.write(`bench/sync: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
