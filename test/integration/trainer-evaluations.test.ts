/**
 * Every `train` run's evaluation is recorded beside its version (models/{source}/{version}/
 * evaluations/…), against a real Azurite: a rerun of a range after technicians confirmed one more
 * fault episode makes the same model bytes (the episode lies in the held-out rows), so the same
 * version, whose model.json is written once and keeps the first run's evaluation.
 */
import { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBest, readModelRecord } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { rng } from '../support/models.js';
import { evaluationRecords, pumpValues, runTrainer, seedReadings, trainerContext, uploadConfirmedFault } from '../support/trainer.js';

const DAY = 86_400_000;
const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;
const START = T0 + 10 * DAY;
// Six pressure faults of 60 readings each in the held-out part (rows 2880-3599 of 3600).
const EPISODES = [3000, 3080, 3160, 3240, 3320, 3400];

let az: TestAzurite;
let container: ContainerClient;

const cli = (args: string[]) => runTrainer(args, trainerContext(container, { now: new Date(T0 + 30 * DAY) }));
const confirm = (k: number) =>
  uploadConfirmedFault(container, 'gw-ev', { id: `ev-${k}`, pumpId: 'pump-ev', fromTs: START + (EPISODES[k] as number) * STEP, toTs: START + ((EPISODES[k] as number) + 59) * STEP, createdAt: T0 + 11 * DAY });

const evaluations = (source: string, version: string) => evaluationRecords(container, source, version);

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-evaluations');
  await container.create();
  const r = rng(13);
  const inFault = (i: number) => EPISODES.some((s) => i >= s && i < s + 60);
  await seedReadings(container, 'pump-ev', 'gw-ev', START, 3600, (i) => pumpValues(r, i, 25, { shift: inFault(i) ? 1.5 : 0 }));
  for (const k of [0, 1, 2, 3, 4]) await confirm(k);
});

afterAll(async () => {
  await az?.dispose();
});

describe('train records every evaluation of a version', () => {
  it('writes each run its own evaluation blob, keeps model.json as the first run wrote it, and says so', async () => {
    const first = await cli(['train', '--source', 'pump-ev', '--from', '2026-01-11', '--to', '2026-01-12']);
    expect(first.code, first.err).toBe(0);
    const version = (await readBest(container, 'pump-ev'))!.pointer.version;
    const json = container.getBlockBlobClient(`models/pump-ev/${version}/model.json`);
    const before = await json.downloadToBuffer();
    const [one] = await evaluations('pump-ev', version);
    expect(first.out.split('\n')).toContain(`  recorded this run's evaluation in ${one!.name}`);
    expect(one!.name).toMatch(new RegExp(`^models/pump-ev/${version}/evaluations/2026-01-31T00-00-00\\.000Z-[0-9a-f]{8}\\.json$`));

    // A technician confirms the sixth episode; the same range is trained again.
    await confirm(5);
    const second = await cli(['train', '--source', 'pump-ev', '--from', '2026-01-11', '--to', '2026-01-12']);
    expect(second.code, second.err).toBe(0);
    expect(second.out).toMatch(new RegExp(`^pump-ev: kept live ${version} \\(.*\\): the challenger is that very version$`, 'm'));

    // model.json is the version's first record, byte for byte.
    expect(await json.downloadToBuffer()).toEqual(before);
    const record = await readModelRecord(container, 'pump-ev', version);
    expect(record.evaluation.description).toMatch(/\(5 episodes\)/);
    expect(record.decision.promoted).toBe(true);

    const all = await evaluations('pump-ev', version);
    expect(all).toHaveLength(2);
    const again = all.find((e) => e.name !== one!.name)!;
    expect(one!.record).toMatchObject({ kind: 'evaluation', version, sha256: record.model.sha256, decision: { promoted: true }, evaluation: { criterion: 'labels', championVersion: null } });
    expect(one!.record.evaluation.description).toMatch(/\(5 episodes\)/);
    expect(one!.record.evaluation).toEqual(record.evaluation);
    expect(again.record).toMatchObject({ kind: 'evaluation', version, decision: { promoted: false }, evaluation: { criterion: 'labels', championVersion: version }, trainer: record.trainer, data: { from: record.data.from, to: record.data.to } });
    expect(again.record.evaluation.description).toMatch(/\(6 episodes\)/);
    expect(again.record.decision.reason).toBe(`the challenger is the live model itself (version ${version})`);
    expect(second.out.split('\n')).toContain(`  recorded model.json keeps its first evaluation (at ${record.createdAt}); this run's is in ${again.name}`);
  });
});
