/**
 * The trainer's stopped-when rule: `fit --stopped-when` leaves a CSV's stops out of training and
 * writes the rule into the model; `train` inherits the champion's rule.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readModelMetadata } from '../../inference/contract.js';
import { LoadedModel } from '../../inference/model.js';
import { runCli } from '../../trainer/commands/index.js';
import { readModelBytes } from '../../trainer/registry/model-blob.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { normalValues, rng } from '../support/models.js';
import { seedPumpWithStops, stoppedValues, tableCsv, tableWithStops } from '../support/stops.js';
import { challengerVersion, runTrainer, trainerContext } from '../support/trainer.js';

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
    expect(meta.stoppedWhen).toEqual({ when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 30 });
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

describe('train and drift with a stopped-when rule (Azurite)', () => {
  const DAY = 86_400_000;
  const T0 = Date.UTC(2026, 0, 1);
  let az: TestAzurite;
  let container: ContainerClient;
  const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));
  const liveRule = async () => {
    const best = await readBest(container, 'pump-s');
    const record = await readModelRecord(container, 'pump-s', best!.pointer.version);
    return { record, meta: readModelMetadata(await readModelBytes(container, record)) };
  };

  beforeAll(async () => {
    az = await startTestAzurite();
    container = az.container('trainer-stopped');
    await container.create();
    await seedPumpWithStops(container, 'pump-s', T0);
  });

  afterAll(async () => {
    await az?.dispose();
  });

  it('trains with --stopped-when: stops left out of training and of the comparison, the rule in the model; drift does not take more stops for drift', async () => {
    const res = await cli(['train', '--source', 'pump-s', '--from', '2026-01-01', '--to', '2026-01-03', '--stopped-when', 'Current<0.5', '--after-start', '600']);
    expect(res.code, res.err + res.out).toBe(0);
    expect(res.out).toMatch(/^pump-s: promoted /);
    // 8 stops of 180 readings, each followed by 29 readings within 600 s of the last stopped one
    expect(res.out).toContain('  stopped  Current<0.5, warm-up 600 s (given by --stopped-when): 1672 rows left out of training and of the comparison (1440 stopped, 232 starting)');
    const { record, meta } = await liveRule();
    expect(meta.stoppedWhen).toEqual({ when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 600 });
    expect(record.data.stopped).toEqual({ feature: 'Current', below: 0.5, afterStartSeconds: 600, from: '--stopped-when', stoppedRows: 1440, startingRows: 232 });
    expect(record.data.trainRows + record.data.holdoutRows).toBe(8640 - 1672);
    expect(record.evaluation.description).toContain('rows where the pump is stopped or starting by Current<0.5, warm-up 600 s (--stopped-when\'s rule) are left out for both models');
    // The raw held-out readings as the agent scores them: the stops are unscored, not flagged.
    expect(record.evaluation.asAgent!.challenger.flaggedNormal).toBeLessThan(record.evaluation.asAgent!.challenger.normal * 0.05);

    // A day stopped half the time, against the baseline of running rows: the stops are left out by the live model's rule.
    const drift = await cli(['drift', '--source', 'pump-s', '--from', '2026-01-03', '--to', '2026-01-04']);
    expect(drift.code, drift.out).toBe(0);
    expect(drift.out).toMatch(/^pump-s: 1812 recent rows against the baseline of /);
    // 12 stops of 180 readings, each followed by 29 starting ones
    expect(drift.out).toContain(`  stopped  2508 rows left out by ${record.version}'s stopped-when rule (Current<0.5, warm-up 600 s): 2160 stopped, 348 starting`);

    // evaluate judges the live model on the rows where the pump runs by its rule, as train compared it
    const evaluated = await cli(['evaluate', '--source', 'pump-s', '--from', '2026-01-03', '--to', '2026-01-04']);
    expect(evaluated.code, evaluated.err + evaluated.out).toBe(0);
    expect(evaluated.out).toContain(' on 1812 rows');
    expect(evaluated.out).toContain('rows where the pump is stopped or starting by its stopped-when rule (Current<0.5, warm-up 600 s) left out');

  });

  it('refuses a --stopped-when whose feature the readings do not have, naming it (exit 2, nothing registered)', async () => {
    const before = (await readBest(container, 'pump-s'))!.pointer.version;
    const res = await cli(['train', '--source', 'pump-s', '--from', '2026-01-01', '--to', '2026-01-03', '--stopped-when', 'Curent<0.5', '--version', 'typo-1']);
    expect(res.code).toBe(2);
    expect(res.err).toContain('--stopped-when\'s stopped-when rule (Curent<0.5) names "Curent", which is not a feature of the readings of the range (Current, Flow, Pressure): give --stopped-when with one of them, or --stopped-when none');
    expect((await readBest(container, 'pump-s'))!.pointer.version).toBe(before);
    await expect(readModelRecord(container, 'pump-s', 'typo-1')).rejects.toThrow();
  });

  it('inherits the live model\'s rule without the options, and says so; --stopped-when none drops it', async () => {
    const { record: live } = await liveRule();
    const res = await cli(['train', '--source', 'pump-s', '--from', '2026-01-01', '--to', '2026-01-03', '--window', '5']);
    expect(res.code, res.err + res.out).toBe(0);
    expect(res.out).toContain(`  stopped  Current<0.5, warm-up 600 s (inherited from live model ${live.version}): 1672 rows left out of training and of the comparison (1440 stopped, 232 starting); the rule is written into `);
    const version = challengerVersion(res.out, 'pump-s');
    const challenger = await readModelRecord(container, 'pump-s', version);
    expect(challenger.data.stopped).toMatchObject({ from: `live model ${live.version}`, stoppedRows: 1440 });
    expect(readModelMetadata(await readModelBytes(container, challenger)).stoppedWhen).toEqual({ when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 600 });

    const none = await cli(['train', '--source', 'pump-s', '--from', '2026-01-01', '--to', '2026-01-03', '--window', '3', '--stopped-when', 'none']);
    expect(none.code, none.err + none.out).toBe(0);
    expect(none.out).not.toContain('  stopped  ');
    const plain = await readModelRecord(container, 'pump-s', challengerVersion(none.out, 'pump-s'));
    expect(plain.data.stopped).toBeUndefined();
    expect(readModelMetadata(await readModelBytes(container, plain)).stoppedWhen).toBeUndefined();
  });
});
