/**
 * `train` on field data as it really comes: a pump stopped for most of the range, a set point
 * that changed once, a sensor taken out mid-range, confirmed faults covering what is trained on.
 * Readings are uploaded to a real Azurite as the agent's sync writes them, `train` runs through
 * the CLI entry point, and the registered model is scored in onnxruntime-node as the agent
 * scores it (FeatureWindow: features by name, full windows only).
 */
import { ContainerClient } from '@azure/storage-blob';
import ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { StoredRow } from '../../buffer/types.js';
import { INPUT_NAME, OUTPUT_NAME, readModelMetadata } from '../../inference/contract.js';
import { FeatureWindow } from '../../inference/window.js';
import { labelBlobName, toLabelRecord } from '../../sync/labels-upload.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { lastLine, runTrainer, trainerContext, unscoredRow, uploadBatch } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 2, 1);
const STEP = 20_000;
const PER_DAY = DAY / STEP;

let az: TestAzurite;
let container: ContainerClient;

type Values = Record<string, number | null>;

function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** A pump with a daily demand cycle; near zero (with transmitter noise) while stopped. */
function pumpValues(r: () => number, ts: number, running: boolean): Values {
  const h = ((ts % DAY) / DAY) * 2 * Math.PI;
  const flow = running ? 30 + 6 * Math.sin(h) + 0.3 * gaussian(r) : 0.02 * Math.abs(gaussian(r));
  return {
    Flow: flow,
    Pressure: running ? 4.2 - 0.03 * flow + 0.02 * gaussian(r) : 0.05 + 0.01 * gaussian(r),
    Current: running ? 8 + 0.25 * flow + 0.1 * gaussian(r) : 0.05 * Math.abs(gaussian(r)),
    Vibration: running ? 1.2 + 0.15 * Math.abs(gaussian(r)) : 0.02 * Math.abs(gaussian(r)),
  };
}

/** Uploads readings every STEP from `from` as the agent's sync does: batches cut at midnight UTC. */
async function seed(pumpId: string, from: number, count: number, fn: (ts: number, i: number) => Values, seq0 = 1): Promise<void> {
  let batch: StoredRow[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await uploadBatch(container, 'gw-1', batch);
    batch = [];
  };
  for (let k = 0; k < count; k++) {
    const ts = from + k * STEP;
    if (batch.length > 0 && Math.floor(ts / DAY) !== Math.floor(batch[0]!.ts / DAY)) await flush();
    batch.push(unscoredRow(pumpId, seq0 + k, ts, fn(ts, k)));
  }
  await flush();
}

const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));

async function bestModel(source: string) {
  const record = await readModelRecord(container, source, (await readBest(container, source))!.pointer.version);
  return { record, bytes: await container.getBlockBlobClient(record.model.blob).downloadToBuffer() };
}

/**
 * Share of readings the model flags, scored one window at a time as the agent scores them; the
 * first `warmUp` readings only fill the window.
 */
async function flaggedShare(bytes: Uint8Array, readings: readonly Values[], warmUp = 0): Promise<number> {
  const meta = readModelMetadata(bytes);
  const session = await ort.InferenceSession.create(bytes);
  try {
    const win = new FeatureWindow(meta.features, meta.window);
    let scored = 0;
    let flagged = 0;
    for (const [i, values] of readings.entries()) {
      if (!win.push(values).ready || i < warmUp) continue;
      const input = new Float32Array(meta.window * meta.features.length);
      win.writeTo(input, 0);
      const result = await session.run({ [INPUT_NAME]: new ort.Tensor('float32', input, [1, meta.window, meta.features.length]) });
      scored++;
      if ((result[OUTPUT_NAME]!.data as Float32Array)[0]! > meta.threshold) flagged++;
    }
    expect(scored).toBeGreaterThan(0);
    return flagged / scored;
  } finally {
    await session.release();
  }
}

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-messy');
  await container.create();
});

afterAll(async () => {
  await az?.dispose();
});

