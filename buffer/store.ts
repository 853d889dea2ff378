import type Database from 'better-sqlite3';
import { statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, type FileHandle } from 'node:fs/promises';
import { ownCheckpointThread, type CheckpointRunner, type StartCheckpoints } from './checkpointer.js';
import { BufferError, classifySqliteError } from './errors.js';
import { Eviction, type EvictionCounts } from './eviction.js';
import { openDatabase } from './open.js';
import { PlannedRanges } from './ranges.js';
import { ROW_COLUMNS, fromDbRow, insertRow, readRows } from './rows.js';
import type { PredictionRow, RejectedItem, StoredRow } from './types.js';

export interface BufferOptions {
  /** Path of the SQLite file (created with its folder when missing). */
  path: string;
  /** Disk cap in bytes: past it, rows are evicted (synced first, anomalies last). */
  maxBytes: number;
  /** Longest raw text kept for a rejected item; longer ones are truncated with a marker. */
  rejectedRawMaxChars?: number;
  /**
   * Who runs the WAL checkpoints off the main thread (buffer/checkpointer.ts): by default a
   * Checkpointer thread of its own. A host with other periodic work passes a thread that runs the
   * same checkpoint job beside it, so the process carries one helper isolate instead of two (the
   * agent's housekeeping thread).
   */
  startCheckpoints?: StartCheckpoints;
}

export interface BufferStats {
  rows: number;
  unsynced: number;
  /** Pages in use in the database file (kept within the cap less the WAL's share). */
  bytes: number;
  /** The write-ahead log and its index on disk now (kept near the WAL's share of the cap). */
  walBytes: number;
  maxBytes: number;
  evicted: EvictionCounts & { total: number };
  rejected: number;
  oldestUnsyncedTs: number | null;
  /** The checkpoint thread's last failure (the main connection's autocheckpoint still bounds the WAL), else null. */
  checkpointError: string | null;
}

const INSERT_READING = `INSERT INTO readings (pump_id, ts, received_at, vals, score, anomaly, model_version, imputed,
  unscored_reason, shadow_score, shadow_model_version, contributions) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)`;

/**
 * The agent's durable buffer: every accepted reading with its prediction, every rejected item,
 * planned sync batches. WAL + synchronous=FULL: a committed transaction survives power loss.
 * Constructor only assigns; `open()` does the I/O.
 */
export class BufferStore {
  private dbHandle: Database.Database | null = null;
  private checkpointer: CheckpointRunner | null = null;
  private insertReading!: Database.Statement;
  private insertRejected!: Database.Statement;
  private eviction!: Eviction;
  private rowCount = 0;
  private unsyncedCount = 0;
  private rejectedCount = 0;
  private maxBytes: number;
  /** Why the last eviction failed (rows were committed, but the cap could not be enforced). */
  private evictionError: BufferError | null = null;
  /** Why the last open() failed, carried by the PW_BUFFER_CLOSED errors until one succeeds. */
  private openError: BufferError | null = null;
  /** Why the last commit stored nothing (disk full, read-only, …); null once readings commit again. */
  private commitError: BufferError | null = null;
  /** Sync state as sequence ranges (planned, uploaded); shared by the batch planner and the stats. */
  readonly ranges = new PlannedRanges(() => this.db);

  constructor(private readonly options: BufferOptions) {
    this.maxBytes = options.maxBytes;
  }

  get path(): string {
    return this.options.path;
  }

  /** The open database, for the buffer's own modules (batches, labels). */
  get db(): Database.Database {
    if (this.dbHandle === null) throw this.closedError();
    return this.dbHandle;
  }

  /** Opens (creates, migrates) the file; a second call while open does nothing. */
  open(): void {
    if (this.dbHandle !== null) return;
    try {
      this.openOnce();
      this.openError = null;
    } catch (err) {
      this.openError = err instanceof BufferError ? err : classifySqliteError(err, this.options.path, 'opening the buffer');
      throw this.openError;
    }
  }

