/**
 * `train --if-drifted` as the nightly job runs it (`--days 7`), against a real Azurite: a change
 * confined to the most recent part of the range is drift, though the whole range barely moves.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const PER_DAY = 4320;

let az: TestAzurite;
let container: ContainerClient;
/** The nightly run of Jan `day` at 01:00 UTC: --days 7 is the seven days before it. */
const night = (day: number, args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + (day - 1) * DAY + 3_600_000) }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-if-drifted');
  await container.create();
});

afterAll(async () => {
  await az?.dispose();
});

/** Jan 1-7 at flow 30, Jan 8 at flow `last`; the live model is trained on Jan 1-7 (the night of Jan 8). */
async function pump(id: string, last: number): Promise<string> {
  const r = rng(21);
  await seedReadings(container, id, 'gw-1', T0, 7 * PER_DAY, (i) => pumpValues(r, i, 30), { batch: 2000 });
  await seedReadings(container, id, 'gw-1', T0 + 7 * DAY, PER_DAY, (i) => pumpValues(r, i, last), { seq0: 7 * PER_DAY + 1, batch: 2000 });
  const first = await night(8, ['train', '--source', id, '--days', '7']);
  expect(first.code, first.err).toBe(0);
  expect(first.out).toMatch(/^\S+: promoted /);
  return (await readBest(container, id))!.pointer.version;
}

describe('train --if-drifted', () => {
  it('retrains when the most recent part of the range drifted, though the whole range did not', async () => {
    const live = await pump('pump-last-day', 50);
    // Over Jan 2-8 the flow moved for one day in seven: the range as a whole stays under PSI 0.25.
    const whole = await night(9, ['drift', '--source', 'pump-last-day', '--days', '7']);
    expect(whole.code, whole.err).toBe(0);
    expect(whole.out).toMatch(/^ {2}no drift$/m);
    // The last day alone drifted, and the live model flags every reading of it.
    expect((await night(9, ['drift', '--source', 'pump-last-day', '--days', '1'])).code).toBe(3);
    const res = await night(9, ['train', '--source', 'pump-last-day', '--days', '7', '--if-drifted']);
    expect(res.code, res.err).toBe(0);
    // Trained and compared. The new operating point lies in the held-out rows only, so this
    // challenger has not seen it either, and both flag it: the next nights' runs train on it.
    expect(res.out).toMatch(new RegExp(`^pump-last-day: kept live ${live}; challenger \\S+ \\(mset-horizon`));
    expect(res.out).toMatch(new RegExp(`^ {2}compare {2}synthetic-faults: challenger .*; live ${live}: balanced accuracy`, 'm'));
    // And the output says so, with what to do.
    expect(res.out).toMatch(/^ {2}drift {4}retrained: drift in its \d+ held-out rows: Current, Flow, Pressure$/m);
    expect(res.out).toMatch(
      /^ {2}warning {2}the drift \(Current, Flow, Pressure\) is in the held-out rows only \(from 2026-01-07T\d\d:\d\d:\d\d\.\d{3}Z\): the challenger was trained on the \d+ rows before them, which did not drift, so it has not learnt the drifted readings, only been judged on them; to train on them, run again with a later --to \(or on a later night\) once the drifted readings reach back beyond the newest 20 % of the range$/m,
    );
  });

  it('still skips a range that did not drift, and says which parts of it were judged', async () => {
    const live = await pump('pump-steady', 30);
    const res = await night(9, ['train', '--source', 'pump-steady', '--days', '7', '--if-drifted']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toBe(
      `pump-steady: skipped: no drift from the baseline of live model ${live}: not retrained ` +
        "(checked the range's 30240 rows, its 6048 held-out rows and the 4320 rows after the live model's data (2026-01-07T23:59:40.000Z))",
    );
  });
});
