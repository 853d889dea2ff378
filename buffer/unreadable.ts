import type Database from 'better-sqlite3';
import { ContributionNames, isUndecodableText } from './contributions.js';
import { BufferError } from './errors.js';
import { CANDIDATES_SQL, RANGE_SQL, ROW_COLUMNS, readRows, type DbRow } from './rows.js';

/**
 * Rows a damaged page of the readings table keeps from being read (a bad SD-card sector, a torn
 * write): SQLite answers SQLITE_CORRUPT to every read that touches the page. Before, the sync read a
 * batch's rows in one query, so the batch holding the page failed every cycle and no reading
 * received after it was ever uploaded. Here a read that meets such a page is done again row by
 * row, to find which rows can still be read:
 * - the seqs come from the (pump_id, seq) index alone (readings_pump_seq, a b-tree of its own), so
 *   the damaged table page is not touched to list them, and the rows lost are counted exactly;
 * - each row is then read by its seq (one rowid lookup: only the leaf that holds it). A range scan
 *   over the rowid b-tree would not do: it fails as soon as it steps onto the damaged leaf, also
 *   when the range's last row is the last of the leaf before (measured: seq 1467–1486 failed,
 *   1467–1485 read, with the damage starting at 1487).
 * The cost is bounded by the batch (at most `limit` lookups), and paid only on the read that fails.
 * A row that SQLite reads but whose contributions BLOB cannot be decoded is not unreadable: its
 * values, score and verdict are intact, so the sync's reads get it with `contributions: null` and
 * tell `onUndecodable` (prepareRowReads), which records it; it is uploaded like any other row.
 * A damaged index, or a file SQLite cannot read at all, stays PW_BUFFER_CORRUPT here (one that fails
 * the buffer's open is built again from its table there: buffer/repair.ts).
 */

/** Rows of one pump, consecutive in its seq order, that cannot be read. */
export interface UnreadableRun {
  pumpId: string;
  firstSeq: number;
  lastSeq: number;
  /** Rows of the pump in [firstSeq, lastSeq] (its index lists them; their table page cannot be read). */
  rows: number;
  /** What SQLite said. */
  error: string;
}

/** Thrown when a read for the sync cannot read the rows it starts with: the caller sets them aside (SyncBatches.recordUnreadable). */
export class RowsUnreadableError extends BufferError {
  constructor(readonly run: UnreadableRun) {
    super('PW_BUFFER_ROWS_UNREADABLE', `${runText(run)} cannot be read from the buffer (${run.error})`);
    this.name = 'RowsUnreadableError';
  }
}

/** "3 rows of pump-a (seq 12–17)": how a run is named in logs, errors and /healthz. */
export function runText(run: { pumpId: string; firstSeq: number; lastSeq: number; rows: number }): string {
  const seqs = run.firstSeq === run.lastSeq ? `seq ${run.firstSeq}` : `seq ${run.firstSeq}–${run.lastSeq}`;
  return `${run.rows} row${run.rows === 1 ? '' : 's'} of ${run.pumpId} (${seqs})`;
}

/**
 * Why a run of rows cannot be read, as messages say it: a damaged page, or (ranges set aside before
 * such rows were uploaded with `contributions: null`, still in a file) a row whose contributions
 * cannot be decoded.
 */
export function unreadableCause(error: string): string {
  return isUndecodableText(error) ? 'a row whose stored contributions cannot be decoded' : 'a damaged page of the file';
}

/** A SQLite error saying a page of the file is damaged (not: the file is no database at all). */
export function isCorruptPage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && code.startsWith('SQLITE_CORRUPT')) return true;
  return err instanceof BufferError && err.code === 'PW_BUFFER_CORRUPT' && isCorruptPage(err.cause);
}

/** The statements a salvaging read needs, prepared once per connection. */
export interface RowReads {
  /** Planning candidates: rows of a pump with from ≤ seq < bound, in order, at most a limit. */
  candidates: Database.Statement;
  /** The rows of a planned range, in order. */
  range: Database.Statement;
  /** The seqs of a pump with from ≤ seq < bound, from the index alone. */
  seqs: Database.Statement;
  /** One row by its seq. */
  one: Database.Statement;
  /** Decodes the rows' contributions (the connection's name lists). */
  names: ContributionNames;
}

