import { createHash } from 'node:crypto';
import { clockSegments, lastSeqBeforeStep, receiveTimeCorrection } from './clock-steps.js';
import { classifySqliteError } from './errors.js';
import { fromDbRow, type DbRow } from './rows.js';
import { SYNCED_ROWS_SQL } from './ranges.js';
import { deleteEach, isCorruptPage, readBySeq, RowsUnreadableError, seqsAcrossPumps, type Undeletable, type UnreadableRun } from './unreadable.js';
import type { BufferStore } from './store.js';
import type { StoredRow } from './types.js';


/** Rows one retention step deletes at most: about 20 ms of the main thread on a gateway-class CPU. */
export const RETENTION_STEP_ROWS = 2_000;
/**
 * Clock steps smaller than this are not recorded: retention off by less than a minute over hours
 * does not matter, and the step's rows are told apart by their receive times only when the step
 * exceeds the few seconds the scheduler takes to notice it.
 */
export const MIN_RECORDED_STEP_MS = 60_000;
/**
 * A forward step at least this large is a clock that booted in another era (1970, or years behind
 * with a flat clock battery): rows of earlier runs on such a clock are corrected with it.
 */
export const WRONG_ERA_STEP_MS = 365 * 86_400_000;
/** Priority of a planned batch: lower goes first. */
export const PRIORITY = { anomalies: 0, bulk: 1 } as const;

export interface PlannedBatch {
  id: number;
  pumpId: string;
  firstSeq: number;
  lastSeq: number;
  rowCount: number;
  blobName: string;
  priority: number;
  state: 'planned' | 'uploaded' | 'failed';
  createdAt: number;
}

export interface PlanLimits {
  maxRows: number;
  /** Upper bound of the batch's JSON lines before compression (storedLineBytes; a single row larger than it goes alone). */
  maxBytes: number;
  /** Bytes every line carries that the buffer does not hold: the device id's JSON text (default 0). */
  lineExtra?: number;
  /** Rows of the same pump taken before an anomaly, so it is uploaded with its context. */
  anomalyContextRows: number;
  /**
   * The newest seq a plan may take (default: none). A sync cycle takes the backlog as it stood when
   * it began: rows committed while it runs wait for the next cycle. Otherwise a cycle never ends
   * while readings arrive, and chases the live head one pump at a time, each blob holding only the
   * few rows that pump committed since its last one (bench/soak: 2 rows per blob at 500 readings/s).
   */
  horizon?: number;
}

/** Where a new batch starts (see SyncBatches.pick). */
export interface PlanPick {
  pumpId: string;
  from: number;
  /** First seq of the pump's next planned range: the batch stops before it (null: none). */
  bound: number | null;
  priority: number;
}

/**
 * The widest the parts of a JSON line (sync/encoder.ts lineText) not taken from the row's texts can
 * be written: keys, quotes, a seq of 16 digits, a number of 24 characters, ISO times, true/false/null,
 * the closing brace and the newline. LINE_FIXED is in every line; the others only with their field.
 */
const LINE_FIXED = 216;
const UNSCORED_FIXED = 18; // ,"unscoredReason": (the reason's JSON string counted as written)
const SHADOW_SCORE_FIXED = 39;
const SHADOW_VERSION_FIXED = 24;
const CONTRIBUTIONS_FIXED = 17;
const THRESHOLD_FIXED = 37; // ,"threshold": and a number of 24 characters

/** No horizon: every committed row may be planned. */
const NO_HORIZON = Number.MAX_SAFE_INTEGER;

/** Milliseconds of a UTC day: a batch never spans two (see fitRows). */
const DAY_MS = 86_400_000;

/**
 * How many of `rows` (in order) one batch takes: rows on the UTC day of the first one, while their
 * lines' bytes (`lineBytes`, at most what the encoder writes) stay within `maxBytes`, and always at
 * least one. A blob lies in the day folder of its first row and the trainer lists a date range
 * by day folders, so a batch that ran on past midnight (a pump that reports every few minutes, a
 * replayed old reading among live ones) would hide its later rows from a reader of those days.
 * The one sizing rule of the planner, wherever rows are read and in whichever direction they are taken.
 */
