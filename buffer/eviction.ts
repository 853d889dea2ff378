import type Database from 'better-sqlite3';
import { SYNCED_ROWS_SQL, UNPLANNED_SQL } from './ranges.js';

export interface EvictionCounts {
  /** Rows already uploaded, deleted to make room. */
  synced: number;
  /** Normal readings deleted before they could be uploaded. */
  unsynced: number;
  /** Anomalous readings deleted before they could be uploaded (only when nothing else was left). */
  anomalies: number;
  /** Rejected items deleted. */
  rejected: number;
}

/** Rows and rejected items of all kinds in these counts. */
export function evictedTotal(c: EvictionCounts): number {
  return c.synced + c.unsynced + c.anomalies + c.rejected;
}

const COUNTER = {
  synced: 'evicted_synced',
  unsynced: 'evicted_unsynced',
  anomalies: 'evicted_anomalies',
  rejected: 'evicted_rejected',
} as const;

/**
 * Eviction steps in the order they are tried: what is least valuable goes first. Rows of a planned
 * batch not yet uploaded are never touched: a retry must upload the same rows. Synced rows go
 * batch by batch in plan order; unsent rows are those in no planned range (buffer/ranges.ts).
 */
const STEPS: ReadonlyArray<{ kind: keyof EvictionCounts; sql: string; then?: string }> = [
  {
    kind: 'synced',
    sql: `DELETE FROM readings WHERE seq IN (SELECT r.seq FROM ${SYNCED_ROWS_SQL} ORDER BY b.id, r.seq LIMIT ?)`,
    // The uploaded batches before the first that still has rows are empty now: forget them, as
    // retention does. Kept, they filled the cap they were evicted under (a blob's record is about
    // 260 bytes; at 500 readings/s a 64 MB buffer held 10,837 of them after 40 minutes, and
    // retention would keep them 72 h), and every later eviction walked past them all.
    then: `DELETE FROM sync_batches WHERE state = 'uploaded' AND id < coalesce(
             (SELECT b.id FROM ${SYNCED_ROWS_SQL} ORDER BY b.id, r.seq LIMIT 1), (SELECT max(id) + 1 FROM sync_batches))`,
  },
  { kind: 'rejected', sql: 'DELETE FROM rejected WHERE id IN (SELECT id FROM rejected ORDER BY id LIMIT ?)' },
  {
    kind: 'unsynced',
    sql: `DELETE FROM readings WHERE seq IN (SELECT seq FROM readings r WHERE (anomaly IS NULL OR anomaly = 0)
          AND ${UNPLANNED_SQL} ORDER BY seq LIMIT ?)`,
  },
  {
    kind: 'anomalies',
    sql: `DELETE FROM readings WHERE seq IN (SELECT seq FROM readings r WHERE ${UNPLANNED_SQL} ORDER BY seq LIMIT ?)`,
  },
];

const KIB = 1024;
const MIB = 1024 * KIB;
/** The WAL index (`-shm`) of a WAL within its budget: 32 KiB. */
const SHM_BYTES = 32 * KIB;

/**
 * The write-ahead log's share of the cap: an eighth, from 64 KiB to 64 MiB (the default 1 GiB cap
 * gets 64 MiB, what the buffer used before the WAL was counted). SQLite truncates the WAL to it
 * whenever it starts the log over (`journal_size_limit`), and a commit checkpoints by itself when
 * the log grows past it (`wal_autocheckpoint`), so the WAL stays near this share between the
 * checkpoint thread's passes (every 500 ms).
 */
export function walBudget(maxBytes: number): number {
  return Math.min(64 * MIB, Math.max(64 * KIB, Math.floor(maxBytes / 8)));
}

/** What the database file's pages in use may take: the cap less the WAL's share and its index. */
export function databaseBudget(maxBytes: number): number {
  return Math.max(0, maxBytes - walBudget(maxBytes) - SHM_BYTES);
}

/**
 * The pages one step of the checkpoint thread's incremental vacuum moves: half the WAL's share
 * (16 to 2048 pages), each step checkpointed before the next, so the WAL stays within its share
 * while the file shrinks (see CHECKPOINT_JOB_SOURCE for how many steps a tick takes).
 */
const SHRINK_STEP_MIN_PAGES = 16;
const SHRINK_STEP_MAX_PAGES = 2048;

/**
 * Keeps the buffer's files under its byte cap: the database file's pages in use within
 * `databaseBudget`, evicted in chunks down to 95 % of it, and the WAL with its index within the
 * rest (`walBudget`). Freed pages are reused by SQLite, so at a fixed cap the file stops growing;
 * after the cap is lowered the checkpoint thread gives the free pages past the budget back
 * (`shrinkTarget`, incremental vacuum), so the file itself comes under the cap too.
 */
