/**
 * The bundled default model's version names one content. Readings uploaded to the cloud name only
 * the model version that scored them, so two bundled models under one version (as `default-1` was
 * four times, before 2026-12-07) make their scores impossible to tell apart. A new bundled model
 * (agent/assets/make-default-model.sh) takes a new version and a new row here.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { bundledModelPath } from '../../agent/paths.js';
import { readModelMetadata } from '../../inference/contract.js';

/** Every version a bundled default model has had, with the sha256 of its file. */
const BUNDLED: Record<string, string> = {
  'default-2': '2e3a242c958c5719c5abaf52763bedf2547f1d57625bf88ac01b4b1df0cb89bf',
};

describe('the bundled default model', () => {
  it('has a version of its own, never one an earlier bundled model had', () => {
    const bytes = readFileSync(bundledModelPath());
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    const { version } = readModelMetadata(bytes);
    expect(version).not.toBe('default-1'); // the four different models before 2026-12-07
    expect(
      BUNDLED[version],
      `agent/assets/default-model.onnx (sha256 ${sha256}) is version ${version}: a changed model needs a new --version in make-default-model.sh and a row in BUNDLED`,
    ).toBe(sha256);
  });
});