describe('pumpwatch-trainer train on messy field data', () => {
  it('learns a pump that stood still for most of the range and then ran: its running readings are not outliers', async () => {
    const r = rng(1);
    const count = 3 * PER_DAY;
    await seed('pump-idle', T0, count, (ts, i) => pumpValues(r, ts, i >= 0.7 * count));
    const res = await cli(['train', '--source', 'pump-idle', '--from', '2026-03-01', '--to', '2026-03-04']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^ {2}cleaning 0 outliers, /m);
    const { record, bytes } = await bestModel('pump-idle');
    expect(record.data.trainRows + record.data.holdoutRows).toBe(count);
    // The next day, running normally: before, every running reading had been cleaned away as an
    // outlier and the model flagged all of them.
    const next = rng(2);
    const day = Array.from({ length: PER_DAY }, (_, i) => pumpValues(next, T0 + 3 * DAY + i * STEP, true));
    expect(await flaggedShare(bytes, day)).toBeLessThan(0.01);
  });

  it('says how often the agent would flag the raw held-out readings of a pump that stops every night, which cleaning removed as stuck', async () => {
    const r = rng(8);
    // 22:00-04:00 UTC stopped, flow and current at exactly 0 (a run of 1 080 readings: "stuck").
    const stopped = (ts: number) => {
      const hour = (ts % DAY) / 3_600_000;
      return hour >= 22 || hour < 4;
    };
    const values = (ts: number): Values => (stopped(ts) ? { ...pumpValues(r, ts, false), Flow: 0, Current: 0 } : pumpValues(r, ts, true));
    const count = 3 * PER_DAY + PER_DAY / 4; // to 06:00 of the fourth day: the last night is held out whole
    const readings = Array.from({ length: count }, (_, i) => values(T0 + i * STEP));
    await seed('pump-nightly', T0, count, (_ts, i) => readings[i]!);
    const res = await cli(['train', '--source', 'pump-nightly', '--from', '2026-03-01', '--to', '2026-03-04T06:00:00Z']);
    expect(res.code, res.err).toBe(0);
    const { record, bytes } = await bestModel('pump-nightly');
    const e = record.evaluation;
    const raw = e.asAgent!;
    const from = (Date.parse(raw.from) - T0) / STEP;
    // Every raw reading from the first held-out row on, the night's stop included, each scored.
    expect(raw.challenger.readings).toBe(count - from);
    expect(raw.challenger).toMatchObject({ unscored: 0, maintenance: 0, faults: 0, mar: null, normal: count - from });
    const night = readings.slice(from).filter((_, k) => stopped(T0 + (from + k) * STEP)).length;
    expect(night).toBe(PER_DAY / 4);
    // The stop is flagged in the field, while the cleaned held-out rows (no stop) raise few alarms.
    expect(raw.challenger.flaggedNormal).toBeGreaterThanOrEqual(night);
    expect(e.challenger.far).toBeLessThan(2);
    // The same figure from one window at a time (FeatureWindow and a plain session, not the engine).
    const meta = readModelMetadata(bytes);
    const oneByOne = await flaggedShare(bytes, readings.slice(from - meta.window + 1), meta.window - 1);
    expect(Math.abs(100 * oneByOne - raw.challenger.far)).toBeLessThan(0.5);
    expect(res.out).toMatch(new RegExp(`^ {2}as agent raw held-out readings from ${raw.from}, ${count - from} of them: challenger flags ${raw.challenger.far.toFixed(2)} % of ${count - from} normal readings$`, 'm'));
    expect(res.out).toMatch(
      new RegExp(`^ {2}warning {2}on the raw held-out readings, scored as the agent scores them, the challenger flags ${raw.challenger.far.toFixed(2)} % of ${count - from} normal readings, against ${e.challenger.far.toFixed(2)} % of the cleaned held-out rows`, 'm'),
    );
    // The three nights' stops, dropped, are the only gaps: the readings themselves have none.
    expect(res.out).toMatch(/, 3 gaps \(3 left by dropped rows\)$/m);
    expect(res.out).toMatch(/^ {2}warning {2}Flow: \d+ of \d+ readings \(\d+ %\) were long runs of one repeated value/m);

    // The next range, with the model above live: both are scored on the raw readings.
    const again = await cli(['train', '--source', 'pump-nightly', '--from', '2026-03-01', '--to', '2026-03-04T06:00:00Z', '--seed', '2', '--version', 'again']);
    expect(again.code, again.err).toBe(0);
    const second = await readModelRecord(container, 'pump-nightly', 'again');
    expect(second.evaluation.asAgent!.champion).toEqual(raw.challenger);
    expect(again.out).toContain(`; live: flags ${raw.challenger.far.toFixed(2)} % of ${count - from} normal readings`);
  });

  it('leaves out a counter that only grows (running hours): a model of its level flagged every reading a week later', async () => {
    const r = rng(9);
    const count = 3 * PER_DAY;
    // Running hours in hundredths, as a PLC reports them.
    const hours = (ts: number) => Math.round(((ts - T0) / 3_600_000 + 18_250) * 100) / 100;
    await seed('pump-counter', T0, count, (ts) => ({ ...pumpValues(r, ts, true), RunningHours: hours(ts) }));
    const res = await cli(['train', '--source', 'pump-counter', '--from', '2026-03-01', '--to', '2026-03-04']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^ {2}warning {2}left out RunningHours: it only grows over the range \(a counter: 0 decreases in \d+ changes\)/m);
    const { record, bytes } = await bestModel('pump-counter');
    expect(record.features).toEqual(['Current', 'Flow', 'Pressure', 'Vibration']);
    expect(record.data.counterFeatures).toEqual(['RunningHours']);
    // A week after the range, running normally, the counter higher than ever: not flagged
    // (with the counter in, mset flagged 100 % of this day, and 0 % of the day after the range).
    const next = rng(10);
    const day = Array.from({ length: PER_DAY }, (_, i) => {
      const ts = T0 + 10 * DAY + i * STEP;
      return { ...pumpValues(next, ts, true), RunningHours: hours(ts) };
    });
    expect(await flaggedShare(bytes, day)).toBeLessThan(0.01);
  });

  it('leaves out what --exclude names, and names an --exclude the pump never sent (a typo would leave the feature in)', async () => {
    const r = rng(11);
    const count = 3 * PER_DAY;
    await seed('pump-exclude', T0, count, (ts) => ({ ...pumpValues(r, ts, true), AmbientTemp: 15 + 5 * Math.sin(((ts % DAY) / DAY) * 2 * Math.PI) + 0.2 * gaussian(r) }));
    const res = await cli(['train', '--source', 'pump-exclude', '--from', '2026-03-01', '--to', '2026-03-04', '--exclude', 'AmbientTemp, Vibrtion,AmbientTemp']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toContain(`${count} readings from gw-1 (AmbientTemp left out by --exclude);`);
    expect(res.out).toMatch(/^ {2}warning {2}--exclude names Vibrtion, which no reading of the range had$/m);
    const { record } = await bestModel('pump-exclude');
    expect(record.features).toEqual(['Current', 'Flow', 'Pressure', 'Vibration']);
    expect(record.data).toMatchObject({ excludedFeatures: ['AmbientTemp'], counterFeatures: [] });
    expect(Object.keys(record.baseline)).not.toContain('AmbientTemp');
  });

  it('still compares with a live model that uses a feature --exclude now leaves out (it used to be "not scorable" and replaced unseen)', async () => {
    const r = rng(12);
    const count = 3 * PER_DAY;
    // The ambient transmitter froze for the last 20 % of the range: the reason to exclude it.
    await seed('pump-exclude-live', T0, count, (ts, i) => ({ ...pumpValues(r, ts, true), AmbientTemp: i >= 0.8 * count ? 17.25 : 15 + 5 * Math.sin(((ts % DAY) / DAY) * 2 * Math.PI) + 0.2 * gaussian(r) }));
    const range = ['--source', 'pump-exclude-live', '--from', '2026-03-01', '--to', '2026-03-04'];
    const first = await cli(['train', ...range, '--version', 'with-ambient']);
    expect(first.code, first.err).toBe(0);
    expect((await readModelRecord(container, 'pump-exclude-live', 'with-ambient')).features).toContain('AmbientTemp');
    // The same range with other options: compared as usual (only a range that ends earlier than the live model's never replaces it).
    const res = await cli(['train', ...range, '--exclude', 'AmbientTemp', '--version', 'without-ambient']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).not.toMatch(/not scorable|cannot be scored/);
    expect(res.out).toMatch(/^ {2}compare {2}synthetic-faults: challenger .*; live with-ambient: balanced accuracy/m);
    expect(res.out).toMatch(/^ {2}as agent .*; live: flags /m);
    const record = await readModelRecord(container, 'pump-exclude-live', 'without-ambient');
    expect(record.features).toEqual(['Current', 'Flow', 'Pressure', 'Vibration']);
    expect(record.data.excludedFeatures).toEqual(['AmbientTemp']);
    expect(Object.keys(record.baseline)).toEqual(['Current', 'Flow', 'Pressure', 'Vibration']);
    expect(record.evaluation.champion).not.toBeNull();
    expect(record.decision.reason).toMatch(/^(better on the held-out rows|not better by the margin|not better beyond the noise of the fault placements): /);
    // The frozen, excluded sensor takes no row from the challenger, and no warning is about it.
    expect(record.data.trainRows + record.data.holdoutRows).toBe(count);
    expect(res.out).not.toMatch(/warning {2}AmbientTemp|--exclude names/);
  });

  it('does not say an --exclude name was never sent when the live model used it and the pump stopped sending it', async () => {
    const r = rng(13);
    const count = 3 * PER_DAY;
    // AmbientTemp is sent for two days only: a model of those days uses it; over all three it is stale.
    await seed('pump-exclude-stale', T0, count, (ts, i) => ({ ...pumpValues(r, ts, true), ...(i < 2 * PER_DAY ? { AmbientTemp: 15 + 5 * Math.sin(((ts % DAY) / DAY) * 2 * Math.PI) + 0.2 * gaussian(r) } : {}) }));
    const first = await cli(['train', '--source', 'pump-exclude-stale', '--from', '2026-03-01', '--to', '2026-03-03', '--version', 'two-days']);
    expect(first.code, first.err).toBe(0);
    expect((await readModelRecord(container, 'pump-exclude-stale', 'two-days')).features).toContain('AmbientTemp');
    const res = await cli(['train', '--source', 'pump-exclude-stale', '--from', '2026-03-01', '--to', '2026-03-04', '--exclude', 'AmbientTemp', '--version', 'three-days']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).not.toMatch(/--exclude names/);
    expect((await readModelRecord(container, 'pump-exclude-stale', 'three-days')).data.excludedFeatures).toEqual(['AmbientTemp']);
  });

  it('trains once on a day a sensor module re-sent after a crash (the agent stored it again under new sequence numbers)', async () => {
    const r = rng(7);
    const count = 3 * PER_DAY;
    const days: Values[] = Array.from({ length: count }, (_, i) => pumpValues(r, T0 + i * STEP, true));
    await seed('pump-resent', T0, count, (_ts, i) => days[i]!);
    // The second day again, as the module re-sent it: same timestamps and values, new seqs.
    await seed('pump-resent', T0 + DAY, PER_DAY, (_ts, i) => days[PER_DAY + i]!, count + 1);
    const res = await cli(['train', '--source', 'pump-resent', '--from', '2026-03-01', '--to', '2026-03-04']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toContain(`${count} readings (${PER_DAY} repeats of earlier ones dropped) from gw-1`);
    const { record } = await bestModel('pump-resent');
    expect(record.data).toMatchObject({ readings: count, repeatedReadings: PER_DAY });
    expect(record.data.trainRows + record.data.holdoutRows).toBe(count);
  });

  it('does not take a set point that changed once for a stuck sensor (it used to drop every row)', async () => {
    const r = rng(3);
    const count = 3 * PER_DAY;
    await seed('pump-setpoint', T0, count, (ts, i) => ({ ...pumpValues(r, ts, true), SpeedSetpoint: i < count / 2 ? 1450 : 1480 }));
    const res = await cli(['train', '--source', 'pump-setpoint', '--from', '2026-03-01', '--to', '2026-03-04']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^ {2}cleaning 0 outliers, 0 stuck values, 0 carried forward, 0 rows dropped \(missing\)/m);
    const { record } = await bestModel('pump-setpoint');
    expect(record.features).toContain('SpeedSetpoint');
    expect(record.data.trainRows + record.data.holdoutRows).toBe(count);
  });

  it('trains on a range with a frozen sensor: its run is removed as stuck, and the bounds the model carries (pumpwatch.stuck_after) are not widened by it', async () => {
    const r = rng(13);
    const count = 3 * PER_DAY;
    // the current transmitter frozen for 800 readings (4.4 h at 20 s) on the second day
    const from = PER_DAY + 100;
    let frozen = 0;
    await seed('pump-frozen', T0, count, (ts, i) => {
      const v = pumpValues(r, ts, true);
      if (i === from - 1) frozen = v.Current as number;
      if (i >= from && i < from + 800) v.Current = frozen;
      return v;
    });
    const res = await cli(['train', '--source', 'pump-frozen', '--from', '2026-03-01', '--to', '2026-03-04']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/ 801 stuck values \(Current 801\)/);
    const { bytes } = await bestModel('pump-frozen');
    const meta = readModelMetadata(bytes);
    expect(meta.stuckAfter).toEqual(Object.fromEntries(meta.features.map((f) => [f, 60])));
  });

  it('leaves out a sensor the pump stopped sending mid-range, so the model scores what the agent now receives', async () => {
    const r = rng(4);
    const count = 3 * PER_DAY;
    await seed('pump-removed', T0, count, (ts, i) => {
      const v = pumpValues(r, ts, true);
      if (i >= 0.7 * count) delete v.Vibration;
      return v;
    });
    const res = await cli(['train', '--source', 'pump-removed', '--from', '2026-03-01', '--to', '2026-03-04']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^ {2}warning {2}left out Vibration: present in most readings but in none of the most recent 10 %; the pump no longer sends it$/m);
    const { record, bytes } = await bestModel('pump-removed');
    expect(record.features).toEqual(['Current', 'Flow', 'Pressure']);
    expect(record.data.staleFeatures).toEqual(['Vibration']);
    // All rows are used, and the held-out part is the most recent one (it used to end where Vibration did).
    expect(record.data.trainRows + record.data.holdoutRows).toBe(count);
    expect(record.data.holdoutTo).toBe(new Date(T0 + (count - 1) * STEP).toISOString());
    // An agent started after the change scores the pump (before: "no value known yet for feature Vibration").
    const after = rng(5);
    const day = Array.from({ length: 200 }, (_, i) => {
      const v = pumpValues(after, T0 + 3 * DAY + i * STEP, true);
      delete v.Vibration;
      return v;
    });
    expect(await flaggedShare(bytes, day)).toBeLessThan(0.05);
  });

  it('warns when the challenger flags none of the confirmed faults, and counts the fault rows it left out', async () => {
    const r = rng(6);
    const count = 2 * PER_DAY;
    const faultFrom = T0 + 1.5 * DAY;
    // A small pressure offset through the last quarter, confirmed by a technician.
    await seed('pump-faulty', T0, count, (ts) => {
      const v = pumpValues(r, ts, true);
      return ts >= faultFrom ? { ...v, Pressure: (v.Pressure as number) + 0.05 } : v;
    });
    const label = { id: 'lab-m1', pumpId: 'pump-faulty', kind: 'confirmed-fault' as const, faultType: null, note: 'small leak', alertSeq: null, fromTs: faultFrom, toTs: T0 + 2 * DAY, author: 'tech', createdAt: T0 + 2 * DAY, synced: false };
    const body = JSON.stringify(toLabelRecord('gw-1', label as never));
    await container.getBlockBlobClient(labelBlobName('gw-1', label as never)).upload(body, body.length);
    const res = await cli(['train', '--source', 'pump-faulty', '--from', '2026-03-01', '--to', '2026-03-03']);
    expect(res.code, res.err).toBe(0);
    const { record } = await bestModel('pump-faulty');
    // One fault episode is too few to compare on labels alone: the synthetic faults stay, the fault rows are more positives.
    expect(record.evaluation.criterion).toBe('synthetic-faults');
    expect(record.evaluation.challenger.labelled).toEqual({ rows: record.data.holdoutRows, missed: record.data.holdoutRows });
    const faultRows = PER_DAY / 2;
    const held = record.data.holdoutRows;
    expect(record.data.faultRowsLeftOut).toBe(faultRows - held);
    expect(record.data.trainRows + record.data.faultRowsLeftOut! + held).toBe(count);
    expect(res.out).toContain(`${record.data.trainRows} rows trained (${faultRows - held} inside confirmed faults left out), ${held} held out`);
    // Each figure names its rows: the cleaned held-out rows the decision compared, and the raw readings as the agent scores them.
    const raw = record.evaluation.asAgent!.challenger;
    expect(res.out).toMatch(
      new RegExp(`^ {2}warning {2}the challenger flags none of the ${held} cleaned held-out rows inside confirmed faults: at its threshold it would raise no alarm on them; as the agent scores the raw held-out readings, it misses ${raw.missedFaults} of the ${raw.faults} in confirmed faults$`, 'm'),
    );
    expect(res.out).toMatch(new RegExp(`^ {2}as agent raw held-out readings .*, misses [\\d.]+ % of ${raw.faults} readings in confirmed faults`, 'm'));
    expect(res.out).toMatch(/^ {2}warning {2}every held-out row lies inside a confirmed fault: there is no normal row to count false alarms on/m);
  });

  it('names the rows left out as confirmed faults, and the feature missing from dropped rows, when too few rows are left', async () => {
    const r = rng(7);
    // Every reading inside a confirmed fault.
    await seed('pump-all-fault', T0 + 10 * DAY, 600, (ts) => pumpValues(r, ts, true));
    const label = { id: 'lab-all', pumpId: 'pump-all-fault', kind: 'confirmed-fault' as const, faultType: null, note: null, alertSeq: null, fromTs: T0 + 10 * DAY, toTs: T0 + 11 * DAY, author: 'tech', createdAt: T0 + 11 * DAY, synced: false };
    const body = JSON.stringify(toLabelRecord('gw-1', label as never));
    await container.getBlockBlobClient(labelBlobName('gw-1', label as never)).upload(body, body.length);
    const all = await cli(['train', '--source', 'pump-all-fault', '--from', '2026-03-11', '--to', '2026-03-12']);
    expect(all.code).toBe(1);
    expect(lastLine(all.err)).toBe(
      'pumpwatch-trainer train: PW_TRAINER_NO_DATA: not enough usable rows of "pump-all-fault" between 2026-03-11T00:00:00.000Z and 2026-03-12T00:00:00.000Z: ' +
        '0 to train (need 100) and 120 held out (need 20) from 600 readings (0 dropped for missing values, 0 in maintenance, 480 inside confirmed-fault labels, never trained on)',
    );
    // Temperature null for 64 readings in a row: 60 carried forward, 4 rows dropped, too few left.
    await seed('pump-gap', T0 + 12 * DAY, 128, (ts, i) => ({ ...pumpValues(r, ts, true), Temperature: i >= 40 && i < 104 ? null : 40 + (i % 5) / 10 }));
    const gap = await cli(['train', '--source', 'pump-gap', '--from', '2026-03-13', '--to', '2026-03-14']);
    expect(gap.code).toBe(1);
    expect(lastLine(gap.err)).toMatch(/: 99 to train \(need 100\) and 25 held out \(need 20\) from 128 readings \(4 dropped for missing values: Temperature missing in 4, 0 in maintenance\)$/);
  });
});
