/**
 * The trainer and the agent find the same pauses in a pump's readings, on a pump whose rate
 * changes within the range loaded: one reading a second, then one every 8 s, then one every 10 s.
 * The agent judges a step against the median of the pump's recent intervals (its last 31); before
 * 2026-12-06 the trainer judged it against the median of the whole range (8 s here: any step over
 * 80 s), so a 70 s step in the 1 Hz stretch was a pause to the agent only (its window started
 * again; the trainer carried a value across it and trained on rows the agent cannot score) and a
 * 90 s step in the 10 s stretch a pause to the trainer only (it dropped rows the agent scores and
 * cut its windows where the agent's go on). Real blobs in Azurite read by the trainer's
 * prepareData, and the agent's engine on a model the trainer fitted.
 */
import type { ContainerClient } from '@azure/storage-blob';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { PredictionRow, Reading } from '../../buffer/types.js';
import { InferenceEngine } from '../../inference/engine.js';
import { LoadedModel } from '../../inference/model.js';
import type { Prepared } from '../../trainer/train/prepare.js';
import { startTestAzurite, type TestAzurite } from '../support/azurite.js';
import { makeModel } from '../support/models.js';
import { readingsWithStops } from '../support/stops.js';
import { preparedReadings } from '../support/trainer.js';

const T0 = Date.UTC(2026, 4, 1);
const N = 2700;
const WINDOW = 3;
/** A pause to the agent only: 70 s after a minute of readings a second (its limit there: 60 s). */
const AGENT_PAUSE = 600;
/** A pause to the old trainer only: 90 s after a minute of readings every 10 s (the agent's limit there: 100 s). */
const TRAINER_PAUSE = 2100;

/** The interval before reading i (i ≥ 1). */
function intervalBefore(i: number): number {
  if (i === AGENT_PAUSE) return 70_000;
  if (i === TRAINER_PAUSE) return 90_000;
  if (i < 1200) return 1000;
  return i < 1500 ? 8000 : 10_000;
}

/** The pump's readings; the flow meter silent in the three readings after each long step. */
function readings(): Reading[] {
  let ts = T0;
  const rs = readingsWithStops(N, () => false, { pumpId: 'pump-rate', start: T0 }).map((r, i) => {
    if (i > 0) ts += intervalBefore(i);
    return { ...r, ts };
  });
  for (const p of [AGENT_PAUSE, TRAINER_PAUSE]) for (let i = p; i < p + 3; i++) rs[i] = { ...rs[i]!, values: { ...rs[i]!.values, Flow: null } };
  return rs;
}

let az: TestAzurite;
let container: ContainerClient;
let prepared: Prepared;
let scored: PredictionRow[];

beforeAll(async () => {
  az = await startTestAzurite();
  container = az.container('trainer-pause-rule');
  await container.create();
  const rs = readings();
  prepared = await preparedReadings(container, rs, { source: 'pump-rate', from: T0, to: rs.at(-1)!.ts + 1 });
  const model = await LoadedModel.fromBytes(makeModel({ version: 'rate', window: WINDOW }), 'rate');
  try {
    const engine = new InferenceEngine();
    engine.setModel('default', model);
    scored = [];
    for (let i = 0; i < rs.length; i += 50) scored.push(...(await engine.score(rs.slice(i, i + 50), 0)));
  } finally {
    await model.release();
  }
}, 120_000);

afterAll(async () => {
  await az?.stop();
});

/** Reading index of each cleaned (training) row. */
function keptReadings(): number[] {
  const index = new Map(readings().map((r, i) => [r.ts, i]));
  return prepared.cleaned.series.timestamps.map((ts) => index.get(ts)!);
}

describe('the pause rule of the trainer and the agent on a pump whose rate changes', () => {
  it("starts the trainer's segments at the readings where the agent's window starts again", () => {
    // The agent's window restarts: the first reading of a fresh window.
    const restarts = scored.flatMap((row, i) => (row.unscoredReason === `window filling: 1 of ${WINDOW} readings` ? [i] : []));
    expect(restarts).toEqual([0, AGENT_PAUSE + 3]);
    const kept = keptReadings();
    // before the fix: [0, 2103] (the 70 s step unseen, the 90 s one a pause)
    expect(prepared.cleaned.segmentStarts.map((k) => kept[k])).toEqual(restarts);
    expect(prepared.cleaned.stats).toMatchObject({ gaps: 1, gapsByCleaning: 0 });
  });

  it('keeps the rows the agent puts in its windows, and gives full windows to the rows it scores', () => {
    const kept = keptReadings();
    const inWindow = scored.flatMap((row, i) => (row.score !== null || row.unscoredReason?.startsWith('window filling') ? [i] : []));
    // before the fix: 600-602 kept (the flow read 70 s before carried into them), 2100-2102 dropped
    expect(kept).toEqual(inWindow);
    expect(kept).toHaveLength(N - 3);
    for (let i = AGENT_PAUSE; i < AGENT_PAUSE + 3; i++) expect(scored[i]!.unscoredReason, `reading ${i}`).toBe('no value known yet for feature "Flow"');
    for (let i = TRAINER_PAUSE; i < TRAINER_PAUSE + 3; i++) expect(scored[i]!.imputed, `reading ${i}`).toBe(true);
    // A row is scored by the trainer's windows when WINDOW - 1 rows of its segment come before it.
    const starts = prepared.cleaned.segmentStarts;
    const full = kept.filter((_, k) => k - Math.max(...starts.filter((s) => s <= k)) >= WINDOW - 1);
    expect(full).toEqual(scored.flatMap((row, i) => (row.score !== null ? [i] : [])));
  });
});
