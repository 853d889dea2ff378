import { ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FULL_CYCLE_MS, readModelMetadata, trainingSpan } from '../../inference/contract.js';
import { parseDate, parseOptions, timeRange } from '../../trainer/commands/command.js';
import { parseShard, trainAllCommand } from '../../trainer/commands/train-all.js';
import { TRAIN_OPTIONS, trainRequest } from '../../trainer/commands/train.js';
import type { Cleaned } from '../../trainer/data/clean.js';
import { readOnlyUrl } from '../../trainer/deploy/sas.js';
import { defaultQuery } from '../../trainer/deploy/twin.js';
import { runCli } from '../../trainer/commands/index.js';
import { countAlarms } from '../../trainer/eval/alarms.js';
import { FAULT_SIZES, faultSpreads, formatEvaluation, HELD_OUT_ROWS, MIN_LABELLED_EPISODES, MIN_LABELLED_ROWS, PLACEMENTS, planEvaluation, RANGE_ROWS, rates, type Evaluation } from '../../trainer/eval/criterion.js';
import { spanWarnings } from '../../trainer/fit.js';
import { createProgress } from '../../trainer/progress.js';
import { nextPointer, type BestPointer, type ModelRecord } from '../../trainer/registry/records.js';
import { labelSpans, renderReport } from '../../trainer/report/report.js';
import { decide, PAIRED_RULE } from '../../trainer/train/decide.js';
import { evaluationWarnings } from '../../trainer/train/warnings.js';
import { inShard, shardOf } from '../../trainer/train/sources.js';
import { makeModel } from '../support/models.js';

const evaluation = (score: number, far = 1, mar = 10, tp = 9): Evaluation => ({
  criterion: 'synthetic-faults',
  metric: 'balanced-accuracy',
  score,
  f1: score,
  far,
  mar,
  counts: { tp, fp: 1, fn: 1, tn: 99 },
  threshold: 3,
});
const rule = { margin: 0.01, maxFar: 5 };

function cleaned(n: number, targets: Cleaned['targets'] = []): Cleaned {
  return {
    series: { features: ['a', 'b'], timestamps: Array.from({ length: n }, (_, i) => i * 1000), rows: Array.from({ length: n }, (_, i) => Float64Array.of(i % 5, 1)) },
    targets: Array.from({ length: n }, (_, i) => targets[i] ?? null),
    segmentStarts: [0],
    stats: {} as Cleaned['stats'],
  };
}

describe('the promotion decision', () => {
  it('promotes the first model, a better one by the margin, and one facing a live model that cannot score', () => {
    const c = { version: 'v2', evaluation: evaluation(0.9) };
    expect(decide(c, null, rule)).toMatchObject({ promoted: true, reason: 'no model was promoted for this source yet' });
    expect(decide(c, { version: 'v1', evaluation: evaluation(0.88) }, rule).promoted).toBe(true);
    expect(decide(c, { version: 'v1', evaluation: evaluation(0.895) }, rule)).toMatchObject({
      promoted: false,
      reason:
        'not better by the margin: synthetic-faults: challenger balanced accuracy 0.9000 (F1 0.9000, FAR 1.00 %, MAR 10.00 %) ' +
        'vs live balanced accuracy 0.8950 (F1 0.8950, FAR 1.00 %, MAR 10.00 %), margin 0.01, false-alarm ceiling 5 %',
      margin: 0.01,
      maxFar: 5,
      maxAlarmsPerDay: 1,
    });
    expect(decide(c, null, rule, 'it needs Flow').reason).toMatch(/cannot be scored .*needs Flow/);
    expect(decide(c, { version: 'v2', evaluation: evaluation(0.1) }, rule)).toMatchObject({ promoted: false, reason: expect.stringMatching(/is the live model itself/) });
  });

  it('never promotes a challenger of an older range than the live model, even a better one, and keeps the figures in the reason', () => {
    const c = { version: 'v2', evaluation: evaluation(0.9) };
    const older = { newest: '2026-01-02T23:59:50.000Z', liveVersion: 'v1', liveNewest: '2026-01-04T23:59:50.000Z' };
    expect(decide(c, { version: 'v1', evaluation: evaluation(0.5) }, rule, undefined, older)).toEqual({
      promoted: false,
      reason:
        "older data: its newest reading (2026-01-02T23:59:50.000Z) is older than the newest of live model v1's data (2026-01-04T23:59:50.000Z); older data never replaces a newer model (--allow-older to compare as usual); " +
        'on the held-out rows: synthetic-faults: challenger balanced accuracy 0.9000 (F1 0.9000, FAR 1.00 %, MAR 10.00 %) vs live balanced accuracy 0.5000 (F1 0.5000, FAR 1.00 %, MAR 10.00 %), margin 0.01, false-alarm ceiling 5 %',
      margin: 0.01,
      maxFar: 5,
      maxAlarmsPerDay: 1,
    });
    expect(decide(c, null, rule, 'it needs Flow', older)).toMatchObject({ promoted: false, reason: expect.stringMatching(/^older data: .*; the live model cannot be scored on them \(it needs Flow\)$/) });
    expect(decide(c, { version: 'v2', evaluation: evaluation(0.9) }, rule, undefined, older).reason).toMatch(/is the live model itself/);
  });

  it('replaces a live model above the false-alarm ceiling by a challenger within it, whatever their balanced accuracy', () => {
    // The review's case: the live model, trained at another operating point, flags half of the normal rows.
    const live = { version: 'v1', evaluation: evaluation(0.7252, 49.7, 5) };
    const c = { version: 'v2', evaluation: evaluation(0.607, 0, 78.59) };
    expect(decide(c, live, rule)).toEqual({
      promoted: true,
      reason:
        'the live model flags 49.70 % of the normal held-out rows, above the false-alarm ceiling of 5 % (--max-far), and the challenger 0.00 %, within it: ' +
        'synthetic-faults: challenger balanced accuracy 0.6070 (F1 0.6070, FAR 0.00 %, MAR 78.59 %) vs live balanced accuracy 0.7252 (F1 0.7252, FAR 49.70 %, MAR 5.00 %), margin 0.01, false-alarm ceiling 5 %',
      margin: 0.01,
      maxFar: 5,
      maxAlarmsPerDay: 1,
    });
    // A ceiling above the live model's false alarms: the score decides, and the live model stays.
    expect(decide(c, live, { margin: 0.01, maxFar: 50 })).toMatchObject({ promoted: false, reason: expect.stringMatching(/^not better by the margin: /), maxFar: 50 });
    // A challenger that flags no positive at all would silence the pump: compared as usual.
    expect(decide({ version: 'v2', evaluation: evaluation(0.5, 0, 100, 0) }, live, rule)).toMatchObject({ promoted: false, reason: expect.stringMatching(/^not better by the margin: /) });
  });

  it('never promotes a challenger above the false-alarm ceiling over a live model within it, and compares by score when both are above', () => {
    const c = { version: 'v2', evaluation: evaluation(0.95, 8, 2) };
    expect(decide(c, { version: 'v1', evaluation: evaluation(0.6, 1, 79) }, rule)).toMatchObject({
      promoted: false,
      reason: expect.stringMatching(/^the challenger flags 8\.00 % of the normal held-out rows, above the false-alarm ceiling of 5 % \(--max-far\), and the live model 1\.00 %, within it: /),
    });
    expect(decide(c, { version: 'v1', evaluation: evaluation(0.6, 30, 50) }, rule)).toMatchObject({
      promoted: true,
      reason: expect.stringMatching(/^better on the held-out rows \(both flag more normal rows than the false-alarm ceiling allows\): /),
    });
    // At the ceiling is within it.
    expect(decide({ version: 'v2', evaluation: evaluation(0.6, 5, 79) }, { version: 'v1', evaluation: evaluation(0.9, 5.01, 2) }, rule).promoted).toBe(true);
  });
});

