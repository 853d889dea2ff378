/**
 * One pump id on two gateways (given twice at commissioning, or a gateway writing another's data):
 * both upload readings of "the same" pump over the same hours, the reader keeps both (they are
 * other readings, not repeats), and a model was fitted on two pumps interleaved. `train` now
 * refuses the range with PW_TRAINER_DATA_CONFLICT naming the gateways, `train-all` fails that
 * source alone (exit 4: a retry fails the same way, a person must look), `drift` refuses it too;
 * a gateway replaced by another (a handover of minutes) trains as before.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EXIT } from '../../trainer/errors.js';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
let az: TestAzurite;
let container: ContainerClient;
const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-03'];

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('device-conflict');
  await container.create();
  const a = rng(1);
  const b = rng(2);
  // pump-twice: gw-north and gw-south both post it for two days, every 30 s, a different pump each (levels 20 and 35).
  await seedReadings(container, 'pump-twice', 'gw-north', T0, 5760, (i) => pumpValues(a, i, 20), { step: 30_000 });
  await seedReadings(container, 'pump-twice', 'gw-south', T0 + 15_000, 5760, (i) => pumpValues(b, i, 35), { step: 30_000 });
  // pump-moved: gw-old for the first day, gw-new from 20 min before its end (a replaced gateway).
  const c = rng(3);
  await seedReadings(container, 'pump-moved', 'gw-old', T0, 2880, (i) => pumpValues(c, i, 25), { step: 30_000 });
  await seedReadings(container, 'pump-moved', 'gw-new', T0 + DAY - 20 * 60_000, 2920, (i) => pumpValues(c, 2880 + i, 25), { step: 30_000 });
}, 120_000);

afterAll(async () => {
  await az?.dispose();
});

const CONFLICT =
  '"pump-twice": two devices sent readings of this pump over the same time: gw-north (5759 readings) and gw-south (5759) between 2026-01-01T00:00:15.000Z and 2026-01-02T23:59:30.000Z';

describe('one pump id on two gateways', () => {
  it('fails train with PW_TRAINER_DATA_CONFLICT naming both gateways and the way out, and promotes nothing', async () => {
    const res = await cli(['train', '--source', 'pump-twice', ...RANGE]);
    expect(res.code).toBe(EXIT.failure);
    expect(res.err).toContain(`PW_TRAINER_DATA_CONFLICT: ${CONFLICT}`);
    expect(res.err).toContain('Give the pump on the wrong gateway its own id, then use a range that starts after the fix (--from)');
    expect(await readBest(container, 'pump-twice')).toBeNull();
  });

  it('fails that source alone in train-all, exit 4, while a pump whose gateway was replaced trains', async () => {
    const res = await cli(['train-all', ...RANGE]);
    expect(res.code, res.out + res.err).toBe(EXIT.dataFailed);
    expect(res.err).toContain(`pump-twice: FAILED PW_TRAINER_DATA_CONFLICT: ${CONFLICT}`);
    expect(res.out).toMatch(/pump-moved: promoted /);
    expect(await readBest(container, 'pump-moved')).not.toBeNull();
  });

  it('refuses drift on such a range with the same words, where the live model was trained on one gateway\'s readings', async () => {
    // Before the second gateway came: gw-north alone, two days.
    const a = rng(4);
    await seedReadings(container, 'pump-twice', 'gw-north', T0 - 3 * DAY, 5760, (i) => pumpValues(a, i, 20), { step: 30_000, seq0: 100_000 });
    const first = await cli(['train', '--source', 'pump-twice', '--from', '2025-12-29', '--to', '2025-12-31']);
    expect(first.code, first.err).toBe(EXIT.ok);
    const res = await cli(['drift', '--source', 'pump-twice', ...RANGE]);
    expect(res.code).toBe(EXIT.failure);
    expect(res.err).toContain(`PW_TRAINER_DATA_CONFLICT: ${CONFLICT}`);
  });
});
