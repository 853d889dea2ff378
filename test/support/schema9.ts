/**
 * A buffer file as the schema-9 agent (before 2026-12-06's schema 10) wrote it, for the upgrade
 * tests: its migration steps, then rows with their contributions as JSON text.
 */
import Database from 'better-sqlite3';
import { MIGRATIONS } from '../../buffer/migrations.js';
import type { PredictionRow } from '../../buffer/types.js';

export function schema9File(path: string, rows: readonly PredictionRow[]): void {
  oldSchemaFile(path, 9, rows);
}

/** The same for an agent of schema `version` (6 to 9: the readings columns the rows are written to are the same). */
export function oldSchemaFile(path: string, version: number, rows: readonly PredictionRow[]): void {
  const db = new Database(path);
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE schema_version (version INTEGER NOT NULL); INSERT INTO schema_version (version) VALUES (0)');
  for (let v = 0; v < version; v++) db.exec(MIGRATIONS[v]!);
  db.prepare('UPDATE schema_version SET version = ?').run(version);
  const insert = db.prepare(
    `INSERT INTO readings (pump_id, ts, received_at, vals, score, anomaly, model_version, imputed, unscored_reason, shadow_score, shadow_model_version, contributions)
     VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`,
  );
  db.transaction(() => {
    for (const r of rows) {
      insert.run(r.pumpId, r.ts, r.receivedAt, JSON.stringify(r.values), r.score, r.anomaly === null ? null : r.anomaly ? 1 : 0, r.modelVersion, r.imputed ? 1 : 0, r.unscoredReason, r.shadowScore ?? null, r.shadowModelVersion ?? null, r.contributions ? JSON.stringify(r.contributions) : null);
    }
  })();
  db.close();
}
