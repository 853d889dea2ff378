import type Database from 'better-sqlite3';
import { REJECTED_EVICTABLE_SQL, REJECTED_UNSENT_SQL, SYNCED_ROWS_SQL, UNPLANNED_SQL, type PlannedRanges } from './ranges.js';
import { deleteEach, isCorruptPage, readBySeq, runText, seqsAcrossPumps, type DamagedRows, type UnreadableRun, type Undeletable } from './unreadable.js';

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

/**
 * An eviction that failed part-way (a full disk, a damaged page): the chunks committed before the
 * failure stay evicted and are in the stored totals; `freed` counts them, so counts kept beside
 * the totals (the store's since-start count) can follow. `cause` is the error that stopped it.
 */
export class EvictionFailed extends Error {
  constructor(
    readonly freed: EvictionCounts,
    cause: unknown,
  ) {
    super(cause instanceof Error ? cause.message : String(cause), { cause });
    this.name = 'EvictionFailed';
  }
}

const COUNTER = {
  synced: 'evicted_synced',
  unsynced: 'evicted_unsynced',
  anomalies: 'evicted_anomalies',
  rejected: 'evicted_rejected',
} as const;

/**
 * When unsent rows (normal or anomalous) were last evicted, wall-clock ms: kept in the counters
 * table beside the counts, written in the same transaction, so /healthz still names a loss after
 * a restart (IoT Edge restarts the module on every deployment). Not named `evicted_*`, which the
 * counts are read by.
 */
const UNSENT_LAST_AT = 'unsent_evicted_last_at';
/**
 * Refused items evicted before they were uploaded to `rejected/` (buffer/rejected-sync.ts), kept
 * with the counts; part of `evicted_rejected`, so not named `evicted_*` either.
 */
const UNSENT_REJECTED = 'unsent_rejected_evicted';

/**
 * Eviction steps in the order they are tried: what is least valuable goes first. Rows of a planned
 * batch not yet uploaded are never touched: a retry must upload the same rows. Synced rows go
 * batch by batch in plan order; unsent rows are those in no planned range (buffer/ranges.ts).
 */
