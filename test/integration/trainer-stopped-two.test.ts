/**
 * The trainer's stopped-when rule of several conditions (`--stopped-when "Current<0.5 & Flow<5"`):
 * `fit` and `train` leave out the rows where every condition holds, write the rule into the model
 * (metadata's `all` form) and model.json, `drift` and `evaluate` apply it, and `train` inherits it.
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { readMetadataProps, readModelMetadata } from '../../inference/contract.js';
import { runCli } from '../../trainer/commands/index.js';
import { readModelBytes } from '../../trainer/registry/model-blob.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { seedPumpWithStops, tableCsv, tableWithStops } from '../support/stops.js';
import { challengerVersion, runTrainer, trainerContext } from '../support/trainer.js';

const TWO = { when: [{ feature: 'Current', below: 0.5 }, { feature: 'Flow', below: 5 }], afterStartSeconds: 600 };

describe('fit --stopped-when "A<x & B<y"', () => {
  let dir: string;
  let out: string[];
  let err: string[];
  const io = { out: (t: string) => out.push(t), err: (t: string) => err.push(t) };
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'pw-trainer-stopped-two-'));
    out = [];
    err = [];
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('leaves out the rows where both hold, and a dead sensor\'s first minute (held as a stop in the making, as the agent holds it), and writes the rule in the "all" form', async () => {
    // 3 000 rows at 1 Hz, stopped 800-999 and 2 000-2 199; the current reads 0 at 1 500-1 599 while the pump runs: held 1 500-1 559, then trained on
    const table = tableWithStops(3000, (i) => (i >= 800 && i < 1000) || (i >= 2000 && i < 2200));
    const current = table.features.indexOf('Current');
    for (let i = 1500; i < 1600; i++) table.rows[i]![current] = 0;
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, tableCsv(table));
    const model = join(dir, 'm.onnx');
    expect(await runCli(['fit', '--csv', csv, '--out', model, '--window', '5', '--stopped-when', ' Current<0.5 & Flow < 5 ', '--after-start', '30'], io)).toBe(0);
    expect(out.join('\n')).toContain('stopped when Current<0.5 & Flow<5, warm-up 30 s: 518 rows left out of training (400 stopped, 58 starting, 60 stopping); the agent stores such readings unscored');
    const bytes = await readFile(model);
    expect(readModelMetadata(bytes).stoppedWhen).toEqual({ ...TWO, afterStartSeconds: 30 });
    expect(JSON.parse(readMetadataProps(bytes)['pumpwatch.stopped_when']!)).toEqual({ all: TWO.when, afterStartSeconds: 30 });
  });

  it.each([
    ['Current<0.5 & Flw<5', '--stopped-when: unknown feature "Flw": the model\'s features are "Pressure", "Flow", "Current"'],
    ['Curent<0.5 & Flw<5', '--stopped-when: unknown features "Curent", "Flw": the model\'s features are "Pressure", "Flow", "Current"'],
    ['Current<0.5 & Current<1', '--stopped-when "Current<0.5 & Current<1": the feature "Current" is named twice'],
    ['Current<0.5 &', '--stopped-when "Current<0.5 &": an empty condition between or beside "&"'],
  ])('refuses --stopped-when %s, naming what is wrong (exit 2, no model written)', async (rule, message) => {
    const csv = join(dir, 'pump.csv');
    await writeFile(csv, tableCsv(tableWithStops(300, () => false)));
    const model = join(dir, 'm.onnx');
    expect(await runCli(['fit', '--csv', csv, '--out', model, '--stopped-when', rule], io)).toBe(2);
    expect(err.join('\n')).toContain(message);
    await expect(readFile(model)).rejects.toThrow(/ENOENT/);
  });
});

describe('train, drift and evaluate with a rule of two conditions (Azurite)', () => {
  const DAY = 86_400_000;
  const T0 = Date.UTC(2026, 0, 1);
  let az: TestAzurite;
  let container: ContainerClient;
  const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));

  beforeAll(async () => {
    az = await startTestAzurite();
    container = az.container('trainer-stopped-two');
    await container.create();
    await seedPumpWithStops(container, 'pump-t', T0);
  });

  afterAll(async () => {
    await az?.dispose();
  });

  it('trains with it (the rule in the model and in model.json), drift and evaluate leave the same stops out, and the next train inherits it', async () => {
    const res = await cli(['train', '--source', 'pump-t', '--from', '2026-01-01', '--to', '2026-01-03', '--stopped-when', 'Current<0.5 & Flow<5', '--after-start', '600']);
    expect(res.code, res.err + res.out).toBe(0);
    expect(res.out).toContain('  stopped  Current<0.5 & Flow<5, warm-up 600 s (given by --stopped-when): 1672 rows left out of training and of the comparison (1440 stopped, 232 starting)');
    const best = await readBest(container, 'pump-t');
    const record = await readModelRecord(container, 'pump-t', best!.pointer.version);
    expect(readModelMetadata(await readModelBytes(container, record)).stoppedWhen).toEqual(TWO);
    expect(record.data.stopped).toEqual({ all: TWO.when, afterStartSeconds: 600, from: '--stopped-when', stoppedRows: 1440, startingRows: 232, stoppingRows: 0 });
    expect(record.evaluation.description).toContain('rows where the pump is stopped or starting by Current<0.5 & Flow<5, warm-up 600 s (--stopped-when\'s rule) are left out for both models');

    const drift = await cli(['drift', '--source', 'pump-t', '--from', '2026-01-03', '--to', '2026-01-04']);
    expect(drift.code, drift.out).toBe(0);
    expect(drift.out).toContain(`  stopped  2508 rows left out by ${record.version}'s stopped-when rule (Current<0.5 & Flow<5, warm-up 600 s): 2160 stopped, 348 starting`);

    const evaluated = await cli(['evaluate', '--source', 'pump-t', '--from', '2026-01-03', '--to', '2026-01-04']);
    expect(evaluated.code, evaluated.err + evaluated.out).toBe(0);
    expect(evaluated.out).toContain('rows where the pump is stopped or starting by its stopped-when rule (Current<0.5 & Flow<5, warm-up 600 s) left out');

    const again = await cli(['train', '--source', 'pump-t', '--from', '2026-01-01', '--to', '2026-01-03', '--window', '5']);
    expect(again.code, again.err + again.out).toBe(0);
    expect(again.out).toContain(`  stopped  Current<0.5 & Flow<5, warm-up 600 s (inherited from live model ${record.version}): 1672 rows left out`);
    const challenger = await readModelRecord(container, 'pump-t', challengerVersion(again.out, 'pump-t'));
    expect(challenger.data.stopped).toMatchObject({ all: TWO.when, from: `live model ${record.version}` });
    expect(readModelMetadata(await readModelBytes(container, challenger)).stoppedWhen).toEqual(TWO);
  });

  it('refuses a rule naming a feature the readings do not have (exit 2)', async () => {
    const res = await cli(['train', '--source', 'pump-t', '--from', '2026-01-01', '--to', '2026-01-03', '--stopped-when', 'Current<0.5 & Volume Flow RateRMS<5', '--version', 'typo-2']);
    expect(res.code).toBe(2);
    expect(res.err).toContain('--stopped-when\'s stopped-when rule (Current<0.5 & Volume Flow RateRMS<5) names "Volume Flow RateRMS", which is not a feature of the readings of the range (Current, Flow, Pressure)');
    await expect(readModelRecord(container, 'pump-t', 'typo-2')).rejects.toThrow();
  });
});