export function fitRows<T extends { ts: number }>(rows: readonly T[], maxBytes: number, lineBytes: (row: T) => number): number {
  let bytes = 0;
  let count = 0;
  const day = rows.length > 0 ? Math.floor(rows[0]!.ts / DAY_MS) : 0;
  for (const r of rows) {
    bytes += lineBytes(r);
    if (count > 0 && (bytes > maxBytes || Math.floor(r.ts / DAY_MS) !== day)) break;
    count++;
  }
  return count;
}

/**
 * Bytes of a stored row's JSON line at most, but for `lineExtra` (the UTF-8 bytes of the device id and
 * buffer id, which the row does not hold): its texts as stored, in UTF-8 bytes as the blob holds them,
 * plus the widest the rest can be written (LINE_FIXED…). Before 2026-12-07 a batch was sized by its
 * values plus 200 bytes a row, which left out an anomaly's contributions and a long device id:
 * measured, blobs of anomalies came out at 1.5 times PUMPWATCH_SYNC_BATCH_MAX_BYTES and those of
 * normal readings 7 % over it. Until 2026-12-07 the texts were counted in characters: values named
 * in Cyrillic or Japanese (two or three bytes a character) made blobs 27 % over the cap.
 */
export function storedLineBytes(row: DbRow, lineExtra = 0): number {
  let n = LINE_FIXED + lineExtra + utf8(row.vals) + row.pump_id.length + (row.model_version === null ? 0 : utf8(row.model_version));
  if (row.threshold !== null) n += THRESHOLD_FIXED;
  if (row.unscored_reason !== null) n += UNSCORED_FIXED + utf8(JSON.stringify(row.unscored_reason));
  if (row.shadow_score !== null) n += SHADOW_SCORE_FIXED;
  if (row.shadow_model_version !== null) n += SHADOW_VERSION_FIXED + utf8(row.shadow_model_version);
  if (row.contributions !== null) n += CONTRIBUTIONS_FIXED + utf8(row.contributions);
  return n;
}

/** UTF-8 bytes of a text (a pump id is ASCII by its pattern, so its length is its bytes). */
function utf8(text: string): number {
  return Buffer.byteLength(text, 'utf8');
}

/** Names the blob of a batch (given by sync/layout.ts; the buffer does not know the layout). */
export type BlobNamer = (pumpId: string, firstSeq: number, lastSeq: number, firstTs: number) => string;

interface BatchRow {
  id: number;
  pump_id: string;
  first_seq: number;
  last_seq: number;
  row_count: number;
  blob_name: string;
  priority: number;
  state: PlannedBatch['state'];
  created_at: number;
}

const toBatch = (r: BatchRow): PlannedBatch => ({
  id: r.id,
  pumpId: r.pump_id,
  firstSeq: r.first_seq,
  lastSeq: r.last_seq,
  rowCount: r.row_count,
  blobName: r.blob_name,
  priority: r.priority,
  state: r.state,
  createdAt: r.created_at,
});

/**
 * Planned sync batches: a batch's rows and blob name are fixed and persisted before any upload, so
 * a retry after a crash uploads the same rows under the same name. Anomalies (with context) first.
 */
export class SyncBatches {
  constructor(private readonly store: BufferStore) {}

  /** The buffer files the store has open (BufferStore.openFile), for a reader on another thread. */
  bufferFile(): string | null {
    return this.store.openFile();
  }

  /** The id of the buffer file the rows are read from (BufferStore.bufferId), written on every line. */
  bufferId(): string {
    return this.store.bufferId();
  }

  /** The buffer id in the lines of a planned batch (BufferStore.bufferIdOfBatch): none for a plan older than the id. */
  bufferIdOf(batch: PlannedBatch): string | null {
    return this.store.bufferIdOfBatch(batch.id);
  }

  /** The next batch to upload: an unfinished planned one first, else a newly planned one, else null. */
  next(limits: PlanLimits, namer: BlobNamer, now: number): PlannedBatch | null {
    return this.pending() ?? this.plan(limits, namer, now);
  }

