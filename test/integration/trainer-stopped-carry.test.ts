/**
 * The trainer's carry-forward and a pump's stops: a value missing just after a stop is never
 * carried into a training row from the stop (a stopped pump's 0 l/min) nor from before it, as the
 * agent's window, started again after a stop, holds neither. Real blobs in Azurite read by the
 * trainer's prepareData, and the agent's engine on a model the trainer fitted with the same rule.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reading } from '../../buffer/types.js';
import type { StoppedRule } from '../../inference/contract.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import type { Prepared } from '../../trainer/train/prepare.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { readingsWithStops, silence, stopModels } from '../support/stops.js';
import { preparedReadings } from '../support/trainer.js';

/** No warm-up: the first readings after a stop are scored by the agent (and trained on) at once. */
const RULE: StoppedRule = { when: [{ feature: 'Current', below: 0.5 }], afterStartSeconds: 0 };
const T0 = Date.UTC(2026, 4, 1);
const N = 900;
const STOPPED = (i: number) => (i >= 200 && i < 210) || (i >= 400 && i < 404) || i === 600;

/**
 * One reading a second, running but for a stop at 200-209 (the flow meter silent at 210-212, just
 * after the start), a stop at 400-403 with the pressure transmitter silent at 395-405 (across it),
 * and a glitch (one stopped reading: no stop that counts) at 600, the flow silent at 601; the flow
 * silent at 700-702 on the running pump (no stop near: carried as always).
 */
function readings(): Reading[] {
  const rs = readingsWithStops(N, STOPPED, { pumpId: 'pump-carry', start: T0 });
  silence(rs, 'Flow', [210, 211, 212, 601, 700, 701, 702]);
  silence(rs, 'Pressure', Array.from({ length: 11 }, (_, k) => 395 + k));
  return rs;
}

let az: TestAzurite;
let container: ContainerClient;
let prepared: Prepared;

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-stopped-carry');
  await container.create();
  prepared = await preparedReadings(container, readings(), { source: 'pump-carry', from: T0, to: T0 + N * 1000 }, { stoppedWhen: RULE });
}, 60_000);

afterAll(async () => {
  await az?.stop();
});

/** The cleaned (training) rows by reading index: feature name to value. */
function trainingRows(): Map<number, Record<string, number>> {
  const { series } = prepared.cleaned;
  return new Map(series.timestamps.map((ts, k) => [(ts - T0) / 1000, Object.fromEntries(series.features.map((f, j) => [f, series.rows[k]![j]!]))]));
}

describe("the trainer's carry-forward at a stop", () => {
  it('carries no value from a stop, nor from before it, into a training row after it: such a row is dropped as missing that value', () => {
    const kept = trainingRows();
    // before the fix: 210-212 trained on with the stopped pump's 0 l/min (a running pump with no flow), 601 too (after a
    // one-reading glitch), and 404-405 on the pressure read before the stop at 400-403
    for (const i of [210, 211, 212, 404, 405, 601]) expect(kept.has(i), `reading ${i}`).toBe(false);
    for (const i of [213, 406, 602]) expect(kept.has(i), `reading ${i}`).toBe(true);
    expect(prepared.cleaned.stats.droppedMissing).toBe(6);
    expect(prepared.cleaned.stats.missingByFeature).toMatchObject({ Flow: 4, Pressure: 2 });
    expect([...kept.values()].filter((v) => v.Flow! < 5)).toEqual([]);
  });

  it('still carries a value on a running pump, no stop in between', () => {
    const kept = trainingRows();
    for (const i of [700, 701, 702]) expect(kept.get(i)?.Flow, `reading ${i}`).toBe(kept.get(699)!.Flow);
    // and before a stop: the pressure read at 394 carried into 395-399, the running readings before the stop at 400
    for (let i = 395; i < 400; i++) expect(kept.get(i)?.Pressure, `reading ${i}`).toBe(kept.get(394)!.Pressure);
  });

  it('keeps the rows the agent scores with the values it scores them on: the agent (its window started again after the stop) cannot score those readings either', async () => {
    const model = await LoadedModel.fromBytes(stopModels({ version: 'carry', window: 1, rule: RULE }).withRule, 'carry');
    try {
      const engine = new InferenceEngine();
      engine.setModel('default', model);
      const rs = readings();
      const rows = [];
      for (let i = 0; i < rs.length; i += 50) rows.push(...(await engine.score(rs.slice(i, i + 50), 0)));
      for (const i of [210, 211, 212, 601]) expect(rows[i]!.unscoredReason, `reading ${i}`).toBe('no value known yet for feature "Flow"');
      for (const i of [404, 405]) expect(rows[i]!.unscoredReason, `reading ${i}`).toBe('no value known yet for feature "Pressure"');
      for (const i of [700, 701, 702, 395]) expect(rows[i]!.imputed, `reading ${i}`).toBe(true);
    } finally {
      await model.release();
    }
  });
});
