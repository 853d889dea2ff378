/**
 * bench/ingest: sustained readings/s and reading-to-commit latency of the agent's ingest path,
 * in-process and over HTTP, with the raw ceiling (onnxruntime micro-batched + better-sqlite3
 * batched inserts, no agent around them) measured in the same run. Prints figures; never fails on time.
 *
 *   npm run build && node dist/bench/ingest.js [--readings 400000] [--algo A] [--paced-seconds 60]
 *
 * The agent process gets the node flags and environment it is deployed with (agent/node-flags.ts);
 * BENCH_AGENT_NODE_FLAGS="…" replaces the flags (e.g. "" for none), MALLOC_ARENA_MAX set here wins.
 */
import { execFile, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import * as ort from 'onnxruntime-node';
import { IngestPipeline } from '../agent/ingest/pipeline.js';
import { freePort, startAzurite, type AzuriteHandle } from '../agent/azurite.js';
import { AGENT_ENV, AGENT_NODE_FLAGS, applyRuntimeV8Flags, RUNTIME_V8_FLAGS } from '../agent/node-flags.js';
import { bundledModelPath, packageRoot } from '../agent/paths.js';
import { MetricsRegistry, createAgentMetrics } from '../agent/metrics.js';
import { BufferStore } from '../buffer/store.js';
import { Checkpointer } from '../buffer/checkpointer.js';
import { openDatabase } from '../buffer/open.js';
import { ContributionNames } from '../buffer/contributions.js';
import { INSERT_READING_SQL, insertRow } from '../buffer/rows.js';
import type { Reading } from '../buffer/types.js';
import { InferenceEngine } from '../inference/engine.js';
import { LoadedModel } from '../inference/model.js';
import { agentMemorySampler, formatMemory } from './memory.js';
import { benchModel, fmt, fsyncProbe, pacedLatencies, percentile, rssSampler, simulatedReadings, stallsOf, untilReady } from './support.js';

if (process.argv.includes('--help')) {
  console.log(`bench/ingest: readings/s, latency and the agent's memory (see the header of bench/ingest.ts).
  --readings N   simulated readings per phase (default 400000; over HTTP at most 300000)
  --algo A       score with a model of algorithm A fitted on one simulated pump instead of the bundled default
  --paced-seconds S   length of the run paced at 10 000 readings/s (default 60: 6 000 ticks, so its p99 is not one stall)
  env BENCH_AGENT_NODE_FLAGS   node flags of the agent process instead of its own (${AGENT_NODE_FLAGS.join(' ')})`);
  process.exit(0);
}

const arg = (name: string, def: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : def;
};
const TOTAL = arg('readings', 400_000);
/**
 * The paced run's length. At 100 ticks a second its p99 is the 1 % slowest ticks: in the 5 s it
 * used to run, 5 ticks, which one disk stall of 50 ms made on its own (the ticks due meanwhile
 * queue behind it), so one run in three read p99 30–55 ms and the next 6 ms for the same code.
 */
const PACED_S = arg('paced-seconds', 60);
/** A paced tick slower than this is part of a stall (the target for p99 is 20 ms). */
const STALL_MS = 20;
/** Node flags of the agent process: the ones it is deployed with, unless the environment says otherwise. */
const AGENT_FLAGS = process.env.BENCH_AGENT_NODE_FLAGS === undefined ? [...AGENT_NODE_FLAGS] : process.env.BENCH_AGENT_NODE_FLAGS.split(' ').filter(Boolean);
const PUMPS = 50;
const BATCH = 4096;

const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-ingest-'));
// The agent's bundled default model (fitted on several simulated pumps, so the simulated readings
// are mostly normal, as in the field); `--algo A` fits one on a single simulated pump instead, which
// flags far more readings as anomalies (anomaly rows cost more: contributions and their indexes).
/** --sync: the agent process also uploads to a local Azurite (in memory) while it ingests, as a gateway does. */
const SYNC = process.argv.includes('--sync');
const ALGO = process.argv.includes('--algo') ? process.argv[process.argv.indexOf('--algo') + 1] : undefined;
/**
 * `--paced-child MODEL_FILE`: this process is the paced run's own process (see pacedInOwnProcess),
 * started with the agent's node flags and environment; it prints its figures as one JSON line.
 */
const CHILD_MODEL = process.argv.includes('--paced-child') ? process.argv[process.argv.indexOf('--paced-child') + 1] : undefined;
if (CHILD_MODEL !== undefined) applyRuntimeV8Flags();
const modelBytes = CHILD_MODEL !== undefined ? readFileSync(CHILD_MODEL) : ALGO ? benchModel(undefined, ALGO) : readFileSync(bundledModelPath());
const modelPath = join(dir, 'model.onnx');
writeFileSync(modelPath, modelBytes);
const readings = simulatedReadings(TOTAL, PUMPS);
const asJson = (r: Reading) => ({ pumpId: r.pumpId, ts: r.ts, values: r.values });

/** onnxruntime on packed batches + better-sqlite3 inserts in one transaction per batch. */
async function rawCeiling(): Promise<number> {
  const model = await LoadedModel.fromBytes(modelBytes, 'bench');
  const { features, window } = model.meta;
  // The agent's own schema (same table and indexes): the ceiling measures the work, not a lighter table.
  const db = openDatabase(join(dir, 'raw.sqlite')); // WAL, synchronous=FULL, migrated
  // The same storage set-up as the agent's buffer: checkpoints on their own thread.
  db.pragma('wal_autocheckpoint = 16384');
  const checkpointer = new Checkpointer(join(dir, 'raw.sqlite'));
  checkpointer.start();
  const insert = db.prepare(INSERT_READING_SQL);
  const names = new ContributionNames(db); // contributions stored as the agent stores them (a BLOB)
  const stride = window * features.length;
  const input = new Float32Array(BATCH * stride);
  const t0 = performance.now();
  for (let off = 0; off < TOTAL; off += BATCH) {
    const n = Math.min(BATCH, TOTAL - off);
    for (let k = 0; k < n; k++) {
      // No windows kept: the reading's vector is repeated `window` times (the least work possible).
      const v = readings[off + k]!.values;
      const base = k * stride;
      for (let f = 0; f < features.length; f++) input[base + f] = v[features[f]!] ?? 0;
      for (let w = 1; w < window; w++) input.copyWithin(base + w * features.length, base, base + features.length);
    }
    const out = await model.run(input.subarray(0, n * stride), n);
    db.transaction(() => {
      for (let k = 0; k < n; k++) {
        const r = readings[off + k]!;
        const s = out.scores[k]!;
        const anomaly = s > model.meta.threshold;
        // An anomaly row carries its per-feature contributions, as the agent stores it (same work).
        let contributions: Record<string, number> | null = null;
        if (anomaly && out.contributions) {
          contributions = {};
          for (let f = 0; f < features.length; f++) contributions[features[f]!] = out.contributions[k * features.length + f]!;
        }
        insertRow(insert, { pumpId: r.pumpId, ts: r.ts, receivedAt: r.ts, values: r.values, score: s, anomaly, modelVersion: 'bench', imputed: false, unscoredReason: null, contributions }, names);
      }
    })();
  }
  const rate = TOTAL / ((performance.now() - t0) / 1000);
  checkpointer.stop();
  db.close();
  await model.release();
  await until(() => checkpointer.closed()); // see settle()
  return rate;
}

/** Resolves once `done()` is true (checked every 10 ms), or after 30 s. */
async function until(done: () => boolean): Promise<void> {
  for (let i = 0; i < 3000 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
}

/** Closes a phase's buffer and waits for its checkpoint thread's last checkpoint and close (see settle()). */
async function closeBuffer(buffer: BufferStore): Promise<void> {
  buffer.close();
  await until(() => buffer.checkpointsEnded());
}

/**
 * Bytes one paced tick's commit (rate / 100 readings with their predictions) appends to the WAL:
 * the size the fsync probe writes. Measured on a buffer of its own without checkpoints, so the
 * WAL only grows.
 */
function walBytesPerCommit(perTick: number): number {
  const path = join(dir, 'wal-size.sqlite');
  const buffer = new BufferStore({ path, maxBytes: 8 * 1024 ** 3, startCheckpoints: () => ({ stop: () => {}, error: () => null, closed: () => true }) });
  buffer.open();
  buffer.db.pragma('wal_autocheckpoint = 0');
  const commit = (i: number) => buffer.appendBatch(readings.slice(i * perTick, (i + 1) * perTick).map((r) => ({ ...r, receivedAt: r.ts, score: 0.1, anomaly: false, modelVersion: 'bench', imputed: false, unscoredReason: null })));
  for (let i = 0; i < 20; i++) commit(i);
  const before = statSync(`${path}-wal`).size;
  for (let i = 20; i < 120; i++) commit(i);
  const bytes = Math.round((statSync(`${path}-wal`).size - before) / 100);
  buffer.close();
  return bytes;
}

function pipelineParts(name: string) {
  const buffer = new BufferStore({ path: join(dir, `${name}.sqlite`), maxBytes: 8 * 1024 ** 3 });
  buffer.open();
  const engine = new InferenceEngine();
  const metrics = createAgentMetrics(new MetricsRegistry());
  const pipeline = new IngestPipeline({ engine, buffer, metrics, maxBatch: BATCH });
  return { buffer, engine, pipeline };
}

/** Saturated: chunks of 1 000 submitted with several in flight, as many HTTP clients would. */
async function inProcessThroughput(): Promise<{ rate: number; p50: number; p99: number; anomalyShare: number }> {
  const { buffer, engine, pipeline } = pipelineParts('inproc');
  engine.setModel('default', await LoadedModel.fromBytes(modelBytes, 'bench'));
  const latencies: number[] = [];
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < TOTAL) {
      const chunk = readings.slice(next, next + 1000).map(asJson);
      next += 1000;
      const s = performance.now();
      await pipeline.ingest(chunk, 'bench');
      latencies.push(performance.now() - s);
    }
  };
  await Promise.all(Array.from({ length: 8 }, worker));
  const rate = TOTAL / ((performance.now() - t0) / 1000);
  const anomalies = (buffer.db.prepare('SELECT count(*) AS n FROM readings WHERE anomaly = 1').get() as { n: number }).n;
  await closeBuffer(buffer);
  latencies.sort((a, b) => a - b);
  return { rate, p50: percentile(latencies, 50), p99: percentile(latencies, 99), anomalyShare: anomalies / TOTAL };
}

