/**
 * The frozen-sensor bounds a model carries (`pumpwatch.stuck_after`): `fit` finds them on the
 * training rows by cleaning's own test of a noisy analog signal (trainer/data/runs.ts) and writes
 * them, on SKAB's real anomaly-free recording (read in place), on the simulator's CSV, and on a
 * CSV with a set point and a status column, which it leaves out; cleaning finds them before values
 * are carried forward, and a frozen run in the training data does not widen them.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSimulateCli } from '../../agent/simulate-cli.js';
import { SIMULATED_FEATURES } from '../../agent/simulator.js';
import { MIN_STUCK_AFTER, readModelMetadata } from '../../inference/contract.js';
import { runCli } from '../../trainer/commands/index.js';
import { cleanSeries } from '../../trainer/data/clean.js';
import { runProfile, STUCK_AFTER_FACTOR } from '../../trainer/data/runs.js';
import { fitTable } from '../../trainer/fit.js';
import { trainingTable } from '../support/models.js';

const SKAB_FREE = '/work/shared/data/skab/anomaly-free/anomaly-free.csv';

let dir: string;
let out: string[];
let err: string[];
const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pw-stuck-after-'));
  out = [];
  err = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fitCsv(csv: string, ...args: string[]): Promise<ReturnType<typeof readModelMetadata>> {
  const model = join(dir, 'model.onnx');
  expect(await runCli(['fit', '--csv', csv, '--out', model, ...args], io), err.join('\n')).toBe(0);
  return readModelMetadata(await readFile(model));
}

/**
 * 3 000 rows at 1 Hz: a noisy current; a noisy flow meter that held one value for 40 readings once;
 * a set point, a run status and a slow level transmitter polled fast (a new value every 40 readings),
 * which hold their values by nature.
 */
function plantCsv(): string {
  const lines = ['timestamp,Current,Flow,Setpoint,Running,Level'];
  for (let i = 0; i < 3000; i++) {
    const ts = new Date(Date.UTC(2026, 0, 1) + i * 1000).toISOString();
    const current = 1.3 + 0.2 * Math.sin(i / 7) + 0.01 * Math.sin(i * 12.9898);
    const j = i >= 500 && i < 540 ? 500 : i;
    const flow = 30 + Math.round(100 * Math.sin(j * 78.233)) / 10;
    lines.push(`${ts},${current.toFixed(5)},${flow},${i < 1500 ? 50 : 55},${Math.floor(i / 700) % 2},${2 + (Math.floor(i / 40) % 5) / 10}`);
  }
  return `${lines.join('\n')}\n`;
}

describe('fit writes the frozen-sensor bounds', () => {
  it.skipIf(!existsSync(SKAB_FREE))("on SKAB's anomaly-free recording: every sensor is a noisy analog signal, its bound the floor (longest runs 1–17 readings)", async () => {
    const meta = await fitCsv(SKAB_FREE);
    expect(Object.keys(meta.stuckAfter ?? {}).sort()).toEqual([...meta.features].sort());
    expect(Object.values(meta.stuckAfter ?? {})).toEqual(meta.features.map(() => MIN_STUCK_AFTER));
  });

  it('on the CSV of pumpwatch-agent simulate (10 s): every sensor, the flow meter above the floor, 3 × its longest run', async () => {
    const csv = join(dir, 'sim.csv');
    const sink = () => new Writable({ write: (_c, _e, done) => done() });
    expect(await runSimulateCli(['--rows', '26000', '--out', csv, '--seed', '5', '--faults', 'none', '--period-ms', '10000'], { stdout: sink(), stderr: sink() })).toBe(0);
    const meta = await fitCsv(csv);
    expect(Object.keys(meta.stuckAfter ?? {}).sort()).toEqual([...SIMULATED_FEATURES].sort());
    const flow = meta.stuckAfter!['Volume Flow RateRMS']!;
    expect(flow).toBeGreaterThan(MIN_STUCK_AFTER);
    expect(flow % STUCK_AFTER_FACTOR).toBe(0);
  });

  it('leaves out a set point, a status and a slow transmitter polled fast (they hold their values by nature); a noisy meter gets 3 × its longest run', async () => {
    const csv = join(dir, 'plant.csv');
    await writeFile(csv, plantCsv());
    const meta = await fitCsv(csv);
    expect(meta.stuckAfter).toEqual({ Current: MIN_STUCK_AFTER, Flow: 120 });
    expect(out).toContain('frozen sensor after: Current 60, Flow 120 identical readings in a row; not judged (hold their values by nature): Setpoint, Running, Level');
  });

  it('a frozen run in the training rows (600 readings or more: a stuck sensor) does not widen the bound', () => {
    const table = trainingTable(3000);
    // Flow frozen for 700 readings
    for (let i = 1000; i < 1700; i++) table.rows[i]![1] = table.rows[999]![1]!;
    expect(runProfile(table.rows, 1, 600).long).toEqual([[999, 1700]]);
    const fit = fitTable(table, { algorithm: 'pca', version: 'frozen-1' });
    expect(fit.metadata.stuckAfter).toEqual({ Pressure: MIN_STUCK_AFTER, Flow: MIN_STUCK_AFTER, Current: MIN_STUCK_AFTER });
  });

  it("train's cleaning finds the bounds before carrying missing values forward, on the rows training keeps", () => {
    const table = trainingTable(3000);
    // 50 readings of Flow missing: carried forward they are 51 equal values, which no sensor read
    for (let i = 1000; i < 1050; i++) table.rows[i]![1] = Number.NaN;
    // a stop: Current held at one value for 300 readings, rows the stopped-when rule leaves out
    for (let i = 2000; i < 2300; i++) table.rows[i]![2] = 0.02;
    const targets = table.rows.map((_, i) => (i >= 2000 && i < 2300 ? ('stopped' as const) : null));
    const cleaned = cleanSeries({ features: table.features, timestamps: table.timestamps, rows: table.rows }, targets);
    expect(cleaned.stats.carriedValues).toBe(50);
    expect(cleaned.stuckAfter).toEqual({ Pressure: MIN_STUCK_AFTER, Flow: MIN_STUCK_AFTER, Current: MIN_STUCK_AFTER });
    const fit = fitTable({ ...cleaned.series, timestampColumn: 'ts', ignoredColumns: [] }, { algorithm: 'pca', version: 'clean-1', stuckAfter: cleaned.stuckAfter! });
    expect(fit.metadata.stuckAfter).toEqual(cleaned.stuckAfter);
    // fitted on the cleaned rows without cleaning's bounds, the carried run would have counted
    expect(runProfile(cleaned.series.rows, 1, 600).longest).toBeGreaterThanOrEqual(51);
  });
});
