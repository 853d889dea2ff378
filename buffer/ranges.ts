import type Database from 'better-sqlite3';
import type { BufferError } from './errors.js';
import type { DbRow } from './rows.js';
import { prepareRowReads, readCandidates, readRange, type UnreadableRun } from './unreadable.js';

/**
 * Where sync stands, kept as sequence ranges instead of per-row flags (schema 6). A planned batch
 * owns every row of its pump with `first_seq ≤ seq ≤ last_seq`; it is fixed when planned (sequence
 * numbers only grow, so no later row can fall inside it) and its rows are synced once its state is
 * `uploaded`. Planning and marking a batch therefore write one row of `sync_batches`, never the
 * thousands of readings it covers (rewriting them cost more than the upload itself).
 *
 * Ranges of one pump never overlap, so "the range holding or following seq" is one index probe on
 * sync_batches (pump_id, last_seq), and skipping a planned range is one step however many rows it has.
 * Rows a damaged page keeps from being read are a range too (kind `unreadable`, state `failed`:
 * recordUnreadable), so the planner, the anomaly walk and eviction skip them the same way.
 */

// Which refused items (the `rejected` table) went up, and the batch of them being uploaded: meta
// keys of buffer/rejected-sync.ts, here beside the readings' rules so eviction reads them without it.
export const REJECTED_THROUGH_KEY = 'sync_rejected_through';
export const REJECTED_PLAN_KEY = 'sync_rejected_plan';

const planBound = (field: 'firstId' | 'lastId'): string =>
  `coalesce((SELECT json_extract(value, '$.${field}') FROM meta WHERE key = '${REJECTED_PLAN_KEY}'), 0)`;

/** SQL true for a rejected row (alias-free `id`) that eviction may take: one not in the planned batch. */
export const REJECTED_EVICTABLE_SQL = `id NOT BETWEEN ${planBound('firstId')} AND ${planBound('lastId')}`;
/** SQL true for a rejected row not uploaded yet. */
export const REJECTED_UNSENT_SQL = `id > coalesce((SELECT CAST(value AS INTEGER) FROM meta WHERE key = '${REJECTED_THROUGH_KEY}'), 0)`;

/** SQL true when the reading aliased `r` lies in no planned range (one index probe per row). */
export const UNPLANNED_SQL = `coalesce((SELECT b.first_seq FROM sync_batches b WHERE b.pump_id = r.pump_id AND b.last_seq >= r.seq
  ORDER BY b.last_seq LIMIT 1), 9223372036854775807) > r.seq`;

/** SQL joining each uploaded batch `b` to its rows `r`: batches walked in plan order (NOT INDEXED, CROSS JOIN), rows by seq. */
export const SYNCED_ROWS_SQL = `sync_batches b NOT INDEXED CROSS JOIN readings r ON r.pump_id = b.pump_id AND r.seq BETWEEN b.first_seq AND b.last_seq
  WHERE b.state = 'uploaded'`;

export interface Unplanned {
  seq: number;
  /** First seq of the next planned range of the pump (rows from here on are taken), or null. */
  bound: number | null;
}

interface Range {
  first_seq: number;
  last_seq: number;
}

/** A range of rows set aside as unreadable (PlannedRanges.recordUnreadable). */
export interface UnreadableRange {
  pumpId: string;
  firstSeq: number;
  lastSeq: number;
  rows: number;
  /** When the sync found it (epoch ms). */
  foundAt: number;
  error: string;
}

export interface UnreadableSummary {
  ranges: number;
  rows: number;
  /** The newest ranges, newest first (at most UNREADABLE_LISTED). */
  recent: UnreadableRange[];
}

/** Unreadable ranges listed one by one in /status (the totals count them all). */
const UNREADABLE_LISTED = 10;

interface UnreadableRangeRow {
  pump_id: string;
  first_seq: number;
  last_seq: number;
  row_count: number;
  created_at: number;
  error: string;
}

