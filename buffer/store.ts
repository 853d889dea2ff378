import type Database from 'better-sqlite3';
import { existsSync, linkSync, renameSync, rmSync, statSync, statfsSync } from 'node:fs';
import { dirname } from 'node:path';
import { open, type FileHandle } from 'node:fs/promises';
import { newShrinkTarget, ownCheckpointThread, SHRINK_SLACK_PAGES, SHRINK_STEP_PAGES, SHRINK_TO_PAGES, type CheckpointRunner, type StartCheckpoints } from './checkpointer.js';
import { clockSegments, receiveTimeCorrection, type ReceiveTimeCorrection } from './clock-steps.js';
import { ContributionNames, RowsWithoutContributions, type WithoutContributionsSummary } from './contributions.js';
import { BufferError, classifySqliteError } from './errors.js';
import { databaseBudget, evictedTotal, Eviction, EvictionFailed, type EvictionCounts } from './eviction.js';
import { fileIdentity, openDatabase } from './open.js';
import { PlannedRanges, type UnreadableSummary } from './ranges.js';
import { finishIndexRepairs, repairDamagedIndexes } from './repair.js';
import { DamagedRows, isCorruptPage, runText, unreadableCause } from './unreadable.js';
import { BUFFER_ID_AFTER_BATCH_KEY, BUFFER_ID_KEY, MIGRATIONS, openableFrom, type MigrationEvents } from './migrations.js';
import { INSERT_READING_SQL, ROW_COLUMNS, fromDbRow, insertRow, readRows, type DbRow } from './rows.js';
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
  /**
   * Told when the file was found deleted or replaced while open, and again when that was dealt
   * with (the agent logs both as errors: readings may have been written into a file about to vanish).
   */
  onFileEvent?: (message: string) => void;
  /** Told of what goes wrong without failing anything (a close that could not wait for the checkpoint connection). */
  onWarning?: (message: string) => void;
  /**
   * Told of a schema migration at open (a file an older agent wrote): when it is done, with the
   * versions and how long it took, and also before it starts on a file of at least
   * `announceMigrationAboveBytes` (default 64 MiB), where it takes seconds while nothing answers.
   */
  onMigration?: (message: string, fields: { fromVersion: number; toVersion: number; fileBytes?: number; ms?: number }) => void;
  announceMigrationAboveBytes?: number;
}

/** A file from which a migration's start is said before it runs (a 350 MB schema-8 file took about a second more to open). */
export const ANNOUNCE_MIGRATION_ABOVE_BYTES = 64 * 1024 * 1024;

export interface BufferStats {
  rows: number;
  unsynced: number;
  /** Pages in use in the database file (kept within the cap less the WAL's share). */
  bytes: number;
  /**
   * The database file on disk now: pages in use plus free ones. Above `bytes` by at most a few
   * percent at a steady cap; after the cap is lowered it comes down to the new share within
   * seconds (the checkpoint thread's incremental vacuum, see README "The buffer").
   */
  fileBytes: number;
  /** The write-ahead log and its index on disk now (kept near the WAL's share of the cap). */
  walBytes: number;
  maxBytes: number;
  /**
   * The cap in force when the disk cannot hold `maxBytes`: what the buffer's files plus the free
   * space on their volume can take, less a reserve (checked every second); null when the disk is
   * not the limit.
   */
  diskLimitBytes: number | null;
  evicted: EvictionCounts & { total: number };
  /**
   * Readings (normal and anomalous) evicted before they were uploaded: how many since this process
   * opened the buffer, and when the last such eviction was (wall-clock ms, kept across restarts;
   * null: never in this file). They never reach Blob Storage.
   */
  unsentEvicted: { sinceStart: number; lastAt: number | null };
  rejected: number;
  /** Refused items evicted before they were uploaded to `rejected/` (buffer/rejected-sync.ts), in this file's life. */
  rejectedUnsentEvicted: number;
  oldestUnsyncedTs: number | null;
  /** The checkpoint thread's last failure (the main connection's autocheckpoint still bounds the WAL), else null. */
  checkpointError: string | null;
  /** The last time the file was deleted or replaced while open, and what was done (null: never since start). */
  fileEvent: string | null;
  /**
   * Rows a damaged page keeps from being read, set aside by the sync (never uploaded, never marked
   * synced; still counted in `rows` and `unsynced`): how many, in how many ranges, the newest ranges.
   */
  unreadable: UnreadableSummary;
  /**
   * Rows whose stored contributions cannot be decoded that the sync uploaded with `contributions:
   * null` (the rest as stored), since the agent started: how many, the newest by seq.
   */
  withoutContributions: WithoutContributionsSummary;
}

const KIB = 1024;
const MIB = 1024 * KIB;
/** How often commits look at the free disk space (statfs) and the file's identity (stat). */
const DISK_CHECK_MS = 1000;
const FILE_CHECK_MS = 250;
/** A copy of a deleted buffer that failed (a full disk) is tried again this much later. */
const RESTORE_RETRY_MS = 10_000;
/** A file up to this size without incremental vacuum is converted (one VACUUM) at open. */
const CONVERT_AT_OPEN_MAX_BYTES = 64 * MIB;
/**
 * After readings were evicted before they were uploaded, /healthz says so (degraded) this long
 * after the last such eviction: a day, so a fleet's daily look at its gateways' health meets every
 * loss, while a gateway that caught up stops being flagged without anyone having to acknowledge it.
 * The counts stay in /status and /metrics.
 */
export const UNSENT_EVICTED_HEALTH_MS = 24 * 3600_000;
/** After the file was deleted or replaced while open, /healthz says so this long (even once dealt with). */
const FILE_EVENT_HEALTH_MS = 5 * 60_000;
/**
 * How long close() waits for the checkpoint thread to close its connection before closing its own.
 * It blocks the main thread, and the agent's stop must end within its 10 s: in the agent the
 * checkpoints share the housekeeping thread, which a health sample the OS never answers can hold,
 * and the stop then also waits 3 s for that thread (agent/housekeeping.ts). A connection's close
 * takes milliseconds.
 */
const CHECKPOINT_CLOSE_WAIT_MS = 2_000;

/**
 * Room kept free on the buffer's volume: a commit and the WAL's growth between two checkpoints
 * must still fit when the disk is at its limit, and a DELETE needs room in the WAL too (evicting
 * on a disk that is already full fails). A sixteenth of what the buffer could take, 1 to 64 MiB.
 */