  pending(): PlannedBatch | null {
    const row = this.store.db
      .prepare("SELECT * FROM sync_batches WHERE state = 'planned' AND kind = 'readings' ORDER BY priority, id LIMIT 1")
      .get() as BatchRow | undefined;
    return row ? toBatch(row) : null;
  }

  /** Plans one batch, durable when it returns: the newest unplanned anomaly's pump with context, else the oldest unplanned rows. */
  plan(limits: PlanLimits, namer: BlobNamer, now: number): PlannedBatch | null {
    const sized = this.sizedPick(limits, namer);
    return sized === null ? null : this.persist(sized.pick, sized.range, sized.blobName, now);
  }

  /**
   * Plans one batch as plan() does and returns it with its rows as stored, read once (the planner
   * sizes the batch from the same rows the encoder then serialises: a drain reads every row once,
   * not twice), committed as persistPlan() commits: its fsync on libuv's pool, `durable` resolving
   * once done. The caller must not upload the batch before. The sync's cycles on the main thread
   * plan this way: with the commit's own fsync, each blob cost the scoring thread 0.5-1 ms more
   * (bench/steady --plan).
   */
  planWithRows(limits: PlanLimits, namer: BlobNamer, now: number): { batch: PlannedBatch; rows: DbRow[]; durable: Promise<void> } | null {
    const sized = this.sizedPick(limits, namer);
    if (sized === null) return null;
    const planned = this.persistPlan(sized.pick, sized.range, sized.blobName, now);
    return planned === null ? null : { ...planned, rows: sized.rows };
  }

  /** The next batch's pick, its rows read and sized (fitRows), and its blob name: not yet planned. */
  private sizedPick(limits: PlanLimits, namer: BlobNamer): { pick: PlanPick; rows: DbRow[]; range: { firstSeq: number; lastSeq: number; rowCount: number }; blobName: string } | null {
    const pick = this.pick(limits);
    if (pick === null) return null;
    const rows = this.store.ranges.candidates(pick.pumpId, pick.from, pick.bound, Math.max(1, limits.maxRows));
    rows.length = fitRows(rows, limits.maxBytes, (r) => storedLineBytes(r, limits.lineExtra));
    const first = rows[0]!;
    const last = rows[rows.length - 1]!;
    return { pick, rows, range: { firstSeq: first.seq, lastSeq: last.seq, rowCount: rows.length }, blobName: namer(pick.pumpId, first.seq, last.seq, first.ts) };
  }

  /**
   * Where the next batch starts: the newest unplanned anomaly's pump with context before it, else
   * the oldest unplanned row. Its rows are those of `pumpId` from `from` on, before `bound`.
   */
  pick(limits: PlanLimits): PlanPick | null {
    const ranges = this.store.ranges;
    const horizon = limits.horizon ?? NO_HORIZON;
    // A batch stops before the pump's next planned range and after the horizon.
    const bound = (b: number | null): number | null => (horizon === NO_HORIZON ? b : Math.min(b ?? NO_HORIZON, horizon + 1));
    const a = ranges.newestUnplannedAnomaly(horizon);
    if (a !== null) return { pumpId: a.pumpId, from: this.contextStart(a.pumpId, a.seq, limits), bound: bound(a.bound), priority: PRIORITY.anomalies };
    const u = ranges.oldestUnplanned(horizon);
    return u === null ? null : { pumpId: u.pumpId, from: u.seq, bound: bound(u.bound), priority: PRIORITY.bulk };
  }

  /** The seq of the newest unplanned anomaly at or before `horizon` (default: any), or null. */
  newestUnplannedAnomaly(horizon = NO_HORIZON): number | null {
    return this.store.ranges.newestUnplannedAnomaly(horizon)?.seq ?? null;
  }

  /** True when an anomaly's rows (at or before `horizon`) wait unplanned: the next pick would be an alert batch. */
  hasUnplannedAnomaly(horizon = NO_HORIZON): boolean {
    return this.newestUnplannedAnomaly(horizon) !== null;
  }