  private openOnce(): void {
    const path = this.options.path;
    const db = openDatabase(path);
    this.dbHandle = db;
    try {
      this.insertReading = db.prepare(INSERT_READING);
      this.insertRejected = db.prepare(
        'INSERT INTO rejected (source, raw, reason, received_at) VALUES (?, ?, ?, ?)',
      );
      this.eviction = new Eviction(db, this.maxBytes);
      this.recount();
      // Checkpoints run beside the writer (buffer/checkpointer.ts); the autocheckpoint Eviction sets
      // with the WAL's share of the cap is only the safety net.
      this.checkpointer = (this.options.startCheckpoints ?? ownCheckpointThread)(path);
    } catch (err) {
      this.closeQuietly();
      throw classifySqliteError(err, path, 'opening the buffer');
    }
  }

  private recount(): void {
    const db = this.db;
    this.rowCount = (db.prepare('SELECT count(*) AS n FROM readings').get() as { n: number }).n;
    this.unsyncedCount = this.rowCount - this.ranges.countSynced();
    this.rejectedCount = (db.prepare('SELECT count(*) AS n FROM rejected').get() as { n: number }).n;
  }

  /**
   * Commits readings with their predictions in one transaction (group commit) and returns their
   * sequence numbers. Throws a BufferError (disk full, read-only, …) when nothing was committed.
   */
  appendBatch(rows: readonly PredictionRow[]): number[] {
    if (rows.length === 0) return [];
    const seqs = new Array<number>(rows.length);
    this.commit(
      'committing readings',
      () => {
        for (let i = 0; i < rows.length; i++) {
          seqs[i] = Number(insertRow(this.insertReading, rows[i]!).lastInsertRowid);
        }
      },
      rows.length,
    );
    this.commitError = null; // readings commit again (a stored refusal alone does not say so)
    this.rowCount += rows.length;
    this.unsyncedCount += rows.length;
    this.enforceCap();
    return seqs;
  }

  /** Keeps refused items with their reasons (bounded raw text), in one transaction. */
  appendRejected(items: readonly RejectedItem[]): void {
    if (items.length === 0) return;
    const max = this.options.rejectedRawMaxChars ?? 4096;
    this.commit('storing rejected readings', () => {
      for (const item of items) {
        const raw = item.raw.length > max ? `${item.raw.slice(0, max)}…[truncated ${item.raw.length - max} chars]` : item.raw;
        this.insertRejected.run(item.source, raw, item.reason, item.receivedAt);
      }
    });
    this.rejectedCount += items.length;
    this.enforceCap();
  }

  /**
   * Runs `write` in one transaction. When the disk is full below the cap, evicts to make room
   * (Eviction.makeRoom) and tries once more; else throws a BufferError, with nothing committed.
   * Unsent readings are evicted for `readings` new ones only when these take at most a tenth of
   * the buffer (what makeRoom frees): a batch the disk could not hold anyway costs nothing unsent.
   */
  private commit(action: string, write: () => void, readings = 0): void {
    try {
      this.db.transaction(write)();
    } catch (err) {
      const error = classifySqliteError(err, this.options.path, action);
      const unsent = readings > 0 && this.rowCount > 0 && readings <= this.rowCount / 10;
      if (error.code !== 'PW_BUFFER_DISK_FULL' || !this.evict(() => this.eviction.makeRoom(unsent))) throw this.failed(error);
      try {
        this.db.transaction(write)();
      } catch (retryErr) {
        throw this.failed(classifySqliteError(retryErr, this.options.path, action));
      }
    }
  }

  /** Keeps a commit's failure for `health()` (a buffer that stores nothing is not healthy) and returns it. */
  private failed(error: BufferError): BufferError {
    this.commitError = error;
    return error;
  }

