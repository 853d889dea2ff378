/**
 * Which refused items (the `rejected` table) went up to Blob Storage, and the one batch of them
 * planned for upload. Both live in the meta table, written in SQLite transactions (synchronous=FULL):
 * - `sync_rejected_through`: the highest id uploaded. Ids are AUTOINCREMENT (never reused, in
 *   commit order) and batches go up in id order, one at a time, so one number says which rows went
 *   up: no column to add to a table that may hold many rows, no per-row UPDATE per batch, and a
 *   buffer of an older agent (no key) starts at 0, so items refused before the upgrade go up too.
 * - `sync_rejected_plan`: the batch being uploaded (its ids, name, device id), persisted before the
 *   upload starts, so a retry after a crash uploads the same rows under the same name; eviction
 *   never takes its rows (see REJECTED_EVICTABLE_SQL in ranges.ts).
 */
import { classifySqliteError } from './errors.js';
import { REJECTED_PLAN_KEY, REJECTED_THROUGH_KEY, REJECTED_UNSENT_SQL } from './ranges.js';
import type { BufferStore } from './store.js';

/** A refused item as stored (raw is the bounded preview the store kept). */
export interface RejectedRow {
  id: number;
  source: string;
  raw: string;
  reason: string;
  receivedAt: number;
}

/** The batch of refused items planned for upload: the rows firstId..lastId, under blobName. */
export interface RejectedPlan {
  firstId: number;
  lastId: number;
  rowCount: number;
  blobName: string;
  /** The device id in the name and the lines: a retry encodes the same bytes even if the setting changed. */
  deviceId: string;
}

interface DbRejected {
  id: number;
  source: string;
  raw: string;
  reason: string;
  received_at: number;
}

const toRow = (r: DbRejected): RejectedRow => ({ id: r.id, source: r.source, raw: r.raw, reason: r.reason, receivedAt: r.received_at });

export class RejectedSync {
  constructor(private readonly buffer: BufferStore) {}

  /** The buffer file's id (BufferStore.bufferId): its refused items' ids count from 1 again in a new file. */
  bufferId(): string {
    return this.buffer.bufferId();
  }

  /** The highest id uploaded (0: none). */
  uploadedThrough(): number {
    return Number(this.buffer.getMeta(REJECTED_THROUGH_KEY) ?? 0);
  }

  /** The batch planned and not yet marked uploaded, if any. */
  planned(): RejectedPlan | null {
    const text = this.buffer.getMeta(REJECTED_PLAN_KEY);
    return text === null ? null : (JSON.parse(text) as RejectedPlan);
  }

  /** Up to `limit` rows not yet uploaded, oldest first. */
  candidates(limit: number): RejectedRow[] {
    const rows = this.buffer.db
      .prepare('SELECT id, source, raw, reason, received_at FROM rejected WHERE id > ? ORDER BY id LIMIT ?')
      .all(this.uploadedThrough(), limit) as DbRejected[];
    return rows.map(toRow);
  }

  /** The rows of a planned batch still in the buffer (all of them: eviction skips them). */
  rowsOf(plan: RejectedPlan): RejectedRow[] {
    const rows = this.buffer.db
      .prepare('SELECT id, source, raw, reason, received_at FROM rejected WHERE id BETWEEN ? AND ? ORDER BY id')
      .all(plan.firstId, plan.lastId) as DbRejected[];
    return rows.map(toRow);
  }

  /** Persists the plan (committed with an fsync) before its upload starts. */
  persistPlan(plan: RejectedPlan): void {
    this.buffer.setMeta(REJECTED_PLAN_KEY, JSON.stringify(plan));
  }

  /** The planned batch is in Blob Storage: its rows count as uploaded, the plan is done (one transaction). */
  markUploaded(plan: RejectedPlan): void {
    const db = this.buffer.db;
    try {
      db.transaction(() => {
        db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(REJECTED_THROUGH_KEY, String(plan.lastId));
        db.prepare('DELETE FROM meta WHERE key = ?').run(REJECTED_PLAN_KEY);
      })();
    } catch (err) {
      throw classifySqliteError(err, this.buffer.path, 'marking refused items as uploaded');
    }
  }

  /** Refused items in the buffer not uploaded yet. */
  pending(): number {
    return (this.buffer.db.prepare(`SELECT count(*) AS n FROM rejected WHERE ${REJECTED_UNSENT_SQL}`).get() as { n: number }).n;
  }
}
