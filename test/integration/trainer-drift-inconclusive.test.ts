/**
 * `drift` says `inconclusive` (exit 5), never `no drift`, when some features could not be judged
 * on the rows given, against a real Azurite and a model the trainer exported. The pump's flow
 * follows a slow cycle (about 84 min at 20 s), so blocks of 50 of its own training rows stray far
 * from its baseline and KS cannot call drift on a 20-row window, where PSI is not judged either.
 * Such a window, even inside a shifted pressure, used to print `no drift` and exit 0, with advice
 * to retrain on a longer range for a model trained on 2 days.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const STEP = 20_000;
const PER_DAY = DAY / STEP;
const T0 = Date.UTC(2026, 0, 1);
const at = (ms: number) => new Date(T0 + ms).toISOString();

let az: TestAzurite;
let container: ContainerClient;
const run = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 10 * DAY) }));
const drift = (from: number, to: number) => run(['drift', '--source', 'pump-i', '--from', at(from), '--to', at(to)]);

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-drift-inconclusive');
  await container.create();
  const r = rng(5);
  // Days 1-3 unchanged; day 4 with the pressure sensor reading 0.1 high (about 2.5 sd of its day, inside its trained range's margin).
  await seedReadings(container, 'pump-i', 'gw-1', T0, 3 * PER_DAY, (i) => pumpValues(r, i, 30), { batch: 2160 });
  await seedReadings(container, 'pump-i', 'gw-1', T0 + 3 * DAY, PER_DAY, (i) => pumpValues(r, i, 30, { shift: 0.1 }), { seq0: 3 * PER_DAY + 1, batch: 2160 });
  const trained = await run(['train', '--source', 'pump-i', '--from', at(0), '--to', at(2 * DAY)]);
  expect(trained.code, trained.err).toBe(0);
  expect(trained.out).toMatch(/^pump-i: promoted /);
});

afterAll(async () => {
  await az?.dispose();
});

describe('drift on a window too short to judge', () => {
  it('is inconclusive (exit 5) on 20 unchanged rows, names the features not judged and the rows and window length that would judge them', async () => {
    const res = await drift(2 * DAY, 2 * DAY + 20 * STEP);
    expect(res.code, res.out + res.err).toBe(5);
    expect(res.out).toMatch(/^pump-i: 20 recent rows against the baseline of /);
    expect(res.out).not.toMatch(/no drift$/m);
    expect(res.out).toMatch(/^ {2}inconclusive: .*not judged \(.*Pressure.*\): see "not judged" above$/m);
    const line = /^ {2}not judged: ([\w, ]+): the 20 recent rows are too few; PSI or KS can call drift in (?:them|it) from (\d+) rows on.*, about (.+) at the pump's observed 20 s between readings; compare a longer range$/m.exec(res.out);
    expect(line, res.out).not.toBeNull();
    expect(line![1]!.split(', ')).toContain('Pressure');
    expect(Number(line![2])).toBeGreaterThan(20);
    // The model was trained on 2 days: the window, not the training range, is what is short (longer blocks of its training rows strayed less).
    expect(res.out).not.toMatch(/retrain it on a longer range/);
    expect(res.out).toMatch(/^ {2}Pressure: KS cannot call drift: .* because the 20 rows compared are too few \(blocks of 50 of the model's own training rows strayed from its baseline by KS [\d.]+ \(× 1\.5\)\): KS can call drift in it from \d+ rows on; compare a longer range; /m);
    expect(res.out).toMatch(/^ {2}Pressure .* {2}not judged \(PSI not judged: too few rows, 50 needed\) \(KS cannot call drift: threshold at least 1, see the note\)$/m);
  });

  it('is inconclusive, not "no drift", on 20 rows of the shifted pressure', async () => {
    const res = await drift(3 * DAY + 600 * STEP, 3 * DAY + 620 * STEP);
    expect(res.code, res.out + res.err).toBe(5);
    expect(res.out).toMatch(/^ {2}inconclusive: no feature could be judged; 3 not judged \(Current, Flow, Pressure\): see "not judged" above$/m);
  });

  it('judges the rows needed: no drift (exit 0) over the unchanged day, drift (exit 3) over the shifted one', async () => {
    const calm = await drift(2 * DAY, 3 * DAY);
    expect(calm.code, calm.out + calm.err).toBe(0);
    expect(calm.out).toMatch(/\n {2}no drift$/);
    expect(calm.out).not.toMatch(/not judged/);
    const shifted = await drift(3 * DAY, 4 * DAY);
    expect(shifted.code, shifted.out + shifted.err).toBe(3);
    expect(shifted.out).toMatch(/^ {2}drift: .*Pressure/m);
  });
});

describe('train --if-drifted on a part too short to judge', () => {
  it('does not retrain, and says which features were not judged in which part and from how many rows they would be', async () => {
    // Day 2 and the first 20 rows after the live model's data (it was trained up to day 3, 00:00).
    const res = await run(['train', '--source', 'pump-i', '--from', at(DAY), '--to', at(2 * DAY + 20 * STEP), '--if-drifted']);
    expect(res.code, res.out + res.err).toBe(0);
    expect(res.out).toMatch(
      /^pump-i: skipped: inconclusive: no drift from the baseline of live model \S+ in what was judged, but not judged: Current, Flow, Pressure \(from \d+ rows on, 20 given\) in the 20 rows after the live model's data \([^)]+\): not retrained \(checked the range's \d+ rows, its \d+ held-out rows and the 20 rows after the live model's data/m,
    );
  });
});