  /** The newest seq committed (-1 when the buffer holds no reading): a cycle's horizon. */
  lastSeq(): number {
    return (this.store.db.prepare('SELECT max(seq) AS s FROM readings').get() as { s: number | null }).s ?? -1;
  }

  /**
   * Persists a batch for rows of a pick read and sized elsewhere (e.g. by another thread). Null when
   * the buffer no longer holds exactly `rowCount` rows in that range (evicted since): plan again.
   */
  persist(pick: PlanPick, range: { firstSeq: number; lastSeq: number; rowCount: number }, blobName: string, now: number): PlannedBatch | null {
    const db = this.store.db;
    const { pumpId, priority } = pick;
    const { firstSeq, lastSeq, rowCount } = range;
    const id = this.write('planning a sync batch', () =>
      db.transaction(() => {
        if (this.store.ranges.countRows(pumpId, firstSeq, lastSeq) !== rowCount) return null;
        return Number(
          db
            .prepare(
              `INSERT INTO sync_batches (pump_id, first_seq, last_seq, row_count, blob_name, priority, state, created_at)
               VALUES (?, ?, ?, ?, ?, ?, 'planned', ?)`,
            )
            .run(pumpId, firstSeq, lastSeq, rowCount, blobName, priority, now).lastInsertRowid,
        );
      })(),
    );
    return id === null ? null : { id, pumpId, firstSeq, lastSeq, rowCount, blobName, priority, state: 'planned', createdAt: now };
  }

  /**
   * persist() without an fsync on the calling thread: the plan is committed with synchronous=NORMAL
   * (its WAL frames written, not synced) and `durable` resolves once the WAL file is fsynced on
   * libuv's pool, the same sync FULL would have done inside the commit. The caller must not act on
   * the plan (start its upload) before `durable` resolves: a power cut in between loses only a plan
   * nothing used. Meanwhile the next batch can be planned (the commit is visible at once), so the
   * fsync overlaps the next batch's encoding instead of adding to it. Keeps an fsync of ~2 ms per
   * batch off the scoring thread during a drain.
   */
  persistPlan(pick: PlanPick, range: { firstSeq: number; lastSeq: number; rowCount: number }, blobName: string, now: number): { batch: PlannedBatch; durable: Promise<void> } | null {
    const batch = this.withoutFsync(() => this.persist(pick, range, blobName, now));
    if (batch === null) return null;
    const durable = this.store.syncWal();
    durable.catch(() => undefined); // observed by whoever uploads the batch; a plan never uploaded needs no fsync
    return { batch, durable };
  }

  /** fsyncs the WAL on libuv's pool: every plan committed without an fsync of its own (persistPlan) is durable once it resolves. */
  syncPlans(): Promise<void> {
    return this.store.syncWal();
  }

  /**
   * First seq of an anomaly's batch: up to `anomalyContextRows` earlier unplanned rows of its pump
   * on the anomaly's UTC day, no more than fit in one batch together with the anomaly, so the
   * anomaly itself is always in it.
   */
  private contextStart(pumpId: string, anomalySeq: number, limits: PlanLimits): number {
    const context = Math.max(0, Math.min(limits.anomalyContextRows, limits.maxRows - 1));
    const ranges = this.store.ranges;
    let rows: DbRow[];
    try {
      const from = ranges.contextFrom(pumpId, ranges.rangeEndBefore(pumpId, anomalySeq), anomalySeq, context + 1) ?? anomalySeq;
      // The rows themselves, not only their values' length: the batch is sized by the lines they make.
      rows = ranges.candidates(pumpId, from, anomalySeq + 1, context + 1);
    } catch (err) {
      // A damaged page among them (or the anomaly's own): the batch starts at the anomaly, and the
      // planner's read finds what can be read (buffer/unreadable.ts).
      if (isCorruptPage(err) || err instanceof RowsUnreadableError) return anomalySeq;
      throw err;
    }
    if (rows[rows.length - 1]?.seq !== anomalySeq) return anomalySeq; // the read stopped before a damaged page
    // Newest first, the anomaly itself first of all: the batch takes as many as fit, back in time.
    rows.reverse();
    return rows[fitRows(rows, limits.maxBytes, (r) => storedLineBytes(r, limits.lineExtra)) - 1]!.seq;
  }

