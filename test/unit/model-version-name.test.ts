/**
 * A model's default version name is its training date and 12 hex of the sha256 of its own bytes
 * written with an empty version: one name is one model. The name used to hash the data and some of
 * the options, so a run making other bytes from the same rows (other frozen-sensor bounds, or a
 * trainer writing models differently after an upgrade) got the same name, and the registry refused
 * it as "registered as another model".
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { readModelMetadata } from '../../inference/contract.js';
import { fitTable } from '../../trainer/fit.js';
import { TEST_FEATURES, trainingTable } from '../support/models.js';

const hex12 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex').slice(0, 12);

describe('the default model version name', () => {
  it('is the training date and the hash of the model written without a name, the same for the same rows', () => {
    const a = fitTable(trainingTable(), { source: 'pump-v' });
    const unnamed = fitTable(trainingTable(), { source: 'pump-v', version: '' });
    expect(a.metadata.version).toBe(`20260101-${hex12(unnamed.bytes)}`);
    expect(readModelMetadata(a.bytes).version).toBe(a.metadata.version);
    const again = fitTable(trainingTable(), { source: 'pump-v' });
    expect(again.metadata.version).toBe(a.metadata.version);
    expect(Buffer.from(again.bytes).equals(Buffer.from(a.bytes))).toBe(true);
    // The agent's first models put `gw-` before the same name.
    expect(fitTable(trainingTable(), { source: 'pump-v', versionPrefix: 'gw-' }).metadata.version).toBe(`gw-${a.metadata.version}`);
  });

  it('differs when the same rows give other bytes (here other frozen-sensor bounds, which the old name did not hash)', () => {
    const a = fitTable(trainingTable(), { source: 'pump-v' });
    const bounds = Object.fromEntries(TEST_FEATURES.map((f) => [f, 10_000]));
    const b = fitTable(trainingTable(), { source: 'pump-v', stuckAfter: bounds });
    expect(Buffer.from(b.bytes).equals(Buffer.from(a.bytes))).toBe(false);
    expect(b.metadata.version).not.toBe(a.metadata.version);
  });

  it('is the one given with --version, unchanged', () => {
    expect(fitTable(trainingTable(), { source: 'pump-v', version: 'v7' }).metadata.version).toBe('v7');
  });
});