  /**
   * Evicts rows when the cap is exceeded; keeps the in-memory counts in step. Never throws: it runs
   * after a commit, so a failure here is recorded and reported by `health()` instead.
   */
  enforceCap(): void {
    this.evict(() => this.eviction.enforce());
  }

  /** Changes the disk cap (a live setting) and enforces it now. */
  setMaxBytes(maxBytes: number): void {
    this.maxBytes = maxBytes;
    if (this.dbHandle === null) return; // applied by open()
    this.eviction.setMaxBytes(maxBytes);
    this.enforceCap();
  }

  /** Runs one eviction and keeps the counts in step; true when something was evicted. */
  private evict(run: () => EvictionCounts | null): boolean {
    try {
      const freed = run();
      this.evictionError = null;
      if (freed === null) return false;
      this.rowCount -= freed.synced + freed.unsynced + freed.anomalies;
      this.unsyncedCount -= freed.unsynced + freed.anomalies;
      this.rejectedCount -= freed.rejected;
      return freed.synced + freed.unsynced + freed.anomalies + freed.rejected > 0;
    } catch (err) {
      this.evictionError = classifySqliteError(err, this.options.path, 'evicting rows to stay under the cap');
      this.recountQuietly();
      return false;
    }
  }

  /** Called by the batch module when rows become synced or are deleted by retention. */
  adjustCounts(delta: { rows?: number; unsynced?: number }): void {
    this.rowCount += delta.rows ?? 0;
    this.unsyncedCount += delta.unsynced ?? 0;
  }

  /** The error of a use while closed; after a failed open() its cause is that failure. */
  private closedError(): BufferError {
    return new BufferError('PW_BUFFER_CLOSED', 'the buffer is not open', this.openError === null ? undefined : { cause: this.openError });
  }

  /**
   * What the buffer's files could take on their filesystem now: their size plus the space left
   * for this process (statfs); null when the filesystem cannot say.
   */
  diskCapacityBytes(): number | null {
    const path = this.options.path;
    try {
      const fs = statfsSync(dirname(path));
      return fileSize(path) + this.walFilesBytes() + fs.bavail * fs.bsize;
    } catch {
      return null;
    }
  }

  /** The write-ahead log and its index on disk now. */
  private walFilesBytes(): number {
    return fileSize(`${this.options.path}-wal`) + fileSize(`${this.options.path}-shm`);
  }

  get maxBytesSetting(): number {
    return this.maxBytes;
  }

  usedBytes(): number {
    if (this.dbHandle === null) throw this.closedError();
    return this.eviction.usedBytes();
  }

  stats(): BufferStats {
    const oldestSeq = this.ranges.oldestUnsyncedSeq();
    const oldest =
      oldestSeq === null ? undefined : (this.db.prepare('SELECT ts FROM readings WHERE seq >= ? ORDER BY seq LIMIT 1').get(oldestSeq) as { ts: number } | undefined);
    const evicted = this.eviction.counts();
    return {
      rows: this.rowCount,
      unsynced: this.unsyncedCount,
      bytes: this.usedBytes(),
      walBytes: this.walFilesBytes(),
      maxBytes: this.maxBytes,
      evicted: { ...evicted, total: evicted.synced + evicted.unsynced + evicted.anomalies + evicted.rejected },
      rejected: this.rejectedCount,
      oldestUnsyncedTs: oldest?.ts ?? null,
      checkpointError: this.checkpointer?.error() ?? null,
    };
  }