describe('the promotion decision on synthetic faults, placement by placement', () => {
  const placed = (placements: number[]): Evaluation => ({ ...evaluation(placements.reduce((a, b) => a + b, 0) / placements.length), placements });
  const live = { version: 'v1', evaluation: placed([0.7, 0.72, 0.68, 0.7]) };

  it('promotes a challenger better by the margin on average and in a way the placements cannot explain, and records the paired figures', () => {
    const d = decide({ version: 'v2', evaluation: placed([0.72, 0.735, 0.7, 0.715]) }, live, rule);
    expect(d).toMatchObject({ promoted: true, paired: { placements: 4, mean: 0.0175, sd: 0.002887, rule: PAIRED_RULE } });
    expect(d.reason).toMatch(/^better on the held-out rows: .*; paired over 4 placements of the synthetic faults: challenger − live \+0\.0175 on average \(SD 0\.0029, SE 0\.0014; rule: mean paired difference >= margin and mean - 2 SE > 0\)$/);
  });

  it('keeps the live model when the mean difference reaches the margin but the placements disagree (one block more or less moved it)', () => {
    const d = decide({ version: 'v2', evaluation: placed([0.79, 0.67, 0.76, 0.64]) }, live, rule);
    expect(d.paired?.mean).toBeCloseTo(0.015, 6);
    expect(d).toMatchObject({ promoted: false, reason: expect.stringMatching(/^not better beyond the noise of the fault placements: .*SE 0\.0405/) });
  });

  it('keeps the live model when the mean difference is below the margin, however steady', () => {
    const d = decide({ version: 'v2', evaluation: placed([0.705, 0.725, 0.685, 0.705]) }, live, rule);
    expect(d).toMatchObject({ promoted: false, reason: expect.stringMatching(/^not better by the margin: /) });
  });

  it('compares the scores as before with labels (no placements), and records no paired figures', () => {
    const labels = (score: number): Evaluation => ({ ...evaluation(score), criterion: 'labels' });
    const d = decide({ version: 'v2', evaluation: labels(0.9) }, { version: 'v1', evaluation: labels(0.88) }, rule);
    expect(d.promoted).toBe(true);
    expect(d.paired).toBeUndefined();
  });
});