  /** The rows of a planned batch, in sequence order (the same rows every time it is asked). */
  rows(batch: PlannedBatch): StoredRow[] {
    return this.rawRows(batch).map(fromDbRow);
  }

  /**
   * The rows of a planned batch as stored (values still JSON text), for the encoder's fast path;
   * RowsUnreadableError when a damaged page keeps any of them from being read (dropPlan).
   */
  rawRows(batch: PlannedBatch): DbRow[] {
    return this.store.ranges.rangeRows(batch.pumpId, batch.firstSeq, batch.lastSeq);
  }

  /**
   * Sets rows that cannot be read aside (buffer/unreadable.ts): never uploaded, never marked
   * synced, never read again by the planner; counted in stats().unreadable. False when nothing was
   * recorded (a batch planned meanwhile holds part of them: plan again).
   */
  recordUnreadable(run: UnreadableRun, now: number): boolean {
    return this.write('recording unreadable rows', () => this.store.ranges.recordUnreadable(run, now));
  }

  /** Rows of a batch whose contributions cannot be decoded, uploaded with `contributions: null` (BufferStore.recordWithoutContributions). */
  recordWithoutContributions(errors: readonly string[]): void {
    this.store.recordWithoutContributions(errors);
  }

  /**
   * Drops a planned batch (not uploaded) whose rows can no longer all be read: its rows are planned
   * again, the readable ones under new names, the others set aside by the planner. Should the batch
   * have gone up before (a crash before its mark), those rows are in Blob Storage twice, under two
   * names; the trainer reads each (device, seq, time) once.
   */
  dropPlan(batch: PlannedBatch): void {
    this.write('dropping a planned batch', () =>
      this.store.db.prepare("DELETE FROM sync_batches WHERE id = ? AND blob_name = ? AND state = 'planned'").run(batch.id, batch.blobName),
    );
    this.store.ranges.forgetPlan(batch.pumpId, batch.firstSeq); // its rows (anomalies among them) are unplanned again
  }

  /**
   * Marks a batch uploaded and its rows synced, in one transaction, after the service confirmed.
   * The batch, like markFailed's and noteError's, is found by its id and its blob name: the file may
   * have been replaced under the store while the upload ran (a restored backup, see BufferStore
   * handleMoved), and the batch with that id there is another one unless it has the same name
   * (then the same rows: a name holds the pump and its seq range).
   */
  markUploaded(batch: PlannedBatch, sha256: string, now: number): void {
    const db = this.store.db;
    // Committed without an fsync of its own (synchronous=NORMAL for this one transaction; the next
    // live commit or checkpoint makes it durable): losing it to a power cut only means the batch is
    // uploaded again under its planned name, which the conditional create counts as done. A plan is
    // made durable before its upload starts (persistPlan): an upload never runs ahead of it.
    const changed = this.withoutFsync(() =>
      this.write('marking a batch uploaded', () =>
        db.transaction(() => {
          const n = db
            .prepare("UPDATE sync_batches SET state = 'uploaded', sha256 = ?, uploaded_at = ?, error = NULL WHERE id = ? AND blob_name = ? AND state <> 'uploaded'")
            .run(sha256, now, batch.id, batch.blobName).changes;
          return n === 0 ? 0 : this.store.ranges.countRows(batch.pumpId, batch.firstSeq, batch.lastSeq);
        })(),
      ),
    );
    this.store.adjustCounts({ unsynced: -changed });
  }

  /** Records why a batch cannot be uploaded (e.g. a different blob already has its name). */
  markFailed(batch: PlannedBatch, error: string): void {
    this.write('marking a batch failed', () =>
      this.store.db.prepare("UPDATE sync_batches SET state = 'failed', error = ? WHERE id = ? AND blob_name = ?").run(error, batch.id, batch.blobName),
    );
  }

