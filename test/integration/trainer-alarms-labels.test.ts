/**
 * train's alarm ceiling under the `labels` criterion, on Azurite through the trainer's CLI: a model
 * that catches the technicians' confirmed faults flags a few readings past each fault's label (its
 * window still holds fault readings; a label's times rarely match the fault's to the reading).
 * Those runs are the confirmed alerts, not false alarms: the challenger that finds every fault must
 * not be refused as "raising" one false alarm per confirmed fault.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { challengerVersion, pumpValues, runTrainer, seedReadings, trainerContext, uploadConfirmedFault } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;
/** Three days at one reading every 20 s. */
const ROWS = 3 * 4320;
/** Seven pressure faults of 30 readings in the held-out part (the newest 20 %), each confirmed by a label. */
const FAULTS = [10500, 10800, 11100, 11400, 11700, 12000, 12300];
const LEN = 30;
const inFault = (i: number) => FAULTS.some((s) => i >= s && i < s + LEN);

let az: TestAzurite;
let container: ContainerClient;
const cli = (args: string[], now = new Date(T0 + 4 * DAY)) => runTrainer(args, trainerContext(container, { now }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('alarms-labels');
  await container.create();
});
afterAll(async () => {
  await az?.dispose();
});

describe('the alarm ceiling with confirmed faults', () => {
  it('counts a run of flags that reaches into a confirmed fault as its alert, not a false alarm: the challenger that finds the faults replaces a live model blind to them', async () => {
    const id = 'pump-labelled';
    const r = rng(7);
    // The live model: a day at flow 30, without the pressure (it cannot see a pressure fault).
    await seedReadings(container, id, 'gw-1', T0 - DAY, 4320, (i) => pumpValues(r, i, 30), { seq0: 1 });
    const first = await cli(['train', '--source', id, '--from', '2025-12-31', '--to', '2026-01-01', '--exclude', 'Pressure'], new Date(T0));
    expect(first.code, first.err).toBe(0);
    const live = (await readBest(container, id))!.pointer.version;
    // Three days, the pressure 1 higher during each fault; each label 3 readings narrower on each side than its fault (a technician's times).
    await seedReadings(container, id, 'gw-1', T0, ROWS, (i) => pumpValues(r, i, 30, { shift: inFault(i) ? 1 : 0 }), { seq0: 5000 });
    for (const [k, s] of FAULTS.entries()) await uploadConfirmedFault(container, 'gw-1', { id: `f${k}`, pumpId: id, fromTs: T0 + (s + 3) * STEP, toTs: T0 + (s + LEN - 4) * STEP, createdAt: T0 + 4 * DAY });

    const res = await cli(['train', '--source', id, '--from', '2026-01-01', '--to', '2026-01-04']);
    expect(res.code, res.err).toBe(0);
    const version = challengerVersion(res.out);
    const record = await readModelRecord(container, id, version);
    const e = record.evaluation;
    expect(e.criterion).toBe('labels');
    // The challenger flags readings just outside the labels (FAR above 0), in runs that hold labelled rows: no false alarm.
    expect(e.challenger.far).toBeGreaterThan(0);
    expect(e.challenger.mar).toBeLessThan(20);
    expect(e.challenger.alarms!.runs).toBeLessThan(3);
    expect(e.challenger.alarms!.hours).toBeGreaterThan(12);
    expect(e.champion!.mar).toBe(100);
    expect(record.decision).toMatchObject({ promoted: true, maxAlarmsPerDay: 1 });
    expect(res.out).toMatch(/^ {2}decision better on the held-out rows: labels: /m);
    // Not over the alarm ceiling (no warning, no such decision); the compare line gives the challenger's count.
    expect(res.out).not.toMatch(/^ {2}(?:warning|decision) .*false alarms? \(runs of flagged readings\)/m);
    expect(res.out).toMatch(new RegExp(`^ {2}compare {2}labels: challenger balanced accuracy [\\d.]+ \\([^)]*\\), ${e.challenger.alarms!.runs} false alarms? \\(runs of flagged readings\\) in [\\d.]+ h of running, [\\d.]+ a day; live `, 'm'));
    expect((await readBest(container, id))!.pointer.version).not.toBe(live);
  }, 120_000);
});