const NO_BOUND = Number.MAX_SAFE_INTEGER;
/** Anomalies the walk reads from the index at a time. */
const ANOMALY_WALK_STEP = 64;

export class PlannedRanges {
  /** Per pump: every row with seq ≤ this is planned (or gone). Grows, but for a dropped plan (forgetPlan); a stale value costs a step. */
  private readonly through = new Map<string, number>();
  /** Every anomaly with seq ≤ this is planned or gone: the anomaly walk stops here. */
  private anomaliesPlannedThrough = -1;
  /**
   * What the last anomaly walk found: every anomaly with `from` < seq ≤ `to` is planned or gone
   * (`from`, the anomaly it returned, is looked at again), so the next walk steps over them at once.
   */
  private plannedAnomalies: { from: number; to: number } | null = null;
  /** The pumps as last listed (pumpIds), with the newest seq then (oldestUnplanned). */
  private listed: { pumps: string[]; through: number } | null = null;
  private stmts: ReturnType<typeof prepare> | null = null;
  private stmtsDb: Database.Database | null = null;
  /** The unreadable ranges' totals and newest ones, read once per file and kept up to date by recordUnreadable. */
  private unreadableCache: UnreadableSummary | null = null;

  /**
   * `onUndecodable`: told of each row the sync's reads here meet whose contributions cannot be
   * decoded (read with `contributions: null`, uploaded with the rest as stored).
   */
  constructor(
    private readonly db: () => Database.Database,
    private readonly onUndecodable: (err: BufferError) => void,
  ) {}

  private q(): ReturnType<typeof prepare> {
    const db = this.db();
    if (this.stmts === null || this.stmtsDb !== db) {
      this.stmts = prepare(db, this.onUndecodable);
      this.stmtsDb = db;
      this.through.clear();
      this.listed = null;
      this.forgetAnomalyWalk();
      this.unreadableCache = null;
    }
    return this.stmts;
  }

  /** Distinct pump ids of the buffer, in O(pumps · log rows) by skipping along readings_pump_seq. */
  pumpIds(): string[] {
    return (this.q().pumps.all() as Array<{ id: string }>).map((r) => r.id);
  }

  /** The range of `pumpId` holding `seq` or the next one after it. */
  private rangeFrom(pumpId: string, seq: number): Range | undefined {
    return this.q().rangeFrom.get(pumpId, seq) as Range | undefined;
  }

  /**
   * The oldest unplanned row of one pump, with the start of the planned range that follows it.
   * `newestSeq`, the newest seq committed: a pump with no unplanned row has every row up to it
   * planned, so the next look starts above it.
   */
  private firstUnplanned(pumpId: string, newestSeq: number): Unplanned | null {
    const q = this.q();
    let after = this.through.get(pumpId) ?? -1;
    for (;;) {
      const row = q.nextRow.get(pumpId, after) as { seq: number } | undefined;
      if (row === undefined) {
        this.through.set(pumpId, Math.max(after, newestSeq));
        return null;
      }
      const range = this.rangeFrom(pumpId, row.seq);
      if (range !== undefined && range.first_seq <= row.seq) {
        after = range.last_seq;
        continue;
      }
      this.through.set(pumpId, row.seq - 1);
      return { seq: row.seq, bound: range?.first_seq ?? null };
    }
  }

