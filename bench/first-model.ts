/**
 * The first model a gateway fits for a pump (agent/first-model/): how long the fit takes and how
 * much memory it needs, for `--days` of one simulated pump's readings (stopping a few times a day)
 * at `--period-s`, scored by the bundled default model and stored in a real buffer as the agent
 * stores them, then read back and fitted as the agent's check does it (pages packed as they are
 * read, the fit on its worker thread; the RSS from before the read). Also how late the main
 * thread's timers run meanwhile (what scoring and commits would wait), and the same rows fitted in
 * the calling thread (the same bytes).
 *
 * `--leaks`: what a first model finds. Five simulated pumps (seeds 5001–5005, no stops), each
 * with `--days` buffered and its first model fitted on them, then the next day with a leak (the
 * simulator's, full severity, 25 min) every 4 hours, scored by the agent's engine with the first
 * model and with the bundled default model: leaks found (a reading flagged during it), readings
 * flagged in leaks, and false flags (outside a leak and the hour after it).
 * Figures only.
 *
 *   node dist/bench/first-model.js [--period-s 10] [--days 1] [--leaks]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { fitFirstModelHere, fitFirstModelPacked, type FirstModelFitResult } from '../agent/first-model/fit.js';
import { FIRST_MODEL_WINDOW_MS, readFitRows } from '../agent/first-model/job.js';
import { packageRoot } from '../agent/paths.js';
import { PumpSimulator } from '../agent/simulator.js';
import { BufferStore } from '../buffer/store.js';
import type { Reading } from '../buffer/types.js';
import { InferenceEngine } from '../inference/engine.js';
import { LoadedModel } from '../inference/model.js';
import { loadModelFile } from '../inference/model-file.js';
import { bufferSimulated, fmt, rssSampler } from './support.js';

const { values: args } = parseArgs({ options: { 'period-s': { type: 'string', default: '10' }, days: { type: 'string', default: '1' }, leaks: { type: 'boolean', default: false } } });
const PERIOD_MS = Number(args['period-s']) * 1000;
const DAYS = Number(args.days);
const DAY = 86_400_000;

function describe(r: FirstModelFitResult): string {
  if (r.kind === 'fitted') return `fitted ${r.version}: ${r.trainRows} rows fitted on, ${r.heldOutFlagged} of ${r.heldOutRows} held out flagged in ${r.heldOutEpisodes} runs over ${r.heldOutHours} h, ${r.spanHours} h running, ${fmt(r.bytes.length / 1024)} KiB`;
  return `${r.kind} (${r.spanHours} h running): ${r.reason}`;
}

async function timing(model: LoadedModel): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-bench-first-'));
  const store = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 8 * 1024 ** 3 });
  store.open();
  try {
    const pumpId = 'bench-first';
    const sim = new PumpSimulator({ pumpId, seed: 41, startTs: Date.UTC(2026, 5, 1), periodMs: PERIOD_MS, faults: 'none', stops: { perDay: 4, minMinutes: 10, maxMinutes: 120 } });
    const count = Math.round((DAYS * DAY) / PERIOD_MS);
    let t = performance.now();
    await bufferSimulated(store, () => sim.next().reading, count, model);
    console.log(`${fmt(count)} readings (${DAYS} d at ${PERIOD_MS / 1000} s) scored by the bundled model and buffered in ${fmt((performance.now() - t) / 1000, 1)} s`);
    // As the agent's check does it: the rows read in pages, each packed into columns as it comes
    // (agent/first-model/job.ts readFitRows), then fitted on the fit's worker thread. The RSS from
    // before the read: the process's whole cost of a fit (the worker thread's memory is in it).
    // The main thread's timers meanwhile: how long a commit would wait.
    let lateMs = 0;
    let last = performance.now();
    const ticker = setInterval(() => {
      const now = performance.now();
      lateMs = Math.max(lateMs, now - last - 10);
      last = now;
    }, 10);
    const before = process.memoryUsage.rss() / 1024 / 1024;
    const rss = rssSampler();
    t = performance.now();
    const read = await readFitRows(store, pumpId);
    if (!read) throw new Error('no rows were read back');
    const readMs = performance.now() - t;
    const readRows = read.rows.ts.length; // the columns are transferred to the worker thread (detached here)
    const threaded = await fitFirstModelPacked({ pumpId, rows: read.rows, defaultModel: model.meta, afterHours: 12 });
    const ms = performance.now() - t;
    rss.stop();
    clearInterval(ticker);
    console.log(`as the agent does it: ${fmt(readRows)} rows read and packed in ${fmt(readMs)} ms, fitted on the worker thread, ${fmt(ms / 1000, 2)} s in all; ${describe(threaded)}`);
    console.log(`  process RSS ${fmt(before)} MB before the read, peak ${fmt(rss.peak())} MB (+${fmt(rss.peak() - before)} MB); main thread timers late by at most ${fmt(lateMs)} ms`);

    // The same rows as objects, fitted in this thread: the same bytes.
    const newest = read.lastTs;
    const rows = store.predictions(pumpId, { limit: 250_000 }).filter((r) => r.ts >= newest - FIRST_MODEL_WINDOW_MS);
    t = performance.now();
    const here = await fitFirstModelHere({ pumpId, rows, defaultModel: model.meta, afterHours: 12 });
    console.log(`in this thread: ${fmt((performance.now() - t) / 1000, 2)} s; ${describe(here)}`);
    const same = here.kind === 'fitted' && threaded.kind === 'fitted' && here.sha256 === threaded.sha256;
    console.log(`same bytes on both: ${same ? 'yes' : 'no'}`);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const LEAK_MS = 25 * 60_000;

async function leaks(bundled: LoadedModel): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pw-bench-first-'));
  const T0 = Date.UTC(2026, 5, 1);
  const tally = { first: { found: 0, flagged: 0, falseFlags: 0 }, bundled: { found: 0, flagged: 0, falseFlags: 0 }, leaks: 0, leakReadings: 0, normal: 0 };
  try {
    for (let seed = 5001; seed <= 5005; seed++) {
      const pumpId = `leaks-${seed}`;
      const plans = Array.from({ length: 6 }, (_, k) => ({ kind: 'leak' as const, startTs: T0 + DAYS * DAY + (1 + 4 * k) * 3_600_000, durationMs: LEAK_MS }));
      const sim = new PumpSimulator({ pumpId, seed, startTs: T0, periodMs: PERIOD_MS, faults: plans });
      const store = new BufferStore({ path: join(dir, `${pumpId}.sqlite`), maxBytes: 8 * 1024 ** 3 });
      store.open();
      await bufferSimulated(store, () => sim.next().reading, Math.round((DAYS * DAY) / PERIOD_MS), bundled);
      const rows = store.predictions(pumpId, { limit: 250_000 });
      store.close();
      const fit = await fitFirstModelHere({ pumpId, rows, defaultModel: bundled.meta, afterHours: 12 });
      if (fit.kind !== 'fitted') {
        console.log(`${pumpId}: ${describe(fit)}`);
        continue;
      }
      const first = await LoadedModel.fromBytes(fit.bytes, 'bench');
      const day: Reading[] = Array.from({ length: Math.round(DAY / PERIOD_MS) }, () => sim.next().reading);
      const inLeak = (ts: number) => plans.some((p) => ts >= p.startTs && ts < p.startTs + p.durationMs);
      const near = (ts: number) => plans.some((p) => ts >= p.startTs && ts < p.startTs + p.durationMs + 3_600_000);
      const line: string[] = [];
      for (const [name, model] of [['first', first], ['bundled', bundled]] as const) {
        const engine = new InferenceEngine();
        engine.setModel(pumpId, model);
        engine.seed(pumpId, rows.slice(-256));
        const scored = await engine.score(day, day[0]!.ts);
        const found = plans.filter((p) => scored.some((r) => r.anomaly === true && r.ts >= p.startTs && r.ts < p.startTs + p.durationMs)).length;
        const flagged = scored.filter((r) => r.anomaly === true && inLeak(r.ts)).length;
        const falseFlags = scored.filter((r) => r.anomaly === true && !near(r.ts)).length;
        tally[name].found += found;
        tally[name].flagged += flagged;
        tally[name].falseFlags += falseFlags;
        if (name === 'first') {
          tally.leaks += plans.length;
          tally.leakReadings += day.filter((r) => inLeak(r.ts)).length;
          tally.normal += day.filter((r) => !near(r.ts)).length;
        }
        line.push(`${name} ${found}/${plans.length} leaks, ${flagged} leak readings flagged, ${falseFlags} false flags`);
      }
      await first.release();
      console.log(`${pumpId} (${fit.version}, ${fit.trainRows} rows fitted on): ${line.join('; ')}`);
    }
    for (const name of ['first', 'bundled'] as const) {
      const t = tally[name];
      console.log(`${name}: ${t.found}/${tally.leaks} leaks found, ${t.flagged} of ${tally.leakReadings} leak readings flagged, ${t.falseFlags} of ${tally.normal} normal readings flagged`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const bundled = await loadModelFile(join(packageRoot(), 'agent', 'assets', 'default-model.onnx'));
try {
  await (args.leaks ? leaks(bundled) : timing(bundled));
} finally {
  await bundled.release();
}
