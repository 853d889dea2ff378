import Database from 'better-sqlite3';
import { classifySqliteError } from './errors.js';
import { CANDIDATES_SQL, RANGE_SQL } from './ranges.js';
import { readRows, type DbRow } from './rows.js';

/**
 * A read-only connection to the buffer file for another thread (sync's encoder thread). In WAL mode
 * readers never block the writer nor wait for it, so rows are read and serialised beside live
 * ingest instead of between its commits. Only the queries a planned batch needs.
 */
export class BufferReader {
  private readonly db: Database.Database;
  private readonly candidatesStmt: Database.Statement;
  private readonly rangeStmt: Database.Statement;

  constructor(readonly path: string) {
    try {
      this.db = new Database(path, { readonly: true, fileMustExist: true });
      this.db.pragma('busy_timeout = 5000');
      this.db.pragma('cache_size = -512');
      this.candidatesStmt = this.db.prepare(CANDIDATES_SQL);
      this.rangeStmt = this.db.prepare(RANGE_SQL);
    } catch (err) {
      throw classifySqliteError(err, path, 'opening the buffer for reading');
    }
  }

  /** Rows of `pumpId` with from ≤ seq < bound (null: no bound), in order, at most `limit`. */
  candidates(pumpId: string, from: number, bound: number | null, limit: number): DbRow[] {
    return this.read('reading rows to plan a batch', () => readRows(this.candidatesStmt, pumpId, from, bound ?? Number.MAX_SAFE_INTEGER, limit));
  }

  /** The rows of a planned range, in order. */
  range(pumpId: string, firstSeq: number, lastSeq: number): DbRow[] {
    return this.read('reading the rows of a planned batch', () => readRows(this.rangeStmt, pumpId, firstSeq, lastSeq));
  }

  close(): void {
    this.db.close();
  }

  private read<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw classifySqliteError(err, this.path, action);
    }
  }
}