export function diskReserve(capacityBytes: number): number {
  return Math.min(64 * MIB, Math.max(MIB, Math.floor(capacityBytes / 16)));
}

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
  /** Encodes (and decodes) contributions with the open file's name lists (buffer/contributions.ts). */
  private names: ContributionNames | null = null;
  /** The undecodable contributions already told to onWarning (see undecodable()). */
  private readonly undecodableWarned = new Set<string>();
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
  /** Failures of this file met by other parts (sync's reads on its own connection), by part: see reportFailure. */
  private readonly reportedFailures = new Map<string, BufferError>();
  /** Rows the sync uploaded without their contributions (not decodable): counted, said once each, shown in stats() and health(). */
  private readonly withoutContributions = new RowsWithoutContributions((message) => this.options.onWarning?.(message));
  /** Sync state as sequence ranges (planned, uploaded); shared by the batch planner and the stats. */
  readonly ranges = new PlannedRanges(
    () => this.db,
    (err) => this.recordWithoutContributions([err.message]),
  );
  /** Rows of the open file a damaged page keeps retention and eviction from deleting (buffer/unreadable.ts), skipped until it is opened again. */
  readonly damaged = new DamagedRows((message) => this.options.onWarning?.(message));
  /** The cap the free disk space allows (Infinity: the disk is not the limit), re-read every DISK_CHECK_MS. */
  private diskLimit = Number.POSITIVE_INFINITY;
  /** Unsent readings evicted since this store was made (the process start): in stats() and health(). */
  private unsentEvictedSinceStart = 0;
  /** Whether a sync runs (setUploads). */
  private uploads = true;
  private diskCheckedAt = Number.NEGATIVE_INFINITY;
  /** Shared with the checkpoint thread: how far to shrink the file. */
  private readonly shrink = newShrinkTarget();
  /** Identities of the database file and its WAL as this connection opened them. */
  private fileIds: { db: string | null; wal: string | null } = { db: null, wal: null };
  private fileCheckedAt = Number.NEGATIVE_INFINITY;
  /** Set while the file at the path is not the open one: what is being done about it. */
  private moved: MovedFile | null = null;
  /** The checkpoint runner last stopped, until its connection is closed (handleMoved waits for it). */
  private checkpointerClosing: CheckpointRunner | null = null;
  private fileEvent: string | null = null;
  private fileEventAt = Number.NEGATIVE_INFINITY;
  private finishTimer: NodeJS.Timeout | null = null;
  /** Set while the file put at the path after a move could not be opened: when to try again. */
  private reopenAt: number | null = null;

  constructor(private readonly options: BufferOptions) {
    this.maxBytes = options.maxBytes;
  }

  /** Rows not yet uploaded (kept in memory: no query), as in stats(). */
  get unsyncedRows(): number {
    return this.unsyncedCount;
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
    if (this.moved !== null) {
      this.handleMoved();
      return;
    }
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
    // A restore (handleMoved) the process did not live to finish: its copy is complete (it only
    // gets this name once VACUUM INTO finished), and nothing has been put at the path since.
    if (!existsSync(path) && existsSync(`${path}.restoring`)) {
      rmSync(`${path}-wal`, { force: true });
      rmSync(`${path}-shm`, { force: true });
      renameSync(`${path}.restoring`, path);
      this.fileEvent = `${path} had been deleted while open and was restored from ${path}.restoring at this start`;
      this.fileEventAt = performance.now();
      this.options.onFileEvent?.(this.fileEvent);
    }
    // A copy the process did not live to finish is incomplete by its name: only its blocks remain.
    rmSync(`${path}.restoring-partial`, { force: true, recursive: true });
    if (existsSync(`${path}.restoring`)) {
      // A finished copy beside a file at the path (someone put one there first): kept, never
      // merged, and said, since it takes room on the buffer's volume.
      // In /status and the log; /healthz stays ok (nothing is wrong with the buffer itself).
      this.fileEvent = `${path}.restoring, a copy of a buffer deleted while open, is beside the file at the path; kept for an operator (remove it once not needed)`;
      this.options.onFileEvent?.(this.fileEvent);
    }
    const db = openDatabase(path, this.migrationEvents(path));
    this.dbHandle = db;
    try {
      finishIndexRepairs(db, path);
      try {
        this.prepareOpen(db, path);
      } catch (err) {
        // A damaged page of an index (SQLite counts the rows by one) is built again from the table.
        if (!isCorruptPage(err) || !repairDamagedIndexes(db, path, (m) => this.options.onWarning?.(m))) throw err;
        this.prepareOpen(db, path);
      }
    } catch (err) {
      this.closeQuietly();
      throw classifySqliteError(err, path, 'opening the buffer');
    }
  }

  /** The log lines of a migration at open: a technician watching the log knows why nothing answers yet. */
  private migrationEvents(path: string): MigrationEvents {
    const tell = this.options.onMigration;
    if (tell === undefined) return {};
    const above = this.options.announceMigrationAboveBytes ?? ANNOUNCE_MIGRATION_ABOVE_BYTES;
    return {
      starting: (fromVersion, toVersion, fileBytes) => {
        if (fileBytes < above) return;
        tell(
          `migrating the buffer ${path} (${(fileBytes / 2 ** 20).toFixed(0)} MiB) from schema ${fromVersion} to ${toVersion}, written by an older agent: the agent starts once it is done`,
          { fromVersion, toVersion, fileBytes },
        );
      },
      done: (fromVersion, toVersion, ms) =>
        tell(`migrated the buffer ${path} from schema ${fromVersion} to ${toVersion} in ${(ms / 1000).toFixed(1)} s (an agent older than schema ${openableFrom()} refuses it from now on)`, {
          fromVersion,
          toVersion,
          ms: Math.round(ms),
        }),
      newerCompatible: (version, mark) =>
        tell(
          `opened the buffer ${path} of schema ${version}, newer than this agent knows (${MIGRATIONS.length}), as the agent that wrote it allows agents of schema ${mark} and later to: ` +
            `no step run, the file stays at schema ${version} for that agent`,
          { fromVersion: version, toVersion: version },
        ),
    };
  }

  /** What open() does with the database once SQLite opened and migrated it. */
  private prepareOpen(db: Database.Database, path: string): void {
    this.insertReading = db.prepare(INSERT_READING_SQL);
    this.names = new ContributionNames(db, (err) => this.undecodable(err));
    this.insertRejected = db.prepare(
      'INSERT INTO rejected (source, raw, reason, received_at) VALUES (?, ?, ?, ?)',
    );
    this.fileIds = { db: fileIdentity(path), wal: fileIdentity(`${path}-wal`) };
    this.fileCheckedAt = performance.now();
    this.damaged.clear();
    this.eviction = new Eviction(db, this.maxBytes, { ranges: this.ranges, rows: this.damaged });
    this.diskCheckedAt = Number.NEGATIVE_INFINITY;
    this.refreshDiskLimit();
    this.applyCap();
    this.convertToIncremental(CONVERT_AT_OPEN_MAX_BYTES);
    this.recount();
    // Checkpoints run beside the writer (buffer/checkpointer.ts); the autocheckpoint Eviction sets
    // with the WAL's share of the cap is only the safety net.
    this.checkpointer = (this.options.startCheckpoints ?? ownCheckpointThread)(path, this.shrink);
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
        const names = this.contributionNames;
        for (let i = 0; i < rows.length; i++) {
          seqs[i] = Number(insertRow(this.insertReading, rows[i]!, names).lastInsertRowid);
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
    this.checkFileSoon();
    try {
      this.db.transaction(write)();
    } catch (err) {
      this.names?.forgetWrites(); // name lists the write added were rolled back with it
      const error = classifySqliteError(err, this.options.path, action);
      const unsent = readings > 0 && this.rowCount > 0 && readings <= this.rowCount / 10;
      if (error.code !== 'PW_BUFFER_DISK_FULL' || !this.makeRoom(unsent)) throw this.failed(error);
      try {
        this.db.transaction(write)();
      } catch (retryErr) {
        this.names?.forgetWrites();
        throw this.failed(classifySqliteError(retryErr, this.options.path, action));
      }
    }
  }

  /**
   * The disk filled below the cap: the free space is read again now (lowering the cap in force,
   * which evicts as the cap does), and if that frees nothing, about a tenth of the rows go.
   */
  private makeRoom(unsent: boolean): boolean {
    this.diskCheckedAt = Number.NEGATIVE_INFINITY;
    this.refreshDiskLimit();
    const evictSome = (): boolean => (unsent && this.evict(() => this.eviction.enforce())) || this.evict(() => this.eviction.makeRoom(unsent));
    if (evictSome()) return true;
    // Evicting failed too: its DELETEs need room in the WAL. Copying the WAL into the database
    // file (whose pages it rewrites in place) and truncating it gives back the WAL's blocks.
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      return false;
    }
    return evictSome();
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
    this.refreshDiskLimit();
    this.evict(() => this.eviction.enforce());
  }

  /**
   * Changes the disk cap (a live setting) and enforces it now. A file over the new cap shrinks on
   * the checkpoint thread; one made before incremental vacuum is converted first (one VACUUM,
   * which blocks commits while it copies the pages in use, and only when the disk has room for it).
   */
  setMaxBytes(maxBytes: number): void {
    this.maxBytes = maxBytes;
    if (this.dbHandle === null) return; // applied by open()
    this.applyCap();
    this.enforceCap();
    this.convertToIncremental(0);
  }

  /** The cap in force: the setting, or less when the disk cannot hold it. */
  private effectiveCap(): number {
    return Math.min(this.maxBytes, this.diskLimit);
  }

  private applyCap(): void {
    const cap = this.effectiveCap();
    this.eviction.setMaxBytes(cap);
    const target = this.eviction.shrinkTarget(this.maxBytes);
    Atomics.store(this.shrink, SHRINK_STEP_PAGES, target.stepPages);
    Atomics.store(this.shrink, SHRINK_SLACK_PAGES, target.slackPages);
    Atomics.store(this.shrink, SHRINK_TO_PAGES, target.pages);
  }

  /**
   * Every DISK_CHECK_MS (one statfs): what the buffer's files plus the free space of their volume
   * can take, less a reserve, becomes the cap in force when it is below the setting. So a disk
   * filling below the cap evicts as the cap does, before SQLite runs out of room (on a full disk
   * even the DELETEs of an eviction fail: they need room in the WAL).
   */
  private refreshDiskLimit(): void {
    const now = performance.now();
    if (now - this.diskCheckedAt < DISK_CHECK_MS) return;
    this.diskCheckedAt = now;
    const capacity = this.diskCapacityBytes();
    const limit = capacity === null ? Number.POSITIVE_INFINITY : Math.max(0, capacity - diskReserve(capacity));
    const before = this.effectiveCap();
    this.diskLimit = limit;
    if (this.effectiveCap() !== before) this.applyCap();
  }

  /**
   * A file made before 2026-12-05 has no incremental vacuum, so it could never shrink: one VACUUM
   * converts it (and compacts it). Done at open for files up to `smallBytes` (quick), else only
   * when the file is over the cap in force; only with room on the disk for the copy VACUUM writes
   * (the pages in use go through the WAL); a failure leaves the file as it was.
   */
  private convertToIncremental(smallBytes: number): void {
    const db = this.db;
    if (Number(db.pragma('auto_vacuum', { simple: true })) !== 0) return;
    const file = this.eviction.fileBytes();
    if (file > smallBytes && file <= databaseBudget(this.effectiveCap())) return;
    try {
      const fs = statfsSync(dirname(this.options.path));
      if (fs.bavail * fs.bsize < this.eviction.usedBytes() * 2 + diskReserve(file)) return;
      db.pragma('auto_vacuum = INCREMENTAL');
      db.exec('VACUUM');
    } catch {
      // stays without incremental vacuum (a full disk, another connection reading): tried again at
      // the next open or cap change
    }
  }

  /**
   * Runs one eviction and keeps the counts in step; true when something was evicted, even when it
   * then failed part-way (the chunks committed before the failure freed room all the same).
   */
  private evict(run: () => EvictionCounts | null): boolean {
    try {
      const freed = run();
      this.evictionError = null;
      if (freed === null) return false;
      this.rowCount -= freed.synced + freed.unsynced + freed.anomalies;
      this.unsyncedCount -= freed.unsynced + freed.anomalies;
      this.unsentEvictedSinceStart += freed.unsynced + freed.anomalies;
      this.rejectedCount -= freed.rejected;
      return evictedTotal(freed) > 0;
    } catch (err) {
      // The stored totals count the chunks committed before the failure: so does the since-start count.
      const partial = err instanceof EvictionFailed ? err.freed : null;
      if (partial !== null) this.unsentEvictedSinceStart += partial.unsynced + partial.anomalies;
      this.evictionError = classifySqliteError(err instanceof EvictionFailed ? err.cause : err, this.options.path, 'evicting rows to stay under the cap');
      this.recountQuietly();
      return partial !== null;
    }
  }

  /** Called by the batch module when rows become synced or are deleted by retention. */
  adjustCounts(delta: { rows?: number; unsynced?: number }): void {
    this.rowCount += delta.rows ?? 0;
    this.unsyncedCount += delta.unsynced ?? 0;
  }

  /**
   * Checks that the file at the path is still the one open (rate-limited for commits: one stat
   * every FILE_CHECK_MS). SQLite goes on writing into a file that was deleted or replaced, and all
   * of that is lost at the next start. Returns false, and starts `handleMoved`, when it is not.
   */
  checkFile(): boolean {
    if (this.moved !== null) return false;
    if (this.dbHandle === null) return true;
    this.fileCheckedAt = performance.now();
    const path = this.options.path;
    const db = fileIdentity(path);
    const wal = fileIdentity(`${path}-wal`);
    if (db === this.fileIds.db && wal === this.fileIds.wal) return true;
    const replaced = db !== null && db !== this.fileIds.db;
    const what = db === null ? 'was deleted' : replaced ? 'was replaced by another file' : 'lost its write-ahead log (-wal deleted or replaced)';
    this.moved = { replaced, what, at: Date.now(), copy: null, copyTriedAt: Number.NEGATIVE_INFINITY, error: null };
    this.options.onFileEvent?.(`${path} ${what} while the agent had it open; readings are refused (PW_BUFFER_MOVED) until its rows are copied out and a file at the path is open again`);
    return false;
  }

  private checkFileSoon(): void {
    if (this.dbHandle === null && this.reopenAt !== null && performance.now() >= this.reopenAt) {
      this.reopenAt = performance.now() + RESTORE_RETRY_MS;
      this.open();
      this.reopenAt = null;
    }
    if (this.moved !== null || performance.now() - this.fileCheckedAt >= FILE_CHECK_MS) {
      if (!this.checkFile()) this.handleMoved();
    }
  }

  /**
   * The file at the path is not the open one. Everything committed is still readable through the
   * open connection, so it is copied out first (VACUUM INTO: a consistent snapshot, sequence
   * numbers, sync state, models and counters included):
   * - deleted (or its WAL lost): the copy becomes the file at the path, and the buffer goes on with
   *   every row it had; nothing acknowledged is lost;
   * - replaced by another file: that file is someone's on purpose (a restored backup, a swapped
   *   volume) and is opened as it is; merging rows into it would clash on sequence numbers, so the
   *   copy is kept aside as `<file>.replaced-<time>` for an operator.
   * Until that is done, uses fail with PW_BUFFER_MOVED (503; /healthz names it) and nothing is
   * written. Then the old connections are closed, and the new file is opened only once they are:
   * SQLite deletes `<file>-wal` by its name when the last one closes. Throws while not done.
   */
  private handleMoved(): void {
    const m = this.moved;
    if (m === null) return;
    const path = this.options.path;
    if (this.dbHandle === null && m.copy === null) {
      // closed meanwhile (the agent stopping) before anything could be copied: open what is there
      this.moved = null;
      this.open();
      return;
    }
    if (this.dbHandle !== null) {
      if (m.copy === null && !m.replaced && fileIdentity(path) === this.fileIds.db && this.checkpointWholly()) {
        // Only the write-ahead log went: the rows committed since the last checkpoint were only
        // in it. One checkpoint through the open connection moved them into the file at the path,
        // in milliseconds; a copy of the whole buffer first took seconds, and a kill meanwhile
        // lost them. That file is the buffer: nothing to copy or put back.
        m.copy = path;
      }
      if (m.copy === null) {
        if (performance.now() - m.copyTriedAt < RESTORE_RETRY_MS && m.error !== null) throw m.error;
        m.copyTriedAt = performance.now();
        const copy = m.replaced ? `${path}.replaced-${new Date(m.at).toISOString().replace(/[:.]/g, '-')}` : `${path}.restoring`;
        for (let round = 0; ; round++) {
          try {
            // Into a temporary name first: only a finished copy carries the name open() restores from.
            rmSync(`${copy}-partial`, { force: true });
            this.dbHandle.prepare('VACUUM INTO ?').run(`${copy}-partial`);
            renameSync(`${copy}-partial`, copy);
            m.copy = copy;
            break;
          } catch (err) {
            try {
              rmSync(`${copy}-partial`, { force: true }); // its blocks, for the next round or anyone else
            } catch {
              // not a file we can remove (the copy failed on it): reported below
            }
            const cause = classifySqliteError(err, path, 'copying the open buffer');
            // The deleted file keeps its blocks while open, and the buffer may have filled the
            // volume up to its reserve (the free-space cap): the copy then never fits. Evicting
            // as a full disk does (synced rows first, about a tenth a round) and truncating the
            // open file gives the volume room, round by round, where waiting lost every row at
            // the next stop.
            if (cause.code === 'PW_BUFFER_DISK_FULL' && !m.replaced && round < COPY_ROOM_ROUNDS && this.shrinkOpenFile(m)) continue;
            m.error = this.movedError(m, `copying its rows out of the open file failed (${cause.message}); nothing is stored until that works (tried every ${RESTORE_RETRY_MS / 1000} s)`, cause);
            throw m.error;
          }
        }
      }
      // A WAL of the replacement would be deleted by name when the old connections close: keep a link.
      const walNow = fileIdentity(`${path}-wal`);
      const foreignWal = m.replaced && walNow !== null && walNow !== this.fileIds.wal;
      if (foreignWal) {
        rmSync(`${path}-wal.keep`, { force: true });
        linkSync(`${path}-wal`, `${path}-wal.keep`);
      }
      m.keptWal = foreignWal;
      this.close();
      this.openError = this.movedError(m, 'its rows were copied out; the buffer is being reopened', null);
    }
    if (this.checkpointerClosing !== null && this.checkpointerClosing.closed?.() === false) {
      this.finishSoon();
      throw this.movedError(m, 'its rows were copied out; waiting for the checkpoint connection to close before reopening', null);
    }
    this.checkpointerClosing = null;
    if (m.replaced) {
      if (m.keptWal === true) {
        if (!existsSync(`${path}-wal`)) renameSync(`${path}-wal.keep`, `${path}-wal`);
        else rmSync(`${path}-wal.keep`, { force: true });
      } else if (fileIdentity(`${path}-wal`) === this.fileIds.wal) {
        // the old file's log, left if its last close could not delete it: never replayed onto the new file
        rmSync(`${path}-wal`, { force: true });
        rmSync(`${path}-shm`, { force: true });
      }
    } else {
      rmSync(`${path}-wal`, { force: true }); // the old file's, or left by nobody: never replayed onto the copy
      rmSync(`${path}-shm`, { force: true });
      if (m.copy !== path) renameSync(m.copy!, path);
    }
    this.moved = null;
    this.fileEvent = `${new Date(m.at).toISOString()}: ${path} ${m.what} while open; ${
      m.replaced
        ? `the rows the agent had were kept in ${m.copy} and the new file is used`
        : m.evictedForCopy
          ? `the buffer was restored at the path; its volume had no room for the copy, so ${m.evictedForCopy} rows were evicted first, as on a full disk (synced rows first, then the oldest unsent)`
          : 'the buffer was restored at the path with every row it had'
    }`;
    this.fileEventAt = performance.now();
    this.options.onFileEvent?.(this.fileEvent);
    // The agent's reopen tick only retries opens it started: a file at the path that cannot be
    // opened (a corrupt replacement) is retried by the next use, every RESTORE_RETRY_MS.
    this.reopenAt = performance.now() + RESTORE_RETRY_MS;
    this.open();
    this.reopenAt = null;
  }

  /**
   * Frees room on the volume from the open (deleted) file: its log checkpointed and truncated,
   * about a tenth of its rows evicted as on a full disk, its free pages given back. True when rows
   * were evicted (the file can shrink further, so another round may help).
   */
  private shrinkOpenFile(m: MovedFile): boolean {
    const db = this.dbHandle!;
    const before = evictedTotal(this.eviction.counts());
    try {
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // the eviction below needs log room; it may still find some
    }
    const evicted = this.evict(() => this.eviction.makeRoom(true));
    m.evictedForCopy = (m.evictedForCopy ?? 0) + evictedTotal(this.eviction.counts()) - before;
    try {
      db.pragma('incremental_vacuum');
      db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // a file never converted to incremental vacuum keeps its size: the freed pages still hold the copy smaller
    }
    return evicted;
  }

  /** A TRUNCATE checkpoint through the open connection; true when every frame of the log reached the file. */
  private checkpointWholly(): boolean {
    try {
      const [r] = this.dbHandle!.pragma('wal_checkpoint(TRUNCATE)') as Array<{ busy: number; log: number; checkpointed: number }>;
      return r !== undefined && r.busy === 0 && r.checkpointed === r.log;
    } catch {
      return false; // the copy below is the way then
    }
  }

  /** Finishes handleMoved as soon as the checkpoint connection is closed, without waiting for a use. */
  private finishSoon(): void {
    if (this.finishTimer !== null) return;
    this.finishTimer = setInterval(() => {
      if (this.moved === null || this.dbHandle !== null) {
        this.stopFinishing();
      } else if (this.checkpointerClosing?.closed?.() !== false) {
        this.stopFinishing();
        try {
          this.handleMoved();
        } catch {
          // kept for the next use (commit, /healthz), which tries again
        }
      }
    }, 20);
    this.finishTimer.unref();
  }

  private stopFinishing(): void {
    if (this.finishTimer !== null) clearInterval(this.finishTimer);
    this.finishTimer = null;
  }

  private movedError(m: MovedFile, detail: string, cause: BufferError | null): BufferError {
    return new BufferError('PW_BUFFER_MOVED', `${this.options.path} ${m.what} while the agent had it open: ${detail}`, cause === null ? undefined : { cause });
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
      fileBytes: fileSize(this.options.path),
      walBytes: this.walFilesBytes(),
      maxBytes: this.maxBytes,
      diskLimitBytes: this.diskLimit < this.maxBytes ? this.diskLimit : null,
      evicted: { ...evicted, total: evictedTotal(evicted) },
      unsentEvicted: { sinceStart: this.unsentEvictedSinceStart, lastAt: this.eviction.lastUnsentEvictionAt() },
      rejected: this.rejectedCount,
      rejectedUnsentEvicted: this.eviction.unsentRejectedEvicted(),
      oldestUnsyncedTs: oldest?.ts ?? null,
      checkpointError: this.checkpointer?.error() ?? null,
      fileEvent: this.fileEvent,
      unreadable: this.ranges.unreadable(),
      withoutContributions: this.withoutContributions.summary(),
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
   * The most recent rows of one pump, newest last, optionally from a time on. `sinceTs` alone
   * walks back through the pump's rows until `limit` match (no index on time: one would cost every
   * commit), so a poll must not rely on it: it uses predictionsAfter. `beforeSeq` bounds the range
   * from above: the page before the oldest row of the last one, for a reader walking back in pages.
   */
  predictions(pumpId: string, opts: { sinceTs?: number; beforeSeq?: number; limit: number }): StoredRow[] {
    const stmt = this.db.prepare(
      `SELECT ${ROW_COLUMNS} FROM (SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq < ? AND ts >= ?
       ORDER BY seq DESC LIMIT ?) ORDER BY seq`,
    );
    return readRows(stmt, this.contributionNames, pumpId, opts.beforeSeq ?? Number.MAX_SAFE_INTEGER, opts.sinceTs ?? 0, opts.limit).map(fromDbRow);
  }

  /**
   * The next rows of one pump after `afterSeq` (the oldest of them first, at most `limit`, from
   * `sinceTs` on), and whether more follow them: a poller that fell behind by more than `limit`
   * rows reads the gap page by page instead of skipping to the newest. A range of the
   * (pump_id, seq) index: a poll reads only the rows it returns, plus one to tell `more`.
   */
  predictionsAfter(pumpId: string, opts: { afterSeq: number; sinceTs?: number; limit: number }): { rows: StoredRow[]; more: boolean } {
    const stmt = this.db.prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE pump_id = ? AND seq > ? AND ts >= ? ORDER BY seq LIMIT ?`);
    const rows = readRows(stmt, this.contributionNames, pumpId, opts.afterSeq, opts.sinceTs ?? 0, opts.limit + 1).map(fromDbRow);
    const more = rows.length > opts.limit;
    if (more) rows.pop();
    return { rows, more };
  }

  /**
   * The pump's anomaly with the newest reading time among those before `beforeSeq`, null when it has
   * none: one seek down the (pump_id, ts) index of anomalies, passing over only the anomalies at or
   * after `beforeSeq` (the board's 200 seeded rows hold at most 200). By reading time, not seq: an
   * anomaly stored later with an older reading time (a sensor clock stepped back) is not it.
   */
  newestAnomalyBefore(pumpId: string, beforeSeq: number): { seq: number; ts: number } | null {
    const row = this.db
      .prepare('SELECT seq, ts FROM readings INDEXED BY readings_anomalies_pump_ts WHERE pump_id = ? AND anomaly = 1 AND seq < ? ORDER BY ts DESC, seq DESC LIMIT 1')
      .get(pumpId, beforeSeq) as { seq: number; ts: number } | undefined;
    return row ?? null;
  }

  /**
   * How many normal verdicts (at most `want`) the rows of one pump after `afterSeq` and before
   * `beforeSeq` hold, walking up the (pump_id, seq) index over at most `limit` rows and stopping at
   * the `want`th; `looked`: the rows walked. Only the verdicts are read, in SQLite (about 0.6 µs a
   * row here), never the rows' values.
   */
  normalsAfter(pumpId: string, afterSeq: number, beforeSeq: number, want: number, limit: number): { normals: number; looked: number } {
    const found = this.db
      .prepare(
        `SELECT count(*) AS n, max(seq) AS last FROM (SELECT seq FROM (SELECT seq, anomaly FROM readings WHERE pump_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?)
         WHERE anomaly = 0 LIMIT ?)`,
      )
      .get(pumpId, afterSeq, beforeSeq, limit, want) as { n: number; last: number | null };
    const upTo = found.n >= want ? found.last! + 1 : beforeSeq;
    const looked = this.db
      .prepare('SELECT count(*) AS n FROM (SELECT 1 FROM readings WHERE pump_id = ? AND seq > ? AND seq < ? ORDER BY seq LIMIT ?)')
      .get(pumpId, afterSeq, upTo, limit) as { n: number };
    return { normals: found.n, looked: looked.n };
  }

  /**
   * Only the time and verdict of up to `limit` rows of one pump before `beforeSeq`, oldest first:
   * what finding where an anomaly streak began needs, without parsing each row's values (about
   * 40 times cheaper per row than predictions()).
   */
  anomalyMarks(pumpId: string, beforeSeq: number, limit: number): Array<{ ts: number; anomaly: boolean | null }> {
    const rows = this.db
      .prepare('SELECT ts, anomaly FROM readings WHERE pump_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
      .raw()
      .all(pumpId, beforeSeq, limit) as Array<[number, number | null]>;
    const out = new Array<{ ts: number; anomaly: boolean | null }>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [ts, a] = rows[rows.length - 1 - i]!;
      out[i] = { ts, anomaly: a === null ? null : a === 1 };
    }
    return out;
  }

  /**
   * Only the seq, own time and receive time of up to `limit` rows of one pump before `beforeSeq`
   * (all its rows when absent), oldest first: when the pump was last heard and its usual interval
   * (agent/edge/pump-silence.ts at start-up, for every pump), without parsing each row's values.
   */
  heardTimes(pumpId: string, limit: number, beforeSeq = Number.MAX_SAFE_INTEGER): Array<{ seq: number; ts: number; receivedAt: number }> {
    const rows = this.db
      .prepare('SELECT seq, ts, received_at FROM readings WHERE pump_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?')
      .raw()
      .all(pumpId, beforeSeq, limit) as Array<[number, number, number]>;
    const out = new Array<{ seq: number; ts: number; receivedAt: number }>(rows.length);
    for (let i = 0; i < rows.length; i++) {
      const [seq, ts, receivedAt] = rows[rows.length - 1 - i]!;
      out[i] = { seq, ts, receivedAt };
    }
    return out;
  }

  /**
   * Looking back from `beforeSeq` over at most `limit` rows of one pump (newest first): the seq of
   * the newest whose unscored reason begins with none of `skip`, and, unless `anyAtLeast` is null,
   * whose values hold one of its features at or above its bound; null when none of them is
   * (`oldestSeq`: the oldest row looked at, `looked`: how many, up to `limit`). One walk down the
   * (pump_id, seq) index that stops at the row it finds, reading a row's values only when its
   * reason is not skipped. For the page: the last reading that ran before a stop (its rows have
   * one reason), when the stop began before the rows read back at start-up.
   */
  newestSeqOutside(
    pumpId: string,
    beforeSeq: number,
    limit: number,
    skip: readonly string[],
    anyAtLeast: ReadonlyArray<{ feature: string; below: number }> | null,
  ): { seq: number } | { seq: null; oldestSeq: number | null; looked: number } {
    const reasons = skip.map(() => 'substr(unscored_reason, 1, ?) <> ?').join(' AND ');
    const values = anyAtLeast === null ? '' : ` AND EXISTS (SELECT 1 FROM json_each(vals) WHERE ${anyAtLeast.map(() => '(key = ? AND value >= ?)').join(' OR ')})`;
    const found = this.db
      .prepare(
        `SELECT seq FROM (SELECT seq, vals, unscored_reason FROM readings WHERE pump_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?)
         WHERE (unscored_reason IS NULL${reasons === '' ? '' : ` OR (${reasons})`})${values} LIMIT 1`,
      )
      .get(pumpId, beforeSeq, limit, ...skip.flatMap((p) => [p.length, p]), ...(anyAtLeast ?? []).flatMap((c) => [c.feature, c.below])) as { seq: number } | undefined;
    if (found) return { seq: found.seq };
    const edge = this.db
      .prepare('SELECT min(seq) AS seq, count(*) AS n FROM (SELECT seq FROM readings WHERE pump_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?)')
      .get(pumpId, beforeSeq, limit) as { seq: number | null; n: number };
    return { seq: null, oldestSeq: edge.seq, looked: edge.n };
  }

  /** The oldest row of one pump from `fromSeq` on whose unscored reason starts with `prefix`: its seq and time (null when none). */
  firstWithReason(pumpId: string, fromSeq: number, prefix: string): { seq: number; ts: number } | null {
    const row = this.db
      .prepare('SELECT seq, ts FROM readings WHERE pump_id = ? AND seq >= ? AND substr(unscored_reason, 1, ?) = ? ORDER BY seq LIMIT 1')
      .get(pumpId, fromSeq, prefix.length, prefix) as { seq: number; ts: number } | undefined;
    return row ?? null;
  }

  /**
   * Receive times on today's clock: a row's stored receive time plus the clock steps recorded after
   * it (buffer/clock-steps.ts, the rule retention ages rows by). The steps are read once, here; the
   * function then maps any number of rows. For how long ago a row read back arrived (the page after a
   * restart), when NTP set the clock since.
   */
  receiveTimeCorrection(): ReceiveTimeCorrection {
    return receiveTimeCorrection(clockSegments(this.db));
  }

  /** When the newest row was received (the gateway clock then), or null when the buffer is empty. */
  newestReceivedAt(): number | null {
    const row = this.db.prepare('SELECT received_at FROM readings ORDER BY seq DESC LIMIT 1').get() as { received_at: number } | undefined;
    return row?.received_at ?? null;
  }

  /** Rows by sequence range (inclusive), in order: for tests, sync and model validation. */
  rowsBySeq(fromSeq: number, toSeq: number): StoredRow[] {
    return this.dbRowsBySeq(fromSeq, toSeq).map(fromDbRow);
  }

  /** The same rows as stored (values and contributions as JSON text), as the sync's planner sizes them (batches.ts storedLineBytes). */
  dbRowsBySeq(fromSeq: number, toSeq: number): DbRow[] {
    return readRows(this.db.prepare(`SELECT ${ROW_COLUMNS} FROM readings WHERE seq BETWEEN ? AND ? ORDER BY seq`), this.contributionNames, fromSeq, toSeq);
  }

  /**
   * A row whose contributions cannot be decoded, met by one of the store's readers: they read as
   * null (contributions.ts), and the log is told once per row (per open, up to a thousand rows).
   */
  private undecodable(err: BufferError): void {
    if (this.undecodableWarned.size >= 1000 || this.undecodableWarned.has(err.message)) return;
    this.undecodableWarned.add(err.message);
    this.options.onWarning?.(`${err.code}: ${err.message}; read as no contributions (the reading itself as stored)`);
  }

  /**
   * Rows the sync read for an upload whose contributions cannot be decoded (PW_BUFFER_INVALID_ROW
   * messages naming their seqs): on the main thread from `ranges`, on the encoder thread from its
   * reply (sync/cycle.ts). They go up with `contributions: null`; counted and said once each.
   */
  recordWithoutContributions(errors: readonly string[]): void {
    const now = Date.now();
    for (const e of errors) this.withoutContributions.record(e, now);
  }

  /** Decodes the contributions of rows read on the open file's connection (readRows). */
  get contributionNames(): ContributionNames {
    if (this.dbHandle === null || this.names === null) throw this.closedError();
    return this.names;
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

  /** The open file's id (migrations.ts BUFFER_ID_KEY), written on every readings line the sync uploads. */
  bufferId(): string {
    const id = this.getMeta(BUFFER_ID_KEY);
    if (id === null) throw new BufferError('PW_BUFFER_CORRUPT', `the buffer ${this.options.path} has no id in its meta table (it is made at every open)`);
    return id;
  }

  /**
   * The buffer id the lines of batch `batchId` carry: none (null) for a batch planned before the
   * file had its id (migrations.ts BUFFER_ID_AFTER_BATCH_KEY), so its resend is the same bytes.
   */
  bufferIdOfBatch(batchId: number): string | null {
    const before = this.getMeta(BUFFER_ID_AFTER_BATCH_KEY);
    return before !== null && batchId <= Number(before) ? null : this.bufferId();
  }

  /** Small key/value state that must survive restarts (active models, cursors). */
  getMeta(key: string): string | null {
    const row = this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined;
    return row?.value ?? null;
  }

  setMeta(key: string, value: string): void {
    this.setMetas([[key, value]]);
  }

  /**
   * Writes several keys in one transaction: all of them or none (a kill or a failed write between
   * two setMeta calls left the first without the second), and one commit (one fsync) for them all.
   */
  setMetas(entries: ReadonlyArray<readonly [key: string, value: string]>): void {
    try {
      const upsert = this.db.prepare('INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value');
      this.db.transaction(() => {
        for (const [key, value] of entries) upsert.run(key, value);
      })();
    } catch (err) {
      throw classifySqliteError(err, this.options.path, `saving ${entries.map(([key]) => key).join(', ')}`);
    }
  }

  /**
   * A part that reads or writes this file on its own (the sync: a corrupt page, a lock) says what it
   * met, and health() reports it until that part reports null (it got past the buffer again).
   */
  reportFailure(part: string, error: BufferError | null): void {
    if (error === null) this.reportedFailures.delete(part);
    else this.reportedFailures.set(part, error);
  }

  /**
   * Liveness of the buffer: a trivial read on the open database, the last commit having stored its
   * rows (a full disk or a read-only volume fails here until a commit succeeds again), the cap
   * being enforceable, and no failure reported by another part (reportFailure). Healthy but
   * `degraded` while rows a damaged page keeps from being read are set aside: the buffer works,
   * and those rows are lost (PW_BUFFER_ROWS_UNREADABLE); and once rows went up without their
   * contributions, which cannot be decoded (PW_BUFFER_INVALID_ROW, the seqs named); and for
   * UNSENT_EVICTED_HEALTH_MS after readings were evicted before they were uploaded
   * (PW_BUFFER_UNSENT_EVICTED): the cap keeps the buffer working, and those readings are lost.
   */
  health(): { ok: boolean; error?: string; degraded?: string } {
    try {
      this.checkFileSoon();
      if (!this.checkFile()) this.handleMoved();
      this.db.prepare('SELECT 1').get();
      if (this.commitError !== null) return { ok: false, error: `${this.commitError.code}: ${this.commitError.message}` };
      if (this.evictionError !== null) return { ok: false, error: this.evictionError.message };
      const [reported] = this.reportedFailures;
      if (reported !== undefined) return { ok: false, error: `${reported[1].code} (met by the ${reported[0]}): ${reported[1].message}` };
      if (this.fileEvent !== null && performance.now() - this.fileEventAt < FILE_EVENT_HEALTH_MS) {
        return { ok: false, error: `PW_BUFFER_MOVED: ${this.fileEvent}` };
      }
      const unreadable = this.ranges.unreadable();
      // the unsent readings evicted last: the damage's texts keep the start of the check (cut at 500 characters by /healthz), as before they existed
      const degraded = [unreadable.ranges > 0 ? unreadableText(unreadable) : null, this.withoutContributions.healthText(), this.unsentEvictedText()].filter((d) => d !== null);
      return degraded.length > 0 ? { ok: true, degraded: degraded.join('; ') } : { ok: true };
    } catch (err) {
      return { ok: false, error: err instanceof BufferError ? `${err.code}: ${err.message}` : (err as Error).message };
    }
  }

  /**
   * No sync runs (off by intent, no Azurite in standalone, or no blob target): no row is ever
   * uploaded, eviction keeps the newest history as designed, and /healthz stays ok for it, as the
   * README says of a gateway without uploads (it said degraded for good once such a buffer was full).
   */
  setUploads(on: boolean): void {
    this.uploads = on;
  }

  /** What /healthz says of readings evicted before they were uploaded, within UNSENT_EVICTED_HEALTH_MS of the last (else null, and while no sync runs). */
  private unsentEvictedText(): string | null {
    if (!this.uploads) return null;
    const lastAt = this.eviction.lastUnsentEvictionAt();
    // On the wall clock, as it is kept across restarts: a clock stepped back keeps the text longer, never drops it early.
    if (lastAt === null || Date.now() - lastAt >= UNSENT_EVICTED_HEALTH_MS) return null;
    const { unsynced, anomalies } = this.eviction.counts();
    return (
      `PW_BUFFER_UNSENT_EVICTED: ${this.unsentEvictedSinceStart} reading(s) evicted before they were uploaded since start ` +
      `(${unsynced + anomalies} since the buffer was created), the last at ${new Date(lastAt).toISOString()}, to stay under the cap ` +
      `of ${this.effectiveCap()} bytes in force: they never reach Blob Storage (said for 24 h after the last)`
    );
  }

  /**
   * The files the store has open (the database's and its log's identities, as openFileIdentity
   * gives them), null while closed: sync's reader on another thread follows it (buffer/reader.ts).
   */
  openFile(): string | null {
    return this.dbHandle === null ? null : `${this.fileIds.db}|${this.fileIds.wal}`;
  }

  /** True once the checkpoint thread of a closed store has closed its connection (its files may still change until then). */
  checkpointsEnded(): boolean {
    return this.checkpointer === null && this.checkpointerClosing?.closed?.() !== false;
  }

  /**
   * Closes the file. The checkpoint thread's connection is closed first (waited for, up to
   * CHECKPOINT_CLOSE_WAIT_MS, blocking this thread), so this one is the last: SQLite checkpoints the
   * log into the file and deletes the `-wal` when the last connection closes. Before, the thread's
   * connection could close after this one, and the `-wal` stayed until the next open replayed it.
   * A wait that runs out is told to onWarning, and the close goes on (nothing is lost: the log is
   * replayed at the next open).
   */
  close(): void {
    this.copyOutBeforeClose();
    this.stopFinishing();
    const db = this.dbHandle;
    if (db === null) return;
    this.dbHandle = null;
    const runner = this.checkpointer;
    runner?.stop();
    this.checkpointerClosing = runner;
    this.checkpointer = null;
    if (runner?.waitClosed !== undefined && !runner.waitClosed(CHECKPOINT_CLOSE_WAIT_MS)) {
      this.options.onWarning?.(
        `closing the buffer ${this.options.path}: the checkpoint thread had not closed its connection after ${CHECKPOINT_CLOSE_WAIT_MS / 1000} s; closed without it, so ${this.options.path}-wal may stay until the next open replays it (nothing is lost)`,
      );
    }
    db.close();
  }

  /**
   * The file checks run every FILE_CHECK_MS of commits: a file deleted (or replaced) just before
   * a stop, or whose copy has not worked yet, is copied out now (handleMoved, retried at once),
   * as closing the connection gives up the only way to its rows. A copy that fails is reported.
   */
  private copyOutBeforeClose(): void {
    if (this.dbHandle === null) return;
    if (this.checkFile()) return; // false too while a move is being handled
    const m = this.moved;
    if (m === null || m.copy !== null) return;
    m.copyTriedAt = Number.NEGATIVE_INFINITY;
    try {
      this.handleMoved();
    } catch (err) {
      this.options.onFileEvent?.(`closing with ${this.options.path} ${m.what}: ${(err as Error).message}`);
    }
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

/** What /healthz says of rows set aside as unreadable: the code, how many, and the newest ranges. */
function unreadableText(u: UnreadableSummary): string {
  const shown = u.recent.slice(0, 3).map(runText).join(', ');
  const more = u.ranges > 3 ? ` and ${u.ranges - 3} more range(s)` : '';
  const causes = [...new Set(u.recent.map((r) => unreadableCause(r.error)))].join(', or ');
  return `PW_BUFFER_ROWS_UNREADABLE: ${u.rows} row(s) in ${u.ranges} range(s) cannot be read (${causes}) and were set aside, never uploaded: ${shown}${more}; every other row is uploaded (see /status buffer.unreadable)`;
}

/** Rounds of evicting and copying again when the copy of a deleted buffer does not fit on its volume. */
const COPY_ROOM_ROUNDS = 10;

interface MovedFile {
  replaced: boolean;
  what: string;
  at: number;
  /** Where the open file's rows were copied (VACUUM INTO), once done. */
  copy: string | null;
  copyTriedAt: number;
  error: BufferError | null;
  keptWal?: boolean;
  /** Rows evicted to make room on the volume for the copy (shrinkOpenFile). */
  evictedForCopy?: number;
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0; // not there (yet, or any more)
  }
}
