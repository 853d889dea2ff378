import { createHash } from 'node:crypto';
import { classifySqliteError } from './errors.js';
import { ROW_COLUMNS, fromDbRow, type DbRow } from './rows.js';
import type { BufferStore } from './store.js';
import type { StoredRow } from './types.js';

/** Priority of a planned batch: lower goes first. */
export const PRIORITY = { anomalies: 0, bulk: 1 } as const;

export interface PlannedBatch {
  id: number;
  pumpId: string;
  firstSeq: number;
  lastSeq: number;
  rowCount: number;
  blobName: string;
  priority: number;
  state: 'planned' | 'uploaded' | 'failed';
  createdAt: number;
}

export interface PlanLimits {
  maxRows: number;
  /** Approximate upper bound of the batch's JSON size before compression. */
  maxBytes: number;
  /** Rows of the same pump taken before an anomaly, so it is uploaded with its context. */
  anomalyContextRows: number;
}

/** Names the blob of a batch (given by sync/layout.ts; the buffer does not know the layout). */
export type BlobNamer = (pumpId: string, firstSeq: number, lastSeq: number, firstTs: number) => string;

interface BatchRow {
  id: number;
  pump_id: string;
  first_seq: number;
  last_seq: number;
  row_count: number;
  blob_name: string;
  priority: number;
  state: PlannedBatch['state'];
  created_at: number;
}

const toBatch = (r: BatchRow): PlannedBatch => ({
  id: r.id,
  pumpId: r.pump_id,
  firstSeq: r.first_seq,
  lastSeq: r.last_seq,
  rowCount: r.row_count,
  blobName: r.blob_name,
  priority: r.priority,
  state: r.state,
  createdAt: r.created_at,
});

/** Fixed per-row overhead of a JSON line beyond the values text, for byte estimates. */
const LINE_OVERHEAD = 200;

/**
 * Planned sync batches: a batch's rows and blob name are fixed and persisted before any upload, so
 * a retry after a crash uploads the same rows under the same name. Anomalies (with context) first.
 */
export class SyncBatches {
  constructor(private readonly store: BufferStore) {}

  /** The next batch to upload: an unfinished planned one first, else a newly planned one, else null. */
  next(limits: PlanLimits, namer: BlobNamer, now: number): PlannedBatch | null {
    return this.pending() ?? this.plan(limits, namer, now);
  }

  pending(): PlannedBatch | null {
    const row = this.store.db
      .prepare("SELECT * FROM sync_batches WHERE state = 'planned' ORDER BY priority, id LIMIT 1")
      .get() as BatchRow | undefined;
    return row ? toBatch(row) : null;
  }

  /** Plans one batch: the newest unplanned anomaly's pump with context, else the oldest unplanned rows. */
  plan(limits: PlanLimits, namer: BlobNamer, now: number): PlannedBatch | null {
    const db = this.store.db;
    const anomaly = db
      // INDEXED BY: the planner would otherwise walk readings_unplanned_seq through every unplanned row.
      .prepare(
        `SELECT seq, pump_id FROM readings INDEXED BY readings_unplanned_anomalies
         WHERE batch_id IS NULL AND anomaly = 1 ORDER BY seq DESC LIMIT 1`,
      )
      .get() as { seq: number; pump_id: string } | undefined;
    let pumpId: string;
    let fromSeq: number;
    let priority: number;
    if (anomaly) {
      pumpId = anomaly.pump_id;
      fromSeq = this.contextStart(pumpId, anomaly.seq, limits);
      priority = PRIORITY.anomalies;
    } else {
      const oldest = db
        .prepare('SELECT seq, pump_id FROM readings WHERE batch_id IS NULL ORDER BY seq LIMIT 1')
        .get() as { seq: number; pump_id: string } | undefined;
      if (!oldest) return null;
      pumpId = oldest.pump_id;
      fromSeq = oldest.seq;
      priority = PRIORITY.bulk;
    }
    const candidates = db
      .prepare(
        `SELECT seq, ts, length(vals) AS len FROM readings WHERE pump_id = ? AND seq >= ? AND batch_id IS NULL
         ORDER BY seq LIMIT ?`,
      )
      .all(pumpId, fromSeq, Math.max(1, limits.maxRows)) as Array<{ seq: number; ts: number; len: number }>;
    let bytes = 0;
    let count = 0;
    for (const c of candidates) {
      bytes += c.len + LINE_OVERHEAD;
      if (count > 0 && bytes > limits.maxBytes) break;
      count++;
    }
    const first = candidates[0]!;
    const last = candidates[count - 1]!;
    const blobName = namer(pumpId, first.seq, last.seq, first.ts);
    try {
      return db.transaction(() => {
        const id = Number(
          db
            .prepare(
              `INSERT INTO sync_batches (pump_id, first_seq, last_seq, row_count, blob_name, priority, state, created_at)
               VALUES (?, ?, ?, ?, ?, ?, 'planned', ?)`,
            )
            .run(pumpId, first.seq, last.seq, count, blobName, priority, now).lastInsertRowid,
        );
        const marked = db
          .prepare('UPDATE readings SET batch_id = ? WHERE pump_id = ? AND seq BETWEEN ? AND ? AND batch_id IS NULL')
          .run(id, pumpId, first.seq, last.seq).changes;
        if (marked !== count) throw new Error(`planned ${count} rows but marked ${marked}`);
        return { id, pumpId, firstSeq: first.seq, lastSeq: last.seq, rowCount: count, blobName, priority, state: 'planned', createdAt: now } satisfies PlannedBatch;
      })();
    } catch (err) {
      throw classifySqliteError(err, this.store.path, 'planning a sync batch');
    }
  }

