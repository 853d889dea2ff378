import type { Statement } from 'better-sqlite3';
import type { PredictionRow, StoredRow } from './types.js';

/** Column list shared by every query that reads readings back. */
export const ROW_COLUMNS =
  'seq, pump_id, ts, received_at, vals, score, anomaly, model_version, imputed, unscored_reason, shadow_score, shadow_model_version, contributions';

export interface DbRow {
  seq: number;
  pump_id: string;
  ts: number;
  received_at: number;
  vals: string;
  score: number | null;
  anomaly: number | null;
  model_version: string | null;
  imputed: number;
  unscored_reason: string | null;
  shadow_score: number | null;
  shadow_model_version: string | null;
  contributions: string | null;
}

export function toDbParams(row: PredictionRow): unknown[] {
  return [
    row.pumpId,
    row.ts,
    row.receivedAt,
    JSON.stringify(row.values),
    row.score,
    row.anomaly === null ? null : row.anomaly ? 1 : 0,
    row.modelVersion,
    row.imputed ? 1 : 0,
    row.unscoredReason,
    row.shadowScore ?? null,
    row.shadowModelVersion ?? null,
    row.contributions ? JSON.stringify(row.contributions) : null,
  ];
}

/** Runs the readings INSERT (columns as in toDbParams) for one row. */
export function insertRow(stmt: Statement, row: PredictionRow): { lastInsertRowid: number | bigint } {
  return stmt.run(...toDbParams(row));
}

export function fromDbRow(r: DbRow): StoredRow {
  return {
    seq: r.seq,
    pumpId: r.pump_id,
    ts: r.ts,
    receivedAt: r.received_at,
    values: JSON.parse(r.vals) as Record<string, number | null>,
    score: r.score,
    anomaly: r.anomaly === null ? null : r.anomaly === 1,
    modelVersion: r.model_version,
    imputed: r.imputed === 1,
    unscoredReason: r.unscored_reason,
    shadowScore: r.shadow_score,
    shadowModelVersion: r.shadow_model_version,
    contributions: r.contributions === null ? null : (JSON.parse(r.contributions) as Record<string, number>),
  };
}
