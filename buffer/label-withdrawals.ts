import { randomUUID } from 'node:crypto';
import { classifySqliteError } from './errors.js';
import type { BufferStore } from './store.js';

/**
 * SQL true for a row of `labels` that no withdrawal names: every view of the labels (GET /labels,
 * the label of an alert or an episode) leaves withdrawn ones out, so the label under a withdrawn
 * one applies again. A lookup on label_withdrawals' UNIQUE (label_id) index per label.
 */
export const NOT_WITHDRAWN_SQL = 'NOT EXISTS (SELECT 1 FROM label_withdrawals w WHERE w.label_id = labels.id)';

/** A technician's withdrawal of a label (DELETE /labels/:id, migration 12): the label goes back to "no label". */
export interface LabelWithdrawal {
  /** A random UUID, as a label's: its blob's name in labels/. */
  id: string;
  labelId: string;
  /** The withdrawn label's pump (the blob's `pumpid` metadata, by which the trainer picks what it downloads). */
  pumpId: string;
  author: string;
  note: string | null;
  createdAt: number;
  synced: boolean;
}

/** What withdraw() did: stored one, found no such label, or found it withdrawn already (that withdrawal). */
export type WithdrawOutcome = { outcome: 'withdrawn'; withdrawal: LabelWithdrawal } | { outcome: 'not-found' } | { outcome: 'already'; withdrawal: LabelWithdrawal };

/** A withdrawal's fields with its time as ISO 8601: the one mapping the API and the uploaded record share. */
export function withdrawalFields(w: LabelWithdrawal) {
  return { id: w.id, withdraws: w.labelId, pumpId: w.pumpId, author: w.author, note: w.note, createdAt: new Date(w.createdAt).toISOString() };
}

interface WithdrawalRow {
  id: string;
  label_id: string;
  pump_id: string;
  author: string;
  note: string | null;
  created_at: number;
  synced: number;
}

const SELECT = `SELECT w.id, w.label_id, l.pump_id, w.author, w.note, w.created_at, w.synced FROM label_withdrawals w JOIN labels l ON l.id = w.label_id`;

function fromRow(r: WithdrawalRow): LabelWithdrawal {
  return { id: r.id, labelId: r.label_id, pumpId: r.pump_id, author: r.author, note: r.note, createdAt: r.created_at, synced: r.synced === 1 };
}

/** Withdrawals of labels in the buffer's SQLite file; never evicted, as labels are not. */
export class LabelWithdrawals {
  constructor(
    private readonly buffer: BufferStore,
    /** SQL true for a label that can be shown (its times are dates): only such a label can be withdrawn. */
    private readonly shownSql: string,
  ) {}

  /**
   * Withdraws the label `labelId` (one that can be shown) once, closing it if it followed its
   * episode: a second withdrawal is refused with the first, so the record says who withdrew it
   * first. Throws a BufferError when nothing was stored.
   */
  withdraw(labelId: string, by: { author: string; note: string | null }, now: number): WithdrawOutcome {
    const db = this.buffer.db;
    try {
      return db.transaction((): WithdrawOutcome => {
        const label = db.prepare(`SELECT pump_id FROM labels WHERE id = ? AND ${this.shownSql}`).get(labelId) as { pump_id: string } | undefined;
        if (label === undefined) return { outcome: 'not-found' };
        const before = db.prepare(`${SELECT} WHERE w.label_id = ?`).get(labelId) as WithdrawalRow | undefined;
        if (before !== undefined) return { outcome: 'already', withdrawal: fromRow(before) };
        const withdrawal: LabelWithdrawal = { id: randomUUID(), labelId, pumpId: label.pump_id, author: by.author, note: by.note, createdAt: now, synced: false };
        db.prepare('INSERT INTO label_withdrawals (id, label_id, author, note, created_at) VALUES (?,?,?,?,?)').run(withdrawal.id, labelId, by.author, by.note, now);
        // A label that followed a running episode stops there, with the range it has: it is then
        // uploaded before its withdrawal, as every withdrawn label is (an open one is not uploaded).
        db.prepare('UPDATE labels SET follows_episode = 0 WHERE id = ?').run(labelId);
        return { outcome: 'withdrawn', withdrawal };
      })();
    } catch (err) {
      throw classifySqliteError(err, this.buffer.path, 'storing a label withdrawal');
    }
  }

  /** The withdrawals of these labels, by label id. */
  of(labelIds: readonly string[]): Map<string, LabelWithdrawal> {
    const get = this.buffer.db.prepare(`${SELECT} WHERE w.label_id = ?`);
    const out = new Map<string, LabelWithdrawal>();
    for (const id of labelIds) {
      const row = get.get(id) as WithdrawalRow | undefined;
      if (row !== undefined) out.set(id, fromRow(row));
    }
    return out;
  }

  unsyncedCount(): number {
    return (this.buffer.db.prepare('SELECT count(*) AS n FROM label_withdrawals WHERE synced = 0').get() as { n: number }).n;
  }

  /** Withdrawals not uploaded yet, oldest first. */
  unsynced(limit: number): LabelWithdrawal[] {
    return (this.buffer.db.prepare(`${SELECT} WHERE w.synced = 0 ORDER BY w.created_at, w.rowid LIMIT ?`).all(limit) as WithdrawalRow[]).map(fromRow);
  }

  markSynced(ids: readonly string[]): void {
    markSynced(this.buffer, 'label_withdrawals', ids, 'marking label withdrawals as uploaded');
  }
}

/** Marks rows of `table` (labels, label_withdrawals) uploaded, in one transaction. */
export function markSynced(buffer: BufferStore, table: 'labels' | 'label_withdrawals', ids: readonly string[], doing: string): void {
  if (ids.length === 0) return;
  const db = buffer.db;
  const mark = db.prepare(`UPDATE ${table} SET synced = 1 WHERE id = ?`);
  try {
    db.transaction(() => {
      for (const id of ids) mark.run(id);
    })();
  } catch (err) {
    throw classifySqliteError(err, buffer.path, doing);
  }
}