export class Eviction {
  private readonly totals: EvictionCounts;
  private readonly pageSize: number;
  private readonly pageCount: Database.Statement;
  private readonly freelistCount: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private maxBytes: number,
  ) {
    this.pageSize = Number(db.pragma('page_size', { simple: true }));
    this.pageCount = db.prepare('PRAGMA page_count').pluck();
    this.freelistCount = db.prepare('PRAGMA freelist_count').pluck();
    this.totals = { synced: 0, unsynced: 0, anomalies: 0, rejected: 0 };
    this.limitWal();
    const rows = db.prepare('SELECT name, value FROM counters WHERE name LIKE ?').all('evicted_%') as Array<{ name: string; value: number }>;
    for (const [kind, name] of Object.entries(COUNTER) as Array<[keyof EvictionCounts, string]>) {
      this.totals[kind] = rows.find((r) => r.name === name)?.value ?? 0;
    }
  }

  /** Runs after every commit: two prepared pragma statements (db.pragma() would prepare them each time). */
  usedBytes(): number {
    const pages = Number(this.pageCount.get());
    const free = Number(this.freelistCount.get());
    return (pages - free) * this.pageSize;
  }

  /** The database file as SQLite sees it (pages in use and free), which the checkpoint truncates the file to. */
  fileBytes(): number {
    return Number(this.pageCount.get()) * this.pageSize;
  }

  /**
   * How far the checkpoint thread shrinks the file (pages), once past it by `slackPages`: the database's share of the cap
   * `setting`, not of a lower cap the full disk imposes (there the file keeps its blocks, so
   * commits reuse its free pages instead of needing room the disk no longer has); and the most
   * pages one pass moves (SHRINK_STEP_*): the WAL takes them beside its share until the checkpoint.
   */
  shrinkTarget(setting: number): { pages: number; stepPages: number; slackPages: number } {
    const step = Math.floor(walBudget(this.maxBytes) / this.pageSize / 2);
    const pages = Math.max(1, Math.floor(databaseBudget(setting) / this.pageSize));
    return {
      pages,
      // An eighth of the share (64 pages at least): at a steady cap the file passes the share by
      // about one commit before eviction, and pages the next commits reuse are not worth moving
      // back and forth (each step also competes with the writer for the write lock).
      slackPages: Math.max(64, Math.floor(pages / 8)),
      stepPages: Math.max(SHRINK_STEP_MIN_PAGES, Math.min(SHRINK_STEP_MAX_PAGES, step)),
    };
  }

  counts(): EvictionCounts {
    return { ...this.totals };
  }

  /** Changes the cap (a live setting): the WAL's limits now, the database's at the next `enforce()`. */
  setMaxBytes(maxBytes: number): void {
    this.maxBytes = maxBytes;
    this.limitWal();
  }

  /** Returns what was evicted now, or null when the buffer is under its cap. */
  enforce(): EvictionCounts | null {
    return this.evictDownTo(databaseBudget(this.maxBytes), STEPS);
  }

  /** The WAL's limits on this connection, the one that writes and so starts the log over. */
  private limitWal(): void {
    const budget = walBudget(this.maxBytes);
    this.db.pragma(`journal_size_limit = ${budget}`);
    this.db.pragma(`wal_autocheckpoint = ${Math.max(1, Math.floor(budget / this.pageSize))}`);
  }

  /**
   * Frees about a tenth of the used space when the disk is full below the cap: synced rows, then
   * rejected items, and, with `unsent`, the cap's next steps too (the oldest unsent normal
   * readings, then anomalies): a full disk then keeps the newest readings, as the cap does,
   * instead of refusing them all. Returns what was evicted.
   */
  makeRoom(unsent: boolean): EvictionCounts {
    const none = { synced: 0, unsynced: 0, anomalies: 0, rejected: 0 };
    return this.evictDownTo(this.usedBytes() * 0.9, unsent ? STEPS : STEPS.slice(0, 2)) ?? none;
  }

  private evictDownTo(limitBytes: number, steps: typeof STEPS): EvictionCounts | null {
    if (this.usedBytes() <= limitBytes) return null;
    const freed: EvictionCounts = { synced: 0, unsynced: 0, anomalies: 0, rejected: 0 };
    const target = limitBytes * 0.95;
    const bump = this.db.prepare(
      'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    );
    for (const step of steps) {
      const del = this.db.prepare(step.sql);
      const then = step.then === undefined ? null : this.db.prepare(step.then);
      while (this.usedBytes() > target) {
        const chunk = Math.max(256, Math.ceil(this.rowEstimate() * 0.02));
        const n = this.db.transaction(() => {
          const changes = del.run(chunk).changes;
          if (changes > 0) {
            bump.run(COUNTER[step.kind], changes);
            then?.run();
          }
          return changes;
        })();
        if (n === 0) break;
        freed[step.kind] += n;
        this.totals[step.kind] += n;
      }
      if (this.usedBytes() <= target) break;
    }
    return freed;
  }

  private rowEstimate(): number {
    const row = this.db.prepare('SELECT max(seq) - min(seq) + 1 AS n FROM readings').get() as { n: number | null };
    return row.n ?? 0;
  }
}
