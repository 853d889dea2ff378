/**
 * bench/steady: the agent as deployed (its own process, node flags and environment) in a gateway's
 * steady state: P pumps reading at 1 Hz, posted over HTTP ten times a second (a tenth of the pumps
 * each time: the POST latency is then sampled often enough for a p99),
 * the sync uploading to a local Azurite (in memory) at its interval. Run twice in the same bench,
 * on fresh data directories:
 *   - `main`: the default PUMPWATCH_SYNC_THREAD_ABOVE_ROWS (2000): cycles of this size run on the
 *     main thread;
 *   - `thread`: PUMPWATCH_SYNC_THREAD_ABOVE_ROWS=0: every cycle on the encoder thread, as before
 *     2026-12-06.
 * Prints for each the agent's RSS (median and largest sample once the first cycle has run), its
 * threads, the POST latency (p50, p99, max) and whether every reading was uploaded. Figures only:
 * it never fails on time or memory.
 *
 *   node dist/bench/steady.js [--pumps P] [--seconds S] [--interval S]
 *
 * With `--cycle ROWS,PUMPS[;ROWS,PUMPS…]` it measures instead what one sync cycle of ROWS rows
 * over PUMPS pumps costs the scoring thread, in this process: a real buffer (SQLite file), the
 * real sync worker and Azurite, the event loop sampled by a 1-ms timer; each case twice on the
 * main thread and twice on the encoder thread, in turn (the first of each is cold).
 *
 * With `--plan PUMPS[,PUMPS…]` it measures the planning alone of one 30-s cycle of PUMPS pumps at
 * 1 Hz, on the main thread where it always runs: each batch's pick, rows read and plan committed
 * (SyncBatches.planWithRows, as the cycle plans on the main thread), against the floor of the same
 * batches with the pick given, rows read and plan committed with its fsync on libuv's pool
 * (SyncBatches.persistPlan). Five rounds, the first cold.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { freePort, startAzurite, type AzuriteHandle } from '../agent/azurite.js';
import { syncSettings } from '../agent/wiring/sync.js';
import { loadConfig } from '../agent/config.js';
import { PRIORITY, SyncBatches } from '../buffer/batches.js';
import { BufferStore } from '../buffer/store.js';
import { planLimits } from '../sync/cycle.js';
import type { PredictionRow, Reading } from '../buffer/types.js';
import { uploaderFor } from '../sync/uploader.js';
import { SyncWorker } from '../sync/worker.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { packageRoot } from '../agent/paths.js';
import { agentMemorySampler, formatMemory } from './memory.js';
import { benchModel, fmt, percentile, simulatedReadings, untilReady } from './support.js';

const { values: args } = parseArgs({ options: { pumps: { type: 'string' }, seconds: { type: 'string' }, interval: { type: 'string' }, cycle: { type: 'string' }, plan: { type: 'string' } } });
const PUMPS = Number(args.pumps ?? 100);
const SECONDS = Number(args.seconds ?? 120);
const INTERVAL_S = Number(args.interval ?? 10);
const TICKS_PER_S = 10;

interface RunResult {
  mode: string;
  rssMedian: number;
  rssLargest: number;
  threadsMax: number;
  threadsLast: number;
  p50: number;
  p99: number;
  max: number;
  posts: number;
  posted: number;
  uploaded: number;
  encoded: { thread: number; main: number };
  atLargest: string;
}

/** A sample of /metrics' text: `name` with any labels, or with exactly `labels` (e.g. `on="main"`); NaN when absent. */
const metric = (text: string, name: string, labels?: string): number =>
  Number(new RegExp(`^${name}${labels === undefined ? '(?:\\{[^}]*\\})?' : `\\{${labels}\\}`} (\\S+)`, 'm').exec(text)?.[1] ?? Number.NaN);
const threadsOf = (pid: number): number => Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? Number.NaN);

