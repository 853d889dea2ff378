import Database from 'better-sqlite3';
import { classifySqliteError } from './errors.js';
import { openFileIdentity } from './open.js';
import type { DbRow } from './rows.js';
import { prepareRowReads, readCandidates, readRange, type RowReads } from './unreadable.js';

interface Connection {
  db: Database.Database;
  reads: RowReads;
  /** The files this connection reads (openFileIdentity). */
  file: string | null;
}

/**
 * A read-only connection to the buffer file for another thread (sync's encoder thread). In WAL mode
 * readers never block the writer nor wait for it, so rows are read and serialised beside live
 * ingest instead of between its commits. Only the queries a planned batch needs.
 *
 * It reads the store's file, not the path's: `follow(file)` with the store's open file (BufferStore
 * openFile: the database's and its log's identities) opens the file at the path again when the
 * store has moved to another one (its restore of a buffer deleted or replaced while open, or of a
 * deleted `-wal`, buffer/store.ts), and says false while the file at the path is not the store's
 * (deleted or replaced, and the store has not noticed yet): the caller then reads through the
 * store. A connection keeps reading the file it opened even once unlinked, so without this every
 * later batch was planned from rows that are no longer the buffer's, or failed with a disk I/O
 * error on a log that is gone. Opening whatever is at the path (as a new connection did) read an
 * operator's replacement file for batches the store planned in its own: the blobs held the other
 * file's rows, and the store marked its own synced. The connection opens at the first use, so a
 * thread started while no file is at the path does not fail.
 */
export class BufferReader {
  private conn: Connection | null = null;
  /** PW_BUFFER_INVALID_ROW messages of rows read since the last takeUndecodable (their contributions read as null). */
  private undecodable: string[] = [];

  constructor(readonly path: string) {}

  /**
   * Reads `file` (the store's open file) from here on; false when the file at the path is not it,
   * and this reader cannot read the store's rows. Null or undefined (not told): the file at the path.
   */
  follow(file: string | null | undefined): boolean {
    if (file === null || file === undefined) {
      this.connection();
      return true;
    }
    if (this.conn?.file === file) return true;
    // The identities first: a file put at the path after this check is seen at the next follow.
    if (openFileIdentity(this.path) !== file) return false;
    let fresh: Connection;
    try {
      fresh = this.connect();
    } catch {
      return false; // gone from the path as it opened, or not readable from here: the store still reads it
    }
    if (fresh.file !== file || openFileIdentity(this.path) !== file) {
      fresh.db.close(); // replaced while it opened
      return false;
    }
    this.conn?.db.close();
    this.conn = fresh;
    return true;
  }

  /**
   * Rows of `pumpId` with from ≤ seq < bound (null: no bound), in order, at most `limit`: those
   * before a damaged page, RowsUnreadableError when the first cannot be read (buffer/unreadable.ts).
   */
  candidates(pumpId: string, from: number, bound: number | null, limit: number): DbRow[] {
    return this.read('reading rows to plan a batch', (c) => readCandidates(c.db, c.reads, pumpId, from, bound, limit));
  }

  /** The rows of a planned range, in order; RowsUnreadableError when any cannot be read. */
  range(pumpId: string, firstSeq: number, lastSeq: number): DbRow[] {
    return this.read('reading the rows of a planned batch', (c) => readRange(c.db, c.reads, pumpId, firstSeq, lastSeq));
  }

  /**
   * The rows read since the last call whose contributions cannot be decoded (read with
   * `contributions: null`): their PW_BUFFER_INVALID_ROW messages, each naming its seq. The main
   * thread records them (BufferStore.recordWithoutContributions).
   */
  takeUndecodable(): string[] {
    const taken = this.undecodable;
    this.undecodable = [];
    return taken;
  }

  close(): void {
    this.conn?.db.close();
    this.conn = null;
  }

  private connection(): Connection {
    this.conn ??= this.connect();
    return this.conn;
  }

  private connect(): Connection {
    // The identities first: a file put at the path between the two is then seen at the next follow.
    const file = openFileIdentity(this.path);
    try {
      const db = new Database(this.path, { readonly: true, fileMustExist: true });
      db.pragma('busy_timeout = 5000');
      db.pragma('cache_size = -512');
      return { db, reads: prepareRowReads(db, (err) => this.undecodable.push(err.message)), file };
    } catch (err) {
      throw classifySqliteError(err, this.path, 'opening the buffer for reading');
    }
  }

  private read<T>(action: string, fn: (c: Connection) => T): T {
    try {
      return fn(this.connection());
    } catch (err) {
      throw classifySqliteError(err, this.path, action);
    }
  }
}
