/**
 * The promotion criterion against a real Azurite, through the CLI: how technicians' labels and
 * false alarms weigh in the champion/challenger decision (trainer/README.md, "Compare" and
 * "Decide"). Each pump has a live model trained on Dec 31 at one operating point (flow LIVE) and
 * then three days at flow 30; train compares a challenger of those three days with it.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LabelBodySchema, toNewLabel } from '../../agent/http/labels-routes.js';
import { LabelStore } from '../../buffer/labels.js';
import { BufferStore } from '../../buffer/store.js';
import { uploadPendingLabels } from '../../sync/labels-upload.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import type { ModelRecord } from '../../trainer/registry/records.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { challengerVersion, pumpValues, runTrainer, seedReadings, trainerContext, uploadConfirmedFault } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;
/** Readings of the three days at flow 30; the last 20 % (2592) are held out, from row 10368. */
const ROWS = 3 * 4320;

let az: TestAzurite;
let container: ContainerClient;
let dir: string;
const cli = (args: string[], now = new Date(T0 + 4 * DAY)) => runTrainer(args, trainerContext(container, { now }));

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-criterion');
  await container.create();
  dir = mkdtempSync(join(tmpdir(), 'pw-criterion-'));
});

afterAll(async () => {
  await az?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

/** A live model trained on Dec 31 at flow `live`, then three days at flow 30 (`shift(i)` moves Pressure of reading i). */
async function pumpWithLive(id: string, live: number, shift: (i: number) => number = () => 0): Promise<string> {
  const r = rng(7);
  await seedReadings(container, id, 'gw-1', T0 - DAY, 4320, (i) => pumpValues(r, i, live), { seq0: 1 });
  const first = await cli(['train', '--source', id, '--from', '2025-12-31', '--to', '2026-01-01'], new Date(T0));
  expect(first.code, first.err).toBe(0);
  await seedReadings(container, id, 'gw-1', T0, ROWS, (i) => pumpValues(r, i, 30, { shift: shift(i) }), { seq0: 5000 });
  return (await readBest(container, id))!.pointer.version;
}

async function trainThreeDays(id: string, ...more: string[]) {
  const res = await cli(['train', '--source', id, '--from', '2026-01-01', '--to', '2026-01-04', ...more]);
  expect(res.code, res.err).toBe(0);
  const version = challengerVersion(res.out);
  return { res, record: await readModelRecord(container, id, version) };
}

const confirmedFault = (pumpId: string, id: string, fromTs: number, toTs: number): Promise<void> => uploadConfirmedFault(container, 'gw-1', { id, pumpId, fromTs, toTs, createdAt: T0 + 4 * DAY });

const normalRows = (r: ModelRecord) => r.evaluation.challenger.counts.fp + r.evaluation.challenger.counts.tn;

describe('labels in the comparison', () => {
  it('does not decide on one alert a technician confirmed: the synthetic faults stay, the alert is one more positive', async () => {
    const liveA = await pumpWithLive('pump-one-a', 15);
    const liveB = await pumpWithLive('pump-one-b', 15);
    // On pump-one-b's gateway the live model flagged the reading at row 12460 (held out); a technician confirms that alert on the page.
    const buffer = new BufferStore({ path: join(dir, 'buffer.sqlite'), maxBytes: 1 << 30 });
    buffer.open();
    try {
      const labels = new LabelStore(buffer);
      const ts = T0 + 12_460 * STEP;
      const [seq] = buffer.appendBatch([{ pumpId: 'pump-one-b', ts, receivedAt: ts, values: { Flow: 30 }, score: 9, anomaly: true, modelVersion: liveB, imputed: false, unscoredReason: null }]);
      const body = LabelBodySchema.parse({ pumpId: 'pump-one-b', kind: 'confirmed-fault', faultType: 'bearing', alertSeq: seq, author: 'Ana' });
      labels.add(toNewLabel(body, labels, ts + 60_000), ts + 60_000);
      expect(await uploadPendingLabels(container, labels, 'gw-1')).toMatchObject({ uploaded: 1 });
    } finally {
      buffer.close();
    }
    const a = await trainThreeDays('pump-one-a');
    const b = await trainThreeDays('pump-one-b');
    // The live model flags 92 % of the normal held-out rows; the challenger none. The label does not change that.
    for (const [{ res, record }, live] of [
      [a, liveA],
      [b, liveB],
    ] as const) {
      expect(record.evaluation.championVersion).toBe(live);
      expect(record.evaluation.criterion).toBe('synthetic-faults');
      expect(record.evaluation.champion!.far).toBeGreaterThan(90);
      expect(record.evaluation.challenger.far).toBe(0);
      expect(res.out).toMatch(/^\S+: promoted /);
      expect(record.decision).toMatchObject({ promoted: true, maxFar: 5 });
    }
    expect(b.record.evaluation.description).toMatch(
      /^too few fault labels in the held-out rows to compare on them alone \(1 held-out rows inside confirmed-fault labels \(1 episode\); that needs 50 rows in 5 episodes\): the other 2591 held-out rows are negatives; positives are 9 copies .*; the 1 labelled rows are positives too, in every placement$/,
    );
    expect(b.record.evaluation.champion!.labelled).toEqual({ rows: 1, missed: 0 });
    expect(normalRows(b.record)).toBe(normalRows(a.record) - 1);
  });

  it('does not let one long fault label over most of the held-out rows hide the live model’s false alarms', async () => {
    // A pressure offset too small for either model over the last 2400 readings, labelled as one confirmed fault.
    const from = ROWS - 2400;
    await pumpWithLive('pump-long', 20, (i) => (i >= from ? 0.1 : 0));
    await confirmedFault('pump-long', 'long', T0 + from * STEP, T0 + (ROWS - 1) * STEP);
    const { res, record } = await trainThreeDays('pump-long');
    const e = record.evaluation;
    expect(e.criterion).toBe('synthetic-faults');
    expect(e.description).toMatch(/\(2400 held-out rows inside confirmed-fault labels \(1 episode\); .*: the other 192 held-out rows are negatives; .*; the 2400 labelled rows are positives too, in every placement$/);
    expect(normalRows(record)).toBe(192);
    expect(e.challenger.labelled?.rows).toBe(2400);
    // On the 192 normal rows the live model raises false alarms that a comparison on the label alone did not count.
    expect(e.champion!.far).toBeGreaterThan(5);
    expect(e.challenger.far).toBeLessThanOrEqual(5);
    expect(res.out).toMatch(/^ {2}decision the live model flags [\d.]+ % of the normal held-out rows, above the false-alarm ceiling of 5 % \(--max-far\), and the challenger [\d.]+ % \(\d+ false alarms? in [\d.]+ h\), within it: /m);
    expect(record.decision.promoted).toBe(true);
  });
});

describe('the false-alarm ceiling', () => {
  it('replaces a live model that flags half of the normal held-out rows by a challenger within the ceiling, and records the ceiling', async () => {
    // Trained at flow 18, the live model flags half of the readings at flow 30; it still catches the synthetic faults (they are far from its range too).
    const live = await pumpWithLive('pump-far', 18);
    const { res, record } = await trainThreeDays('pump-far');
    const e = record.evaluation;
    expect(e.criterion).toBe('synthetic-faults');
    expect(e.champion!.far).toBeGreaterThan(40);
    expect(e.champion!.score).toBeGreaterThan(e.challenger.score);
    expect(e.challenger.far).toBe(0);
    expect(record.decision).toMatchObject({ promoted: true, maxFar: 5 });
    expect(res.out).toMatch(/^ {2}decision the live model flags 4\d\.\d\d % of the normal held-out rows, above the false-alarm ceiling of 5 % \(--max-far\), and the challenger 0\.00 % \(0 false alarms in [\d.]+ h\), within it: /m);
    expect((await readBest(container, 'pump-far'))!.pointer.version).not.toBe(live);
  });

  it('takes the ceilings from --max-far and --max-alarms-per-day: above the live model’s false alarms, the balanced accuracy keeps it', async () => {
    const live = await pumpWithLive('pump-far-60', 18);
    const { res, record } = await trainThreeDays('pump-far-60', '--max-far', '60', '--max-alarms-per-day', '0');
    expect(record.decision).toMatchObject({ promoted: false, maxFar: 60, maxAlarmsPerDay: 0 });
    expect(res.out).toMatch(/^ {2}decision not better by the margin: .*, false-alarm ceiling 60 %; paired over 16 placements of the synthetic faults: .*\)$/m);
    expect((await readBest(container, 'pump-far-60'))!.pointer.version).toBe(live);
    const bad = await cli(['train', '--source', 'pump-far-60', '--days', '3', '--max-far', '101']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/--max-far/);
    const badAlarms = await cli(['train', '--source', 'pump-far-60', '--days', '3', '--max-alarms-per-day', '-1']);
    expect(badAlarms.code).toBe(2);
    expect(badAlarms.err).toMatch(/--max-alarms-per-day/);
  });

  it('replaces a live model within --max-far whose flags come in more runs than the alarm ceiling allows (each run an alert)', async () => {
    const live = await pumpWithLive('pump-far-runs', 18);
    const { res, record } = await trainThreeDays('pump-far-runs', '--max-far', '60');
    const e = record.evaluation;
    expect(e.champion!.far).toBeLessThan(60);
    expect(e.champion!.alarms!.runs).toBeGreaterThanOrEqual(5);
    expect(e.challenger.alarms).toMatchObject({ runs: 0 });
    expect(e.challenger.alarms!.hours).toBeGreaterThan(1);
    expect(record.decision).toMatchObject({ promoted: true, maxFar: 60, maxAlarmsPerDay: 1 });
    expect(res.out).toMatch(
      /^ {2}decision the live model would raise \d+ false alarms \(runs of flagged readings\) in [\d.]+ h of running, [\d.]+ a day on the normal held-out rows \(4\d\.\d\d % of them flagged\): more than a model raising 1 a day would \(p < 0\.01\) \(--max-alarms-per-day\), and the challenger 0\.00 % \(0 false alarms in [\d.]+ h\), within it: /m,
    );
    // The compare line gives both counts.
    expect(res.out).toMatch(new RegExp(`^ {2}compare {2}synthetic-faults: challenger .*\\), 0 false alarms \\(runs of flagged readings\\) in [\\d.]+ h of running, 0\\.0 a day; live ${live}: .*\\), ${e.champion!.alarms!.runs} false alarms \\(runs`, 'm'));
    expect((await readBest(container, 'pump-far-runs'))!.pointer.version).not.toBe(live);
  });
});