  /**
   * fsyncs the WAL file on libuv's pool (fsync works on any descriptor of the file): makes commits
   * made with synchronous=NORMAL durable without blocking this thread. A WAL that is gone was
   * checkpointed into the database file, which the checkpoint synced.
   */
  async syncWal(): Promise<void> {
    let handle: FileHandle;
    try {
      handle = await open(`${this.options.path}-wal`, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      throw classifySqliteError(err, this.options.path, 'syncing the write-ahead log');
    }
    try {
      await handle.sync();
    } catch (err) {
      throw classifySqliteError(err, this.options.path, 'syncing the write-ahead log');
    } finally {
      await handle.close();
    }
  }

  /**
   * The most recent rows of one pump, newest last, optionally from a time on and after a sequence
   * number. `afterSeq` is a range of the (pump_id, seq) index: a poll for new rows reads only them.
   * `sinceTs` alone walks back through the pump's rows until `limit` match (no index on time: one
   * would cost every commit), so a poll must not rely on it.
   */
  predictions(pumpId: string, opts: { sinceTs?: number; afterSeq?: number; limit: number }): StoredRow[] {
    const stmt = this.db.prepare(
      `SELECT ${ROW_COLUMNS} FROM (SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq > ? AND ts >= ?
       ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
    );
    return readRows(stmt, pumpId, opts.afterSeq ?? 0, opts.sinceTs ?? 0, opts.limit).map(fromDbRow);
  }

  /** When the newest row was received (the gateway clock then), or null when the buffer is empty. */
  newestReceivedAt(): number | null {
    const row = this.db.prepare('SELECT received_at FROM readings ORDER BY seq DESC LIMIT 1').get() as { received_at: number } | undefined;
    return row?.received_at ?? null;
  }

  /** Rows by sequence range (inclusive), in order: for tests, sync and model validation. */
  rowsBySeq(fromSeq: number, toSeq: number): StoredRow[] {
    return readRows(this.db.prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE seq BETWEEN ? AND ? ORDER BY seq`), fromSeq, toSeq).map(fromDbRow);
  }

  /** Distinct pump ids seen in the buffer. */
  pumpIds(): string[] {
    return this.ranges.pumpIds();
  }

  rejected(limit: number): Array<RejectedItem & { id: number }> {
    return (
      this.db
        .prepare('SELECT id, source, raw, reason, received_at FROM rejected ORDER BY id DESC LIMIT ?')
        .all(limit) as Array<{ id: number; source: string; raw: string; reason: string; received_at: number }>
    ).map((r) => ({ id: r.id, source: r.source, raw: r.raw, reason: r.reason, receivedAt: r.received_at }));
  }

  /** Marks the reading an alert was sent for (the time edgeHub accepted it). */
  markAlerted(seq: number, at: number): void {
    try {
      this.db.prepare('UPDATE readings SET alerted_at = ? WHERE seq = ?').run(at, seq);
    } catch (err) {
      throw classifySqliteError(err, this.options.path, 'marking an alerted reading');
    }
  }

  /** Small key/value state that must survive restarts (active models, cursors). */
  getMeta(key: string): string | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    try {
      this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value').run(key, value);
    } catch (err) {
      throw classifySqliteError(err, this.options.path, `saving ${key}`);
    }
  }

  /**
   * Liveness of the buffer: a trivial read on the open database, the last commit having stored its
   * rows (a full disk or a read-only volume fails here until a commit succeeds again), and the cap
   * being enforceable.
   */
  health(): { ok: boolean; error?: string } {
    try {
      this.db.prepare('SELECT 1').get();
      if (this.commitError !== null) return { ok: false, error: `${this.commitError.code}: ${this.commitError.message}` };
      if (this.evictionError !== null) return { ok: false, error: this.evictionError.message };
      return { ok: true };
    } catch (err) {
      return { ok: false, error: (err as Error).message };
    }
  }

  close(): void {
    const db = this.dbHandle;
    if (db === null) return;
    this.dbHandle = null;
    this.checkpointer?.stop();
    this.checkpointer = null;
    db.close();
  }

  /** Re-reads the counts after a partial failure (some eviction chunks may have committed). */
  private recountQuietly(): void {
    try {
      this.recount();
    } catch {
      // the counts stay approximate until the next successful open
    }
  }

  private closeQuietly(): void {
    try {
      this.close();
    } catch {
      // already failing: the original error is the one to report
    }
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // not there (yet, or any more)
  }
}