/**
 * Paced at `rate` readings/s (a tick every 10 ms): latency per reading from when its tick was due
 * to its commit (bench/support.ts `pacedLatencies`: a tick delayed by a blocked event loop counts
 * its wait), the stalls (runs of ticks over STALL_MS) and the longest the event loop was blocked
 * (monitorEventLoopDelay: how late a 1 ms timer fired at most).
 */
async function pacedLatency(rate: number, seconds: number): Promise<{ p50: number; p99: number; max: number; stalls: number; slowTicks: number; longestBlock: number }> {
  const { buffer, engine, pipeline } = pipelineParts(`paced-${rate}`);
  engine.setModel('default', await LoadedModel.fromBytes(modelBytes, 'bench'));
  const perTick = Math.max(1, Math.round(rate / 100));
  const loop = monitorEventLoopDelay({ resolution: 1 });
  loop.enable();
  const latencies = await pacedLatencies(seconds * 100, 10, (tick) => {
    const off = (tick * perTick) % (TOTAL - perTick);
    return pipeline.ingest(readings.slice(off, off + perTick).map((r) => ({ ...asJson(r), ts: Date.now() })), 'bench');
  });
  loop.disable();
  await closeBuffer(buffer);
  const stalls = stallsOf(latencies, STALL_MS);
  latencies.sort((a, b) => a - b);
  return { p50: percentile(latencies, 50), p99: percentile(latencies, 99), max: latencies[latencies.length - 1]!, stalls: stalls.events, slowTicks: stalls.ticks, longestBlock: loop.max / 1e6 };
}