  /**
   * First seq of an anomaly's batch: up to `anomalyContextRows` earlier unplanned rows of its pump,
   * no more than fit in one batch together with the anomaly, so the anomaly itself is always in it.
   */
  private contextStart(pumpId: string, anomalySeq: number, limits: PlanLimits): number {
    const context = Math.max(0, Math.min(limits.anomalyContextRows, limits.maxRows - 1));
    const rows = this.store.db
      .prepare(
        `SELECT seq, length(vals) AS len FROM readings WHERE pump_id = ? AND batch_id IS NULL AND seq <= ?
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(pumpId, anomalySeq, context + 1) as Array<{ seq: number; len: number }>;
    let start = anomalySeq;
    let bytes = 0;
    for (const r of rows) {
      bytes += r.len + LINE_OVERHEAD;
      if (r.seq !== anomalySeq && bytes > limits.maxBytes) break;
      start = r.seq;
    }
    return start;
  }

  /** The rows of a planned batch, in sequence order (the same rows every time it is asked). */
  rows(batch: PlannedBatch): StoredRow[] {
    return (
      this.store.db
        .prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq BETWEEN ? AND ? AND batch_id = ? ORDER BY seq`)
        .all(batch.pumpId, batch.firstSeq, batch.lastSeq, batch.id) as DbRow[]
    ).map(fromDbRow);
  }

  /** Marks a batch uploaded and its rows synced, in one transaction, after the service confirmed. */
  markUploaded(batch: PlannedBatch, sha256: string, now: number): void {
    const db = this.store.db;
    const changed = this.write('marking a batch uploaded', () =>
      db.transaction(() => {
        db.prepare("UPDATE sync_batches SET state = 'uploaded', sha256 = ?, uploaded_at = ?, error = NULL WHERE id = ?").run(sha256, now, batch.id);
        return db.prepare('UPDATE readings SET synced = 1 WHERE batch_id = ? AND synced = 0').run(batch.id).changes;
      })(),
    );
    this.store.adjustCounts({ unsynced: -changed });
  }

  /** Records why a batch cannot be uploaded (e.g. a different blob already has its name). */
  markFailed(batch: PlannedBatch, error: string): void {
    this.write('marking a batch failed', () =>
      this.store.db.prepare("UPDATE sync_batches SET state = 'failed', error = ? WHERE id = ?").run(error, batch.id),
    );
  }

  /** Records the last error of a batch that stays planned (it will be retried). */
  noteError(batch: PlannedBatch, error: string): void {
    this.write('noting a batch error', () => this.store.db.prepare('UPDATE sync_batches SET error = ? WHERE id = ?').run(error, batch.id));
  }

  failed(): PlannedBatch[] {
    return (this.store.db.prepare("SELECT * FROM sync_batches WHERE state = 'failed' ORDER BY id").all() as BatchRow[]).map(toBatch);
  }

  /**
   * Deletes synced rows received before `cutoff` (retention for the technician page). Also forgets
   * uploaded batches older than `cutoff` that have no row left, so that table stays bounded too.
   */
  deleteSyncedBefore(cutoff: number): number {
    const db = this.store.db;
    const n = this.write('deleting synced rows', () =>
      db.transaction(() => {
        const deleted = db.prepare('DELETE FROM readings WHERE synced = 1 AND received_at < ?').run(cutoff).changes;
        db.prepare(
          `DELETE FROM sync_batches WHERE state = 'uploaded' AND uploaded_at < ?
           AND NOT EXISTS (SELECT 1 FROM readings WHERE batch_id = sync_batches.id)`,
        ).run(cutoff);
        return deleted;
      })(),
    );
    this.store.adjustCounts({ rows: -n });
    return n;
  }

  /** Runs one write; a SQLite failure becomes a BufferError naming what was being done. */
  private write<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw classifySqliteError(err, this.store.path, action);
    }
  }
}

/** sha256 (hex) of a byte buffer: the content check of an uploaded blob. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}