describe('the promotion decision on false alarms counted as runs of flags', () => {
  const withAlarms = (e: Evaluation, runs: number, hours: number): Evaluation => ({ ...e, alarms: { runs, hours } });

  it('never promotes a challenger that flickers (few rows flagged, many runs) over a live model within both ceilings, and replaces a flickering live model', () => {
    // 13 runs in 9.6 h of normal held-out running, 0.16 % of the rows: the first model's case on the gateway.
    const flicker = withAlarms(evaluation(0.95, 0.16, 2), 13, 9.62);
    const quiet = withAlarms(evaluation(0.7, 0.02, 40), 1, 9.62);
    expect(decide({ version: 'v2', evaluation: flicker }, { version: 'v1', evaluation: quiet }, rule)).toEqual({
      promoted: false,
      reason:
        'the challenger would raise 13 false alarms (runs of flagged readings) in 9.62 h of running, 32.4 a day on the normal held-out rows (0.16 % of them flagged): ' +
        'more than a model raising 1 a day would (p < 0.01) (--max-alarms-per-day), and the live model 0.02 % (1 false alarm in 9.62 h), within it: ' +
        'synthetic-faults: challenger balanced accuracy 0.9500 (F1 0.9500, FAR 0.16 %, MAR 2.00 %) vs live balanced accuracy 0.7000 (F1 0.7000, FAR 0.02 %, MAR 40.00 %), margin 0.01, false-alarm ceiling 5 %',
      margin: 0.01,
      maxFar: 5,
      maxAlarmsPerDay: 1,
    });
    expect(decide({ version: 'v2', evaluation: quiet }, { version: 'v1', evaluation: flicker }, rule)).toMatchObject({
      promoted: true,
      reason: expect.stringMatching(/^the live model would raise 13 false alarms .* and the challenger 0\.02 % \(1 false alarm in 9\.62 h\), within it: /),
    });
    // Two runs in 9.6 h are within it (at least 3, and unlikely at one a day): the score decides.
    expect(decide({ version: 'v2', evaluation: withAlarms(evaluation(0.95, 0.16, 2), 2, 9.62) }, { version: 'v1', evaluation: quiet }, rule)).toMatchObject({
      promoted: true,
      reason: expect.stringMatching(/^better on the held-out rows: /),
    });
    // Both over: compared by score, and said so.
    expect(decide({ version: 'v2', evaluation: flicker }, { version: 'v1', evaluation: withAlarms(evaluation(0.6, 0.5, 40), 40, 9.62) }, rule)).toMatchObject({
      promoted: true,
      reason: expect.stringMatching(/^better on the held-out rows \(both raise more false alarms than the ceilings allow\): /),
    });
    // A live model's record without alarms (written before them) is judged on the share alone.
    expect(decide({ version: 'v2', evaluation: flicker }, { version: 'v1', evaluation: evaluation(0.7, 0.02, 40) }, rule).promoted).toBe(false);
    expect(decide({ version: 'v2', evaluation: evaluation(0.95, 0.16, 2) }, { version: 'v1', evaluation: quiet }, rule).promoted).toBe(true);
  });

  it('warns of a challenger over the alarm ceiling, promoted all the same with no live model', () => {
    const flicker = withAlarms(evaluation(0.95, 0.16, 2), 13, 9.62);
    expect(decide({ version: 'v2', evaluation: flicker }, null, rule).promoted).toBe(true);
    expect(evaluationWarnings(flicker, 5)).toEqual([
      'the challenger would raise 13 false alarms (runs of flagged readings) in 9.62 h of running, 32.4 a day on the normal held-out rows (0.16 % of them flagged): more than a model raising 1 a day would (p < 0.01) (--max-alarms-per-day)',
    ]);
    // --max-alarms-per-day 0: no alarm ceiling; 40 a day: 13 runs in 9.6 h are within it (16 expected).
    expect(evaluationWarnings(flicker, 5, 0)).toEqual([]);
    expect(evaluationWarnings(flicker, 5, 40)).toEqual([]);
    const quiet = withAlarms(evaluation(0.7, 0.02, 40), 1, 9.62);
    expect(decide({ version: 'v2', evaluation: flicker }, { version: 'v1', evaluation: quiet }, { ...rule, maxAlarmsPerDay: 0 })).toMatchObject({ promoted: true, maxAlarmsPerDay: 0 });
  });

  it('counts runs of flagged normal rows over their running hours: a row left out, a pause or a hole ends a run', () => {
    // Rows 10 s apart; row 5 left out (a label), a segment start at 8.
    const ts = Array.from({ length: 12 }, (_, i) => i * 10_000);
    const flags = [true, true, false, true, true, true, true, false, true, true, true];
    const rows = [0, 1, 2, 3, 4, 6, 7, 8, 9, 10, 11];
    // Runs: rows 0-1, 3-4, then 6-7 (a new run: row 5 was left out between 4 and 6), then 9-11: 4.
    // Hours: the 8 intervals of 10 s between consecutive rows, but 4→6 (a row left out) and 7→8 (a segment start).
    expect(countAlarms(flags, rows, ts, new Set([0, 8]))).toEqual({ runs: 4, hours: (8 * 10_000) / 3_600_000 });
    // Joined across the segment start, 6-11 would be one run.
    expect(countAlarms(flags.map((f, k) => f || rows[k] === 8), rows, ts, new Set([0, 8])).runs).toBe(4);
    expect(countAlarms(flags.map((f, k) => f || rows[k] === 8), rows, ts, new Set([0])).runs).toBe(3);
  });

  it('does not count a run that holds a confirmed row (a labelled fault\'s alert, flagged past the label), and counts the hours of normal rows only', () => {
    const ts = Array.from({ length: 10 }, (_, i) => i * 10_000);
    const rows = ts.map((_, i) => i);
    // Rows 3-5 confirmed; flags 2-7 (one run reaching into the fault from both sides), and 9.
    const flags = rows.map((i) => (i >= 2 && i <= 7) || i === 9);
    expect(countAlarms(flags, rows, ts, new Set([0]), new Set([3, 4, 5]))).toEqual({ runs: 1, hours: (5 * 10_000) / 3_600_000 });
    // Without the labels: two runs.
    expect(countAlarms(flags, rows, ts, new Set([0])).runs).toBe(2);
  });
});

