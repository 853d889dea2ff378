/**
 * The cloud trainer against a real Azurite: readings uploaded as the agent's sync writes them
 * (gzip JSON lines under the DESIGN.md names), trained, compared, promoted through best.json
 * with an ETag, drift-checked and reported, all through the CLI entry point.
 */
import { ContainerClient } from '@azure/storage-blob';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readModelMetadata } from '../../inference/contract.js';
import { toLabelRecord, labelBlobName } from '../../sync/labels-upload.js';
import { registryFromEnv, type CommandContext } from '../../trainer/cloud/context.js';
import { EXIT } from '../../trainer/errors.js';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { writeBest } from '../../trainer/registry/write.js';
import { shardOf } from '../../trainer/train/sources.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { lastLine, pumpValues, runTrainer, seedReadings, trainerContext } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;

let az: TestAzurite;
let container: ContainerClient;
let dir: string;

const context = (now = new Date(T0 + 30 * DAY)): CommandContext => trainerContext(container, { now });
const cli = (args: string[], ctx = context()) => runTrainer(args, ctx);

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-it');
  await container.create();
  dir = mkdtempSync(join(tmpdir(), 'pw-trainer-it-'));
  const r = rng(11);
  // pump-a: days 1-2 at flow 30 (4 320 readings per day at 20 s), day 3 onwards at flow 45.
  await seedReadings(container, 'pump-a', 'gw-1', T0, 8640, (i) => pumpValues(r, i, 30));
  await seedReadings(container, 'pump-a', 'gw-1', T0 + 2 * DAY, 8640, (i) => pumpValues(r, i, 45), { seq0: 8641 });
  // The same readings uploaded again under another batch cut (a retry after a crash): no duplicates.
  await seedReadings(container, 'pump-a', 'gw-1', T0, 1000, (i) => pumpValues(rng(11), i, 30), { batch: 250 });
  // pump-b: short, and with gaps in the values.
  const rb = rng(12);
  await seedReadings(container, 'pump-b', 'gw-2', T0, 3000, (i) => (i % 97 === 0 ? { ...pumpValues(rb, i, 20), Current: null } : pumpValues(rb, i, 20)));
  // pump-few: readings on day 1, far too few to train on.
  const rf = rng(14);
  await seedReadings(container, 'pump-few', 'gw-4', T0, 50, (i) => pumpValues(rf, i, 30));
});

async function modelBlobs(source: string): Promise<string[]> {
  const names: string[] = [];
  for await (const blob of container.listBlobsFlat({ prefix: `models/${source}/` })) names.push(blob.name);
  return names;
}

afterAll(async () => {
  await az?.dispose();
  if (dir) rmSync(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 50 });
});