/**
 * The agent as its own process (`node dist/agent/cli.js`, as deployed), fed over HTTP with POST
 * batches of 1 000 readings, 4 in flight, from this process: throughput, request latency, and the
 * agent's peak RSS.
 */
async function httpThroughput() {
  const port = await freePort();
  const azurite: AzuriteHandle | null = SYNC ? await startAzurite({ location: join(dir, 'azurite'), inMemory: true }) : null;
  const sync = azurite ? { PUMPWATCH_SYNC: 'auto', PUMPWATCH_BLOB_CONNECTION_STRING: azurite.connectionString } : { PUMPWATCH_SYNC: 'off' };
  const agent = spawn(process.execPath, [...AGENT_FLAGS, join(packageRoot(), 'dist', 'agent', 'cli.js')], {
    env: {
      PATH: process.env.PATH ?? '', ...AGENT_ENV, ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}), PUMPWATCH_DATA_DIR: join(dir, 'agent'), PUMPWATCH_HTTP_PORT: String(port), PUMPWATCH_SIMULATE: '0',
      ...sync, PUMPWATCH_HUB: 'off', PUMPWATCH_LOG_LEVEL: 'warn', PUMPWATCH_DEFAULT_MODEL: modelPath,
      PUMPWATCH_BUFFER_MAX_BYTES: String(8 * 1024 ** 3),
    },
    stdio: 'ignore',
  });
  const base = `http://127.0.0.1:${port}`;
  // Whatever happens below, the agent (a child process: it would outlive this one) and Azurite stop.
  const exited = new Promise((r) => agent.once('exit', r));
  try {
    await untilReady(base);
    const total = Math.min(TOTAL, 300_000);
    const bodies: string[] = [];
    for (let off = 0; off < total; off += 1000) bodies.push(JSON.stringify(readings.slice(off, off + 1000).map(asJson)));
    const memory = agentMemorySampler(agent.pid!, base);
    const idle = await memory.sample();
    const latencies: number[] = [];
    let next = 0;
    const t0 = performance.now();
    const worker = async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const s = performance.now();
        const res = await fetch(`${base}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
        await res.arrayBuffer();
        latencies.push(performance.now() - s);
      }
    };
    await Promise.all(Array.from({ length: 4 }, worker));
    const rate = total / ((performance.now() - t0) / 1000);
    const mem = await memory.stop();
    latencies.sort((a, b) => a - b);
    return { rate, p50: percentile(latencies, 50), p99: percentile(latencies, 99), idle, ...mem };
  } finally {
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
    await exited;
    await azurite?.stop();
  }
}

/**
 * Between phases: delete the phase's files and flush the kernel's dirty pages, so the next phase's
 * fsyncs do not queue behind the previous phase's writeback. Called once the phase's checkpoint
 * thread has closed its connection (closeBuffer, rawCeiling): until then it runs a last checkpoint
 * into the file deleted here and only its close frees the file's blocks, after the `sync`.
 */
function settle(): void {
  for (const f of readdirSync(dir)) if (f.endsWith('.sqlite') || f.endsWith('-wal') || f.endsWith('-shm')) rmSync(join(dir, f), { force: true });
  execFileSync('sync');
}

/** Readings the paced run's own process cycles through (50 pumps × 400: a few MB, not the bench's 400 000). */
const PACED_POOL = 20_000;

/**
 * The paced run in a process of its own, started as the agent is (its node flags, V8 flags and
 * environment), holding only PACED_POOL readings. Run here, its event loop would share this
 * process's heap: the 400 000 readings and the earlier phases' garbage make each young-generation
 * collection scan a large old space (scavenges of 16-27 ms were traced in it), which the agent's
 * process does not carry.
 */
async function pacedInOwnProcess(): Promise<Awaited<ReturnType<typeof pacedLatency>>> {
  const args = [...AGENT_FLAGS, process.argv[1]!, '--paced-child', modelPath, '--readings', String(PACED_POOL), '--paced-seconds', String(PACED_S)];
  const env = { PATH: process.env.PATH ?? '', ...AGENT_ENV, ...(process.env.MALLOC_ARENA_MAX ? { MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX } : {}) };
  const stdout = await new Promise<string>((resolve, reject) =>
    execFile(process.execPath, args, { env, maxBuffer: 1024 * 1024 }, (err, out, errOut) => (err ? reject(new Error(`paced run's process failed: ${errOut || err.message}`)) : resolve(out))),
  );
  return JSON.parse(stdout.trim().split('\n').pop()!) as Awaited<ReturnType<typeof pacedLatency>>;
}