  /** Records the last error of a batch that stays planned (it will be retried). */
  noteError(batch: PlannedBatch, error: string): void {
    this.write('noting a batch error', () => this.store.db.prepare('UPDATE sync_batches SET error = ? WHERE id = ? AND blob_name = ?').run(error, batch.id, batch.blobName));
  }

  /**
   * Plans every failed batch again (its rows and name unchanged), once per start of the sync: a
   * batch refused because a blob of other content held its names uploads once someone moved that
   * blob away. Returns how many.
   */
  retryFailed(): number {
    return this.write('planning failed batches again', () =>
      this.store.db.prepare("UPDATE sync_batches SET state = 'planned', error = NULL WHERE state = 'failed' AND kind = 'readings'").run().changes,
    );
  }

  failed(): PlannedBatch[] {
    return (this.store.db.prepare("SELECT * FROM sync_batches WHERE state = 'failed' AND kind = 'readings' ORDER BY id").all() as BatchRow[]).map(toBatch);
  }

  /**
   * Deletes synced rows received before `cutoff` (retention for the technician page), at most
   * `limit` of them: one short transaction on the main thread, so a caller with more to delete
   * (sync/retention.ts) lets ingest and HTTP run between steps. In one statement, the backlog a
   * long outage leaves (a million rows) held every request for 15 s and grew the WAL by 110 MB.
   * The step that finds fewer than `limit` rows also forgets uploaded batches older than `cutoff`
   * that have no row left, so that table stays bounded too.
   */
  deleteSyncedBefore(cutoff: number, limit = RETENTION_STEP_ROWS, belowSeq = Number.MAX_SAFE_INTEGER): number {
    const db = this.store.db;
    const remove = (): number => {
      const del = db.prepare(
        `DELETE FROM readings WHERE seq IN (SELECT r.seq FROM ${SYNCED_ROWS_SQL} AND b.first_seq < ? AND r.seq < ? AND r.seq > ? AND r.seq <= ? AND r.received_at < ? LIMIT ?)`,
      );
      // Each stretch of rows received before a clock step against the cutoff moved by how far that
      // clock was behind (or ahead): their receive times are on it; all of it once the step was
      // noticed before the cutoff (the cap of clock-steps.ts). The rows since, as they are.
      let deleted = 0;
      let above = 0;
      for (const { upTo, behindMs, latest } of [...clockSegments(db), { upTo: Number.MAX_SAFE_INTEGER, behindMs: 0, latest: Number.POSITIVE_INFINITY }]) {
        if (deleted >= limit || above >= belowSeq) break;
        const before = latest < cutoff ? Number.MAX_SAFE_INTEGER : cutoff - behindMs;
        deleted += del.run(belowSeq, belowSeq, above, upTo, before, limit - deleted).changes;
        above = upTo;
      }
      return deleted;
    };
    // `salvaged`: the rows deleteSyncedRowByRow deleted already (the upkeep below is still to do).
    const step = (salvaged: number | null): number =>
      db.transaction(() => {
        let deleted: number;
        try {
          deleted = salvaged ?? remove();
        } catch (err) {
          if (!isCorruptPage(err)) throw err;
          throw new SalvageNeeded(); // rolls the transaction back
        }
        if (deleted < limit) {
          db.prepare(
            `DELETE FROM sync_batches WHERE state = 'uploaded' AND uploaded_at < ? AND NOT EXISTS (SELECT 1 FROM readings r
             WHERE r.pump_id = sync_batches.pump_id AND r.seq BETWEEN sync_batches.first_seq AND sync_batches.last_seq)`,
          ).run(cutoff);
          // Steps below every row left correct nothing any more.
          db.prepare('DELETE FROM clock_steps WHERE after_seq < coalesce((SELECT min(seq) FROM readings), 9007199254740991)').run();
        }
        return deleted;
      })();
    const n = this.write('deleting synced rows', () => {
      try {
        return step(null);
      } catch (err) {
        if (!(err instanceof SalvageNeeded)) throw err;
      }
      // A damaged page among them: the whole DELETE failed (and at every run after). Row by row instead.
      return step(this.deleteSyncedRowByRow(cutoff, limit, belowSeq));
    });
    this.store.adjustCounts({ rows: -n });
    return n;
  }

