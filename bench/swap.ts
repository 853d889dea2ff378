/**
 * Hot-swap under load: readings arrive at a steady rate (default 10 000/s over 50 pumps) through the
 * agent's ingest pipeline while the default model changes N times (default 10), each time through
 * the real path (HTTP download from a loopback server, sha256, atomic store, contract check, session,
 * validation on recent readings, switch between two micro-batches). Prints readings lost or failed,
 * the longest gap between two committed micro-batches while a swap was in progress (the scoring
 * stall; target < 5 ms) beside the same figure outside swaps, and the session-creation time measured
 * in the same run. Figures only; nothing passes or fails on time.
 *
 *   node dist/bench/swap.js [--rate 10000] [--swaps 10] [--pumps 50]
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { loadConfig } from '../agent/config.js';
import { createModelUpdater } from '../agent/edge/model-updates.js';
import { createLogger } from '../agent/logger.js';
import { Agent } from '../agent/main.js';
import { LoadedModel } from '../inference/model.js';
import type { CsvTable } from '../trainer/csv.js';
import { fitTable } from '../trainer/fit.js';
import { serveFiles } from './support.js';

const FEATURES = ['Pressure', 'Flow', 'Current'];

function values(i: number): Record<string, number> {
  const flow = 30 + 3 * Math.sin(i / 50) + Math.random() * 0.4;
  return { Pressure: 2 - 0.02 * flow + Math.random() * 0.02, Flow: flow, Current: 0.5 + 0.03 * flow + Math.random() * 0.02 };
}

function model(version: string, seed: number): Uint8Array {
  const table: CsvTable = { features: FEATURES, rows: [], timestamps: [], timestampColumn: 'timestamp', ignoredColumns: [] };
  for (let i = 0; i < 600; i++) {
    const v = values(i + seed * 1000);
    table.rows.push(Float64Array.from(FEATURES.map((f) => v[f]!)));
    table.timestamps.push(Date.UTC(2026, 0, 1) + i * 1000);
  }
  return fitTable(table, { version, window: 8, algorithm: 'pca' }).bytes;
}

const pct = (xs: number[], p: number): number => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? Number.NaN;
const ms = (x: number): string => `${x.toFixed(2)} ms`;

async function main(): Promise<void> {
  const { values: args } = parseArgs({ options: { rate: { type: 'string', default: '10000' }, swaps: { type: 'string', default: '10' }, pumps: { type: 'string', default: '50' } } });
  const rate = Number(args.rate);
  const swaps = Number(args.swaps);
  const pumps = Number(args.pumps);
  const dir = mkdtempSync(join(tmpdir(), 'pumpwatch-bench-swap-'));
  const files = new Map<string, Uint8Array>();
  const versions = Array.from({ length: swaps }, (_, i) => `v${i + 1}`);
  versions.forEach((v, i) => files.set(`/${v}.onnx`, model(v, i + 1)));
  writeFileSync(join(dir, 'bundled.onnx'), model('v0', 0));
  const server = await serveFiles(files);
  const config = loadConfig({
    PUMPWATCH_DATA_DIR: join(dir, 'data'), PUMPWATCH_HTTP_PORT: '0', PUMPWATCH_SIMULATE: '0', PUMPWATCH_SYNC: 'off',
    PUMPWATCH_HUB: 'off', PUMPWATCH_LOG_LEVEL: 'silent', PUMPWATCH_ALLOW_INSECURE_MODEL_URLS: '1',
  });
  const agent = new Agent({ config, logger: createLogger('silent'), defaultModelPath: join(dir, 'bundled.onnx') });
  await agent.start();
  const { updater } = createModelUpdater(agent);

  // Per micro-batch: when scoring started and when the commit listener ran. The stall is the time
  // between one batch's commit and the next batch's start while readings were waiting: work of the
  // swap on the event loop (session creation, validation) shows up there.
  let swapping = false;
  let lastCommit = -1;
  const stalls = { swap: [] as number[], idle: [] as number[] };
  const batchMs = { swap: [] as number[], idle: [] as number[] };
  let batchStart = 0;
  const score = agent.engine.score.bind(agent.engine);
  agent.engine.score = (readings, receivedAt) => {
    batchStart = performance.now();
    if (lastCommit >= 0) (swapping ? stalls.swap : stalls.idle).push(batchStart - lastCommit);
    return score(readings, receivedAt);
  };
  agent.pipeline.onCommit(() => {
    lastCommit = performance.now();
    (swapping ? batchMs.swap : batchMs.idle).push(lastCommit - batchStart);
  });

  // The load: readings due at `rate`/s, submitted from a setImmediate loop.
  let submitted = 0;
  let accepted = 0;
  let failed = 0;
  let running = true;
  const pending = new Set<Promise<void>>();
  const t0 = performance.now();
  const load = (async () => {
    while (running) {
      const due = Math.floor(((performance.now() - t0) / 1000) * rate) - submitted;
      if (due > 0) {
        const batch = Array.from({ length: due }, (_, k) => ({ pumpId: `pump-${(submitted + k) % pumps}`, ts: Date.now(), values: values(submitted + k) }));
        submitted += due;
        const p = agent.pipeline.ingest(batch, 'bench').then((r) => void (accepted += r.accepted), () => void (failed += batch.length));
        pending.add(p);
        void p.finally(() => pending.delete(p));
      }
      await new Promise((r) => setImmediate(r));
    }
  })();

  await new Promise((r) => setTimeout(r, 1000)); // warm-up, and recent readings for validation
  const swapTimes: number[] = [];
  const steps = { loadMs: [] as number[], validateMs: [] as number[], switchMs: [] as number[] };
  for (const v of versions) {
    const bytes = files.get(`/${v}.onnx`)!;
    const entry = { version: v, url: `${server.url}/${v}.onnx`, sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
    const s0 = performance.now();
    swapping = true;
    updater.setDesired({ default: entry });
    await updater.idle();
    swapping = false;
    swapTimes.push(performance.now() - s0);
    const t = updater.lastTimings;
    if (t) for (const k of ['loadMs', 'validateMs', 'switchMs'] as const) steps[k].push(t[k]);
    const status = agent.models.status().default!;
    if (status.status !== 'active' || status.version !== v) throw new Error(`swap to ${v} ended ${status.status}: ${status.error}`);
    await new Promise((r) => setTimeout(r, 300));
  }
  running = false;
  await load;
  await Promise.all([...pending]);
  const elapsed = (performance.now() - t0) / 1000;

  // Session creation of the same models, in the same process.
  const creation: number[] = [];
  for (const v of versions) {
    const c0 = performance.now();
    const m = await LoadedModel.fromBytes(files.get(`/${v}.onnx`)!, 'bench');
    creation.push(performance.now() - c0);
    await m.release();
  }
  const rows = agent.buffer.stats().rows;
  await updater.stop();
  await agent.stop();
  await server.close();
  rmSync(dir, { recursive: true, force: true });

  process.stdout.write(
    [
      `bench/swap: ${swaps} model swaps under ${rate} readings/s over ${pumps} pumps (${elapsed.toFixed(1)} s, window 8)`,
      `  readings submitted ${submitted}, committed ${accepted}, rows in SQLite ${rows}, failed ${failed}, lost ${submitted - accepted - failed}`,
      `  longest scoring stall during a swap: ${ms(Math.max(...stalls.swap))} (target < 5 ms; p99 ${ms(pct(stalls.swap, 0.99))} over ${stalls.swap.length} batches)`,
      `  longest stall outside swaps: ${ms(Math.max(...stalls.idle))} (p99 ${ms(pct(stalls.idle, 0.99))} over ${stalls.idle.length} batches)`,
      `  micro-batch (score + commit): median ${ms(pct([...batchMs.idle, ...batchMs.swap], 0.5))}, max during swaps ${ms(Math.max(...batchMs.swap))}, outside ${ms(Math.max(...batchMs.idle))}`,
      `  session creation (LoadedModel.fromBytes) in this run: median ${ms(pct(creation, 0.5))}, max ${ms(Math.max(...creation))}`,
      `  swap steps, wall time with batches running in between (max): session load ${ms(Math.max(...steps.loadMs))}, validation run ${ms(Math.max(...steps.validateMs))}, switch + persist ${ms(Math.max(...steps.switchMs))}`,
      `  whole swap (download → verify → store → load → validate → switch): median ${ms(pct(swapTimes, 0.5))}, max ${ms(Math.max(...swapTimes))}`,
    ].join('\n') + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`bench/swap: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
