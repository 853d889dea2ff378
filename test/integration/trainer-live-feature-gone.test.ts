/**
 * The live model uses a feature the challenger leaves out (--exclude), and the pump has nearly
 * stopped sending it. Both models were compared on the few held-out rows that still had it (one
 * of 1 728 here), and the live model was kept "not better by the margin", though it cannot score
 * such a pump on the gateway either. Now, under MIN_HOLDOUT_ROWS such rows, the live model is
 * not scored and the challenger is judged on every held-out row, as for a live model that needs a
 * feature absent from the data.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../trainer/errors.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { challengerVersion, pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const N = 8640; // two days at 20 s
let az: TestAzurite;
let container: ContainerClient;
const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 10 * DAY) }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('live-feature-gone');
  await container.create();
  const r = rng(3);
  await seedReadings(container, 'pump-v', 'gw-1', T0, N, (i) => pumpValues(r, i, 30, { vibration: true }), { batch: 3000 });
  const first = await cli(['train', '--source', 'pump-v', '--from', '2026-01-01', '--to', '2026-01-03']);
  expect(first.code, first.err).toBe(EXIT.ok);
  // Then the vibration sensor goes: sent in the first 70 % of the next two days, and once at their end.
  await seedReadings(
    container,
    'pump-v',
    'gw-1',
    T0 + 2 * DAY,
    N,
    (i) => {
      const v = pumpValues(r, i, 30, { vibration: true });
      if (i >= 0.7 * N && i < N - 1) delete v.Vibration;
      return v;
    },
    { batch: 3000, seq0: N + 1 },
  );
}, 180_000);

afterAll(async () => {
  await az?.dispose();
});

describe('a live model whose feature the pump has nearly stopped sending', () => {
  it('is not scored on the one held-out row that still has it: the challenger is judged on every held-out row and promoted', async () => {
    const live = (await readBest(container, 'pump-v'))!.pointer.version;
    const res = await cli(['train', '--source', 'pump-v', '--from', '2026-01-03', '--to', '2026-01-05', '--exclude', 'Vibration']);
    expect(res.code, res.err).toBe(EXIT.ok);
    const version = challengerVersion(res.out);
    const record = JSON.parse((await container.getBlockBlobClient(`models/pump-v/${version}/model.json`).downloadToBuffer()).toString('utf8'));
    expect(record.decision.promoted).toBe(true);
    expect(record.decision.reason).toBe('the live model cannot be scored on the held-out rows (it needs Vibration, which only 1 of the 1728 held-out rows have (at least 20 are needed to judge it))');
    // the challenger judged on all 1 728 held-out rows, not on one
    const c = record.evaluation.challenger.counts;
    expect(c.tn + c.fp).toBeGreaterThan(1000);
    expect((await readBest(container, 'pump-v'))!.pointer.version).toBe(version);
    expect(version).not.toBe(live);
  });
});
