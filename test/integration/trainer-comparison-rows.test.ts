/**
 * Which rows and features a comparison scores, against a real Azurite through the CLI: a sensor
 * only the live model uses takes no row from the challenger's training, and `evaluate` puts
 * synthetic faults only in the features the model watches, reading the range as `train` does.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { challengerVersion, pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const T0 = Date.UTC(2026, 0, 1);
const ROWS = 3 * 4320;

let az: TestAzurite;
let first: ContainerClient;
let fresh: ContainerClient;
const cli = (container: ContainerClient, args: string[]) => runTrainer(args, trainerContext(container, { now: new Date('2026-02-01T00:00:00Z') }));

/** Three days of a pump with a vibration sensor that drops out for 100 readings in every 1000, and a running-hours counter. */
async function seed(container: ContainerClient): Promise<void> {
  const r = rng(5);
  await seedReadings(
    container,
    'pump-flaky',
    'gw-1',
    T0,
    ROWS,
    (i) => {
      const v: Record<string, number | null> = { ...pumpValues(r, i, 30, { vibration: true }), RunningHours: Math.round(i / 18) / 10 };
      if (i % 1000 >= 900) v.Vibration = null;
      return v;
    },
    { batch: 2000 },
  );
}

beforeAll(async () => {
  az = await startTestAzurite();
  first = az.container('comparison-rows');
  fresh = az.container('comparison-rows-fresh');
  await first.create();
  await fresh.create();
  await seed(first);
  await seed(fresh);
});

afterAll(async () => {
  await az?.dispose();
});

const version = (out: string) => challengerVersion(out);
/** The model trained with Vibration, live in `first`. */
let withVibration = '';

describe('the rows a comparison scores', () => {
  it('trains the same model on the same data and options whatever model is live; rows the live model cannot score leave the comparison only', async () => {
    // The live model uses Vibration; rows still missing it after 60 carried readings are dropped from its own training.
    const live = await cli(first, ['train', '--source', 'pump-flaky', '--from', '2026-01-01', '--to', '2026-01-04']);
    expect(live.code, live.err).toBe(0);
    const liveRecord = await readModelRecord(first, 'pump-flaky', version(live.out));
    expect(liveRecord.features).toContain('Vibration');
    // 40 readings in every 1000 stay missing after 60 carried: 480 in the range, 80 of them held out (rows 10960-10999 and 11960-11999).
    expect(liveRecord.data.cleaning.droppedMissing).toBe(480);
    withVibration = liveRecord.version;

    const options = ['train', '--source', 'pump-flaky', '--from', '2026-01-01', '--to', '2026-01-04', '--exclude', 'Vibration'];
    const against = await cli(first, options);
    expect(against.code, against.err).toBe(0);
    const alone = await cli(fresh, options);
    expect(alone.code, alone.err).toBe(0);
    const a = await readModelRecord(first, 'pump-flaky', version(against.out));
    const b = await readModelRecord(fresh, 'pump-flaky', version(alone.out));
    // The same version and bytes, trained on every row: Vibration gaps take no row from a model without it.
    expect(a.version).toBe(b.version);
    expect(a.model.sha256).toBe(b.model.sha256);
    expect(a.data.trainRows).toBe(ROWS * 0.8);
    expect(b.data.trainRows).toBe(ROWS * 0.8);
    expect(a.data.cleaning).toEqual(b.data.cleaning);
    // Both models were scored, on the same rows: the held-out rows the live model can score.
    const e = a.evaluation;
    expect(e.championVersion).toBe(liveRecord.version);
    expect(e.champion).not.toBeNull();
    expect(e.description).toMatch(/; 80 held-out rows without Vibration \(which only the live model uses\) are scored by neither model$/);
    const negatives = (c: { fp: number; tn: number }) => c.fp + c.tn;
    expect(negatives(e.challenger.counts)).toBe(ROWS * 0.2 - 80);
    expect(negatives(e.champion!.counts)).toBe(negatives(e.challenger.counts));
    expect(e.champion!.counts.tp + e.champion!.counts.fn).toBe(e.challenger.counts.tp + e.challenger.counts.fn);
    expect((await readBest(fresh, 'pump-flaky'))!.pointer.version).toBe(b.version);
  });

  it('evaluate puts synthetic faults only in the features the model watches, and reads the range as train does', async () => {
    const trained = await cli(fresh, ['train', '--source', 'pump-flaky', '--from', '2026-01-01', '--to', '2026-01-04', '--exclude', 'Vibration']);
    const v = version(trained.out);
    // The model watches Current, Flow and Pressure: 9 faults (3 sizes each), none in the counter or the excluded Vibration.
    expect((await readModelRecord(fresh, 'pump-flaky', v)).features).toEqual(['Current', 'Flow', 'Pressure']);
    const ev = await cli(fresh, ['evaluate', '--source', 'pump-flaky', '--from', '2026-01-03', '--to', '2026-01-04', '--version', v]);
    expect(ev.code, ev.err).toBe(0);
    // Every reading of the day is scored: Vibration's gaps cost a model without it no row.
    expect(ev.out).toMatch(new RegExp(`^pump-flaky: model ${v} \\(mset-horizon, window 10, threshold [\\d.]+\\) on 4320 rows$`, 'm'));
    expect(ev.out).toMatch(/^ {2}no fault labels in the rows of the range: the 4320 rows of the range are negatives; positives are 9 copies of blocks of 300 rows of the range/m);
    // A model that watches Vibration gets faults in it too (12), and its rows are those with Vibration.
    const all = await cli(first, ['evaluate', '--source', 'pump-flaky', '--from', '2026-01-03', '--to', '2026-01-04', '--version', withVibration]);
    expect(all.code, all.err).toBe(0);
    expect(all.out).toMatch(new RegExp(`^pump-flaky: model ${withVibration} .* on 4160 rows$`, 'm'));
    expect(all.out).toMatch(/^ {2}no fault labels in the rows of the range: the 4160 rows of the range are negatives; positives are 12 copies /m);
  });
});
