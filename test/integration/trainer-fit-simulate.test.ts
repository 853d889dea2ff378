/**
 * README: `pumpwatch-agent simulate` writes a SKAB-format CSV "for the trainer's fit". Its label
 * columns (`anomaly`, `changepoint`) are no sensor's: fit leaves them out by default, so the model
 * it writes scores the field readings a real agent gets, which carry the sensors only.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runSimulateCli } from '../../agent/simulate-cli.js';
import { SIMULATED_FEATURES } from '../../agent/simulator.js';
import { readModelMetadata } from '../../inference/contract.js';
import { runCli } from '../../trainer/commands/index.js';
import { postJson, startTestAgent, type TestAgent } from '../support/agent.js';

let dir: string;
let agent: TestAgent | null = null;
let out: string[];
let err: string[];
const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pw-fit-simulate-'));
  out = [];
  err = [];
});

afterEach(async () => {
  await agent?.stop();
  agent = null;
  await rm(dir, { recursive: true, force: true });
});

/** `pumpwatch-agent simulate --rows N --out FILE` (its own CLI, in this process); the CSV's lines. */
async function simulate(rows: number, start: Date, more: string[] = []): Promise<string[]> {
  const csv = join(dir, 'sim.csv');
  const sink = () => new Writable({ write: (_c, _e, done) => done() });
  expect(await runSimulateCli(['--rows', String(rows), '--out', csv, '--start', start.toISOString(), '--seed', '3', ...more], { stdout: sink(), stderr: sink() })).toBe(0);
  return (await readFile(csv, 'utf8')).split('\n').filter((l) => l !== '');
}

describe('fit on the CSV of pumpwatch-agent simulate', () => {
  it('leaves the label columns out, says so, and the model scores readings that carry the sensors only', async () => {
    const start = new Date(Date.now() - 3_600_000);
    const lines = await simulate(300, start);
    expect(lines[0]!.split(';').slice(-2)).toEqual(['anomaly', 'changepoint']);

    const model = join(dir, 'sim.onnx');
    expect(await runCli(['fit', '--csv', join(dir, 'sim.csv'), '--out', model], io)).toBe(0);
    const meta = readModelMetadata(await readFile(model));
    expect([...meta.features].sort()).toEqual([...SIMULATED_FEATURES].sort());
    expect(err).toContain("note: label columns left out of the features (SKAB's labels, never model inputs): anomaly, changepoint; pass --keep-labels if they are sensors");
    expect(err.join('\n')).not.toMatch(/ignored by the model/);

    // The field: readings of the eight sensors, as a sensor module sends them.
    agent = await startTestAgent({}, { model: await readFile(model) });
    const header = lines[0]!.split(';');
    const readings = lines.slice(1, 1 + 3 * meta.window).map((line, i) => {
      const cells = line.split(';');
      const values = Object.fromEntries(SIMULATED_FEATURES.map((f) => [f, Number(cells[header.indexOf(f)])]));
      return { pumpId: 'pump-sim', ts: Date.now() - 60_000 + i * 100, values };
    });
    expect((await postJson(`${agent.url}/readings`, readings)).status).toBe(202);
    const preds = ((await (await fetch(`${agent.url}/pumps/pump-sim/predictions?limit=1`)).json()) as any).predictions;
    expect(preds[0], JSON.stringify(preds[0])).toMatchObject({ score: expect.any(Number), unscoredReason: null });
  });

  it('says how many of the rows it trains on are labelled anomalous, and trains on them', async () => {
    // a fault every few minutes: some of the 3 000 rows are labelled anomaly 1
    const lines = await simulate(3000, new Date('2026-01-01T00:00:00Z'), ['--mean-fault-interval-min', '2']);
    const anomalous = (rows: string[]) => rows.filter((l) => l.split(';')[9] === '1.0').length;
    const all = anomalous(lines.slice(1));
    const first = anomalous(lines.slice(1, 2001));
    expect(all).toBeGreaterThan(first);
    expect(first).toBeGreaterThan(0);
    const model = join(dir, 'sim.onnx');
    expect(await runCli(['fit', '--csv', join(dir, 'sim.csv'), '--out', model, '--train-rows', '2000'], io)).toBe(0);
    expect(readModelMetadata(await readFile(model)).metrics.trainRows).toBe(2000);
    expect(err.filter((l) => l.includes('anomaly=1'))).toEqual([
      `note: ${first} of the 2000 rows trained on are labelled anomaly=1: they are trained on as normal (as SKAB's protocol trains on its first rows whatever they are); pass --train-rows to stop before them, or fit on readings without faults (pumpwatch-agent simulate --faults none)`,
    ]);

    err = [];
    await simulate(300, new Date('2026-01-01T00:00:00Z'), ['--faults', 'none']);
    expect(await runCli(['fit', '--csv', join(dir, 'sim.csv'), '--out', model], io)).toBe(0);
    expect(err).toContain('note: 0 of the 300 rows trained on are labelled anomaly=1');
  });

  it('keeps them as features with --keep-labels, and then says the agent needs them in every reading', async () => {
    await simulate(300, new Date(Date.UTC(2026, 0, 1)));
    const model = join(dir, 'kept.onnx');
    expect(await runCli(['fit', '--csv', join(dir, 'sim.csv'), '--out', model, '--keep-labels'], io)).toBe(0);
    expect(readModelMetadata(await readFile(model)).features).toEqual(expect.arrayContaining(['anomaly', 'changepoint']));
    expect(err.join('\n')).not.toMatch(/label columns left out|look like labels/);
    // No fault in these rows: the labels never vary, so the model gives them no weight, yet they are inputs.
    expect(err).toContain(
      'note: features that never vary in the trained rows get no weight in the model, but the agent still needs them in every reading of the pump: anomaly, changepoint; pass --exclude anomaly,changepoint to leave them out',
    );
  });
});