  /**
   * The oldest unplanned row of any pump at or before `upTo` (default: any), with its pump and the
   * start of its pump's planned range after it: where a bulk batch starts. Each pump's `through` + 1
   * is a lower bound of its oldest unplanned row, so the pumps are looked at from the lowest bound
   * up, and the look stops at the first whose bound is past the best row found. Between two plans
   * only the pump just planned has moved, so a pick looks at two or three pumps, not at each of them
   * (it was two index probes per pump and batch: 1.2 of the 2.4 ms a batch's planning took at 100
   * pumps, on the scoring thread). The pumps are listed again only when rows up to `upTo` may hold
   * a pump not listed before: once a sync cycle, whose horizon stays put.
   */
  oldestUnplanned(upTo = NO_BOUND): (Unplanned & { pumpId: string }) | null {
    const q = this.q();
    const newestSeq = (q.newestSeq.get() as { s: number | null }).s;
    if (newestSeq === null) return null;
    const top = Math.min(upTo, newestSeq);
    // A pump first seen after the listing has only rows above the newest seq of then.
    if (this.listed === null || this.listed.through < top) this.listed = { pumps: this.pumpIds(), through: newestSeq };
    const order = this.listed.pumps.map((pumpId) => ({ pumpId, from: (this.through.get(pumpId) ?? -1) + 1 })).sort((a, b) => a.from - b.from);
    let oldest: (Unplanned & { pumpId: string }) | null = null;
    for (const { pumpId, from } of order) {
      if (from > top || (oldest !== null && from >= oldest.seq)) break;
      const u = this.firstUnplanned(pumpId, newestSeq);
      if (u !== null && u.seq <= top && (oldest === null || u.seq < oldest.seq)) oldest = { pumpId, ...u };
    }
    return oldest;
  }

  /**
   * The newest unplanned anomaly at or before `upTo` (default: any), of any pump, with the start of
   * its pump's planned range after it. Walks down the anomalies in seq order (readings_anomalies_seq_pump,
   * (seq, pump_id): the index alone, appended to at the end by each commit, never a pump-first index
   * that every commit would write one page of per pump) from the newest, stepping over the planned
   * ones: those of a pump in a planned range it has met (one probe on sync_batches per range), and
   * at once over those the last walk saw planned, down to where every anomaly is planned. Each
   * anomaly is thus looked at about once over the planning of a backlog, not once per batch.
   */
  newestUnplannedAnomaly(upTo = NO_BOUND): (Unplanned & { pumpId: string }) | null {
    const q = this.q();
    const newestSeq = (q.newestSeq.get() as { s: number | null }).s;
    if (newestSeq === null) return null;
    // Sequence numbers only grow: no anomaly at or below the newest committed seq is still to come.
    const top = Math.min(upTo, newestSeq);
    const floor = this.anomaliesPlannedThrough;
    const known = this.plannedAnomalies;
    /** Per pump met on this walk: its anomalies from this seq up to the walk's top are planned. */
    const plannedFrom = new Map<string, number>();
    let below = top + 1;
    for (;;) {
      const batch = q.prevAnomalies.all(below, floor, ANOMALY_WALK_STEP) as Array<{ seq: number; pump_id: string }>;
      if (batch.length === 0) {
        // Every anomaly up to top is planned; with the last walk's span above it, up to that span's end.
        const through = known !== null && known.from <= top ? Math.max(top, known.to) : top;
        this.anomaliesPlannedThrough = Math.max(floor, through);
        if (known !== null && known.from <= top) this.plannedAnomalies = null;
        return null;
      }
      let jumped = false;
      for (const { seq, pump_id: pumpId } of batch) {
        if (known !== null && seq > known.from && seq <= known.to) {
          below = known.from + 1; // planned as the last walk saw them: on to the anomaly it returned
          jumped = true;
          break;
        }
        if (seq >= (plannedFrom.get(pumpId) ?? NO_BOUND) || seq <= (this.through.get(pumpId) ?? -1)) continue;
        const range = this.rangeFrom(pumpId, seq);
        if (range !== undefined && range.first_seq <= seq) {
          plannedFrom.set(pumpId, range.first_seq);
          continue;
        }
        // Planned: (seq, top] as walked, and the last walk's span when it reaches down into that.
        this.plannedAnomalies = { from: seq, to: known !== null && known.from <= top && known.to > top ? known.to : top };
        return { seq, pumpId, bound: range?.first_seq ?? null };
      }
      if (!jumped) below = batch[batch.length - 1]!.seq;
    }
  }

