/**
 * A pump stopped for a whole range by its stopped-when rule (a standby or seasonal pump): too few
 * running rows to train, and nothing wrong with its data. train-all skips it, saying why and with
 * the figures (it failed the shard with PW_TRAINER_NO_DATA, exit 4, every night); train fails
 * with the same words, as it fails a range without readings. When the rows are too few even with
 * the stopped ones, PW_TRAINER_NO_DATA counts the stopped rows beside the other rows left out.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../trainer/errors.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { seedPumpWithStops, stoppedValues } from '../support/stops.js';
import { pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
let az: TestAzurite;
let container: ContainerClient;
let live: string;
const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('stopped-skip');
  await container.create();
  // The live model, trained with the rule Current<0.5 on two days of a pump that runs and stops.
  await seedPumpWithStops(container, 'pump-seasonal', T0);
  const first = await cli(['train', '--source', 'pump-seasonal', '--from', '2026-01-01', '--to', '2026-01-03', '--stopped-when', 'Current<0.5']);
  expect(first.code, first.err).toBe(0);
  live = (await readBest(container, 'pump-seasonal'))!.pointer.version;
  // Then three days stopped, one reading every 30 s.
  const r = rng(9);
  await seedReadings(container, 'pump-seasonal', 'gw-1', T0 + 10 * DAY, 8640, () => stoppedValues(r), { seq0: 20_001, step: 30_000 });
}, 120_000);

afterAll(async () => {
  await az?.dispose();
});

const RANGE = ['--from', '2026-01-11', '--to', '2026-01-14'];
const STOPPED = `stopped for 8640 of 8640 readings between 2026-01-11T00:00:00.000Z and 2026-01-14T00:00:00.000Z (stop rule Current<0.5, inherited from live model `;

describe('a pump stopped for the whole range by its live model\'s rule', () => {
  it('is skipped by train-all --if-drifted, with the reason and the figures, and the shard exits 0', async () => {
    const res = await cli(['train-all', ...RANGE, '--if-drifted']);
    expect(res.code, res.err).toBe(EXIT.ok);
    expect(res.out).toContain(`pump-seasonal: skipped: ${STOPPED}${live}): too few running rows to train (0, need 100) and to hold out (0, need 20)`);
    expect(res.err).not.toContain('FAILED');
    expect(res.out.split('\n').at(-1)).toBe('train-all: shard 0/1: 0 promoted, 0 kept, 1 skipped, 0 failed');
    expect((await readBest(container, 'pump-seasonal'))!.pointer.version).toBe(live);
    // the outcome record says why in a word a script can count (train-all --json's skipKinds too)
    const record = JSON.parse((await container.getBlockBlobClient('runs/2026-01-11T00-00-00.000Z_2026-01-14T00-00-00.000Z/pump-seasonal.json').downloadToBuffer()).toString('utf8'));
    expect(record).toMatchObject({ outcome: 'skipped', skipKind: 'stopped' });
  });

  it('fails train with PW_TRAINER_NO_DATA in the same words (exit 1, as for a range without readings)', async () => {
    const res = await cli(['train', '--source', 'pump-seasonal', ...RANGE]);
    expect(res.code).toBe(EXIT.failure);
    expect(res.err.split('\n').at(-1)).toBe(`pumpwatch-trainer train: PW_TRAINER_NO_DATA: "pump-seasonal" was ${STOPPED}${live}): too few running rows to train (0, need 100) and to hold out (0, need 20)`);
  });
});

describe('a pump stopped part of a range too short anyway', () => {
  it('fails with PW_TRAINER_NO_DATA counting the stopped rows beside those dropped for missing values and in maintenance', async () => {
    const r = rng(4);
    // 90 readings, the first 30 stopped: even counted as running, 90 rows are too few.
    await seedReadings(container, 'pump-short', 'gw-1', T0 + 20 * DAY, 90, (i) => (i < 30 ? stoppedValues(r) : pumpValues(r, i, 30)));
    const res = await cli(['train-all', '--from', '2026-01-21', '--to', '2026-01-22', '--stopped-when', 'Current<0.5']);
    expect(res.code, res.err).toBe(EXIT.dataFailed);
    expect(res.err).toMatch(/^pump-short: FAILED PW_TRAINER_NO_DATA: not enough usable rows of "pump-short" between .*: 48 to train \(need 100\) and 12 held out \(need 20\) from 90 readings \(0 dropped for missing values, 0 in maintenance, 30 stopped by the stop rule Current<0\.5\)$/m);
  });
});
