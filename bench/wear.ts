/**
 * bench/wear: what the agent writes to the block device per reading (SD-card wear), as deployed
 * (its own process, node flags and environment; sync and hub off), for P pumps reading at 1 Hz:
 *   - `separate`: P clients each POST their one reading every second (P small commits a second,
 *     fewer when requests arrive together and share a micro-batch);
 *   - `batched`: one POST a second carrying the second's P readings (one commit a second, as a
 *     sensor module that batches a second of readings into one edgeHub message).
 * Bytes are the kernel's `write_bytes` of the agent process (/proc/PID/io: bytes it caused to be
 * sent to the block layer, counted when a page of the page cache goes from clean to dirty; the file
 * system's own journal writes are not in it), over a window after a warm-up. With `strace` on the
 * PATH (and ptrace allowed) the same window also counts fsyncs and splits the bytes written by
 * file (the WAL, the database file). Then the raw ceiling in this process: SQLite alone inserting
 * rows of the same size with no index, one commit per reading and one per second of readings.
 * Figures only: it never fails on them.
 *
 *   node dist/bench/wear.js [--pumps P] [--seconds S] [--checkpoint-ms A,B,…] [--page-size N] [--no-strace]
 *
 * `--page-size N` (an experiment, not an agent setting): the buffer file is made beforehand with
 * SQLite pages of N bytes (the agent makes it with 4096), so each page a commit touches costs a
 * WAL frame of N bytes instead.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import Database from 'better-sqlite3';
import { freePort } from '../agent/azurite.js';
import { AGENT_ENV, AGENT_NODE_FLAGS } from '../agent/node-flags.js';
import { packageRoot } from '../agent/paths.js';
import { benchModel, fmt, simulatedReadings, untilReady } from './support.js';

const { values: args } = parseArgs({
  options: { pumps: { type: 'string' }, seconds: { type: 'string' }, 'checkpoint-ms': { type: 'string' }, 'page-size': { type: 'string' }, 'no-strace': { type: 'boolean' } },
});
const PUMPS = Number(args.pumps ?? 12);
const SECONDS = Number(args.seconds ?? 40);
const WARMUP_S = 5;
const CHECKPOINT_MS = (args['checkpoint-ms'] ?? '500').split(',').map(Number);
const PAGE_SIZE = args['page-size'] === undefined ? null : Number(args['page-size']);

/** An empty buffer file with `pageSize` pages, made as the agent makes one (WAL, incremental vacuum), which the agent then migrates. */
function makeBufferFile(dataDir: string, pageSize: number): void {
  mkdirSync(dataDir, { recursive: true });
  const db = new Database(join(dataDir, 'buffer.sqlite'));
  db.pragma(`page_size = ${pageSize}`);
  db.pragma('auto_vacuum = INCREMENTAL');
  db.pragma('journal_mode = WAL');
  db.close();
}

/** The kernel's I/O counters of a process (Linux); null where /proc does not report them. */
function ioOf(pid: number): { writeBytes: number; cancelled: number } | null {
  try {
    const text = readFileSync(`/proc/${pid}/io`, 'utf8');
    const field = (name: string): number => Number(new RegExp(`^${name}: (\\d+)`, 'm').exec(text)?.[1] ?? Number.NaN);
    return { writeBytes: field('write_bytes'), cancelled: field('cancelled_write_bytes') };
  } catch {
    return null;
  }
}

/** strace attached to every thread of `pid`, logging fsyncs and writes with their file names; null when it cannot run. */
function traceStart(pid: number, out: string): ChildProcess | null {
  if (args['no-strace'] || spawnSync('strace', ['-V']).status !== 0) return null;
  return spawn('strace', ['-f', '-y', '-e', 'trace=fsync,fdatasync,write,pwrite64,pwritev', '-e', 'signal=none', '-qq', '-o', out, '-p', String(pid)], { stdio: 'ignore' });
}

interface Trace {
  fsyncs: number;
  byFile: Map<string, number>;
}

