/**
 * A best.json that cannot be read (not JSON, another source's): every command refused it with
 * "best.json is not JSON" and nothing more, and `rollback --version V`, the documented repair of a
 * lost best.json, refused it the same way; only deleting the blob by hand led on. The refusal now
 * names the repair, and `rollback --version` replaces the unreadable blob (on its ETag).
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBest } from '../../trainer/registry/read.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { lastLine, runTrainer, seedDays, trainerContext } from '../support/trainer.js';

const T0 = Date.UTC(2026, 0, 1);
const NOW = new Date(Date.UTC(2026, 0, 5, 12));
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-03'];
let az: TestAzurite;
let container: ContainerClient;
let models: ContainerClient;

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('pumpwatch');
  models = az.container('pumpwatch-models');
  await container.create();
  await models.create();
  await seedDays(container, 'pump-c', T0, 1, 10);
  await seedDays(container, 'pump-d', T0, 1, 10);
});

afterAll(async () => {
  await az?.dispose();
});

const put = (name: string, body: string) => models.getBlockBlobClient(name).upload(body, Buffer.byteLength(body));

describe('a best.json that cannot be read', () => {
  it('is refused with the rollback that replaces it, naming the version last made best, and that rollback repairs it', async () => {
    const ctx = trainerContext(container, { now: NOW, models });
    const first = await runTrainer(['train', '--source', 'pump-c', ...RANGE], ctx);
    expect(first.code, first.err).toBe(0);
    const version = /promoted (\S+)/.exec(first.out)![1]!;
    await put('models/pump-c/best.json', '{not json');

    const train = await runTrainer(['train', '--source', 'pump-c', ...RANGE], ctx);
    expect(train.code).toBe(1);
    expect(lastLine(train.err)).toBe(
      'pumpwatch-trainer train: PW_TRAINER_REGISTRY_INVALID: models/pump-c/best.json is not JSON: nothing is compared, promoted or rolled back while it cannot be read. ' +
        `Restore it from a copy, or replace it with: pumpwatch-trainer rollback --source pump-c --version ${version} --no-deploy ` +
        `(it checks that version's model.onnx and replaces the unreadable best.json, unless it changed meanwhile; ${version}, the version the model.json records show made best last (promoted by train at ${NOW.toISOString()}): check that it was the live one)`,
    );
    // a plain rollback (no --version) still refuses: it would need the history the blob held
    expect((await runTrainer(['rollback', '--source', 'pump-c', '--no-deploy'], ctx)).code).toBe(1);

    const rb = await runTrainer(['rollback', '--source', 'pump-c', '--version', version, '--no-deploy'], ctx);
    expect(rb.code, rb.err).toBe(0);
    const best = await readBest(models, 'pump-c');
    expect(best!.pointer).toMatchObject({ source: 'pump-c', version, reason: `best.json restored by rollback --version ${version} (it was unreadable)` });
    const again = await runTrainer(['train', '--source', 'pump-c', ...RANGE], ctx);
    expect(again.code, again.err).toBe(0);
  });

  it("names another source's best.json as unreadable too, and replaces only the blob it read", async () => {
    const ctx = trainerContext(container, { now: NOW, models });
    const first = await runTrainer(['train', '--source', 'pump-d', ...RANGE], ctx);
    expect(first.code, first.err).toBe(0);
    const version = /promoted (\S+)/.exec(first.out)![1]!;
    const other = (await models.getBlockBlobClient('models/pump-c/best.json').downloadToBuffer()).toString('utf8');
    await put('models/pump-d/best.json', other);
    const drift = await runTrainer(['drift', '--source', 'pump-d', ...RANGE], ctx);
    expect(lastLine(drift.err)).toMatch(/^pumpwatch-trainer drift: PW_TRAINER_REGISTRY_INVALID: models\/pump-d\/best\.json names source "pump-c", not "pump-d": .* rollback --source pump-d --version /);
    const rb = await runTrainer(['rollback', '--source', 'pump-d', '--version', version, '--no-deploy'], ctx);
    expect(rb.code, rb.err).toBe(0);
    expect((await readBest(models, 'pump-d'))!.pointer.version).toBe(version);
  });
});