  /**
   * deleteSyncedBefore past a damaged page: the synced rows below `belowSeq` listed by the
   * (pump_id, seq) index, each one's receive time read by its seq, the expired ones deleted one
   * statement each (buffer/unreadable.ts deleteEach), up to `limit`. A row that cannot be read or
   * deleted is said once and skipped from then on (the store's DamagedRows). Returns the rows deleted.
   */
  private deleteSyncedRowByRow(cutoff: number, limit: number, belowSeq: number): number {
    const db = this.store.db;
    const damaged = this.store.damaged;
    const list = db.prepare(
      `SELECT r.seq FROM sync_batches b NOT INDEXED CROSS JOIN readings r INDEXED BY readings_pump_seq ON r.pump_id = b.pump_id AND r.seq BETWEEN b.first_seq AND b.last_seq
       WHERE b.state = 'uploaded' AND b.first_seq < ? AND r.seq < ? AND r.seq > ? ORDER BY r.seq LIMIT ?`,
    ).pluck();
    const read = db.prepare('SELECT received_at AS receivedAt FROM readings WHERE seq = ?');
    const del = db.prepare('DELETE FROM readings WHERE seq = ?');
    const corrected = receiveTimeCorrection(clockSegments(db));
    const failed: Undeletable[] = [];
    let deleted = 0;
    for (let after = -1; deleted < limit; ) {
      const seqs = list.all(belowSeq, belowSeq, after, limit) as number[];
      const expired: number[] = [];
      for (const seq of seqs) {
        after = seq;
        if (damaged.has(seq)) continue;
        const r = readBySeq<{ receivedAt: number }>(read, seq);
        if ('error' in r) failed.push({ seq, error: r.error });
        else if (r.row !== undefined && corrected(seq, r.row.receivedAt) < cutoff) expired.push(seq);
        if (expired.length >= limit - deleted) break;
      }
      const done = deleteEach(db, del, expired);
      deleted += done.deleted;
      failed.push(...done.failed);
      if (seqs.length < limit) break;
    }
    damaged.add('retention', 'synced', failed);
    return deleted;
  }

  /**
   * Where retention's search may stop: rows are numbered as they are received, so synced rows
   * received before `cutoff` lie below the first row received at or after it. Found by walking the
   * rows from `afterSeq` in seq order, at most `limit` of them (a step); `bound` is that row's seq,
   * null when none was found among them (`last`: the last seq looked at, null at the end). Without
   * the bound, a step that found fewer than its limit walked every synced row of the retention
   * window (a million rows: 650 ms on the main thread, every ten minutes). A clock stepped back
   * only delays the rows it touched until the cutoff passes the rows before them.
   */
  retentionBoundStep(cutoff: number, afterSeq: number, limit = RETENTION_STEP_ROWS): { bound: number | null; last: number | null } {
    const db = this.store.db;
    let rows: Array<{ seq: number; receivedAt: number | null }>;
    let listed: number;
    try {
      rows = db.prepare('SELECT seq, received_at AS receivedAt FROM readings WHERE seq > ? ORDER BY seq LIMIT ?').all(afterSeq, limit) as Array<{ seq: number; receivedAt: number }>;
      listed = rows.length;
    } catch (err) {
      if (!isCorruptPage(err)) throw err;
      // A damaged page among them (the scan fails at it): the seqs from the (pump_id, seq) index,
      // each row by its seq; one that cannot be read cannot be the bound (deleteSyncedBefore says it).
      const list = db.prepare('SELECT seq FROM readings INDEXED BY readings_pump_seq WHERE pump_id = ? AND seq > ? ORDER BY seq LIMIT ?').pluck();
      const seqs = seqsAcrossPumps(this.store.pumpIds(), (pumpId, after, n) => list.all(pumpId, after, n) as number[], afterSeq, limit);
      const read = db.prepare('SELECT received_at AS receivedAt FROM readings WHERE seq = ?');
      rows = seqs.map((seq) => {
        const r = readBySeq<{ receivedAt: number }>(read, seq);
        return { seq, receivedAt: 'error' in r ? null : (r.row?.receivedAt ?? null) };
      });
      listed = seqs.length;
    }
    const corrected = receiveTimeCorrection(clockSegments(db));
    for (const r of rows) {
      if (r.receivedAt !== null && corrected(r.seq, r.receivedAt) >= cutoff) return { bound: r.seq, last: r.seq };
    }
    return { bound: null, last: listed < limit ? null : rows.at(-1)!.seq };
  }

