/**
 * The registry's own container (trainer/cloud/context.ts) and a training run that cannot create
 * it. A connection string creates it at need; a SAS URL cannot create a container, and `train`
 * used to find that out at its first write, after loading and fitting a whole range. It now checks
 * the container before it reads any data, and says how to make it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultContext } from '../../trainer/cloud/context.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { runTrainer, seedDays } from '../support/trainer.js';

let az: TestAzurite;
const RANGE = ['--from', '2026-01-01', '--to', '2026-01-03'];

beforeAll(async () => {
  az = await startTestAzurite();
  const uploads = az.container('fleet-r');
  await uploads.create();
  await seedDays(uploads, 'pump-r', Date.UTC(2026, 0, 1), 2, 10, { count: 4_000 });
  await seedDays(uploads, 'pump-s', Date.UTC(2026, 0, 1), 2, 10, { count: 4_000 });
});

afterAll(async () => {
  await az?.dispose();
});

/** The trainer as a job with SAS URLs only: the uploads' container, and a registry container nobody made. */
const sasEnv = (models: string) => ({
  PUMPWATCH_BLOB_SAS_URL: az.containerSasUrl('fleet-r', 'rl'),
  PUMPWATCH_MODELS_SAS_URL: az.containerSasUrl(models, 'racwl'),
});

describe("train with a registry container that does not exist", () => {
  it('refuses at once with a SAS URL, before reading or fitting, saying how to create it', async () => {
    const run = await runTrainer(['train', '--source', 'pump-r', ...RANGE], defaultContext(sasEnv('models-nobody-made')));
    const last = run.err.trim().split('\n').at(-1);
    expect(last).toBe(
      `pumpwatch-trainer train: PW_TRAINER_STORAGE: creating the registry's container "models-nobody-made", which does not exist, failed: Blob Storage answered 403 AuthorizationPermissionMismatch; ` +
        'a SAS URL cannot create a container: create it once (e.g. `az storage container create --name models-nobody-made`) or give PUMPWATCH_BLOB_CONNECTION_STRING',
    );
    // Nothing was read or fitted before the refusal.
    expect(run.err).not.toMatch(/reading|fitting|loaded/i);
    expect(run.err).not.toContain('sig='); // the SAS's signature is never said
    expect(run.code).toBe(1);
    expect(await az.container('models-nobody-made').exists()).toBe(false);
  });

  it('train-all refuses the same way, once, before any source', async () => {
    const run = await runTrainer(['train-all', ...RANGE], defaultContext(sasEnv('models-nobody-made')));
    expect(run.err.match(/creating the registry's container/g)).toHaveLength(1);
    expect(run.err).not.toMatch(/pump-[rs]: FAILED/);
    expect(run.out).not.toMatch(/pump-[rs]: (promoted|kept)/);
    expect(run.code).not.toBe(0);
  });

  it('trains into it once it exists, with the same SAS', async () => {
    await az.container('models-made-first').create();
    const run = await runTrainer(['train', '--source', 'pump-r', ...RANGE], defaultContext(sasEnv('models-made-first')));
    expect(run.out).toContain('pump-r: promoted');
    expect(run.code).toBe(0);
  });

  it('creates it with a connection string before reading, as the first version would', async () => {
    const env = { PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString, PUMPWATCH_BLOB_CONTAINER: 'fleet-r', PUMPWATCH_MODELS_CONTAINER: 'models-by-key' };
    const run = await runTrainer(['train', '--source', 'pump-s', ...RANGE], defaultContext(env));
    expect(run.out).toContain('pump-s: promoted');
    expect(await az.container('models-by-key').exists()).toBe(true);
  });
});