const STEPS: ReadonlyArray<{ kind: keyof EvictionCounts; sql: string; then?: string; unsent?: string }> = [
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
  // Refused items oldest first, but never those of the batch being uploaded (a retry must send the
  // same rows); `unsent` counts, before the delete, how many of the rows it takes never went up.
  {
    kind: 'rejected',
    sql: `DELETE FROM rejected WHERE id IN (SELECT id FROM rejected WHERE ${REJECTED_EVICTABLE_SQL} ORDER BY id LIMIT ?)`,
    unsent: `SELECT count(*) FROM (SELECT id FROM rejected WHERE ${REJECTED_EVICTABLE_SQL} ORDER BY id LIMIT ?) WHERE ${REJECTED_UNSENT_SQL}`,
  },
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

/**
 * What the row-by-row path (salvage, after a step met a damaged page) reads, by the (pump_id, seq)
 * index only: the synced rows in the order the synced step takes them; a pump's unplanned rows.
 */
const SALVAGE = {
  synced: `SELECT r.seq FROM sync_batches b NOT INDEXED CROSS JOIN readings r INDEXED BY readings_pump_seq
           ON r.pump_id = b.pump_id AND r.seq BETWEEN b.first_seq AND b.last_seq WHERE b.state = 'uploaded' ORDER BY b.id, r.seq LIMIT ?`,
  unplanned: `SELECT seq FROM readings r INDEXED BY readings_pump_seq WHERE r.pump_id = ? AND r.seq > ? AND ${UNPLANNED_SQL} ORDER BY r.seq LIMIT ?`,
};

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
  private lastUnsentAt: number | null;
  /** Refused items evicted before they were uploaded, kept across restarts (UNSENT_REJECTED). */
  private unsentRejected: number;
  private readonly pageSize: number;
  private readonly pageCount: Database.Statement;
  private readonly freelistCount: Database.Statement;

  constructor(
    private readonly db: Database.Database,
    private maxBytes: number,
    /** For going past a damaged page (see salvage): the sync's ranges, where unreadable rows are set aside, and the rows that cannot be deleted. */
    private readonly damage?: { ranges: PlannedRanges; rows: DamagedRows },
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
    const last = db.prepare('SELECT value FROM counters WHERE name = ?').pluck().get(UNSENT_LAST_AT) as number | undefined;
    this.lastUnsentAt = last ?? null;
    this.unsentRejected = (db.prepare('SELECT value FROM counters WHERE name = ?').pluck().get(UNSENT_REJECTED) as number | undefined) ?? 0;
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

  /** When rows not yet uploaded were last evicted (wall-clock ms, kept across restarts); null: never in this file. */
  lastUnsentEvictionAt(): number | null {
    return this.lastUnsentAt;
  }

  /** Refused items evicted before they were uploaded to `rejected/`, in this file's life. */
  unsentRejectedEvicted(): number {
    return this.unsentRejected;
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

  /** Evicts in chunks, each its own transaction; throws EvictionFailed when a chunk fails after others were committed. */
  private evictDownTo(limitBytes: number, steps: typeof STEPS): EvictionCounts | null {
    if (this.usedBytes() <= limitBytes) return null;
    const freed: EvictionCounts = { synced: 0, unsynced: 0, anomalies: 0, rejected: 0 };
    try {
      this.evictSteps(limitBytes, steps, freed);
    } catch (err) {
      throw evictedTotal(freed) > 0 ? new EvictionFailed(freed, err) : err;
    }
    return freed;
  }

  /** The chunks of evictDownTo, adding what each commits to `freed` as it goes. */
  private evictSteps(limitBytes: number, steps: typeof STEPS, freed: EvictionCounts): void {
    const target = limitBytes * 0.95;
    const bump = this.db.prepare(
      'INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = value + excluded.value',
    );
    const stamp = this.db.prepare('INSERT INTO counters (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value');
    const now = Date.now();
    for (const step of steps) {
      const del = this.db.prepare(step.sql);
      const then = step.then === undefined ? null : this.db.prepare(step.then);
      const unsentOf = step.unsent === undefined ? null : this.db.prepare(step.unsent).pluck();
      const unsent = step.kind === 'unsynced' || step.kind === 'anomalies';
      const record = (n: number): void => {
        bump.run(COUNTER[step.kind], n);
        if (unsent) stamp.run(UNSENT_LAST_AT, now);
        then?.run();
      };
      while (this.usedBytes() > target) {
        const chunk = Math.max(256, Math.ceil(this.rowEstimate() * 0.02));
        let n: number;
        let lost = 0;
        try {
          n = this.db.transaction(() => {
            lost = unsentOf === null ? 0 : (unsentOf.get(chunk) as number);
            const changes = del.run(chunk).changes;
            if (changes > 0) record(changes);
            if (lost > 0) bump.run(UNSENT_REJECTED, lost);
            return changes;
          })();
          this.unsentRejected += lost;
        } catch (err) {
          if (!isCorruptPage(err) || this.damage === undefined || step.kind === 'rejected') throw err;
          n = this.salvage(step.kind, chunk, this.damage, record);
        }
        if (n === 0) break;
        freed[step.kind] += n;
        this.totals[step.kind] += n;
        if (unsent) this.lastUnsentAt = now;
      }
      if (this.usedBytes() <= target) break;
    }
  }

  /**
   * One step's chunk row by row, after its statement met a damaged page: the rows it would take,
   * listed by the (pump_id, seq) index, each deleted on its own (deleteEach). Unsent rows that
   * cannot be read are set aside as the sync does (an `unreadable` range: counted, said, skipped
   * from then on, across restarts); rows that cannot be deleted are remembered for as long as the
   * file is open (DamagedRows) and skipped. Returns the rows deleted.
   */
  private salvage(kind: Exclude<keyof EvictionCounts, 'rejected'>, chunk: number, damage: { ranges: PlannedRanges; rows: DamagedRows }, inTransaction: (n: number) => void): number {
    const del = this.db.prepare('DELETE FROM readings WHERE seq = ?');
    if (kind === 'synced') {
      const listed = this.db.prepare(SALVAGE.synced).pluck().all(chunk + damage.rows.size) as number[];
      const seqs = listed.filter((seq) => !damage.rows.has(seq)).slice(0, chunk);
      const { deleted, failed } = deleteEach(this.db, del, seqs, inTransaction);
      damage.rows.add('eviction', 'synced', failed);
      return deleted;
    }
    const list = this.db.prepare(SALVAGE.unplanned).pluck();
    const read = this.db.prepare('SELECT pump_id AS pumpId, anomaly FROM readings WHERE seq = ?');
    const pumpIds = damage.ranges.pumpIds();
    const pumpOf = new Map<number, string>();
    const listPump = (pumpId: string, after: number, limit: number): number[] => {
      const seqs = list.all(pumpId, after, limit) as number[];
      for (const seq of seqs) pumpOf.set(seq, pumpId);
      return seqs;
    };
    const take: number[] = [];
    const unreadable: Undeletable[] = [];
    // Walks the unplanned rows oldest first until a chunk is found (anomalies, kept by the unsynced step, are passed over).
    for (let after = -1; take.length < chunk; ) {
      const seqs = seqsAcrossPumps(pumpIds, listPump, after, chunk);
      for (const seq of seqs) {
        if (take.length >= chunk) break;
        after = seq;
        if (damage.rows.has(seq)) continue;
        if (kind === 'anomalies') {
          take.push(seq);
          continue;
        }
        const r = readBySeq<{ anomaly: number | null }>(read, seq);
        if ('error' in r) unreadable.push({ seq, error: r.error });
        else if (r.row !== undefined && r.row.anomaly !== 1) take.push(seq);
      }
      if (seqs.length < chunk) break;
    }
    const { deleted, failed } = deleteEach(this.db, del, take, inTransaction);
    for (const f of failed) {
      // Unreadable (its page is the damaged one), or readable but not deletable (a page its delete rebalances is).
      const r = readBySeq(read, f.seq);
      if ('error' in r) unreadable.push(f);
      else damage.rows.add('eviction', 'unsent', [f]);
    }
    this.setAside(unreadable, pumpOf, damage);
    return deleted;
  }

  /** Sets unsent rows that cannot be read aside, in runs of one pump's consecutive rows (PlannedRanges.recordUnreadable). */
  private setAside(rows: readonly Undeletable[], pumpOf: ReadonlyMap<number, string>, damage: { ranges: PlannedRanges; rows: DamagedRows }): void {
    const byPump = new Map<string, Undeletable[]>();
    for (const r of [...rows].sort((a, b) => a.seq - b.seq)) {
      const pumpId = pumpOf.get(r.seq)!;
      const list = byPump.get(pumpId);
      if (list) list.push(r);
      else byPump.set(pumpId, [r]);
    }
    const now = Date.now();
    for (const [pumpId, list] of byPump) {
      const run: UnreadableRun = { pumpId, firstSeq: list[0]!.seq, lastSeq: list.at(-1)!.seq, rows: list.length, error: list[0]!.error };
      // One range for them all; should a planned range lie between two of them, one range each.
      const runs = damage.ranges.countRows(pumpId, run.firstSeq, run.lastSeq) === run.rows ? [run] : list.map((r) => ({ pumpId, firstSeq: r.seq, lastSeq: r.seq, rows: 1, error: r.error }));
      for (const one of runs) {
        if (damage.ranges.recordUnreadable(one, now)) {
          damage.rows.warn(`eviction: ${runText(one)} cannot be read from the buffer (a damaged page of the file: ${one.error}): they are set aside, never uploaded nor marked synced (PW_BUFFER_ROWS_UNREADABLE)`);
        } else {
          damage.rows.add('eviction', 'unsent', list.filter((r) => r.seq >= one.firstSeq && r.seq <= one.lastSeq));
        }
      }
    }
  }

  private rowEstimate(): number {
    const row = this.db.prepare('SELECT max(seq) - min(seq) + 1 AS n FROM readings').get() as { n: number | null };
    return row.n ?? 0;
  }
}
