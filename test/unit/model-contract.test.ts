/** Model contract 1's metadata as the agent reads it from a model file. */
import { describe, expect, it } from 'vitest';
import { MAX_WINDOW, metadataToProps, parseModelMetadata, type ModelMetadata } from '../../inference/contract.js';

const meta: ModelMetadata = {
  contract: 1,
  features: ['Pressure', 'Flow'],
  window: 10,
  threshold: 3.5,
  source: 'pump-1',
  version: 'v1',
  trainedAt: '2026-12-05T10:00:00.000Z',
  algorithm: 'mset',
  metrics: {},
};

describe('model contract 1 metadata', () => {
  it('reads back what the trainer writes', () => {
    expect(parseModelMetadata(metadataToProps(meta))).toEqual(meta);
  });

  it.each([0, 2.5, MAX_WINDOW + 1, 5_000_000])('refuses a window of %s readings, naming the allowed range (a huge one would make the agent allocate gigabytes)', (window) => {
    expect(() => parseModelMetadata(metadataToProps({ ...meta, window }))).toThrow(`model metadata "pumpwatch.window" must be an integer from 1 to ${MAX_WINDOW}, got "${window}"`);
  });

  it('takes the longest window allowed', () => {
    expect(parseModelMetadata(metadataToProps({ ...meta, window: MAX_WINDOW })).window).toBe(MAX_WINDOW);
  });
});