/**
 * `onUndecodable`: told of each row whose contributions BLOB cannot be decoded (PW_BUFFER_INVALID_ROW
 * naming its seq), which is read with `contributions: null` and the rest as stored.
 */
export function prepareRowReads(db: Database.Database, onUndecodable: (err: BufferError) => void): RowReads {
  return {
    names: new ContributionNames(db, onUndecodable),
    candidates: db.prepare(CANDIDATES_SQL),
    range: db.prepare(RANGE_SQL),
    seqs: db.prepare('SELECT seq FROM readings INDEXED BY readings_pump_seq WHERE pump_id = ? AND seq >= ? AND seq < ? ORDER BY seq LIMIT ?').pluck(),
    one: db.prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE seq = ?`),
  };
}

/**
 * Rows of `pumpId` with from ≤ seq < bound (null: none), in order, at most `limit`. When a page of
 * them cannot be read: the rows before it (the batch ends there), or, when the first row cannot be
 * read, RowsUnreadableError with the run of unreadable rows it starts (within `limit`).
 */
export function readCandidates(db: Database.Database, q: RowReads, pumpId: string, from: number, bound: number | null, limit: number): DbRow[] {
  const end = bound ?? Number.MAX_SAFE_INTEGER;
  try {
    return readRows(q.candidates, q.names, pumpId, from, end, limit);
  } catch (err) {
    if (!isCorruptPage(err)) throw err;
  }
  return snapshot(db, () => {
    const seqs = q.seqs.all(pumpId, from, end, limit) as number[];
    const rows: DbRow[] = [];
    for (const seq of seqs) {
      const row = readOne(q, pumpId, seq);
      if (typeof row !== 'string') rows.push(row);
      else if (rows.length > 0) break; // the batch ends before the damage
      else throw new RowsUnreadableError(unreadableRun(q, pumpId, seqs, row));
    }
    return rows;
  });
}

/** The rows of a planned range, in order; RowsUnreadableError (the first run found) when any of them cannot be read. */
export function readRange(db: Database.Database, q: RowReads, pumpId: string, firstSeq: number, lastSeq: number): DbRow[] {
  try {
    return readRows(q.range, q.names, pumpId, firstSeq, lastSeq);
  } catch (err) {
    if (!isCorruptPage(err)) throw err;
  }
  return snapshot(db, () => {
    const seqs = q.seqs.all(pumpId, firstSeq, lastSeq + 1, Number.MAX_SAFE_INTEGER) as number[];
    const rows: DbRow[] = [];
    for (let i = 0; i < seqs.length; i++) {
      const row = readOne(q, pumpId, seqs[i]!);
      if (typeof row === 'string') throw new RowsUnreadableError(unreadableRun(q, pumpId, seqs.slice(i), row));
      rows.push(row);
    }
    return rows;
  });
}

/** One row by its seq, or why it cannot be read. */
function readOne(q: RowReads, pumpId: string, seq: number): DbRow | string {
  try {
    const row = readRows(q.one, q.names, seq)[0];
    // Listed by the index, not in the table (or another pump's row there): the page holding it lies.
    return row?.pump_id === pumpId ? row : `seq ${seq} of ${pumpId} is in the (pump_id, seq) index but not in the readings table`;
  } catch (err) {
    if (!isCorruptPage(err)) throw err;
    return (err as Error).message;
  }
}

/** The run of unreadable rows `seqs` starts with (its first one known unreadable, for `error`). */
function unreadableRun(q: RowReads, pumpId: string, seqs: readonly number[], error: string): UnreadableRun {
  let n = 1;
  while (n < seqs.length && typeof readOne(q, pumpId, seqs[n]!) === 'string') n++;
  return { pumpId, firstSeq: seqs[0]!, lastSeq: seqs[n - 1]!, rows: n, error };
}

/**
 * Runs `fn` in one read transaction, so the seqs listed and the rows read are the same snapshot
 * (on sync's own connection, eviction on the main one may delete rows meanwhile). Rolled back, not
 * committed: SQLite refuses to COMMIT after a statement met a damaged page ("database disk image is
 * malformed"), though nothing was written.
 */
function snapshot<T>(db: Database.Database, fn: () => T): T {
  if (db.inTransaction) return fn();
  db.exec('BEGIN');
  try {
    return fn();
  } finally {
    if (db.inTransaction) db.exec('ROLLBACK');
  }
}

/**
 * Retention and eviction past a damaged page. Their statements (a DELETE of many rows, a scan of
 * the table in seq order) fail as a whole as soon as they step onto the page, so the job failed at
 * every run (retention every 10 minutes; eviction at every commit over the cap, /healthz failing),
 * and nothing after the damage was deleted either. On such a failure they go row by row instead:
 * the seqs from the (pump_id, seq) index (which does not touch the table's pages), each row read
 * by its seq, and deleted one statement each (deleteEach). A row that cannot be deleted (its page
 * is the damaged one, or a page the delete has to rebalance with it) is remembered here for as
 * long as the file is open, said once, and skipped after: never retried at every step.
 */

/** A row SQLite could not delete (or read, to decide), with what it said. */
export interface Undeletable {
  seq: number;
  error: string;
}

export class DamagedRows {
  private readonly seqs = new Map<number, string>();

  constructor(readonly warn: (message: string) => void) {}

  has(seq: number): boolean {
    return this.seqs.has(seq);
  }

  get size(): number {
    return this.seqs.size;
  }

  /** Remembers rows that cannot be deleted and says so once: `job` (retention, eviction) and what rows they are. */
  add(job: string, kind: string, rows: readonly Undeletable[]): void {
    const fresh = rows.filter((r) => !this.seqs.has(r.seq));
    if (fresh.length === 0) return;
    for (const r of fresh) this.seqs.set(r.seq, r.error);
    const seqs = fresh.map((r) => r.seq);
    const span = seqs.length === 1 ? `seq ${seqs[0]}` : `seq ${Math.min(...seqs)}–${Math.max(...seqs)}`;
    this.warn(
      `${job}: ${fresh.length} ${kind} row(s) of the buffer (${span}) cannot be deleted (a damaged page of the file: ${fresh[0]!.error}); they stay in the file, skipped by retention and eviction until the next start`,
    );
  }

  clear(): void {
    this.seqs.clear();
  }
}

/**
 * Deletes the rows `seqs` with `del` (one seq a run), in one transaction while no delete meets a
 * damaged page; one that does is rolled back, the rows before it deleted again without it, and it
 * is returned in `failed`. `inTransaction(n)` runs in each committed transaction with the rows it
 * deleted (a counter kept in step). A transaction in which a statement met a damaged page is
 * rolled back, never committed (as with reads, SQLite may refuse the COMMIT then).
 */
export function deleteEach(db: Database.Database, del: Database.Statement, seqs: readonly number[], inTransaction?: (n: number) => void): { deleted: number; failed: Undeletable[] } {
  const failed: Undeletable[] = [];
  let deleted = 0;
  const run = (from: number, to: number, stopAt: { i: number }): void =>
    db.transaction(() => {
      let n = 0;
      for (let i = from; i < to; i++) {
        stopAt.i = i;
        n += del.run(seqs[i]!).changes;
      }
      stopAt.i = to;
      if (n > 0) inTransaction?.(n);
      deleted += n;
    })();
  for (let from = 0; from < seqs.length; ) {
    const at = { i: from };
    try {
      run(from, seqs.length, at);
      break;
    } catch (err) {
      if (!isCorruptPage(err)) throw err;
      const bad = at.i;
      if (bad > from) run(from, bad, { i: from });
      failed.push({ seq: seqs[bad]!, error: (err as Error).message });
      from = bad + 1;
    }
  }
  return { deleted, failed };
}

/**
 * The `limit` smallest seqs after `after` over every pump, from per-pump lists in seq order
 * (`list(pumpId, after, limit)`, read from the (pump_id, seq) index): the buffer's seq order
 * without a scan of the table, which fails at a damaged page.
 */
export function seqsAcrossPumps(pumpIds: readonly string[], list: (pumpId: string, after: number, limit: number) => number[], after: number, limit: number): number[] {
  const all: number[] = [];
  for (const pumpId of pumpIds) all.push(...list(pumpId, after, limit));
  return all.sort((a, b) => a - b).slice(0, limit);
}

/** One row's columns by its seq (`row` undefined: gone), or what SQLite said when a damaged page keeps it from being read. */
export function readBySeq<T>(stmt: Database.Statement, seq: number): { row: T | undefined } | { error: string } {
  try {
    return { row: stmt.get(seq) as T | undefined };
  } catch (err) {
    if (!isCorruptPage(err)) throw err;
    return { error: (err as Error).message };
  }
}