/** Fsyncs and bytes written by file name (the last path element) from strace's log. */
function traceRead(out: string): Trace {
  const byFile = new Map<string, number>();
  let fsyncs = 0;
  for (const line of readFileSync(out, 'utf8').split('\n')) {
    const call = /^\d+\s+(\w+)\((\d+)<([^>]*)>/.exec(line);
    if (!call) continue;
    const [, name, , path] = call as unknown as [string, string, string, string];
    if (name === 'fsync' || name === 'fdatasync') {
      fsyncs++;
      continue;
    }
    const written = /= (\d+)$/.exec(line);
    if (!written) continue;
    const file = path.split('/').at(-1)!;
    if (!file.startsWith('buffer.sqlite')) continue; // pipes, sockets, logs: not the buffer
    byFile.set(file, (byFile.get(file) ?? 0) + Number(written[1]));
  }
  return { fsyncs, byFile };
}

interface Result {
  label: string;
  readings: number;
  writeBytes: number | null;
  storedBytes: number;
  trace: Trace | null;
}

async function run(mode: 'separate' | 'batched', checkpointMs: number, modelPath: string, dir: string): Promise<Result> {
  const port = await freePort();
  const dataDir = join(dir, `${mode}-${checkpointMs}`);
  if (PAGE_SIZE !== null) makeBufferFile(dataDir, PAGE_SIZE);
  const agent = spawn(process.execPath, [...AGENT_NODE_FLAGS, join(packageRoot(), 'dist', 'agent', 'cli.js')], {
    env: {
      PATH: process.env.PATH ?? '', ...AGENT_ENV, PUMPWATCH_DATA_DIR: dataDir, PUMPWATCH_HTTP_PORT: String(port), PUMPWATCH_SIMULATE: '0',
      PUMPWATCH_HUB: 'off', PUMPWATCH_SYNC: 'off', PUMPWATCH_LOG_LEVEL: 'warn', PUMPWATCH_DEFAULT_MODEL: modelPath,
      PUMPWATCH_CHECKPOINT_INTERVAL_MS: String(checkpointMs),
    },
    stdio: 'ignore',
  });
  const exited = new Promise((r) => agent.once('exit', r));
  const base = `http://127.0.0.1:${port}`;
  const post = async (body: unknown): Promise<void> => {
    const res = await fetch(`${base}/readings`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    if (res.status !== 202) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
    await res.arrayBuffer();
  };
  const storedBytes = async (): Promise<number> => ((await (await fetch(`${base}/status`)).json()) as { buffer: { bytes: number } }).buffer.bytes;
  const traceOut = join(dir, `strace-${mode}-${checkpointMs}.txt`);
  let tracer: ChildProcess | null = null;
  try {
    await untilReady(base);
    const readings = simulatedReadings(PUMPS * (SECONDS + WARMUP_S), PUMPS, 5);
    const t0 = performance.now();
    let before: ReturnType<typeof ioOf> = null;
    let storedBefore = 0;
    for (let second = 0; second < SECONDS + WARMUP_S; second++) {
      if (second === WARMUP_S) {
        tracer = traceStart(agent.pid!, traceOut);
        if (tracer) await new Promise((r) => setTimeout(r, 300)); // attached before the window opens
        storedBefore = await storedBytes();
        before = ioOf(agent.pid!);
      }
      await new Promise((r) => setTimeout(r, Math.max(0, t0 + second * 1000 - performance.now())));
      const now = Date.now();
      const tick = readings.slice(second * PUMPS, (second + 1) * PUMPS).map((r) => ({ pumpId: r.pumpId, ts: now, values: r.values }));
      if (mode === 'batched') await post(tick);
      else await Promise.all(tick.map((r) => post(r)));
    }
    await new Promise((r) => setTimeout(r, Math.max(0, t0 + (SECONDS + WARMUP_S) * 1000 - performance.now())));
    const after = ioOf(agent.pid!);
    const storedAfter = await storedBytes();
    if (tracer) {
      const ended = new Promise((r) => tracer!.once('exit', r));
      tracer.kill('SIGINT');
      await ended;
    }
    return {
      label: `${mode}, checkpoints every ${fmt(checkpointMs)} ms${PAGE_SIZE === null ? '' : `, pages of ${PAGE_SIZE} bytes`}`,
      readings: PUMPS * SECONDS,
      writeBytes: before && after ? after.writeBytes - before.writeBytes - (after.cancelled - before.cancelled) : null,
      storedBytes: storedAfter - storedBefore,
      trace: tracer ? traceRead(traceOut) : null,
    };
  } finally {
    if (tracer && tracer.exitCode === null) tracer.kill('SIGINT');
    if (agent.exitCode === null && agent.signalCode === null) agent.kill('SIGTERM');
    await exited;
  }
}

/**
 * The raw ceiling: SQLite alone (WAL, synchronous=FULL, SQLite's own autocheckpoint), rows of about
 * the size the agent stores, no index, `perCommit` rows a commit; this process's write_bytes.
 */
function rawCeiling(dir: string, perCommit: number): { writeBytes: number | null; commits: number; rows: number } {
  const path = join(dir, `raw-${perCommit}.sqlite`);
  const db = new Database(path);
  if (PAGE_SIZE !== null) db.pragma(`page_size = ${PAGE_SIZE}`);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.exec('CREATE TABLE readings (seq INTEGER PRIMARY KEY, pump_id TEXT, ts INTEGER, received_at INTEGER, values_json TEXT, score REAL, anomaly INTEGER, model_version TEXT)');
  const insert = db.prepare('INSERT INTO readings (pump_id, ts, received_at, values_json, score, anomaly, model_version) VALUES (?, ?, ?, ?, ?, ?, ?)');
  const readings = simulatedReadings(PUMPS * (SECONDS + WARMUP_S), PUMPS, 5);
  const commit = db.transaction((rows: typeof readings) => {
    for (const r of rows) insert.run(r.pumpId, r.ts, r.ts + 20, JSON.stringify(r.values), 0.2, 0, 'bench');
  });
  const warm = PUMPS * WARMUP_S;
  for (let i = 0; i < warm; i += perCommit) commit(readings.slice(i, i + perCommit));
  const before = ioOf(process.pid);
  let commits = 0;
  for (let i = warm; i < readings.length; i += perCommit, commits++) commit(readings.slice(i, i + perCommit));
  const after = ioOf(process.pid);
  db.close();
  rmSync(path, { force: true });
  return { writeBytes: before && after ? after.writeBytes - before.writeBytes - (after.cancelled - before.cancelled) : null, commits, rows: readings.length - warm };
}

const perReading = (bytes: number | null, n: number): string => (bytes === null ? 'n/a (/proc/PID/io not reported here)' : `${fmt(bytes / n)} bytes`);

const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-wear-'));
try {
  const modelPath = join(dir, 'model.onnx');
  writeFileSync(modelPath, benchModel());
  console.log(`bench/wear: ${PUMPS} pumps at 1 Hz for ${SECONDS} s (after ${WARMUP_S} s of warm-up) per run, the agent process with sync and hub off, fresh data dir each run; bytes = write_bytes of /proc/PID/io (file-system journal not counted), stored = growth of /status buffer.bytes`);
  for (const checkpointMs of CHECKPOINT_MS) {
    for (const mode of ['separate', 'batched'] as const) {
      const r = await run(mode, checkpointMs, modelPath, dir);
      const t = r.trace;
      const files = t ? [...t.byFile].sort((a, b) => b[1] - a[1]).map(([f, b]) => `${f} ${fmt(b / 1024)} KiB`).join(', ') : '';
      const ratio = r.writeBytes === null ? '' : `, ${fmt(r.writeBytes / Math.max(1, r.storedBytes), 1)} bytes written per byte stored`;
      console.log(`  ${r.label}: ${fmt(r.readings)} readings; to the block device ${perReading(r.writeBytes, r.readings)}/reading (${r.writeBytes === null ? '' : `${fmt(r.writeBytes / 1024 / 1024, 2)} MiB, `}stored ${fmt(r.storedBytes / r.readings)} bytes/reading${ratio})`);
      if (t) console.log(`    strace (attached for the window): ${fmt(t.fsyncs / SECONDS, 1)} fsyncs/s; bytes written by file: ${files}`);
    }
  }
  for (const perCommit of [1, PUMPS]) {
    const raw = rawCeiling(dir, perCommit);
    console.log(`  raw ceiling (SQLite alone, no index, ${perCommit} row(s) a commit, ${fmt(raw.commits)} commits): ${perReading(raw.writeBytes, raw.rows)}/reading`);
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