describe('the training span warning', () => {
  const span = (trainFrom: string, trainTo: string) => spanWarnings({ metrics: { trainFrom, trainTo } });
  it('warns when the model was trained on less than a day, read from its metadata as the page reads it', () => {
    expect(span('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')).toEqual([]);
    expect(span('2026-01-01T00:00:00Z', '2026-01-01T23:59:00Z')).toEqual([expect.stringMatching(/^the trained rows span 23\.9 h, less than a day: .*train on a longer range$/)]);
    expect(span('2026-01-01T00:00:00Z', '2026-01-01T00:38:30Z')).toEqual([expect.stringMatching(/^the trained rows span 38 min, less than a day/)]);
    expect(span('2026-01-01T05:00:00Z', '2026-01-02T04:00:00Z')).toEqual([expect.stringMatching(/span 23\.0 h/)]);
    // The same model, the same verdict: the warning fires exactly when the page's line is highlighted.
    const model = readModelMetadata(makeModel());
    expect(trainingSpan(model)?.short).toBe(true);
    expect(spanWarnings(model)).toEqual([expect.stringMatching(/^the trained rows span 9 min, less than a day/)]);
  });

  it("names the check that cannot show the false alarms when the caller has one (train's comparison), and none for fit", () => {
    const meta = { metrics: { trainFrom: '2026-01-01T00:00:00Z', trainTo: '2026-01-01T00:06:00Z' } };
    expect(spanWarnings(meta)).toEqual([expect.stringMatching(/raises false alarms; train on a longer range$/)]);
    expect(spanWarnings(meta, 'the comparison on the most recent rows')).toEqual([
      expect.stringMatching(/raises false alarms that the comparison on the most recent rows cannot show; train on a longer range$/),
    ]);
  });

  it('says so when a model carries no readable training span', () => {
    expect(spanWarnings({ metrics: {} })).toEqual([expect.stringMatching(/^the model carries no training span .*unknown$/)]);
  });
});

describe('the training span a model carries', () => {
  it('is read from the metrics the trainer wrote into the model, and is short below a day', () => {
    // makeModel fits 600 readings one second apart from 2026-01-01T00:00:00Z.
    expect(trainingSpan(readModelMetadata(makeModel()))).toEqual({ from: '2026-01-01T00:00:00.000Z', to: '2026-01-01T00:09:59.000Z', spanMs: 599_000, short: true });
    const span = (trainFrom: unknown, trainTo: unknown) => trainingSpan({ metrics: { trainFrom, trainTo } });
    expect(span('2026-01-01T00:00:00Z', '2026-01-02T00:00:00Z')).toMatchObject({ spanMs: FULL_CYCLE_MS, short: false });
    expect(span('2026-01-01T00:00:01Z', '2026-01-02T00:00:00Z')).toMatchObject({ short: true });
  });

  it('is null when a model does not say, or says something that is not a range', () => {
    expect(trainingSpan({ metrics: {} })).toBeNull();
    expect(trainingSpan({ metrics: { trainFrom: '2026-01-01T00:00:00Z' } })).toBeNull();
    expect(trainingSpan({ metrics: { trainFrom: 'yesterday', trainTo: '2026-01-01T00:00:00Z' } })).toBeNull();
    expect(trainingSpan({ metrics: { trainFrom: 0, trainTo: 86_400_000 } })).toBeNull();
    expect(trainingSpan({ metrics: { trainFrom: '2026-01-02T00:00:00Z', trainTo: '2026-01-01T00:00:00Z' } })).toBeNull();
  });
});

