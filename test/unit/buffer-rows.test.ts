import { describe, expect, it } from 'vitest';
import { ROW_COLUMNS, fromDbRow, toDbParams, type DbRow } from '../../buffer/rows.js';
import type { PredictionRow } from '../../buffer/types.js';

/** Builds the row SQLite would hand back for the parameters of an INSERT. */
function asStored(seq: number, params: unknown[]): DbRow {
  const names = ROW_COLUMNS.split(',').map((c) => c.trim()).slice(1);
  return Object.fromEntries([['seq', seq], ...names.map((n, i) => [n, params[i]])]) as DbRow;
}

const base: PredictionRow = {
  pumpId: 'pump-17',
  ts: 1_795_000_000_000,
  receivedAt: 1_795_000_000_250,
  values: { Pressure: 0.38, Flow: null },
  score: 0.42,
  anomaly: false,
  modelVersion: 'v7',
  imputed: true,
  unscoredReason: null,
};

describe('buffer row mapping', () => {
  it('stores booleans as 0/1 and objects as JSON, one parameter per column', () => {
    const params = toDbParams({ ...base, anomaly: true, contributions: { Pressure: 0.9 } });
    expect(params).toHaveLength(ROW_COLUMNS.split(',').length - 1);
    expect(params).toEqual(['pump-17', base.ts, base.receivedAt, '{"Pressure":0.38,"Flow":null}', 0.42, 1, 'v7', 1, null, null, null, '{"Pressure":0.9}']);
  });

  it('reads back what it stored, with null values kept as null', () => {
    const full: PredictionRow = { ...base, shadowScore: 0.1, shadowModelVersion: 's1', contributions: { Pressure: 0.7, Flow: 0.3 } };
    expect(fromDbRow(asStored(5, toDbParams(full)))).toEqual({ ...full, seq: 5 });
  });

  it('keeps an unscored row unscored: score, anomaly and model version null, with its reason', () => {
    const unscored: PredictionRow = { ...base, score: null, anomaly: null, modelVersion: null, unscoredReason: 'no value ever seen for Flow' };
    expect(fromDbRow(asStored(6, toDbParams(unscored)))).toEqual({
      ...unscored,
      seq: 6,
      shadowScore: null,
      shadowModelVersion: null,
      contributions: null,
    });
  });
});
