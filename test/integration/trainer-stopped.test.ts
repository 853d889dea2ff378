/**
 * The trainer's stopped-when rule: `fit --stopped-when` leaves a CSV's stops out of training and
 * writes the rule into the model; `train` inherits the champion's rule.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { readModelMetadata } from '../../inference/contract.js';
import { LoadedModel } from '../../inference/model.js';
import { runCli } from '../../trainer/commands/index.js';
import { normalValues, rng } from '../support/models.js';
import { stoppedValues, tableCsv, tableWithStops } from '../support/stops.js';

let dir: string;
let out: string[];
let err: string[];
const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pw-trainer-stopped-'));
  out = [];
  err = [];
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** 3 000 rows at 1 Hz, stopped 800-999 and 2 000-2 199. */
const STOPS = (i: number) => (i >= 800 && i < 1000) || (i >= 2000 && i < 2200);

/** Scores of one window of `window` copies of `values` (the pump held there) by a model file. */
async function heldScore(bytes: Uint8Array, values: Record<string, number>): Promise<number> {
  const model = await LoadedModel.fromBytes(bytes, 'test');
  try {
    const { window, features } = model.meta;
    const input = new Float32Array(window * features.length);
    for (let w = 0; w < window; w++) features.forEach((f, j) => (input[w * features.length + j] = values[f]!));
    return (await model.run(input, 1)).scores[0]!;
  } finally {
    await model.release();
  }
}

describe('fit --stopped-when', () => {
  it('leaves the stops and their warm-up out of training, says how many, and writes the rule into the model', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, tableCsv(tableWithStops(3000, STOPS)));
    const ruled = join(dir, 'ruled.onnx');
    const kept = join(dir, 'kept.onnx');
    expect(await runCli(['fit', '--csv', csv, '--out', ruled, '--window', '5', '--stopped-when', 'Current<0.5', '--after-start', '30'], io)).toBe(0);
    expect(out.join('\n')).toContain('trained on 2542 rows');
    expect(out.join('\n')).toContain('stopped when Current<0.5, warm-up 30 s: 458 rows left out of training (400 stopped, 58 starting); the agent stores such readings unscored');
    expect(await runCli(['fit', '--csv', csv, '--out', kept, '--window', '5'], io)).toBe(0);
    const ruledBytes = await readFile(ruled);
    const keptBytes = await readFile(kept);
    const meta = readModelMetadata(ruledBytes);
    expect(meta.stoppedWhen).toEqual({ feature: 'Current', below: 0.5, afterStartSeconds: 30 });
    expect(meta.metrics).toMatchObject({ trainRows: 2542, stoppedRowsLeftOut: { stopped: 400, starting: 58 } });
    expect(readModelMetadata(keptBytes).stoppedWhen).toBeUndefined();
    // Trained on the stops, a model takes a stopped pump for a normal one, and its idea of normal
    // is stretched to span both: a running pump with its flow 15 % low scores lower than on the
    // model fitted on the running rows only.
    const r = rng(3);
    const faulty = { ...normalValues(r, 100) };
    faulty.Flow = faulty.Flow! * 0.85;
    const stopped = stoppedValues(r);
    const ruledStop = await heldScore(ruledBytes, stopped);
    const keptStop = await heldScore(keptBytes, stopped);
    expect(ruledStop).toBeGreaterThan(meta.threshold);
    expect(keptStop).toBeLessThan(ruledStop);
    expect(await heldScore(keptBytes, faulty)).toBeLessThan(await heldScore(ruledBytes, faulty));
  });

  it.each([
    ['Current<', '--stopped-when "Current<": no number after "<"'],
    ['Curent<0.5', '--stopped-when: unknown feature "Curent": the model\'s features are "Pressure", "Flow", "Current"'],
    ['Current>0.5', '--stopped-when "Current>0.5": the operator is ">", only "<" is supported'],
    ['Current<=0.5', '--stopped-when "Current<=0.5": the operator is "<=", only "<" is supported'],
    ['Current 0.5', '--stopped-when "Current 0.5": expected FEATURE<NUMBER'],
    ['Current<low', '--stopped-when "Current<low": "low" is not a finite number'],
  ])('refuses --stopped-when %s, naming what is wrong (exit 2, no model written)', async (rule, message) => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, tableCsv(tableWithStops(300, () => false)));
    const model = join(dir, 'm.onnx');
    expect(await runCli(['fit', '--csv', csv, '--out', model, '--stopped-when', rule], io)).toBe(2);
    expect(err.join('\n')).toContain(message);
    await expect(readFile(model)).rejects.toThrow(/ENOENT/);
  });

  it('refuses --after-start out of range or without --stopped-when', async () => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, tableCsv(tableWithStops(300, () => false)));
    const model = join(dir, 'm.onnx');
    expect(await runCli(['fit', '--csv', csv, '--out', model, '--stopped-when', 'Current<0.5', '--after-start', '86401'], io)).toBe(2);
    expect(await runCli(['fit', '--csv', csv, '--out', model, '--after-start', '60'], io)).toBe(2);
    expect(err).toEqual([
      expect.stringContaining('--after-start must be an integer from 0 to 86400 (seconds), got "86401"'),
      expect.stringContaining('--after-start needs --stopped-when'),
    ]);
    await expect(readFile(model)).rejects.toThrow(/ENOENT/);
  });
});
