/**
 * The speed check of model validation (PW_MODEL_TOO_SLOW) times the model, not the agent's other
 * work: onnxruntime-node starts a run from setImmediate, so whatever else the main thread does
 * before it (a large commit, a body being parsed) must not count against the model.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { LoadedModel } from '../../inference/model.js';
import { MAX_MS_PER_WINDOW, validateModel, type RecentByPump } from '../../inference/validate.js';
import { makeModel } from '../support/models.js';
import { slowModel } from '../support/broken-models.js';

let busy: NodeJS.Immediate | null = null;
afterEach(() => {
  if (busy) clearImmediate(busy);
  busy = null;
});

/** Other main-thread work: one task of `ms` after another, each one queued behind the last. */
function keepMainThreadBusy(ms: number): void {
  const task = (): void => {
    const end = performance.now() + ms;
    while (performance.now() < end);
    busy = setImmediate(task);
  };
  busy = setImmediate(task);
}

const none: RecentByPump = new Map();

describe('validateModel speed budget on a busy main thread', () => {
  it('accepts a fast model while other work holds the main thread for longer than the budget at a time', async () => {
    const model = await LoadedModel.fromBytes(makeModel({ version: 'busy-1' }), 'test');
    try {
      await validateModel(model, none); // warm
      keepMainThreadBusy(MAX_MS_PER_WINDOW * 2 + 10);
      await expect(validateModel(model, none)).resolves.toMatchObject({ windows: 0 });
    } finally {
      await model.release();
    }
  });

  it('still refuses a model that is slow by itself', async () => {
    const model = await LoadedModel.fromBytes(slowModel('busy-slow'), 'test');
    try {
      await expect(validateModel(model, none)).rejects.toMatchObject({ code: 'PW_MODEL_TOO_SLOW' });
    } finally {
      await model.release();
    }
  });
});