  /**
   * Records a step of the wall clock by `deltaMs` (positive forward), noticed at `now` (the new
   * clock): the rows received before it carry receive times on a clock `deltaMs` behind today's (or
   * ahead, for a step back), and retention measures their age accordingly. Without it, NTP setting
   * a gateway that booted at 1970 (or with the time of its last shutdown) made every synced row
   * received before years (or days) old, and the next retention run deleted minutes-old local
   * history; a step back kept rows longer than the setting. `checkedSeq` is the newest seq when the
   * clocks were last compared before the step (null when unknown): the rows up to it are surely on
   * the old clock, and only those since are told apart by receive time (clock-steps.ts
   * lastSeqBeforeStep). `fromSeq` is the newest seq when this run opened the buffer: the step
   * corrects only the rows this run received (clock-steps.ts clockSegments says why). Steps under
   * MIN_RECORDED_STEP_MS hardly matter and are not recorded.
   * Returns the seq recorded (the last row received on the old clock), null when nothing was
   * recorded (a small step, or no row before the step left to correct).
   */
  recordClockStep(deltaMs: number, now: number, checkedSeq: number | null, fromSeq = 0): number | null {
    if (!(Math.abs(deltaMs) >= MIN_RECORDED_STEP_MS)) return null;
    const db = this.store.db;
    return this.write('recording a clock step', () => {
      const last = lastSeqBeforeStep(db, deltaMs, now, Math.max(checkedSeq ?? fromSeq, fromSeq));
      // Only the rows of this run: rows from before it were on the clock of their own run...
      if (last === null || last <= fromSeq) return null;
      // ...unless that was as wrong: a step of years (a clock that booted at 1970) also corrects the
      // rows just before this run that read more than half of it behind now, back to the first that
      // does not (the rows of an earlier boot at 1970, which retention deleted at once after a
      // downtime longer than the retention time, and not those from before it, on the right clock).
      // They come out as young as this run's clock says, never older than they are: kept longer.
      let from = fromSeq;
      if (deltaMs >= WRONG_ERA_STEP_MS && fromSeq > 0) {
        // Walked back from this run's first row: it stops at the first row on the right clock.
        const right = db.prepare('SELECT seq FROM readings WHERE seq <= ? AND received_at >= ? ORDER BY seq DESC LIMIT 1').get(fromSeq, now - deltaMs / 2) as { seq: number } | undefined;
        from = right?.seq ?? 0;
      }
      db.prepare('INSERT INTO clock_steps (after_seq, delta_ms, recorded_at, from_seq) VALUES (?, ?, ?, ?)').run(last, Math.round(deltaMs), now, from);
      return last;
    });
  }

  /** Runs `fn` with synchronous=NORMAL: its commits write the WAL without an fsync of their own; FULL again after. */
  private withoutFsync<T>(fn: () => T): T {
    const db = this.store.db;
    db.pragma('synchronous = NORMAL');
    try {
      return fn();
    } finally {
      db.pragma('synchronous = FULL');
    }
  }

  /** Runs one write; a SQLite failure becomes a BufferError naming what was being done. */
  private write<T>(action: string, fn: () => T): T {
    try {
      return fn();
    } catch (err) {
      throw classifySqliteError(err, this.store.path, action);
    }
  }
}

/** sha256 (hex) of a byte buffer: the content check of an uploaded blob. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Thrown out of deleteSyncedBefore's transaction (rolling it back) when its DELETE met a damaged page. */
class SalvageNeeded extends Error {}