describe('pumpwatch-trainer train', () => {
  it('promotes the first model of a source and writes model.onnx, model.json and best.json', async () => {
    const res = await cli(['train', '--source', 'pump-a', '--from', '2026-01-01', '--to', '2026-01-03', '--report', join(dir, 'first.html')]);
    expect(res.err).toMatch(/train pump-a: reading blobs/);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/^pump-a: promoted \d{8}-[0-9a-f]{12} \(mset-horizon, window 10/);
    expect(res.out).toMatch(/no model was promoted for this source yet/);
    // 1.6 days of trained rows: a whole daily cycle, no warning.
    expect(res.out).not.toMatch(/warning/);
    const best = await readBest(container, 'pump-a');
    const record = await readModelRecord(container, 'pump-a', best!.pointer.version);
    expect(record.data.readings).toBe(8640);
    expect(record.data.trainRows + record.data.holdoutRows).toBe(8640);
    expect(record.data.holdoutRows).toBe(1728);
    expect(record.evaluation.criterion).toBe('synthetic-faults');
    expect(record.evaluation.champion).toBeNull();
    // Clean data: the raw held-out readings are the held-out rows, and the agent's engine flags as many of them.
    const asAgent = record.evaluation.asAgent!;
    expect(asAgent).toMatchObject({ from: record.data.holdoutFrom, champion: null });
    expect(asAgent.challenger).toMatchObject({ readings: 1728, unscored: 0, normal: 1728, faults: 0, mar: null });
    expect(asAgent.challenger.flaggedNormal).toBe(record.evaluation.challenger.counts.fp);
    expect(res.out).toContain(`  as agent raw held-out readings from ${asAgent.from}, 1728 of them: challenger flags ${asAgent.challenger.far.toFixed(2)} % of 1728 normal readings\n`);
    expect(record.decision).toMatchObject({ promoted: true, margin: 0.01 });
    expect(Object.keys(record.baseline)).toEqual(['Current', 'Flow', 'Pressure']);
    expect(record.trainer.seed).toBe(1);
    const bytes = await container.getBlockBlobClient(record.model.blob).downloadToBuffer();
    expect(readModelMetadata(bytes)).toMatchObject({ source: 'pump-a', version: record.version, features: ['Current', 'Flow', 'Pressure'] });
    const html = readFileSync(join(dir, 'first.html'), 'utf8');
    expect(html).toMatch(/<svg/);
    expect(html).toContain(record.version);
    expect(html).toContain(`As the agent would see them: the raw readings from ${asAgent.from}`);
    expect(html).not.toMatch(/<script|https?:\/\//);
  });

  // A second run registers the same version; registerVersion refuses different bytes under an
  // existing version (PW_TRAINER_REGISTRY_INVALID), so passing here means identical model bytes.
  it('is reproducible: the same range and seed give the same bytes, and the live model is kept', async () => {
    const before = (await readBest(container, 'pump-a'))!.pointer;
    const res = await cli(['train', '--source', 'pump-a', '--from', '2026-01-01', '--to', '2026-01-03']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(new RegExp(`^pump-a: kept live ${before.version} \\(.*\\): the challenger is that very version$`, 'm'));
    expect(res.out).toMatch(/the challenger is the live model itself/);
    expect((await readBest(container, 'pump-a'))!.pointer).toEqual(before);
  });

  it('evaluates the best model, or a local model file, on a range with the same metric', async () => {
    const best = (await readBest(container, 'pump-a'))!.pointer.version;
    const res = await cli(['evaluate', '--source', 'pump-a', '--from', '2026-01-02', '--to', '2026-01-03']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(new RegExp(`^pump-a: model ${best} \\(mset-horizon, window 10, threshold [\\d.]+\\) on 4320 rows`));
    expect(res.out).toMatch(/^ {2}no fault labels in the rows of the range: the 4320 rows of the range are negatives; positives are 9 copies of blocks of 300 rows of the range, one per varying feature and fault size, each with that feature shifted by that size: 2, 4 or 8 standard deviations of the range, placed 16 times \(placement k in the k-th of 16 stretches of the rows of the range, half of the placements up, half down\)$/m);
    expect(res.out).toMatch(/^ {2}balanced accuracy \d\.\d{4} \(F1 \d\.\d{4}, FAR [\d.]+ %, MAR [\d.]+ %; TP \d+, FP \d+, FN \d+, TN 4320\)$/m);
    expect(res.out).not.toMatch(/held-out/);
    expect(res.out).toMatch(/^ {2}alarms {3}\d+ false alarms? \(runs of flagged readings\) in [\d.]+ h of running, [\d.]+ a day on the normal rows(: more than a model raising 1 a day would \(p < 0\.01\), above train's default alarm ceiling)?$/m);
    // Every raw reading, as the agent scores it from an empty window: the first 9 only fill it.
    expect(res.out).toMatch(/^ {2}as agent every raw reading of the range, 4320 of them: flags [\d.]+ % of 4311 normal readings, 9 unscored$/m);
    const file = join(dir, 'local.onnx');
    writeFileSync(file, await container.getBlockBlobClient(`models/pump-a/${best}/model.onnx`).downloadToBuffer());
    const local = await cli(['evaluate', '--source', 'pump-a', '--days', '1', '--model', file], context(new Date(T0 + 2 * DAY + 3_600_000)));
    expect(local.code, local.err).toBe(0);
    expect(local.out).toMatch(/on 4320 rows/);
  });

  it('skips with --if-drifted when the range looks like the baseline, and trains when it drifted', async () => {
    const same = await cli(['train', '--source', 'pump-a', '--from', '2026-01-02', '--to', '2026-01-03', '--if-drifted']);
    expect(same.code, same.err).toBe(0);
    expect(same.out).toMatch(/pump-a: skipped: no drift from the baseline/);
    const drift = await cli(['drift', '--source', 'pump-a', '--from', '2026-01-03', '--to', '2026-01-05']);
    expect(drift.code).toBe(3);
    expect(drift.out).toMatch(/Flow +\d+\.\d+ +\d\.\d+ .* DRIFT/);
    expect(drift.out).toMatch(/drift: .*Flow/);
    const calm = await cli(['drift', '--source', 'pump-a', '--from', '2026-01-01', '--to', '2026-01-02']);
    expect(calm.code, calm.out).toBe(0);
    expect(calm.out).toMatch(/no drift/);
  });

  it('promotes a challenger that beats the live model after the operating point moved, and rolls back', async () => {
    const first = (await readBest(container, 'pump-a'))!.pointer.version;
    const res = await cli(['train', '--source', 'pump-a', '--from', '2026-01-03', '--to', '2026-01-05', '--if-drifted']);
    expect(res.code, res.err).toBe(0);
    expect(res.out).toMatch(/pump-a: promoted/);
    expect(res.out).toMatch(new RegExp(`live ${first}: balanced accuracy \\d\\.\\d{4} \\(F1 `));
    // The live model flags most normal held-out rows: above the false-alarm ceiling, it cannot defend its place.
    expect(res.out).toMatch(
      /decision the live model flags [\d.]+ % of the normal held-out rows, above the false-alarm ceiling of 5 % \(--max-far\), and the challenger [\d.]+ % \(\d+ false alarms? in [\d.]+ h\), within it: synthetic-faults: challenger balanced accuracy \d\.\d{4} \(F1 [^)]*\) vs live balanced accuracy/,
    );
    const best = (await readBest(container, 'pump-a'))!.pointer;
    expect(best.version).not.toBe(first);
    expect(best.history[0]!.version).toBe(first);
    const record = await readModelRecord(container, 'pump-a', best.version);
    expect(record.evaluation.challenger.score).toBeGreaterThan(record.evaluation.champion!.score + 0.01);
    expect(record.evaluation.champion!.far).toBeGreaterThan(50);

    const back = await cli(['rollback', '--source', 'pump-a', '--no-deploy']);
    expect(back.code, back.err).toBe(0);
    expect(back.out).toBe(`pump-a: best.json ${best.version} → ${first} (rollback)`);
    const now = (await readBest(container, 'pump-a'))!.pointer;
    expect(now.version).toBe(first);
    expect(now.history).toEqual([]);
    expect((await cli(['rollback', '--source', 'pump-a', '--no-deploy'])).err).toMatch(/PW_TRAINER_NO_MODEL: .*nothing to roll back to/);
  });

  it('refuses to move best.json when it changed after it was read (ETag)', async () => {
    const state = (await readBest(container, 'pump-a'))!;
    await writeBest(container, { ...state.pointer, reason: 'someone else' }, state.etag);
    await expect(writeBest(container, { ...state.pointer, reason: 'stale' }, state.etag)).rejects.toMatchObject({ code: 'PW_TRAINER_REGISTRY_CONFLICT' });
    await expect(writeBest(container, { ...state.pointer, source: 'pump-new' }, null)).resolves.toBeUndefined();
    await expect(writeBest(container, { ...state.pointer, source: 'pump-new' }, null)).rejects.toMatchObject({ code: 'PW_TRAINER_REGISTRY_CONFLICT' });
  });

  it('compares on technicians’ fault labels when the held-out rows have enough of them (50 rows in 5 episodes)', async () => {
    const rc = rng(13);
    // Five pressure faults of 60 readings each, 20 readings apart, in the held-out part (rows 2880-3599), each confirmed.
    const starts = [3000, 3080, 3160, 3240, 3320];
    const inFault = (i: number) => starts.some((s) => i >= s && i < s + 60);
    await seedReadings(container, 'pump-c', 'gw-3', T0 + 10 * DAY, 3600, (i) => pumpValues(rc, i, 25, { shift: inFault(i) ? 1.5 : 0 }));
    for (const [k, s] of starts.entries()) {
      const from = T0 + 10 * DAY + s * STEP;
      const label = { id: `lab-${k}`, pumpId: 'pump-c', kind: 'confirmed-fault' as const, faultType: null, note: 'pressure sensor', alertSeq: null, fromTs: from, toTs: from + 59 * STEP, author: 'tech', createdAt: T0 + 11 * DAY, synced: false };
      const body = JSON.stringify(toLabelRecord('gw-3', label as never));
      await container.getBlockBlobClient(labelBlobName('gw-3', label as never)).upload(body, body.length);
    }
    const res = await cli(['train', '--source', 'pump-c', '--from', '2026-01-11', '--to', '2026-01-12']);
    expect(res.code, res.err).toBe(0);
    const record = await readModelRecord(container, 'pump-c', (await readBest(container, 'pump-c'))!.pointer.version);
    expect(record.evaluation.criterion).toBe('labels');
    expect(record.evaluation.challenger.counts.tp + record.evaluation.challenger.counts.fn).toBe(300);
    expect(record.evaluation.challenger.mar).toBeLessThan(10);
    expect(res.out).toMatch(/compare {2}labels: challenger balanced accuracy \d\.\d{4} \(F1 \d\.\d{4}, FAR [\d.]+ %, MAR [\d.]+ %\), \d+ false alarms? \(runs of flagged readings\) in [\d.]+ h of running, [\d.]+ a day; no live model/);
    expect(record.evaluation.challenger.metric).toBe('balanced-accuracy');
    expect(record.evaluation.description).toBe('300 held-out rows inside confirmed-fault labels (5 episodes) are positives, the other 420 negatives');
    // The same labels on the raw readings: the agent's engine flags and misses as many.
    const c = record.evaluation.challenger.counts;
    expect(record.evaluation.asAgent!.challenger).toMatchObject({ readings: 720, unscored: 0, faults: 300, missedFaults: c.fn, normal: 420, flaggedNormal: c.fp });
    expect(res.out).toMatch(/^ {2}as agent .*: challenger flags [\d.]+ % of 420 normal readings, misses [\d.]+ % of 300 readings in confirmed faults$/m);
    // evaluate scores every row of the range, with the same metric.
    const ev = await cli(['evaluate', '--source', 'pump-c', '--from', '2026-01-11', '--to', '2026-01-12']);
    expect(ev.code, ev.err).toBe(0);
    expect(ev.out).toMatch(/^ {2}300 rows of the range inside confirmed-fault labels \(5 episodes\) are positives, the other 3300 negatives$/m);
    expect(ev.out).toMatch(/^ {2}balanced accuracy \d\.\d{4} \(F1 \d\.\d{4}, FAR [\d.]+ %, MAR [\d.]+ %; TP \d+, FP \d+, FN \d+, TN \d+\)$/m);
  });

  it('names the range when it fails with PW_TRAINER_NO_DATA, and says when the newest readings are after it', async () => {
    const after = '; its newest readings (blobs dated 2026-01-04, UTC) are after the range';
    for (const command of ['train', 'evaluate', 'drift']) {
      const empty = await cli([command, '--source', 'pump-a', '--from', '2025-01-01', '--to', '2025-01-02']);
      expect(empty.code, command).toBe(1);
      expect(lastLine(empty.err)).toBe(`pumpwatch-trainer ${command}: PW_TRAINER_NO_DATA: no readings of "pump-a" between 2025-01-01T00:00:00.000Z and 2025-01-02T00:00:00.000Z${after}`);
    }
    // --days 1 is yesterday (whole UTC days before today): empty for a pump whose readings all came today.
    const today = context(new Date(T0 + 10 * DAY + 12 * 3_600_000));
    const started = await cli(['train', '--source', 'pump-c', '--days', '1'], today);
    expect(started.code).toBe(1);
    expect(lastLine(started.err)).toBe(
      'pumpwatch-trainer train: PW_TRAINER_NO_DATA: no readings of "pump-c" between 2026-01-10T00:00:00.000Z and 2026-01-11T00:00:00.000Z; its newest readings (blobs dated 2026-01-11, UTC) are after the range',
    );
    // Readings before the range only: no note.
    const later = await cli(['train', '--source', 'pump-b', '--from', '2026-02-01', '--to', '2026-02-02']);
    expect(lastLine(later.err)).toBe('pumpwatch-trainer train: PW_TRAINER_NO_DATA: no readings of "pump-b" between 2026-02-01T00:00:00.000Z and 2026-02-02T00:00:00.000Z');
    const few = await cli(['train', '--source', 'pump-few', '--from', '2026-01-01', '--to', '2026-01-02']);
    expect(few.code).toBe(1);
    expect(lastLine(few.err)).toBe(
      'pumpwatch-trainer train: PW_TRAINER_NO_DATA: not enough usable rows of "pump-few" between 2026-01-01T00:00:00.000Z and 2026-01-02T00:00:00.000Z: ' +
        '40 to train (need 100) and 10 held out (need 20) from 50 readings (0 dropped for missing values, 0 in maintenance)',
    );
  });

  it('exits 2 on bad usage, before reading any data', async () => {
    const file = join(dir, 'not-a-folder.txt');
    writeFileSync(file, 'x');
    // An unwritable report stops the run before any training: the empty range would otherwise fail with PW_TRAINER_NO_DATA.
    const noData = ['--source', 'pump-a', '--from', '2025-01-01', '--to', '2025-01-02'];
    for (const [args, msg] of [
      [['train', '--source', 'pump-a'], /^pumpwatch-trainer train: --from \(or --days\) is required \(see "pumpwatch-trainer train --help"\)$/],
      [['train', '--source', 'pump-a', '--from', '2026-01-02', '--to', '2026-01-01'], /^pumpwatch-trainer train: --to must be after --from$/],
      [['train', '--source', 'pump-a', '--days', '3', '--from', '2026-01-01'], /^pumpwatch-trainer train: give either --days or --from\/--to/],
      [['train', '--source', 'a/b', '--days', '1'], /^pumpwatch-trainer train: --source "a\/b" is not a pump id/],
      [['train', '--source', 'site1.pump3', '--days', '1'], /^pumpwatch-trainer train: --source "site1\.pump3" is not a pump id .*no "\."/],
      [['train', '--source', 'pump-a', '--days', '1', '--holdout', '0.9'], /^pumpwatch-trainer train: --holdout must be a number from 0.05 to 0.5/],
      [['train', ...noData, '--algo', 'forest'], /^pumpwatch-trainer train: unknown algorithm "forest" \(known: mset, mset-rel, pca\)$/],
      [['train-all', '--from', '2025-01-01', '--to', '2025-01-02', '--algo', 'forest'], /^pumpwatch-trainer train-all: unknown algorithm "forest"/],
      [['train', '--source', 'pump-a', '--days', '1', '--deploy', '--device', 'gw-1', '--query', 'SELECT *'], /^pumpwatch-trainer train: give --device or --query, not both$/],
      [['train', ...noData, '--report', join(file, 'r.html')], /^pumpwatch-trainer train: cannot write the report to ".*r\.html": ".*not-a-folder\.txt" is a file, not a folder$/],
      [['train-all', '--shard', '2/2', '--days', '1'], /^pumpwatch-trainer train-all: --shard must be I\/N with 0 <= I < N/],
      [['train-all', '--days', 'x'], /^pumpwatch-trainer train-all: --days must be an integer >= 1, got "x"$/],
      [['train-all', '--from', '2025-01-01', '--to', '2025-01-02', '--report-dir', file], /^pumpwatch-trainer train-all: cannot write the reports to ".*not-a-folder\.txt": it is a file, not a folder$/],
      [['drift', '--source', 'pump-a', '--days', '1', '--psi', '200'], /^pumpwatch-trainer drift: --psi must be a number from 0 to 100, got "200"$/],
      [['evaluate', '--source', 'pump-a', '--from', '2026-01-01'], /^pumpwatch-trainer evaluate: --to \(or --days\) is required/],
      [['evaluate', ...noData, '--seed', 'x'], /^pumpwatch-trainer evaluate: --seed must be an integer >= 0, got "x"$/],
      [['evaluate', '--source', 'pump-a', '--days', '1', '--model', join(dir, 'nope.onnx')], /^pumpwatch-trainer evaluate: cannot read the model ".*nope\.onnx": no such file$/],
      [['rollback', '--source', 'pump-a', '--bogus'], /^pumpwatch-trainer rollback: Unknown option '--bogus' \(see "pumpwatch-trainer rollback --help"\)$/],
    ] as const) {
      const r = await cli([...args]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err).toMatch(msg);
    }
  });

  it('checks what --deploy needs before it trains: without an IoT Hub, a key to sign URLs or a valid --expires-hours nothing is trained', async () => {
    const range = ['--from', '2026-01-01', '--to', '2026-01-02'];
    const noHub: CommandContext = { ...context(), registry: () => registryFromEnv({}) };
    const badHub: CommandContext = { ...context(), registry: () => registryFromEnv({ PUMPWATCH_IOTHUB_CONNECTION_STRING: 'HostName=hub.example.net' }) };
    const sasOnly: CommandContext = {
      ...context(),
      registry: () => registryFromEnv({ PUMPWATCH_IOTHUB_CONNECTION_STRING: 'HostName=hub.example.net;SharedAccessKeyName=service;SharedAccessKey=c2VjcmV0' }),
      container: () => new ContainerClient(az.containerSasUrl('trainer-it')),
      models: () => new ContainerClient(az.containerSasUrl('trainer-it')),
    };
    const notConfigured = /PW_TRAINER_NOT_CONFIGURED: IoT Hub is not configured: set PUMPWATCH_IOTHUB_CONNECTION_STRING/;
    for (const [args, ctx, code, msg] of [
      [['train', '--source', 'pump-b', ...range, '--deploy'], noHub, 1, notConfigured],
      [['train', '--source', 'pump-b', ...range, '--deploy'], badHub, 1, /PW_TRAINER_NOT_CONFIGURED: PUMPWATCH_IOTHUB_CONNECTION_STRING is not usable: .*missing the property/],
      [['train', '--source', 'pump-b', ...range, '--deploy'], sasOnly, 1, /PW_TRAINER_NOT_CONFIGURED: deploy signs model URLs with the storage account key/],
      [['train', '--source', 'pump-b', ...range, '--deploy', '--expires-hours', 'abc'], noHub, 2, /^pumpwatch-trainer train: --expires-hours must be a number from 1 to 8760, got "abc"$/],
      [['train-all', ...range, '--deploy'], noHub, 1, notConfigured],
      [['train-all', ...range, '--deploy', '--expires-hours', '0'], noHub, 2, /^pumpwatch-trainer train-all: --expires-hours must be a number from 1 to 8760, got "0"$/],
    ] as const) {
      const res = await cli([...args], ctx);
      expect(res.code, args.join(' ')).toBe(code);
      expect(res.err).toMatch(msg);
      expect(res.out, args.join(' ')).toBe('');
      expect(await modelBlobs('pump-b'), args.join(' ')).toEqual([]);
    }
  });

  it('trains every source of a shard with train-all, skipping sources without readings in the range, carrying missing values forward', async () => {
    const res = await cli(['train-all', '--shard', '0/1', '--concurrency', '2', '--from', '2026-01-01', '--to', '2026-01-02', '--report-dir', join(dir, 'reports')]);
    expect(res.out).toMatch(/train-all: shard 0\/1: 4 of 4 sources, 2 at a time/);
    expect(res.out).toMatch(/pump-b: promoted/);
    // pump-c has readings, but none in the range: skipped, not failed.
    expect(res.out).toMatch(/^pump-c: skipped: no readings between 2026-01-01T00:00:00\.000Z and 2026-01-02T00:00:00\.000Z; its newest readings \(blobs dated 2026-01-11, UTC\) are after the range$/m);
    // pump-few has readings in the range, too few to train on: that needs a person.
    expect(res.err).toMatch(/^pump-few: FAILED PW_TRAINER_NO_DATA: not enough usable rows of "pump-few" between 2026-01-01T00:00:00\.000Z and 2026-01-02T00:00:00\.000Z: 40 to train/m);
    expect(res.out).toMatch(/train-all: shard 0\/1: 1 promoted, 1 kept, 1 skipped, 1 failed$/);
    expect(res.code).toBe(EXIT.dataFailed); // its only failure is of its data: a retry fails the same way
    // A shard whose only trouble is a source without readings succeeds.
    const shards = Array.from({ length: 30 }, (_, i) => i + 2).find((n) => shardOf('pump-c', n) !== shardOf('pump-few', n))!;
    const quiet = await cli(['train-all', '--shard', `${shardOf('pump-c', shards)}/${shards}`, '--from', '2026-01-01', '--to', '2026-01-02']);
    expect(quiet.out).toMatch(/^pump-c: skipped: no readings between/m);
    expect(quiet.out).toMatch(/, \d+ skipped, 0 failed$/);
    expect(quiet.code, quiet.err).toBe(0);
    const b = await readModelRecord(container, 'pump-b', (await readBest(container, 'pump-b'))!.pointer.version);
    // 31 readings lack Current; the first has nothing to carry forward and is dropped.
    expect(b.data.cleaning).toMatchObject({ carriedValues: 30, droppedMissing: 1 });
    // pump-b has 3 000 readings at 20 s (16.7 h); 80 % are trained: less than a day, so train says so.
    expect(res.out).toMatch(/pump-b: promoted[^]*\n {2}warning {2}the trained rows span 13\.3 h, less than a day/);
    expect(readFileSync(join(dir, 'reports', 'pump-b.html'), 'utf8')).toMatch(/<b>warning<\/b>: the trained rows span 13\.3 h/);
    expect(readFileSync(join(dir, 'reports', 'pump-c.html'), 'utf8')).toMatch(/<b>skipped<\/b>: no readings between/); // a page for every outcome, as train --report
    const split = await Promise.all([0, 1, 2].map((i) => cli(['train-all', '--shard', `${i}/3`, '--days', '1'], context(new Date(T0 + 2 * DAY)))));
    const counts = split.map((s) => Number(/: (\d+) of 4 sources/.exec(s.out)?.[1]));
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4);
  });

  // Seeded last: the train-all tests above count the sources.
  it('reports rows no model can be fitted on as a data problem of the range (exit 1), not as bad usage', async () => {
    await seedReadings(container, 'pump-flat', 'gw-5', T0 + 20 * DAY, 300, () => ({ Current: 0.5, Flow: 30, Pressure: 2 }));
    const res = await cli(['train', '--source', 'pump-flat', '--from', '2026-01-21', '--to', '2026-01-22']);
    expect(res.code).toBe(1);
    expect(lastLine(res.err)).toBe(
      'pumpwatch-trainer train: PW_TRAINER_NO_DATA: cannot fit a model on the rows of "pump-flat" between 2026-01-21T00:00:00.000Z and 2026-01-22T00:00:00.000Z: no feature varies in the training rows',
    );
    expect(await modelBlobs('pump-flat')).toEqual([]);
  });
});
