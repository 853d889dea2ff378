/**
 * The trainer reads four PUMPWATCH_* variables; a misspelt one was ignored without a word. With
 * `PUMPWATCH_BLOB_CONTAINR` the job read (and would register models in) the default `pumpwatch`
 * container, saying nothing about why it found no readings. It now warns on stderr, naming the
 * variable it was near, never the value; the agent's own variables the container image sets
 * (PUMPWATCH_DATA_DIR, PUMPWATCH_HTTP_HOST, …) are no typo of the trainer's and get no word.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultContext } from '../../trainer/cloud/context.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { runTrainer, seedDays } from '../support/trainer.js';

let az: TestAzurite;

beforeAll(async () => {
  az = await startTestAzurite();
  // The fleet's readings are in its own container, which the misspelt variable was meant to name.
  const fleet = az.container('fleet-a');
  await fleet.create();
  await seedDays(fleet, 'pump-a', Date.UTC(2026, 0, 1), 1, 10, { count: 2_000 });
});

afterAll(async () => {
  await az?.dispose();
});

describe('pumpwatch-trainer with a misspelt PUMPWATCH_* variable', () => {
  it('warns, naming the variable it reads, before the run that misses the data for it', async () => {
    const env = {
      PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString,
      PUMPWATCH_BLOB_CONTAINR: 'fleet-a',
      // As the container image sets them for the agent:
      PUMPWATCH_DATA_DIR: '/data',
      PUMPWATCH_HTTP_HOST: '0.0.0.0',
      PUMPWATCH_HTTP_PORT: '8080',
    };
    const run = await runTrainer(['train', '--source', 'pump-a', '--from', '2026-01-01', '--to', '2026-01-02'], defaultContext(env));
    const lines = run.err.split('\n');
    expect(lines[0]).toBe('pumpwatch-trainer: warning: PUMPWATCH_BLOB_CONTAINR is not a variable the trainer reads and is ignored: did you mean PUMPWATCH_BLOB_CONTAINER?');
    expect(run.err).not.toMatch(/PUMPWATCH_(DATA_DIR|HTTP_HOST|HTTP_PORT)/);
    expect(run.err).not.toContain('fleet-a'); // the value is never said
    // It used the default container, as the warning says: not there in this account.
    expect(lines.at(-1)).toBe('pumpwatch-trainer train: PW_TRAINER_STORAGE: reading the readings of "pump-a" failed: Blob Storage answered 404 ContainerNotFound');
    expect(run.code).toBe(1);
  });

  it('says nothing when every PUMPWATCH_* variable is one it reads or the agent\'s', async () => {
    const env = { PUMPWATCH_BLOB_CONNECTION_STRING: az.connectionString, PUMPWATCH_BLOB_CONTAINER: 'fleet-a', PUMPWATCH_DATA_DIR: '/data', PUMPWATCH_LOG_LEVEL: 'info' };
    // A range without readings: the run fails at once, having read its settings.
    const run = await runTrainer(['train', '--source', 'pump-a', '--from', '2025-01-01', '--to', '2025-01-02'], defaultContext(env));
    expect(run.err).toContain('pumpwatch-trainer train: PW_TRAINER_NO_DATA: no readings of "pump-a"');
    expect(run.err).not.toContain('warning');
  });
});