describe('the comparison plan', () => {
  /** `episodes` runs of `rows` labelled fault rows each, from row `from`, 10 rows apart. */
  const faults = (from: number, episodes: number, rows: number): Cleaned['targets'] => {
    const targets: Cleaned['targets'] = [];
    for (let e = 0; e < episodes; e++) for (let i = 0; i < rows; i++) targets[from + e * (rows + 10) + i] = 'anomaly';
    return targets;
  };

  it('compares on fault labels when the held-out rows have enough of them: 50 rows in 5 episodes', () => {
    expect([MIN_LABELLED_ROWS, MIN_LABELLED_EPISODES]).toEqual([50, 5]);
    const plan = planEvaluation(cleaned(1000, faults(700, 5, 10)), 600, Float64Array.of(1, 1), 1, HELD_OUT_ROWS);
    expect(plan.criterion).toBe('labels');
    expect(plan.parts.map((p) => [p.positive, p.indices.length])).toEqual([
      [true, 50],
      [false, 350],
    ]);
  });

  it('keeps the synthetic faults, with the labelled rows as more positives, when the labels are too few: one alert, one long fault, or 49 rows', () => {
    for (const targets of [faults(700, 1, 1), faults(610, 1, 380), faults(700, 7, 7)]) {
      const labelled = targets.filter((t) => t === 'anomaly').length;
      const plan = planEvaluation(cleaned(1000, targets), 600, Float64Array.of(2, 0), 7, HELD_OUT_ROWS);
      expect(plan.criterion).toBe('synthetic-faults');
      const blocks = Array.from({ length: PLACEMENTS * FAULT_SIZES.length }, () => [true, 200]);
      expect(plan.parts.map((p) => [p.positive, p.indices.length])).toEqual([[false, 400 - labelled], ...blocks, [true, labelled]]);
      // The same blocks as without labels: the labels add positives, they do not move the faults.
      const unlabelled = planEvaluation(cleaned(1000), 600, Float64Array.of(2, 0), 7, HELD_OUT_ROWS);
      expect(plan.parts.slice(1, -1).map((p) => p.data.rows)).toEqual(unlabelled.parts.slice(1).map((p) => p.data.rows));
    }
  });

  it('puts synthetic faults only in the features the scored model watches', () => {
    const rows = Array.from({ length: 100 }, (_, i) => Float64Array.of(i % 5, i, NaN, 7));
    expect([...faultSpreads(rows, ['a', 'RunningHours', 'passive', 'flat'], ['a', 'flat'])]).toEqual([Math.sqrt(200 / 99), 0, 0, 0]);
  });

  it('otherwise injects one shifted block per varying feature and fault size in each placement, half of the placements up, half down, the same for the same seed', () => {
    const plan = planEvaluation(cleaned(1000), 600, Float64Array.of(2, 0), 7, HELD_OUT_ROWS);
    expect(plan.criterion).toBe('synthetic-faults');
    expect(plan.placements).toBe(PLACEMENTS);
    expect(plan.parts).toHaveLength(1 + PLACEMENTS * FAULT_SIZES.length);
    const [negatives, ...faults] = plan.parts;
    expect(negatives!.indices).toHaveLength(400);
    const signs = FAULT_SIZES.map(() => [] as number[]);
    faults.forEach((part, k) => {
      expect(part.placement).toBe(Math.floor(k / FAULT_SIZES.length));
      expect(part.indices).toHaveLength(200);
      // Feature a (values 0..4) is shifted up or down by the fault size times its std (2); b is untouched.
      const size = FAULT_SIZES[k % FAULT_SIZES.length]! * 2;
      const original = (r: Float64Array, sign: number) => r[0]! - sign * size;
      const sign = [1, -1].find((sg) => part.data.rows.every((r) => Number.isInteger(original(r, sg)) && original(r, sg) >= 0 && original(r, sg) <= 4));
      expect(sign).toBeDefined();
      signs[k % FAULT_SIZES.length]!.push(sign!);
      expect(part.data.rows.every((r) => r[1] === 1)).toBe(true);
    });
    // Per size, the placements alternate up and down.
    for (const bySize of signs) expect(bySize.every((sg, k) => k === 0 || sg === -bySize[k - 1]!)).toBe(true);
    const again = planEvaluation(cleaned(1000), 600, Float64Array.of(2, 0), 7, HELD_OUT_ROWS);
    expect(again.parts.map((p) => p.data.rows[0]![0])).toEqual(plan.parts.map((p) => p.data.rows[0]![0]));
  });

  it('puts placement k of the faults in the k-th of PLACEMENTS stretches of the held-out rows, so every run covers all of them whatever the seed', () => {
    // Feature b holds the row's index: it is not shifted (spread 0), and tells where a block was copied from.
    const data = cleaned(1000);
    data.series.rows.forEach((r, i) => (r[1] = i));
    for (const seed of [1, 2, 3]) {
      const starts = planEvaluation(data, 600, Float64Array.of(2, 0), seed, HELD_OUT_ROWS).parts.slice(1).map((p) => [p.placement!, p.data.rows[0]![1]!] as const);
      // 400 held-out rows, blocks of 200: 201 possible starts, from row 600.
      for (const [k, start] of starts) {
        expect(start - 600).toBeGreaterThanOrEqual(Math.floor((k * 201) / PLACEMENTS));
        expect(start - 600).toBeLessThan(Math.ceil(((k + 1) * 201) / PLACEMENTS));
      }
    }
  });

  it("names the rows it scores: train's held-out rows, or every row of evaluate's range", () => {
    const targets = faults(700, 5, 10);
    expect(planEvaluation(cleaned(1000, targets), 600, Float64Array.of(1, 1), 1, HELD_OUT_ROWS).description).toBe(
      '50 held-out rows inside confirmed-fault labels (5 episodes) are positives, the other 350 negatives',
    );
    expect(planEvaluation(cleaned(1000, targets), 0, Float64Array.of(1, 1), 1, RANGE_ROWS).description).toBe(
      '50 rows of the range inside confirmed-fault labels (5 episodes) are positives, the other 950 negatives',
    );
    expect(planEvaluation(cleaned(1000, faults(700, 1, 1)), 600, Float64Array.of(2, 0), 7, HELD_OUT_ROWS).description).toBe(
      'too few fault labels in the held-out rows to compare on them alone (1 held-out rows inside confirmed-fault labels (1 episode); that needs 50 rows in 5 episodes): ' +
        'the other 399 held-out rows are negatives; positives are 3 copies of blocks of 200 held-out rows, one per varying feature and fault size, ' +
        'each with that feature shifted by that size: 2, 4 or 8 training standard deviations, placed 16 times (placement k in the k-th of 16 stretches of the held-out rows, half of the placements up, half down); ' +
        'the 1 labelled rows are positives too, in every placement',
    );
    expect(planEvaluation(cleaned(1000), 600, Float64Array.of(2, 0), 7, HELD_OUT_ROWS).description).toBe(
      'no fault labels in the held-out rows: the 400 held-out rows are negatives; positives are 3 copies of blocks of 200 held-out rows, ' +
        'one per varying feature and fault size, each with that feature shifted by that size: 2, 4 or 8 training standard deviations, ' +
        'placed 16 times (placement k in the k-th of 16 stretches of the held-out rows, half of the placements up, half down)',
    );
    expect(planEvaluation(cleaned(1000), 0, Float64Array.of(2, 1), 7, RANGE_ROWS).description).toBe(
      'no fault labels in the rows of the range: the 1000 rows of the range are negatives; positives are 6 copies of blocks of 300 rows of the range, ' +
        'one per varying feature and fault size, each with that feature shifted by that size: 2, 4 or 8 standard deviations of the range, ' +
        'placed 16 times (placement k in the k-th of 16 stretches of the rows of the range, half of the placements up, half down)',
    );
  });

  it('prints the decision metric by one name, then the other figures (F1 first in records written before the labels were scored by balanced accuracy)', () => {
    expect(formatEvaluation(evaluation(0.9))).toBe('balanced accuracy 0.9000 (F1 0.9000, FAR 1.00 %, MAR 10.00 %)');
    const f1: Evaluation = { ...evaluation(0.8), criterion: 'labels', metric: 'f1', f1: 0.8 };
    expect(formatEvaluation(f1)).toBe('F1 0.8000 (FAR 1.00 %, MAR 10.00 %)');
    expect(formatEvaluation(f1, true)).toBe('F1 0.8000 (FAR 1.00 %, MAR 10.00 %; TP 9, FP 1, FN 1, TN 99)');
  });

  it('computes F1, FAR and MAR as the SKAB README defines them', () => {
    expect(rates({ tp: 8, fp: 2, fn: 2, tn: 88 })).toEqual({ f1: 0.8, far: 2.222222, mar: 20 });
    expect(rates({ tp: 0, fp: 0, fn: 0, tn: 5 })).toEqual({ f1: 0, far: 0, mar: 0 });
  });
});

