/**
 * `train --margin X`: the score a challenger must gain over the live model. No test ran it (the
 * test-suite audit of 2026-12-07): the default was checked in model.json, never that the option
 * reaches the decision. A live model within the false-alarm ceiling (which would decide alone),
 * a challenger under --margin 1: kept, the decision and model.json saying margin 1.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { runTrainer, seedDays, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
let az: TestAzurite;

beforeAll(async () => {
  az = await startTestAzurite();
});

afterAll(async () => {
  await az?.dispose();
});

/** A container with one pump: a live model trained on its first two days, and two more days of readings a little above (the live model stays within the false-alarm ceiling on them). */
async function withLiveModel(name: string): Promise<{ container: ContainerClient; live: string }> {
  const container = az.container(name);
  await container.create();
  await seedDays(container, 'pump-m', T0, 1, 10);
  await seedDays(container, 'pump-m', T0 + DAY, 8641, 10);
  await seedDays(container, 'pump-m', T0 + 2 * DAY, 17281, 12);
  await seedDays(container, 'pump-m', T0 + 3 * DAY, 25921, 12);
  const first = await runTrainer(['train', '--source', 'pump-m', '--from', '2026-01-01', '--to', '2026-01-03'], trainerContext(container, { now: new Date(T0 + 10 * DAY) }));
  expect(first.code, first.err).toBe(0);
  return { container, live: (await readBest(container, 'pump-m'))!.pointer.version };
}

const challenge = (container: ContainerClient, margin: string) =>
  runTrainer(['train', '--source', 'pump-m', '--from', '2026-01-01', '--to', '2026-01-05', '--margin', margin], trainerContext(container, { now: new Date(T0 + 10 * DAY) }));

describe('train --margin', () => {
  it('is the margin the decision is taken and recorded with', async () => {
    const { container, live } = await withLiveModel('margin-high');
    const kept = await challenge(container, '1');
    expect(kept.code, kept.err).toBe(0);
    expect(kept.out).toMatch(new RegExp(`^pump-m: kept live ${live}; challenger \\S+ \\(.*\\) not promoted \\(not better by the margin\\)$`, 'm'));
    expect(kept.out).toMatch(/^ {2}decision not better by the margin: .*, margin 1, false-alarm ceiling 5 %;/m);
    expect((await readBest(container, 'pump-m'))!.pointer.version).toBe(live);
    const version = /^pump-m: kept live \S+; challenger (\d{8}-[0-9a-f]{12})/m.exec(kept.out)?.[1];
    expect((await readModelRecord(container, 'pump-m', version ?? '')).decision).toMatchObject({ promoted: false, margin: 1 });
  });

  it('refuses a margin outside 0..1 before reading any data', async () => {
    const res = await runTrainer(['train', '--source', 'pump-m', '--from', '2026-01-01', '--to', '2026-01-05', '--margin', '1.5'], trainerContext(az.container('margin-none'), { now: new Date(T0 + 10 * DAY) }));
    expect(res.code).toBe(2);
    expect(res.err).toMatch(/--margin/);
    expect(res.err).not.toMatch(/reading blobs/);
  });
});
