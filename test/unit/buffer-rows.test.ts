import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ContributionNames } from '../../buffer/contributions.js';
import { migrate } from '../../buffer/migrations.js';
import { INSERT_READING_SQL as INSERT, ROW_COLUMNS, fromDbRow, insertRow, readRows, toDbParams } from '../../buffer/rows.js';
import type { PredictionRow, StoredRow } from '../../buffer/types.js';

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

// The buffer's own schema in an in-memory SQLite database (the real engine, no file needed).
let db: Database.Database;
let names: ContributionNames;
beforeEach(() => {
  db = new Database(':memory:');
  migrate(db);
  names = new ContributionNames(db);
});
afterEach(() => db.close());

/** Stores a row with the readings INSERT and reads it back as every reader does. */
function roundTrip(row: PredictionRow): StoredRow {
  const seq = Number(insertRow(db.prepare(INSERT), row, names).lastInsertRowid);
  return fromDbRow(readRows(db.prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE seq = ?`), names, seq)[0]!);
}

describe('buffer row mapping', () => {
  it('stores booleans as 0/1, values as JSON and contributions as a BLOB, one parameter per column', () => {
    const params = toDbParams({ ...base, anomaly: true, contributions: { Pressure: 0.9 } }, names);
    expect(params).toHaveLength(ROW_COLUMNS.split(',').length - 1);
    expect(params.slice(0, 11)).toEqual(['pump-17', base.ts, base.receivedAt, '{"Pressure":0.38,"Flow":null}', 0.42, 1, 'v7', 1, null, null, null]);
    // 0.9 is no float32: kind 2 (float64), list 1, one value.
    expect(params[11]).toEqual(Buffer.concat([Buffer.from([2, 1, 0, 0, 0]), Buffer.from(new Float64Array([0.9]).buffer)]));
  });

  it('reads back what it stored, with null values kept as null', () => {
    const full: PredictionRow = { ...base, shadowScore: 0.1, shadowModelVersion: 's1', contributions: { Pressure: 0.7, Flow: 0.3 }, threshold: 2.5 };
    expect(roundTrip(full)).toEqual({ ...full, seq: 1 });
  });

  it('keeps an unscored row unscored: score, anomaly and model version null, with its reason', () => {
    const unscored: PredictionRow = { ...base, score: null, anomaly: null, modelVersion: null, unscoredReason: 'no value ever seen for Flow' };
    expect(roundTrip(unscored)).toEqual({
      ...unscored,
      seq: 1,
      shadowScore: null,
      shadowModelVersion: null,
      contributions: null,
      threshold: null,
    });
  });
});