describe('the registry pointer', () => {
  it('puts the previous best first in the history, without the promoted version, at most 20 deep', () => {
    const record = { source: 'p', version: 'v3', algorithm: 'a', model: { sha256: 'x'.repeat(64), size: 10 } } as ModelRecord;
    const previous = { version: 'v2', promotedAt: 't2', history: Array.from({ length: 25 }, (_, i) => ({ version: i === 3 ? 'v3' : `old-${i}`, promotedAt: 't' })) } as BestPointer;
    const next = nextPointer(record, previous, 'now', 'better');
    expect(next).toMatchObject({ version: 'v3', sha256: 'x'.repeat(64), size: 10, promotedAt: 'now', reason: 'better' });
    expect(next.history[0]).toEqual({ version: 'v2', promotedAt: 't2' });
    expect(next.history).toHaveLength(20);
    expect(next.history.some((h) => h.version === 'v3')).toBe(false);
  });
});

describe('the model URL a deploy signs', () => {
  const key = new StorageSharedKeyCredential('acct', Buffer.from('not a real key').toString('base64'));
  const expires = new Date('2030-01-01T00:00:00Z');

  it('is read-only and expiring, and over an https endpoint valid over https only (spr=https)', async () => {
    const url = new URL(await readOnlyUrl(new ContainerClient('https://acct.blob.core.windows.net/models', key), 'models/pump-1/v1/model.onnx', expires));
    expect(Object.fromEntries(url.searchParams)).toMatchObject({ sr: 'b', sp: 'r', se: '2030-01-01T00:00:00Z', spr: 'https' });
  });

  it('is valid over http too where the endpoint is http (Azurite), which could not be read otherwise', async () => {
    const url = new URL(await readOnlyUrl(new ContainerClient('http://127.0.0.1:10000/acct/models', key), 'models/pump-1/v1/model.onnx', expires));
    expect(url.searchParams.get('spr')).toBe('https,http');
  });
});