  /**
   * A plan of `pumpId` from `firstSeq` on was dropped: its rows are unplanned again. The pump's
   * `through` (every row up to it planned) may already be past them, when later rows were planned
   * after it, and would have the planner skip them until a restart; the anomaly walk forgets too.
   */
  forgetPlan(pumpId: string, firstSeq: number): void {
    const through = this.through.get(pumpId);
    if (through !== undefined && through >= firstSeq) this.through.set(pumpId, firstSeq - 1);
    this.forgetAnomalyWalk();
  }

  /**
   * Forgets what the anomaly walk knows to be planned: for a plan dropped (its rows are unplanned
   * again, anomalies among them), and for another file.
   */
  forgetAnomalyWalk(): void {
    this.anomaliesPlannedThrough = -1;
    this.plannedAnomalies = null;
  }

  /** Last seq of the planned range of `pumpId` before `seq` (rows after it are free), or -1. */
  rangeEndBefore(pumpId: string, seq: number): number {
    const r = this.q().rangeBefore.get(pumpId, seq) as { last_seq: number } | undefined;
    return r?.last_seq ?? -1;
  }

  /**
   * Rows of `pumpId` with from ≤ seq < bound, in order, as stored: planning candidates. Those
   * before a damaged page; RowsUnreadableError when the first cannot be read (buffer/unreadable.ts).
   */
  candidates(pumpId: string, from: number, bound: number | null, limit: number): DbRow[] {
    return readCandidates(this.db(), this.q().reads, pumpId, from, bound, limit);
  }

  /** The rows of a planned range, in order, as stored; RowsUnreadableError when any cannot be read. */
  rangeRows(pumpId: string, firstSeq: number, lastSeq: number): DbRow[] {
    return readRange(this.db(), this.q().reads, pumpId, firstSeq, lastSeq);
  }

  /** Seq of the oldest of the newest `limit` unplanned rows of `pumpId` after `after` up to `upTo`: where an anomaly's context may start. */
  contextFrom(pumpId: string, after: number, upTo: number, limit: number): number | null {
    return (this.q().context.get(pumpId, after, upTo, limit) as { seq: number | null }).seq;
  }

  /** Rows currently stored in a range (a planned range loses rows only to retention or eviction once synced). */
  countRows(pumpId: string, firstSeq: number, lastSeq: number): number {
    return (this.q().count.get(pumpId, firstSeq, lastSeq) as { n: number }).n;
  }

  /**
   * Sets a run of rows that cannot be read aside as a range of its own (kind `unreadable`, state
   * `failed`, never uploaded, never planned again, never marked synced): the planner, the anomaly
   * walk and eviction skip it as they skip any planned range, so nothing reads the damaged page
   * again. False when a range of the pump already holds part of it (planned meanwhile): plan again.
   */
  recordUnreadable(run: UnreadableRun, now: number): boolean {
    const q = this.q();
    const db = this.db();
    const recorded = db.transaction(() => {
      const range = q.rangeFrom.get(run.pumpId, run.firstSeq) as Range | undefined;
      if (range !== undefined && range.first_seq <= run.lastSeq) return false;
      q.insertUnreadable.run(run.pumpId, run.firstSeq, run.lastSeq, run.rows, `unreadable/${run.pumpId}/${run.firstSeq}-${run.lastSeq}`, now, run.error);
      return true;
    })();
    if (recorded) this.unreadableCache = null;
    return recorded;
  }

  /** Rows set aside as unreadable (recordUnreadable): how many, in how many ranges, and the newest ranges. */
  unreadable(): UnreadableSummary {
    const q = this.q();
    if (this.unreadableCache === null) {
      const totals = q.unreadableTotals.get() as { ranges: number; rows: number | null };
      const recent = totals.ranges === 0 ? [] : (q.unreadableRecent.all(UNREADABLE_LISTED) as UnreadableRangeRow[]);
      this.unreadableCache = {
        ranges: totals.ranges,
        rows: totals.rows ?? 0,
        recent: recent.map((r) => ({ pumpId: r.pump_id, firstSeq: r.first_seq, lastSeq: r.last_seq, rows: r.row_count, foundAt: r.created_at, error: r.error })),
      };
    }
    return this.unreadableCache;
  }