async function main(): Promise<void> {
  try {
    if (CHILD_MODEL !== undefined) {
      console.log(JSON.stringify(await pacedLatency(10_000, PACED_S)));
      return;
    }
    await phases();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function phases(): Promise<void> {
  const rss = rssSampler();
  console.log(`bench/ingest: ${fmt(TOTAL)} simulated readings, ${PUMPS} pumps, 8 features, micro-batches up to ${BATCH}, durable (WAL fsynced) before answered, onnxruntime ${ort.env.versions.common} (1 intra-op thread), model ${ALGO ? `${ALGO} fitted on one simulated pump` : 'the bundled default'}`);
  // Best of two runs: the first one also pays for JIT warm-up and a cold file system.
  const first = await rawCeiling();
  settle();
  const ceiling = Math.max(first, await rawCeiling());
  console.log(`raw ceiling (onnxruntime batched + better-sqlite3 batched inserts, same schema, best of 2): ${fmt(ceiling)} readings/s`);
  settle();
  const inproc = await inProcessThroughput();
  console.log(`in-process pipeline (validate + window + score + commit): ${fmt(inproc.rate)} readings/s = ${fmt((inproc.rate / ceiling) * 100, 1)} % of the ceiling; per 1 000-reading chunk p50 ${fmt(inproc.p50, 1)} ms, p99 ${fmt(inproc.p99, 1)} ms (saturated); ${fmt(inproc.anomalyShare * 100, 1)} % of readings scored as anomalies`);
  settle();
  // The disk's own fsyncs of as many bytes as a paced commit appends to the WAL, in the same folder
  // just before the paced run: the ceiling its reading-to-commit times cannot beat, and what tells a
  // disk stall from one of the agent.
  const walBytes = walBytesPerCommit(100);
  settle();
  const probeS = Math.max(5, Math.round(PACED_S / 3));
  const disk = await fsyncProbe(dir, walBytes, 10, probeS);
  console.log(`the disk's own fsync (${fmt(walBytes / 1024)} KiB appended, one paced commit's WAL frames, fsynced 100 times/s for ${probeS} s in the same folder, no SQLite): p50 ${fmt(percentile(disk, 50), 2)} ms, p99 ${fmt(percentile(disk, 99), 2)} ms, max ${fmt(disk[disk.length - 1]!, 2)} ms; over ${STALL_MS} ms: ${disk.filter((x) => x > STALL_MS).length} of ${fmt(disk.length)}`);
  settle();
  const paced = await pacedInOwnProcess();
  console.log(`in-process at 10 000 readings/s for ${PACED_S} s (${fmt(PACED_S * 100)} ticks of 100; a process of its own started as the agent is, cycling ${fmt(PACED_POOL)} readings): reading-to-commit p50 ${fmt(paced.p50, 2)} ms, p99 ${fmt(paced.p99, 2)} ms, max ${fmt(paced.max, 2)} ms; ${paced.stalls} stalls (${paced.slowTicks} ticks over ${STALL_MS} ms); longest event-loop block ${fmt(paced.longestBlock, 1)} ms`);
  if (process.env.BENCH_PACED_HERE) {
    const here = await pacedLatency(10_000, PACED_S);
    console.log(`  the same run in this process (BENCH_PACED_HERE; ${fmt(TOTAL)} readings on its heap, the bench's node flags): p50 ${fmt(here.p50, 2)} ms, p99 ${fmt(here.p99, 2)} ms, max ${fmt(here.max, 2)} ms; ${here.stalls} stalls (${here.slowTicks} ticks over ${STALL_MS} ms); longest event-loop block ${fmt(here.longestBlock, 1)} ms`);
  }
  settle();
  const http = await httpThroughput();
  console.log(`over HTTP (agent process, POST batches of 1 000, 4 in flight${SYNC ? ', syncing to a local Azurite meanwhile' : ', sync and hub off'}): ${fmt(http.rate)} readings/s; request p50 ${fmt(http.p50, 1)} ms, p99 ${fmt(http.p99, 1)} ms`);
  const arenas = process.env.MALLOC_ARENA_MAX ?? AGENT_ENV.MALLOC_ARENA_MAX;
  console.log(`agent process RSS: peak ${fmt(http.rssPeak)} MB, after the run ${fmt(http.after.rss)} MB (node flags: ${AGENT_FLAGS.join(' ') || 'none'}; V8 flags set at start: ${RUNTIME_V8_FLAGS.join(' ')}; MALLOC_ARENA_MAX=${arenas})`);
  console.log(`  idle before the load: ${formatMemory(http.idle)}`);
  console.log(`  at the largest sample: ${formatMemory(http.atPeak)}`);
  console.log(`  after the run: ${formatMemory(http.after)}`);
  console.log('  (the V8 heap counts committed pages, some never touched, so "other native" can read low; worker threads\' heaps are in it)');
  rss.stop();
  console.log(`(peak RSS of the bench process itself, with ${fmt(TOTAL)} readings in memory and the in-process runs: ${fmt(rss.peak())} MB)`);
}

await main();