describe('shards', () => {
  it('puts every source in exactly one shard, the same one whatever the other sources', () => {
    const sources = Array.from({ length: 500 }, (_, i) => `pump-${i}`);
    const shards = [0, 1, 2, 3].map((i) => inShard(sources, i, 4));
    expect(shards.flat().sort()).toEqual([...sources].sort());
    shards.forEach((s) => expect(s.length).toBeGreaterThan(80));
    expect(inShard(['pump-7', 'pump-new'], shardOf('pump-7', 4), 4)).toContain('pump-7');
  });

  it('reads the shard index from JOB_COMPLETION_INDEX for "index/N"', () => {
    expect(parseShard('index/16', { JOB_COMPLETION_INDEX: '5' })).toEqual({ index: 5, shards: 16 });
    expect(parseShard(undefined, {})).toEqual({ index: 0, shards: 1 });
    expect(() => parseShard('index/16', {})).toThrow(/JOB_COMPLETION_INDEX=""/);
    expect(() => parseShard('3/3', {})).toThrow(/0 <= I < N/);
  });

  it('takes only digits from JOB_COMPLETION_INDEX: blank, hex or exponent is not shard 0 or 2', () => {
    for (const index of ['', '  ', '0x2', '1e0', '+1', '1.0', ' 1', '-0']) {
      expect(() => parseShard('index/4', { JOB_COMPLETION_INDEX: index }), JSON.stringify(index)).toThrow(`(JOB_COMPLETION_INDEX="${index}")`);
    }
    expect(parseShard('index/4', { JOB_COMPLETION_INDEX: '03' })).toEqual({ index: 3, shards: 4 });
  });

  it('accepts the arguments of the Kubernetes Indexed Job manifest, with as many shards as completions', () => {
    const yaml = readFileSync(new URL('../../deployment/k8s/trainer-indexed-job.yaml', import.meta.url), 'utf8');
    const argsBlock = /args:\n((?:\s+- .*\n|\s+#.*\n)+)/.exec(yaml)![1]!;
    const args = argsBlock
      .split('\n')
      .map((l) => /^\s+- (.*)$/.exec(l)?.[1])
      .filter((a): a is string => a !== undefined)
      .map((a) => a.replace(/^"(.*)"$/, '$1'));
    expect(args[0]).toBe('train-all');
    const v = parseOptions('train-all', args.slice(1), { ...TRAIN_OPTIONS, shard: { type: 'string' }, concurrency: { type: 'string' }, 'report-dir': { type: 'string' }, resume: { type: 'boolean' }, json: { type: 'boolean' } });
    const completions = Number(/completions: (\d+)/.exec(yaml)![1]);
    expect(parseShard(v.shard, { JOB_COMPLETION_INDEX: String(completions - 1) })).toEqual({ index: completions - 1, shards: completions });
    const req = trainRequest('train-all', v, 'pump-1', new Date(Date.UTC(2026, 10, 23, 15)));
    expect(req).toMatchObject({ from: Date.UTC(2026, 10, 16), to: Date.UTC(2026, 10, 23), ifDrifted: { psi: 0.25, ks: 0.3 } });
    // A retry of a shard leaves alone the pumps an earlier attempt did (train-all --resume).
    expect(v.resume).toBe(true);
  });
});

describe('the trainer documentation', () => {
  const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');
  const trainerReadme = read('trainer/README.md');
  const readme = read('README.md');
  const readmeTrainer = readme.slice(readme.indexOf('\n## The trainer\n'), readme.indexOf('\n## ', readme.indexOf('\n## The trainer\n') + 1));
  const flat = (text: string) => text.replace(/^\s*#\s?/gm, '').replace(/\s+/g, ' ');

  it('states the shard rule the code uses, with an example the code agrees with', () => {
    const places = { 'trainer/README.md': trainerReadme, 'train-all --help': trainAllCommand.help, 'trainer-indexed-job.yaml': read('deployment/k8s/trainer-indexed-job.yaml') };
    for (const [where, text] of Object.entries(places)) {
      expect(flat(text), where).not.toMatch(/sha256\([^)]*\) mod N/);
      expect(flat(text), where).toMatch(/the first 4 bytes of sha256\([^)]*\) read as a big-endian uint32, mod N/);
    }
    const [, pump, hex, uint, n, shard] = /`(pump-\d+)`: sha256 starts with `([0-9a-f]{8})`, (\d+) mod (\d+) = (\d+)/.exec(flat(trainerReadme))!;
    expect(createHash('sha256').update(pump!).digest('hex').slice(0, 8)).toBe(hex);
    expect(Number.parseInt(hex!, 16)).toBe(Number(uint));
    expect(shardOf(pump!, Number(n))).toBe(Number(shard));
  });

  it('defines --days as the whole UTC days before today, today excluded', () => {
    for (const [where, text] of Object.entries({ 'trainer/README.md': trainerReadme, 'README.md "The trainer"': readmeTrainer })) {
      expect(flat(text), where).toMatch(/`--days N`[^.]* the N whole UTC days before today \(today excluded/);
    }
  });

  it('gives the exit codes in the --help of every command', async () => {
    const names = /Commands:\n((?: {2}\S+ .*\n)+)/.exec((await help([])).out + '\n')![1]!.trim().split('\n').map((l) => l.trim().split(' ')[0]!);
    expect(names).toContain('rollback');
    for (const name of names) {
      const { code, out } = await help([name, '--help']);
      expect(code, name).toBe(0);
      expect(flat(out), name).toMatch(/Exit codes?: .*\b0 .*\b2 (bad usage|on bad usage)/);
    }
  });
});

async function help(argv: string[]): Promise<{ code: number; out: string }> {
  const out: string[] = [];
  const code = await runCli(argv, { out: (t) => out.push(t), err: (t) => out.push(t) });
  return { code, out: out.join('\n') };
}

describe('command arguments', () => {
  it('takes whole UTC days for --days and exact instants for --from/--to', () => {
    const now = new Date(Date.UTC(2026, 10, 23, 15, 30));
    expect(timeRange('t', { days: '2' }, now)).toEqual({ from: Date.UTC(2026, 10, 21), to: Date.UTC(2026, 10, 23) });
    expect(timeRange('t', { from: '2026-01-01', to: '2026-01-02T12:00:00Z' }, now)).toEqual({ from: Date.UTC(2026, 0, 1), to: Date.UTC(2026, 0, 2, 12) });
    expect(() => timeRange('t', { from: '01/02/2026', to: '2026-01-03' }, now)).toThrow(/--from "01\/02\/2026" is not a date/);
  });

  it('reads a date-time without an offset as UTC, whatever the time zone, and honours an offset', () => {
    const tz = process.env.TZ;
    process.env.TZ = 'America/New_York';
    try {
      expect(new Date(2026, 0, 1).getTimezoneOffset()).toBe(300);
      expect(parseDate('--from', '2026-01-01T00:00')).toBe(Date.UTC(2026, 0, 1));
      expect(parseDate('--from', '2026-01-01T06:30:15')).toBe(Date.UTC(2026, 0, 1, 6, 30, 15));
      expect(parseDate('--from', '2026-01-01T06:30:15.250Z')).toBe(Date.UTC(2026, 0, 1, 6, 30, 15, 250));
      expect(parseDate('--from', '2026-01-01T02:00:00+02:00')).toBe(Date.UTC(2026, 0, 1));
      expect(parseDate('--from', '2025-12-31T19:00:00-05:00')).toBe(Date.UTC(2026, 0, 1));
      expect(parseDate('--from', '2028-02-29')).toBe(Date.UTC(2028, 1, 29));
    } finally {
      if (tz === undefined) delete process.env.TZ;
      else process.env.TZ = tz;
    }
  });

  it('refuses a date or time that does not exist instead of rolling it over, naming the option and the value', () => {
    for (const value of ['2026-02-30', '2026-02-29', '2026-13-01', '2026-00-10', '2026-04-31T10:00:00Z', '2026-01-01T24:00', '2026-01-01T10:61', '2026-01-01T10:00:60Z']) {
      expect(() => timeRange('t', { from: value, to: '2027-01-01' }, new Date()), value).toThrow(`--from "${value}" is not a date that exists`);
      expect(() => timeRange('t', { from: '2025-01-01', to: value }, new Date()), value).toThrow(`--to "${value}" is not a date that exists`);
    }
    expect(() => parseDate('--to', '2026-01-01T00:00:00+25:00')).toThrow('--to "2026-01-01T00:00:00+25:00" has an offset that does not exist');
  });

  it('refuses a --version that is not a model version before any work', () => {
    const v = parseOptions('train', ['--source', 'p', '--from', '2026-01-01', '--to', '2026-01-02', '--version', '.'], TRAIN_OPTIONS);
    expect(() => trainRequest('train', v, 'p', new Date())).toThrow('--version "." is not a model version');
    const ok = parseOptions('train', ['--source', 'p', '--from', '2026-01-01', '--to', '2026-01-02', '--version', 'v1.2_rc:3-a'], TRAIN_OPTIONS);
    expect(trainRequest('train', ok, 'p', new Date()).version).toBe('v1.2_rc:3-a');
  });

  it('targets by default the modules that report the pump or run where its readings come from', () => {
    expect(defaultQuery('pump-17')).toBe(
      "SELECT * FROM devices.modules WHERE moduleId = 'pumpwatch' AND (IS_DEFINED(properties.reported.models.[[pump-17]]) OR ARRAY_CONTAINS(properties.reported.pumps, 'pump-17'))",
    );
    expect(defaultQuery("o'brien", 'pw')).toContain("ARRAY_CONTAINS(properties.reported.pumps, 'o''brien')");
    expect(defaultQuery('pump-1', 'pumpwatch', ['gw-1', 'gw-2'])).toMatch(/ OR deviceId = 'gw-1' OR deviceId = 'gw-2'\)$/);
    expect(defaultQuery('default')).toBe("SELECT * FROM devices.modules WHERE moduleId = 'pumpwatch'");
  });
});

describe('progress', () => {
  it('writes plain lines at each stage and every 10 % when stderr is not a terminal', () => {
    const lines: string[] = [];
    const p = createProgress({ line: (t) => lines.push(t) }, false, 'train p');
    p.stage('fitting', 100);
    for (let i = 1; i <= 100; i++) p.update(i);
    p.note('done');
    expect(lines[0]).toBe('train p: fitting (100)');
    expect(lines.filter((l) => / %/.test(l))).toHaveLength(10);
    expect(lines.at(-1)).toBe('train p: done');
  });

  it('redraws one bar in place on a terminal and clears it before a note', () => {
    const raw: string[] = [];
    const lines: string[] = [];
    const p = createProgress({ raw: (t) => raw.push(t), line: (t) => lines.push(t) }, true, 'train p');
    p.stage('reading blobs', 4);
    expect(raw.at(-1)).toBe('\r\x1b[2Ktrain p: reading blobs [........................] 0 %');
    p.note('hello');
    expect(raw.at(-1)).toBe('\r\x1b[2K');
    expect(lines).toEqual(['train p: hello']);
  });
});

describe('the HTML report', () => {
  it('merges consecutive labelled rows into spans', () => {
    expect(labelSpans([1, 2, 3, 4, 5], [null, 'anomaly', 'anomaly', null, 'anomaly'])).toEqual([
      { from: 2, to: 3, kind: 'anomaly' },
      { from: 5, to: 5, kind: 'anomaly' },
    ]);
  });

  it('is one self-contained page that escapes what it shows', () => {
    const html = renderReport({ status: 'skipped', reason: 'no drift <script>', source: 'p&1', warnings: [], record: null, drift: null, view: null });
    expect(html).toContain('p&#38;1');
    expect(html).toContain('no drift &#60;script&#62;');
    expect(html).not.toMatch(/<script|<link|src=/);
  });
});
