/**
 * The labels a comparison used, for a pump with more labels (and withdrawals) than a record lists:
 * the counts stay exact, the lists are capped, those that labelled held-out rows come first, and
 * train's line says how many more were counted.
 */
import { describe, expect, it } from 'vitest';
import type { LabelRecord, WithdrawalRecord } from '../../sync/labels-upload.js';
import { labelsLine } from '../../trainer/report/headline.js';
import { labelsUsed, labelUseOf, LISTED_LABELS } from '../../trainer/train/labels-used.js';
import type { TrainOutcome } from '../../trainer/train/pipeline.js';

const T0 = Date.UTC(2026, 0, 1);
const STEP = 20_000;
const DAY = 86_400_000;
const iso = (t: number) => new Date(t).toISOString();

function label(i: number): LabelRecord {
  return { schema: 1, id: `l-${String(i).padStart(4, '0')}`, deviceId: 'gw-1', pumpId: 'p', kind: 'confirmed-fault', faultType: 'other', note: null, alertSeq: null, from: iso(T0 + i * STEP), to: iso(T0 + i * STEP), author: 'tech', createdAt: iso(T0 + 1000 * STEP + i) };
}

function withdrawal(i: number): WithdrawalRecord {
  return { schema: 1, kind: 'withdrawal', id: `w-${i}`, deviceId: 'gw-1', withdraws: `gone-${i}`, pumpId: 'p', author: 'tech', note: null, createdAt: iso(T0 + 2000 * STEP + i) };
}

describe('labelsUsed on a pump with thousands of labels', () => {
  it('keeps every count exact, lists at most LISTED_LABELS of each, held-out ones first, and says how many more', () => {
    const timestamps = Array.from({ length: 3000 }, (_, i) => T0 + i * STEP);
    // 2500 one-reading faults, one of each of the first 2500 readings, and 2000 more before the range.
    const labels = [...Array.from({ length: 2500 }, (_, i) => label(i)), ...Array.from({ length: 2000 }, (_, i) => ({ ...label(i), id: `before-${i}`, from: iso(T0 - DAY), to: iso(T0 - DAY) }))];
    // 300 withdrawn labels that covered readings of the range, 50 whose label was not read.
    const withdrawals = [
      ...Array.from({ length: 300 }, (_, i) => ({ withdrawal: withdrawal(i), label: { ...label(i), id: `gone-${i}` } })),
      ...Array.from({ length: 50 }, (_, i) => ({ withdrawal: withdrawal(300 + i), label: null })),
    ];
    const { targets, use } = labelUseOf('p', labels, withdrawals, timestamps);
    expect(targets.filter((t) => t === 'anomaly')).toHaveLength(2500);
    // Held out: the last 600 readings (2400-2999), of which 100 are labelled; left out: the faults of the first 2400.
    const heldOut = timestamps.slice(2400);
    const leftOut = timestamps.slice(0, 2400);
    const u = labelsUsed(use, heldOut, leftOut);
    expect(u).toMatchObject({ read: 4500, used: 2500, heldOutRows: 100, leftOutRows: 2400, notListed: 2500 - LISTED_LABELS });
    expect(u.listed).toHaveLength(LISTED_LABELS);
    expect(u.listed.every((l) => l.heldOutRows === 1)).toBe(true);
    expect(u.listed.map((l) => l.id)).toEqual(Array.from({ length: 100 }, (_, i) => label(2400 + i).id));
    expect(u.withdrawals).toMatchObject({ read: 350, applied: 300, notListed: 300 - LISTED_LABELS });
    expect(u.withdrawals.listed).toHaveLength(LISTED_LABELS);
    expect(u.withdrawals.listed[0]).toEqual({ id: 'w-0', withdraws: 'gone-0', kind: 'confirmed-fault', author: 'tech', createdAt: withdrawal(0).createdAt, deviceId: 'gw-1', readings: 1 });
    // Small enough for model.json: about 400 bytes a listed label.
    expect(JSON.stringify(u).length).toBeLessThan(2 * LISTED_LABELS * 400);

    const outcome = { evaluationBlob: 'models/p/v/evaluations/x.json', record: { evaluation: { labels: u } } } as unknown as TrainOutcome;
    expect(labelsLine(outcome)).toBe(
      '2500 of the 4500 labels read gave readings of the range their target (100 held-out rows, 2400 training rows left out as faults); ' +
        '300 of the 350 withdrawals read took their labels off readings of the range; listed in models/p/v/evaluations/x.json ' +
        '(at most 100 of each, those that labelled the most held-out rows first; 2400 labels and 200 withdrawals more are counted, not listed)',
    );
  });
});

