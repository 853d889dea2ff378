import type { Statement } from 'better-sqlite3';
import type { ContributionNames } from './contributions.js';
import type { PredictionRow, StoredRow } from './types.js';

/** Column list shared by every query that reads readings back. */
export const ROW_COLUMNS =
  'seq, pump_id, ts, received_at, vals, score, anomaly, model_version, imputed, unscored_reason, shadow_score, shadow_model_version, contributions, threshold';

/** The readings INSERT whose parameters toDbParams gives. */
export const INSERT_READING_SQL = `INSERT INTO readings (pump_id, ts, received_at, vals, score, anomaly, model_version, imputed,
  unscored_reason, shadow_score, shadow_model_version, contributions, threshold) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)`;

/** Planning candidates: rows of a pump with from ≤ seq < bound, in order, at most a limit. */
export const CANDIDATES_SQL = `SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT ?`;
/** The rows of a planned range, in order. */
export const RANGE_SQL = `SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq BETWEEN ? AND ? ORDER BY seq`;

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
  /** JSON text, whichever form the row stores (readRows turns a schema-10 BLOB into the same text). */
  contributions: string | null;
  /** The scoring model's threshold (schema 11); null when unscored or written before. */
  threshold: number | null;
}

/** The INSERT's parameters; the contributions as `names` encodes them (a BLOB since schema 10: buffer/contributions.ts). */
export function toDbParams(row: PredictionRow, names: ContributionNames): unknown[] {
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
    names.encode(row.contributions),
    row.threshold ?? null,
  ];
}

type Cell = string | number | Uint8Array | null;

/**
 * Runs a `SELECT ${ROW_COLUMNS} …` statement and returns its rows. The statement yields arrays and
 * each becomes one object literal of a fixed shape: better-sqlite3's own row objects, built key by
 * key, cost about twice as much to read (a sync drain reads every row; measured 4.5 → 2.4 µs a row).
 * Contributions stored as a BLOB come back as the JSON text they stand for (`names`, of the
 * statement's connection, decodes them); one that cannot be decoded throws PW_BUFFER_INVALID_ROW
 * naming its seq (the sync's reads set such a row aside: buffer/unreadable.ts).
 */
export function readRows(stmt: Statement, names: ContributionNames, ...params: unknown[]): DbRow[] {
  const arrays = stmt.raw(true).all(...params) as Cell[][];
  const rows = new Array<DbRow>(arrays.length);
  for (let i = 0; i < arrays.length; i++) {
    const a = arrays[i]!;
    rows[i] = {
      seq: a[0] as number,
      pump_id: a[1] as string,
      ts: a[2] as number,
      received_at: a[3] as number,
      vals: a[4] as string,
      score: a[5] as number | null,
      anomaly: a[6] as number | null,
      model_version: a[7] as string | null,
      imputed: a[8] as number,
      unscored_reason: a[9] as string | null,
      shadow_score: a[10] as number | null,
      shadow_model_version: a[11] as string | null,
      contributions: a[12] === null || typeof a[12] === 'string' ? a[12] : names.text(a[12] as Uint8Array, a[0] as number),
      threshold: a[13] as number | null,
    };
  }
  return rows;
}

/** Runs the readings INSERT (columns as in toDbParams) for one row. */
export function insertRow(stmt: Statement, row: PredictionRow, names: ContributionNames): { lastInsertRowid: number | bigint } {
  return stmt.run(...toDbParams(row, names));
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
    threshold: r.threshold,
  };
}