async function run(mode: 'main' | 'thread', modelPath: string, connectionString: string, dir: string): Promise<RunResult> {
  const port = await freePort();
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, join(packageRoot(), 'dist', 'agent', 'cli.js')], {
    env: {
      PATH: process.env.PATH ?? '', ...AGENT_ENV, PUMPWATCH_DATA_DIR: join(dir, mode), PUMPWATCH_HTTP_PORT: String(port), PUMPWATCH_SIMULATE: '0',
      PUMPWATCH_HUB: 'off', PUMPWATCH_LOG_LEVEL: 'warn', PUMPWATCH_DEFAULT_MODEL: modelPath, PUMPWATCH_MAX_PUMPS: String(Math.max(100, PUMPS)),
      PUMPWATCH_SYNC: 'auto', PUMPWATCH_BLOB_CONNECTION_STRING: connectionString, PUMPWATCH_BLOB_CONTAINER: `steady-${mode}`,
      PUMPWATCH_SYNC_INTERVAL_SECONDS: String(INTERVAL_S), ...(mode === 'thread' ? { PUMPWATCH_SYNC_THREAD_ABOVE_ROWS: '0' } : {}),
    },
    stdio: 'ignore',
  });
  const exited = new Promise((r) => agent.once('exit', r));
  const base = `http://127.0.0.1:${port}`;
  try {
    await untilReady(base);
    const readings = simulatedReadings(PUMPS * SECONDS, PUMPS, 7);
    const latencies: number[] = [];
    const rss: number[] = [];
    let threadsMax = 0;
    // Samples from the second cycle on (the first one's start-up is not the steady state).
    const settleMs = (INTERVAL_S + 5) * 1000;
    const memory = agentMemorySampler(agent.pid!, base, 1000);
    const t0 = performance.now();
    const per = Math.ceil(PUMPS / TICKS_PER_S);
    for (let tick = 0; tick < SECONDS * TICKS_PER_S; tick++) {
      const due = t0 + (tick * 1000) / TICKS_PER_S;
      await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
      const now = Date.now();
      const second = Math.floor(tick / TICKS_PER_S);
      const from = second * PUMPS + (tick % TICKS_PER_S) * per;
      const to = Math.min(second * PUMPS + PUMPS, from + per);
      if (from >= to) continue;
      const body = JSON.stringify(readings.slice(from, to).map((r) => ({ pumpId: r.pumpId, ts: now, values: r.values })));
      const sent = performance.now();
      const res = await fetch(`${base}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
      await res.arrayBuffer();
      latencies.push(performance.now() - sent);
      if (performance.now() - t0 >= settleMs) {
        rss.push(Number(/^VmRSS:\s+(\d+)/m.exec(readFileSync(`/proc/${agent.pid}/status`, 'utf8'))?.[1] ?? Number.NaN) / 1024);
        threadsMax = Math.max(threadsMax, threadsOf(agent.pid!));
      }
    }
    // the last readings' cycle
    await new Promise((r) => setTimeout(r, (INTERVAL_S + 3) * 1000));
    const mem = await memory.stop();
    const text = await (await fetch(`${base}/metrics`)).text();
    // a side no batch was encoded on has no sample
    const encodedOn = (on: string): number => metric(text, 'pumpwatch_sync_encoded_batches_total', `on="${on}"`) || 0;
    latencies.sort((a, b) => a - b);
    rss.sort((a, b) => a - b);
    return {
      mode,
      rssMedian: percentile(rss, 50),
      rssLargest: rss.at(-1) ?? Number.NaN,
      threadsMax,
      threadsLast: threadsOf(agent.pid!),
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      max: latencies.at(-1)!,
      posts: latencies.length,
      posted: PUMPS * SECONDS,
      uploaded: metric(text, 'pumpwatch_sync_uploaded_rows_total'),
      encoded: { thread: encodedOn('thread'), main: encodedOn('main') },
      atLargest: formatMemory(mem.atPeak),
    };
  } finally {
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
    await exited;
  }
}

const SILENT = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined };

/** A simulated reading as the agent stores it once scored (normal, by a bench model), read at `ts` and received 20 ms later. */
const storedReading = (r: Pick<Reading, 'pumpId' | 'values'>, ts: number): PredictionRow => ({
  pumpId: r.pumpId, ts, receivedAt: ts + 20, values: r.values, score: 0.2, anomaly: false, modelVersion: 'bench-1', imputed: false, unscoredReason: null,
});

/** One cycle of `rows` rows over `pumps` pumps (as the agent stores them: 8 values, contributions), on the main thread or the encoder thread. */
async function oneCycle(azurite: AzuriteHandle, dir: string, rows: number, pumps: number, onThread: boolean, n: number): Promise<string> {
  const store = new BufferStore({ path: join(dir, `cycle-${n}.sqlite`), maxBytes: 2 ** 30 });
  store.open();
  const sims = simulatedReadings(rows, pumps, 11 + n);
  const t0 = Date.now() - rows * 1000;
  const stored: PredictionRow[] = sims.map((r, i) => ({
    ...storedReading(r, t0 + i * 1000), contributions: Object.fromEntries(Object.keys(r.values).map((k, j) => [k, (j + 1) / 36])),
  }));
  for (let i = 0; i < stored.length; i += 500) store.appendBatch(stored.slice(i, i + 500));
  const blobs: number[] = [];
  const settings = syncSettings(loadConfig({}));
  const worker = new SyncWorker({
    buffer: store, deviceId: 'gw-bench', agentVersion: 'bench', logger: SILENT, random: () => 0.5,
    uploader: () => uploaderFor({ target: { kind: 'connection-string', connectionString: azurite.connectionString, container: `cycle-${n}` }, createContainer: true }),
    settings: () => ({ ...settings, threadAboveRows: onThread ? 0 : Number.MAX_SAFE_INTEGER }),
    onUploaded: (e) => void blobs.push(e.rows),
  });
  const stalls: number[] = [];
  let last = performance.now();
  const timer = setInterval(() => {
    const now = performance.now();
    stalls.push(now - last - 1);
    last = now;
  }, 1);
  const started = performance.now();
  const result = await worker.runOnce();
  const wall = performance.now() - started;
  clearInterval(timer);
  await worker.stop();
  store.close();
  stalls.sort((a, b) => b - a);
  const rowsPerBlob = blobs.length <= 6 ? blobs.join(', ') : `${Math.min(...blobs)}–${Math.max(...blobs)}`;
  return `${(onThread ? 'encoder thread' : 'main thread').padEnd(14)} ${fmt(rows)} rows, ${pumps} pump(s): ${blobs.length} blobs (rows ${rowsPerBlob}), cycle ${fmt(wall)} ms; scoring thread blocked: largest ${stalls.slice(0, 3).map((x) => fmt(x, 1)).join(', ')} ms, over 2 ms ${fmt(stalls.filter((x) => x > 2).reduce((a, b) => a + b, 0))} ms in all${result.failure ? ` FAILED ${result.failure.message}` : ''}`;
}

async function cycles(spec: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-cycle-'));
  const azurite = await startAzurite({ location: join(dir, 'azurite'), inMemory: true });
  try {
    console.log('bench/steady --cycle: one sync cycle in this process (real buffer, sync worker and Azurite in memory, default batch limits), the scoring thread\'s event loop sampled every 1 ms; each case twice per side, in turn, the first of each cold');
    let n = 0;
    for (const part of spec.split(';')) {
      const [rows, pumps] = part.split(',').map(Number) as [number, number];
      for (const onThread of [false, true, false, true]) console.log(`  ${await oneCycle(azurite, dir, rows, pumps, onThread, n++)}`);
    }
  } finally {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A buffer holding one 30-s cycle of `pumps` pumps at 1 Hz, unplanned (the anomaly walk finds none). */
function cycleBuffer(dir: string, pumps: number, n: number): BufferStore {
  const store = new BufferStore({ path: join(dir, `plan-${n}.sqlite`), maxBytes: 2 ** 30 });
  store.open();
  const t0 = Date.now() - 30_000;
  store.appendBatch(simulatedReadings(pumps * 30, pumps, 7).map((r, i) => storedReading(r, t0 + Math.floor(i / pumps) * 1000)));
  return store;
}

/** Planning one cycle's batches on the main thread: every batch as the cycle plans it, then the same batches with the pick given (the floor). */
async function planCycle(dir: string, pumps: number, n: number): Promise<string> {
  const settings = syncSettings(loadConfig({}));
  const namer = (p: string, a: number, b: number): string => `readings/${p}/${a}-${b}.jsonl.gz`;
  const timed = (fn: () => boolean): { ms: number; batches: number } => {
    let batches = 0;
    const t = performance.now();
    while (fn()) batches++;
    return { ms: performance.now() - t, batches };
  };
  const planned = cycleBuffer(dir, pumps, 2 * n);
  const batches = new SyncBatches(planned);
  const limits = { ...planLimits(settings.batchMaxRows, settings.batchMaxBytes, settings.anomalyContextRows), horizon: batches.lastSeq() };
  const real = timed(() => batches.planWithRows(limits, namer, 0) !== null);
  planned.close();
  // The floor: each pump's rows read and its plan committed, where the pick would have started them.
  const floorStore = cycleBuffer(dir, pumps, 2 * n + 1);
  const floorBatches = new SyncBatches(floorStore);
  const starts = (floorStore.db.prepare('SELECT pump_id AS pumpId, min(seq) AS seq FROM readings GROUP BY pump_id ORDER BY seq').all() as Array<{ pumpId: string; seq: number }>);
  const durable: Array<Promise<void>> = [];
  let i = 0;
  const floor = timed(() => {
    const s = starts[i++];
    if (s === undefined) return false;
    const rows = floorStore.ranges.candidates(s.pumpId, s.seq, null, limits.maxRows);
    const last = rows[rows.length - 1]!;
    const planned = floorBatches.persistPlan({ pumpId: s.pumpId, from: s.seq, bound: null, priority: PRIORITY.bulk }, { firstSeq: s.seq, lastSeq: last.seq, rowCount: rows.length }, namer(s.pumpId, s.seq, last.seq), 0);
    if (planned !== null) durable.push(planned.durable);
    return planned !== null;
  });
  await Promise.all(durable);
  floorStore.close();
  return `${String(pumps).padStart(4)} pumps: ${real.batches} batches planned in ${fmt(real.ms, 1)} ms (${fmt((real.ms * 1000) / real.batches)} µs a batch); pick given: ${fmt(floor.ms, 1)} ms (${fmt((floor.ms * 1000) / floor.batches)} µs a batch)`;
}

async function planCycles(spec: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-plan-'));
  try {
    console.log('bench/steady --plan: planning one 30-s cycle of P pumps at 1 Hz on the main thread (real SQLite file, default batch limits): SyncBatches.planWithRows for every batch, then the same batches with the pick given, rows read and plan committed with its fsync off this thread (the floor); five rounds, the first cold');
    let n = 0;
    for (const pumps of spec.split(',').map(Number)) for (let round = 0; round < 5; round++) console.log(`  ${await planCycle(dir, pumps, n++)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  if (args.cycle) return cycles(args.cycle);
  if (args.plan) return planCycles(args.plan);
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-steady-'));
  const azurite = await startAzurite({ location: join(dir, 'azurite'), inMemory: true });
  try {
    const modelPath = join(dir, 'model.onnx');
    writeFileSync(modelPath, benchModel());
    console.log(
      `bench/steady: the agent process as deployed, ${PUMPS} pumps at 1 Hz posted in ${TICKS_PER_S} POSTs a second for ${SECONDS} s, sync every ${INTERVAL_S} s (about ${fmt(PUMPS * INTERVAL_S)} rows a cycle) to a local Azurite in memory; RSS and threads sampled at every POST once the first cycle has run`,
    );
    for (const mode of ['main', 'thread'] as const) {
      const r = await run(mode, modelPath, azurite.connectionString, dir);
      const label = mode === 'main' ? 'cycles on the main thread (default PUMPWATCH_SYNC_THREAD_ABOVE_ROWS=2000)' : 'every cycle on the encoder thread (PUMPWATCH_SYNC_THREAD_ABOVE_ROWS=0, as before 2026-12-06)';
      console.log(`${label}:`);
      console.log(`  agent RSS median ${fmt(r.rssMedian)} MB, largest ${fmt(r.rssLargest)} MB; threads at most ${r.threadsMax}, at the end ${r.threadsLast}`);
      console.log(`  POST latency p50 ${fmt(r.p50, 2)} ms, p99 ${fmt(r.p99, 2)} ms, max ${fmt(r.max, 2)} ms (${fmt(r.posts)} POSTs)`);
      console.log(`  readings posted ${fmt(r.posted)}, uploaded ${fmt(r.uploaded)}; batches encoded on the thread ${r.encoded.thread}, on the main thread ${r.encoded.main}`);
      console.log(`  at the largest sample: ${r.atLargest}`);
    }
  } finally {
    await azurite.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