  /** Rows in uploaded ranges: the synced rows still kept. */
  countSynced(): number {
    return (this.db().prepare(`SELECT count(*) AS n FROM ${SYNCED_ROWS_SQL}`).get() as { n: number }).n;
  }

  /** Seq of the oldest row not yet synced: the oldest unplanned row or the first row of a batch not uploaded. */
  oldestUnsyncedSeq(): number | null {
    const pending = (this.q().oldestPending.get() as { s: number | null }).s ?? NO_BOUND;
    const oldest = Math.min(pending, this.oldestUnplanned()?.seq ?? NO_BOUND);
    return oldest === NO_BOUND ? null : oldest;
  }
}

function prepare(db: Database.Database, onUndecodable: (err: BufferError) => void) {
  return {
    pumps: db.prepare(
      `WITH RECURSIVE p(id) AS (
         SELECT (SELECT pump_id FROM readings ORDER BY pump_id LIMIT 1)
         UNION ALL SELECT (SELECT pump_id FROM readings WHERE pump_id > p.id ORDER BY pump_id LIMIT 1) FROM p WHERE p.id IS NOT NULL)
       SELECT id FROM p WHERE id IS NOT NULL`,
    ),
    nextRow: db.prepare('SELECT seq FROM readings WHERE pump_id = ? AND seq > ? ORDER BY seq LIMIT 1'),
    newestSeq: db.prepare('SELECT max(seq) AS s FROM readings'),
    prevAnomalies: db.prepare(
      'SELECT seq, pump_id FROM readings INDEXED BY readings_anomalies_seq_pump WHERE anomaly = 1 AND seq < ? AND seq > ? ORDER BY seq DESC LIMIT ?',
    ),
    rangeFrom: db.prepare('SELECT first_seq, last_seq FROM sync_batches WHERE pump_id = ? AND last_seq >= ? ORDER BY last_seq LIMIT 1'),
    rangeBefore: db.prepare('SELECT last_seq FROM sync_batches WHERE pump_id = ? AND last_seq < ? ORDER BY last_seq DESC LIMIT 1'),
    reads: prepareRowReads(db, onUndecodable),
    context: db.prepare(
      'SELECT min(seq) AS seq FROM (SELECT seq FROM readings WHERE pump_id = ? AND seq > ? AND seq <= ? ORDER BY seq DESC LIMIT ?)',
    ),
    count: db.prepare('SELECT count(*) AS n FROM readings WHERE pump_id = ? AND seq BETWEEN ? AND ?'),
    // Unreadable ranges wait for nothing: the oldest row that can still go is after them.
    oldestPending: db.prepare("SELECT min(first_seq) AS s FROM sync_batches WHERE state <> 'uploaded' AND kind = 'readings'"),
    insertUnreadable: db.prepare(
      `INSERT INTO sync_batches (kind, pump_id, first_seq, last_seq, row_count, blob_name, priority, state, created_at, error)
       VALUES ('unreadable', ?, ?, ?, ?, ?, 1, 'failed', ?, ?)`,
    ),
    // A scan of sync_batches (no index on kind: a schema change for it would stop older agents
    // opening the file): once per file, then kept by recordUnreadable.
    unreadableTotals: db.prepare("SELECT count(*) AS ranges, sum(row_count) AS rows FROM sync_batches WHERE kind = 'unreadable'"),
    unreadableRecent: db.prepare("SELECT pump_id, first_seq, last_seq, row_count, created_at, error FROM sync_batches WHERE kind = 'unreadable' ORDER BY id DESC LIMIT ?"),
  };
}
